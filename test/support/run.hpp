// test/support/run.hpp — drive awaitables from synchronous test bodies.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <sessionkit/concepts.hpp>

#include <thread>
#include <vector>

namespace sessionkit::test {

/// Runs one awaitable to completion on a private io_context and returns its
/// value (or rethrows its exception).
template <class T>
T sync_wait(awaitable<T> op) {
    boost::asio::io_context ctx;
    auto fut = boost::asio::co_spawn(ctx, std::move(op), boost::asio::use_future);
    ctx.run();
    return fut.get();
}

/// Runs `ctx` on `threads` threads until it has no more work.
inline void run_threads(boost::asio::io_context& ctx, int threads) {
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) pool.emplace_back([&ctx] { ctx.run(); });
    ctx.run();
    for (auto& t : pool) t.join();
}

} // namespace sessionkit::test

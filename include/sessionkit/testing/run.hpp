// sessionkit/testing/run.hpp — drive awaitables from synchronous test bodies.
//
// Part of the testing kit (CMake component sessionkit::testing): the
// conformance suites call every store operation through sync_wait, and run
// their concurrency cases with run_threads.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <thread>
#include <utility>
#include <vector>

namespace sessionkit::testing {

/// Runs one awaitable to completion on a private io_context and returns its
/// value (or rethrows its exception).
template <class T>
T sync_wait(boost::asio::awaitable<T> op) {
    boost::asio::io_context ctx;
    auto fut = boost::asio::co_spawn(ctx, std::move(op), boost::asio::use_future);
    ctx.run();
    return fut.get();
}

/// Runs `ctx` on `threads` threads (this one included) until it has no more work.
inline void run_threads(boost::asio::io_context& ctx, int threads) {
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i) pool.emplace_back([&ctx] { ctx.run(); });
    ctx.run();
    for (auto& t : pool) t.join();
}

}  // namespace sessionkit::testing

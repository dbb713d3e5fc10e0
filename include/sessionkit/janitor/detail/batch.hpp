// sessionkit/janitor/detail/batch.hpp — runs one coroutine per item of a
// batch, at most N at once, and never returns while one still runs (not
// even when cancelled): how the janitor finishes the sessions it claimed.
//
// Up to `concurrency` drains pull from one shared cursor; they report
// their end on a thread-safe channel and we wait there for all of them.
// (Asio 1.81's ranged parallel_group resumed the waiter inline on the
// thread of the last child; ThreadSanitizer reported a race on the frames
// under a multi-threaded io_context, so we do not use it.)
//
// The batch lives in our frame and the caller's, so we never return while
// a drain runs: cancellation stops the drains taking more items, lets the
// ones in hand finish, then propagates. Items not started are simply not
// done (the janitor's claim lease hands them to the next claimer).
#pragma once

#include <sessionkit/concepts.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <vector>

namespace sessionkit::detail {

/// Awaits `each(item)` for every item of `items`, up to `concurrency` at
/// once, on the current executor. The first exception of an `each` is
/// rethrown once all have ended; cancellation likewise, after the items in
/// hand have finished.
template <class T, class Each>
awaitable<void> for_each_bounded(const std::vector<T>& items, std::size_t concurrency, Each each) {
    if (items.empty()) co_return;
    using done_channel =
        boost::asio::experimental::concurrent_channel<void(boost::system::error_code, std::exception_ptr)>;
    const std::size_t workers = std::min(concurrency, items.size());
    std::atomic<std::size_t> next{0};
    std::atomic<bool> stop{false};  // cancelled: take no more items
    auto drain = [&]() -> awaitable<void> {
        for (std::size_t i; !stop.load() && (i = next.fetch_add(1)) < items.size();) co_await each(items[i]);
    };
    auto executor = co_await boost::asio::this_coro::executor;
    done_channel done(executor, workers);
    for (std::size_t w = 0; w < workers; ++w)
        boost::asio::co_spawn(executor, drain(),
                              [&done](std::exception_ptr e) { done.try_send(boost::system::error_code{}, e); });
    std::exception_ptr first_error, cancellation;
    bool throw_if_cancelled = true;
    for (std::size_t ended = 0; ended < workers;) {
        bool just_cancelled = false;
        try {
            // Once cancelled, wait on without a cancellation slot: the
            // drains still use the batch and `done`.
            auto e = cancellation ? co_await done.async_receive(boost::asio::bind_cancellation_slot(
                                        boost::asio::cancellation_slot(), boost::asio::use_awaitable))
                                  : co_await done.async_receive(boost::asio::use_awaitable);
            ++ended;
            if (e && !first_error) first_error = e;
        } catch (...) {
            if (cancellation) throw;  // the channel itself failed: nothing left to wait on
            cancellation = std::current_exception();
            stop.store(true);
            just_cancelled = true;
        }
        if (just_cancelled) {
            // A cancelled coroutine throws at its next co_await unless
            // told otherwise; the caller's setting is restored below.
            throw_if_cancelled = co_await boost::asio::this_coro::throw_if_cancelled();
            co_await boost::asio::this_coro::throw_if_cancelled(false);
        }
    }
    if (cancellation) {
        co_await boost::asio::this_coro::throw_if_cancelled(throw_if_cancelled);
        std::rethrow_exception(cancellation);
    }
    if (first_error) std::rethrow_exception(first_error);
}

}  // namespace sessionkit::detail

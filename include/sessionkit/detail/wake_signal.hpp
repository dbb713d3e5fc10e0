// sessionkit/detail/wake_signal.hpp — "something new happened": a
// generation counter that coroutines on any thread can wait on, with a
// bound. What the outbox's in-process wake-up, the event hub and the
// registry's output signal share.
//
// Read generation() before looking at the thing it guards, pass it to
// wait(): a notify() in between is not missed. Thread-safe; cheap when
// nobody waits.
#pragma once

#include <sessionkit/clock.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <vector>

namespace sessionkit::detail {

class wake_signal {
public:
    /// Counts one more notification and wakes every waiter. `also` runs
    /// under the signal's lock first (the outbox marks its dirty
    /// partition there).
    template <class Also = void (*)()>
    void notify(Also also = [] {}) noexcept {
        std::vector<std::shared_ptr<wake_channel>> wake;
        {
            std::lock_guard lock(mutex_);
            also();
            ++generation_;
            wake.swap(waiters_);
        }
        // A concurrent channel may be sent to from any thread.
        for (auto& w : wake) w->try_send(boost::system::error_code{});
    }

    /// Returns once notify() was called after generation() returned
    /// `seen` (at once if it already was), or after `at_most`. Cancelling
    /// the caller throws as usual.
    boost::asio::awaitable<void> wait(milliseconds at_most, std::uint64_t seen) {
        using namespace boost::asio::experimental::awaitable_operators;
        auto executor = co_await boost::asio::this_coro::executor;
        auto woken = std::make_shared<wake_channel>(executor, 1);
        {
            std::lock_guard lock(mutex_);
            if (generation_ != seen) co_return;
            waiters_.push_back(woken);
        }
        boost::asio::steady_timer timer(executor, at_most);
        std::exception_ptr failure;
        try {
            co_await (timer.async_wait(boost::asio::use_awaitable) || woken->async_receive(boost::asio::use_awaitable));
        } catch (...) {
            failure = std::current_exception();  // cancelled: rethrown once we are off the list
        }
        {
            std::lock_guard lock(mutex_);
            std::erase(waiters_, woken);
        }
        if (failure) std::rethrow_exception(failure);
    }

    /// Notifications so far.
    std::uint64_t generation() const {
        std::lock_guard lock(mutex_);
        return generation_;
    }

    /// The lock notify() runs `also` under, for readers of what it guards.
    std::mutex& mutex() const noexcept { return mutex_; }

private:
    using wake_channel = boost::asio::experimental::concurrent_channel<void(boost::system::error_code)>;

    mutable std::mutex mutex_;
    std::vector<std::shared_ptr<wake_channel>> waiters_;
    std::uint64_t generation_ = 0;
};

}  // namespace sessionkit::detail

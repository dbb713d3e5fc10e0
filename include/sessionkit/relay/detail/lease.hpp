// sessionkit/relay/detail/lease.hpp — what an event relay does next for one
// outbox partition: take its lease, renew it, or work it.
//
// A relay holds a partition through a store lock (try_lock with a TTL of
// `lease`) and renews it every third of that, so a relay that dies frees
// the partition within one lease while one that lives never lets it lapse
// between renewals. A relay that fails to take a partition tries again a
// third of a lease later. Pure: the steady time is passed in; the relay
// performs the step (event_relay.hpp) and reports how it went.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>

namespace sessionkit::detail {

class partition_lease {
public:
    using steady = std::chrono::steady_clock;
    using milliseconds = std::chrono::milliseconds;

    enum class step {
        acquire,  ///< not held, and time to try: try_lock
        renew,    ///< held, and time to renew: extend_lock
        work,     ///< held: read, publish, trim
        wait,     ///< not held, not yet time to try again: sleep until wake_at()
    };

    explicit partition_lease(milliseconds lease) : every_(std::max(lease / 3, milliseconds{1})) {}

    step next(steady::time_point now) const noexcept {
        if (!token_) return now >= next_try_ ? step::acquire : step::wait;
        return now >= renew_at_ ? step::renew : step::work;
    }

    /// try_lock answered: a token, or nullopt (someone else holds it).
    /// `stagger` (0..every) spreads retries of relays that started together.
    void tried(std::optional<std::string> token, steady::time_point now, milliseconds stagger = {}) {
        if (token) {
            token_ = std::move(token);
            renew_at_ = now + every_;
        } else {
            next_try_ = now + every_ + stagger;
        }
    }

    /// extend_lock answered: false means the lease ran out and someone may
    /// hold it now: stop working the partition.
    void renewed(bool still_held, steady::time_point now) {
        if (still_held) {
            renew_at_ = now + every_;
        } else {
            token_.reset();
            next_try_ = now + every_;
        }
    }

    /// A store error while taking or renewing: try again a period later,
    /// keeping the lease if we hold one (the lock may well still be ours).
    void failed(steady::time_point now) {
        if (token_)
            renew_at_ = now + every_;
        else
            next_try_ = now + every_;
    }

    bool held() const noexcept { return token_.has_value(); }
    const std::optional<std::string>& token() const noexcept { return token_; }
    /// When the next acquire or renew is due.
    steady::time_point due_at() const noexcept { return token_ ? renew_at_ : next_try_; }
    /// Releasing (clean stop): forget the token.
    std::optional<std::string> release() noexcept { return std::exchange(token_, std::nullopt); }

private:
    milliseconds every_;
    std::optional<std::string> token_;
    steady::time_point next_try_{};
    steady::time_point renew_at_{};
};

}  // namespace sessionkit::detail

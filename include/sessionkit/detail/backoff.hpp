// sessionkit/detail/backoff.hpp — how long to wait before the next attempt
// after a failure (a Redis connection's reconnect, an event relay's
// republish).
//
// The wait doubles from reconnect_min to reconnect_max, and each is drawn
// between half of it and all of it (plus one millisecond when that range is
// empty), so that many clients do not retry in step after a server
// restart. The random draw is a parameter: tests pick it, the connection
// passes a generator's output.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace sessionkit::detail {

class backoff {
public:
    using milliseconds = std::chrono::milliseconds;

    backoff(milliseconds min, milliseconds max) : min_(min), max_(max), current_(min) {}

    /// The wait before the next attempt, with `random` (any 64 bits) placing
    /// it within its range; the one after will be twice as long, up to max.
    milliseconds next_wait(std::uint64_t random) noexcept {
        const std::int64_t half = current_.count() / 2;
        const std::int64_t spread = std::max<std::int64_t>(1, half);
        const auto wait =
            milliseconds{half + static_cast<std::int64_t>(random % static_cast<std::uint64_t>(spread + 1))};
        current_ = std::min(current_ * 2, max_);
        return wait;
    }

    /// It worked again: the next failure starts again from min.
    void reset() noexcept { current_ = min_; }

    milliseconds current() const noexcept { return current_; }

private:
    milliseconds min_;
    milliseconds max_;
    milliseconds current_;
};

}  // namespace sessionkit::detail

// sessionkit/clock.hpp — the TTL clock policy.
//
// Deadlines are compared by several processes (janitors on other hosts, a
// Redis script), so they are wall-clock time points, not steady_clock ones.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <concepts>
#include <memory>

namespace sessionkit {

using time_point = std::chrono::system_clock::time_point;
using milliseconds = std::chrono::milliseconds;

/// session_clock: a source of "now" for deadlines.
///   - `c.now()` on a const clock returns std::chrono::system_clock::time_point;
///   - copies of a clock tell the same time (the registry and the janitors
///     each hold a copy);
///   - now() is safe to call from several threads at once.
template <class C>
concept session_clock = std::copy_constructible<C> && requires(const C& c) {
    { c.now() } -> std::same_as<time_point>;
};

/// The production clock: std::chrono::system_clock.
struct system_clock_policy {
    time_point now() const noexcept { return std::chrono::system_clock::now(); }
};
static_assert(session_clock<system_clock_policy>);

/// A clock that moves only when told, for deterministic tests of TTL logic.
/// Copies share one time, so a test can advance the clock that a registry
/// and its janitors hold copies of.
class manual_clock {
public:
    /// Starts at a fixed, round instant (2030-01-01T00:00:00Z) so logs read well.
    manual_clock() : manual_clock(time_point{std::chrono::seconds{1'893'456'000}}) {}
    explicit manual_clock(time_point start)
        : now_{std::make_shared<std::atomic<time_point::rep>>(start.time_since_epoch().count())} {}

    time_point now() const noexcept { return time_point{time_point::duration{now_->load()}}; }

    template <class Rep, class Period>
    void advance(std::chrono::duration<Rep, Period> d) noexcept {
        now_->fetch_add(std::chrono::duration_cast<time_point::duration>(d).count());
    }
    void set(time_point t) noexcept { now_->store(t.time_since_epoch().count()); }

private:
    std::shared_ptr<std::atomic<time_point::rep>> now_;
};
static_assert(session_clock<manual_clock>);

/// The latest time a record may carry, in ms since the epoch: the range of
/// time_point (nanoseconds in int64) ends in 2262; we stop a century earlier
/// so that adding any allowed duration cannot overflow.
inline constexpr std::int64_t max_unix_ms = 5'000'000'000'000;  // 2128-06
/// The longest idle timeout or lifetime: 100 years.
inline constexpr milliseconds max_duration{3'155'760'000'000};

/// Milliseconds since the Unix epoch: the unit of every time on the wire.
inline std::int64_t to_unix_ms(time_point t) noexcept {
    return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}
/// Precondition: |ms| <= max_unix_ms (record readers check it first).
inline time_point from_unix_ms(std::int64_t ms) noexcept {
    return time_point{std::chrono::duration_cast<time_point::duration>(milliseconds{ms})};
}

} // namespace sessionkit

// sessionkit/clock.hpp — the TTL clock policy.
//
// Deadlines are compared by several processes (janitors on other hosts, a
// Redis script), so they are wall-clock time points, not steady_clock ones.
#pragma once

#include <sessionkit/testing/manual_clock.hpp>  // manual_clock: the testing kit's, found here as always

#include <chrono>
#include <concepts>
#include <cstdint>

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

}  // namespace sessionkit

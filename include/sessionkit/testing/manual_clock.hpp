// sessionkit/testing/manual_clock.hpp — a session_clock that moves only when told.
//
// Part of the testing kit, for deterministic tests of TTL logic: a test
// builds a registry and janitors over copies of one manual_clock, advances
// it, and sweeps, without sleeping. <sessionkit/clock.hpp> includes this
// header (and checks it models session_clock), so manual_clock is also there
// for code that always found it there. It names system_clock's time_point
// itself rather than include clock.hpp, so the two never include each other.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>

namespace sessionkit {

/// Copies share one time, so a test can advance the clock that a registry
/// and its janitors hold copies of.
class manual_clock {
public:
    using time_point = std::chrono::system_clock::time_point;  // sessionkit::time_point

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

namespace testing {
using sessionkit::manual_clock;  // the kit's name for it
}  // namespace testing

}  // namespace sessionkit

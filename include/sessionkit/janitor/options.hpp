// sessionkit/janitor/options.hpp — the janitor's settings and what one
// sweep reports, apart from the janitor itself (a metrics exporter or a
// config loader needs them, not the coroutine).
#pragma once

#include <sessionkit/clock.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string_view>

namespace sessionkit {

struct janitor_options {
    /// Pause after each sweep (the first sweep runs after a random part of
    /// `jitter × interval`, so janitors started together spread out).
    milliseconds interval = std::chrono::seconds{10};
    /// Each pause is interval × (1 ± jitter), uniformly.
    double jitter = 0.1;
    /// Sessions claimed per store round trip.
    std::size_t batch_size = 100;
    /// Batches per sweep at most, so one sweep never runs unbounded.
    std::size_t max_batches = 100;
    /// Claimed sessions finished (worker stopped, record written) at once.
    std::size_t concurrency = 8;
    /// timeout_warning goes out this long before a deadline (zero: never).
    milliseconds warning_window = std::chrono::minutes{1};
    /// A claimed session that its janitor did not finish within this is
    /// claimed again (the janitor died or its store write failed).
    milliseconds claim_lease = std::chrono::minutes{1};
    /// Finished sessions stay readable as history this long.
    milliseconds history_retention = std::chrono::hours{1};
    /// How often a sweep also reconciles workers with sessions (zero:
    /// never). The first sweep always does: that is what cleans up after a
    /// daemon that was killed. It lists every worker of the deployment and
    /// pages through every session, so it is not done on every sweep.
    milliseconds reconcile_interval = std::chrono::minutes{1};
    /// How often run() checks, between sweeps, the workers this spawner
    /// runs against their sessions and stops those whose session has ended
    /// (zero: never). This is what stops a worker promptly when another
    /// instance sharing the store ended its session (it cannot stop a
    /// worker on another host). It lists this spawner's workers and reads
    /// the session of each: one store read per worker per check.
    milliseconds worker_check_interval = std::chrono::seconds{1};
    /// Where problems are reported, one line each; default: a JSON line on
    /// stderr.
    std::function<void(std::string_view)> log;
};

struct sweep_report {
    std::size_t warned = 0;
    std::size_t expired = 0;
    std::size_t purged = 0;
    std::size_t failed = 0;           ///< claimed sessions that could not be finished
    std::size_t orphans_removed = 0;  ///< workers that no live session owned
    std::size_t workers_lost = 0;     ///< live sessions failed because their worker was gone
    bool reconciled = false;          ///< whether this sweep reconciled
    std::chrono::steady_clock::duration duration{};
};

}  // namespace sessionkit

// sessionkit/janitor.hpp — the background coroutine that ends idle sessions.
//
// Each sweep: (1) warns sessions whose deadline is inside the warning
// window (timeout_warning, once per deadline); (2) claims expired sessions
// in small batches — the store hands each to exactly one janitor, however
// many run — and ends each through the registry (end_claimed: its worker
// stopped, terminated with the reason, idle or lifetime, and `expired`); (3) purges finished sessions
// older than the history retention; (4) every reconcile_interval, when the
// registry's sessions have workers, reconciles both ways: workers labelled
// with our deployment that no live session owns are removed, and live
// sessions whose worker is gone are failed (reason worker_lost). Sweeps
// start at a jittered interval so that janitors on many hosts do not fire
// together.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/janitor/detail/batch.hpp>
#include <sessionkit/janitor/options.hpp>
#include <sessionkit/outbox.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sessionkit {

/// Whether a running `worker` that a spawner lists is an orphan, given
/// the session it is labelled with (`stored`, nullopt when there is none):
/// the session is gone or ended, or records another worker, or never
/// recorded one although its creator had `spawn_timeout` to do so (a
/// younger initializing session is a spawn in progress). What
/// reconciliation and the worker check decide, without I/O.
inline bool is_orphan(const worker_ref& worker, const std::optional<session>& stored, time_point now,
                      milliseconds spawn_timeout) noexcept {
    if (!stored || is_final(stored->status)) return true;
    if (stored->worker) return *stored->worker != worker;
    return stored->status != session_status::initializing || now - stored->created_at >= spawn_timeout;
}

template <class Registry>
class janitor {
public:
    explicit janitor(Registry& registry, janitor_options options = {})
        : registry_(registry), options_(std::move(options)) {
        if (options_.interval <= milliseconds::zero())
            throw_error(error::invalid_argument, "janitor_options.interval must be positive");
        if (options_.batch_size == 0 || options_.max_batches == 0 || options_.concurrency == 0)
            throw_error(error::invalid_argument,
                        "janitor_options.batch_size, max_batches and concurrency must be at least 1");
        if (!(options_.jitter >= 0 && options_.jitter < 1))
            throw_error(error::invalid_argument, "janitor_options.jitter must be in [0, 1)");
        if (options_.claim_lease <= milliseconds::zero())
            throw_error(error::invalid_argument, "janitor_options.claim_lease must be positive");
        if (options_.warning_window < milliseconds::zero() || options_.history_retention < milliseconds::zero() ||
            options_.reconcile_interval < milliseconds::zero() || options_.worker_check_interval < milliseconds::zero())
            throw_error(error::invalid_argument,
                        "janitor_options.warning_window, history_retention, reconcile_interval and "
                        "worker_check_interval must not be negative");
        if (!options_.log)
            options_.log = [](std::string_view line) {
                std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
            };
    }

    /// One sweep, now. Deterministic with a manual_clock: tests call this.
    awaitable<sweep_report> sweep_once() {
        const auto started = std::chrono::steady_clock::now();
        auto& store = registry_.store();
        sweep_report report;
        const time_point now = registry_.clock().now();

        if (options_.warning_window > milliseconds::zero()) {
            for (std::size_t b = 0; b < options_.max_batches; ++b) {
                auto due = co_await store.claim_warnings(now, now + options_.warning_window, options_.batch_size);
                // A store with an outbox appended the warnings with the claim.
                if (!writes_events(store))
                    for (const auto& s : due) {
                        try {
                            registry_.sink().emit(make_timeout_warning(s, now, generate_id()));
                        } catch (...) {
                            // Out of memory building it: events never fail a sweep.
                        }
                    }
                report.warned += due.size();
                if (due.size() < options_.batch_size) break;
            }
        }

        for (std::size_t b = 0; b < options_.max_batches; ++b) {
            auto claimed = co_await store.claim_expired(now, options_.batch_size, options_.claim_lease);
            co_await finish_all(claimed, now, report);
            if (claimed.size() < options_.batch_size) break;
        }

        for (std::size_t b = 0; b < options_.max_batches; ++b) {
            auto n = co_await store.purge_ended(now - options_.history_retention, options_.batch_size);
            report.purged += n;
            if (n < options_.batch_size) break;
        }

        if (registry_.spawns() && options_.reconcile_interval > milliseconds::zero() && reconcile_due(started)) {
            co_await reconcile(now, report);
            report.reconciled = true;
        }
        report.duration = std::chrono::steady_clock::now() - started;
        co_return report;
    }

    /// Reconciliation alone, now (sandboxd runs it at start).
    awaitable<sweep_report> reconcile_once() {
        sweep_report report;
        const auto started = std::chrono::steady_clock::now();
        if (registry_.spawns()) {
            co_await reconcile(registry_.clock().now(), report);
            report.reconciled = true;
        }
        report.duration = std::chrono::steady_clock::now() - started;
        co_return report;
    }

    /// Stops, now, the workers of this spawner whose session has ended or
    /// now names another worker (what run() does every
    /// worker_check_interval). Returns how many it stopped.
    awaitable<std::size_t> check_workers_once() {
        sweep_report report;
        if (registry_.spawns()) {
            auto owned = co_await registry_.spawner().list_owned();
            co_await remove_orphans(registry_.clock().now(), owned, report);
        }
        co_return report.orphans_removed;
    }

    /// Sweeps until cancelled (through the cancellation slot of the
    /// co_spawn that runs it) or stop(). An exception in one sweep is
    /// logged and the next sweep runs as planned. One run() at a time.
    awaitable<void> run() {
        using namespace boost::asio::experimental::awaitable_operators;
        auto executor = co_await boost::asio::this_coro::executor;
        boost::asio::steady_timer timer(executor);
        // stop() ends the run in progress; one from before this run began
        // (or left over from the last one) does not end this one.
        stop_requested_.store(false);
        wake_.reset();

        using steady = std::chrono::steady_clock;
        const bool checks = options_.worker_check_interval > milliseconds::zero();
        auto next_sweep = steady::now() + first_wait();
        auto next_check = steady::now() + options_.worker_check_interval;
        while (!stop_requested_.load()) {
            // Worker checks run between sweeps, never during one.
            const bool check = checks && registry_.spawns() && next_check < next_sweep;
            timer.expires_at(check ? next_check : next_sweep);
            try {
                // Whichever comes first: the pause ends, or stop() wakes us.
                co_await (timer.async_wait(boost::asio::use_awaitable) ||
                          wake_.async_receive(boost::asio::use_awaitable));
            } catch (...) {
                // A timer wait or a channel receive fails only when cancelled
                // (both at once arrive as asio::multiple_exceptions).
                co_return;
            }
            if (stop_requested_.load()) break;

            bool failed = false;
            std::string failure;
            try {
                if (check) {
                    co_await check_workers_once();
                } else {
                    auto report = co_await sweep_once();
                    if (on_sweep) on_sweep(report);
                }
            } catch (const std::exception& e) {
                failed = true;
                failure = e.what();
            }
            if (check)
                next_check = steady::now() + options_.worker_check_interval;
            else
                next_sweep = steady::now() + next_wait();
            if (failed) {
                if (cancelled(co_await boost::asio::this_coro::cancellation_state)) co_return;
                log_error(check ? "worker check failed" : "sweep failed", failure);
                if (!check && on_sweep_error) on_sweep_error(failure);
            }
        }
    }

    /// Asks the run() in progress to return; a sweep in progress finishes
    /// first. Safe from any thread. A stop() before run() starts has no
    /// effect on it.
    void stop() {
        stop_requested_.store(true);
        wake_.try_send(boost::system::error_code{});
    }

    /// Called after each successful sweep of run() (metrics hook).
    std::function<void(const sweep_report&)> on_sweep;
    /// Called after each failed sweep of run(), with the error text.
    std::function<void(std::string_view)> on_sweep_error;

    const janitor_options& options() const noexcept { return options_; }

private:
    // Finishes a batch, up to `concurrency` sessions at once
    // (janitor/detail/batch.hpp: cancellation lets the sessions in hand
    // finish, each bounded by stop_grace and the store's timeouts, then
    // propagates). What was claimed and not finished stays `stopping` under
    // its claim lease, so the next janitor to claim it finishes it.
    awaitable<void> finish_all(const std::vector<session>& claimed, time_point now, sweep_report& report) {
        std::atomic<std::size_t> expired{0}, failed{0};
        auto each = [&](const session& s) { return finish_one(s, now, expired, failed); };
        std::exception_ptr error;
        try {
            co_await detail::for_each_bounded(claimed, options_.concurrency, each);
        } catch (...) {
            error = std::current_exception();
        }
        report.expired += expired.load();
        report.failed += failed.load();
        if (error) std::rethrow_exception(error);
    }

    // Ends one claimed session through the registry (the same ending
    // planner as terminate, as an expiry: its worker stopped, terminated
    // with compare-and-swap on the claimed version, `expired`). Failures are
    // logged and counted, not thrown: the claim's lease runs out and a
    // later sweep tries again.
    awaitable<void> finish_one(const session& claimed, time_point now, std::atomic<std::size_t>& expired,
                               std::atomic<std::size_t>& failed) {
        try {
            // Otherwise someone else ended it first (terminate, or a janitor
            // that re-claimed it after our lease): theirs is the event.
            if (co_await registry_.end_claimed(claimed, now)) ++expired;
        } catch (const std::exception& e) {
            ++failed;
            log_error("could not end session '" + claimed.id + "'", e.what());
        }
    }

    bool reconcile_due(std::chrono::steady_clock::time_point now) {
        std::lock_guard lock(reconcile_mutex_);
        if (last_reconcile_ && now - *last_reconcile_ < options_.reconcile_interval) return false;
        last_reconcile_ = now;
        return true;
    }

    // Both ways: (1) live sessions whose worker is gone are failed; (2)
    // workers no live session owns are removed. (1) first, so that an ended
    // container of a session it fails is removed in the same pass.
    awaitable<void> reconcile(time_point now, sweep_report& report) {
        auto& spawner = registry_.spawner();
        auto& store = registry_.store();
        auto owned = co_await spawner.list_owned();
        std::unordered_map<std::string, bool> running;  // worker id -> running
        for (const auto& o : owned) running[o.worker.id] = o.running;

        const std::string kind(spawner.kind());
        list_query q;
        q.limit = max_page_size;
        for (;;) {
            auto page = co_await store.list(q);
            for (const auto& s : page.sessions) {
                if (!s.worker || s.worker->kind != kind || is_final(s.status) || s.status == session_status::stopping ||
                    s.status == session_status::initializing)
                    continue;
                bool gone;
                if (auto it = running.find(s.worker->id); it != running.end()) {
                    gone = !it->second;
                } else {
                    // Not listed: started after the listing, or not this
                    // spawner's to list (another host's process); ask.
                    gone = !(co_await spawner.alive(*s.worker));
                }
                if (!gone) continue;
                std::string id = s.id;  // named: GCC 12, see doc/decisions.md
                worker_ref w = *s.worker;
                if (co_await registry_.worker_lost(std::move(id), std::move(w))) {
                    ++report.workers_lost;
                    log_warning("worker gone: session failed", s.id, s.worker->id);
                }
            }
            if (!page.next_cursor) break;
            q.cursor = *page.next_cursor;
        }

        co_await remove_orphans(now, owned, report);
    }

    // Stops the workers in `owned` that no live session owns: their session
    // is gone or ended, or records another worker, or never recorded one
    // although its creator had spawn_timeout to do so.
    awaitable<void> remove_orphans(time_point now, const std::vector<owned_worker>& owned, sweep_report& report) {
        auto& spawner = registry_.spawner();
        auto& store = registry_.store();
        const auto grace = registry_.options().stop_grace;
        const auto spawn_timeout = registry_.options().spawn_timeout;
        for (const auto& o : owned) {
            std::optional<session> s;
            if (!o.session_id.empty() && is_valid_id(o.session_id)) s = co_await store.get(o.session_id);
            if (!is_orphan(o.worker, s, now, spawn_timeout)) continue;
            try {
                co_await spawner.stop(o.worker, grace);
                ++report.orphans_removed;
                log_warning("orphan worker removed", o.session_id, o.worker.id);
            } catch (const std::exception& e) {
                log_error("could not remove orphan worker '" + o.worker.id + "'", e.what());
            }
        }
    }

    void log_warning(std::string_view what, std::string_view session_id, std::string_view worker) {
        boost::json::object line{{"level", "warn"},  {"component", "janitor"},
                                 {"msg", what},      {"session", session_id},
                                 {"worker", worker}, {"time", to_unix_ms(std::chrono::system_clock::now())}};
        options_.log(boost::json::serialize(line));
    }

    static bool cancelled(const boost::asio::cancellation_state& st) {
        return st.cancelled() != boost::asio::cancellation_type::none;
    }

    std::chrono::steady_clock::duration first_wait() {
        thread_local std::minstd_rand rng{std::random_device{}()};
        std::uniform_real_distribution<double> part(0.0, options_.jitter);
        auto base = std::chrono::duration<double, std::milli>(options_.interval);
        return std::chrono::duration_cast<std::chrono::steady_clock::duration>(base * part(rng));
    }

    std::chrono::steady_clock::duration next_wait() {
        thread_local std::minstd_rand rng{std::random_device{}()};
        std::uniform_real_distribution<double> spread(1.0 - options_.jitter, 1.0 + options_.jitter);
        auto base = std::chrono::duration<double, std::milli>(options_.interval);
        return std::chrono::duration_cast<std::chrono::steady_clock::duration>(base * spread(rng));
    }

    void log_error(std::string_view what, std::string_view detail) {
        boost::json::object line{{"level", "error"},
                                 {"component", "janitor"},
                                 {"msg", what},
                                 {"error", detail},
                                 {"time", to_unix_ms(std::chrono::system_clock::now())}};
        options_.log(boost::json::serialize(line));
    }

    Registry& registry_;
    janitor_options options_;
    std::mutex reconcile_mutex_;
    std::optional<std::chrono::steady_clock::time_point> last_reconcile_;
    std::atomic<bool> stop_requested_{false};
    // stop()'s wake-up call: a thread-safe channel that run() awaits beside
    // its timer, so stopping needs no access to the timer from other threads.
    boost::asio::experimental::concurrent_channel<void(boost::system::error_code)> wake_{boost::asio::system_executor{},
                                                                                         1};
};

}  // namespace sessionkit

// sessionkit/registry.hpp — the session registry: the API applications use.
//
// session_registry<Store, Clock, Sink, Spawner> composes the parts: the
// store keeps the state, the clock sets deadlines, the sink hears every
// lifecycle event, the spawner gives each session its worker. The registry
// itself is stateless apart from its options, so any number of registries
// (threads, processes, hosts) may share one store.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/output.hpp>
#include <sessionkit/registry_types.hpp>
#include <sessionkit/sink/null.hpp>
#include <sessionkit/spawner/none.hpp>
#include <sessionkit/status.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>

namespace sessionkit {

namespace detail {
template <class P>
constexpr bool spawns_workers() {
    if constexpr (requires { P::spawns_workers; }) return P::spawns_workers;
    else return true;
}
} // namespace detail

template <session_store Store, session_clock Clock = system_clock_policy,
          event_sink Sink = null_sink, spawner Spawner = no_spawner>
class session_registry {
public:
    using store_type = Store;
    using clock_type = Clock;
    using sink_type = Sink;
    using spawner_type = Spawner;

    explicit session_registry(Store& store, registry_options options = {}, Clock clock = {},
                              Sink sink = {}, Spawner spawner = {})
        : store_(store), options_(std::move(options)), clock_(std::move(clock)),
          sink_(std::move(sink)), spawner_(std::move(spawner)) {
        check_duration("registry_options.idle_timeout", options_.idle_timeout);
        check_duration("registry_options.max_lifetime", options_.max_lifetime);
        check_duration("registry_options.stop_grace", options_.stop_grace);
        check_duration("registry_options.stop_lease", options_.stop_lease);
        check_duration("registry_options.spawn_timeout", options_.spawn_timeout);
        if (options_.max_cas_attempts < 1)
            throw_error(error::invalid_argument, "registry_options.max_cas_attempts must be at least 1");
        if constexpr (watching_spawner<Spawner>) spawner_.watch(listener());
    }

    // A watching spawner calls back into this registry: it must not move.
    session_registry(const session_registry&) = delete;
    session_registry& operator=(const session_registry&) = delete;

    /// Get-or-create: returns the live session `id`, touched, or creates
    /// it. However many callers acquire one id at once, in however many
    /// processes, exactly one creates it (and emits `created`). A session
    /// being stopped is returned as it is (status stopping).
    awaitable<acquire_result> acquire(std::string_view id) { return acquire(id, acquire_options()); }
    awaitable<acquire_result> acquire(std::string_view id, acquire_options opts) {
        check_id(id);
        check_duration("acquire: idle_timeout", opts.idle_timeout);
        check_duration("acquire: max_lifetime", opts.max_lifetime);
        for (int attempt = 0; attempt < options_.max_cas_attempts; ++attempt) {
            // Create-if-absent first: one round trip makes a new session, and
            // otherwise returns the live one, which a touch then marks used.
            const session fresh = new_record(id, opts);
            auto made = co_await store_.create(fresh);
            if (!made.created) {
                auto touched = co_await store_.touch(id, clock_.now());
                if (!touched || is_final(touched->status)) continue;  // ended meanwhile: create anew
                if (touched->version == made.record.version + 1) {
                    touched->apply_to(made.record);  // our touch was the only write since the read
                } else {
                    // Someone wrote in between (a creator recording its
                    // worker, say): the touch's fields on the old record
                    // would claim a status the record does not hold. Read
                    // the record as it is now.
                    auto now_stored = co_await store_.get(id);
                    if (!now_stored || is_final(now_stored->status)) continue;
                    made.record = std::move(*now_stored);
                }
                if constexpr (detail::spawns_workers<Spawner>()) {
                    if (made.record.status == session_status::initializing && spawns()) {
                        auto ready = co_await await_worker(std::move(made.record));
                        if (!ready) continue;  // it failed or ended meanwhile: create anew
                        co_return acquire_result{std::move(*ready), false};
                    }
                }
                co_return acquire_result{std::move(made.record), false};
            }
            emit(event_type::created, made.record, {{"owner", made.record.owner}});
            if constexpr (detail::spawns_workers<Spawner>()) {
                if (spawns()) {
                    // Named, not awaited inside the braces: GCC 12 mishandles
                    // co_await within an aggregate initialiser.
                    session started = co_await start_worker_locked(std::move(made.record));
                    co_return acquire_result{std::move(started), true};
                }
            }
            co_return acquire_result{std::move(made.record), true};
        }
        contention("acquire", id);
    }

    /// Creates a session under a fresh random id.
    awaitable<session> create() { return create(acquire_options()); }
    awaitable<session> create(acquire_options opts) {
        // 128 random bits do not collide in practice; if they ever did, the
        // existing session is someone else's: draw again.
        for (;;) {
            const std::string id = generate_id();  // named: see the GCC 12 note above
            auto made = co_await acquire(id, opts);
            if (made.created) co_return std::move(made.record);
        }
    }

    awaitable<std::optional<session>> get(std::string_view id) {
        check_id(id);
        co_return co_await store_.get(id);
    }

    /// Marks the session used now, sliding its idle deadline (never past its
    /// max lifetime). nullopt when there is no such session; a stopping or
    /// finished session is reported unchanged.
    awaitable<std::optional<touch_result>> touch(std::string_view id) {
        check_id(id);
        co_return co_await store_.touch(id, clock_.now());
    }

    /// Read-modify-write with compare-and-swap. `mutate` edits a copy of the
    /// stored record and may change its status (to a live one, following the
    /// transition table: else error::invalid_transition naming both states),
    /// its attributes and its unknown fields; every other field is the
    /// registry's and is kept. Ending a session is terminate()'s job (it
    /// stops the worker): a final status here is error::invalid_argument.
    /// With `expected_version`, a stored version that differs is a
    /// version_conflict; without, conflicts are retried with a fresh read.
    /// Emits status_changed when the status moved.
    awaitable<modify_outcome> modify(std::string_view id, std::function<void(session&)> mutate,
                                     std::optional<std::uint64_t> expected_version = {}) {
        check_id(id);
        for (int attempt = 0; attempt < options_.max_cas_attempts; ++attempt) {
            auto current = co_await store_.get(id);
            if (!current) co_return modify_outcome{update_result::not_found, std::nullopt};
            // A stopping session is being ended: like a final one, it is not
            // changed any more (its status can only become final).
            if (is_final(current->status) || current->status == session_status::stopping)
                co_return modify_outcome{update_result::final_state, std::move(current)};
            if (expected_version && current->version != *expected_version)
                co_return modify_outcome{update_result::version_conflict, std::move(current)};
            session edited = *current;
            mutate(edited);
            check_transition(id, current->status, edited.status);
            // Its worker's start moves a session out of initializing (or
            // fails it): a status set by hand meanwhile would let the
            // session claim to run with no worker.
            if (current->status == session_status::initializing && edited.status != current->status)
                throw_error(error::invalid_transition,
                            "session '" + std::string(id) + "': cannot change status from initializing to " +
                                std::string(to_string(edited.status)) +
                                ": it leaves initializing when its worker has started (or failed to)");
            if (edited.status != current->status &&
                (is_final(edited.status) || edited.status == session_status::stopping))
                throw_error(error::invalid_argument,
                            "modify: session '" + std::string(id) + "': " +
                                std::string(to_string(edited.status)) +
                                " is set by terminate() and the janitor, which also stop the worker");
            session next = *current;
            next.status = edited.status;
            next.attributes = std::move(edited.attributes);
            next.extra = std::move(edited.extra);
            auto r = co_await store_.update(next, current->version);
            if (r == update_result::updated) {
                next.version = current->version + 1;
                if (next.status != current->status) emit_status_change(*current, next);
                co_return modify_outcome{r, std::move(next)};
            }
            if (r != update_result::version_conflict || expected_version) {
                auto now_stored = co_await store_.get(id);
                co_return modify_outcome{r, std::move(now_stored)};
            }
        }
        contention("modify", id);
    }

    /// Moves a session to `status` (transition table enforced: an invalid
    /// change is error::invalid_transition naming both states; a missing
    /// session is error::not_found). terminated and failed end the session
    /// as terminate() does (reason "status_set"). Returns the updated record.
    awaitable<session> set_status(std::string_view id, session_status status) {
        check_id(id);
        if (is_final(status)) {
            auto current = co_await store_.get(id);
            if (!current) throw_error(error::not_found, "set_status: session '" + std::string(id) + "'");
            if (current->status == status) co_return std::move(*current);
            check_transition(id, current->status, status);
            std::string reason = "status_set";  // named: see the GCC 12 note above
            auto out = co_await end(id, status, std::move(reason));
            if (!out.record) throw_error(error::not_found, "set_status: session '" + std::string(id) + "'");
            if (out.record->status != status) check_transition(id, out.record->status, status);
            co_return std::move(*out.record);
        }
        if (status == session_status::stopping)
            throw_error(error::invalid_argument,
                        "set_status: session '" + std::string(id) +
                            "': stopping is set by terminate() and the janitor, which also stop the worker");
        std::function<void(session&)> change = [status](session& s) { s.status = status; };
        auto out = co_await modify(id, std::move(change));
        if (out.result == update_result::updated) co_return std::move(*out.record);
        if (!out.record) throw_error(error::not_found, "set_status: session '" + std::string(id) + "'");
        check_transition(id, out.record->status, status);  // final_state: names both states
        contention("set_status", id);
    }

    /// Ends a session on request: stops its worker, marks it terminated
    /// with `reason`, emits `terminated`. Idempotent: ending a finished
    /// session changes nothing and emits nothing. Returns the final record,
    /// nullopt when there is no such session.
    awaitable<std::optional<session>> terminate(std::string_view id, std::string reason) {
        check_id(id);
        if (reason.empty()) reason = "deleted";
        auto out = co_await end(id, session_status::terminated, std::move(reason));
        co_return std::move(out.record);
    }
    awaitable<std::optional<session>> terminate(std::string_view id) { return terminate(id, "deleted"); }

    /// Ends a session with `final_status` (terminated or failed) and
    /// `reason`, as terminate() does, optionally only if it is still at
    /// `expected_version` (checked by the store's compare-and-swap, so no
    /// write in between is lost). Returns updated with the final record;
    /// final_state with the record if it had already ended; version_conflict
    /// with the current record; not_found.
    awaitable<modify_outcome> end(std::string_view id, session_status final_status, std::string reason,
                                  std::optional<std::uint64_t> expected_version = {}) {
        check_id(id);
        if (!is_final(final_status))
            throw_error(error::invalid_argument, "end: session '" + std::string(id) + "': " +
                                                     std::string(to_string(final_status)) + " is not a final status");
        if (reason.empty()) reason = "deleted";
        co_return co_await end_session(id, std::move(reason), final_status, expected_version, false);
    }

    awaitable<session_page> list(list_query query) {
        if (query.limit == 0 || query.limit > max_page_size)
            throw_error(error::invalid_argument, "list: limit must be between 1 and " +
                                                     std::to_string(max_page_size) + ", got " +
                                                     std::to_string(query.limit));
        co_return co_await store_.list(query);
    }

    awaitable<store_stats> stats() { co_return co_await store_.stats(); }
    awaitable<void> ping() { co_await store_.ping(); }

    /// Writes `bytes` to the input of the session's worker (a process's
    /// stdin) and touches the session: input is use. Errors, each naming
    /// the session: not_found (no such session), invalid_transition (it is
    /// stopping or has ended), invalid_argument (it has no worker, or the
    /// spawner's workers take no input).
    awaitable<void> send_input(std::string_view id, std::string_view bytes) {
        check_id(id);
        auto current = co_await store_.get(id);
        const std::string who = "send_input: session '" + std::string(id) + "'";
        if (!current) throw_error(error::not_found, who);
        if (is_final(current->status) || current->status == session_status::stopping)
            throw_error(error::invalid_transition,
                        who + " is " + std::string(to_string(current->status)) + " and takes no more input");
        if constexpr (input_spawner<Spawner>) {
            if (!current->worker) throw_error(error::invalid_argument, who + " has no worker to take input");
            co_await spawner_.send_input(*current->worker, bytes);
            co_await store_.touch(id, clock_.now());
        } else {
            throw_error(error::invalid_argument,
                        who + ": the '" + std::string(spawner_.kind()) + "' spawner's workers take no input");
        }
    }

    /// Up to `max` bytes of the session's output from `offset` (see
    /// output.hpp). not_found when there is no such session;
    /// invalid_argument for an offset past the end, or when the store keeps
    /// no output.
    awaitable<output_chunk> read_output(std::string_view id, std::uint64_t offset,
                                        std::size_t max = max_output_read) {
        check_id(id);
        if constexpr (output_log<Store>) {
            auto chunk = co_await store_.read_output(id, offset, max);
            if (!chunk) throw_error(error::not_found, "read_output: session '" + std::string(id) + "'");
            co_return std::move(*chunk);
        } else {
            throw_error(error::invalid_argument, "read_output: session '" + std::string(id) +
                                                     "': this store keeps no worker output");
        }
    }

    /// Ends the session as failed (reason worker_lost, with a
    /// worker_exited event) if it still has `worker` and has not ended:
    /// the janitor's reconciliation found the worker gone. True if this
    /// call ended it.
    awaitable<bool> worker_lost(std::string id, worker_ref worker) {
        check_id(id);
        std::string reason = "worker_lost";  // named: GCC 12, see doc/decisions.md
        boost::json::object no_detail;
        co_return co_await end_for_worker(std::move(id), std::move(worker), session_status::failed, std::move(reason),
                                          std::move(no_detail));
    }

    /// Whether sessions get workers: fixed by the spawner's type, or (for
    /// any_spawner) by the spawner chosen at run time.
    bool spawns() const noexcept {
        if constexpr (requires(const Spawner& p) { { p.spawns_workers() } -> std::convertible_to<bool>; })
            return spawner_.spawns_workers();
        else
            return detail::spawns_workers<Spawner>();
    }

    Store& store() noexcept { return store_; }
    Clock& clock() noexcept { return clock_; }
    Sink& sink() noexcept { return sink_; }
    Spawner& spawner() noexcept { return spawner_; }
    const registry_options& options() const noexcept { return options_; }

    /// Emits an event about `s` through the sink (also used by the janitor).
    void emit(event_type type, const session& s, boost::json::object data = {}) noexcept {
        try {
            sink_.emit(make_event(type, s.id, clock_.now(), std::move(data)));
        } catch (...) {
            // Building the event ran out of memory: events never fail a
            // session operation.
        }
    }

private:
    // terminate() and set_status(final): record the intent (stopping, with a
    // lease) when a worker must be stopped, stop it, then write the final
    // status with compare-and-swap. Only the writer whose CAS lands emits.
    // `worker_gone`: the worker already ended by itself; nothing to stop.
    awaitable<modify_outcome> end_session(std::string_view id, std::string reason, session_status final_status,
                                          std::optional<std::uint64_t> expected_version, bool worker_gone) {
        for (int attempt = 0; attempt < options_.max_cas_attempts; ++attempt) {
            auto current = co_await store_.get(id);
            if (!current) co_return modify_outcome{update_result::not_found, std::nullopt};
            if (is_final(current->status)) co_return modify_outcome{update_result::final_state, std::move(current)};
            // With an expected version, any write since is a conflict (also
            // one that made us retry below).
            if (expected_version && current->version != *expected_version)
                co_return modify_outcome{update_result::version_conflict, std::move(current)};
            session next = *current;
            const time_point now = clock_.now();
            if (current->worker && !worker_gone) {
                // If we die while stopping the worker, a janitor finishes the
                // job after the lease.
                if (current->status != session_status::stopping) {
                    next.status = session_status::stopping;
                    next.idle_deadline = now + options_.stop_lease;
                    next.end_reason = reason;
                    if (co_await store_.update(next, current->version) != update_result::updated) continue;
                    next.version = current->version + 1;
                    if (expected_version) expected_version = next.version;  // our own write
                    emit_status_change(*current, next);
                }
                co_await spawner_.stop(*current->worker, options_.stop_grace);
            }
            session done = next;
            done.status = final_status;
            done.ended_at = now;
            // Whoever began ending it first names the reason: a session a
            // janitor already claimed as idle stays "idle".
            if (done.end_reason.empty()) done.end_reason = reason;
            auto r = co_await store_.update(done, next.version);
            if (r == update_result::updated) {
                done.version = next.version + 1;
                emit(event_type::terminated, done,
                     {{"reason", done.end_reason},
                      {"from", to_string(current->status)},
                      {"status", to_string(final_status)}});
                co_return modify_outcome{update_result::updated, std::move(done)};
            }
            // Lost a race: read again; it may be final by now.
        }
        contention("end", id);
    }

    session new_record(std::string_view id, const acquire_options& opts) const {
        const time_point now = clock_.now();
        session s;
        s.id = std::string(id);
        s.owner = opts.owner;
        s.status = spawns() ? session_status::initializing : session_status::active;
        s.created_at = now;
        s.last_active = now;
        s.idle_timeout = opts.idle_timeout.value_or(options_.idle_timeout);
        if (auto life = opts.max_lifetime ? opts.max_lifetime : options_.max_lifetime)
            s.absolute_deadline = now + *life;
        s.idle_deadline = sliding_deadline(s, now);
        s.attributes = opts.attributes;
        return s;
    }

    // The creator's spawn. The spawn lock marks a spawn in progress, so that
    // a waiter takes over only when its holder died (await_worker). The
    // creator spawns even if a stale lock from an earlier session under
    // this id is still held: nobody else can be spawning this one.
    awaitable<session> start_worker_locked(session s) {
        auto token = co_await store_.try_lock(spawn_lock(s.id), options_.spawn_timeout, clock_.now());
        co_return co_await start_worker_then_unlock(std::move(s), std::move(token));
    }

    awaitable<session> start_worker_then_unlock(session s, std::optional<std::string> token) {
        const std::string lock_name = spawn_lock(s.id);
        std::optional<session> started;
        std::exception_ptr failure;
        try {
            started = co_await start_worker(std::move(s));
        } catch (...) {
            failure = std::current_exception();
        }
        if (token) {
            try {
                co_await store_.unlock(lock_name, *token);
            } catch (...) {
                // The lock expires by itself: a failed release costs a waiter
                // at most spawn_timeout, never a second worker.
            }
        }
        if (failure) std::rethrow_exception(failure);
        co_return std::move(*started);
    }

    static std::string spawn_lock(std::string_view id) { return "spawn:" + std::string(id); }

    /// The same session, not a newer one under its id. Stores keep times
    /// to the millisecond, so that is the precision compared.
    static bool same_session(const session& a, const session& b) {
        return to_unix_ms(a.created_at) == to_unix_ms(b.created_at);
    }

    // Another caller created the session and is starting its worker: wait
    // for it (polling the store, whichever process that caller is in), or
    // take over if it has been initializing for spawn_timeout. nullopt when
    // it ended meanwhile (the caller creates a new one).
    awaitable<std::optional<session>> await_worker(session s) {
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
        const auto give_up = std::chrono::steady_clock::now() + options_.spawn_timeout;
        milliseconds pause{2};
        for (;;) {
            if (s.status == session_status::failed && s.end_reason == "spawn_failed")
                throw_error(error::spawn_failed, "acquire: session '" + s.id +
                                                     "': its worker could not be started "
                                                     "(the status_changed event says why)");
            if (is_final(s.status)) co_return std::nullopt;
            if (s.status != session_status::initializing) co_return std::move(s);
            if (clock_.now() - s.created_at >= options_.spawn_timeout) {
                // Its creator died while spawning: the first to lock takes over.
                auto token = co_await store_.try_lock(spawn_lock(s.id), options_.spawn_timeout, clock_.now());
                if (token) {
                    auto again = co_await store_.get(s.id);
                    if (again && again->status == session_status::initializing && !again->worker)
                        co_return co_await start_worker_then_unlock(std::move(*again), std::move(token));
                    co_await store_.unlock(spawn_lock(s.id), *token);
                }
            }
            if (std::chrono::steady_clock::now() >= give_up)
                throw_error(error::timeout, "acquire: session '" + s.id + "': its worker is still starting after " +
                                                std::to_string(options_.spawn_timeout.count()) + " ms");
            timer.expires_after(pause);
            co_await timer.async_wait(boost::asio::use_awaitable);
            pause = std::min<milliseconds>(pause * 2, milliseconds{100});
            auto again = co_await store_.get(s.id);
            if (!again) co_return std::nullopt;
            s = std::move(*again);
        }
    }

    awaitable<session> start_worker(session s) {
        std::optional<worker_ref> worker;
        std::exception_ptr spawn_error;
        std::string spawn_message;
        try {
            worker = co_await spawner_.spawn(s);
        } catch (const std::exception& e) {
            spawn_error = std::current_exception();
            spawn_message = e.what();
        }
        if (spawn_error) {
            // No half-made session: it is failed, with the spawner's words.
            // (Waiters touch it meanwhile, hence the retries.)
            for (int attempt = 0; attempt < options_.max_cas_attempts; ++attempt) {
                session failed = s;
                failed.status = session_status::failed;
                failed.ended_at = clock_.now();
                failed.end_reason = "spawn_failed";
                auto r = co_await store_.update(failed, s.version);
                if (r == update_result::updated) {
                    emit(event_type::status_changed, failed,
                         {{"from", to_string(s.status)}, {"to", "failed"}, {"error", spawn_message}});
                    break;
                }
                if (r != update_result::version_conflict) break;
                auto again = co_await store_.get(s.id);
                // Ended meanwhile, or a newer session under this id: not ours.
                if (!again || again->status != session_status::initializing || !same_session(*again, s)) break;
                s = std::move(*again);
            }
            std::rethrow_exception(spawn_error);
        }
        for (int attempt = 0; attempt < options_.max_cas_attempts; ++attempt) {
            session next = s;
            next.worker = worker;
            next.status = session_status::active;
            auto r = co_await store_.update(next, s.version);
            if (r == update_result::updated) {
                next.version = s.version + 1;
                if (worker)
                    emit(event_type::worker_started, next, {{"kind", worker->kind}, {"worker", worker->id}});
                emit_status_change(s, next);
                if (worker) {
                    // It may have exited before it was recorded (see on_worker_exit).
                    if (auto how = take_early_exit(worker->id)) {
                        co_await end_for_exit(next.id, *worker, *how);
                        auto now_stored = co_await store_.get(next.id);
                        co_return now_stored ? std::move(*now_stored) : std::move(next);
                    }
                }
                co_return next;
            }
            // Touched by waiters meanwhile: write the worker onto the fresh
            // record, if it is still this session's and still waits for one.
            if (r != update_result::version_conflict) break;
            auto again = co_await store_.get(s.id);
            if (!again || again->status != session_status::initializing || again->worker || !same_session(*again, s))
                break;
            s = std::move(*again);
            if (attempt + 1 == options_.max_cas_attempts) {
                if (worker) {
                    take_early_exit(worker->id);
                    co_await spawner_.stop(*worker, options_.stop_grace);
                }
                contention("acquire", s.id);
            }
        }
        // Someone ended it while the worker started: do not leak the worker,
        // unless the record holds this very worker (a spawner that adopted
        // the container another spawn of this session made).
        auto now_stored = co_await store_.get(s.id);
        if (worker && !(now_stored && now_stored->worker == worker)) {
            take_early_exit(worker->id);
            co_await spawner_.stop(*worker, options_.stop_grace);
        }
        co_return now_stored ? std::move(*now_stored) : std::move(s);
    }

    // ---- what a watching spawner reports -------------------------------------

    worker_listener listener() {
        worker_listener l;
        l.output = [this](std::string id, worker_ref w, std::string bytes) {
            return on_worker_output(std::move(id), std::move(w), std::move(bytes));
        };
        l.exited = [this](std::string id, worker_ref w, worker_exit how) {
            return on_worker_exit(std::move(id), std::move(w), how);
        };
        return l;
    }

    // Only into the log of the session this worker belongs to: bytes an old
    // worker wrote as it was stopped must not reach a new session under the
    // same id. (Before the worker is recorded, its session is initializing.)
    awaitable<void> on_worker_output(std::string id, worker_ref w, std::string bytes) {
        if constexpr (output_log<Store>) {
            auto current = co_await store_.get(id);
            if (!current) co_return;
            const bool ours = current->worker ? *current->worker == w
                                              : current->status == session_status::initializing;
            if (ours) co_await store_.append_output(id, bytes);
        }
    }

    // A worker ended by itself. If start_worker has not recorded it on its
    // session yet, it is left in early_exits_ and start_worker ends the
    // session once it has; whichever of the two takes the entry acts.
    awaitable<void> on_worker_exit(std::string id, worker_ref w, worker_exit how) {
        {
            std::lock_guard lock(exits_mutex_);
            // Entries no start_worker took (its spawn failed after the exit
            // was reported) are dropped once they are older than any spawn.
            const auto now = std::chrono::steady_clock::now();
            std::erase_if(early_exits_, [&](const auto& kv) { return now - kv.second.at > 2 * options_.spawn_timeout; });
            early_exits_.insert_or_assign(w.id, early_exit{how, now});
        }
        auto current = co_await store_.get(id);
        if (current && current->status == session_status::initializing && !current->worker) co_return;
        if (auto mine = take_early_exit(w.id)) co_await end_for_exit(id, w, *mine);
    }

    std::optional<worker_exit> take_early_exit(const std::string& worker_id) {
        std::lock_guard lock(exits_mutex_);
        auto it = early_exits_.find(worker_id);
        if (it == early_exits_.end()) return std::nullopt;
        worker_exit how = it->second.how;
        early_exits_.erase(it);
        return how;
    }

    // Exit code 0 ends the session as terminated, anything else as failed;
    // either way with reason worker_exited and a worker_exited event.
    awaitable<void> end_for_exit(std::string id, worker_ref w, worker_exit how) {
        const session_status final_status = how.success() ? session_status::terminated : session_status::failed;
        std::string reason = "worker_exited";  // named: GCC 12, see doc/decisions.md
        boost::json::object detail{{"exit_code", how.exit_code}, {"signal", how.signal}};
        co_await end_for_worker(std::move(id), std::move(w), final_status, std::move(reason), std::move(detail));
    }

    // Ends the session if it still has worker `w`, announcing it with a
    // worker_exited event (kind, worker, status, reason and `detail`).
    awaitable<bool> end_for_worker(std::string id, worker_ref w, session_status final_status, std::string reason,
                                   boost::json::object detail) {
        for (int attempt = 0; attempt < options_.max_cas_attempts; ++attempt) {
            auto current = co_await store_.get(id);
            // Ended already, or a new session under this id: not ours to end.
            if (!current || is_final(current->status) || current->worker != w) co_return false;
            auto out = co_await end_session(id, reason, final_status, current->version, true);
            if (out.result == update_result::updated) {
                // Announced by whoever ended it, once (after its `terminated`).
                boost::json::object data = detail;
                data["kind"] = w.kind;
                data["worker"] = w.id;
                data["status"] = to_string(final_status);
                data["reason"] = reason;
                emit(event_type::worker_exited, *out.record, std::move(data));
                // What is left of it goes too (a stopped container); a
                // failure here is the janitor's reconciliation's to finish.
                try {
                    co_await spawner_.stop(w, options_.stop_grace);
                } catch (...) {
                }
                co_return true;
            }
            if (out.result != update_result::version_conflict) co_return false;
        }
        co_return false;
    }

    void emit_status_change(const session& from, const session& to) noexcept {
        emit(event_type::status_changed, to,
             {{"from", to_string(from.status)}, {"to", to_string(to.status)}});
    }

    static void check_duration(std::string_view what, std::optional<milliseconds> d) {
        if (d && (*d <= milliseconds::zero() || *d > max_duration))
            throw_error(error::invalid_argument,
                        std::string(what) + " must be positive and at most 100 years, got " +
                            std::to_string(d->count()) + " ms");
    }

    [[noreturn]] void contention(std::string_view op, std::string_view id) const {
        throw_error(error::contention, "registry." + std::string(op) + ": session '" +
                                           std::string(id) + "' changed " +
                                           std::to_string(options_.max_cas_attempts) +
                                           " times while we tried to update it");
    }

    Store& store_;
    registry_options options_;
    Clock clock_;
    Sink sink_;
    // Before spawner_: a spawner's watchers may report until it is destroyed.
    std::mutex exits_mutex_;
    struct early_exit {
        worker_exit how;
        std::chrono::steady_clock::time_point at;
    };
    std::unordered_map<std::string, early_exit> early_exits_;  ///< by worker id
    Spawner spawner_;
};

/// The common composition: system clock, no events, no workers.
template <session_store Store>
using basic_registry = session_registry<Store>;

} // namespace sessionkit

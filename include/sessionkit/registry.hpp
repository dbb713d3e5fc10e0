// sessionkit/registry.hpp — the session registry: the API applications use.
//
// basic_session_registry<Store, Clock, Sink, Spawner> composes the parts: the
// store keeps the state, the clock sets deadlines, the sink hears every
// lifecycle event, the spawner gives each session its worker. The registry
// itself is stateless apart from its options, so any number of registries
// (threads, processes, hosts) may share one store.
//
// How it is built (registry/detail/): the transition planners decide each
// write and its events from the record as read (transitions.hpp, pure);
// one compare-and-swap loop carries the plans out (cas.hpp); the worker's
// spawn, the wait for another creator's worker and the spawner's reports
// are the worker lifecycle (worker_lifecycle.hpp). This header is the API
// and the glue.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/concepts.hpp>
#include <sessionkit/detail/wake_signal.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/outbox.hpp>
#include <sessionkit/output.hpp>
#include <sessionkit/registry/detail/cas.hpp>
#include <sessionkit/registry/detail/transitions.hpp>
#include <sessionkit/registry/detail/worker_lifecycle.hpp>
#include <sessionkit/registry_types.hpp>
#include <sessionkit/sink/null.hpp>
#include <sessionkit/spawner/none.hpp>
#include <sessionkit/status.hpp>

#include <boost/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sessionkit {

namespace detail {
template <class P>
constexpr bool spawns_workers() {
    if constexpr (requires { P::spawns_workers; })
        return P::spawns_workers;
    else
        return true;
}
}  // namespace detail

template <session_store Store, session_clock Clock = system_clock_policy, event_sink Sink = null_sink,
          spawner Spawner = no_spawner>
class basic_session_registry {
public:
    using store_type = Store;
    using clock_type = Clock;
    using sink_type = Sink;
    using spawner_type = Spawner;

    explicit basic_session_registry(Store& store, registry_options options = {}, Clock clock = {}, Sink sink = {},
                                    Spawner spawner = {})
        : store_(store), options_(std::move(options)), clock_(std::move(clock)), sink_(std::move(sink)),
          spawner_(std::move(spawner)) {
        check_duration("registry_options.idle_timeout", options_.idle_timeout);
        check_duration("registry_options.max_lifetime", options_.max_lifetime);
        check_duration("registry_options.stop_grace", options_.stop_grace);
        check_duration("registry_options.stop_lease", options_.stop_lease);
        check_duration("registry_options.spawn_timeout", options_.spawn_timeout);
        if (options_.max_cas_attempts < 1)
            throw_error(error::invalid_argument, "registry_options.max_cas_attempts must be at least 1");
        if constexpr (watching_spawner<Spawner>) spawner_.watch(lifecycle_.listener());
    }

    // A watching spawner calls back into this registry: it must not move.
    basic_session_registry(const basic_session_registry&) = delete;
    basic_session_registry& operator=(const basic_session_registry&) = delete;

    /// Get-or-create: returns the live session `id`, touched, or creates
    /// it. However many callers acquire one id at once, in however many
    /// processes, exactly one creates it (and emits `created`). A session
    /// being stopped is returned as it is (status stopping).
    awaitable<acquire_result> acquire(std::string_view id) { return acquire(id, acquire_options()); }
    awaitable<acquire_result> acquire(std::string_view id, acquire_options opts) {
        check_id(id);
        check_duration("acquire: idle_timeout", opts.idle_timeout);
        check_duration("acquire: max_lifetime", opts.max_lifetime);
        // Not the compare-and-swap loop: acquire writes with the store's
        // create-if-absent and touch, which make or mark the session in one
        // round trip each, and never with a versioned update.
        for (int attempt = 0; attempt < options_.max_cas_attempts; ++attempt) {
            const session fresh = detail::new_record(id, opts, clock_.now(), options_, spawns());
            auto made = co_await create_with_event(fresh);
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
                        auto ready = co_await lifecycle_.await_worker(std::move(made.record));
                        if (!ready) continue;  // it failed or ended meanwhile: create anew
                        co_return acquire_result{std::move(*ready), false};
                    }
                }
                co_return acquire_result{std::move(made.record), false};
            }
            if (!writes_events(store_)) emit(event_type::created, made.record, {{"owner", made.record.owner}});
            if constexpr (detail::spawns_workers<Spawner>()) {
                if (spawns()) {
                    // Named, not awaited inside the braces: GCC 12 mishandles
                    // co_await within an aggregate initialiser.
                    session started = co_await lifecycle_.start_worker_locked(std::move(made.record));
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
        auto planner = [&](const std::optional<session>& current) {
            return detail::plan_modify(id, current, mutate, expected_version);
        };
        auto out = co_await detail::drive<modify_outcome>(*this, std::string(id), std::nullopt, std::move(planner));
        if (out.answer) co_return std::move(*out.answer);
        if (out.written) co_return modify_outcome{update_result::updated, std::move(out.written)};
        if (out.lost) {
            auto now_stored = co_await store_.get(id);
            co_return modify_outcome{*out.lost, std::move(now_stored)};
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
        co_return co_await end_session(id, std::move(reason), final_status, expected_version);
    }

    awaitable<session_page> list(list_query query) {
        if (query.limit == 0 || query.limit > max_page_size)
            throw_error(error::invalid_argument, "list: limit must be between 1 and " + std::to_string(max_page_size) +
                                                     ", got " + std::to_string(query.limit));
        co_return co_await store_.list(query);
    }

    awaitable<store_stats> stats() { co_return co_await store_.stats(); }
    awaitable<void> ping() { co_await store_.ping(); }

    /// Writes `bytes` to the input of the session's worker (a process's
    /// stdin), then touches the session (input is use) with an input_sent
    /// event (the byte count) in the same write. Errors, each naming
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
            // The input is delivered: record it (touch + input_sent). Only
            // a session that keeps changing under us leaves it unrecorded.
            const std::size_t sent = bytes.size();
            const session delivered_to = *current;
            auto planner = [&](const std::optional<session>& now_stored) {
                return detail::plan_input_sent(now_stored, delivered_to, sent, clock_.now());
            };
            auto out =
                co_await detail::drive<std::monostate>(*this, std::string(id), std::move(current), std::move(planner));
            if (out.exhausted) contention("send_input", id);
        } else {
            throw_error(error::invalid_argument,
                        who + ": the '" + std::string(spawner_.kind()) + "' spawner's workers take no input");
        }
    }

    /// Up to `max` bytes of the session's output from `offset` (see
    /// output.hpp). not_found when there is no such session;
    /// invalid_argument for an offset past the end, or when the store keeps
    /// no output.
    awaitable<output_chunk> read_output(std::string_view id, std::uint64_t offset, std::size_t max = max_output_read) {
        check_id(id);
        if constexpr (output_log<Store>) {
            auto chunk = co_await store_.read_output(id, offset, max);
            if (!chunk) throw_error(error::not_found, "read_output: session '" + std::string(id) + "'");
            co_return std::move(*chunk);
        } else {
            throw_error(error::invalid_argument,
                        "read_output: session '" + std::string(id) + "': this store keeps no worker output");
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
        co_return co_await lifecycle_.end_for_worker(std::move(id), std::move(worker), session_status::failed,
                                                     std::move(reason), std::move(no_detail));
    }

    /// Finishes a session a janitor claimed (claim_expired's answer, so
    /// stopping): stops its worker, writes it terminated with `ended_at =
    /// now`, compare-and-swap on the claimed version, and emits `expired`
    /// (reason, last_active). False when another write landed since (a
    /// terminate, a later claim): theirs is the event. The janitor's way of
    /// ending sessions; what the worker's stop throws propagates.
    awaitable<bool> end_claimed(const session& claimed, time_point now) {
        detail::end_request req;
        req.cause = detail::end_cause::expiry;
        req.final_status = session_status::terminated;
        auto planner = [&](const std::optional<session>& current) {
            return detail::plan_end(current, req, now, options_.stop_lease);
        };
        auto out = co_await detail::drive<modify_outcome>(*this, claimed.id, claimed, std::move(planner));
        co_return out.written.has_value();
    }

    /// Whether sessions get workers: fixed by the spawner's type, or (for
    /// any_spawner) by the spawner chosen at run time.
    bool spawns() const noexcept {
        if constexpr (requires(const Spawner& p) {
                          { p.spawns_workers() } -> std::convertible_to<bool>;
                      })
            return spawner_.spawns_workers();
        else
            return detail::spawns_workers<Spawner>();
    }

    /// Notified after this process appended worker output to the store or
    /// ended a session whose worker exited: what followers of an output
    /// (sessiond's ?follow=1) wait on, with a bounded poll for other
    /// processes' writes.
    detail::wake_signal& output_signal() noexcept { return output_signal_; }

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
    // terminate(), end() and set_status(final): the ending protocol
    // (detail::plan_end) driven by the compare-and-swap loop. Only the
    // writer whose write lands emits.
    awaitable<modify_outcome> end_session(std::string_view id, std::string reason, session_status final_status,
                                          std::optional<std::uint64_t> expected_version) {
        detail::end_request req;
        req.final_status = final_status;
        req.reason = std::move(reason);
        // After our own intent landed, a lost commit means someone wrote
        // since: the re-read then differs from expected_version whichever
        // of the two versions is compared, so it needs no update.
        req.expected_version = expected_version;
        auto planner = [&](const std::optional<session>& current) {
            return detail::plan_end(current, req, clock_.now(), options_.stop_lease);
        };
        auto out = co_await detail::drive<modify_outcome>(*this, std::string(id), std::nullopt, std::move(planner));
        if (out.answer) co_return std::move(*out.answer);
        if (out.written) co_return modify_outcome{update_result::updated, std::move(out.written)};
        contention("end", id);
    }

    // create(), carrying its `created` event into the store's outbox when
    // it has one (then it exists exactly when the session was created).
    awaitable<create_result> create_with_event(const session& fresh) {
        if constexpr (outbox_store<Store>) {
            if (store_.has_outbox()) {
                std::vector<event> events{
                    make_event(event_type::created, fresh.id, clock_.now(), {{"owner", fresh.owner}})};
                co_return co_await store_.create(fresh, events);
            }
        }
        co_return co_await store_.create(fresh);
    }

    static void check_duration(std::string_view what, std::optional<milliseconds> d) {
        if (d && (*d <= milliseconds::zero() || *d > max_duration))
            throw_error(error::invalid_argument, std::string(what) + " must be positive and at most 100 years, got " +
                                                     std::to_string(d->count()) + " ms");
    }

    [[noreturn]] void contention(std::string_view op, std::string_view id) const {
        detail::throw_contention(op, id, options_.max_cas_attempts);
    }

    Store& store_;
    registry_options options_;
    Clock clock_;
    Sink sink_;
    detail::wake_signal output_signal_;
    // Before spawner_: a spawner's watchers may report until it is destroyed.
    detail::worker_lifecycle<basic_session_registry> lifecycle_{*this};
    Spawner spawner_;
};

/// The common composition: system clock, no events, no workers. Name the
/// parts with basic_session_registry<Store, Clock, Sink, Spawner> (the
/// Asio and Beast convention: basic_X is the template, X its defaults).
template <session_store Store>
using session_registry = basic_session_registry<Store>;

}  // namespace sessionkit

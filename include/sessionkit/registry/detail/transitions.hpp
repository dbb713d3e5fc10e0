// sessionkit/registry/detail/transitions.hpp — the registry's transition
// planners: from the record as read (or none) and a request to a plan.
//
// Pure functions, no store, no clock, no executor: `now` and the options
// come in as arguments. Each says what a registry operation does to one
// record — the answer when there is nothing to write, the refusal when the
// transition table forbids it, else the write (and the ending protocol's
// intent and worker stop) with the events it implies. The compare-and-swap
// loop (cas.hpp) carries the plan out and plans again from a fresh read
// when a write loses. test/unit/registry_transitions_test.cpp covers every
// starting status of every planner.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/registry/detail/plan.hpp>
#include <sessionkit/registry_types.hpp>
#include <sessionkit/session.hpp>
#include <sessionkit/status.hpp>
#include <sessionkit/store_types.hpp>

#include <boost/json/object.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sessionkit::detail {

/// The same session, not a newer one under its id. Stores keep times to
/// the millisecond, so that is the precision compared.
inline bool same_session(const session& a, const session& b) noexcept {
    return to_unix_ms(a.created_at) == to_unix_ms(b.created_at);
}

/// The record acquire() creates for `id` at `now`: initializing when the
/// spawner makes workers (its worker is started next), else active.
inline session new_record(std::string_view id, const acquire_options& opts, time_point now,
                          const registry_options& options, bool spawns) {
    session s;
    s.id = std::string(id);
    s.owner = opts.owner;
    s.status = spawns ? session_status::initializing : session_status::active;
    s.created_at = now;
    s.last_active = now;
    s.idle_timeout = opts.idle_timeout.value_or(options.idle_timeout);
    if (auto life = opts.max_lifetime ? opts.max_lifetime : options.max_lifetime) s.absolute_deadline = now + *life;
    s.idle_deadline = sliding_deadline(s, now);
    s.attributes = opts.attributes;
    return s;
}

inline planned_event status_changed(session_status from, session_status to) {
    return {event_type::status_changed, {{"from", to_string(from)}, {"to", to_string(to)}}};
}

// ---- modify ---------------------------------------------------------------------

/// modify(): `mutate` edits a copy; only status (to a live one, by the
/// table), attributes and unknown fields are taken from it. A session that
/// is stopping or final is not changed any more; initializing is left only
/// through its worker's start; stopping and final statuses are set by the
/// ending protocol, which also stops the worker.
inline plan<modify_outcome> plan_modify(std::string_view id, const std::optional<session>& current,
                                        const std::function<void(session&)>& mutate,
                                        std::optional<std::uint64_t> expected_version) {
    using p = plan<modify_outcome>;
    if (!current) return p::answered({update_result::not_found, std::nullopt});
    if (is_final(current->status) || current->status == session_status::stopping)
        return p::answered({update_result::final_state, current});
    if (expected_version && current->version != *expected_version)
        return p::answered({update_result::version_conflict, current});
    session edited = *current;
    mutate(edited);
    const session_status from = current->status, to = edited.status;
    const std::string who = "session '" + std::string(id) + "'";
    if (!can_transition(from, to))
        return p::refuse(error::invalid_transition, who + ": cannot change status from " +
                                                        std::string(to_string(from)) + " to " +
                                                        std::string(to_string(to)));
    // A status set by hand while the worker starts would let the session
    // claim to run with no worker.
    if (from == session_status::initializing && to != from)
        return p::refuse(error::invalid_transition,
                         who + ": cannot change status from initializing to " + std::string(to_string(to)) +
                             ": it leaves initializing when its worker has started (or failed to)");
    if (to != from && (is_final(to) || to == session_status::stopping))
        return p::refuse(error::invalid_argument,
                         "modify: " + who + ": " + std::string(to_string(to)) +
                             " is set by terminate() and the janitor, which also stop the worker");
    planned_write w{*current, {}};
    w.record.status = to;
    w.record.attributes = std::move(edited.attributes);
    w.record.extra = std::move(edited.extra);
    if (to != from) w.events.push_back(status_changed(from, to));
    // With an expected version, any other write since is the caller's to see.
    return p::write(std::move(w), expected_version ? if_lost::give_up : if_lost::replan_on_conflict);
}

// ---- ending ---------------------------------------------------------------------

/// Who ends a session: it decides the events, and whether the worker is
/// stopped (it is gone when it ended by itself).
enum class end_cause : std::uint8_t {
    request,      ///< terminate(), end(), set_status(final): `terminated`
    expiry,       ///< a janitor finishing the session it claimed: `expired`
    worker_exit,  ///< its worker ended or was lost: `terminated`, then `worker_exited`
};

struct end_request {
    end_cause cause = end_cause::request;
    session_status final_status = session_status::terminated;
    std::string reason;
    /// request: end it only if it is still at this version.
    std::optional<std::uint64_t> expected_version;
    /// worker_exit: the worker that ended; a session without it is not ended.
    std::optional<worker_ref> worker;
    /// worker_exit: what the worker_exited event says besides kind, worker,
    /// status and reason (exit_code and signal).
    boost::json::object exit_detail;
};

/// `from` in its final status at `now`. Whoever began ending it first names
/// the reason: a session a janitor already claimed as idle stays "idle".
inline session final_record(session from, session_status final_status, const std::string& reason, time_point now) {
    from.status = final_status;
    from.ended_at = now;
    if (from.end_reason.empty()) from.end_reason = reason;
    return from;
}

/// Ending a session. Answers (nothing written): not_found when there is no
/// record (or, for a worker's exit, when the session no longer has that
/// worker); final_state with the record when it has ended already;
/// version_conflict with the record when it is not at expected_version.
///
/// On request, a session with a worker first records the intent (stopping,
/// with a lease of `stop_lease`, so that a janitor finishes the job if we
/// die), then its worker is stopped, then the final status is written; one
/// already stopping skips the intent. A janitor's expiry starts from its
/// claim (already stopping) and loses to any other write; a worker's exit
/// has no worker left to stop.
inline plan<modify_outcome> plan_end(const std::optional<session>& current, const end_request& req, time_point now,
                                     milliseconds stop_lease) {
    using p = plan<modify_outcome>;
    if (!current) return p::answered({update_result::not_found, std::nullopt});
    if (is_final(current->status)) return p::answered({update_result::final_state, current});
    if (req.expected_version && current->version != *req.expected_version)
        return p::answered({update_result::version_conflict, current});
    if (req.cause == end_cause::worker_exit && current->worker != req.worker)
        return p::answered({update_result::not_found, current});  // a new session under this id: not ours

    p out;
    session next = *current;
    if (req.cause == end_cause::request && current->worker) {
        if (current->status != session_status::stopping) {
            next.status = session_status::stopping;
            next.idle_deadline = now + stop_lease;
            next.end_reason = req.reason;
            out.intent = planned_write{next, {status_changed(current->status, session_status::stopping)}};
            next.version += 1;  // the commit follows our own intent
        }
        out.stop_worker = current->worker;
    } else if (req.cause == end_cause::expiry) {
        out.stop_worker = current->worker;
    }

    planned_write commit{final_record(std::move(next), req.final_status, req.reason, now), {}};
    const session& done = commit.record;
    if (req.cause == end_cause::expiry) {
        commit.events.push_back(
            {event_type::expired, {{"reason", done.end_reason}, {"last_active", to_unix_ms(done.last_active)}}});
    } else {
        commit.events.push_back({event_type::terminated,
                                 {{"reason", done.end_reason},
                                  {"from", to_string(current->status)},
                                  {"status", to_string(req.final_status)}}});
    }
    if (req.cause == end_cause::worker_exit) {
        // Announced by whoever ended it, once, after its `terminated`.
        boost::json::object data = req.exit_detail;
        data["kind"] = req.worker->kind;
        data["worker"] = req.worker->id;
        data["status"] = to_string(req.final_status);
        data["reason"] = req.reason;
        commit.events.push_back({event_type::worker_exited, std::move(data)});
    }
    out.commit = std::move(commit);
    // A janitor's claim is its only right to end the session: if another
    // write landed since (a terminate, a later claim), theirs is the event.
    out.on_lost = req.cause == end_cause::expiry ? if_lost::give_up : if_lost::replan;
    return out;
}

// ---- the worker's start -----------------------------------------------------------

/// Still the session `spawned_for` started a worker for, still waiting
/// for one (initializing, none recorded)?
inline bool awaits_its_worker(const std::optional<session>& current, const session& spawned_for) noexcept {
    return current && current->status == session_status::initializing && !current->worker &&
           same_session(*current, spawned_for);
}

/// Recording the worker that was started for `spawned_for`: the session
/// becomes active with it. Answers (monostate) when the record is no
/// longer that session waiting for its worker: it ended meanwhile, or is a
/// newer session under the id.
inline plan<std::monostate> plan_worker_recorded(const std::optional<session>& current, const session& spawned_for,
                                                 const std::optional<worker_ref>& worker) {
    using p = plan<std::monostate>;
    if (!awaits_its_worker(current, spawned_for)) return p::answered({});
    planned_write w{*current, {}};
    w.record.worker = worker;
    w.record.status = session_status::active;
    if (worker) w.events.push_back({event_type::worker_started, {{"kind", worker->kind}, {"worker", worker->id}}});
    w.events.push_back(status_changed(current->status, session_status::active));
    // Waiters touch the record while it starts: write onto the fresh one.
    return p::write(std::move(w), if_lost::replan_on_conflict);
}

/// A spawn that failed with `message`: no half-made session, it is failed
/// (reason spawn_failed) with the spawner's words in its event. Answers
/// when the record is no longer that session initializing.
inline plan<std::monostate> plan_spawn_failed(const std::optional<session>& current, const session& spawned_for,
                                              const std::string& message, time_point now) {
    using p = plan<std::monostate>;
    if (!current || current->status != session_status::initializing || !same_session(*current, spawned_for))
        return p::answered({});
    planned_write w{*current, {}};
    w.record.status = session_status::failed;
    w.record.ended_at = now;
    w.record.end_reason = "spawn_failed";
    w.events.push_back(
        {event_type::status_changed, {{"from", to_string(current->status)}, {"to", "failed"}, {"error", message}}});
    return p::write(std::move(w), if_lost::replan_on_conflict);
}

// ---- input ----------------------------------------------------------------------

/// `bytes` of input reached the worker of `delivered_to` at `now`: the
/// session is touched (input is use) and an input_sent event says how many
/// bytes (never which). Answers (monostate) when the record is gone, ended,
/// stopping, or a newer session under the id: the input went to a worker
/// that is ending, and there is nothing live to touch.
inline plan<std::monostate> plan_input_sent(const std::optional<session>& current, const session& delivered_to,
                                            std::size_t bytes, time_point now) {
    using p = plan<std::monostate>;
    if (!current || is_final(current->status) || current->status == session_status::stopping ||
        !same_session(*current, delivered_to))
        return p::answered({});
    planned_write w{*current, {}};
    // As a touch does: time never goes backwards, and a moved deadline
    // may be warned about again.
    w.record.last_active = std::max(current->last_active, now);
    const time_point deadline = std::max(current->idle_deadline, sliding_deadline(*current, now));
    if (deadline != current->idle_deadline) w.record.warning_sent = false;
    w.record.idle_deadline = deadline;
    w.events.push_back({event_type::input_sent, {{"bytes", bytes}}});
    return p::write(std::move(w), if_lost::replan);
}

}  // namespace sessionkit::detail

// sessionkit/registry/detail/plan.hpp — what a transition planner decides:
// an answer, a refusal, or the writes to attempt with the events they imply.
//
// A plan is data. The planners (transitions.hpp) build it from the record
// as read, without I/O; the compare-and-swap loop (cas.hpp) carries it
// out. Events ride with the write that implies them and are emitted only
// once that write has landed, in their order here: so a later store can
// take a write and its events in one transaction (an outbox) without the
// planners changing.
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/event.hpp>
#include <sessionkit/session.hpp>

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sessionkit::detail {

/// An event a transition implies: its type and data, about the record the
/// write leaves (its session id).
struct planned_event {
    event_type type{};
    boost::json::object data;
};

/// One compare-and-swap write: `record` replaces the stored record if that
/// is still at record.version (the version it was read at); it is then
/// stored as version + 1, and `events` go out, in order.
struct planned_write {
    session record;
    std::vector<planned_event> events;

    /// The record as stored once the write has landed.
    session written() const {
        session s = record;
        s.version = record.version + 1;
        return s;
    }
};

/// An input the transition rules forbid: thrown as `code` with `message`.
struct refusal {
    error code{};
    std::string message;
};

/// What the loop does when a write of the plan loses its compare-and-swap.
enum class if_lost : std::uint8_t {
    replan,              ///< read again and plan again, whatever the store said
    replan_on_conflict,  ///< read and plan again on version_conflict; otherwise stop (the caller sees the store's answer)
    give_up,             ///< stop at once: someone else's write wins (the caller sees the store's answer)
};

/// A planner's decision. Exactly one of: `answer` (return it, write
/// nothing), `refused` (throw it), or `commit` (write it), with optionally
/// before the commit an `intent` written first and a worker to stop between
/// the two (the ending protocol: record that the session is stopping, stop
/// its worker, record the end).
template <class Answer>
struct plan {
    std::optional<Answer> answer;
    std::optional<refusal> refused;
    std::optional<planned_write> intent;
    std::optional<worker_ref> stop_worker;
    std::optional<planned_write> commit;
    if_lost on_lost = if_lost::replan;

    static plan answered(Answer a) {
        plan p;
        p.answer = std::move(a);
        return p;
    }
    static plan refuse(error code, std::string message) {
        plan p;
        p.refused = refusal{code, std::move(message)};
        return p;
    }
    static plan write(planned_write w, if_lost lost) {
        plan p;
        p.commit = std::move(w);
        p.on_lost = lost;
        return p;
    }
};

}  // namespace sessionkit::detail

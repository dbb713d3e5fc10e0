// sessionkit/registry/detail/cas.hpp — the one compare-and-swap loop that
// carries out the transition planners' plans against a store.
//
// read → plan → write (compare-and-swap on the version read) → on a lost
// write, as the plan says: read again and plan again, or stop. Events of a
// write go with it into the store's outbox when it has one (appended only
// if the write lands: outbox.hpp), else out through the sink once it has
// landed (best effort). After max_cas_attempts lost writes
// the caller decides what that means (error::contention, or for a worker's
// exit simply "not ended"): the loop reports it as `exhausted`.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/outbox.hpp>
#include <sessionkit/registry/detail/plan.hpp>
#include <sessionkit/session.hpp>
#include <sessionkit/store_types.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sessionkit::detail {

/// error::contention: `attempts` writes to session `id` lost their
/// compare-and-swap in operation `op` (acquire, modify, end, ...).
[[noreturn]] inline void throw_contention(std::string_view op, std::string_view id, int attempts) {
    throw_error(error::contention, "registry." + std::string(op) + ": session '" + std::string(id) + "' changed " +
                                       std::to_string(attempts) + " times while we tried to update it");
}

/// Writes `w` with compare-and-swap. With an outbox, its events are built
/// by `make(session_id, planned_event&)` and go with the write; otherwise
/// `emit(record_left, planned_event&)` sends them once it has landed.
template <session_store Store, class MakeEvent, class Emit>
awaitable<update_result> write_planned(Store& store, planned_write& w, MakeEvent& make, Emit& emit) {
    if constexpr (outbox_store<Store>) {
        if (store.has_outbox()) {
            std::vector<event> events;
            events.reserve(w.events.size());
            for (auto& e : w.events) events.push_back(make(w.record.id, e));
            co_return co_await store.update(w.record, w.record.version, events);
        }
    }
    const update_result r = co_await store.update(w.record, w.record.version);
    if (r == update_result::updated) {
        const session left = w.written();
        for (auto& e : w.events) emit(left, e);
    }
    co_return r;
}

/// How a driven plan ended; exactly one is set (or `exhausted`).
template <class Answer>
struct cas_outcome {
    std::optional<Answer> answer;       ///< the planner answered: nothing (more) to write
    std::optional<session> written;     ///< the commit landed: the record as stored now
    std::optional<update_result> lost;  ///< a write lost and the plan said stop: the store's answer
    bool exhausted = false;             ///< max_attempts writes lost and the planner still wants to write
};

/// Drives `planner` (std::optional<session> → plan<Answer>) for session
/// `id`. The first attempt plans from `known` when given (a claim's
/// answer, the record a creator made: no read), else reads. Events go as
/// write_planned says (`make` builds one for an outbox, `emit` sends one
/// about the record a write left); `stop_worker(worker_ref)` is the awaitable that stops a worker between
/// a plan's intent and its commit. A refusal is thrown as its error.
///
/// A lost write is followed by one read and one plan even on the last
/// attempt: the session may have ended meanwhile, which is an answer, not
/// contention.
template <class Answer, session_store Store, class Planner, class MakeEvent, class Emit, class StopWorker>
awaitable<cas_outcome<Answer>> run_cas(Store& store, std::string id, int max_attempts, std::optional<session> known,
                                       Planner planner, MakeEvent make, Emit emit, StopWorker stop_worker) {
    std::optional<session> current;
    if (known)
        current = std::move(known);
    else
        current = co_await store.get(id);
    for (int attempt = 0;; ++attempt) {
        plan<Answer> p = planner(current);
        if (p.refused) throw_error(p.refused->code, p.refused->message);
        if (p.answer) co_return cas_outcome<Answer>{std::move(p.answer), std::nullopt, std::nullopt, false};
        if (attempt == max_attempts) co_return cas_outcome<Answer>{std::nullopt, std::nullopt, std::nullopt, true};
        update_result r = update_result::updated;
        if (p.intent) r = co_await write_planned(store, *p.intent, make, emit);
        if (r == update_result::updated) {
            if (p.stop_worker) co_await stop_worker(*p.stop_worker);
            r = co_await write_planned(store, *p.commit, make, emit);
            if (r == update_result::updated)
                co_return cas_outcome<Answer>{std::nullopt, p.commit->written(), std::nullopt, false};
        }
        const bool again = p.on_lost == if_lost::replan ||
                           (p.on_lost == if_lost::replan_on_conflict && r == update_result::version_conflict);
        if (!again) co_return cas_outcome<Answer>{std::nullopt, std::nullopt, r, false};
        current = co_await store.get(id);
    }
}

/// run_cas with a session_registry's store, options, sink and spawner (only
/// their public accessors): what the registry and its worker lifecycle use.
template <class Answer, class Registry, class Planner>
awaitable<cas_outcome<Answer>> drive(Registry& registry, std::string id, std::optional<session> known,
                                     Planner planner) {
    auto make = [&registry](const std::string& id, planned_event& e) {
        return make_event(e.type, id, registry.clock().now(), std::move(e.data));
    };
    auto emit = [&registry](const session& s, planned_event& e) { registry.emit(e.type, s, std::move(e.data)); };
    auto stop = [&registry](const worker_ref& w) { return registry.spawner().stop(w, registry.options().stop_grace); };
    return run_cas<Answer>(registry.store(), std::move(id), registry.options().max_cas_attempts, std::move(known),
                           std::move(planner), std::move(make), std::move(emit), std::move(stop));
}

}  // namespace sessionkit::detail

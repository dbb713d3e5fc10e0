// The registry's transition planners (registry/detail/transitions.hpp), pure:
// no store, no clock, no executor. Every planner from every starting
// status (and no record at all) to the exact plan: the answer, the
// refusal, or the writes with their events in order.
#include <sessionkit/registry/detail/transitions.hpp>

#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <string>
#include <vector>

using namespace sessionkit;
using namespace sessionkit::detail;
using namespace std::chrono_literals;

namespace {

const time_point t0 = from_unix_ms(1'893'456'000'000);
const time_point now = t0 + 90s;
constexpr milliseconds lease = 60s;
const worker_ref the_worker{"fake", "w-s1"};

constexpr std::array<session_status, session_status_count> all_statuses = {
    session_status::initializing, session_status::active,     session_status::idle,  session_status::waiting_input,
    session_status::stopping,     session_status::terminated, session_status::failed};

session record(session_status status, bool with_worker) {
    session s;
    s.id = "s1";
    s.owner = "alice";
    s.status = status;
    s.created_at = t0;
    s.last_active = t0 + 10s;
    s.idle_timeout = 60s;
    s.idle_deadline = t0 + 70s;
    s.version = 7;
    if (with_worker) s.worker = the_worker;
    if (status == session_status::stopping) s.end_reason = "idle";  // what a claim or a terminate recorded
    if (is_final(status)) {
        s.ended_at = t0 + 20s;
        s.end_reason = "deleted";
    }
    s.attributes = {{"a", 1}};
    return s;
}

// "type{data}" per event, in order: the data's keys in their order too.
std::string describe(const std::vector<planned_event>& events) {
    std::string out;
    for (const auto& e : events) {
        if (!out.empty()) out += ";";
        out += std::string(to_string(e.type)) + boost::json::serialize(e.data);
    }
    return out;
}

std::string name(session_status s) { return std::string(to_string(s)); }

template <class A>
bool only_answer(const plan<A>& p) {
    return p.answer && !p.refused && !p.intent && !p.stop_worker && !p.commit;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(registry_transitions)

// ---- modify ---------------------------------------------------------------------

// What modify does from each status (rows) to each status (columns):
// W writes, F answers final_state (stopping and final records are not
// changed any more), T refuses (invalid_transition, the table), I refuses
// (invalid_transition: initializing is left only through the worker), A
// refuses (invalid_argument: ending is terminate's and the janitor's).
constexpr std::array<const char*, session_status_count> modify_table = {
    //          init active idle wait stopping terminated failed
    "WIIIIII",  // initializing
    "TWWWAAA",  // active
    "TWWWAAA",  // idle
    "TWWWAAA",  // waiting_input
    "FFFFFFF",  // stopping
    "FFFFFFF",  // terminated
    "FFFFFFF",  // failed
};

BOOST_AUTO_TEST_CASE(modify_from_every_status_to_every_status) {
    for (std::size_t f = 0; f < session_status_count; ++f)
        for (std::size_t t = 0; t < session_status_count; ++t) {
            const session_status from = all_statuses[f], to = all_statuses[t];
            const session current = record(from, true);
            std::function<void(session&)> mutate = [to](session& s) {
                s.status = to;
                s.attributes["b"] = 2;
                s.extra["x"] = true;
                s.owner = "mallory";  // not modify's to change: dropped
                s.worker.reset();     // likewise
            };
            for (int expected = 0; expected < 3; ++expected) {  // none, the current version, another
                std::optional<std::uint64_t> version;
                if (expected == 1) version = current.version;
                if (expected == 2) version = current.version - 1;
                BOOST_TEST_CONTEXT(name(from) << " -> " << name(to) << ", expected version case " << expected) {
                    auto p = plan_modify("s1", current, mutate, version);
                    const char what = modify_table[f][t];
                    if (what == 'F') {
                        BOOST_REQUIRE(only_answer(p));
                        BOOST_TEST(to_string(p.answer->result) == "final_state");
                        BOOST_TEST(p.answer->record->version == current.version);
                        continue;
                    }
                    if (expected == 2) {
                        BOOST_REQUIRE(only_answer(p));
                        BOOST_TEST(to_string(p.answer->result) == "version_conflict");
                        BOOST_TEST(p.answer->record->version == current.version);
                        continue;
                    }
                    if (what == 'T' || what == 'I' || what == 'A') {
                        BOOST_REQUIRE(p.refused);
                        BOOST_TEST(!p.commit);
                        std::string message;
                        if (what == 'T')
                            message = "session 's1': cannot change status from " + name(from) + " to " + name(to);
                        if (what == 'I')
                            message = "session 's1': cannot change status from initializing to " + name(to) +
                                      ": it leaves initializing when its worker has started (or failed to)";
                        if (what == 'A')
                            message = "modify: session 's1': " + name(to) +
                                      " is set by terminate() and the janitor, which also stop the worker";
                        BOOST_TEST(
                            (p.refused->code == (what == 'A' ? error::invalid_argument : error::invalid_transition)));
                        BOOST_TEST(p.refused->message == message);
                        continue;
                    }
                    BOOST_REQUIRE(what == 'W');
                    BOOST_REQUIRE(p.commit);
                    BOOST_TEST(!p.answer);
                    BOOST_TEST(!p.intent);
                    BOOST_TEST(!p.stop_worker);
                    const session& w = p.commit->record;
                    BOOST_TEST(name(w.status) == name(to));
                    BOOST_TEST(w.version == current.version);  // compare-and-swap on the version read
                    BOOST_TEST(p.commit->written().version == current.version + 1);
                    BOOST_TEST(boost::json::serialize(w.attributes) == R"({"a":1,"b":2})");
                    BOOST_TEST(boost::json::serialize(w.extra) == R"({"x":true})");
                    BOOST_TEST(w.owner == "alice");
                    BOOST_TEST((w.worker == the_worker));
                    BOOST_TEST(describe(p.commit->events) == (from == to ? std::string()
                                                                         : R"(status_changed{"from":")" + name(from) +
                                                                               R"(","to":")" + name(to) + R"("})"));
                    BOOST_TEST((p.on_lost == (version ? if_lost::give_up : if_lost::replan_on_conflict)));
                }
            }
        }
}

BOOST_AUTO_TEST_CASE(modify_of_no_record_is_not_found_and_mutates_nothing) {
    bool called = false;
    std::function<void(session&)> mutate = [&](session&) { called = true; };
    for (std::optional<std::uint64_t> version : {std::optional<std::uint64_t>{}, std::optional<std::uint64_t>{3}}) {
        auto p = plan_modify("s1", std::nullopt, mutate, version);
        BOOST_REQUIRE(only_answer(p));
        BOOST_TEST(to_string(p.answer->result) == "not_found");
        BOOST_TEST(!p.answer->record);
    }
    BOOST_TEST(!called);
}

// ---- ending on request (terminate, end, set_status to a final status) ------------

BOOST_AUTO_TEST_CASE(ending_on_request_from_every_status) {
    for (session_status from : all_statuses)
        for (bool with_worker : {false, true})
            for (session_status final_status : {session_status::terminated, session_status::failed})
                for (int expected = 0; expected < 3; ++expected)
                    BOOST_TEST_CONTEXT(name(from) << (with_worker ? " with" : " without") << " a worker, to "
                                                  << name(final_status) << ", expected version case " << expected) {
                        const session current = record(from, with_worker);
                        end_request req;
                        req.final_status = final_status;
                        req.reason = "logout";
                        if (expected == 1) req.expected_version = current.version;
                        if (expected == 2) req.expected_version = current.version + 1;
                        auto p = plan_end(current, req, now, lease);
                        if (is_final(from)) {
                            BOOST_REQUIRE(only_answer(p));
                            BOOST_TEST(to_string(p.answer->result) == "final_state");
                            BOOST_TEST(p.answer->record->end_reason == "deleted");
                            continue;
                        }
                        if (expected == 2) {
                            BOOST_REQUIRE(only_answer(p));
                            BOOST_TEST(to_string(p.answer->result) == "version_conflict");
                            continue;
                        }
                        BOOST_REQUIRE(p.commit);
                        BOOST_TEST(!p.answer);
                        BOOST_TEST(!p.refused);
                        BOOST_TEST((p.on_lost == if_lost::replan));
                        // The intent comes first when a worker must be stopped
                        // and nobody has begun stopping it.
                        const bool intent = with_worker && from != session_status::stopping;
                        BOOST_REQUIRE(p.intent.has_value() == intent);
                        if (intent) {
                            const session& s = p.intent->record;
                            BOOST_TEST(name(s.status) == "stopping");
                            BOOST_TEST(s.version == current.version);
                            BOOST_TEST((s.idle_deadline == now + lease));
                            BOOST_TEST(s.end_reason == "logout");
                            BOOST_TEST(!s.ended_at);
                            BOOST_TEST(describe(p.intent->events) ==
                                       R"(status_changed{"from":")" + name(from) + R"(","to":"stopping"})");
                        }
                        BOOST_TEST(p.stop_worker.has_value() == with_worker);
                        if (with_worker) BOOST_TEST((*p.stop_worker == the_worker));
                        const session& done = p.commit->record;
                        BOOST_TEST(name(done.status) == name(final_status));
                        BOOST_TEST(done.version == current.version + (intent ? 1 : 0));  // after our own intent
                        BOOST_TEST((done.ended_at == now));
                        // Whoever began ending it names why: a claimed session stays "idle".
                        const std::string reason = from == session_status::stopping ? "idle" : "logout";
                        BOOST_TEST(done.end_reason == reason);
                        BOOST_TEST(describe(p.commit->events) == R"(terminated{"reason":")" + reason + R"(","from":")" +
                                                                     name(from) + R"(","status":")" +
                                                                     name(final_status) + R"("})");
                    }
}

BOOST_AUTO_TEST_CASE(ending_no_record_is_not_found_whoever_asks) {
    for (end_cause cause : {end_cause::request, end_cause::expiry, end_cause::worker_exit}) {
        end_request req;
        req.cause = cause;
        req.worker = the_worker;
        auto p = plan_end(std::nullopt, req, now, lease);
        BOOST_REQUIRE(only_answer(p));
        BOOST_TEST(to_string(p.answer->result) == "not_found");
        BOOST_TEST(!p.answer->record);
    }
}

// ---- a janitor's expiry of the session it claimed --------------------------------

BOOST_AUTO_TEST_CASE(expiry_from_every_status) {
    for (session_status from : all_statuses)
        for (bool with_worker : {false, true})
            BOOST_TEST_CONTEXT(name(from) << (with_worker ? " with" : " without") << " a worker") {
                const session claimed = record(from, with_worker);
                end_request req;
                req.cause = end_cause::expiry;
                auto p = plan_end(claimed, req, now, lease);
                if (is_final(from)) {
                    BOOST_REQUIRE(only_answer(p));
                    BOOST_TEST(to_string(p.answer->result) == "final_state");
                    continue;
                }
                BOOST_REQUIRE(p.commit);
                BOOST_TEST(!p.intent);  // the claim recorded the intent
                BOOST_TEST(p.stop_worker.has_value() == with_worker);
                BOOST_TEST((p.on_lost == if_lost::give_up));  // a later write is someone else's end
                const session& done = p.commit->record;
                BOOST_TEST(name(done.status) == "terminated");
                BOOST_TEST(done.version == claimed.version);
                BOOST_TEST((done.ended_at == now));
                BOOST_TEST(done.end_reason == claimed.end_reason);  // idle, lifetime, or a dead terminate's
                BOOST_TEST(describe(p.commit->events) == R"(expired{"reason":")" + claimed.end_reason +
                                                             R"(","last_active":)" +
                                                             std::to_string(to_unix_ms(claimed.last_active)) + "}");
            }
}

// ---- a worker's exit or loss ------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_workers_exit_from_every_status) {
    enum class has { this_worker, another, none };
    for (session_status from : all_statuses)
        for (has which : {has::this_worker, has::another, has::none})
            for (session_status final_status : {session_status::terminated, session_status::failed})
                BOOST_TEST_CONTEXT(name(from)
                                   << ", worker case " << static_cast<int>(which) << ", to " << name(final_status)) {
                    session current = record(from, which != has::none);
                    if (which == has::another) current.worker = worker_ref{"fake", "w-newer"};
                    end_request req;
                    req.cause = end_cause::worker_exit;
                    req.final_status = final_status;
                    req.reason = "worker_exited";
                    req.worker = the_worker;
                    req.exit_detail = {{"exit_code", 3}, {"signal", 0}};
                    auto p = plan_end(current, req, now, lease);
                    if (is_final(from)) {
                        BOOST_REQUIRE(only_answer(p));
                        BOOST_TEST(to_string(p.answer->result) == "final_state");
                        continue;
                    }
                    if (which != has::this_worker) {  // not this worker's session any more
                        BOOST_REQUIRE(only_answer(p));
                        BOOST_TEST(to_string(p.answer->result) == "not_found");
                        continue;
                    }
                    BOOST_REQUIRE(p.commit);
                    BOOST_TEST(!p.intent);
                    BOOST_TEST(!p.stop_worker);  // it is gone already
                    BOOST_TEST((p.on_lost == if_lost::replan));
                    const session& done = p.commit->record;
                    BOOST_TEST(name(done.status) == name(final_status));
                    BOOST_TEST(done.version == current.version);
                    const std::string reason = from == session_status::stopping ? "idle" : "worker_exited";
                    BOOST_TEST(done.end_reason == reason);
                    BOOST_TEST(
                        describe(p.commit->events) ==
                        R"(terminated{"reason":")" + reason + R"(","from":")" + name(from) + R"(","status":")" +
                            name(final_status) +
                            R"("};worker_exited{"exit_code":3,"signal":0,"kind":"fake","worker":"w-s1","status":")" +
                            name(final_status) + R"(","reason":"worker_exited"})");
                }
}

// ---- the worker's start -----------------------------------------------------------

BOOST_AUTO_TEST_CASE(recording_the_started_worker_from_every_status) {
    const session spawned_for = record(session_status::initializing, false);
    for (session_status from : all_statuses)
        for (bool has_worker : {false, true})
            for (bool newer : {false, true})
                for (bool got_worker : {false, true})
                    BOOST_TEST_CONTEXT(name(from) << ", recorded worker " << has_worker << ", newer session " << newer
                                                  << ", spawner returned a worker " << got_worker) {
                        std::optional<session> current = record(from, has_worker);
                        current->version = 9;  // touched by waiters meanwhile
                        if (newer) current->created_at = t0 + 1s;
                        std::optional<worker_ref> worker;
                        if (got_worker) worker = the_worker;
                        auto p = plan_worker_recorded(current, spawned_for, worker);
                        if (from != session_status::initializing || has_worker || newer) {
                            BOOST_TEST(only_answer(p));  // ended meanwhile, or not this session: not ours
                            continue;
                        }
                        BOOST_REQUIRE(p.commit);
                        BOOST_TEST(!p.intent);
                        BOOST_TEST((p.on_lost == if_lost::replan_on_conflict));
                        const session& w = p.commit->record;
                        BOOST_TEST(name(w.status) == "active");
                        BOOST_TEST(w.version == 9u);  // onto the fresh record
                        BOOST_TEST((w.worker == worker));
                        BOOST_TEST(describe(p.commit->events) ==
                                   std::string(got_worker ? R"(worker_started{"kind":"fake","worker":"w-s1"};)" : "") +
                                       R"(status_changed{"from":"initializing","to":"active"})");
                    }
    BOOST_TEST(only_answer(plan_worker_recorded(std::nullopt, spawned_for, the_worker)));
}

BOOST_AUTO_TEST_CASE(a_failed_spawn_from_every_status) {
    const session spawned_for = record(session_status::initializing, false);
    for (session_status from : all_statuses)
        for (bool newer : {false, true}) BOOST_TEST_CONTEXT(name(from) << ", newer session " << newer) {
                std::optional<session> current = record(from, false);
                if (newer) current->created_at = t0 + 1s;
                auto p = plan_spawn_failed(current, spawned_for, "image 'nope' not found", now);
                if (from != session_status::initializing || newer) {
                    BOOST_TEST(only_answer(p));
                    continue;
                }
                BOOST_REQUIRE(p.commit);
                BOOST_TEST((p.on_lost == if_lost::replan_on_conflict));
                const session& f = p.commit->record;
                BOOST_TEST(name(f.status) == "failed");
                BOOST_TEST((f.ended_at == now));
                BOOST_TEST(f.end_reason == "spawn_failed");
                BOOST_TEST(describe(p.commit->events) ==
                           R"(status_changed{"from":"initializing","to":"failed","error":"image 'nope' not found"})");
            }
    BOOST_TEST(only_answer(plan_spawn_failed(std::nullopt, spawned_for, "x", now)));
}

BOOST_AUTO_TEST_CASE(input_sent_from_every_status) {
    const session delivered_to = record(session_status::active, true);
    for (session_status from : all_statuses)
        for (bool newer : {false, true}) BOOST_TEST_CONTEXT(name(from) << ", newer session " << newer) {
                std::optional<session> current = record(from, true);
                if (newer) current->created_at = t0 + 1s;
                current->warning_sent = true;
                auto p = plan_input_sent(current, delivered_to, 42, now);
                if (is_final(from) || from == session_status::stopping || newer) {
                    BOOST_TEST(only_answer(p));
                    continue;
                }
                BOOST_REQUIRE(p.commit);
                BOOST_TEST((p.on_lost == if_lost::replan));
                const session& w = p.commit->record;
                BOOST_TEST((w.status == from));  // input is use, not a status change
                BOOST_TEST((w.last_active == now));
                BOOST_TEST((w.idle_deadline == now + 60s));
                BOOST_TEST(!w.warning_sent);  // the deadline moved: it may be warned about again
                BOOST_TEST(w.version == 7u);  // compare-and-swap on the version read
                BOOST_TEST(describe(p.commit->events) == R"(input_sent{"bytes":42})");
            }
    BOOST_TEST(only_answer(plan_input_sent(std::nullopt, delivered_to, 1, now)));
}

BOOST_AUTO_TEST_CASE(input_sent_never_moves_time_or_a_deadline_backwards) {
    session current = record(session_status::active, true);
    current.last_active = now + 5s;  // a touch from a clock slightly ahead
    current.idle_deadline = now + 65s;
    current.warning_sent = true;
    auto p = plan_input_sent(current, current, 3, now);
    BOOST_REQUIRE(p.commit);
    BOOST_TEST((p.commit->record.last_active == now + 5s));
    BOOST_TEST((p.commit->record.idle_deadline == now + 65s));
    BOOST_TEST(p.commit->record.warning_sent);  // same deadline: its warning stands
    current.absolute_deadline = now + 30s;      // a max lifetime caps the slide
    current.idle_deadline = now + 20s;
    auto capped = plan_input_sent(current, current, 3, now);
    BOOST_REQUIRE(capped.commit);
    BOOST_TEST((capped.commit->record.idle_deadline == now + 30s));
}

// ---- a new record -----------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_new_record_takes_the_options_and_the_registrys_defaults) {
    registry_options defaults;
    defaults.idle_timeout = 60s;
    defaults.max_lifetime = 5min;
    acquire_options opts;
    opts.owner = "alice";
    opts.attributes = {{"k", "v"}};
    auto s = new_record("n1", opts, now, defaults, true);
    BOOST_TEST(s.id == "n1");
    BOOST_TEST(s.owner == "alice");
    BOOST_TEST(name(s.status) == "initializing");
    BOOST_TEST((s.created_at == now && s.last_active == now));
    BOOST_TEST(s.idle_timeout.count() == 60'000);
    BOOST_TEST((s.idle_deadline == now + 60s));
    BOOST_TEST((s.absolute_deadline == now + 5min));
    BOOST_TEST(boost::json::serialize(s.attributes) == R"({"k":"v"})");

    opts.idle_timeout = 10min;  // longer than the lifetime: capped
    opts.max_lifetime = 2min;
    auto capped = new_record("n2", opts, now, defaults, false);
    BOOST_TEST(name(capped.status) == "active");
    BOOST_TEST((capped.idle_deadline == now + 2min));
    BOOST_TEST(capped.lifetime_bound());

    defaults.max_lifetime.reset();
    acquire_options plain;
    BOOST_TEST(!new_record("n3", plain, now, defaults, false).absolute_deadline);
}

BOOST_AUTO_TEST_SUITE_END()

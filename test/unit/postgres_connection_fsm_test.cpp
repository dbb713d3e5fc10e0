// The PostgreSQL connection's decisions, without a socket, libpq or an
// executor: the pipeline (FIFO matching of results to operations, one Sync
// per operation, errors that fail only their operation, deadlines that drop
// the link, setup, health checks, a lost link, backoff), the connect steps
// (PQconnectPoll's answers, the socket read again at every step, the
// deadline), the pool's choice and what a SQLSTATE means. Time is passed by
// hand.
#include <sessionkit/postgres/detail/connect_steps.hpp>
#include <sessionkit/postgres/detail/pipeline.hpp>
#include <sessionkit/postgres/detail/pool_choice.hpp>
#include <sessionkit/postgres/detail/sqlstate.hpp>

#include <boost/test/unit_test.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace pd = sessionkit::postgres::detail;
using sessionkit::error;
using namespace std::chrono_literals;
using time_point = pd::clock_type::time_point;
using pipeline_fsm = pd::pipeline;
using kind = pd::result_kind;

const time_point t0{std::chrono::seconds(1000)};

pipeline_fsm::timing timing(std::chrono::milliseconds health = 0ms) { return {1000ms, 2000ms, health, 50ms, 400ms}; }

std::shared_ptr<pd::exchange> op(std::size_t statements, time_point deadline, std::chrono::milliseconds timeout = 2s) {
    auto e = std::make_shared<pd::exchange>();
    e->statements = statements;
    e->deadline = deadline;
    e->timeout = timeout;
    return e;
}

std::shared_ptr<pd::exchange> setup_op(std::size_t statements) { return op(statements, time_point::max()); }

/// A pipeline whose link is up (set up with `setup_statements`) at t0.
pipeline_fsm ready_pipe(pipeline_fsm::timing t = timing(), std::size_t setup_statements = 2) {
    pipeline_fsm p(t);
    p.connecting(t0);
    auto w = p.connected(setup_op(setup_statements), t0);
    BOOST_TEST(w.operations.size() == 1u);
    BOOST_TEST(!p.write_done(true, t0));  // nothing goes out while setting up
    for (std::size_t i = 0; i < setup_statements; ++i) {
        BOOST_TEST(!p.on_result(kind::command, t0).out_of_step);
        BOOST_TEST(!p.on_result(kind::end, t0).out_of_step);
    }
    auto ready = p.on_result(kind::sync, t0);
    BOOST_TEST(ready.link_ready);
    BOOST_TEST((p.state() == pd::link_state::ready));
    return p;
}

pd::statement_error server(std::string sqlstate, std::string message) {
    return {0, std::move(sqlstate), "ERROR", std::move(message)};
}

/// Feeds one statement's result and its null.
void statement(pipeline_fsm& p, kind k, pd::statement_error e = {}) {
    BOOST_TEST(!p.on_result(k, t0, std::move(e)).out_of_step);
    BOOST_TEST(!p.on_result(kind::end, t0).out_of_step);
}

bool fails(const std::vector<pipeline_fsm::failed_operation>& v, const pipeline_fsm::pointer& p, error code) {
    for (const auto& f : v)
        if (f.operation == p) return f.code == code;
    return false;
}

std::string why_of(const std::vector<pipeline_fsm::failed_operation>& v, const pipeline_fsm::pointer& p) {
    for (const auto& f : v)
        if (f.operation == p) return f.why;
    return "<not failed>";
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(postgres_pipeline)

BOOST_AUTO_TEST_CASE(results_meet_their_operations_in_order_one_sync_each) {
    pipeline_fsm p = ready_pipe();
    auto a = op(1, t0 + 2s);
    auto b = op(2, t0 + 2s);
    auto c = op(1, t0 + 2s);

    // A lone operation is sent at once; the next ones wait for its flush,
    // then leave together.
    auto ea = p.enqueue(a, t0);
    BOOST_TEST(!ea.refused);
    BOOST_TEST(ea.write.operations.size() == 1u);
    BOOST_TEST(!p.enqueue(b, t0).write);
    BOOST_TEST(!p.enqueue(c, t0).write);
    auto next = p.write_done(true, t0);
    BOOST_TEST(next.operations.size() == 2u);
    BOOST_TEST((next.operations[0] == b && next.operations[1] == c));
    BOOST_TEST(!p.write_done(true, t0));
    BOOST_TEST(p.in_flight() == 3u);

    // a: its rows, the null, its Sync.
    auto r = p.on_result(kind::rows, t0);
    BOOST_TEST((r.keep_for == a));
    BOOST_TEST(r.index == 0u);
    BOOST_TEST(!p.on_result(kind::end, t0).completed);
    BOOST_TEST((p.on_result(kind::sync, t0).completed == a));

    // b: two statements, results kept at their index.
    BOOST_TEST((p.on_result(kind::command, t0).keep_for == b));
    p.on_result(kind::end, t0);
    auto second = p.on_result(kind::rows, t0);
    BOOST_TEST((second.keep_for == b));
    BOOST_TEST(second.index == 1u);
    p.on_result(kind::end, t0);
    BOOST_TEST((p.on_result(kind::sync, t0).completed == b));

    statement(p, kind::rows);
    BOOST_TEST((p.on_result(kind::sync, t0).completed == c));
    BOOST_TEST(p.in_flight() == 0u);

    // Nothing in flight: a null is libpq saying so.
    BOOST_TEST(p.on_result(kind::end, t0).idle);
}

BOOST_AUTO_TEST_CASE(an_error_fails_only_its_own_operation) {
    pipeline_fsm p = ready_pipe();
    auto bad = op(3, t0 + 2s);
    auto good = op(1, t0 + 2s);
    p.enqueue(bad, t0);
    p.enqueue(good, t0);
    p.write_done(true, t0);
    p.write_done(true, t0);

    // The first statement runs, the second fails, the third is aborted:
    // the first one's rows are not handed out (its transaction rolled back).
    BOOST_TEST((p.on_result(kind::rows, t0).keep_for == bad));
    p.on_result(kind::end, t0);
    auto failing = p.on_result(kind::error, t0, server("23505", "duplicate key value"));
    BOOST_TEST(!failing.keep_for);
    BOOST_TEST(!failing.failed);  // not before its Sync
    p.on_result(kind::end, t0);
    BOOST_TEST(!p.on_result(kind::aborted, t0).keep_for);
    p.on_result(kind::end, t0);
    auto synced = p.on_result(kind::sync, t0);
    BOOST_TEST((synced.failed == bad));
    BOOST_TEST((synced.code == error::invalid_argument));
    BOOST_REQUIRE(bad->failure.has_value());
    BOOST_TEST(bad->failure->statement == 1u);
    BOOST_TEST(bad->failure->sqlstate == "23505");
    BOOST_TEST(bad->failure->message == "duplicate key value");

    // The next operation has its own Sync: untouched.
    statement(p, kind::rows);
    BOOST_TEST((p.on_result(kind::sync, t0).completed == good));
}

BOOST_AUTO_TEST_CASE(a_server_side_statement_timeout_is_a_timeout_and_keeps_the_link) {
    pipeline_fsm p = ready_pipe();
    auto slow = op(1, t0 + 2s);
    p.enqueue(slow, t0);
    p.write_done(true, t0);
    statement(p, kind::error, server("57014", "canceling statement due to statement timeout"));
    auto r = p.on_result(kind::sync, t0);
    BOOST_TEST((r.failed == slow));
    BOOST_TEST((r.code == error::timeout));
    BOOST_TEST((p.state() == pd::link_state::ready));
    BOOST_TEST(!p.tick(t0 + 10ms).drop_link);
}

BOOST_AUTO_TEST_CASE(results_out_of_step_are_named) {
    {
        pipeline_fsm p = ready_pipe();
        BOOST_TEST(p.on_result(kind::rows, t0).out_of_step);  // nothing in flight
        BOOST_TEST(p.on_result(kind::sync, t0).out_of_step);
    }
    {
        pipeline_fsm p = ready_pipe();
        p.enqueue(op(1, t0 + 2s), t0);
        BOOST_TEST(p.on_result(kind::end, t0).out_of_step);  // a null before any result
    }
    {
        pipeline_fsm p = ready_pipe();
        p.enqueue(op(1, t0 + 2s), t0);
        BOOST_TEST(p.on_result(kind::sync, t0).out_of_step);  // a Sync before its statement
    }
    {
        pipeline_fsm p = ready_pipe();
        p.enqueue(op(1, t0 + 2s), t0);
        p.on_result(kind::rows, t0);
        BOOST_TEST(p.on_result(kind::rows, t0).out_of_step);  // two results for one statement
    }
    {
        pipeline_fsm p = ready_pipe();
        p.enqueue(op(1, t0 + 2s), t0);
        statement(p, kind::rows);
        BOOST_TEST(p.on_result(kind::rows, t0).out_of_step);  // a result where its Sync belongs
    }
}

BOOST_AUTO_TEST_CASE(the_setup_goes_first_and_what_waited_leaves_when_it_is_done) {
    pipeline_fsm p(timing());
    p.connecting(t0);
    auto early = op(1, t0 + 2s);
    BOOST_TEST(!p.enqueue(early, t0).write);  // connecting: it waits
    auto setup = setup_op(3);
    auto w = p.connected(setup, t0 + 10ms);
    BOOST_TEST(w.operations.size() == 1u);
    BOOST_TEST((w.operations.front() == setup));
    BOOST_TEST((setup->deadline == t0 + 1000ms));  // the connect deadline, not a request's
    BOOST_TEST((p.state() == pd::link_state::setting_up));
    BOOST_TEST(!p.write_done(true, t0 + 10ms));
    auto during = op(1, t0 + 2s);
    BOOST_TEST(!p.enqueue(during, t0 + 20ms).write);  // setting up: it waits too

    for (int i = 0; i < 3; ++i) statement(p, kind::command);
    auto ready = p.on_result(kind::sync, t0 + 30ms);
    BOOST_TEST(ready.link_ready);
    BOOST_TEST(!ready.completed);  // nobody awaits the setup
    BOOST_TEST(ready.write.operations.size() == 2u);
    BOOST_TEST((ready.write.operations[0] == early && ready.write.operations[1] == during));
}

BOOST_AUTO_TEST_CASE(a_refused_setup_fails_the_attempt_and_what_waited_for_it) {
    pipeline_fsm p(timing());
    p.connecting(t0);
    auto waiting = op(1, t0 + 2s);
    p.enqueue(waiting, t0);
    p.connected(setup_op(2), t0);
    p.write_done(true, t0);
    statement(p, kind::command);
    statement(p, kind::error, server("42P01", "relation \"sessions\" does not exist"));
    auto r = p.on_result(kind::sync, t0);
    BOOST_REQUIRE(r.setup_failed);
    BOOST_TEST(r.setup_failed->failure->statement == 1u);
    BOOST_TEST(!r.link_ready);

    // The connection names the statement and drops the link.
    auto lost = p.link_lost("PREPARE 'touch' failed: relation \"sessions\" does not exist", 0);
    BOOST_TEST(fails(lost.failed, waiting, error::backend_unavailable));
    BOOST_TEST(why_of(lost.failed, waiting) ==
               "not connected (PREPARE 'touch' failed: relation \"sessions\" does not exist)");
    BOOST_TEST((p.state() == pd::link_state::down));
    BOOST_TEST((lost.reconnect_after >= 25ms && lost.reconnect_after <= 50ms));

    // Down: refused at once, with the reason.
    auto refused = p.enqueue(op(1, t0 + 2s), t0);
    BOOST_REQUIRE(refused.refused.has_value());
    BOOST_TEST(contains(refused.refused->why, "not connected (PREPARE 'touch' failed"));
}

BOOST_AUTO_TEST_CASE(a_deadline_in_flight_drops_the_link_and_fails_all_in_flight_with_timeout) {
    pipeline_fsm p = ready_pipe();
    auto slow = op(1, t0 + 500ms, 500ms);
    auto other = op(1, t0 + 2s);
    auto queued = op(1, t0 + 3s);
    p.enqueue(slow, t0);
    p.write_done(true, t0);
    p.enqueue(other, t0);   // sent alone: slow's flush is over
    p.enqueue(queued, t0);  // behind other's flush

    BOOST_TEST(!p.tick(t0 + 499ms).drop_link);
    auto t = p.tick(t0 + 500ms);
    BOOST_TEST(t.drop_link);
    BOOST_TEST(t.failed.size() == 2u);
    BOOST_TEST(fails(t.failed, slow, error::timeout));
    BOOST_TEST(contains(why_of(t.failed, slow), "no result within 500 ms; the connection was dropped"));
    BOOST_TEST(fails(t.failed, other, error::timeout));
    BOOST_TEST(contains(why_of(t.failed, other), "another operation on it got no result"));
    BOOST_TEST(!queued->done);                  // never sent: it waits for the next link
    BOOST_TEST(!p.tick(t0 + 501ms).drop_link);  // asked once

    // A late result for a failed operation is matched, and dropped.
    auto late = p.on_result(kind::rows, t0 + 502ms);
    BOOST_TEST(!late.keep_for);
    BOOST_TEST(!late.out_of_step);

    // The drop is not the server's failure: no backoff, the queue waits.
    auto lost = p.link_lost("Operation canceled", 7);
    BOOST_TEST(lost.failed.empty());
    BOOST_TEST((lost.reconnect_after == 0ms));
    BOOST_TEST((p.state() == pd::link_state::connecting));
    BOOST_TEST(!p.enqueue(op(1, t0 + 3s), t0 + 510ms).refused);  // accepted while reconnecting

    p.connecting(t0 + 510ms);
    p.connected(setup_op(0), t0 + 520ms);
    p.write_done(true, t0 + 520ms);
    auto ready = p.on_result(kind::sync, t0 + 530ms);
    BOOST_TEST(ready.link_ready);
    BOOST_TEST(ready.write.operations.size() == 2u);
    BOOST_TEST((ready.write.operations[0] == queued));
}

BOOST_AUTO_TEST_CASE(an_operation_that_times_out_while_queued_is_never_sent_and_drops_nothing) {
    pipeline_fsm p(timing());
    p.connecting(t0);
    auto early = op(1, t0 + 100ms, 100ms);
    auto other = op(1, t0 + 2s);
    p.enqueue(early, t0);
    p.enqueue(other, t0);
    auto t = p.tick(t0 + 100ms);
    BOOST_TEST(!t.drop_link);
    BOOST_TEST(t.failed.size() == 1u);
    BOOST_TEST(fails(t.failed, early, error::timeout));
    BOOST_TEST(why_of(t.failed, early) == "not sent within 100 ms (connecting)");
    BOOST_TEST(p.queued() == 1u);
    p.connected(setup_op(0), t0 + 200ms);
    p.write_done(true, t0 + 200ms);
    auto ready = p.on_result(kind::sync, t0 + 200ms);
    BOOST_TEST(ready.write.operations.size() == 1u);
    BOOST_TEST((ready.write.operations[0] == other));
}

BOOST_AUTO_TEST_CASE(connecting_and_setting_up_have_the_connect_deadline) {
    {
        pipeline_fsm p(timing());
        p.connecting(t0);
        auto waiting = op(1, t0 + 5s, 5s);
        p.enqueue(waiting, t0);
        auto before = p.tick(t0 + 999ms);
        BOOST_TEST(!before.drop_link);
        BOOST_TEST((before.wake_at == t0 + 1000ms));
        BOOST_TEST(p.tick(t0 + 1000ms).drop_link);
        auto lost = p.link_lost("Operation canceled", 0);
        BOOST_TEST(why_of(lost.failed, waiting) == "not connected (connecting took longer than 1000 ms)");
        BOOST_TEST((p.state() == pd::link_state::down));
    }
    {
        pipeline_fsm p(timing());
        p.connecting(t0);
        p.connected(setup_op(1), t0 + 900ms);
        BOOST_TEST(p.tick(t0 + 1000ms).drop_link);
        auto lost = p.link_lost("Operation canceled", 0);
        BOOST_TEST(p.last_error() == "setting up the connection took longer than 1000 ms");
        BOOST_TEST((lost.reconnect_after > 0ms));  // a failed attempt: backoff
    }
}

BOOST_AUTO_TEST_CASE(a_lost_link_fails_what_was_sent_and_what_waited_then_backs_off) {
    pipeline_fsm p = ready_pipe();
    auto sent = op(1, t0 + 2s);
    auto waiting = op(1, t0 + 2s);
    p.enqueue(sent, t0);
    p.enqueue(waiting, t0);  // behind the flush
    auto lost = p.link_lost("server closed the connection unexpectedly", 0);
    BOOST_TEST(fails(lost.failed, sent, error::backend_unavailable));
    BOOST_TEST(why_of(lost.failed, sent) == "connection lost (server closed the connection unexpectedly) before the "
                                            "result came; the operation may have run");
    BOOST_TEST(fails(lost.failed, waiting, error::backend_unavailable));
    BOOST_TEST(contains(why_of(lost.failed, waiting), "not connected (server closed"));

    // Attempts that fail back off, doubling up to the maximum (400 ms), with jitter.
    p.connecting(t0);
    auto w2 = p.link_lost("Connection refused", 0).reconnect_after;
    p.connecting(t0);
    auto w3 = p.link_lost("Connection refused", ~0ULL).reconnect_after;
    BOOST_TEST((w2 >= 50ms && w2 <= 100ms));
    BOOST_TEST((w3 >= 100ms && w3 <= 200ms));
    for (int i = 0; i < 5; ++i) {
        p.connecting(t0);
        p.link_lost("Connection refused", 1);
    }
    p.connecting(t0);
    BOOST_TEST((p.link_lost("Connection refused", ~0ULL).reconnect_after <= 400ms));

    // A link that comes up resets it.
    p.connecting(t0);
    p.connected(setup_op(0), t0);
    p.write_done(true, t0);
    BOOST_TEST(p.on_result(kind::sync, t0).link_ready);
    BOOST_TEST((p.link_lost("gone", 0).reconnect_after <= 50ms));
}

BOOST_AUTO_TEST_CASE(an_idle_link_is_checked_a_busy_one_is_not) {
    pipeline_fsm p = ready_pipe(timing(1000ms));
    auto t = p.tick(t0 + 500ms);
    BOOST_TEST(!t.health_check);
    BOOST_TEST((t.wake_at == t0 + 1000ms));
    BOOST_TEST(p.tick(t0 + 1000ms).health_check);

    // The check is an empty operation: a Sync alone.
    auto check = op(0, t0 + 3s);
    check->what = pd::exchange::kind::health_check;
    BOOST_TEST(p.enqueue(check, t0 + 1000ms).write.operations.size() == 1u);
    p.write_done(true, t0 + 1000ms);
    // Busy: no check, but the timer looks again when one would be due,
    // since nothing wakes it when the last result comes.
    auto busy = p.tick(t0 + 1200ms);
    BOOST_TEST(!busy.health_check);
    BOOST_TEST((busy.wake_at == t0 + 2000ms));
    BOOST_TEST(!p.tick(t0 + 2500ms).health_check);  // one in flight
    p.received(t0 + 1001ms);
    BOOST_TEST((p.on_result(kind::sync, t0 + 1001ms).completed == check));
    BOOST_TEST(!p.tick(t0 + 1500ms).health_check);
    BOOST_TEST(p.tick(t0 + 2001ms).health_check);

    // One that gets no answer drops the link, which reconnects at once.
    auto unanswered = op(0, t0 + 2100ms, 99ms);
    unanswered->what = pd::exchange::kind::health_check;
    p.enqueue(unanswered, t0 + 2001ms);
    auto dropped = p.tick(t0 + 2100ms);
    BOOST_TEST(dropped.drop_link);
    auto lost = p.link_lost("Operation canceled", 0);
    BOOST_TEST((lost.reconnect_after == 0ms));

    // Health checks off: never.
    pipeline_fsm quiet = ready_pipe(timing(0ms));
    BOOST_TEST(!quiet.tick(t0 + 1h).health_check);
}

BOOST_AUTO_TEST_CASE(only_an_earlier_deadline_wakes_the_timer) {
    pipeline_fsm p = ready_pipe();
    BOOST_TEST((p.tick(t0).wake_at == t0 + 2000ms));  // never asleep past a request timeout
    BOOST_TEST(!p.enqueue(op(1, t0 + 2000ms), t0).wake_timer);
    BOOST_TEST(!p.enqueue(op(1, t0 + 2500ms), t0).wake_timer);
    BOOST_TEST(p.enqueue(op(1, t0 + 500ms), t0).wake_timer);
}

BOOST_AUTO_TEST_CASE(close_fails_everything_and_refuses_the_rest) {
    pipeline_fsm p = ready_pipe();
    auto sent = op(1, t0 + 2s);
    auto waiting = op(1, t0 + 2s);
    p.enqueue(sent, t0);
    p.enqueue(waiting, t0);
    auto closed = p.close();
    BOOST_TEST(closed.size() == 2u);
    BOOST_TEST(why_of(closed, sent) == "connection closed");
    BOOST_TEST(p.close().empty());
    auto r = p.enqueue(op(1, t0 + 2s), t0);
    BOOST_REQUIRE(r.refused.has_value());
    BOOST_TEST(r.refused->why == "connection closed");
    BOOST_TEST(p.link_lost("late", 0).failed.empty());
    p.connecting(t0);
    BOOST_TEST((p.state() == pd::link_state::closed));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(postgres_connect_steps)

BOOST_AUTO_TEST_CASE(each_step_waits_on_the_socket_libpq_has_now) {
    pd::connect_steps steps(1000ms, t0);
    // After PQconnectStart: as if PQconnectPoll said "writing".
    auto a = steps.step(pd::poll_status::writing, 7, "", t0);
    BOOST_TEST((a.what == pd::connect_action::kind::wait_write));
    BOOST_TEST(a.socket == 7);
    auto b = steps.step(pd::poll_status::reading, 7, "", t0 + 1ms);
    BOOST_TEST((b.what == pd::connect_action::kind::wait_read));
    // libpq moved to another socket (the next address, TLS refused): that one.
    auto c = steps.step(pd::poll_status::writing, 9, "", t0 + 2ms);
    BOOST_TEST((c.what == pd::connect_action::kind::wait_write));
    BOOST_TEST(c.socket == 9);
    auto d = steps.step(pd::poll_status::ok, 9, "", t0 + 3ms);
    BOOST_TEST((d.what == pd::connect_action::kind::connected));
    BOOST_TEST(steps.steps() == 4);
}

BOOST_AUTO_TEST_CASE(failures_in_one_line_and_the_deadline) {
    pd::connect_steps steps(1000ms, t0);
    auto f = steps.step(pd::poll_status::failed, -1,
                        "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server "
                        "running on that host and accepting TCP/IP connections?\n",
                        t0);
    BOOST_TEST((f.what == pd::connect_action::kind::failed));
    BOOST_TEST(f.failure == "connection to server at \"127.0.0.1\", port 1 failed: Connection refused Is the server "
                            "running on that host and accepting TCP/IP connections?");

    pd::connect_steps late(1000ms, t0);
    auto l = late.step(pd::poll_status::reading, 5, "", t0 + 1000ms);
    BOOST_TEST((l.what == pd::connect_action::kind::failed));
    BOOST_TEST(l.failure == "connecting took longer than 1000 ms");
    BOOST_TEST(late.timed_out().failure == "connecting took longer than 1000 ms");
    // Done in time is done, even at the deadline.
    BOOST_TEST((late.step(pd::poll_status::ok, 5, "", t0 + 2000ms).what == pd::connect_action::kind::connected));

    pd::connect_steps lost(1000ms, t0);
    BOOST_TEST(lost.step(pd::poll_status::reading, -1, "", t0).failure == "libpq has no socket to wait on");
    BOOST_TEST(lost.refused("").failure == "libpq gave no reason");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(postgres_pool_choice)

BOOST_AUTO_TEST_CASE(least_loaded_ready_connection_ties_taking_turns) {
    using pd::link_state;
    std::array<pd::member_view, 4> m{
        {{link_state::ready, 3}, {link_state::ready, 1}, {link_state::connecting, 0}, {link_state::ready, 1}}};
    BOOST_TEST(pd::choose_member(m, 0) == 1u);
    BOOST_TEST(pd::choose_member(m, 2) == 3u);  // the tie goes to the first from `start`
    BOOST_TEST(pd::choose_member(m, 6) == 3u);  // start wraps around

    // None ready: the least-loaded one on its way up.
    std::array<pd::member_view, 3> up{
        {{link_state::down, 0}, {link_state::setting_up, 2}, {link_state::connecting, 1}}};
    BOOST_TEST(pd::choose_member(up, 0) == 2u);

    // All down: the one at start refuses with its reason.
    std::array<pd::member_view, 2> down{{{link_state::down, 0}, {link_state::closed, 0}}};
    BOOST_TEST(pd::choose_member(down, 1) == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(postgres_sqlstate)

BOOST_AUTO_TEST_CASE(what_a_sqlstate_means_to_a_caller) {
    using pd::error_for_sqlstate;
    BOOST_TEST((error_for_sqlstate("57014") == error::timeout));
    BOOST_TEST((error_for_sqlstate("57P01") == error::backend_unavailable));  // admin shutdown
    BOOST_TEST((error_for_sqlstate("08006") == error::backend_unavailable));
    BOOST_TEST((error_for_sqlstate("08P01") == error::invalid_argument));     // wrong number of parameters
    BOOST_TEST((error_for_sqlstate("53300") == error::backend_unavailable));  // too many connections
    BOOST_TEST((error_for_sqlstate("40001") == error::contention));
    BOOST_TEST((error_for_sqlstate("40P01") == error::contention));
    BOOST_TEST((error_for_sqlstate("55P03") == error::contention));
    BOOST_TEST((error_for_sqlstate("23505") == error::invalid_argument));
    BOOST_TEST((error_for_sqlstate("22P02") == error::invalid_argument));
    BOOST_TEST((error_for_sqlstate("42601") == error::protocol_error));
    BOOST_TEST((error_for_sqlstate("") == error::protocol_error));
    BOOST_TEST(pd::one_line("a\n\tb\n") == "a b");
    BOOST_TEST(pd::one_line("\n") == "");
}

BOOST_AUTO_TEST_SUITE_END()

// The Redis connection's decisions, without a socket or an executor: the
// multiplexer (FIFO matching, deadlines, stalls, health checks, a lost
// link), the handshake (HELLO, the AUTH fallback, refusals, SELECT) and the
// reconnect backoff. Time is passed by hand.
#include <sessionkit/detail/backoff.hpp>
#include <sessionkit/redis/detail/handshake.hpp>
#include <sessionkit/redis/detail/multiplexer.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

namespace rd = sessionkit::redis::detail;
namespace resp = sessionkit::redis::resp;
using sessionkit::error;
using namespace std::chrono_literals;
using time_point = rd::clock_type::time_point;
using mux = rd::multiplexer;

const time_point t0{std::chrono::seconds(1000)};

/// A request as the connection would make one: the bytes live in the object.
struct test_request : rd::exchange {
    std::string bytes;
};

std::shared_ptr<test_request> make_request(std::vector<std::string> commands, time_point deadline) {
    auto r = std::make_shared<test_request>();
    for (const auto& c : commands) resp::command(c).append_to(r->bytes);
    r->payload = r->bytes;
    r->commands = commands.size();
    r->deadline = deadline;
    return r;
}

std::string bytes_of(const mux::write_action& w) {
    std::string out;
    for (const auto& b : w.buffers) out.append(static_cast<const char*>(b.data()), b.size());
    return out;
}

std::string encoded(std::vector<std::string> commands) {
    std::string out;
    for (const auto& c : commands) resp::command(c).append_to(out);
    return out;
}

resp::value integer(std::int64_t n) { return resp::value::of_integer(n); }

resp::value simple(std::string text, resp::type kind = resp::type::simple_string) {
    return resp::value::of_text(kind, std::move(text));
}

resp::value error_reply(std::string text) { return simple(std::move(text), resp::type::simple_error); }

mux::timing timing(std::chrono::milliseconds health = 0ms) { return {2000ms, 4000ms, health}; }

/// A multiplexer with its link up at t0.
mux ready_mux(mux::timing t = timing()) {
    mux m(t);
    m.connecting();
    BOOST_TEST(!m.link_up(t0));
    return m;
}

bool holds(const std::vector<mux::pointer>& v, const mux::pointer& p) {
    for (const auto& q : v)
        if (q == p) return true;
    return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_multiplexer)

BOOST_AUTO_TEST_CASE(replies_meet_their_requests_in_order_across_multi_command_requests) {
    mux m = ready_mux();
    auto a = make_request({"GET", "SET"}, t0 + 2s);
    auto b = make_request({"PING"}, t0 + 2s);
    auto c = make_request({"INCR", "INCR", "INCR"}, t0 + 2s);

    // A lone request is written at once.
    auto ea = m.enqueue(a, t0);
    BOOST_TEST(!ea.refused);
    BOOST_TEST(ea.write.requests == 1u);
    BOOST_TEST(bytes_of(ea.write) == encoded({"GET", "SET"}));
    // While that write is under way the next ones wait, then leave together.
    BOOST_TEST(!m.enqueue(b, t0).write);
    BOOST_TEST(!m.enqueue(c, t0).write);
    auto next = m.write_done(true, t0);
    BOOST_TEST(next.requests == 2u);
    BOOST_TEST(next.buffers.size() == 2u);
    BOOST_TEST(bytes_of(next) == encoded({"PING", "INCR", "INCR", "INCR"}));
    BOOST_TEST(!m.write_done(true, t0));

    BOOST_TEST(!m.reply_parsed(integer(1)).completed);
    auto r = m.reply_parsed(integer(2));
    BOOST_TEST((r.completed == a));
    BOOST_TEST((a->replies == std::vector<resp::value>{integer(1), integer(2)}));
    // Out-of-band data is no reply.
    auto push = simple("", resp::type::push);
    BOOST_TEST(!m.reply_parsed(std::move(push)).completed);
    BOOST_TEST((m.reply_parsed(integer(3)).completed == b));
    BOOST_TEST((b->replies == std::vector<resp::value>{integer(3)}));
    BOOST_TEST(!m.reply_parsed(integer(4)).completed);
    BOOST_TEST(!m.reply_parsed(integer(5)).completed);
    BOOST_TEST((m.reply_parsed(integer(6)).completed == c));
    BOOST_TEST((c->replies == std::vector<resp::value>{integer(4), integer(5), integer(6)}));
    BOOST_TEST(m.in_flight() == 0u);
    // One reply too many: the stream is out of step.
    BOOST_TEST(m.reply_parsed(integer(7)).unexpected);
}

BOOST_AUTO_TEST_CASE(a_timed_out_request_in_flight_keeps_its_place) {
    mux m = ready_mux();
    auto slow = make_request({"GET", "GET"}, t0 + 100ms);
    auto later = make_request({"GET"}, t0 + 2s);
    BOOST_TEST(bool(m.enqueue(slow, t0).write));
    BOOST_TEST(!m.enqueue(later, t0).write);
    BOOST_TEST(m.write_done(true, t0).requests == 1u);

    m.reply_parsed(simple("slow-1"));  // half of slow's replies before its deadline
    auto tick = m.tick(t0 + 150ms);
    BOOST_TEST(tick.timed_out.requests.size() == 1u);
    BOOST_TEST((tick.timed_out.requests.front() == slow));
    BOOST_TEST((tick.timed_out.code == error::timeout));
    BOOST_TEST(tick.timed_out.why == "no reply within 2000 ms");
    BOOST_TEST(slow->done);
    slow->replies.clear();                                      // as failing it does: the caller's handler takes them
    BOOST_TEST(!m.tick(t0 + 200ms).timed_out.requests.size());  // failed once only

    // slow's late reply is dropped; later gets its own.
    BOOST_TEST(!m.reply_parsed(simple("slow-2")).completed);
    auto r = m.reply_parsed(simple("later"));
    BOOST_TEST((r.completed == later));
    BOOST_TEST((later->replies == std::vector<resp::value>{simple("later")}));
}

BOOST_AUTO_TEST_CASE(a_request_that_times_out_while_queued_is_never_written) {
    mux m(timing());
    m.connecting();
    auto early = make_request({"GET"}, t0 + 100ms);
    auto other = make_request({"SET"}, t0 + 2s);
    BOOST_TEST(!m.enqueue(early, t0).write);  // not ready: it waits
    BOOST_TEST(!m.enqueue(other, t0).write);
    auto tick = m.tick(t0 + 100ms);
    BOOST_TEST(tick.timed_out.requests.size() == 1u);
    BOOST_TEST((tick.timed_out.requests.front() == early));
    BOOST_TEST(m.queued() == 1u);
    auto w = m.link_up(t0 + 200ms);
    BOOST_TEST(bytes_of(w) == encoded({"SET"}));

    // Behind a write under way, too.
    auto behind = make_request({"DEL"}, t0 + 300ms);
    BOOST_TEST(!m.enqueue(behind, t0 + 200ms).write);
    BOOST_TEST(m.tick(t0 + 300ms).timed_out.requests.size() == 1u);
    BOOST_TEST(!m.write_done(true, t0 + 400ms));
}

BOOST_AUTO_TEST_CASE(only_an_earlier_deadline_wakes_the_timer) {
    mux m = ready_mux();
    const auto tick = m.tick(t0);
    BOOST_TEST((tick.wake_at == t0 + 2000ms));  // never asleep past a request timeout
    BOOST_TEST(!m.enqueue(make_request({"GET"}, t0 + 2000ms), t0).wake_timer);
    BOOST_TEST(!m.enqueue(make_request({"GET"}, t0 + 2500ms), t0).wake_timer);
    BOOST_TEST(m.enqueue(make_request({"GET"}, t0 + 500ms), t0).wake_timer);
}

BOOST_AUTO_TEST_CASE(a_stalled_link_is_closed_an_idle_one_is_not) {
    mux m = ready_mux();
    // Idle: nothing outstanding, nothing to close however long it lasts.
    auto idle = m.tick(t0 + 60s);
    BOOST_TEST(!idle.close_link);
    BOOST_TEST(!idle.send_ping);  // health checks off here

    const auto t1 = t0 + 60s;
    auto r = make_request({"GET"}, t1 + 10s);
    BOOST_TEST(bool(m.enqueue(r, t1).write));  // the stall clock starts at the write, not at t0
    BOOST_TEST(!m.tick(t1 + 3999ms).close_link);
    m.received(t1 + 3s);  // half a reply: alive
    auto before = m.tick(t1 + 6999ms);
    BOOST_TEST(!before.close_link);
    BOOST_TEST((before.wake_at == t1 + 7s));
    auto stalled = m.tick(t1 + 7s);
    BOOST_TEST(stalled.close_link);

    // The connection closes the link; its failure is reported as the stall.
    auto lost = m.link_lost("Operation canceled");
    BOOST_TEST(lost.requests.size() == 1u);
    BOOST_TEST((lost.code == error::backend_unavailable));
    BOOST_TEST(lost.why == "connection lost (no reply for 4000 ms) before the reply came");
    BOOST_TEST(m.last_error() == "no reply for 4000 ms");
}

BOOST_AUTO_TEST_CASE(a_ping_only_when_idle_for_the_health_check_interval) {
    mux m = ready_mux(timing(5000ms));
    auto early = m.tick(t0 + 4999ms);
    BOOST_TEST(!early.send_ping);
    BOOST_TEST((early.wake_at == t0 + 5000ms));
    BOOST_TEST(m.tick(t0 + 5000ms).send_ping);

    // Requests waiting (longer than the interval, short of a stall) mean no
    // ping, in flight or queued; a reply resets the idle clock.
    mux busy = ready_mux({20s, 30s, 5000ms});
    auto r = make_request({"GET"}, t0 + 60s);
    BOOST_TEST(bool(busy.enqueue(r, t0 + 5000ms).write));
    auto waiting = make_request({"GET"}, t0 + 60s);
    BOOST_TEST(!busy.enqueue(waiting, t0 + 5000ms).write);  // queued behind the write
    BOOST_TEST(!busy.tick(t0 + 11000ms).send_ping);
    busy.received(t0 + 6000ms);  // r's reply, before its write is reported done
    BOOST_TEST((busy.reply_parsed(integer(1)).completed == r));
    BOOST_TEST(busy.in_flight() == 0u);
    BOOST_TEST(!busy.tick(t0 + 12000ms).send_ping);  // `waiting` is still queued
    BOOST_TEST(busy.write_done(true, t0 + 12000ms).requests == 1u);
    BOOST_TEST(!busy.tick(t0 + 17500ms).send_ping);  // `waiting` is in flight
    busy.received(t0 + 18000ms);
    BOOST_TEST((busy.reply_parsed(integer(2)).completed == waiting));
    BOOST_TEST(!busy.tick(t0 + 22999ms).send_ping);
    BOOST_TEST(busy.tick(t0 + 23000ms).send_ping);

    // Queued behind a link being opened: no ping either.
    mux connecting(timing(5000ms));
    connecting.connecting();
    BOOST_TEST(!connecting.tick(t0 + 60s).send_ping);
}

BOOST_AUTO_TEST_CASE(a_lost_link_fails_what_was_in_flight_and_queued_once) {
    mux m = ready_mux();
    auto a = make_request({"GET"}, t0 + 100ms);
    auto b = make_request({"GET"}, t0 + 2s);
    auto c = make_request({"GET"}, t0 + 2s);
    auto d = make_request({"GET"}, t0 + 2s);
    BOOST_TEST(bool(m.enqueue(a, t0).write));
    BOOST_TEST(!m.enqueue(b, t0).refused);
    BOOST_TEST(m.write_done(true, t0).requests == 1u);               // b in flight too
    BOOST_TEST(!m.enqueue(c, t0).write);                             // c waits behind b's write
    BOOST_TEST(m.tick(t0 + 100ms).timed_out.requests.size() == 1u);  // a: failed already

    auto lost = m.link_lost("the server closed the connection");
    BOOST_TEST(lost.requests.size() == 2u);
    BOOST_TEST(holds(lost.requests, b));
    BOOST_TEST(holds(lost.requests, c));
    BOOST_TEST(!holds(lost.requests, a));
    BOOST_TEST((lost.code == error::backend_unavailable));
    BOOST_TEST(lost.why == "connection lost (the server closed the connection) before the reply came");
    BOOST_TEST((m.state() == rd::link_state::down));
    BOOST_TEST(m.queued() + m.in_flight() == 0u);

    // Down: refused at once with the reason.
    auto refused = m.enqueue(d, t0);
    BOOST_TEST((refused.refused == d));
    BOOST_TEST(refused.why == "not connected (the server closed the connection)");

    // The next attempt fails before the link is ready: "not connected".
    m.connecting();
    auto e = make_request({"GET"}, t0 + 2s);
    BOOST_TEST(!m.enqueue(e, t0).refused);
    auto failed = m.link_lost("Connection refused");
    BOOST_TEST(failed.requests.size() == 1u);
    BOOST_TEST(failed.why == "not connected (Connection refused)");

    // Closed: everything fails, nothing is accepted any more.
    m.connecting();
    auto f = make_request({"GET"}, t0 + 2s);
    m.enqueue(f, t0);
    auto closed = m.close();
    BOOST_TEST(closed.requests.size() == 1u);
    BOOST_TEST(closed.why == "connection closed");
    BOOST_TEST(m.enqueue(make_request({"GET"}, t0 + 2s), t0).why == "connection closed");
    BOOST_TEST(m.link_lost("whatever").requests.empty());
    BOOST_TEST(!m.link_up(t0));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_handshake)

namespace {

rd::handshake_settings settings(std::string user, std::string password, int db = 0, std::string name = {}) {
    return {std::move(user), std::move(password), db, std::move(name)};
}

std::string command_bytes(std::vector<std::string> args) {
    std::string out;
    resp::command c(args.front());
    for (std::size_t i = 1; i < args.size(); ++i) c.arg(args[i]);
    c.append_to(out);
    return out;
}

using kind = rd::handshake_step::kind;

}  // namespace

BOOST_AUTO_TEST_CASE(hello_then_client_setname) {
    rd::handshake h(settings("", "", 0, "sessionkit"));
    auto s = h.start();
    BOOST_TEST((s.what == kind::send));
    BOOST_TEST(s.payload == command_bytes({"HELLO", "3"}));
    std::vector<resp::value> hello{simple("", resp::type::map)};
    s = h.on_replies(hello);
    BOOST_TEST((s.what == kind::send));
    BOOST_TEST(s.commands == 1u);
    BOOST_TEST(s.payload == command_bytes({"CLIENT", "SETNAME", "sessionkit"}));
    // A refused SETNAME is not fatal.
    std::vector<resp::value> refused{error_reply("ERR unknown command")};
    BOOST_TEST((h.on_replies(refused).what == kind::done));

    rd::handshake bare(settings("", ""));
    bare.start();
    BOOST_TEST((bare.on_replies(hello).what == kind::done));
}

BOOST_AUTO_TEST_CASE(an_old_server_without_hello_gets_auth_and_resp2) {
    std::vector<resp::value> no_hello{error_reply("ERR unknown command 'HELLO'")};
    std::vector<resp::value> ok{simple("OK")};

    // No password: straight to the setup.
    rd::handshake plain(settings("", "", 0, "me"));
    plain.start();
    auto s = plain.on_replies(no_hello);
    BOOST_TEST(s.payload == command_bytes({"CLIENT", "SETNAME", "me"}));

    // A password alone: HELLO names the default user, AUTH names none.
    rd::handshake password(settings("", "secret"));
    BOOST_TEST(password.start().payload == command_bytes({"HELLO", "3", "AUTH", "default", "secret"}));
    s = password.on_replies(no_hello);
    BOOST_TEST((s.what == kind::send));
    BOOST_TEST(s.payload == command_bytes({"AUTH", "secret"}));
    BOOST_TEST((password.on_replies(ok).what == kind::done));

    // A user and a password.
    rd::handshake user(settings("alice", "secret", 0, "me"));
    BOOST_TEST(user.start().payload == command_bytes({"HELLO", "3", "AUTH", "alice", "secret"}));
    s = user.on_replies(no_hello);
    BOOST_TEST(s.payload == command_bytes({"AUTH", "alice", "secret"}));
    s = user.on_replies(ok);
    BOOST_TEST(s.payload == command_bytes({"CLIENT", "SETNAME", "me"}));

    // AUTH refused.
    rd::handshake wrong(settings("", "nope"));
    wrong.start();
    wrong.on_replies(no_hello);
    std::vector<resp::value> denied{error_reply("ERR invalid password")};
    s = wrong.on_replies(denied);
    BOOST_TEST((s.what == kind::failed));
    BOOST_TEST(s.failure == "authentication failed: ERR invalid password");
}

BOOST_AUTO_TEST_CASE(wrongpass_and_noperm_are_refusals_not_old_servers) {
    for (std::string text : {"WRONGPASS invalid username-password pair or user is disabled.",
                             "NOPERM this user has no permissions to run the 'hello' command"}) {
        rd::handshake h(settings("alice", "bad"));
        h.start();
        std::vector<resp::value> reply{error_reply(text)};
        auto s = h.on_replies(reply);
        BOOST_TEST((s.what == kind::failed));
        BOOST_TEST(s.failure == "authentication failed: " + text);
    }
}

BOOST_AUTO_TEST_CASE(a_failed_select_is_fatal) {
    rd::handshake h(settings("", "", 99999, "sessionkit"));
    h.start();
    std::vector<resp::value> hello{simple("", resp::type::map)};
    auto s = h.on_replies(hello);
    BOOST_TEST(s.commands == 2u);
    BOOST_TEST(s.payload == command_bytes({"SELECT", "99999"}) + command_bytes({"CLIENT", "SETNAME", "sessionkit"}));
    std::vector<resp::value> replies{error_reply("ERR DB index is out of range"), simple("OK")};
    s = h.on_replies(replies);
    BOOST_TEST((s.what == kind::failed));
    BOOST_TEST(s.failure == "SELECT 99999 failed: ERR DB index is out of range");

    rd::handshake good(settings("", "", 3));
    good.start();
    s = good.on_replies(hello);
    BOOST_TEST(s.payload == command_bytes({"SELECT", "3"}));
    std::vector<resp::value> ok{simple("OK")};
    BOOST_TEST((good.on_replies(ok).what == kind::done));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_backoff)

BOOST_AUTO_TEST_CASE(doubles_to_the_max_with_jitter_within_bounds) {
    sessionkit::detail::backoff low(50ms, 1000ms), high(50ms, 1000ms);
    const std::vector<std::int64_t> lows{25, 50, 100, 200, 400, 500, 500};
    const std::vector<std::int64_t> highs{50, 100, 200, 400, 800, 1000, 1000};
    for (std::size_t i = 0; i < lows.size(); ++i) {
        BOOST_TEST(low.next_wait(0).count() == lows[i]);
        // The largest draw the range allows: spread + 1 values.
        BOOST_TEST(high.next_wait(static_cast<std::uint64_t>(highs[i] - lows[i])).count() == highs[i]);
    }
    low.reset();
    BOOST_TEST(low.next_wait(0).count() == 25);

    // Any draw lands within [current / 2, current].
    sessionkit::detail::backoff b(50ms, 1000ms);
    std::mt19937_64 rng(42);
    for (int round = 0; round < 3; ++round) {
        b.reset();
        std::int64_t current = 50;
        for (int i = 0; i < 10; ++i) {
            const auto wait = b.next_wait(rng()).count();
            BOOST_TEST(wait >= current / 2);
            BOOST_TEST(wait <= current);
            current = std::min<std::int64_t>(current * 2, 1000);
            BOOST_TEST(b.current().count() == current);
        }
    }
    // A tiny minimum still waits at least a millisecond sometimes.
    sessionkit::detail::backoff tiny(1ms, 4ms);
    BOOST_TEST(tiny.next_wait(1).count() == 1);
}

BOOST_AUTO_TEST_SUITE_END()

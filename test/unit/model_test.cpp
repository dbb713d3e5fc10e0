// Ids, statuses, the session record's JSON form, clocks and events.
#include <sessionkit/clock.hpp>
#include <sessionkit/event.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/session.hpp>
#include <sessionkit/status.hpp>

#include <boost/test/unit_test.hpp>

#include <random>
#include <set>
#include <string>

using namespace sessionkit;
using namespace std::chrono_literals;

namespace {

// Runs `f`, requires a sessionkit error `code` whose message contains each of `needles`.
template <class F>
void expect_error(F&& f, error code, std::initializer_list<std::string_view> needles) {
    try {
        f();
        BOOST_FAIL("expected an error");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == make_error_code(code), "code was " << e.code().message() << ": " << e.what());
        for (auto n : needles)
            BOOST_TEST(std::string(e.what()).find(n) != std::string::npos,
                       "message '" << e.what() << "' does not contain '" << n << "'");
    }
}

session sample() {
    session s;
    s.id = "sess-1";
    s.owner = "alice";
    s.status = session_status::waiting_input;
    s.created_at = from_unix_ms(1'700'000'000'000);
    s.last_active = from_unix_ms(1'700'000'001'000);
    s.idle_timeout = 90s;
    s.idle_deadline = from_unix_ms(1'700'000'091'000);
    s.absolute_deadline = from_unix_ms(1'700'003'600'000);
    s.version = 7;
    s.worker = worker_ref{"docker", "abc123"};
    s.warning_sent = true;
    s.end_reason = "";
    s.attributes = {{"lang", "c++"}, {"n", 3}};
    return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ids)

BOOST_AUTO_TEST_CASE(valid_ids_pass) {
    for (std::string_view id : {"a", "A.b_c:d-e", "ghost:session:host-1", "0123456789"})
        BOOST_TEST(is_valid_id(id), id);
    BOOST_TEST(is_valid_id(std::string(128, 'x')));
}

BOOST_AUTO_TEST_CASE(bad_ids_are_rejected_with_an_error_naming_them) {
    expect_error([] { check_id(""); }, error::invalid_id, {"session id ''", "is empty"});
    expect_error([] { check_id(std::string(129, 'y')); }, error::invalid_id, {"yyyyyyyy", "129 bytes long"});
    expect_error([] { check_id("has space"); }, error::invalid_id, {"'has space'", "offset 3"});
    expect_error([] { check_id("star*"); }, error::invalid_id, {"'star*'", "offset 4"});
    expect_error([] { check_id("new\nline"); }, error::invalid_id, {"new\\x0aline", "offset 3"});
    expect_error([] { check_id("caf\xc3\xa9"); }, error::invalid_id, {"caf\\xc3\\xa9", "offset 3"});
    expect_error([] { check_id("slash/"); }, error::invalid_id, {"'slash/'"});
    expect_error([] { check_id(".."); }, error::invalid_id, {"dot segment"});
    BOOST_TEST(is_valid_id("..."));
}

BOOST_AUTO_TEST_CASE(generated_ids_are_valid_distinct_and_128_bit) {
    std::set<std::string> seen;
    for (int i = 0; i < 20000; ++i) {
        auto id = generate_id();
        BOOST_REQUIRE_EQUAL(id.size(), 26u);
        BOOST_REQUIRE(is_valid_id(id));
        seen.insert(id);
    }
    BOOST_TEST(seen.size() == 20000u);
    // Every base32 position but the last (which holds 3 bits) sees all 32 symbols.
    std::set<char> first;
    for (auto& id : seen) first.insert(id[0]);
    BOOST_TEST(first.size() == 32u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(statuses)

BOOST_AUTO_TEST_CASE(names_round_trip) {
    for (std::size_t i = 0; i < session_status_count; ++i) {
        auto s = static_cast<session_status>(i);
        BOOST_TEST(status_from_string(to_string(s)) == s);
    }
    expect_error([] { status_from_string("paused"); }, error::invalid_argument, {"'paused'"});
}

BOOST_AUTO_TEST_CASE(transition_table) {
    using enum session_status;
    BOOST_TEST(can_transition(initializing, active));
    BOOST_TEST(can_transition(active, idle));
    BOOST_TEST(can_transition(idle, waiting_input));
    BOOST_TEST(can_transition(waiting_input, stopping));
    BOOST_TEST(can_transition(stopping, terminated));
    BOOST_TEST(can_transition(stopping, failed));
    BOOST_TEST(can_transition(active, active));
    BOOST_TEST(!can_transition(active, initializing));
    BOOST_TEST(!can_transition(stopping, active));
    for (auto to : {initializing, active, idle, waiting_input, stopping, terminated, failed}) {
        BOOST_TEST(!can_transition(terminated, to));
        BOOST_TEST(!can_transition(failed, to));
    }
}

BOOST_AUTO_TEST_CASE(an_invalid_transition_names_both_states) {
    expect_error([] { check_transition("s1", session_status::terminated, session_status::active); },
                 error::invalid_transition, {"'s1'", "from terminated to active"});
    expect_error([] { check_transition("s2", session_status::stopping, session_status::idle); },
                 error::invalid_transition, {"from stopping to idle"});
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(session_json)

BOOST_AUTO_TEST_CASE(round_trip_keeps_every_field) {
    auto s = sample();
    auto back = parse_session(serialize(s), s.id);
    BOOST_TEST(serialize(back) == serialize(s));
    BOOST_TEST((back.worker == s.worker));
    BOOST_TEST((back.absolute_deadline == s.absolute_deadline));
    BOOST_TEST(back.warning_sent);
    BOOST_TEST(to_json(s).at("v") == 1);
    BOOST_TEST(to_json(s).at("idle_deadline") == 1'700'000'091'000);
}

// node (where a worker runs) is kept when known, left out when not, and
// does not change which worker a ref names: a record written before nodes
// were kept still names the same container.
BOOST_AUTO_TEST_CASE(a_workers_node_round_trips_and_is_not_part_of_its_identity) {
    auto s = sample();
    s.worker = worker_ref{"docker", "abc123", "ENGINE:ONE"};
    auto back = parse_session(serialize(s), s.id);
    BOOST_TEST(back.worker->node == "ENGINE:ONE");
    BOOST_TEST(to_json(s).at("worker").as_object().at("node") == "ENGINE:ONE");
    s.worker->node.clear();
    BOOST_TEST(!to_json(s).at("worker").as_object().contains("node"));
    BOOST_TEST(parse_session(serialize(s), s.id).worker->node.empty());
    BOOST_TEST((worker_ref{"docker", "abc123", "A"} == worker_ref{"docker", "abc123", ""}));
    BOOST_TEST((worker_ref{"docker", "abc123", "A"} != worker_ref{"docker", "abc124", "A"}));
    BOOST_TEST((worker_ref{"docker", "abc123"} != worker_ref{"process", "abc123"}));
    auto o = to_json(s);
    o["worker"] = {{"kind", "docker"}, {"id", "abc123"}, {"node", 7}};
    expect_error([&] { session_from_json(o, "k5"); }, error::corrupt_record, {"'worker'", "node"});
}

BOOST_AUTO_TEST_CASE(unknown_fields_survive_a_read_modify_write) {
    auto o = to_json(sample());
    o["added_by_v2"] = {{"x", 1}};
    auto s = session_from_json(o, "sess-1");
    s.status = session_status::active;
    auto written = to_json(s);
    BOOST_TEST(written.at("added_by_v2") == (boost::json::object{{"x", 1}}));
    BOOST_TEST(written.at("status") == "active");
}

BOOST_AUTO_TEST_CASE(corrupt_records_are_errors_naming_session_and_field) {
    auto with = [](std::string_view key, boost::json::value v) {
        auto o = to_json(sample());
        o[key] = std::move(v);
        return boost::json::value(o);
    };
    auto without = [](std::string_view key) {
        auto o = to_json(sample());
        o.erase(key);
        return boost::json::value(o);
    };
    expect_error([&] { session_from_json(with("idle_deadline", "soon"), "k1"); }, error::corrupt_record,
                 {"session 'k1'", "'idle_deadline'", "integer"});
    expect_error([&] { session_from_json(with("status", "napping"), "k2"); }, error::corrupt_record,
                 {"'k2'", "'status'"});
    expect_error([&] { session_from_json(with("v", 9), "k3"); }, error::corrupt_record, {"'v'", "is 9"});
    expect_error([&] { session_from_json(without("version"), "k4"); }, error::corrupt_record, {"'version'", "missing"});
    expect_error([&] { session_from_json(with("worker", 5), "k5"); }, error::corrupt_record, {"'worker'"});
    expect_error([&] { session_from_json(with("worker", {{"kind", 1}}), "k5"); }, error::corrupt_record, {"'worker'"});
    expect_error(
        [&] {
            session_from_json(with("attributes", {1, 2}), "k6");
        },
        error::corrupt_record, {"'attributes'", "array"});
    expect_error([&] { session_from_json(with("id", "bad id"), "k7"); }, error::corrupt_record, {"'id'"});
    expect_error([&] { session_from_json(with("version", -1), "k8"); }, error::corrupt_record, {"'version'"});
    expect_error([&] { session_from_json(with("created_at", 1.5), "k9"); }, error::corrupt_record,
                 {"'created_at'", "fraction"});
    expect_error([&] { session_from_json(with("idle_deadline", 17'000'000'091'000), "k9"); }, error::corrupt_record,
                 {"'idle_deadline'", "between 0 and"});
    expect_error([&] { session_from_json(with("ended_at", -5), "k9"); }, error::corrupt_record, {"'ended_at'"});
    expect_error([&] { session_from_json(with("idle_timeout_ms", INT64_MAX), "k9"); }, error::corrupt_record,
                 {"'idle_timeout_ms'", "100 years"});
    expect_error([&] { session_from_json(with("owner", 5), "k9"); }, error::corrupt_record,
                 {"'owner'", "must be a string, got an integer"});
    expect_error([] { session_from_json(boost::json::array{}, "k10"); }, error::corrupt_record,
                 {"'k10'", "must be a JSON object"});
    expect_error([] { parse_session("{\"v\":1,", "k11"); }, error::corrupt_record, {"'k11'", "not valid JSON"});
    expect_error([] { parse_session("garbage\xff", "k12"); }, error::corrupt_record, {"'k12'"});
    expect_error([] { parse_session(std::string(10000, '['), "k13"); }, error::corrupt_record, {"'k13'"});
}

BOOST_AUTO_TEST_CASE(mangled_records_never_crash) {
    // Byte-level damage to a valid record: every outcome is either a valid
    // session or a corrupt_record error (ASan/UBSan watch the rest).
    const std::string good = serialize(sample());
    std::mt19937 rng(12345);
    int parsed = 0, rejected = 0;
    for (int round = 0; round < 20000; ++round) {
        std::string text = good;
        int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits; ++e) {
            std::size_t pos = rng() % text.size();
            switch (rng() % 3) {
            case 0: text[pos] = static_cast<char>(rng() % 256); break;
            case 1: text.erase(pos, 1 + rng() % 8); break;
            default: text.insert(pos, 1, "{}[]\",:0-9aetnul\\"[rng() % 18]); break;
            }
            if (text.empty()) text = "x";
        }
        try {
            parse_session(text, "fuzz");
            ++parsed;
        } catch (const boost::system::system_error& e) {
            BOOST_REQUIRE(e.code() == make_error_code(error::corrupt_record));
            ++rejected;
        }
    }
    BOOST_TEST(rejected > 0);
    BOOST_TEST(parsed + rejected == 20000);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(clocks_and_events)

BOOST_AUTO_TEST_CASE(manual_clock_copies_share_one_time) {
    manual_clock a;
    manual_clock b = a;
    auto start = a.now();
    b.advance(90s);
    BOOST_TEST((a.now() - start == 90s));
    a.set(start);
    BOOST_TEST((b.now() == start));
}

BOOST_AUTO_TEST_CASE(system_clock_policy_tells_wall_time) {
    auto diff = system_clock_policy{}.now() - std::chrono::system_clock::now();
    BOOST_TEST(std::chrono::abs(diff) < 1s);
}

BOOST_AUTO_TEST_CASE(events_have_unique_ids_and_the_wire_fields) {
    auto e1 = make_event(event_type::expired, "s1", from_unix_ms(42), {{"reason", "idle"}});
    auto e2 = make_event(event_type::expired, "s1", from_unix_ms(42));
    BOOST_TEST(e1.id != e2.id);
    auto j = to_json(e1);
    BOOST_TEST(j.at("type") == "expired");
    BOOST_TEST(j.at("session_id") == "s1");
    BOOST_TEST(j.at("time") == 42);
    BOOST_TEST(j.at("data").at("reason") == "idle");
    BOOST_TEST(j.at("v") == 1);
}

BOOST_AUTO_TEST_SUITE_END()

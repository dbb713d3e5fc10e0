// jsonl_sink and fanout.
#include <sessionkit/sink/fanout.hpp>
#include <sessionkit/sink/jsonl.hpp>
#include <sessionkit/sink/null.hpp>

#include "support/recording_sink.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

using namespace sessionkit;

BOOST_AUTO_TEST_CASE(jsonl_writes_one_parsable_line_per_event) {
    std::ostringstream out;
    jsonl_sink sink(out);
    sink.emit(make_event(event_type::created, "a", from_unix_ms(1), {{"owner", "x"}}));
    sink.emit(make_event(event_type::expired, "b", from_unix_ms(2), {{"reason", "idle"}}));
    std::istringstream in(out.str());
    std::string line;
    std::vector<boost::json::value> lines;
    while (std::getline(in, line)) lines.push_back(boost::json::parse(line));
    BOOST_REQUIRE_EQUAL(lines.size(), 2u);
    BOOST_TEST(lines[0].at("type") == "created");
    BOOST_TEST(lines[1].at("data").at("reason") == "idle");
    BOOST_TEST(sink.dropped() == 0u);
}

BOOST_AUTO_TEST_CASE(jsonl_lines_from_many_threads_never_interleave) {
    std::ostringstream out;
    jsonl_sink sink(out);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([sink, t]() mutable {
            for (int i = 0; i < 500; ++i)
                sink.emit(make_event(event_type::status_changed, "t" + std::to_string(t), from_unix_ms(i),
                                     {{"pad", std::string(200, 'p')}}));
        });
    for (auto& th : threads) th.join();
    std::istringstream in(out.str());
    std::string line;
    std::set<std::string> ids;
    while (std::getline(in, line)) ids.insert(std::string(boost::json::parse(line).at("id").as_string()));
    BOOST_TEST(ids.size() == 2000u);
}

BOOST_AUTO_TEST_CASE(jsonl_to_a_file_appends_and_a_bad_path_is_a_clear_error) {
    std::string path = "/tmp/sessionkit-jsonl-test-" + generate_id() + ".jsonl";
    {
        jsonl_sink sink(path);
        sink.emit(make_event(event_type::created, "f", from_unix_ms(1)));
    }
    {
        jsonl_sink sink(path);
        sink.emit(make_event(event_type::terminated, "f", from_unix_ms(2)));
    }
    std::ifstream in(path);
    std::string a, b;
    BOOST_REQUIRE(std::getline(in, a));
    BOOST_REQUIRE(std::getline(in, b));
    BOOST_TEST(boost::json::parse(b).at("type") == "terminated");
    std::remove(path.c_str());
    try {
        jsonl_sink bad("/nonexistent-dir/x.jsonl");
        BOOST_FAIL("expected an error");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(std::string(e.what()).find("/nonexistent-dir/x.jsonl") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(a_failing_stream_counts_dropped_events_and_never_throws) {
    std::ostringstream out;
    out.setstate(std::ios::badbit);
    jsonl_sink sink(out);
    sink.emit(make_event(event_type::created, "a", from_unix_ms(1)));
    BOOST_TEST(sink.dropped() == 1u);
}

BOOST_AUTO_TEST_CASE(fanout_delivers_to_every_sink_in_order) {
    test::recording_sink a, b;
    fanout<test::recording_sink, null_sink, test::recording_sink> all(a, null_sink{}, b);
    all.emit(make_event(event_type::created, "x", from_unix_ms(1)));
    all.emit(make_event(event_type::expired, "x", from_unix_ms(2)));
    BOOST_TEST(a.events().size() == 2u);
    BOOST_TEST(b.count(event_type::expired) == 1u);
    BOOST_TEST(a.events()[0].id == b.events()[0].id);
}

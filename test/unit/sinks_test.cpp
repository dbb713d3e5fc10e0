// jsonl_sink and fanout.
#include <sessionkit/sink/fanout.hpp>
#include <sessionkit/sink/jsonl.hpp>
#include <sessionkit/sink/null.hpp>

#include <sessionkit/testing/run.hpp>

#include "support/recording_sink.hpp"

#include <boost/json/parse.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <streambuf>
#include <thread>

using namespace sessionkit;

BOOST_AUTO_TEST_CASE(jsonl_writes_one_parsable_line_per_event) {
    std::ostringstream out;
    jsonl_sink sink(out);
    sink.emit(make_event(event_type::created, "a", from_unix_ms(1), {{"owner", "x"}}));
    sink.emit(make_event(event_type::expired, "b", from_unix_ms(2), {{"reason", "idle"}}));
    sink.flush();
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
    sink.flush();
    BOOST_TEST(sink.dropped() == 0u);
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
    sink.flush();
    BOOST_TEST(sink.dropped() == 1u);
    out.clear();  // the stream takes lines again: later events are written
    sink.emit(make_event(event_type::created, "b", from_unix_ms(2)));
    sink.flush();
    BOOST_TEST(sink.dropped() == 1u);
    BOOST_TEST(out.str().find("\"session_id\":\"b\"") != std::string::npos, out.str());
}

namespace {

// A stream buffer whose writes wait until it is opened: the pipe of a
// reader that stopped reading (sessiond --events - | slow-consumer).
class gate_buf : public std::streambuf {
public:
    void open() {
        std::lock_guard lock(mutex_);
        open_ = true;
        changed_.notify_all();
    }
    /// Waits until a write is blocked on the closed gate.
    bool wait_for_a_blocked_writer(std::chrono::milliseconds patience) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, patience, [&] { return blocked_ > 0; });
    }
    std::string text() {
        std::lock_guard lock(mutex_);
        return text_;
    }

protected:
    std::streamsize xsputn(const char* s, std::streamsize n) override {
        std::unique_lock lock(mutex_);
        ++blocked_;
        changed_.notify_all();
        changed_.wait(lock, [&] { return open_; });
        --blocked_;
        text_.append(s, static_cast<std::size_t>(n));
        return n;
    }
    int_type overflow(int_type c) override {
        if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
        const char ch = traits_type::to_char_type(c);
        xsputn(&ch, 1);
        return c;
    }

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    bool open_ = false;
    int blocked_ = 0;
    std::string text_;
};

std::size_t lines_in(const std::string& text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

BOOST_AUTO_TEST_CASE(emit_returns_while_the_stream_is_stuck) {
    gate_buf gate;
    std::ostream out(&gate);
    {
        jsonl_sink sink(out);
        std::atomic<bool> returned{false};
        std::thread request([&] {
            sink.emit(make_event(event_type::created, "slow", from_unix_ms(1)));
            returned = true;
        });
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        while (!returned && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        BOOST_TEST(returned.load(), "emit() waited for the stream's reader");
        gate.open();
        request.join();
    }
    BOOST_TEST(lines_in(gate.text()) == 1u);
}

BOOST_AUTO_TEST_CASE(a_full_queue_drops_and_counts_and_never_waits) {
    gate_buf gate;
    std::ostream out(&gate);
    {
        jsonl_sink sink(out, 4);
        // The writer takes the first line and blocks on the stream with it.
        sink.emit(make_event(event_type::created, "e0", from_unix_ms(0)));
        BOOST_REQUIRE(gate.wait_for_a_blocked_writer(std::chrono::seconds(5)));
        const auto start = std::chrono::steady_clock::now();
        for (int i = 1; i < 10; ++i)
            sink.emit(make_event(event_type::created, "e" + std::to_string(i), from_unix_ms(i)));
        BOOST_TEST((std::chrono::steady_clock::now() - start < std::chrono::seconds(1)));
        // Four lines held (one being written, three waiting): e4..e9 dropped.
        BOOST_TEST(sink.queued() == 4u);
        BOOST_TEST(sink.dropped() == 6u);
        BOOST_TEST(!sink.flush_for(std::chrono::milliseconds(50)));  // still stuck: gives up in time
        gate.open();
        sink.flush();
        BOOST_TEST(sink.queued() == 0u);
        // Room again: the next event is written.
        sink.emit(make_event(event_type::created, "late", from_unix_ms(99)));
        sink.flush();
        BOOST_TEST(sink.dropped() == 6u);
    }
    const auto text = gate.text();
    BOOST_TEST(lines_in(text) == 5u);
    for (std::string_view id : {"e0", "e1", "e2", "e3", "late"})
        BOOST_TEST(text.find("\"session_id\":\"" + std::string(id) + "\"") != std::string::npos, id);
}

BOOST_AUTO_TEST_CASE(the_last_copy_writes_every_queued_line_before_it_goes) {
    gate_buf gate;
    std::ostream out(&gate);
    std::thread opener;
    {
        jsonl_sink sink(out);
        jsonl_sink copy = sink;  // copies share the queue and the writer
        for (int i = 0; i < 100; ++i)
            copy.emit(make_event(event_type::created, "q" + std::to_string(i), from_unix_ms(i)));
        BOOST_REQUIRE(gate.wait_for_a_blocked_writer(std::chrono::seconds(5)));
        opener = std::thread([&gate] {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            gate.open();
        });
    }  // the destructors wait for the writer to drain the queue
    opener.join();
    BOOST_TEST(lines_in(gate.text()) == 100u);
}

BOOST_AUTO_TEST_CASE(a_queue_of_no_lines_is_refused) {
    std::ostringstream out;
    BOOST_CHECK_THROW(jsonl_sink(out, 0), boost::system::system_error);
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

// ---- the confirmed path (publish), what an event_relay calls ----------------

namespace {
std::vector<event> three_events() {
    return {make_event(event_type::created, "p", from_unix_ms(1), {{"owner", "o"}}),
            make_event(event_type::status_changed, "p", from_unix_ms(2), {{"from", "active"}, {"to", "idle"}}),
            make_event(event_type::terminated, "p", from_unix_ms(3))};
}
}  // namespace

BOOST_AUTO_TEST_CASE(jsonl_publish_returns_once_the_batch_is_written_in_order) {
    std::ostringstream out;
    jsonl_sink sink(out);
    const auto batch = three_events();
    testing::sync_wait(sink.publish(batch));
    // No flush(): publish itself waited for the writer.
    std::istringstream in(out.str());
    std::string line;
    std::vector<std::string> ids;
    while (std::getline(in, line)) ids.push_back(std::string(boost::json::parse(line).at("id").as_string()));
    BOOST_REQUIRE_EQUAL(ids.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(ids[i] == batch[i].id);
}

BOOST_AUTO_TEST_CASE(jsonl_publish_to_a_file_with_fsync_lands_before_it_returns) {
    const std::string path = "/tmp/sessionkit-jsonl-publish-" + generate_id() + ".jsonl";
    jsonl_sink sink(path, jsonl_sink_options{.max_queued = 1, .fsync = true});
    const auto batch = three_events();
    testing::sync_wait(sink.publish(batch));
    std::ifstream in(path);
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) BOOST_TEST(boost::json::parse(line).at("id").as_string() == batch[n++].id);
    BOOST_TEST(n == 3u);  // max_queued bounds emit(), never a publish
    std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(jsonl_publish_to_a_failing_stream_throws_naming_the_first_event) {
    std::ostringstream out;
    out.setstate(std::ios::badbit);
    jsonl_sink sink(out);
    const auto batch = three_events();
    try {
        testing::sync_wait(sink.publish(batch));
        BOOST_FAIL("expected an error");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == make_error_code(error::backend_unavailable));
        BOOST_TEST(std::string(e.what()).find(batch.front().id) != std::string::npos, e.what());
    }
    BOOST_TEST(sink.dropped() == 0u);  // refused, not dropped: the relay publishes it again
    out.clear();
    testing::sync_wait(sink.publish(batch));
    // The retry wrote the whole batch, in order, after whatever of the
    // first attempt got through (at least once: readers de-duplicate by id).
    std::istringstream in(out.str());
    std::vector<std::string> ids;
    for (std::string line; std::getline(in, line);)
        ids.push_back(std::string(boost::json::parse(line).at("id").as_string()));
    BOOST_REQUIRE_GE(ids.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(ids[ids.size() - 3 + i] == batch[i].id);
}

BOOST_AUTO_TEST_CASE(jsonl_publish_to_a_full_device_throws) {
    // /dev/full refuses every write with ENOSPC.
    jsonl_sink sink(std::string("/dev/full"), jsonl_sink_options{});
    BOOST_CHECK_THROW(testing::sync_wait(sink.publish(three_events())), boost::system::system_error);
}

namespace {
// A confirming sink that records batches and fails the next `fail` ones
// (copies share both, as a fanout holds its own copy).
struct flaky_sink {
    struct state {
        std::vector<std::string> ids;
        int fail = 0;
    };
    std::shared_ptr<state> s = std::make_shared<state>();
    void emit(const event&) noexcept {}
    awaitable<void> publish(std::span<const event> batch) {
        if (s->fail > 0) {
            --s->fail;
            throw_error(error::backend_unavailable, "flaky_sink: down");
        }
        for (const auto& e : batch) s->ids.push_back(e.id);
        co_return;
    }
};
static_assert(confirming_sink<flaky_sink>);
}  // namespace

BOOST_AUTO_TEST_CASE(fanout_publish_confirms_only_when_every_sink_did) {
    std::ostringstream out;
    flaky_sink down;
    down.s->fail = 1;
    fanout<flaky_sink, jsonl_sink> both(down, jsonl_sink(out));
    const auto batch = three_events();
    BOOST_CHECK_THROW(testing::sync_wait(both.publish(batch)), boost::system::system_error);
    BOOST_TEST(lines_in(out.str()) == 3u);    // the sink after the failing one was still given the batch
    testing::sync_wait(both.publish(batch));  // the relay's retry: now both confirm
    BOOST_TEST(down.s->ids.size() == 3u);
    BOOST_TEST(down.s->ids.front() == batch.front().id);
    BOOST_TEST(lines_in(out.str()) == 6u);  // a jsonl file sees the batch twice (readers de-duplicate by id)
}

// event_relay: its lease decisions without I/O, then the relay itself over
// a memory_store outbox and a sink that can refuse (support/confirming_recorder).
#include "support/confirming_recorder.hpp"

#include <sessionkit/event_relay.hpp>
#include <sessionkit/registry.hpp>
#include <sessionkit/relay/detail/lease.hpp>
#include <sessionkit/store/memory.hpp>
#include <sessionkit/testing/eventually.hpp>
#include <sessionkit/testing/io_threads.hpp>
#include <sessionkit/testing/run.hpp>
#include <sessionkit/testing/store_fixtures.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using sessionkit::detail::partition_lease;
using step = partition_lease::step;

BOOST_AUTO_TEST_SUITE(relay_lease)

BOOST_AUTO_TEST_CASE(a_free_partition_is_tried_at_once_then_a_third_of_a_lease_later) {
    partition_lease lease(9000ms);
    const auto t0 = partition_lease::steady::time_point{} + 1h;
    BOOST_TEST((lease.next(t0) == step::acquire));
    lease.tried(std::nullopt, t0, 500ms);  // someone else holds it
    BOOST_TEST((lease.next(t0 + 3000ms) == step::wait));
    BOOST_TEST((lease.due_at() == t0 + 3500ms));
    BOOST_TEST((lease.next(t0 + 3500ms) == step::acquire));
}

BOOST_AUTO_TEST_CASE(a_held_partition_is_worked_and_renewed_every_third_of_the_lease) {
    partition_lease lease(9000ms);
    const auto t0 = partition_lease::steady::time_point{} + 1h;
    lease.tried(std::string("tok"), t0);
    BOOST_TEST(lease.held());
    BOOST_TEST((lease.next(t0 + 2999ms) == step::work));
    BOOST_TEST((lease.next(t0 + 3000ms) == step::renew));
    lease.renewed(true, t0 + 3000ms);
    BOOST_TEST((lease.next(t0 + 5000ms) == step::work));
    BOOST_TEST((lease.next(t0 + 6000ms) == step::renew));
}

BOOST_AUTO_TEST_CASE(a_lost_renewal_stops_the_work_and_tries_again_later) {
    partition_lease lease(9000ms);
    const auto t0 = partition_lease::steady::time_point{} + 1h;
    lease.tried(std::string("tok"), t0);
    lease.renewed(false, t0 + 3000ms);
    BOOST_TEST(!lease.held());
    BOOST_TEST((lease.next(t0 + 3001ms) == step::wait));
    BOOST_TEST((lease.next(t0 + 6000ms) == step::acquire));
}

BOOST_AUTO_TEST_CASE(a_store_error_keeps_the_lease_and_retries_the_step_later) {
    partition_lease lease(9000ms);
    const auto t0 = partition_lease::steady::time_point{} + 1h;
    lease.failed(t0);  // try_lock threw
    BOOST_TEST((lease.next(t0 + 1ms) == step::wait));
    lease.tried(std::string("tok"), t0 + 3000ms);
    lease.failed(t0 + 6000ms);  // extend_lock threw: the lock may well still be ours
    BOOST_TEST(lease.held());
    BOOST_TEST((lease.next(t0 + 6001ms) == step::work));
    BOOST_TEST((lease.release() == std::optional<std::string>("tok")));
    BOOST_TEST(!lease.held());
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

using namespace sessionkit;
using sessionkit::testing::eventually;
using sessionkit::testing::sync_wait;
using sessionkit::testing::conformance::make_record;

memory_store_options with_outbox(outbox_options o = {}) { return memory_store_options{.outbox = o}; }

// A relay running on its own thread until stopped (or destroyed).
template <class Relay>
class running {
public:
    explicit running(Relay& relay) : relay_(relay) {
        boost::asio::co_spawn(io_.executor(), relay_.run(), [this](std::exception_ptr e) {
            failure_ = e;
            done_ = true;
        });
    }
    ~running() { stop(); }
    running(const running&) = delete;
    running& operator=(const running&) = delete;
    void stop() {
        relay_.stop();
        BOOST_REQUIRE(eventually([&] { return done_.load(); }));
        BOOST_TEST(!failure_);
    }

private:
    Relay& relay_;
    sessionkit::testing::io_threads io_{1};
    std::atomic<bool> done_{false};
    std::exception_ptr failure_;
};

struct log_lines {
    std::mutex mutex;
    std::vector<std::string> lines;
    std::function<void(std::string_view)> sink() {
        return [this](std::string_view line) {
            std::lock_guard lock(mutex);
            lines.emplace_back(line);
        };
    }
    bool mentions(const std::string& text) {
        std::lock_guard lock(mutex);
        for (auto& l : lines)
            if (l.find(text) != std::string::npos) return true;
        return false;
    }
};

event_relay_options quick(log_lines& log) {
    event_relay_options o;
    o.lease = std::chrono::milliseconds{60};
    o.poll_interval = std::chrono::milliseconds{5};
    o.retry_min = std::chrono::milliseconds{1};
    o.retry_max = std::chrono::milliseconds{4};
    o.log = log.sink();
    return o;
}

std::vector<std::string> ids_of(const std::vector<event>& events) {
    std::vector<std::string> ids;
    for (auto& e : events) ids.push_back(e.id);
    return ids;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(event_relay_over_memory)

BOOST_AUTO_TEST_CASE(a_registrys_events_reach_the_sink_through_the_outbox_in_order) {
    memory_store store(with_outbox());
    test::confirming_recorder sink;
    basic_session_registry<memory_store, system_clock_policy, test::confirming_recorder> registry(store, {}, {}, sink);
    log_lines log;
    event_relay<memory_store, test::confirming_recorder> relay(store, sink, quick(log));
    running run(relay);
    sync_wait(registry.acquire("ra"));
    sync_wait(registry.acquire("rb"));
    sync_wait(registry.set_status("ra", session_status::idle));
    sync_wait(registry.terminate("rb"));
    BOOST_REQUIRE(
        eventually([&] { return sync_wait(store.outbox_stats()).depth == 0 && sink.confirmed_count() >= 4; }));
    run.stop();

    BOOST_TEST(sink.emitted().empty());  // nothing took the best-effort path
    auto got = sink.confirmed();
    std::vector<std::string> ra, rb;
    for (auto& e : got) (e.session_id == "ra" ? ra : rb).emplace_back(to_string(e.type));
    BOOST_TEST(ra == (std::vector<std::string>{"created", "status_changed"}));
    BOOST_REQUIRE(!rb.empty());
    BOOST_TEST(rb.front() == "created");
    BOOST_TEST(rb.back() == "terminated");
    auto ids = ids_of(got);
    BOOST_TEST(std::set<std::string>(ids.begin(), ids.end()).size() == ids.size());  // each once
    BOOST_TEST(relay.stats().published == got.size());
}

BOOST_AUTO_TEST_CASE(a_refused_batch_is_published_again_with_the_same_ids_and_trimmed_only_after) {
    memory_store store(with_outbox());
    test::confirming_recorder sink;
    std::vector<event> sent;
    for (int i = 0; i < 6; ++i)
        sent.push_back(make_event(event_type::status_changed, "rr", system_clock_policy{}.now()));
    store.create_now(make_record("rr"), sent);
    sink.refuse_next(3);
    log_lines log;
    event_relay<memory_store, test::confirming_recorder> relay(store, sink, quick(log));
    {
        running run(relay);
        BOOST_REQUIRE(eventually([&] { return sink.confirmed_count() >= sent.size(); }));
        BOOST_REQUIRE(eventually([&] { return store.outbox_stats_now().depth == 0; }));
    }
    BOOST_TEST(ids_of(sink.confirmed()) == ids_of(sent));  // once, in order, same ids
    BOOST_TEST(sink.attempts() == 4);
    BOOST_TEST(relay.stats().publish_errors == 3u);
    BOOST_TEST(log.mentions("publish failed (attempt 1"));
    BOOST_TEST(log.mentions("publishing again after 3 failed attempts"));
}

BOOST_AUTO_TEST_CASE(while_the_sink_refuses_the_outbox_keeps_every_event) {
    memory_store store(with_outbox());
    test::confirming_recorder sink;
    sink.refuse_next(1'000'000);
    log_lines log;
    event_relay<memory_store, test::confirming_recorder> relay(store, sink, quick(log));
    running run(relay);
    store.create_now(make_record("kept"), {make_event(event_type::created, "kept", system_clock_policy{}.now())});
    BOOST_REQUIRE(eventually([&] { return sink.attempts() >= 5; }));
    BOOST_TEST(store.outbox_stats_now().depth == 1u);
    BOOST_TEST(sink.confirmed_count() == 0u);
    sink.refuse_next(0);
    BOOST_REQUIRE(eventually([&] { return store.outbox_stats_now().depth == 0; }));
    BOOST_TEST(sink.confirmed_count() == 1u);
}

BOOST_AUTO_TEST_CASE(one_relay_holds_a_partition_and_another_takes_over_when_it_stops) {
    memory_store store(with_outbox());
    test::confirming_recorder sink;
    log_lines log;
    event_relay<memory_store, test::confirming_recorder> first(store, sink, quick(log)),
        second(store, sink, quick(log));
    auto write = [&](const std::string& id) {
        store.create_now(make_record(id), {make_event(event_type::created, id, system_clock_policy{}.now())});
    };
    running second_run(second);
    {
        running first_run(first);
        BOOST_REQUIRE(eventually([&] { return first.stats().partitions_held + second.stats().partitions_held == 1; }));
        for (int i = 0; i < 20; ++i) write("t" + std::to_string(i));
        BOOST_REQUIRE(eventually([&] { return sink.confirmed_count() == 20; }));
        // Still exactly one holder.
        BOOST_TEST(first.stats().partitions_held + second.stats().partitions_held == 1u);
        if (second.stats().partitions_held == 1) {
            // second got it first: stop it instead, by swapping roles below.
            second_run.stop();
            for (int i = 20; i < 40; ++i) write("t" + std::to_string(i));
            BOOST_REQUIRE(eventually([&] { return sink.confirmed_count() == 40; }));
            BOOST_TEST(first.stats().partitions_held == 1u);
            first_run.stop();
        } else {
            first_run.stop();
            for (int i = 20; i < 40; ++i) write("t" + std::to_string(i));
            BOOST_REQUIRE(eventually([&] { return sink.confirmed_count() == 40; }));
            BOOST_TEST(second.stats().partitions_held == 1u);
        }
    }
    auto ids = ids_of(sink.confirmed());
    BOOST_TEST(std::set<std::string>(ids.begin(), ids.end()).size() == 40u);  // none twice
    BOOST_TEST(first.stats().published + second.stats().published == 40u);
}

BOOST_AUTO_TEST_CASE(stop_releases_the_lease_at_once) {
    memory_store store(with_outbox());
    test::confirming_recorder sink;
    log_lines log;
    auto options = quick(log);
    options.lease = std::chrono::seconds{60};
    event_relay<memory_store, test::confirming_recorder> relay(store, sink, options);
    {
        running run(relay);
        BOOST_REQUIRE(eventually([&] { return relay.stats().partitions_held == 1; }));
        BOOST_TEST(!store.try_lock_now("outbox-relay:0", std::chrono::seconds{1}, system_clock_policy{}.now()));
    }
    BOOST_TEST(relay.stats().partitions_held == 0u);
    BOOST_TEST(store.try_lock_now("outbox-relay:0", std::chrono::seconds{1}, system_clock_policy{}.now()).has_value());
}

BOOST_AUTO_TEST_CASE(each_event_the_outbox_dropped_is_logged_by_id) {
    memory_store store(with_outbox(outbox_options{.max_events = 2}));
    std::vector<event> sent;
    for (int i = 0; i < 4; ++i)
        sent.push_back(make_event(event_type::status_changed, "over", system_clock_policy{}.now()));
    store.create_now(make_record("over"), sent);
    test::confirming_recorder sink;
    log_lines log;
    event_relay<memory_store, test::confirming_recorder> relay(store, sink, quick(log));
    {
        running run(relay);
        BOOST_REQUIRE(eventually([&] { return relay.stats().dropped_logged == 2 && sink.confirmed_count() == 2; }));
    }
    BOOST_TEST(log.mentions("dropped event " + sent[0].id));
    BOOST_TEST(log.mentions("dropped event " + sent[1].id));
    BOOST_TEST(!log.mentions(sent[2].id));
    BOOST_TEST(ids_of(sink.confirmed()) == (std::vector<std::string>{sent[2].id, sent[3].id}));
}

BOOST_AUTO_TEST_CASE(a_relay_needs_an_outbox_and_sane_options) {
    test::confirming_recorder sink;
    memory_store without;
    auto fails_naming = [](auto make, const std::string& what) {
        try {
            make();
            BOOST_FAIL("expected invalid_argument naming " + what);
        } catch (const boost::system::system_error& e) {
            BOOST_TEST(e.code() == make_error_code(error::invalid_argument));
            BOOST_TEST(std::string(e.what()).find(what) != std::string::npos, e.what());
        }
    };
    fails_naming([&] { event_relay<memory_store, test::confirming_recorder> r(without, sink); }, "outbox is off");
    memory_store store(with_outbox());
    event_relay_options o;
    o.batch_size = 0;
    fails_naming([&] { event_relay<memory_store, test::confirming_recorder> r(store, sink, o); }, "batch_size");
    o = {};
    o.lease = std::chrono::milliseconds{1};
    fails_naming([&] { event_relay<memory_store, test::confirming_recorder> r(store, sink, o); }, "lease");
}

BOOST_AUTO_TEST_SUITE_END()

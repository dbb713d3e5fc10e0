// The registry's and janitor's worker paths, with a fake spawner (logic only).
#include <sessionkit/sessionkit.hpp>

#include "support/fake_spawner.hpp"
#include "support/recording_sink.hpp"
#include "support/run.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>

using namespace sessionkit;
using namespace std::chrono_literals;
using test::sync_wait;

namespace {
struct fixture {
    memory_store store;
    manual_clock clock;
    test::recording_sink events;
    test::fake_spawner workers;
    session_registry<memory_store, manual_clock, test::recording_sink, test::fake_spawner> registry{
        store, registry_options{.idle_timeout = 60s}, clock, events, workers};
};
} // namespace

BOOST_FIXTURE_TEST_SUITE(worker_logic, fixture)

BOOST_AUTO_TEST_CASE(acquire_spawns_once_and_records_the_worker) {
    auto first = sync_wait(registry.acquire("w1"));
    BOOST_TEST(first.created);
    BOOST_TEST(to_string(first.record.status) == "active");
    BOOST_REQUIRE(first.record.worker);
    BOOST_TEST(first.record.worker->id == "w-w1");
    BOOST_TEST(sync_wait(registry.get("w1"))->worker->kind == "fake");
    auto again = sync_wait(registry.acquire("w1"));
    BOOST_TEST(!again.created);
    BOOST_TEST(again.record.worker->id == "w-w1");
    BOOST_TEST(workers.spawns() == 1);
    BOOST_TEST(events.count(event_type::worker_started) == 1u);
}

BOOST_AUTO_TEST_CASE(concurrent_acquires_spawn_one_worker_per_session) {
    boost::asio::io_context ctx;
    for (int c = 0; c < 4000; ++c)
        boost::asio::co_spawn(ctx, [&, c]() -> awaitable<void> {
            co_await registry.acquire("hot" + std::to_string(c % 100));
        }, boost::asio::detached);
    test::run_threads(ctx, 4);
    BOOST_TEST(workers.spawns() == 100);
    BOOST_TEST(events.count(event_type::created) == 100u);
}

BOOST_AUTO_TEST_CASE(a_failed_spawn_leaves_a_failed_session_and_a_clear_error) {
    workers.fail_spawns(true);
    try {
        sync_wait(registry.acquire("broken"));
        BOOST_FAIL("expected spawn_failed");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == make_error_code(error::spawn_failed));
        BOOST_TEST(std::string(e.what()).find("image 'nope' not found") != std::string::npos);
    }
    auto s = sync_wait(registry.get("broken"));
    BOOST_TEST(to_string(s->status) == "failed");
    BOOST_TEST(s->end_reason == "spawn_failed");
    auto ev = events.events().back();
    BOOST_TEST(to_string(ev.type) == "status_changed");
    BOOST_TEST(ev.data.at("to") == "failed");
    // Acquiring again once the cause is gone starts a fresh session.
    workers.fail_spawns(false);
    auto fresh = sync_wait(registry.acquire("broken"));
    BOOST_TEST(fresh.created);
    BOOST_TEST(to_string(fresh.record.status) == "active");
}

BOOST_AUTO_TEST_CASE(terminate_stops_the_worker_through_stopping) {
    sync_wait(registry.acquire("t1"));
    BOOST_TEST(workers.running("w-t1"));
    auto done = sync_wait(registry.terminate("t1", "logout"));
    BOOST_TEST(to_string(done->status) == "terminated");
    BOOST_TEST(!workers.running("w-t1"));
    BOOST_TEST(workers.stops() == 1);
    // status_changed to stopping came before terminated.
    auto evs = events.events();
    BOOST_TEST(evs[evs.size() - 2].data.at("to") == "stopping");
    BOOST_TEST(to_string(evs.back().type) == "terminated");
    sync_wait(registry.terminate("t1"));
    BOOST_TEST(workers.stops() == 1);
}

BOOST_AUTO_TEST_CASE(the_janitor_stops_the_worker_of_an_expired_session) {
    sync_wait(registry.acquire("e1"));
    janitor jan(registry, {.warning_window = 0s, .log = [](std::string_view) {}});
    clock.advance(61s);
    BOOST_TEST(sync_wait(jan.sweep_once()).expired == 1u);
    BOOST_TEST(!workers.running("w-e1"));
    BOOST_TEST(to_string(sync_wait(registry.get("e1"))->status) == "terminated");
}

BOOST_AUTO_TEST_CASE(a_terminate_that_died_midway_is_finished_by_the_janitor) {
    // The instance marked it stopping (with the stop lease), then vanished.
    auto s = sync_wait(registry.acquire("half")).record;
    session stopping = s;
    stopping.status = session_status::stopping;
    stopping.idle_deadline = clock.now() + registry.options().stop_lease;
    stopping.end_reason = "deleted";
    BOOST_REQUIRE(sync_wait(store.update(stopping, s.version)) == update_result::updated);
    janitor jan(registry, {.warning_window = 0s, .log = [](std::string_view) {}});
    clock.advance(registry.options().stop_lease - 1s);
    BOOST_TEST(sync_wait(jan.sweep_once()).expired == 0u);
    clock.advance(2s);
    BOOST_TEST(sync_wait(jan.sweep_once()).expired == 1u);
    BOOST_TEST(!workers.running("w-half"));
    auto done = sync_wait(registry.get("half"));
    BOOST_TEST(to_string(done->status) == "terminated");
    BOOST_TEST(done->end_reason == "deleted");
    BOOST_TEST(sync_wait(registry.stats()).expired_total == 0u);  // it was a delete, not an expiry
}

BOOST_AUTO_TEST_SUITE_END()

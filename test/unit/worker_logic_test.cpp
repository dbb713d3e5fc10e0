// The registry's and janitor's worker paths, with a fake spawner (logic only).
#include <sessionkit/sessionkit.hpp>

#include "support/recording_sink.hpp"
#include <sessionkit/testing/fake_spawner.hpp>
#include <sessionkit/testing/run.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <utility>

using namespace sessionkit;
using namespace std::chrono_literals;
using testing::sync_wait;

namespace {
struct fixture {
    memory_store store;
    manual_clock clock;
    test::recording_sink events;
    testing::fake_spawner workers;
    basic_session_registry<memory_store, manual_clock, test::recording_sink, testing::fake_spawner> registry{
        store, registry_options{.idle_timeout = 60s}, clock, events, workers};

    /// A session whose worker is being started (its creator's view, or what
    /// a creator that died mid-spawn left behind).
    session initializing(std::string id) const {
        session s;
        s.id = std::move(id);
        s.status = session_status::initializing;
        s.created_at = s.last_active = clock.now();
        s.idle_timeout = 60s;
        s.idle_deadline = clock.now() + 60s;
        return s;
    }
};
}  // namespace

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
        boost::asio::co_spawn(
            ctx, [&, c]() -> awaitable<void> { co_await registry.acquire("hot" + std::to_string(c % 100)); },
            boost::asio::detached);
    testing::run_threads(ctx, 4);
    BOOST_TEST(workers.spawns() == 100);
    BOOST_TEST(events.count(event_type::created) == 100u);
}

// Issue 12, defect 6: a status set by hand while the worker starts made
// start_worker stop the worker it had just started, leaving an `active`
// session with no worker.
BOOST_AUTO_TEST_CASE(a_status_change_during_the_spawn_is_refused_and_the_worker_is_kept) {
    workers.spawn_delay(50ms);
    boost::asio::io_context ctx;
    std::optional<acquire_result> acquired;
    std::string refusal;
    boost::asio::co_spawn(
        ctx, [&]() -> awaitable<void> { acquired = co_await registry.acquire("p1"); }, boost::asio::detached);
    boost::asio::co_spawn(
        ctx,
        [&]() -> awaitable<void> {
            boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, 10ms);
            co_await t.async_wait(boost::asio::use_awaitable);
            try {
                co_await registry.set_status("p1", session_status::active);
            } catch (const boost::system::system_error& e) {
                refusal = e.what();
                BOOST_TEST((e.code() == make_error_code(error::invalid_transition)));
            }
        },
        boost::asio::detached);
    ctx.run();
    BOOST_TEST_MESSAGE(refusal);
    BOOST_TEST(refusal.find("initializing") != std::string::npos);
    BOOST_REQUIRE(acquired);
    BOOST_REQUIRE(acquired->record.worker);
    auto stored = sync_wait(registry.get("p1"));
    BOOST_TEST(to_string(stored->status) == "active");
    BOOST_REQUIRE(stored->worker);
    BOOST_TEST(workers.running(stored->worker->id));
    BOOST_TEST(workers.stops() == 0);
}

// Issue 12, defect 5: acquire read the record while it was initializing,
// and its touch then reported the creator's `active`: the touch's fields
// stitched onto the old record made an active session with no worker.
namespace {
struct racing_store : memory_store {
    std::function<void()> before_touch;  // runs once, as if another caller wrote first
    awaitable<std::optional<touch_result>> touch(std::string_view id, time_point now) {
        if (auto hook = std::exchange(before_touch, nullptr)) hook();
        co_return co_await memory_store::touch(id, now);
    }
};
static_assert(session_store<racing_store>);
}  // namespace

BOOST_AUTO_TEST_CASE(an_acquire_that_read_the_record_before_its_worker_was_recorded_returns_the_worker) {
    racing_store racing;
    basic_session_registry<racing_store, manual_clock, test::recording_sink, testing::fake_spawner> reg(
        racing, registry_options{.idle_timeout = 60s}, clock, events, workers);
    BOOST_REQUIRE(sync_wait(racing.create(initializing("r1"))).created);
    racing.before_touch = [&] {
        // The creator records its worker between our create and our touch.
        auto current = sync_wait(racing.get("r1"));
        session next = *current;
        next.status = session_status::active;
        next.worker = worker_ref{"fake", "w-r1"};
        BOOST_REQUIRE(sync_wait(racing.update(next, current->version)) == update_result::updated);
    };
    auto got = sync_wait(reg.acquire("r1"));
    BOOST_TEST(!got.created);
    BOOST_TEST(to_string(got.record.status) == "active");
    BOOST_REQUIRE(got.record.worker);
    BOOST_TEST(got.record.worker->id == "w-r1");
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

BOOST_AUTO_TEST_CASE(concurrent_acquires_all_get_the_running_worker) {
    // Waiters touch the initializing record while its creator spawns; the
    // creator must still record the worker, and every waiter return it.
    workers.spawn_delay(20ms);
    boost::asio::io_context ctx;
    std::atomic<int> with_worker{0}, active{0};
    for (int c = 0; c < 200; ++c)
        boost::asio::co_spawn(
            ctx,
            [&, c]() -> awaitable<void> {
                auto got = co_await registry.acquire("busy" + std::to_string(c % 4));
                if (got.record.worker && got.record.worker->id == "w-" + got.record.id) ++with_worker;
                if (got.record.status == session_status::active) ++active;
            },
            boost::asio::detached);
    testing::run_threads(ctx, 4);
    BOOST_TEST(workers.spawns() == 4);
    BOOST_TEST(with_worker.load() == 200);
    BOOST_TEST(active.load() == 200);
}

BOOST_AUTO_TEST_CASE(waiters_for_a_spawn_that_fails_get_the_failure_and_spawn_nothing_more) {
    workers.spawn_delay(20ms);
    workers.fail_spawns(true);
    boost::asio::io_context ctx;
    std::atomic<int> spawn_failed{0};
    for (int c = 0; c < 50; ++c)
        boost::asio::co_spawn(
            ctx,
            [&]() -> awaitable<void> {
                try {
                    co_await registry.acquire("doomed");
                } catch (const boost::system::system_error& e) {
                    if (e.code() == make_error_code(error::spawn_failed)) ++spawn_failed;
                }
            },
            boost::asio::detached);
    testing::run_threads(ctx, 2);
    BOOST_TEST(spawn_failed.load() == 50);
    BOOST_TEST(workers.spawns() == 1);
}

BOOST_AUTO_TEST_CASE(a_session_whose_creator_died_while_spawning_gets_its_worker_from_the_next_acquire) {
    // What a creator leaves when it dies between create and spawn.
    BOOST_REQUIRE(sync_wait(store.create(initializing("orphan"))).created);
    clock.advance(registry.options().spawn_timeout);
    auto got = sync_wait(registry.acquire("orphan"));
    BOOST_TEST(!got.created);
    BOOST_TEST(to_string(got.record.status) == "active");
    BOOST_REQUIRE(got.record.worker);
    BOOST_TEST(workers.spawns() == 1);
}

BOOST_AUTO_TEST_CASE(a_worker_that_exits_with_0_terminates_its_session_and_one_that_fails_fails_it) {
    sync_wait(registry.acquire("ok"));
    sync_wait(registry.acquire("bad"));
    sync_wait(registry.acquire("killed"));
    sync_wait(workers.report_exit("ok", {.exit_code = 0}));
    sync_wait(workers.report_exit("bad", {.exit_code = 3}));
    sync_wait(workers.report_exit("killed", {.exit_code = -1, .signal = 9}));
    auto ok = sync_wait(registry.get("ok"));
    auto bad = sync_wait(registry.get("bad"));
    auto killed = sync_wait(registry.get("killed"));
    BOOST_TEST(to_string(ok->status) == "terminated");
    BOOST_TEST(to_string(bad->status) == "failed");
    BOOST_TEST(to_string(killed->status) == "failed");
    BOOST_TEST(bad->end_reason == "worker_exited");
    BOOST_TEST(workers.stops() == 3);  // what is left of each is cleaned up once
    std::map<std::string, boost::json::object> exits;
    for (auto& e : events.events())
        if (e.type == event_type::worker_exited) exits[e.session_id] = e.data;
    BOOST_REQUIRE(exits.size() == 3u);
    BOOST_TEST(exits["ok"].at("exit_code") == 0);
    BOOST_TEST(exits["bad"].at("exit_code") == 3);
    BOOST_TEST(exits["bad"].at("status") == "failed");
    BOOST_TEST(exits["killed"].at("signal") == 9);
    // Whoever ended it announces the exit after its terminated event.
    auto evs = events.events();
    BOOST_TEST(to_string(evs.back().type) == "worker_exited");
    BOOST_TEST(to_string(evs[evs.size() - 2].type) == "terminated");
}

BOOST_AUTO_TEST_CASE(a_worker_that_exits_before_it_is_recorded_still_ends_its_session) {
    workers.exit_on_spawn(worker_exit{.exit_code = 127});
    auto got = sync_wait(registry.acquire("short"));
    BOOST_TEST(got.created);
    BOOST_TEST(to_string(got.record.status) == "failed");
    BOOST_TEST(got.record.end_reason == "worker_exited");
    BOOST_TEST(events.count(event_type::worker_exited) == 1u);
}

BOOST_AUTO_TEST_CASE(the_exit_of_a_worker_the_session_no_longer_has_changes_nothing) {
    sync_wait(registry.acquire("kept"));
    sync_wait(workers.report_exit_of("kept", worker_ref{"fake", "w-from-before"}, {.exit_code = 1}));
    BOOST_TEST(to_string(sync_wait(registry.get("kept"))->status) == "active");
    BOOST_TEST(events.count(event_type::worker_exited) == 0u);
    sync_wait(workers.report_exit_of("kept", worker_ref{"other-kind", "w-kept"}, {.exit_code = 1}));
    BOOST_TEST(to_string(sync_wait(registry.get("kept"))->status) == "active");
}

BOOST_AUTO_TEST_CASE(worker_output_is_kept_in_the_store_and_read_by_offset) {
    sync_wait(registry.acquire("talk"));
    sync_wait(workers.report_output("talk", "hello "));
    sync_wait(workers.report_output("talk", "world\n"));
    auto all = sync_wait(registry.read_output("talk", 0));
    BOOST_TEST(all.data == "hello world\n");
    BOOST_TEST(all.next_offset == 12u);
    auto tail = sync_wait(registry.read_output("talk", 6, 3));
    BOOST_TEST(tail.data == "wor");
    BOOST_TEST(tail.offset == 6u);
    BOOST_TEST(tail.next_offset == 9u);
    BOOST_TEST(!tail.dropped);
    BOOST_TEST(sync_wait(registry.read_output("talk", 12)).data.empty());
    BOOST_CHECK_THROW(sync_wait(registry.read_output("talk", 13)), boost::system::system_error);
    BOOST_CHECK_THROW(sync_wait(registry.read_output("nobody", 0)), boost::system::system_error);
    // A failed worker's last words stay readable after its session ended.
    sync_wait(workers.report_output("talk", "fatal: out of cheese\n"));
    sync_wait(workers.report_exit("talk", {.exit_code = 2}));
    BOOST_TEST(sync_wait(registry.read_output("talk", 12)).data == "fatal: out of cheese\n");
}

BOOST_AUTO_TEST_CASE(input_reaches_the_worker_and_counts_as_use) {
    auto s = sync_wait(registry.acquire("in")).record;
    clock.advance(30s);
    sync_wait(registry.send_input("in", "ls\n"));
    BOOST_TEST(workers.input_of("w-in") == "ls\n");
    BOOST_TEST(to_unix_ms(sync_wait(registry.get("in"))->idle_deadline) == to_unix_ms(clock.now() + 60s));
    auto code_of = [&](std::string_view id) {
        try {
            sync_wait(registry.send_input(id, "x"));
        } catch (const boost::system::system_error& e) {
            return e.code().value();
        }
        return 0;
    };
    BOOST_TEST(code_of("absent") == static_cast<int>(error::not_found));
    sync_wait(registry.terminate("in"));
    BOOST_TEST(code_of("in") == static_cast<int>(error::invalid_transition));
}

BOOST_AUTO_TEST_CASE(a_registry_without_input_or_output_says_so) {
    memory_store plain_store;
    memory_registry plain(plain_store);
    sync_wait(plain.acquire("p"));
    try {
        sync_wait(plain.send_input("p", "x"));
        BOOST_FAIL("expected invalid_argument");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(e.code() == make_error_code(error::invalid_argument));
        BOOST_TEST(std::string(e.what()).find("'none' spawner") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(reconciliation_removes_orphans_and_fails_sessions_whose_worker_is_gone) {
    sync_wait(registry.acquire("kept"));
    sync_wait(registry.acquire("lost"));
    workers.vanish("w-lost");          // its worker is gone without a word
    workers.leave_running("w-ghost");  // a worker whose session never existed here
    sync_wait(registry.acquire("ended"));
    sync_wait(registry.terminate("ended"));
    workers.leave_running("w-ended");  // a worker of an ended session, still there
    std::vector<std::string> log;
    janitor jan(registry, {.warning_window = 0s, .log = [&](std::string_view l) { log.emplace_back(l); }});
    auto report = sync_wait(jan.sweep_once());
    BOOST_TEST(report.reconciled);
    BOOST_TEST(report.workers_lost == 1u);
    BOOST_TEST(report.orphans_removed == 2u);
    BOOST_TEST(!workers.running("w-ghost"));
    BOOST_TEST(!workers.running("w-ended"));
    BOOST_TEST(workers.running("w-kept"));
    auto lost = sync_wait(registry.get("lost"));
    BOOST_TEST(to_string(lost->status) == "failed");
    BOOST_TEST(lost->end_reason == "worker_lost");
    BOOST_TEST(to_string(sync_wait(registry.get("kept"))->status) == "active");
    bool announced = false;
    for (auto& e : events.events())
        if (e.type == event_type::worker_exited && e.session_id == "lost")
            announced = e.data.at("reason") == "worker_lost";
    BOOST_TEST(announced);
    BOOST_TEST(log.size() == 3u);
    // Not again before reconcile_interval has passed.
    workers.leave_running("w-ghost");
    BOOST_TEST(!sync_wait(jan.sweep_once()).reconciled);
    BOOST_TEST(workers.running("w-ghost"));
    BOOST_TEST(sync_wait(jan.reconcile_once()).orphans_removed == 1u);
}

BOOST_AUTO_TEST_CASE(reconciliation_leaves_a_spawn_in_progress_alone_unless_its_creator_died) {
    // A worker already running for a session that is still initializing:
    // its creator is about to record it.
    BOOST_REQUIRE(sync_wait(store.create(initializing("young"))).created);
    workers.leave_running("w-young");
    janitor jan(registry, {.warning_window = 0s, .reconcile_interval = 1ms, .log = [](std::string_view) {}});
    BOOST_TEST(sync_wait(jan.reconcile_once()).orphans_removed == 0u);
    BOOST_TEST(workers.running("w-young"));
    clock.advance(registry.options().spawn_timeout);
    BOOST_TEST(sync_wait(jan.reconcile_once()).orphans_removed == 1u);
}

// Issue 12, defect 3: cancelling run() while a batch was being finished
// destroyed the batch under the coroutines still finishing it (ASan:
// heap-use-after-free). Now the sessions in hand are finished, the rest stay
// claimed, and the next claimer after the lease finishes them: none lost,
// none ended twice.
BOOST_AUTO_TEST_CASE(cancelling_the_janitor_mid_sweep_is_safe_and_the_next_claimer_finishes_the_rest) {
    constexpr int n = 40;
    for (int i = 0; i < n; ++i) sync_wait(registry.acquire("c" + std::to_string(i)));
    clock.advance(61s);
    workers.stop_delay(20ms);
    {
        janitor_options o;
        o.interval = 1h;  // the first sweep comes at once (jitter 0), the next never
        o.jitter = 0;
        o.concurrency = 4;
        o.warning_window = 0s;
        o.log = [](std::string_view) {};
        janitor jan(registry, o);
        boost::asio::io_context ctx;
        boost::asio::cancellation_signal cancel;
        std::atomic<bool> ended{false};
        boost::asio::co_spawn(
            ctx, jan.run(),
            boost::asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr) { ended = true; }));
        boost::asio::steady_timer later(ctx, 50ms);  // two or three rounds of stops into the batch of 40
        later.async_wait([&](auto) { cancel.emit(boost::asio::cancellation_type::terminal); });
        testing::run_threads(ctx, 2);
        BOOST_TEST(ended.load());
    }  // the janitor is gone: nothing of it may still run
    const auto finished_first = events.count(event_type::expired);
    BOOST_TEST_MESSAGE(finished_first << " of " << n << " finished before the cancellation took effect");
    BOOST_TEST(finished_first > 0u);
    BOOST_TEST(finished_first < std::size_t{n});

    workers.stop_delay(0ms);
    janitor_options o;
    o.warning_window = 0s;
    o.log = [](std::string_view) {};
    janitor next(registry, o);
    clock.advance(o.claim_lease + 1s);
    sync_wait(next.sweep_once());
    for (int i = 0; i < n; ++i) {
        const std::string id = "c" + std::to_string(i);
        auto s = sync_wait(registry.get(id));
        BOOST_TEST_CONTEXT(id) {
            BOOST_TEST(to_string(s->status) == "terminated");
            BOOST_TEST(!workers.running("w-" + id));
        }
    }
    for (auto& [id, count] : events.per_session(event_type::expired)) BOOST_TEST_CONTEXT(id) {
            BOOST_TEST(count == 1);
        }
    BOOST_TEST(events.count(event_type::expired) == std::size_t{n});
}

// Issue 12, defect 7: a session ended through another instance (which
// cannot stop a worker it does not run) kept its worker until the owner's
// next reconciliation, a minute later. The owner's janitor checks its own
// workers every worker_check_interval.
BOOST_AUTO_TEST_CASE(a_worker_whose_session_another_instance_ended_is_stopped_at_the_next_worker_check) {
    testing::fake_spawner elsewhere;  // the other instance's spawner: it runs none of our workers
    basic_session_registry<memory_store, manual_clock, test::recording_sink, testing::fake_spawner> other(
        store, registry_options{.idle_timeout = 60s}, clock, events, elsewhere);
    auto made = sync_wait(registry.acquire("x1"));
    BOOST_REQUIRE(made.record.worker);
    const std::string worker = made.record.worker->id;
    sync_wait(registry.acquire("x2"));  // stays: its worker must not be touched

    janitor_options o;
    o.interval = 1h;
    o.jitter = 0;
    o.worker_check_interval = 20ms;
    o.log = [](std::string_view) {};
    janitor jan(registry, o);
    boost::asio::io_context ctx;
    boost::asio::co_spawn(ctx, jan.run(), boost::asio::detached);
    boost::asio::co_spawn(
        ctx,
        [&]() -> awaitable<void> {
            auto ended = co_await other.terminate("x1", "logout");
            BOOST_TEST(to_string(ended->status) == "terminated");
            BOOST_TEST(workers.running(worker));  // the other instance could not stop it
            boost::asio::steady_timer t(co_await boost::asio::this_coro::executor);
            for (int i = 0; i < 100 && workers.running(worker); ++i) {
                t.expires_after(10ms);
                co_await t.async_wait(boost::asio::use_awaitable);
            }
            jan.stop();
        },
        boost::asio::detached);
    ctx.run_for(10s);
    BOOST_TEST(!workers.running(worker));
    BOOST_TEST(workers.running("w-x2"));
    BOOST_TEST(to_string(sync_wait(registry.get("x2"))->status) == "active");
}

BOOST_AUTO_TEST_SUITE_END()

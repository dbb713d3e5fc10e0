// janitor: deterministic sweeps with manual_clock, plus run()/stop()/cancel.
#include <sessionkit/sessionkit.hpp>

#include "support/recording_sink.hpp"
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
#include <thread>

using namespace sessionkit;
using namespace std::chrono_literals;
using testing::sync_wait;

namespace {

// A store whose claim_expired fails while `failures` > 0.
struct flaky_store : memory_store {
    std::atomic<int> failures{0};
    awaitable<std::vector<session>> claim_expired(time_point now, std::size_t limit, milliseconds lease) {
        if (failures.fetch_sub(1) > 0)
            throw_error(error::backend_unavailable, "flaky_store.claim_expired: injected failure");
        co_return claim_expired_now(now, limit, lease);
    }
};
static_assert(session_store<flaky_store>);

template <class Store>
struct basic_fixture {
    Store store;
    manual_clock clock;
    test::recording_sink events;
    using registry_t = basic_session_registry<Store, manual_clock, test::recording_sink>;
    registry_t registry{store, registry_options{.idle_timeout = 60s}, clock, events};

    janitor_options quiet(janitor_options o = {}) {
        o.log = [this](std::string_view line) { logged.emplace_back(line); };
        return o;
    }
    std::vector<std::string> logged;
};
using fixture = basic_fixture<memory_store>;

}  // namespace

BOOST_FIXTURE_TEST_SUITE(janitor_sweeps, fixture)

BOOST_AUTO_TEST_CASE(expires_idle_sessions_with_reason_and_event) {
    sync_wait(registry.acquire("j1"));
    sync_wait(registry.acquire("j2", {.idle_timeout = 120s}));
    janitor jan(registry, quiet({.warning_window = 0s}));
    clock.advance(59s);
    BOOST_TEST(sync_wait(jan.sweep_once()).expired == 0u);
    clock.advance(1s);
    auto report = sync_wait(jan.sweep_once());
    BOOST_TEST(report.expired == 1u);
    auto j1 = sync_wait(registry.get("j1"));
    BOOST_TEST(to_string(j1->status) == "terminated");
    BOOST_TEST(j1->end_reason == "idle");
    BOOST_TEST((j1->ended_at == clock.now()));
    BOOST_TEST(to_string(sync_wait(registry.get("j2"))->status) == "active");
    auto ev = events.events().back();
    BOOST_TEST(to_string(ev.type) == "expired");
    BOOST_TEST(ev.session_id == "j1");
    BOOST_TEST(ev.data.at("reason") == "idle");
}

BOOST_AUTO_TEST_CASE(three_concurrent_janitors_expire_each_session_exactly_once) {
    const int n = 3000;
    for (int i = 0; i < n; ++i)
        sync_wait(registry.acquire("m" + std::to_string(i), {.idle_timeout = std::chrono::seconds{1 + i % 120}}));
    janitor_options o = quiet({.batch_size = 16, .max_batches = 1000, .concurrency = 4, .warning_window = 30s});
    janitor a(registry, o), b(registry, o), c(registry, o);
    for (int round = 0; round < 15; ++round) {
        clock.advance(10s);
        boost::asio::io_context ctx;
        std::atomic<std::size_t> expired{0};
        for (auto* j : {&a, &b, &c})
            boost::asio::co_spawn(
                ctx, [&, j]() -> awaitable<void> { expired += (co_await j->sweep_once()).expired; },
                boost::asio::detached);
        testing::run_threads(ctx, 3);
        // After each round, exactly the sessions due by now have ended.
        auto st = sync_wait(registry.stats());
        const auto due = std::min<std::size_t>(n, static_cast<std::size_t>((round + 1) * 10) * n / 120);
        BOOST_TEST(st.count(session_status::terminated) == due, "round " << round);
    }
    auto per = events.per_session(event_type::expired);
    BOOST_TEST(per.size() == static_cast<std::size_t>(n));
    for (auto& [id, times] : per) BOOST_TEST(times == 1, id);
    auto warned = events.per_session(event_type::timeout_warning);
    for (auto& [id, times] : warned) BOOST_TEST(times == 1, id);
    BOOST_TEST(sync_wait(registry.stats()).expired_total == static_cast<std::uint64_t>(n));
    BOOST_TEST(logged.empty());
}

BOOST_AUTO_TEST_CASE(timeout_warning_comes_once_before_the_deadline) {
    sync_wait(registry.acquire("w1"));
    janitor jan(registry, quiet({.warning_window = 20s}));
    clock.advance(30s);
    BOOST_TEST(sync_wait(jan.sweep_once()).warned == 0u);
    clock.advance(15s);  // 15 s left
    BOOST_TEST(sync_wait(jan.sweep_once()).warned == 1u);
    clock.advance(5s);
    BOOST_TEST(sync_wait(jan.sweep_once()).warned == 0u);
    clock.advance(10s);
    auto last = sync_wait(jan.sweep_once());
    BOOST_TEST(last.warned == 0u);
    BOOST_TEST(last.expired == 1u);
    BOOST_TEST(events.count(event_type::timeout_warning) == 1u);
    auto warning = events.events()[1];
    BOOST_TEST(to_string(warning.type) == "timeout_warning");
    BOOST_TEST(warning.data.at("remaining_ms") == 15000);
    BOOST_TEST(warning.data.at("reason") == "idle");
}

BOOST_AUTO_TEST_CASE(a_session_touched_before_its_deadline_is_never_expired) {
    sync_wait(registry.acquire("kept"));
    sync_wait(registry.acquire("left"));
    janitor jan(registry, quiet({.warning_window = 20s}));
    for (int i = 0; i < 60; ++i) {  // ten minutes in 10 s steps
        clock.advance(10s);
        if (i % 5 == 4) sync_wait(registry.touch("kept"));  // every 50 s < 60 s
        sync_wait(jan.sweep_once());
    }
    BOOST_TEST(to_string(sync_wait(registry.get("kept"))->status) == "active");
    BOOST_TEST(to_string(sync_wait(registry.get("left"))->status) == "terminated");
    BOOST_TEST(events.per_session(event_type::expired).count("kept") == 0u);
    // Each touch after a warning re-arms it: warnings were sent, expiry never.
    BOOST_TEST(events.per_session(event_type::timeout_warning)["kept"] >= 1);
}

BOOST_AUTO_TEST_CASE(absolute_lifetime_expires_a_session_touched_all_the_time) {
    sync_wait(registry.acquire("busy", {.max_lifetime = 5min}));
    janitor jan(registry, quiet({.warning_window = 0s}));
    std::size_t expired = 0;
    for (int i = 0; i < 40 && expired == 0; ++i) {
        clock.advance(10s);
        sync_wait(registry.touch("busy"));
        expired = sync_wait(jan.sweep_once()).expired;
        if (expired) BOOST_TEST(i == 29);  // at exactly 300 s
    }
    BOOST_TEST(expired == 1u);
    auto s = sync_wait(registry.get("busy"));
    BOOST_TEST(s->end_reason == "lifetime");
    BOOST_TEST(events.events().back().data.at("reason") == "lifetime");
}

BOOST_AUTO_TEST_CASE(history_is_purged_after_its_retention) {
    sync_wait(registry.acquire("h1"));
    sync_wait(registry.terminate("h1"));
    janitor jan(registry, quiet({.history_retention = 1h}));
    clock.advance(59min);
    BOOST_TEST(sync_wait(jan.sweep_once()).purged == 0u);
    clock.advance(1min);
    BOOST_TEST(sync_wait(jan.sweep_once()).purged == 1u);
    BOOST_TEST(!sync_wait(registry.get("h1")));
}

BOOST_AUTO_TEST_CASE(a_terminate_racing_the_janitor_ends_the_session_once) {
    sync_wait(registry.acquire("race"));
    clock.advance(61s);
    // The janitor claimed it, then the user deleted it before the janitor wrote.
    auto claimed = sync_wait(store.claim_expired(clock.now(), 10, 60s));
    BOOST_REQUIRE_EQUAL(claimed.size(), 1u);
    auto ended = sync_wait(registry.terminate("race", "deleted"));
    BOOST_TEST(to_string(ended->status) == "terminated");
    janitor jan(registry, quiet());
    clock.advance(2min);  // past the claim lease
    BOOST_TEST(sync_wait(jan.sweep_once()).expired == 0u);
    BOOST_TEST(events.count(event_type::expired) == 0u);
    BOOST_TEST(events.count(event_type::terminated) == 1u);
}

BOOST_AUTO_TEST_CASE(bad_options_are_rejected) {
    BOOST_CHECK_THROW(janitor(registry, {.interval = 0s}), boost::system::system_error);
    BOOST_CHECK_THROW(janitor(registry, {.batch_size = 0}), boost::system::system_error);
    BOOST_CHECK_THROW(janitor(registry, {.jitter = 1.5}), boost::system::system_error);
    BOOST_CHECK_THROW(janitor(registry, {.claim_lease = 0s}), boost::system::system_error);
    BOOST_CHECK_THROW(janitor(registry, {.warning_window = -1s}), boost::system::system_error);
    BOOST_CHECK_THROW(sync_wait(store.claim_expired(clock.now(), 10, 0s)), boost::system::system_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(janitor_loop, basic_fixture<flaky_store>)

BOOST_AUTO_TEST_CASE(a_failed_sweep_is_logged_and_the_loop_goes_on) {
    store.failures = 2;
    sync_wait(registry.acquire("f1", {.idle_timeout = 1s}));
    clock.advance(2s);
    janitor jan(registry, quiet({.interval = 5ms, .jitter = 0.0}));
    std::atomic<int> good_sweeps{0};
    std::atomic<std::size_t> expired{0};
    jan.on_sweep = [&](const sweep_report& r) {
        expired += r.expired;
        if (++good_sweeps == 3) jan.stop();
    };
    boost::asio::io_context ctx;
    boost::asio::co_spawn(ctx, jan.run(), boost::asio::detached);
    ctx.run_for(10s);
    BOOST_TEST(good_sweeps.load() == 3);
    BOOST_TEST(expired.load() == 1u);
    BOOST_REQUIRE_EQUAL(logged.size(), 2u);
    BOOST_TEST(logged[0].find("injected failure") != std::string::npos);
    BOOST_TEST(logged[0].find("\"level\":\"error\"") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(stop_from_another_thread_ends_run_and_a_later_run_works_again) {
    janitor jan(registry, quiet({.interval = 1h}));
    for (int round = 0; round < 2; ++round) {
        boost::asio::io_context ctx;
        bool finished = false;
        boost::asio::co_spawn(ctx, jan.run(), [&](std::exception_ptr) { finished = true; });
        std::thread stopper([&] {
            std::this_thread::sleep_for(20ms);
            jan.stop();
        });
        ctx.run_for(10s);
        stopper.join();
        BOOST_TEST(finished, "round " << round);
    }
}

BOOST_AUTO_TEST_CASE(run_ends_cleanly_on_cancellation) {
    janitor jan(registry, quiet({.interval = 1h}));
    boost::asio::io_context ctx;
    boost::asio::cancellation_signal cancel;
    bool finished = false;
    std::exception_ptr error;
    boost::asio::co_spawn(ctx, jan.run(), boost::asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e) {
                              finished = true;
                              error = e;
                          }));
    boost::asio::steady_timer later(ctx, 20ms);
    later.async_wait([&](auto) { cancel.emit(boost::asio::cancellation_type::terminal); });
    ctx.run_for(10s);
    BOOST_TEST(finished);
    if (error) {
        try {
            std::rethrow_exception(error);
        } catch (const std::exception& e) {
            BOOST_FAIL("run() ended with an exception: " << e.what());
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

// The orphan rule that reconciliation and the worker check share, without
// a store or a spawner.
BOOST_AUTO_TEST_CASE(is_orphan_decides_from_the_session_alone) {
    const time_point now = from_unix_ms(1'893'456'000'000);
    const worker_ref w{"fake", "w-1"};
    session s;
    s.id = "o1";
    s.status = session_status::active;
    s.created_at = now - 10s;
    s.worker = w;
    BOOST_TEST(!is_orphan(w, s, now, 2min));                         // its session's worker
    BOOST_TEST(is_orphan(w, std::nullopt, now, 2min));               // no session
    BOOST_TEST(is_orphan(worker_ref{"fake", "w-2"}, s, now, 2min));  // the session has another
    s.status = session_status::stopping;
    BOOST_TEST(!is_orphan(w, s, now, 2min));  // being stopped by someone
    s.status = session_status::terminated;
    BOOST_TEST(is_orphan(w, s, now, 2min));  // ended
    s.worker.reset();
    s.status = session_status::initializing;
    BOOST_TEST(!is_orphan(w, s, now, 2min));        // a spawn in progress
    BOOST_TEST(is_orphan(w, s, now + 2min, 2min));  // whose creator died
    s.status = session_status::active;
    BOOST_TEST(is_orphan(w, s, now, 2min));  // live without any worker
}

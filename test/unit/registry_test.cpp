// session_registry over memory_store, with a manual clock and a recording sink.
#include <sessionkit/sessionkit.hpp>

#include "support/recording_sink.hpp"
#include <sessionkit/testing/run.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <set>

using namespace sessionkit;
using namespace std::chrono_literals;
using testing::sync_wait;

namespace {

using registry_t = basic_session_registry<memory_store, manual_clock, test::recording_sink>;

struct fixture {
    memory_store store;
    manual_clock clock;
    test::recording_sink events;
    registry_t registry{store, registry_options{.idle_timeout = 60s}, clock, events};
};

bool has_code(const boost::system::system_error& e, error code) { return e.code() == make_error_code(code); }

}  // namespace

BOOST_FIXTURE_TEST_SUITE(registry, fixture)

BOOST_AUTO_TEST_CASE(acquire_creates_once_then_reuses_and_touches) {
    auto first = sync_wait(registry.acquire("r1", {.owner = "alice", .attributes = {{"a", 1}}}));
    BOOST_TEST(first.created);
    BOOST_TEST(to_string(first.record.status) == "active");
    BOOST_TEST(first.record.owner == "alice");
    BOOST_TEST((first.record.idle_deadline == clock.now() + 60s));
    clock.advance(30s);
    auto again = sync_wait(registry.acquire("r1", {.owner = "bob"}));
    BOOST_TEST(!again.created);
    BOOST_TEST(again.record.owner == "alice");
    BOOST_TEST((again.record.idle_deadline == clock.now() + 60s));
    BOOST_TEST(events.count(event_type::created) == 1u);
    BOOST_TEST(events.events()[0].data.at("owner") == "alice");
}

BOOST_AUTO_TEST_CASE(per_session_timeouts_and_lifetime) {
    auto s = sync_wait(registry.acquire("r2", {.idle_timeout = 5s, .max_lifetime = 8s})).record;
    BOOST_TEST((s.idle_deadline == clock.now() + 5s));
    BOOST_REQUIRE(s.absolute_deadline);
    clock.advance(4s);
    auto t = sync_wait(registry.touch("r2"));
    BOOST_TEST((t->idle_deadline == *s.absolute_deadline));  // capped at the lifetime
    BOOST_CHECK_EXCEPTION(sync_wait(registry.acquire("r3", {.idle_timeout = 0s})), boost::system::system_error,
                          [](const auto& e) { return has_code(e, error::invalid_argument); });
}

BOOST_AUTO_TEST_CASE(create_generates_a_fresh_id) {
    auto a = sync_wait(registry.create());
    auto b = sync_wait(registry.create());
    BOOST_TEST(a.id != b.id);
    BOOST_TEST(is_valid_id(a.id));
    BOOST_TEST(a.id.size() == 26u);
}

BOOST_AUTO_TEST_CASE(bad_ids_are_rejected_before_touching_the_store) {
    for (std::string bad : {std::string(), std::string(129, 'a'), std::string("a b"), std::string("a*"),
                            std::string("a\nb"), std::string("\xc3\xa9")}) {
        BOOST_CHECK_EXCEPTION(sync_wait(registry.acquire(bad)), boost::system::system_error,
                              [](const auto& e) { return has_code(e, error::invalid_id); });
        BOOST_CHECK_EXCEPTION(sync_wait(registry.get(bad)), boost::system::system_error,
                              [](const auto& e) { return has_code(e, error::invalid_id); });
    }
    BOOST_TEST(sync_wait(registry.stats()).sessions == 0u);
}

BOOST_AUTO_TEST_CASE(set_status_follows_the_table_and_emits) {
    sync_wait(registry.acquire("r4"));
    auto s = sync_wait(registry.set_status("r4", session_status::waiting_input));
    BOOST_TEST(to_string(s.status) == "waiting_input");
    BOOST_TEST(events.count(event_type::status_changed) == 1u);
    auto ev = events.events().back();
    BOOST_TEST(ev.data.at("from") == "active");
    BOOST_TEST(ev.data.at("to") == "waiting_input");
    // Re-stating the same status is idempotent and silent.
    sync_wait(registry.set_status("r4", session_status::waiting_input));
    BOOST_TEST(events.count(event_type::status_changed) == 1u);
    try {
        sync_wait(registry.set_status("r4", session_status::initializing));
        BOOST_FAIL("expected invalid_transition");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(has_code(e, error::invalid_transition));
        BOOST_TEST(std::string(e.what()).find("from waiting_input to initializing") != std::string::npos);
    }
    BOOST_CHECK_EXCEPTION(sync_wait(registry.set_status("nope", session_status::idle)), boost::system::system_error,
                          [](const auto& e) { return has_code(e, error::not_found); });
}

BOOST_AUTO_TEST_CASE(terminate_is_idempotent_and_final) {
    sync_wait(registry.acquire("r5"));
    auto done = sync_wait(registry.terminate("r5", "logout"));
    BOOST_REQUIRE(done);
    BOOST_TEST(to_string(done->status) == "terminated");
    BOOST_TEST(done->end_reason == "logout");
    BOOST_TEST((done->ended_at == clock.now()));
    auto again = sync_wait(registry.terminate("r5", "again"));
    BOOST_TEST(again->end_reason == "logout");
    BOOST_TEST(events.count(event_type::terminated) == 1u);
    BOOST_TEST(events.events().back().data.at("reason") == "logout");
    BOOST_TEST(!sync_wait(registry.terminate("never-existed")));
    // No late write resurrects it.
    try {
        sync_wait(registry.set_status("r5", session_status::active));
        BOOST_FAIL("expected invalid_transition");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(std::string(e.what()).find("from terminated to active") != std::string::npos);
    }
    auto touched = sync_wait(registry.touch("r5"));
    BOOST_TEST(to_string(touched->status) == "terminated");
    // Acquiring the id again starts a new session.
    auto fresh = sync_wait(registry.acquire("r5"));
    BOOST_TEST(fresh.created);
    BOOST_TEST(fresh.record.version > done->version);
}

BOOST_AUTO_TEST_CASE(set_status_to_a_final_status_ends_the_session_like_terminate) {
    sync_wait(registry.acquire("r7"));
    auto failed = sync_wait(registry.set_status("r7", session_status::failed));
    BOOST_TEST(to_string(failed.status) == "failed");
    BOOST_TEST(failed.end_reason == "status_set");
    BOOST_TEST(failed.ended_at.has_value());
    auto ev = events.events().back();
    BOOST_TEST(to_string(ev.type) == "terminated");
    BOOST_TEST(ev.data.at("status") == "failed");
    // Re-stating it is fine; changing it is not.
    BOOST_TEST(to_string(sync_wait(registry.set_status("r7", session_status::failed)).status) == "failed");
    try {
        sync_wait(registry.set_status("r7", session_status::terminated));
        BOOST_FAIL("expected invalid_transition");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST(std::string(e.what()).find("from failed to terminated") != std::string::npos);
    }
    // modify() does not end sessions: that is terminate()'s job.
    sync_wait(registry.acquire("r8"));
    BOOST_CHECK_EXCEPTION(sync_wait(registry.modify("r8", [](session& s) { s.status = session_status::terminated; })),
                          boost::system::system_error,
                          [](const auto& e) { return has_code(e, error::invalid_argument); });
}

BOOST_AUTO_TEST_CASE(durations_out_of_range_are_rejected) {
    acquire_options huge;
    huge.idle_timeout = std::chrono::hours{24 * 365 * 200};
    BOOST_CHECK_EXCEPTION(sync_wait(registry.acquire("r9", huge)), boost::system::system_error,
                          [](const auto& e) { return has_code(e, error::invalid_argument); });
    BOOST_CHECK_THROW((registry_t{store, registry_options{.idle_timeout = -1s}, clock, events}),
                      boost::system::system_error);
}

BOOST_AUTO_TEST_CASE(modify_with_an_expected_version_is_compare_and_swap) {
    auto s = sync_wait(registry.acquire("r6")).record;
    auto ok = sync_wait(registry.modify(
        "r6", [](session& x) { x.attributes["n"] = 1; }, s.version));
    BOOST_TEST(to_string(ok.result) == "updated");
    BOOST_TEST(ok.record->version == s.version + 1);
    auto stale = sync_wait(registry.modify(
        "r6", [](session& x) { x.attributes["n"] = 2; }, s.version));
    BOOST_TEST(to_string(stale.result) == "version_conflict");
    BOOST_TEST(stale.record->attributes.at("n") == 1);
    // Fields the store owns cannot be rewritten through modify.
    auto sneaky = sync_wait(registry.modify("r6", [](session& x) {
        x.owner = "mallory";
        x.version = 999;
        x.idle_deadline += std::chrono::hours{24};
        x.worker = worker_ref{"docker", "someone-elses"};
    }));
    BOOST_TEST(sneaky.record->owner.empty());
    BOOST_TEST((sneaky.record->idle_deadline == s.idle_deadline));
    BOOST_TEST(!sneaky.record->worker.has_value());
    BOOST_TEST(sneaky.record->version == s.version + 2);
}

BOOST_AUTO_TEST_CASE(list_validates_its_limit) {
    for (int i = 0; i < 5; ++i) sync_wait(registry.acquire("l" + std::to_string(i), {.owner = "o"}));
    list_query q;
    q.owner = "o";
    q.limit = 2;
    auto page = sync_wait(registry.list(q));
    BOOST_TEST(page.sessions.size() == 2u);
    BOOST_TEST(page.next_cursor.has_value());
    q.limit = 0;
    BOOST_CHECK_EXCEPTION(sync_wait(registry.list(q)), boost::system::system_error,
                          [](const auto& e) { return has_code(e, error::invalid_argument); });
    q.limit = 1001;
    BOOST_CHECK_EXCEPTION(sync_wait(registry.list(q)), boost::system::system_error,
                          [](const auto& e) { return has_code(e, error::invalid_argument); });
}

BOOST_AUTO_TEST_CASE(four_threads_of_1000_coroutines_acquiring_100_ids_make_100_sessions) {
    boost::asio::io_context ctx;
    std::atomic<int> created{0}, done{0};
    for (int c = 0; c < 4000; ++c)
        boost::asio::co_spawn(
            ctx,
            [&, c]() -> awaitable<void> {
                auto r = co_await registry.acquire("hot" + std::to_string(c % 100));
                if (r.created) ++created;
                ++done;
            },
            boost::asio::detached);
    testing::run_threads(ctx, 4);
    BOOST_TEST(done.load() == 4000);
    BOOST_TEST(created.load() == 100);
    BOOST_TEST(events.count(event_type::created) == 100u);
    auto per = events.per_session(event_type::created);
    BOOST_TEST(per.size() == 100u);
    for (auto& [id, n] : per) BOOST_TEST(n == 1, id);
    auto st = sync_wait(registry.stats());
    BOOST_TEST(st.sessions == 100u);
    BOOST_TEST(st.created_total == 100u);
}

BOOST_AUTO_TEST_SUITE_END()

// sessionkit/testing/detail/store_cases_records.hpp — conformance cases:
// create, get, touch, update and erase, one record at a time.
//
// One part of the store conformance suite: include
// <sessionkit/testing/store_conformance.hpp>, not this (the cases need the
// user's conformance_factories declared first).
// header-check prelude: conformance_factories (the suite is compiled over an archetype store)
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/testing/store_fixtures.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>

#include <atomic>
#include <string>

BOOST_AUTO_TEST_SUITE(store_conformance)

using namespace sessionkit;
using namespace sessionkit::testing::conformance;

BOOST_AUTO_TEST_CASE_TEMPLATE(create_is_create_if_absent, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    auto first = sync_wait(store->create(make_record("c1", "alice")));
    BOOST_TEST(first.created);
    BOOST_TEST(first.record.version == 1u);
    auto again = sync_wait(store->create(make_record("c1", "mallory")));
    BOOST_TEST(!again.created);
    BOOST_TEST(again.record.owner == "alice");  // the existing one, untouched
    BOOST_TEST(again.record.version == 1u);
    auto got = sync_wait(store->get("c1"));
    BOOST_REQUIRE(got);
    BOOST_TEST(got->owner == "alice");
    BOOST_TEST(got->attributes == (boost::json::object{{"k", "v"}}));
    BOOST_TEST(to_unix_ms(got->idle_deadline) == to_unix_ms(t0 + 60s));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(create_replaces_a_finished_session_and_keeps_counting_versions, F,
                              conformance_factories) {
    F factory;
    auto store = factory.make();
    auto s = create_ok(*store, make_record("c2"));
    auto ended = finish(*store, s, t0 + 1s);
    auto fresh = sync_wait(store->create(make_record("c2", "bob")));
    BOOST_TEST(fresh.created);
    BOOST_TEST(fresh.record.owner == "bob");
    BOOST_TEST(fresh.record.version > ended.version);
    // A stale compare-and-swap aimed at the old session cannot land.
    session stale = ended;
    stale.status = session_status::active;
    BOOST_TEST(to_string(sync_wait(store->update(stale, s.version))) == "version_conflict");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(get_of_an_absent_id_is_empty, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    BOOST_TEST(!sync_wait(store->get("nobody")));
    BOOST_TEST(!sync_wait(store->touch("nobody", t0)));
    BOOST_TEST(!sync_wait(store->erase("nobody")));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(touch_slides_the_idle_deadline, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    create_ok(*store, make_record("t1", "alice", 60s));
    auto touched = sync_wait(store->touch("t1", t0 + 30s));
    BOOST_REQUIRE(touched);
    BOOST_TEST(to_unix_ms(touched->last_active) == to_unix_ms(t0 + 30s));
    BOOST_TEST(to_unix_ms(touched->idle_deadline) == to_unix_ms(t0 + 90s));
    if constexpr (coalesces_touches<F>)
        BOOST_TEST(touched->version >= 1u);  // a touch the cache absorbed keeps the version
    else
        BOOST_TEST(touched->version == 2u);
    auto got = sync_wait(store->get("t1"));
    BOOST_TEST(to_unix_ms(got->idle_deadline) == to_unix_ms(t0 + 90s));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(touch_never_passes_the_absolute_deadline, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    create_ok(*store, make_record("t2", "alice", 60s, 100s));
    auto touched = sync_wait(store->touch("t2", t0 + 70s));
    BOOST_REQUIRE(touched);
    BOOST_TEST(to_unix_ms(touched->idle_deadline) == to_unix_ms(t0 + 100s));
    BOOST_TEST(touched->lifetime_bound());
    // Touching all the time still ends it at the lifetime: it is claimed.
    auto claimed = sync_wait(store->claim_expired(t0 + 100s, 10, 30s));
    BOOST_REQUIRE_EQUAL(claimed.size(), 1u);
    BOOST_TEST(claimed[0].end_reason == "lifetime");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(touch_does_not_revive_stopping_or_finished_sessions, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    create_ok(*store, make_record("t3", "alice", 10s));
    auto claimed = sync_wait(store->claim_expired(t0 + 10s, 10, 30s));
    BOOST_REQUIRE_EQUAL(claimed.size(), 1u);
    auto touched = sync_wait(store->touch("t3", t0 + 11s));
    BOOST_REQUIRE(touched);
    BOOST_TEST(to_string(touched->status) == "stopping");
    BOOST_TEST(touched->version == claimed[0].version);
    finish(*store, claimed[0], t0 + 12s);
    touched = sync_wait(store->touch("t3", t0 + 13s));
    BOOST_REQUIRE(touched);
    BOOST_TEST(to_string(touched->status) == "terminated");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(update_is_compare_and_swap_on_version, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    auto s = create_ok(*store, make_record("u1"));
    session a = s, b = s;
    a.attributes["who"] = "a";
    b.attributes["who"] = "b";
    BOOST_TEST(to_string(sync_wait(store->update(a, s.version))) == "updated");
    BOOST_TEST(to_string(sync_wait(store->update(b, s.version))) == "version_conflict");
    auto got = sync_wait(store->get("u1"));
    BOOST_TEST(got->attributes.at("who") == "a");
    BOOST_TEST(got->version == s.version + 1);
    session ghost = make_record("u-missing");
    BOOST_TEST(to_string(sync_wait(store->update(ghost, 1))) == "not_found");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(update_never_changes_a_finished_session, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    auto s = create_ok(*store, make_record("u2"));
    auto ended = finish(*store, s, t0 + 1s);
    session revive = ended;
    revive.status = session_status::active;
    BOOST_TEST(to_string(sync_wait(store->update(revive, ended.version))) == "final_state");
    BOOST_TEST(to_string(sync_wait(store->get("u2"))->status) == "terminated");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(concurrent_updates_with_one_version_let_exactly_one_win, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    auto s = create_ok(*store, make_record("u3"));
    boost::asio::io_context ctx;
    std::atomic<int> wins{0};
    for (int i = 0; i < 64; ++i)
        boost::asio::co_spawn(
            ctx,
            [&, i]() -> awaitable<void> {
                session mine = s;
                mine.attributes["writer"] = i;
                if (co_await store->update(mine, s.version) == update_result::updated) ++wins;
            },
            boost::asio::detached);
    run_threads(ctx, 4);
    BOOST_TEST(wins.load() == 1);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(erase_removes_the_record_and_its_index_entries, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    create_ok(*store, make_record("e1", "erin", 5s));
    BOOST_TEST(sync_wait(store->erase("e1")));
    BOOST_TEST(!sync_wait(store->get("e1")));
    BOOST_TEST(sync_wait(store->claim_expired(t0 + 1h, 10, 1s)).empty());
    list_query q;
    q.owner = "erin";
    BOOST_TEST(sync_wait(store->list(q)).sessions.empty());
    BOOST_TEST(sync_wait(store->stats()).sessions == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

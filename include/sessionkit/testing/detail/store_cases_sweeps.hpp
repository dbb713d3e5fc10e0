// sessionkit/testing/detail/store_cases_sweeps.hpp — conformance cases:
// what janitors ask of a store (claim_expired, claim_warnings, purge_ended).
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

#include <mutex>
#include <set>
#include <string>
#include <vector>

BOOST_AUTO_TEST_SUITE(store_conformance)

using namespace sessionkit;
using namespace sessionkit::testing::conformance;

BOOST_AUTO_TEST_CASE_TEMPLATE(claim_expired_takes_only_due_sessions_earliest_first, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    for (int i = 0; i < 10; ++i)
        create_ok(*store, make_record("x" + std::to_string(i), "o", std::chrono::seconds{10 + i}));
    auto none = sync_wait(store->claim_expired(t0 + 9s, 100, 30s));
    BOOST_TEST(none.empty());
    auto first = sync_wait(store->claim_expired(t0 + 14s, 2, 30s));
    BOOST_REQUIRE_EQUAL(first.size(), 2u);
    BOOST_TEST(first[0].id == "x0");
    BOOST_TEST(first[1].id == "x1");
    for (auto& c : first) {
        BOOST_TEST(to_string(c.status) == "stopping");
        BOOST_TEST(c.end_reason == "idle");
        BOOST_TEST(to_unix_ms(c.idle_deadline) == to_unix_ms(t0 + 14s + 30s));
    }
    auto rest = sync_wait(store->claim_expired(t0 + 14s, 100, 30s));
    BOOST_TEST(rest.size() == 3u);  // x2..x4
    BOOST_TEST(sync_wait(store->stats()).expired_total == 5u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_claim_whose_janitor_vanished_is_claimed_again_after_its_lease, F,
                              conformance_factories) {
    F factory;
    auto store = factory.make();
    create_ok(*store, make_record("lease", "o", 10s));
    auto a = sync_wait(store->claim_expired(t0 + 10s, 10, 30s));
    BOOST_REQUIRE_EQUAL(a.size(), 1u);
    BOOST_TEST(sync_wait(store->claim_expired(t0 + 39s, 10, 30s)).empty());
    auto b = sync_wait(store->claim_expired(t0 + 40s, 10, 30s));
    BOOST_REQUIRE_EQUAL(b.size(), 1u);
    BOOST_TEST(b[0].end_reason == "idle");
    BOOST_TEST(b[0].version > a[0].version);
    // The first claimer's late write loses; only one can finish it.
    session late = a[0];
    late.status = session_status::terminated;
    BOOST_TEST(to_string(sync_wait(store->update(late, a[0].version))) == "version_conflict");
    BOOST_TEST(sync_wait(store->stats()).expired_total == 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(claim_expired_hands_each_session_to_exactly_one_claimer, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    const int sessions = 600;
    for (int i = 0; i < sessions; ++i)
        create_ok(*store, make_record("claim" + std::to_string(i), "o", std::chrono::seconds{1 + i % 50}));
    create_ok(*store, make_record("not-yet", "o", 1h));
    boost::asio::io_context ctx;
    std::mutex m;
    std::vector<std::string> got;
    for (int claimer = 0; claimer < 12; ++claimer)
        boost::asio::co_spawn(
            ctx,
            [&]() -> awaitable<void> {
                for (;;) {
                    auto batch = co_await store->claim_expired(t0 + 60s, 7, 10min);
                    {
                        std::lock_guard lock(m);
                        for (auto& s : batch) got.push_back(s.id);
                    }
                    if (batch.empty()) co_return;
                }
            },
            boost::asio::detached);
    run_threads(ctx, 4);
    std::set<std::string> unique(got.begin(), got.end());
    BOOST_TEST(got.size() == static_cast<std::size_t>(sessions));
    BOOST_TEST(unique.size() == static_cast<std::size_t>(sessions));
    BOOST_TEST(!unique.contains("not-yet"));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(claim_warnings_marks_each_deadline_once, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    create_ok(*store, make_record("w1", "o", 60s));
    create_ok(*store, make_record("w2", "o", 120s));
    BOOST_TEST(sync_wait(store->claim_warnings(t0, t0 + 59s, 10)).empty());
    auto warned = sync_wait(store->claim_warnings(t0 + 10s, t0 + 70s, 10));
    BOOST_REQUIRE_EQUAL(warned.size(), 1u);
    BOOST_TEST(warned[0].id == "w1");
    BOOST_TEST(warned[0].warning_sent);
    BOOST_TEST(sync_wait(store->claim_warnings(t0 + 20s, t0 + 70s, 10)).empty());
    // A touch moves the deadline and re-arms the warning.
    sync_wait(store->touch("w1", t0 + 30s));
    BOOST_TEST(sync_wait(store->claim_warnings(t0 + 31s, t0 + 91s, 10)).size() == 1u);
    // A warned session still expires.
    BOOST_TEST(sync_wait(store->claim_expired(t0 + 90s, 10, 10s)).size() == 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(purge_ended_removes_only_old_history, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    auto a = create_ok(*store, make_record("p1"));
    auto b = create_ok(*store, make_record("p2"));
    create_ok(*store, make_record("p3"));
    finish(*store, a, t0 + 10s);
    finish(*store, b, t0 + 20s, session_status::failed);
    BOOST_TEST(sync_wait(store->purge_ended(t0 + 5s, 10)) == 0u);
    BOOST_TEST(sync_wait(store->purge_ended(t0 + 15s, 10)) == 1u);
    BOOST_TEST(!sync_wait(store->get("p1")));
    BOOST_TEST(sync_wait(store->get("p2")).has_value());
    BOOST_TEST(sync_wait(store->purge_ended(t0 + 1h, 10)) == 1u);
    BOOST_TEST(sync_wait(store->get("p3")).has_value());  // live sessions are never purged
}

BOOST_AUTO_TEST_SUITE_END()

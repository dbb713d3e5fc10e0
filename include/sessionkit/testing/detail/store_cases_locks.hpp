// sessionkit/testing/detail/store_cases_locks.hpp — conformance cases:
// ping, and named locks (exclusive, owned, expiring).
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

#include <atomic>

BOOST_AUTO_TEST_SUITE(store_conformance)

using namespace sessionkit;
using namespace sessionkit::testing::conformance;

BOOST_AUTO_TEST_CASE_TEMPLATE(ping_answers, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    BOOST_CHECK_NO_THROW(sync_wait(store->ping()));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(locks_are_exclusive_owned_and_expire, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    auto a = sync_wait(store->try_lock("spawn:s1", 5s, t0));
    BOOST_REQUIRE(a);
    BOOST_TEST(!sync_wait(store->try_lock("spawn:s1", 5s, t0 + 1s)));
    BOOST_TEST(sync_wait(store->try_lock("spawn:s2", 5s, t0 + 1s)).has_value());
    BOOST_TEST(!sync_wait(store->unlock("spawn:s1", "not-the-token")));
    BOOST_TEST(sync_wait(store->unlock("spawn:s1", *a)));
    auto b = sync_wait(store->try_lock("spawn:s1", 5s, t0 + 2s));
    BOOST_REQUIRE(b);
    BOOST_TEST(*b != *a);
    // Expired: anyone may take it, and the old holder can no longer release it.
    auto c = sync_wait(store->try_lock("spawn:s1", 5s, t0 + 8s));
    BOOST_REQUIRE(c);
    BOOST_TEST(!sync_wait(store->unlock("spawn:s1", *b)));
    BOOST_TEST(sync_wait(store->unlock("spawn:s1", *c)));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(concurrent_try_lock_has_one_winner, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    boost::asio::io_context ctx;
    std::atomic<int> winners{0};
    for (int i = 0; i < 200; ++i)
        boost::asio::co_spawn(
            ctx,
            [&]() -> awaitable<void> {
                if (co_await store->try_lock("race", 1min, t0)) ++winners;
            },
            boost::asio::detached);
    run_threads(ctx, 4);
    BOOST_TEST(winners.load() == 1);
}

BOOST_AUTO_TEST_SUITE_END()

// sessionkit/testing/detail/store_cases_listing.hpp — conformance cases:
// list pages, filters and cursors, and the stats counters.
//
// One part of the store conformance suite: include
// <sessionkit/testing/store_conformance.hpp>, not this (the cases need the
// user's conformance_factories declared first).
// header-check prelude: conformance_factories (the suite is compiled over an archetype store)
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/testing/store_fixtures.hpp>

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

BOOST_AUTO_TEST_SUITE(store_conformance)

using namespace sessionkit;
using namespace sessionkit::testing::conformance;

BOOST_AUTO_TEST_CASE_TEMPLATE(paging_returns_every_session_exactly_once, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    for (int i = 0; i < 257; ++i) create_ok(*store, make_record("pg" + std::to_string(1000 + i)));
    list_query q;
    q.limit = 10;
    std::size_t pages = 0;
    auto ids = page_all(*store, q, &pages);
    BOOST_TEST(ids.size() == 257u);
    BOOST_TEST(std::set<std::string>(ids.begin(), ids.end()).size() == 257u);
    BOOST_TEST(pages == 26u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(paging_while_sessions_come_and_go_sees_stable_ones_once, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    std::set<std::string> stable;
    for (int i = 0; i < 300; ++i) {
        auto id = "st" + std::to_string(100000 + i * 7) + "a";
        create_ok(*store, make_record(id));
        stable.insert(id);
    }
    std::vector<std::string> churn;
    for (int i = 0; i < 150; ++i) {
        churn.push_back("st" + std::to_string(100003 + i * 13) + "b");
        create_ok(*store, make_record(churn.back()));
    }
    list_query q;
    q.limit = 9;
    std::vector<std::string> seen;
    int step = 0;
    for (;;) {
        auto page = sync_wait(store->list(q));
        for (auto& s : page.sessions) seen.push_back(s.id);
        // Between pages, sessions appear and disappear on both sides of the cursor.
        for (int k = 0; k < 3; ++k, ++step) {
            sync_wait(store->erase(churn[(step * 5) % churn.size()]));
            sync_wait(store->create(make_record("st" + std::to_string(100001 + step * 11) + "c")));
        }
        if (!page.next_cursor) break;
        q.cursor = *page.next_cursor;
    }
    std::map<std::string, int> times;
    for (auto& id : seen) ++times[id];
    for (auto& [id, n] : times) BOOST_TEST(n == 1, "session " << id << " seen " << n << " times");
    for (auto& id : stable) BOOST_TEST(times.contains(id), "stable session " << id << " was missed");
}

BOOST_AUTO_TEST_CASE_TEMPLATE(owner_and_status_filters_page_too, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    for (int i = 0; i < 40; ++i) {
        auto s = create_ok(*store, make_record("f" + std::to_string(i), i % 4 == 0 ? "ann" : "ben"));
        if (i % 5 == 0) {
            session idle = s;
            idle.status = session_status::idle;
            BOOST_REQUIRE(sync_wait(store->update(idle, s.version)) == update_result::updated);
        }
    }
    list_query by_owner;
    by_owner.owner = "ann";
    by_owner.limit = 3;
    auto ann = page_all(*store, by_owner);
    BOOST_TEST(ann.size() == 10u);
    list_query by_status;
    by_status.status = session_status::idle;
    by_status.limit = 3;
    BOOST_TEST(page_all(*store, by_status).size() == 8u);
    list_query both;
    both.owner = "ann";
    both.status = session_status::idle;
    both.limit = 1;
    auto both_ids = page_all(*store, both);
    BOOST_TEST(both_ids.size() == 2u);  // f0, f20
    list_query nobody;
    nobody.owner = "zed";
    BOOST_TEST(page_all(*store, nobody).empty());
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_cursor_that_is_not_ours_is_an_error, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    list_query q;
    q.cursor = "not a cursor\n";
    BOOST_CHECK_EXCEPTION(sync_wait(store->list(q)), boost::system::system_error,
                          [](const auto& e) { return e.code() == error::invalid_argument; });
    // A valid id in a cursor's place, and an issued cursor with its check
    // changed, are mistakes too: refused, naming the cursor.
    create_ok(*store, make_record("c1"));
    create_ok(*store, make_record("c2"));
    list_query first;
    first.limit = 1;
    auto page = sync_wait(store->list(first));
    BOOST_REQUIRE(page.next_cursor);
    for (const std::string& bad :
         {std::string("c1"), page.next_cursor->substr(0, page.next_cursor->size() - 1) + "x"}) {
        list_query next;
        next.cursor = bad;
        BOOST_CHECK_EXCEPTION(sync_wait(store->list(next)), boost::system::system_error, [&](const auto& e) {
            return e.code() == error::invalid_argument &&
                   std::string_view(e.what()).find(bad) != std::string_view::npos;
        });
    }
    list_query good;
    good.cursor = *page.next_cursor;
    BOOST_TEST(sync_wait(store->list(good)).sessions.size() == 1u);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(stats_count_by_status_and_over_time, F, conformance_factories) {
    F factory;
    auto store = factory.make();
    auto a = create_ok(*store, make_record("s1", "o", 10s));
    create_ok(*store, make_record("s2", "o", 20s));
    auto c = create_ok(*store, make_record("s3", "o", 30s));
    session idle = c;
    idle.status = session_status::idle;
    BOOST_REQUIRE(sync_wait(store->update(idle, c.version)) == update_result::updated);
    auto claimed = sync_wait(store->claim_expired(t0 + 10s, 10, 1min));
    BOOST_REQUIRE_EQUAL(claimed.size(), 1u);
    finish(*store, claimed[0], t0 + 10s);
    (void)a;
    auto st = sync_wait(store->stats());
    BOOST_TEST(st.sessions == 3u);
    BOOST_TEST(st.count(session_status::active) == 1u);
    BOOST_TEST(st.count(session_status::idle) == 1u);
    BOOST_TEST(st.count(session_status::terminated) == 1u);
    BOOST_TEST(st.count(session_status::stopping) == 0u);
    BOOST_TEST(st.created_total == 3u);
    BOOST_TEST(st.expired_total == 1u);
    BOOST_TEST(st.terminated_total == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

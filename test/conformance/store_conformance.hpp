// test/conformance/store_conformance.hpp — the session_store contract as one
// templated Boost.Test suite. Every store runs it unchanged:
//
//   struct my_factory {
//       using store_type = my_store;
//       std::unique_ptr<my_store> make();  // a fresh store with no sessions
//                                          // (e.g. a new key prefix on a shared server)
//   };
//   using conformance_factories = std::tuple<my_factory>;
//   #include "conformance/store_conformance.hpp"
//
// The suite passes time in explicitly (stores never read a clock), so it is
// deterministic. Concurrency cases run real threads against one store.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/output.hpp>

#include "support/run.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sessionkit::conformance {

using namespace std::chrono_literals;
using test::sync_wait;

inline const time_point t0 = from_unix_ms(1'893'456'000'000);  // 2030-01-01

inline session make_record(std::string id, std::string owner = "alice",
                           milliseconds idle = 60s,
                           std::optional<milliseconds> lifetime = std::nullopt,
                           time_point now = t0) {
    session s;
    s.id = std::move(id);
    s.owner = std::move(owner);
    s.status = session_status::active;
    s.created_at = now;
    s.last_active = now;
    s.idle_timeout = idle;
    if (lifetime) s.absolute_deadline = now + *lifetime;
    s.idle_deadline = sliding_deadline(s, now);
    s.attributes = {{"k", "v"}};
    return s;
}

template <class Store>
session create_ok(Store& store, const session& s) {
    auto r = sync_wait(store.create(s));
    BOOST_REQUIRE(r.created);
    return r.record;
}

template <class Store>
session finish(Store& store, session s, time_point when, session_status final_status = session_status::terminated) {
    auto expected = s.version;
    s.status = final_status;
    s.ended_at = when;
    s.end_reason = "deleted";
    BOOST_REQUIRE(sync_wait(store.update(s, expected)) == update_result::updated);
    s.version = expected + 1;
    return s;
}

template <class Store>
std::vector<std::string> page_all(Store& store, list_query q, std::size_t* pages = nullptr) {
    std::vector<std::string> ids;
    for (std::size_t n = 0;; ++n) {
        auto page = sync_wait(store.list(q));
        for (auto& s : page.sessions) ids.push_back(s.id);
        if (!page.next_cursor) {
            if (pages) *pages = n + 1;
            return ids;
        }
        BOOST_REQUIRE(n < 100000);
        q.cursor = *page.next_cursor;
    }
}

} // namespace sessionkit::conformance

BOOST_AUTO_TEST_SUITE(store_conformance)

using namespace sessionkit;
using namespace sessionkit::conformance;

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
        boost::asio::co_spawn(ctx, [&, i]() -> awaitable<void> {
            session mine = s;
            mine.attributes["writer"] = i;
            if (co_await store->update(mine, s.version) == update_result::updated) ++wins;
        }, boost::asio::detached);
    test::run_threads(ctx, 4);
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
        boost::asio::co_spawn(ctx, [&]() -> awaitable<void> {
            for (;;) {
                auto batch = co_await store->claim_expired(t0 + 60s, 7, 10min);
                {
                    std::lock_guard lock(m);
                    for (auto& s : batch) got.push_back(s.id);
                }
                if (batch.empty()) co_return;
            }
        }, boost::asio::detached);
    test::run_threads(ctx, 4);
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
    for (std::string bad : {std::string("c1"), page.next_cursor->substr(0, page.next_cursor->size() - 1) + "x"}) {
        list_query next;
        next.cursor = bad;
        BOOST_CHECK_EXCEPTION(sync_wait(store->list(next)), boost::system::system_error, [&](const auto& e) {
            return e.code() == error::invalid_argument && std::string_view(e.what()).find(bad) != std::string_view::npos;
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
        boost::asio::co_spawn(ctx, [&]() -> awaitable<void> {
            if (co_await store->try_lock("race", 1min, t0)) ++winners;
        }, boost::asio::detached);
    test::run_threads(ctx, 4);
    BOOST_TEST(winners.load() == 1);
}

// ---- output_log, for the stores that keep worker output ------------------------

BOOST_AUTO_TEST_CASE_TEMPLATE(output_is_read_back_by_offset_in_order, F, conformance_factories) {
    if constexpr (output_log<typename F::store_type>) {
        F factory;
        auto store = factory.make();
        create_ok(*store, make_record("o1"));
        auto empty = sync_wait(store->read_output("o1", 0, 100));
        BOOST_REQUIRE(empty);
        BOOST_TEST(empty->data.empty());
        BOOST_TEST(empty->next_offset == 0u);
        BOOST_TEST(sync_wait(store->append_output("o1", "abc")));
        BOOST_TEST(sync_wait(store->append_output("o1", std::string("d\0e", 3))));
        auto all = sync_wait(store->read_output("o1", 0, 100));
        BOOST_TEST(all->data == std::string("abcd\0e", 6));
        BOOST_TEST(all->next_offset == 6u);
        BOOST_TEST(!all->dropped);
        auto mid = sync_wait(store->read_output("o1", 2, 2));
        BOOST_TEST(mid->data == "cd");
        BOOST_TEST(mid->offset == 2u);
        BOOST_TEST(mid->next_offset == 4u);
        BOOST_TEST(sync_wait(store->read_output("o1", 6, 100))->data.empty());
        try {
            sync_wait(store->read_output("o1", 7, 100));
            BOOST_FAIL("expected invalid_argument");
        } catch (const boost::system::system_error& e) {
            BOOST_TEST(e.code() == make_error_code(error::invalid_argument));
            BOOST_TEST(std::string(e.what()).find("offset 7") != std::string::npos);
            BOOST_TEST(std::string(e.what()).find("o1") != std::string::npos);
        }
        BOOST_TEST(!sync_wait(store->append_output("nobody", "x")));
        BOOST_TEST(!sync_wait(store->read_output("nobody", 0, 10)));
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(output_goes_with_its_record, F, conformance_factories) {
    if constexpr (output_log<typename F::store_type>) {
        F factory;
        auto store = factory.make();
        auto s = create_ok(*store, make_record("o2"));
        sync_wait(store->append_output("o2", "first life"));
        // A finished session keeps its log (a failed worker's last words)...
        auto ended = finish(*store, s, t0 + 1s, session_status::failed);
        BOOST_TEST(sync_wait(store->read_output("o2", 0, 100))->data == "first life");
        BOOST_TEST(sync_wait(store->append_output("o2", "!")));
        // ...until a new session takes its id,
        create_ok(*store, make_record("o2"));
        BOOST_TEST(sync_wait(store->read_output("o2", 0, 100))->data.empty());
        // or it is erased, or purged.
        sync_wait(store->append_output("o2", "second"));
        BOOST_TEST(sync_wait(store->erase("o2")));
        BOOST_TEST(!sync_wait(store->read_output("o2", 0, 100)));
        create_ok(*store, make_record("o2"));
        BOOST_TEST(sync_wait(store->read_output("o2", 0, 100))->data.empty());
        auto s3 = create_ok(*store, make_record("o3"));
        sync_wait(store->append_output("o3", "old"));
        finish(*store, s3, t0 + 1s);
        BOOST_TEST(sync_wait(store->purge_ended(t0 + 2s, 10)) == 1u);
        BOOST_TEST(!sync_wait(store->read_output("o3", 0, 100)));
        (void)ended;
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(concurrent_appends_are_each_kept_whole, F, conformance_factories) {
    if constexpr (output_log<typename F::store_type>) {
        F factory;
        auto store = factory.make();
        create_ok(*store, make_record("o4"));
        boost::asio::io_context ctx;
        for (int i = 0; i < 100; ++i)
            boost::asio::co_spawn(ctx, [&, i]() -> awaitable<void> {
                co_await store->append_output("o4", "<" + std::string(10, static_cast<char>('a' + i % 26)) + ">");
            }, boost::asio::detached);
        test::run_threads(ctx, 4);
        std::string all;
        for (std::uint64_t at = 0;;) {
            auto c = sync_wait(store->read_output("o4", at, 256));
            if (c->data.empty()) break;
            all += c->data;
            at = c->next_offset;
        }
        BOOST_REQUIRE(all.size() == 1200u);
        for (std::size_t i = 0; i < all.size(); i += 12) {
            BOOST_TEST(all[i] == '<');
            BOOST_TEST(all[i + 11] == '>');
            BOOST_TEST(all.substr(i + 1, 10) == std::string(10, all[i + 1]));
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

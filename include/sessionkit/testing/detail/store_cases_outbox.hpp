// sessionkit/testing/detail/store_cases_outbox.hpp — conformance cases: the
// outbox (events written with the write that implies them).
//
// One part of the store conformance suite: include
// <sessionkit/testing/store_conformance.hpp>, not this (the cases need the
// user's conformance_factories declared first). They run for a factory
// that can make a store with its outbox on:
//
//   std::unique_ptr<store_type> make_with_outbox(sessionkit::outbox_options);
//
// and are no-ops for the others.
// header-check prelude: conformance_factories (the suite is compiled over an archetype store)
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/event.hpp>
#include <sessionkit/outbox.hpp>
#include <sessionkit/testing/store_fixtures.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace sessionkit::testing::conformance {

template <class F>
concept makes_outbox_store = requires(F f, outbox_options o) {
    f.make_with_outbox(o);
};

inline event test_event(const std::string& session_id, std::string tag, event_type type = event_type::status_changed) {
    return make_event(type, session_id, t0, {{"tag", std::move(tag)}});
}

/// Every waiting event of every partition, oldest first per partition.
template <class Store>
std::vector<outbox_entry> read_whole_outbox(Store& store) {
    std::vector<outbox_entry> all;
    for (unsigned p = 0; p < store.outbox_partitions(); ++p) {
        auto part = sync_wait(store.read_outbox(p, "", 100'000));
        all.insert(all.end(), part.begin(), part.end());
    }
    return all;
}

/// The `tag`s of `session_id`'s waiting events, in outbox order.
template <class Store>
std::vector<std::string> tags_of(Store& store, const std::string& session_id) {
    std::vector<std::string> tags;
    for (auto& e : read_whole_outbox(store))
        if (e.ev.session_id == session_id && e.ev.data.contains("tag"))
            tags.emplace_back(e.ev.data.at("tag").as_string());
    return tags;
}

/// The partition holding `session_id`'s events (one must be waiting).
template <class Store>
unsigned partition_of(Store& store, const std::string& session_id) {
    for (unsigned p = 0; p < store.outbox_partitions(); ++p)
        for (auto& e : sync_wait(store.read_outbox(p, "", 100'000)))
            if (e.ev.session_id == session_id) return p;
    BOOST_FAIL("no waiting event of " + session_id);
    return 0;
}

}  // namespace sessionkit::testing::conformance

BOOST_AUTO_TEST_SUITE(store_conformance)

using namespace sessionkit;
using namespace sessionkit::testing::conformance;

BOOST_AUTO_TEST_CASE_TEMPLATE(outbox_takes_events_only_with_a_write_that_lands, F, conformance_factories) {
    if constexpr (makes_outbox_store<F>) {
        F factory;
        BOOST_TEST(!factory.make()->has_outbox());
        auto store = factory.make_with_outbox(outbox_options{});
        BOOST_REQUIRE(store->has_outbox());
        BOOST_REQUIRE(store->outbox_partitions() >= 1u);

        auto made = sync_wait(store->create(make_record("ob1"), std::vector<event>{test_event("ob1", "created")}));
        BOOST_REQUIRE(made.created);
        // Not created (it exists): no event.
        auto again = sync_wait(store->create(make_record("ob1"), std::vector<event>{test_event("ob1", "dup")}));
        BOOST_TEST(!again.created);
        // CAS lost: no event.
        auto rec = made.record;
        rec.status = session_status::idle;
        BOOST_TEST((sync_wait(store->update(rec, rec.version + 7, std::vector<event>{test_event("ob1", "stale")})) ==
                    update_result::version_conflict));
        BOOST_TEST((sync_wait(store->update(make_record("nobody"), 1, std::vector<event>{test_event("nobody", "x")})) ==
                    update_result::not_found));
        // Landed: its event follows the first.
        BOOST_TEST((sync_wait(store->update(rec, rec.version, std::vector<event>{test_event("ob1", "idle")})) ==
                    update_result::updated));
        // A final record takes no write, so no event.
        auto ended = finish(*store, *sync_wait(store->get("ob1")), t0 + 1s);
        BOOST_TEST((sync_wait(store->update(ended, ended.version, std::vector<event>{test_event("ob1", "late")})) ==
                    update_result::final_state));
        // Writes without events append nothing.
        create_ok(*store, make_record("ob2"));

        BOOST_TEST(tags_of(*store, "ob1") == (std::vector<std::string>{"created", "idle"}));
        BOOST_TEST(tags_of(*store, "nobody").empty());
        BOOST_TEST(read_whole_outbox(*store).size() == 2u);
        auto st = sync_wait(store->outbox_stats());
        BOOST_TEST(st.depth == 2u);
        BOOST_REQUIRE(st.oldest.has_value());
        BOOST_TEST(to_unix_ms(*st.oldest) == to_unix_ms(t0));
        BOOST_TEST(st.dropped == 0u);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(outbox_keeps_each_sessions_events_whole_and_in_order, F, conformance_factories) {
    if constexpr (makes_outbox_store<F>) {
        F factory;
        auto store = factory.make_with_outbox(outbox_options{});
        std::vector<std::string> ids;
        for (int i = 0; i < 12; ++i) ids.push_back("ord-" + std::to_string(i));
        for (auto& id : ids)
            sync_wait(store->create(make_record(id), std::vector<event>{test_event(id, "0"), test_event(id, "1")}));
        for (int step = 2; step < 6; ++step)
            for (auto& id : ids) {
                auto rec = *sync_wait(store->get(id));
                BOOST_REQUIRE(sync_wait(store->update(rec, rec.version,
                                                      std::vector<event>{test_event(id, std::to_string(step))})) ==
                              update_result::updated);
            }
        for (auto& id : ids)
            BOOST_TEST(tags_of(*store, id) == (std::vector<std::string>{"0", "1", "2", "3", "4", "5"}));
        // Each event comes back whole: same id, type, session, time, data.
        auto first = read_whole_outbox(*store);
        BOOST_REQUIRE(!first.empty());
        for (auto& e : first) {
            BOOST_TEST(e.ev.id.size() == 26u);
            BOOST_TEST((e.ev.type == event_type::status_changed));
            BOOST_TEST(to_unix_ms(e.ev.time) == to_unix_ms(t0));
        }
        auto again = read_whole_outbox(*store);
        BOOST_REQUIRE(again.size() == first.size());
        for (std::size_t i = 0; i < first.size(); ++i) {
            BOOST_TEST(again[i].ev.id == first[i].ev.id);
            BOOST_TEST(again[i].position == first[i].position);
        }
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(outbox_reads_from_a_position_and_trims_up_to_one, F, conformance_factories) {
    if constexpr (makes_outbox_store<F>) {
        F factory;
        auto store = factory.make_with_outbox(outbox_options{});
        std::vector<event> five;
        for (int i = 0; i < 5; ++i) five.push_back(test_event("pos", std::to_string(i)));
        sync_wait(store->create(make_record("pos"), five));
        const unsigned p = partition_of(*store, "pos");

        auto head = sync_wait(store->read_outbox(p, "", 2));
        BOOST_REQUIRE(head.size() == 2u);
        BOOST_TEST(head[0].ev.id == five[0].id);
        BOOST_TEST(head[1].ev.id == five[1].id);
        auto rest = sync_wait(store->read_outbox(p, head[1].position, 10));
        BOOST_REQUIRE(rest.size() == 3u);
        BOOST_TEST(rest[0].ev.id == five[2].id);
        BOOST_TEST(sync_wait(store->read_outbox(p, rest[2].position, 10)).empty());

        BOOST_TEST(sync_wait(store->trim_outbox(p, head[1].position)) == 2u);
        BOOST_TEST(sync_wait(store->trim_outbox(p, head[1].position)) == 0u);  // already gone: no-op
        auto left = sync_wait(store->read_outbox(p, "", 10));
        BOOST_REQUIRE(left.size() == 3u);
        BOOST_TEST(left[0].ev.id == five[2].id);
        // Reading from a trimmed position still finds what follows it.
        BOOST_TEST(sync_wait(store->read_outbox(p, head[0].position, 10)).size() == 3u);
        BOOST_TEST(sync_wait(store->trim_outbox(p, left[2].position)) == 3u);
        BOOST_TEST(sync_wait(store->outbox_stats()).depth == 0u);
        BOOST_TEST(!sync_wait(store->outbox_stats()).oldest.has_value());
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_full_outbox_drops_its_oldest_and_says_which, F, conformance_factories) {
    if constexpr (makes_outbox_store<F>) {
        F factory;
        auto store = factory.make_with_outbox(
            outbox_options{.max_events = 3, .overflow = outbox_overflow::drop_oldest, .dropped_ids_kept = 10});
        std::vector<event> sent;
        for (int i = 0; i < 5; ++i) sent.push_back(test_event("full", std::to_string(i)));
        sync_wait(store->create(make_record("full"), std::vector<event>{sent[0], sent[1]}));
        auto rec = *sync_wait(store->get("full"));
        BOOST_REQUIRE(sync_wait(store->update(rec, rec.version, std::vector<event>{sent[2], sent[3], sent[4]})) ==
                      update_result::updated);
        BOOST_TEST(tags_of(*store, "full") == (std::vector<std::string>{"2", "3", "4"}));
        BOOST_TEST(sync_wait(store->outbox_stats()).dropped == 2u);
        auto dropped = sync_wait(store->take_dropped(100));
        BOOST_REQUIRE(dropped.size() == 2u);
        BOOST_TEST(dropped[0].event_id == sent[0].id);
        BOOST_TEST(dropped[1].event_id == sent[1].id);
        BOOST_TEST(dropped[0].session_id == "full");
        BOOST_TEST(dropped[0].type == "status_changed");
        BOOST_TEST(dropped[0].partition == partition_of(*store, "full"));
        BOOST_TEST(sync_wait(store->take_dropped(100)).empty());     // taken once
        BOOST_TEST(sync_wait(store->outbox_stats()).dropped == 2u);  // still counted
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_full_outbox_that_refuses_writes_changes_nothing, F, conformance_factories) {
    if constexpr (makes_outbox_store<F>) {
        F factory;
        auto store =
            factory.make_with_outbox(outbox_options{.max_events = 2, .overflow = outbox_overflow::refuse_writes});
        auto made = sync_wait(store->create(make_record("tight"),
                                            std::vector<event>{test_event("tight", "0"), test_event("tight", "1")}));
        BOOST_REQUIRE(made.created);
        auto rec = made.record;
        rec.status = session_status::idle;
        try {
            sync_wait(store->update(rec, rec.version, std::vector<event>{test_event("tight", "2")}));
            BOOST_FAIL("expected backend_unavailable: the outbox is full");
        } catch (const boost::system::system_error& e) {
            BOOST_TEST(e.code() == make_error_code(error::backend_unavailable));
            BOOST_TEST(std::string(e.what()).find("full") != std::string::npos);
        }
        auto now = sync_wait(store->get("tight"));
        BOOST_TEST(now->version == made.record.version);  // the write did not land
        BOOST_TEST(now->status == session_status::active);
        BOOST_TEST(tags_of(*store, "tight") == (std::vector<std::string>{"0", "1"}));
        BOOST_TEST(sync_wait(store->outbox_stats()).dropped == 0u);
        // Once the relay trims, writes go through again.
        const unsigned p = partition_of(*store, "tight");
        auto waiting = sync_wait(store->read_outbox(p, "", 10));
        sync_wait(store->trim_outbox(p, waiting.back().position));
        BOOST_TEST((sync_wait(store->update(rec, rec.version, std::vector<event>{test_event("tight", "2")})) ==
                    update_result::updated));
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(claimed_warnings_are_written_to_the_outbox, F, conformance_factories) {
    if constexpr (makes_outbox_store<F>) {
        F factory;
        auto store = factory.make_with_outbox(outbox_options{});
        create_ok(*store, make_record("warn-me", "alice", 60s));
        create_ok(*store, make_record("not-yet", "alice", 600s));
        auto warned = sync_wait(store->claim_warnings(t0 + 50s, t0 + 61s, 100));
        BOOST_REQUIRE(warned.size() == 1u);
        std::vector<outbox_entry> warnings;
        for (auto& e : read_whole_outbox(*store))
            if (e.ev.type == event_type::timeout_warning) warnings.push_back(e);
        BOOST_REQUIRE(warnings.size() == 1u);
        const auto& w = warnings[0].ev;
        BOOST_TEST(w.session_id == "warn-me");
        BOOST_TEST(to_unix_ms(w.time) == to_unix_ms(t0 + 50s));
        BOOST_TEST(w.data.at("deadline").as_int64() == to_unix_ms(t0 + 60s));
        BOOST_TEST(w.data.at("reason").as_string() == "idle");
        BOOST_TEST(w.data.at("remaining_ms").as_int64() == 10'000);
        // Claimed once: a second sweep warns nobody and writes nothing.
        BOOST_TEST(sync_wait(store->claim_warnings(t0 + 51s, t0 + 61s, 100)).empty());
        BOOST_TEST(read_whole_outbox(*store).size() == 1u);
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(a_lock_is_extended_only_by_its_holder, F, conformance_factories) {
    if constexpr (makes_outbox_store<F>) {
        F factory;
        auto store = factory.make_with_outbox(outbox_options{});
        auto token = sync_wait(store->try_lock("lease:0", 5s, t0));
        BOOST_REQUIRE(token);
        BOOST_TEST(sync_wait(store->extend_lock("lease:0", *token, 5s, t0 + 1s)));
        BOOST_TEST(!sync_wait(store->extend_lock("lease:0", "not-the-token", 5s, t0 + 1s)));
        BOOST_TEST(!sync_wait(store->try_lock("lease:0", 5s, t0 + 2s)));
        BOOST_TEST(sync_wait(store->unlock("lease:0", *token)));
        BOOST_TEST(!sync_wait(store->extend_lock("lease:0", *token, 5s, t0 + 3s)));  // released: not ours
        BOOST_TEST(!sync_wait(store->extend_lock("never-taken", *token, 5s, t0 + 3s)));
    }
}

BOOST_AUTO_TEST_SUITE_END()

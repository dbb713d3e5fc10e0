// redis_store's event outbox against a real redis-server (issue 14): events
// appended in the write's own script and only when it lands, order and
// positions, trim, the bound under both overflow policies, the warnings a
// sweep appends, extend_lock, and a registry + event_relay delivering every
// event once, in order. Needs REDIS_URL (the ctest fixture sets it).
#define BOOST_TEST_MODULE sessionkit_redis_outbox
#define BOOST_TEST_NO_MAIN
#include <boost/test/unit_test.hpp>

#include "integration/redis_support.hpp"
#include <sessionkit/testing/eventually.hpp>
#include <sessionkit/testing/run.hpp>

#include <sessionkit/event_relay.hpp>
#include <sessionkit/registry.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <span>

namespace {

using namespace sessionkit;
using namespace std::chrono_literals;
using testing::sync_wait;

test::background_io& shared_io() {
    static test::background_io io(2);
    return io;
}

std::shared_ptr<redis::connection> shared_connection() {
    static auto conn = std::make_shared<redis::connection>(shared_io().executor(), test::test_config());
    return conn;
}

/// A fresh store (its own prefix) with the outbox on.
std::unique_ptr<redis_store> outbox_store_of(outbox_options outbox, unsigned partitions = 4) {
    redis_store_options o;
    o.prefix = test::fresh_prefix("obx");
    o.partitions = partitions;
    o.outbox = outbox;
    return std::make_unique<redis_store>(shared_connection(), o);
}

/// Whole milliseconds (what Redis keeps).
time_point ms_now() { return from_unix_ms(to_unix_ms(std::chrono::system_clock::now())); }

session record_of(const std::string& id, time_point now) {
    session s;
    s.id = id;
    s.owner = "alice";
    s.status = session_status::active;
    s.created_at = s.last_active = now;
    s.idle_timeout = 60s;
    s.idle_deadline = now + 60s;
    return s;
}

event event_of(event_type type, const std::string& sid, time_point at, boost::json::object data = {}) {
    return make_event(type, sid, at, std::move(data));
}

/// Everything partition `p` holds, oldest first.
std::vector<outbox_entry> read_all(redis_store& store, unsigned p) {
    return sync_wait(store.read_outbox(p, "", 10'000));
}

/// Everything every partition holds.
std::size_t depth(redis_store& store) { return sync_wait(store.outbox_stats()).depth; }

std::vector<std::string> ids_of(const std::vector<outbox_entry>& entries) {
    std::vector<std::string> out;
    for (const auto& e : entries) out.push_back(e.ev.id);
    return out;
}

template <class T>
boost::system::system_error expect_failure(awaitable<T> op) {
    try {
        sync_wait(std::move(op));
    } catch (const boost::system::system_error& e) {
        return e;
    }
    BOOST_FAIL("the operation did not fail");
    throw std::logic_error("unreachable");
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

/// A confirming sink that remembers what it was given (copies share it).
class recording_confirming_sink {
public:
    void emit(const event& e) noexcept {
        std::lock_guard lock(state_->mutex);
        state_->emitted.push_back(e);
    }
    awaitable<void> publish(std::span<const event> batch) {
        {
            std::lock_guard lock(state_->mutex);
            state_->published.insert(state_->published.end(), batch.begin(), batch.end());
        }
        co_return;
    }
    std::vector<event> published() const {
        std::lock_guard lock(state_->mutex);
        return state_->published;
    }
    std::size_t emitted() const {
        std::lock_guard lock(state_->mutex);
        return state_->emitted.size();
    }

private:
    struct state {
        mutable std::mutex mutex;
        std::vector<event> emitted, published;
    };
    std::shared_ptr<state> state_ = std::make_shared<state>();
};
static_assert(confirming_sink<recording_confirming_sink>);

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_outbox)

BOOST_AUTO_TEST_CASE(the_store_is_an_outbox_store_only_when_its_options_say_so) {
    static_assert(outbox_store<redis_store>);
    redis_store_options plain;
    plain.prefix = test::fresh_prefix("obx");
    redis_store off(shared_connection(), plain);
    BOOST_TEST(!off.has_outbox());
    BOOST_TEST(!writes_events(off));
    auto on = outbox_store_of({}, 5);
    BOOST_TEST(on->has_outbox());
    BOOST_TEST(on->outbox_partitions() == 5u);
    BOOST_TEST(on->outbox_key(3) == on->options().prefix + "{3}:outbox");
    // A write that carries events needs the outbox.
    const auto now = ms_now();
    auto s = record_of("nobox-" + generate_id().substr(0, 8), now);
    auto e = expect_failure(off.create(s, {event_of(event_type::created, s.id, now)}));
    BOOST_TEST((e.code() == error::invalid_argument));
    BOOST_TEST(contains(e.what(), "outbox is off"));
    BOOST_TEST(!sync_wait(off.get(s.id)).has_value());
    BOOST_TEST((expect_failure(off.read_outbox(0, "", 10)).code() == error::invalid_argument));
    BOOST_TEST((expect_failure(on->read_outbox(5, "", 10)).code() == error::invalid_argument));
    redis_store_options bad = plain;
    bad.outbox = outbox_options{.max_events = 0};
    BOOST_CHECK_THROW((redis_store{shared_connection(), bad}), boost::system::system_error);
}

BOOST_AUTO_TEST_CASE(events_are_appended_only_when_the_write_lands) {
    auto store = outbox_store_of({}, 1);  // one partition: every event in one stream
    const auto now = ms_now();
    auto s = record_of("land-" + generate_id().substr(0, 8), now);
    const auto created = event_of(event_type::created, s.id, now, {{"owner", "alice"}});

    auto made = sync_wait(store->create(s, {created}));
    BOOST_TEST_REQUIRE(made.created);
    auto entries = read_all(*store, 0);
    BOOST_TEST_REQUIRE(entries.size() == 1u);
    // The event as it went in: id, type, session, time, data.
    BOOST_TEST(entries[0].ev.id == created.id);
    BOOST_TEST((entries[0].ev.type == event_type::created));
    BOOST_TEST(entries[0].ev.session_id == s.id);
    BOOST_TEST(to_unix_ms(entries[0].ev.time) == to_unix_ms(now));
    BOOST_TEST(boost::json::serialize(entries[0].ev.data) == R"({"owner":"alice"})");
    BOOST_TEST(!entries[0].position.empty());

    // A create of a live id does not land: nothing appended.
    BOOST_TEST(!sync_wait(store->create(s, {event_of(event_type::created, s.id, now)})).created);
    BOOST_TEST(read_all(*store, 0).size() == 1u);

    // An update with the wrong version does not land.
    session next = made.record;
    next.status = session_status::idle;
    BOOST_TEST(
        (sync_wait(store->update(next, made.record.version + 7, {event_of(event_type::status_changed, s.id, now)})) ==
         update_result::version_conflict));
    BOOST_TEST(read_all(*store, 0).size() == 1u);
    BOOST_TEST((sync_wait(store->get(s.id))->status == session_status::active));

    // Nor one of an id that has no record.
    auto ghost = record_of("ghost-" + generate_id().substr(0, 8), now);
    BOOST_TEST((sync_wait(store->update(ghost, 1, {event_of(event_type::status_changed, ghost.id, now)})) ==
                update_result::not_found));
    BOOST_TEST(read_all(*store, 0).size() == 1u);

    // The right version lands, with its event.
    const auto changed = event_of(event_type::status_changed, s.id, now, {{"from", "active"}, {"to", "idle"}});
    BOOST_TEST((sync_wait(store->update(next, made.record.version, {changed})) == update_result::updated));
    BOOST_TEST(read_all(*store, 0).size() == 2u);

    // Ending it lands; an update of the final record does not.
    session ended = *sync_wait(store->get(s.id));
    const std::uint64_t v = ended.version;
    ended.status = session_status::terminated;
    ended.ended_at = now;
    const auto terminated = event_of(event_type::terminated, s.id, now, {{"reason", "deleted"}});
    BOOST_TEST((sync_wait(store->update(ended, v, {terminated})) == update_result::updated));
    ended.status = session_status::failed;
    BOOST_TEST((sync_wait(store->update(ended, v + 1, {event_of(event_type::status_changed, s.id, now)})) ==
                update_result::final_state));

    entries = read_all(*store, 0);
    BOOST_TEST((ids_of(entries) == std::vector<std::string>{created.id, changed.id, terminated.id}));

    // Writes without events append nothing, on an outbox store too.
    auto quiet = record_of("quiet-" + generate_id().substr(0, 8), now);
    BOOST_TEST(sync_wait(store->create(quiet)).created);
    BOOST_TEST(
        sync_wait(store->create(record_of("quiet2-" + generate_id().substr(0, 8), now), std::vector<event>{})).created);
    BOOST_TEST(read_all(*store, 0).size() == 3u);
}

BOOST_AUTO_TEST_CASE(a_write_that_appends_events_wakes_the_relay_of_its_partition) {
    auto store = outbox_store_of({}, 4);
    auto& signal = store->outbox_signal();
    const auto now = ms_now();
    auto s = record_of("wake-" + generate_id().substr(0, 8), now);
    const unsigned p = redis_store_keys::partition_of(s.id, 4);
    signal.take_dirty();
    auto seen = signal.generation();
    BOOST_TEST_REQUIRE(sync_wait(store->create(s, {event_of(event_type::created, s.id, now)})).created);
    BOOST_TEST(signal.generation() > seen);
    BOOST_TEST((signal.take_dirty() == std::vector<unsigned>{p}));

    // A write that does not land, or carries nothing, wakes nobody.
    seen = signal.generation();
    BOOST_TEST(!sync_wait(store->create(s, {event_of(event_type::created, s.id, now)})).created);
    BOOST_TEST((sync_wait(store->update(s, 99, {event_of(event_type::status_changed, s.id, now)})) ==
                update_result::version_conflict));
    auto cur = *sync_wait(store->get(s.id));
    BOOST_TEST((sync_wait(store->update(cur, cur.version)) == update_result::updated));
    BOOST_TEST(signal.generation() == seen);

    cur = *sync_wait(store->get(s.id));
    BOOST_TEST((sync_wait(store->update(cur, cur.version, {event_of(event_type::status_changed, s.id, now)})) ==
                update_result::updated));
    BOOST_TEST(signal.generation() > seen);
    signal.take_dirty();
    // The warnings a sweep appends wake it too.
    seen = signal.generation();
    BOOST_TEST(sync_wait(store->claim_warnings(now + 30s, now + 65s, 10)).size() == 1u);
    BOOST_TEST(signal.generation() > seen);
    BOOST_TEST((signal.take_dirty() == std::vector<unsigned>{p}));
}

BOOST_AUTO_TEST_CASE(events_keep_their_order_per_partition_and_are_read_from_a_position) {
    auto store = outbox_store_of({}, 4);
    const auto now = ms_now();
    std::map<unsigned, std::vector<std::string>> written;  // event ids per partition, in write order
    std::vector<session> sessions;
    for (int i = 0; i < 12; ++i) {
        auto s = record_of("ord-" + std::to_string(i) + "-" + generate_id().substr(0, 6), now);
        auto e = event_of(event_type::created, s.id, now + milliseconds{i});
        BOOST_TEST_REQUIRE(sync_wait(store->create(s, {e})).created);
        written[redis_store_keys::partition_of(s.id, 4)].push_back(e.id);
        sessions.push_back(sync_wait(store->get(s.id)).value());
    }
    // Two events per write, in the order given.
    for (auto& s : sessions) {
        session next = s;
        next.status = session_status::idle;
        auto a = event_of(event_type::status_changed, s.id, now), b = event_of(event_type::worker_started, s.id, now);
        BOOST_TEST_REQUIRE((sync_wait(store->update(next, s.version, {a, b})) == update_result::updated));
        auto& list = written[redis_store_keys::partition_of(s.id, 4)];
        list.push_back(a.id);
        list.push_back(b.id);
    }
    std::size_t total = 0;
    for (unsigned p = 0; p < 4; ++p) {
        auto entries = read_all(*store, p);
        BOOST_TEST((ids_of(entries) == written[p]), "partition " << p);
        total += entries.size();
        for (std::size_t i = 1; i < entries.size(); ++i)  // positions only grow
            BOOST_TEST((detail::redis_store::parse_position(entries[i - 1].position) <
                        detail::redis_store::parse_position(entries[i].position)));
    }
    BOOST_TEST(total == 36u);
    BOOST_TEST(depth(*store) == 36u);

    // Reading from a position: what follows it, `limit` at a time.
    const unsigned p = std::max_element(written.begin(), written.end(), [](auto& a, auto& b) {
                           return a.second.size() < b.second.size();
                       })->first;
    auto all = read_all(*store, p);
    BOOST_TEST_REQUIRE(all.size() >= 4u);
    auto after_first = sync_wait(store->read_outbox(p, all[0].position, 2));
    BOOST_TEST_REQUIRE(after_first.size() == 2u);
    BOOST_TEST(after_first[0].ev.id == all[1].ev.id);
    BOOST_TEST(after_first[1].ev.id == all[2].ev.id);
    std::vector<std::string> paged;
    for (std::string at; paged.size() <= all.size();) {  // (bounded: a read that repeats itself must not hang)
        auto page = sync_wait(store->read_outbox(p, at, 3));
        if (page.empty()) break;
        for (auto& e : page) paged.push_back(e.ev.id);
        at = page.back().position;
    }
    BOOST_TEST((paged == ids_of(all)));
    BOOST_TEST(sync_wait(store->read_outbox(p, all.back().position, 10)).empty());

    auto e = expect_failure(store->read_outbox(p, "not-a-position", 10));
    BOOST_TEST((e.code() == error::invalid_argument));
    BOOST_TEST(contains(e.what(), "not-a-position"));
    BOOST_TEST(contains(e.what(), store->outbox_key(p)));
}

BOOST_AUTO_TEST_CASE(trim_removes_up_to_a_position_and_is_a_no_op_when_they_are_gone) {
    auto store = outbox_store_of({}, 1);
    const auto now = ms_now();
    auto s = record_of("trim-" + generate_id().substr(0, 8), now);
    std::vector<event> five;
    for (int i = 0; i < 5; ++i) five.push_back(event_of(event_type::status_changed, s.id, now + milliseconds{i}));
    BOOST_TEST_REQUIRE(sync_wait(store->create(s, five)).created);
    auto all = read_all(*store, 0);
    BOOST_TEST_REQUIRE(all.size() == 5u);

    BOOST_TEST(sync_wait(store->trim_outbox(0, all[2].position)) == 3u);
    auto left = read_all(*store, 0);
    BOOST_TEST((ids_of(left) == std::vector<std::string>{five[3].id, five[4].id}));
    BOOST_TEST(sync_wait(store->trim_outbox(0, all[2].position)) == 0u);  // already gone
    BOOST_TEST(sync_wait(store->trim_outbox(0, all[0].position)) == 0u);
    auto st = sync_wait(store->outbox_stats());
    BOOST_TEST(st.depth == 2u);
    BOOST_TEST_REQUIRE(st.oldest.has_value());
    BOOST_TEST(to_unix_ms(*st.oldest) == to_unix_ms(now + 3ms));

    auto conn = shared_connection();
    const std::string key = store->outbox_key(0);
    BOOST_TEST(sync_wait(conn->exec_one("PTTL", key)).as_integer() == -1);  // holds events: no TTL
    BOOST_TEST(sync_wait(store->trim_outbox(0, all[4].position)) == 2u);
    st = sync_wait(store->outbox_stats());
    BOOST_TEST(st.depth == 0u);
    BOOST_TEST(!st.oldest.has_value());
    // Emptied: kept (its last id keeps positions growing), with a TTL.
    BOOST_TEST(sync_wait(conn->exec_one("PTTL", key)).as_integer() > 0);
    session next = *sync_wait(store->get(s.id));
    const auto later = event_of(event_type::status_changed, s.id, now);
    BOOST_TEST_REQUIRE((sync_wait(store->update(next, next.version, {later})) == update_result::updated));
    BOOST_TEST(sync_wait(conn->exec_one("PTTL", key)).as_integer() == -1);
    auto again = read_all(*store, 0);
    BOOST_TEST_REQUIRE(again.size() == 1u);
    BOOST_TEST(again[0].ev.id == later.id);
    BOOST_TEST((detail::redis_store::parse_position(all[4].position) <
                detail::redis_store::parse_position(again[0].position)));
    // Trimming a stream that is not there is a no-op too.
    BOOST_TEST(sync_wait(store->trim_outbox(0, again[0].position)) == 1u);
    sync_wait(conn->exec_one("DEL", key));
    BOOST_TEST(sync_wait(store->trim_outbox(0, again[0].position)) == 0u);
    BOOST_TEST(sync_wait(conn->exec_one("EXISTS", key)).as_integer() == 0);
}

BOOST_AUTO_TEST_CASE(stats_sum_every_partition_and_give_the_oldest_event_time) {
    auto store = outbox_store_of({}, 4);
    const auto now = ms_now();
    auto st = sync_wait(store->outbox_stats());
    BOOST_TEST(st.depth == 0u);
    BOOST_TEST(!st.oldest.has_value());
    BOOST_TEST(st.dropped == 0u);
    std::set<unsigned> used;
    for (int i = 0; i < 10; ++i) {
        auto s = record_of("st-" + std::to_string(i) + "-" + generate_id().substr(0, 6), now);
        used.insert(redis_store_keys::partition_of(s.id, 4));
        // The earliest event goes in last (its partition's first entry).
        BOOST_TEST_REQUIRE(
            sync_wait(store->create(s, {event_of(event_type::created, s.id, now + milliseconds{i == 9 ? -5000 : i})}))
                .created);
    }
    BOOST_TEST(used.size() > 1u);
    st = sync_wait(store->outbox_stats());
    BOOST_TEST(st.depth == 10u);
    BOOST_TEST_REQUIRE(st.oldest.has_value());
    // The oldest first entry of any partition (the one written last may
    // not be its partition's first; then the next oldest is).
    time_point expected = now + 1h;
    for (unsigned p = 0; p < 4; ++p) {
        auto entries = read_all(*store, p);
        if (!entries.empty()) expected = std::min(expected, entries.front().ev.time);
    }
    BOOST_TEST(to_unix_ms(*st.oldest) == to_unix_ms(expected));
}

BOOST_AUTO_TEST_CASE(a_full_outbox_under_drop_oldest_drops_counts_and_lists_the_oldest) {
    auto store = outbox_store_of({.max_events = 3, .overflow = outbox_overflow::drop_oldest, .dropped_ids_kept = 2}, 1);
    const auto now = ms_now();
    auto s = record_of("drop-" + generate_id().substr(0, 8), now);
    std::vector<event> events;
    for (int i = 0; i < 5; ++i) events.push_back(event_of(event_type::status_changed, s.id, now + milliseconds{i}));
    BOOST_TEST_REQUIRE(sync_wait(store->create(s, {events[0], events[1]})).created);
    session cur = *sync_wait(store->get(s.id));
    // One write that overflows by two: the write succeeds, the two oldest go.
    BOOST_TEST_REQUIRE(
        (sync_wait(store->update(cur, cur.version, {events[2], events[3], events[4]})) == update_result::updated));
    BOOST_TEST((ids_of(read_all(*store, 0)) == std::vector<std::string>{events[2].id, events[3].id, events[4].id}));
    auto st = sync_wait(store->outbox_stats());
    BOOST_TEST(st.depth == 3u);
    BOOST_TEST(st.dropped == 2u);

    auto dropped = sync_wait(store->take_dropped(10));
    BOOST_TEST_REQUIRE(dropped.size() == 2u);
    BOOST_TEST(dropped[0].event_id == events[0].id);  // oldest first
    BOOST_TEST(dropped[1].event_id == events[1].id);
    BOOST_TEST(dropped[0].session_id == s.id);
    BOOST_TEST(dropped[0].type == "status_changed");
    BOOST_TEST(dropped[0].partition == 0u);
    BOOST_TEST(sync_wait(store->take_dropped(10)).empty());  // taken once

    // Three more dropped: all counted, the newest `dropped_ids_kept` listed.
    std::vector<event> more;
    for (int i = 0; i < 3; ++i) more.push_back(event_of(event_type::status_changed, s.id, now + milliseconds{10 + i}));
    cur = *sync_wait(store->get(s.id));
    BOOST_TEST_REQUIRE((sync_wait(store->update(cur, cur.version, more)) == update_result::updated));
    st = sync_wait(store->outbox_stats());
    BOOST_TEST(st.depth == 3u);
    BOOST_TEST(st.dropped == 5u);
    dropped = sync_wait(store->take_dropped(1));  // at most `limit`, oldest first
    BOOST_TEST_REQUIRE(dropped.size() == 1u);
    BOOST_TEST(dropped[0].event_id == events[3].id);
    dropped = sync_wait(store->take_dropped(10));
    BOOST_TEST_REQUIRE(dropped.size() == 1u);
    BOOST_TEST(dropped[0].event_id == events[4].id);
}

BOOST_AUTO_TEST_CASE(dropped_ids_kept_of_zero_counts_only_and_a_huge_one_keeps_all) {
    const auto now = ms_now();
    for (std::size_t kept : {std::size_t{0}, std::numeric_limits<std::size_t>::max()}) {
        auto store = outbox_store_of({.max_events = 1, .dropped_ids_kept = kept}, 1);
        auto s = record_of("kept-" + generate_id().substr(0, 8), now);
        BOOST_TEST_REQUIRE(sync_wait(store->create(s, {event_of(event_type::created, s.id, now),
                                                       event_of(event_type::status_changed, s.id, now),
                                                       event_of(event_type::status_changed, s.id, now)}))
                               .created);
        BOOST_TEST(sync_wait(store->outbox_stats()).dropped == 2u);
        BOOST_TEST(sync_wait(store->take_dropped(10)).size() == (kept == 0 ? 0u : 2u), "kept " << kept);
    }
}

BOOST_AUTO_TEST_CASE(dropped_events_of_several_partitions_are_taken_oldest_first) {
    auto store = outbox_store_of({.max_events = 1, .overflow = outbox_overflow::drop_oldest}, 8);
    const auto now = ms_now();
    std::vector<std::string> expected;  // dropped ids, oldest first
    for (int i = 0; i < 16; ++i) {
        auto s = record_of("dp-" + std::to_string(i) + "-" + generate_id().substr(0, 6), now);
        auto first = event_of(event_type::created, s.id, now + milliseconds{2 * i});
        auto second = event_of(event_type::status_changed, s.id, now + milliseconds{2 * i + 1});
        BOOST_TEST_REQUIRE(sync_wait(store->create(s, {first, second})).created);
        expected.push_back(first.id);  // each write drops its own first event, at least
    }
    std::vector<std::string> taken;
    for (auto& d : sync_wait(store->take_dropped(1000))) taken.push_back(d.event_id);
    // Every partition's previous `second` was dropped too when a later write came.
    BOOST_TEST(taken.size() == sync_wait(store->outbox_stats()).dropped);
    for (std::size_t i = 1; i < taken.size(); ++i) BOOST_TEST(taken[i - 1] != taken[i]);
    std::size_t at = 0;  // the `first` events appear in write (time) order
    for (auto& id : taken)
        if (at < expected.size() && id == expected[at]) ++at;
    BOOST_TEST(at == expected.size());
}

BOOST_AUTO_TEST_CASE(a_full_outbox_under_refuse_writes_refuses_the_whole_write) {
    auto store = outbox_store_of({.max_events = 2, .overflow = outbox_overflow::refuse_writes}, 1);
    const auto now = ms_now();
    auto s = record_of("refuse-" + generate_id().substr(0, 8), now);
    BOOST_TEST_REQUIRE(sync_wait(store->create(s, {event_of(event_type::created, s.id, now)})).created);
    session cur = *sync_wait(store->get(s.id));
    BOOST_TEST_REQUIRE((sync_wait(store->update(cur, cur.version, {event_of(event_type::status_changed, s.id, now)})) ==
                        update_result::updated));
    cur = *sync_wait(store->get(s.id));

    // Full: an update with an event is refused, and changes nothing.
    session next = cur;
    next.status = session_status::idle;
    auto e = expect_failure(store->update(next, cur.version, {event_of(event_type::status_changed, s.id, now)}));
    BOOST_TEST_MESSAGE(e.what());
    BOOST_TEST((e.code() == error::backend_unavailable));
    BOOST_TEST(contains(e.what(), "outbox partition 0"));
    BOOST_TEST(contains(e.what(), store->outbox_key(0)));
    BOOST_TEST(contains(e.what(), "max_events 2"));
    BOOST_TEST(contains(e.what(), "refuse_writes"));
    auto after = *sync_wait(store->get(s.id));
    BOOST_TEST(after.version == cur.version);
    BOOST_TEST((after.status == session_status::active));
    BOOST_TEST(depth(*store) == 2u);
    BOOST_TEST(sync_wait(store->outbox_stats()).dropped == 0u);

    // A create is refused the same way: no record.
    auto other = record_of("refused-" + generate_id().substr(0, 8), now);
    e = expect_failure(store->create(other, {event_of(event_type::created, other.id, now)}));
    BOOST_TEST((e.code() == error::backend_unavailable));
    BOOST_TEST(!sync_wait(store->get(other.id)).has_value());
    BOOST_TEST(sync_wait(store->stats()).created_total == 1u);

    // A write with no events has nothing to refuse.
    BOOST_TEST((sync_wait(store->update(next, cur.version, std::vector<event>{})) == update_result::updated));
    // Once the relay trimmed, writes pass again.
    auto all = read_all(*store, 0);
    BOOST_TEST(sync_wait(store->trim_outbox(0, all.front().position)) == 1u);
    cur = *sync_wait(store->get(s.id));
    next = cur;
    next.status = session_status::active;
    BOOST_TEST((sync_wait(store->update(next, cur.version, {event_of(event_type::status_changed, s.id, now)})) ==
                update_result::updated));
    BOOST_TEST(depth(*store) == 2u);
}

BOOST_AUTO_TEST_CASE(claim_warnings_appends_a_timeout_warning_per_claimed_record) {
    auto store = outbox_store_of({}, 4);
    const auto now = ms_now();
    auto idle = record_of("warn-idle-" + generate_id().substr(0, 6), now);
    auto capped = record_of("warn-life-" + generate_id().substr(0, 6), now);
    capped.absolute_deadline = now + 40s;
    capped.idle_deadline = now + 40s;  // capped by its lifetime
    auto later = record_of("warn-later-" + generate_id().substr(0, 6), now);
    later.idle_deadline = now + 10min;
    for (auto* s : {&idle, &capped, &later}) BOOST_TEST_REQUIRE(sync_wait(store->create(*s)).created);
    BOOST_TEST(depth(*store) == 0u);

    const auto sweep_at = now + 30s;
    auto warned = sync_wait(store->claim_warnings(sweep_at, sweep_at + 35s, 10));
    BOOST_TEST_REQUIRE(warned.size() == 2u);
    std::map<std::string, event> got;
    for (unsigned p = 0; p < 4; ++p)
        for (auto& e : read_all(*store, p)) got.emplace(e.ev.session_id, e.ev);
    BOOST_TEST_REQUIRE(got.size() == 2u);
    std::set<std::string> ids;
    for (auto& w : warned) {
        BOOST_TEST_REQUIRE(got.count(w.id) == 1u);
        const event& e = got.at(w.id);
        // Exactly what make_timeout_warning builds, with the id the store chose.
        const event expected = make_timeout_warning(w, sweep_at, e.id);
        BOOST_TEST((e.type == event_type::timeout_warning));
        BOOST_TEST(to_unix_ms(e.time) == to_unix_ms(sweep_at));
        BOOST_TEST(boost::json::serialize(to_json(e)) == boost::json::serialize(to_json(expected)));
        BOOST_TEST(e.id.size() == 26u);
        ids.insert(e.id);
    }
    BOOST_TEST(ids.size() == 2u);
    BOOST_TEST(got.at(capped.id).data.at("reason").as_string() == "lifetime");
    BOOST_TEST(got.at(idle.id).data.at("reason").as_string() == "idle");
    BOOST_TEST(got.at(idle.id).data.at("remaining_ms").as_int64() == 30'000);

    // Warned once: a second sweep claims and appends nothing.
    BOOST_TEST(sync_wait(store->claim_warnings(sweep_at + 1s, sweep_at + 36s, 10)).empty());
    BOOST_TEST(depth(*store) == 2u);

    // Without the outbox the claim appends nothing.
    redis_store_options plain;
    plain.prefix = test::fresh_prefix("obx");
    redis_store off(shared_connection(), plain);
    auto quiet = record_of("warn-off-" + generate_id().substr(0, 6), now);
    BOOST_TEST_REQUIRE(sync_wait(off.create(quiet)).created);
    BOOST_TEST(sync_wait(off.claim_warnings(sweep_at, sweep_at + 35s, 10)).size() == 1u);
    for (unsigned p = 0; p < plain.partitions; ++p)
        BOOST_TEST(sync_wait(shared_connection()->exec_one("EXISTS", off.outbox_key(p))).as_integer() == 0);
}

BOOST_AUTO_TEST_CASE(warnings_that_find_a_refusing_outbox_full_are_dropped_and_counted_not_refused) {
    auto store = outbox_store_of({.max_events = 1, .overflow = outbox_overflow::refuse_writes}, 1);
    const auto now = ms_now();
    auto a = record_of("wfull-a-" + generate_id().substr(0, 6), now);
    auto b = record_of("wfull-b-" + generate_id().substr(0, 6), now);
    BOOST_TEST_REQUIRE(sync_wait(store->create(a, {event_of(event_type::created, a.id, now)})).created);
    BOOST_TEST_REQUIRE(sync_wait(store->create(b)).created);
    auto warned = sync_wait(store->claim_warnings(now + 30s, now + 65s, 10));
    BOOST_TEST(warned.size() == 2u);  // the sweep itself is never refused
    auto st = sync_wait(store->outbox_stats());
    BOOST_TEST(st.depth == 1u);
    BOOST_TEST(st.dropped == 2u);
    auto dropped = sync_wait(store->take_dropped(10));
    BOOST_TEST_REQUIRE(dropped.size() == 2u);
    for (auto& d : dropped) BOOST_TEST(d.type == "timeout_warning");
}

BOOST_AUTO_TEST_CASE(extend_lock_keeps_the_holders_lock_and_nobody_elses) {
    auto store = outbox_store_of({}, 1);
    const auto now = ms_now();
    const std::string name = "relay-" + generate_id().substr(0, 8);
    auto token = sync_wait(store->try_lock(name, 1s, now));
    BOOST_TEST_REQUIRE(token.has_value());

    BOOST_TEST(sync_wait(store->extend_lock(name, *token, 5s, now + 500ms)));
    // The extension holds on the callers' clock: another cannot take it
    // after the first second (the expiry stored in the lock moved too).
    BOOST_TEST(!sync_wait(store->try_lock(name, 1s, now + 3s)).has_value());
    auto conn = shared_connection();
    const std::string key = store->options().prefix + "lock:" + name;
    BOOST_TEST(sync_wait(conn->exec_one("PTTL", key)).as_integer() > 3000);

    BOOST_TEST(!sync_wait(store->extend_lock(name, "someone-else", 5s, now + 600ms)));
    // Expired on the callers' clock: the holder cannot extend it any more.
    BOOST_TEST(!sync_wait(store->extend_lock(name, *token, 5s, now + 5500ms + 1ms)));
    auto theirs = sync_wait(store->try_lock(name, 1s, now + 6s));
    BOOST_TEST_REQUIRE(theirs.has_value());
    BOOST_TEST(!sync_wait(store->extend_lock(name, *token, 5s, now + 6100ms)));
    BOOST_TEST(sync_wait(store->extend_lock(name, *theirs, 5s, now + 6100ms)));
    // Released, or never taken: false.
    BOOST_TEST(sync_wait(store->unlock(name, *theirs)));
    BOOST_TEST(!sync_wait(store->extend_lock(name, *theirs, 5s, now + 6200ms)));
    BOOST_TEST(!sync_wait(store->extend_lock("never-" + name, *theirs, 5s, now)));
}

BOOST_AUTO_TEST_CASE(an_entry_that_is_not_an_event_is_reported_removed_and_blocks_nothing) {
    std::vector<std::string> reports;
    redis_store_options o;
    o.prefix = test::fresh_prefix("obx");
    o.partitions = 1;
    o.outbox = outbox_options{};
    o.on_corrupt = [&](const std::string& key, const std::string& what) { reports.push_back(key + " " + what); };
    redis_store store(shared_connection(), o);
    auto conn = shared_connection();
    const auto now = ms_now();
    sync_wait(conn->exec_one("XADD", store.outbox_key(0), "*", "event", "{not json"));
    sync_wait(conn->exec_one("XADD", store.outbox_key(0), "*", "other", "x"));
    auto s = record_of("after-junk-" + generate_id().substr(0, 6), now);
    auto e = event_of(event_type::created, s.id, now);
    BOOST_TEST_REQUIRE(sync_wait(store.create(s, {e})).created);
    auto entries = sync_wait(store.read_outbox(0, "", 1));  // the junk does not take the batch's place
    BOOST_TEST_REQUIRE(entries.size() == 1u);
    BOOST_TEST(entries[0].ev.id == e.id);
    BOOST_TEST(reports.size() == 2u);
    BOOST_TEST(store.corrupt_records() == 2u);
    if (!reports.empty()) BOOST_TEST(contains(reports[0], "is not an event"));
    BOOST_TEST(depth(store) == 1u);
}

BOOST_AUTO_TEST_CASE(a_registry_and_an_event_relay_deliver_every_event_once_in_order) {
    auto store = outbox_store_of({}, 4);
    recording_confirming_sink sink;
    basic_session_registry<redis_store, system_clock_policy, recording_confirming_sink> registry(*store, {}, {}, sink);
    event_relay_options ro;
    ro.lock_prefix = "relay-" + generate_id().substr(0, 8) + ":";
    ro.poll_interval = 20ms;
    ro.batch_size = 7;  // several batches per partition
    event_relay<redis_store, recording_confirming_sink> relay(*store, sink, ro);
    test::background_io relay_io(1);
    auto running = boost::asio::co_spawn(relay_io.executor(), relay.run(), boost::asio::use_future);

    constexpr int sessions = 20;
    std::vector<std::string> ids;
    for (int i = 0; i < sessions; ++i) {
        auto made = sync_wait(registry.acquire("relayed-" + std::to_string(i) + "-" + generate_id().substr(0, 6)));
        BOOST_TEST_REQUIRE(made.created);
        ids.push_back(made.record.id);
    }
    for (auto& id : ids) sync_wait(registry.set_status(id, session_status::idle));
    for (auto& id : ids) BOOST_TEST_REQUIRE(sync_wait(registry.terminate(id)).has_value());

    const std::size_t expected = 3 * sessions;
    const bool all = testing::eventually([&] { return sink.published().size() >= expected; }, 10s);
    relay.stop();
    running.get();
    BOOST_TEST_REQUIRE(all);
    BOOST_TEST(sink.emitted() == 0u);  // with the outbox, nothing goes around it

    auto published = sink.published();
    BOOST_TEST(published.size() == expected);  // each once
    std::set<std::string> unique;
    std::map<std::string, std::vector<event_type>> per_session;
    for (auto& e : published) {
        unique.insert(e.id);
        per_session[e.session_id].push_back(e.type);
    }
    BOOST_TEST(unique.size() == expected);
    for (auto& id : ids)
        BOOST_TEST((per_session[id] ==
                    std::vector<event_type>{event_type::created, event_type::status_changed, event_type::terminated}),
                   id);
    // Confirmed, so trimmed.
    BOOST_TEST(testing::eventually([&] { return depth(*store) == 0u; }, 5s));
    BOOST_TEST(relay.stats().published == expected);
}

BOOST_AUTO_TEST_SUITE_END()

int main(int argc, char** argv) {
    if (!std::getenv("REDIS_URL")) {
        if (std::getenv("CI")) {
            std::cerr << "FAIL: REDIS_URL not set (redis-server was not started)\n";
            return 1;
        }
        std::cerr << "SKIP: REDIS_URL not set (redis-server not installed?)\n";
        return 77;
    }
    return boost::unit_test::unit_test_main([] { return true; }, argc, argv);
}

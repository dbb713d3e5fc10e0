// write_through's logic over memory_store and a memory_cache told to fail:
// when the cache is bypassed and when it comes back (cold for what was
// written meanwhile), the on_cache_down policies, no resurrection from a
// stale copy, coalesced touches, a janitor's claim of a fresh session undone,
// and the state machine behind it. (The conformance suite runs on it in
// memory_store_test.cpp; the real faults in test/integration/write_through_test.cpp.)
#include "support/owned_write_through.hpp"
#include <sessionkit/store/memory.hpp>
#include <sessionkit/store/memory_cache.hpp>
#include <sessionkit/testing/store_fixtures.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <thread>

namespace {

using namespace sessionkit;
using namespace sessionkit::testing::conformance;
namespace wt = sessionkit::detail::write_through;

struct fixture {
    memory_store primary;
    memory_cache cache;
    std::vector<std::string> log;
    std::vector<std::string> switches;  ///< "<part> down <policy>: <reason>" / "<part> up"
    write_through<memory_store, memory_cache> store;

    explicit fixture(write_through_options o = options()) : store(primary, cache, with_log(std::move(o))) {}

    static write_through_options options() {
        write_through_options o;
        o.retry = 10ms;
        o.touch_coalesce = 1h;
        return o;
    }
    write_through_options with_log(write_through_options o) {
        o.log = [this](const std::string& line) { log.push_back(line); };
        o.on_switch = [this](const store_switch& s) {
            switches.push_back(s.part + (s.up ? " up" : " down " + s.policy + ": " + s.reason));
        };
        return o;
    }
    void wait_retry() { std::this_thread::sleep_for(20ms); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(write_through_logic)

BOOST_AUTO_TEST_CASE(reads_fill_the_cache_and_are_then_answered_by_it) {
    fixture f;
    create_ok(f.primary, make_record("r1"));  // written around the cache
    BOOST_TEST(sync_wait(f.store.get("r1")).has_value());
    BOOST_TEST(f.cache.size() == 1u);
    BOOST_TEST(sync_wait(f.store.get("r1")).has_value());
    const auto st = f.store.cache_stats();
    BOOST_TEST(st.misses == 1u);
    BOOST_TEST(st.hits == 1u);
}

BOOST_AUTO_TEST_CASE(a_late_fill_never_overwrites_a_newer_copy) {
    memory_cache cache;
    auto v1 = make_record("f1");
    v1.version = 1;
    auto v2 = v1;
    v2.version = 2;
    v2.attributes["new"] = true;
    BOOST_TEST(sync_wait(cache.put(v2)));
    BOOST_TEST(!sync_wait(cache.put(v1)));
    BOOST_TEST(sync_wait(cache.load("f1"))->record.attributes.contains("new"));
}

BOOST_AUTO_TEST_CASE(a_failing_cache_is_bypassed_and_comes_back_cold_for_what_was_written_meanwhile) {
    fixture f;
    auto s = create_ok(f.store, make_record("c1"));
    BOOST_TEST(sync_wait(f.store.get("c1"))->version == s.version);  // cached
    f.cache.fail_with(error::backend_unavailable);
    // Every operation still works, on the primary alone.
    auto changed = s;
    changed.attributes["during"] = "outage";
    BOOST_TEST((sync_wait(f.store.update(changed, s.version)) == update_result::updated));
    BOOST_TEST(sync_wait(f.store.get("c1"))->attributes.contains("during"));
    BOOST_TEST(!f.store.cache_stats().cache_in_use);
    BOOST_TEST(f.store.cache_stats().cache_switched_off == 1u);
    // The cache answers again: at the next probe it is used again, and the
    // copy of c1 (from before the outage) was forgotten, not served.
    f.cache.fail_with(std::nullopt);
    f.wait_retry();
    const auto back = sync_wait(f.store.get("c1"));
    BOOST_TEST(back->attributes.contains("during"));
    BOOST_TEST(back->version == s.version + 1);
    BOOST_TEST(f.store.cache_stats().cache_in_use);
    BOOST_TEST(f.store.cache_stats().cache_restored == 1u);
    BOOST_TEST(f.log.size() >= 2u);
    // Each switch told once, as data, with what failed.
    BOOST_REQUIRE(f.switches.size() == 2u);
    BOOST_TEST(f.switches[0].rfind("cache down bypass: ", 0) == 0u);
    BOOST_TEST(f.switches[0].find("memory_cache") != std::string::npos, f.switches[0]);
    BOOST_TEST(f.switches[1] == "cache up");
}

BOOST_AUTO_TEST_CASE(a_session_erased_while_the_cache_was_down_is_not_served_from_it_afterwards) {
    fixture f;
    create_ok(f.store, make_record("gone"));
    BOOST_TEST(sync_wait(f.store.get("gone")).has_value());  // cached
    f.cache.fail_with(error::timeout);
    BOOST_TEST(sync_wait(f.store.erase("gone")));
    f.cache.fail_with(std::nullopt);
    f.wait_retry();
    BOOST_TEST(!sync_wait(f.store.get("gone")).has_value());
}

BOOST_AUTO_TEST_CASE(under_on_cache_down_fail_a_cache_failure_fails_the_operation_naming_the_cache) {
    auto o = fixture::options();
    o.cache_down = on_cache_down::fail;
    fixture f(o);
    create_ok(f.store, make_record("strict"));
    f.cache.fail_with(error::backend_unavailable);
    try {
        sync_wait(f.store.get("strict"));
        BOOST_FAIL("a failing cache was not reported");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST((e.code() == error::backend_unavailable));
        BOOST_TEST(std::string(e.what()).find("write_through: the cache failed: memory_cache load 'strict'") !=
                   std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(touches_stay_in_the_cache_within_the_window_and_reach_the_primary_after_it) {
    auto o = fixture::options();
    o.touch_coalesce = 10s;
    fixture f(o);
    create_ok(f.store, make_record("t", "alice", 60s));
    for (int i = 1; i <= 9; ++i) sync_wait(f.store.touch("t", t0 + std::chrono::seconds(i)));
    BOOST_TEST(f.store.cache_stats().cached_touches == 9u);
    BOOST_TEST(to_unix_ms(f.primary.get_now("t")->last_active) == to_unix_ms(t0));
    BOOST_TEST(to_unix_ms(sync_wait(f.store.get("t"))->idle_deadline) == to_unix_ms(t0 + 69s));
    auto through = sync_wait(f.store.touch("t", t0 + 10s));
    BOOST_TEST(f.store.cache_stats().primary_touches == 1u);
    BOOST_TEST(to_unix_ms(f.primary.get_now("t")->last_active) == to_unix_ms(t0 + 10s));
    // The copy moved to the primary's new version: a CAS from it lands.
    auto rec = *sync_wait(f.store.get("t"));
    BOOST_TEST(rec.version == through->version);
    rec.status = session_status::idle;
    BOOST_TEST((sync_wait(f.store.update(rec, rec.version)) == update_result::updated));
}

BOOST_AUTO_TEST_CASE(an_update_never_moves_the_cached_deadline_back) {
    fixture f;
    auto s = create_ok(f.store, make_record("m", "alice", 60s));
    sync_wait(f.store.touch("m", t0 + 30s));  // cache only
    auto stale = s;                           // read before the touch
    stale.attributes["x"] = 1;
    BOOST_TEST((sync_wait(f.store.update(stale, s.version)) == update_result::updated));
    BOOST_TEST(to_unix_ms(sync_wait(f.store.get("m"))->idle_deadline) == to_unix_ms(t0 + 90s));
}

BOOST_AUTO_TEST_CASE(a_janitor_claim_of_a_session_the_cache_knows_fresh_is_undone) {
    fixture f;
    create_ok(f.store, make_record("fresh", "alice", 60s));
    create_ok(f.store, make_record("stale", "alice", 60s));
    sync_wait(f.store.touch("fresh", t0 + 50s));  // the cache alone knows
    auto claimed = sync_wait(f.store.claim_expired(t0 + 61s, 10, 30s));
    BOOST_REQUIRE_EQUAL(claimed.size(), 1u);
    BOOST_TEST(claimed[0].id == "stale");
    BOOST_TEST(f.store.cache_stats().claims_undone == 1u);
    const auto p = f.primary.get_now("fresh");
    BOOST_TEST(to_string(p->status) == "active");
    BOOST_TEST(to_unix_ms(p->idle_deadline) == to_unix_ms(t0 + 110s));
    // It is claimed once it really is due (with "stale" again: its lease ran out).
    auto later = sync_wait(f.store.claim_expired(t0 + 111s, 10, 30s));
    BOOST_TEST(later.size() == 2u);
    BOOST_TEST(std::count_if(later.begin(), later.end(), [](const session& s) { return s.id == "fresh"; }) == 1);
}

BOOST_AUTO_TEST_CASE(a_touch_that_rearms_a_warning_or_reaches_the_lifetime_goes_to_the_primary) {
    fixture f;
    create_ok(f.store, make_record("w", "alice", 60s));
    BOOST_REQUIRE_EQUAL(sync_wait(f.store.claim_warnings(t0 + 10s, t0 + 70s, 10)).size(), 1u);
    sync_wait(f.store.touch("w", t0 + 20s));
    BOOST_TEST(!f.primary.get_now("w")->warning_sent);
    create_ok(f.store, make_record("l", "alice", 60s, 100s));
    sync_wait(f.store.touch("l", t0 + 70s));
    BOOST_TEST(f.primary.get_now("l")->lifetime_bound());
    BOOST_TEST(f.store.cache_stats().primary_touches == 2u);
}

BOOST_AUTO_TEST_CASE(the_cache_state_machine_probes_after_retry_and_waits_for_the_forgetting) {
    const auto now = std::chrono::steady_clock::now();
    wt::cache_health h(100ms, 2);
    BOOST_TEST(h.usable());
    BOOST_TEST(h.failed(now));
    BOOST_TEST(!h.failed(now));  // already off
    h.written("a");
    BOOST_TEST(!h.take_probe(now + 50ms));
    BOOST_TEST(h.take_probe(now + 100ms));
    BOOST_TEST(!h.take_probe(now + 100ms));  // one prober
    h.written("b");                          // during the probe
    auto d = h.take_dirty();
    BOOST_TEST(d.ids.size() == 2u);
    BOOST_TEST(!d.clear);
    h.written("c");
    BOOST_TEST(!h.probe_succeeded());  // c must be forgotten first
    BOOST_TEST(h.take_dirty().ids.size() == 1u);
    BOOST_TEST(h.probe_succeeded());
    BOOST_TEST(h.usable());
    // More than dirty_limit written: the whole cache is cleared on return.
    h.failed(now);
    for (auto id : {"x", "y", "z"}) h.written(id);
    BOOST_TEST(h.take_dirty().clear);
    h.probe_failed(now);
    BOOST_TEST((h.state() == wt::cache_state::bypassing));
}

BOOST_AUTO_TEST_CASE(which_touches_reach_the_primary_and_which_claims_are_undone) {
    cached_touch was;
    was.status = session_status::active;
    was.version = 3;
    was.idle_timeout = 60s;
    was.last_active = was.primary_last_active = t0;
    was.idle_deadline = t0 + 60s;
    auto after = [&](time_point now) {
        session s = was.as_record();
        slide_record(s, now);
        return s;
    };
    // Within the window (a quarter of 60 s): the cache alone; at it: the primary.
    BOOST_TEST(!wt::touch_must_reach_primary(was, after(t0 + 14s), t0 + 14s, std::nullopt));
    BOOST_TEST(wt::touch_must_reach_primary(was, after(t0 + 15s), t0 + 15s, std::nullopt));
    BOOST_TEST(wt::touch_must_reach_primary(was, after(t0 + 1s), t0 + 1s, 0ms));
    auto warned = was;
    warned.warning_sent = true;  // re-arming a warning is the primary's business
    BOOST_TEST(wt::touch_must_reach_primary(warned, after(t0 + 1s), t0 + 1s, std::nullopt));
    auto bounded = was;
    bounded.absolute_deadline = t0 + 70s;  // this touch makes the lifetime the deadline
    session capped = bounded.as_record();
    slide_record(capped, t0 + 20s);
    BOOST_TEST(wt::touch_must_reach_primary(bounded, capped, t0 + 12s, std::nullopt));
    auto stopping = was;
    stopping.status = session_status::stopping;
    BOOST_TEST(!wt::touch_must_reach_primary(stopping, after(t0 + 30s), t0 + 30s, 0ms));

    session copy = was.as_record();
    copy.idle_deadline = t0 + 90s;
    session claimed = copy;
    claimed.status = session_status::stopping;
    claimed.version = 4;
    BOOST_TEST(wt::claim_must_be_undone(copy, claimed, t0 + 61s));
    BOOST_TEST(!wt::claim_must_be_undone(copy, claimed, t0 + 90s));  // really due
    claimed.version = 5;                                             // written meanwhile by someone else
    BOOST_TEST(!wt::claim_must_be_undone(copy, claimed, t0 + 61s));
}

BOOST_AUTO_TEST_SUITE_END()

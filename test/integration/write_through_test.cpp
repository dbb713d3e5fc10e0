// write_through<postgres_store, redis_cache> against real servers (issue 16):
// the store conformance suite (outbox and output cases included) with
// coalescing off and with the default window, and redis-server killed and
// restarted under load: with `bypass` nothing acknowledged is lost, the
// cache comes back by itself, and a session erased during the outage is
// not served from the cache afterwards.
//
// PostgreSQL is a private cluster (see postgres_store_test.cpp on why the
// outbox cases want one); the cache is the harness's redis-server for the
// suite and a private one for the faults. Needs DATABASE_URL and REDIS_URL.
#define BOOST_TEST_MODULE sessionkit_write_through
#include <boost/test/unit_test.hpp>

#include "integration/postgres_support.hpp"
#include "integration/redis_support.hpp"
#include "support/owned_write_through.hpp"
#include <sessionkit/store/postgres.hpp>
#include <sessionkit/store/redis_cache.hpp>
#include <sessionkit/testing/eventually.hpp>
#include <sessionkit/testing/io_threads.hpp>
#include <sessionkit/testing/run.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace {

using namespace sessionkit;
using namespace std::chrono_literals;
using testing::sync_wait;

test::background_io& shared_io() {
    static test::background_io io(2);
    return io;
}

test::private_postgres& cluster() {
    static test::private_postgres server;
    return server;
}

postgres::connection_options pg_config() {
    auto cfg = test::postgres_test_config(cluster().url());
    cfg.pool_size = 2;
    return cfg;
}

std::unique_ptr<postgres_store> open_primary(std::optional<outbox_options> outbox = std::nullopt) {
    postgres_store_options o;
    o.schema = "w_" + generate_id().substr(0, 12);
    o.stats_max_age = 0ms;
    o.outbox = outbox;
    return sync_wait(postgres_store::open(shared_io().executor(), pg_config(), o));
}

std::shared_ptr<redis::connection> harness_redis() {
    static auto conn = std::make_shared<redis::connection>(shared_io().executor(), test::test_config());
    return conn;
}

std::unique_ptr<redis_cache> fresh_cache(std::shared_ptr<redis::connection> conn = harness_redis()) {
    redis_cache_options o;
    o.prefix = test::fresh_prefix("wtc");
    return std::make_unique<redis_cache>(std::move(conn), o);
}

using pg_redis = test::owned_write_through<postgres_store, redis_cache>;

}  // namespace

template <bool Coalescing>
struct write_through_factory {
    using store_type = pg_redis;
    static constexpr bool coalesces_touches = Coalescing;
    static write_through_options options() {
        write_through_options o;
        if (!Coalescing) o.touch_coalesce = 0ms;  // else the default: a quarter of the idle timeout
        return o;
    }
    std::unique_ptr<pg_redis> make() { return std::make_unique<pg_redis>(open_primary(), fresh_cache(), options()); }
    std::unique_ptr<pg_redis> make_with_outbox(outbox_options outbox) {
        return std::make_unique<pg_redis>(open_primary(outbox), fresh_cache(), options());
    }
};

static_assert(session_store<pg_redis>);
static_assert(output_log<pg_redis>);
static_assert(outbox_store<pg_redis>);

using conformance_factories = std::tuple<write_through_factory<false>, write_through_factory<true>>;
#include <sessionkit/testing/store_conformance.hpp>

BOOST_AUTO_TEST_SUITE(write_through_faults)

using namespace sessionkit::testing::conformance;

BOOST_AUTO_TEST_CASE(redis_killed_under_load_loses_nothing_and_comes_back) {
    test::private_redis redis;
    auto conn = std::make_shared<redis::connection>(shared_io().executor(), test::test_config(redis.url()));
    auto primary = open_primary();
    auto cache = fresh_cache(conn);
    std::vector<std::string> log;
    std::mutex log_mutex;
    write_through_options o;
    o.retry = 200ms;
    o.log = [&](const std::string& line) {
        std::lock_guard lock(log_mutex);
        log.push_back(line);
    };
    std::vector<std::string> switches;
    o.on_switch = [&](const store_switch& s) {
        std::lock_guard lock(log_mutex);
        switches.push_back(s.part + (s.up ? " up" : " down " + s.policy));
    };
    write_through<postgres_store, redis_cache> store(*primary, *cache, o);

    // 16 writers create sessions and update them while Redis is killed and
    // restarted; every acknowledged write is recorded.
    std::atomic<bool> stop{false};
    std::mutex acked_mutex;
    std::map<std::string, std::uint64_t> acked;  // id -> version acknowledged last
    std::atomic<int> failed{0};
    auto writer = [&](int w) -> awaitable<void> {
        for (int i = 0; !stop.load(); ++i) {
            const std::string id = "w" + std::to_string(w) + "-" + std::to_string(i);
            try {
                auto made = co_await store.create(make_record(id, "load", 60s, std::nullopt, t0));
                auto rec = made.record;
                rec.attributes["step"] = 1;
                const auto r = co_await store.update(rec, rec.version);
                std::lock_guard lock(acked_mutex);
                acked[id] = r == update_result::updated ? rec.version + 1 : rec.version;
            } catch (const std::exception&) {
                ++failed;
            }
        }
    };
    std::vector<std::future<void>> running;
    for (int w = 0; w < 16; ++w)
        running.push_back(boost::asio::co_spawn(shared_io().executor(), writer(w), boost::asio::use_future));
    std::this_thread::sleep_for(500ms);
    // A session read (so cached) and then erased while Redis is down.
    create_ok(store, make_record("erased-in-outage"));
    BOOST_REQUIRE(sync_wait(store.get("erased-in-outage")).has_value());
    redis.stop();  // SIGKILL
    BOOST_TEST(testing::eventually([&] { return !store.cache_stats().cache_in_use; }, 5s));
    BOOST_TEST(sync_wait(store.erase("erased-in-outage")));
    std::this_thread::sleep_for(700ms);  // writes go on against the primary alone
    redis.start();                       // same port, empty (no persistence)
    BOOST_TEST(testing::eventually([&] { return store.cache_stats().cache_in_use; }, 10s));
    std::this_thread::sleep_for(300ms);
    stop = true;
    for (auto& r : running) r.get();

    const auto st = store.cache_stats();
    BOOST_TEST_MESSAGE(acked.size() << " sessions acknowledged, " << failed.load() << " operations failed; cache off "
                                    << st.cache_switched_off << " time(s), restored " << st.cache_restored);
    // With bypass, a write fails only if it was in flight on the cache at the kill.
    BOOST_TEST(failed.load() <= 16);
    BOOST_TEST(st.cache_restored >= 1u);
    // Nothing acknowledged is lost: every session reads back (through the
    // cache again) at least at the version acknowledged.
    for (const auto& [id, version] : acked) {
        auto got = sync_wait(store.get(id));
        BOOST_TEST_REQUIRE(got.has_value(), id);
        BOOST_TEST(got->version >= version, id);
        auto in_primary = sync_wait(primary->get(id));
        BOOST_TEST(in_primary->version == got->version, id);
    }
    BOOST_TEST(!sync_wait(store.get("erased-in-outage")).has_value());
    BOOST_TEST(store.cache_stats().hits > st.hits);  // the cache is used again
    // Every switch was told (what sessiond makes events of): down, then up.
    std::lock_guard lock(log_mutex);
    BOOST_REQUIRE(switches.size() >= 2u);
    BOOST_TEST(switches.front() == "cache down bypass");
    BOOST_TEST(switches.back() == "cache up");
    BOOST_TEST(switches.size() == 2 * st.cache_restored);
}

BOOST_AUTO_TEST_CASE(postgres_down_fails_writes_fast_and_serves_stale_reads_marked) {
    test::private_postgres server;
    auto cfg = test::postgres_test_config(server.url());
    cfg.pool_size = 2;
    cfg.request_timeout = 1500ms;
    // The private cluster runs with synchronous_commit = off, under which an
    // immediate stop loses the last commits by design: this test checks
    // that acknowledged writes survive, so commits must wait for the WAL.
    for (const char* sql : {"ALTER SYSTEM SET synchronous_commit = on", "SELECT pg_reload_conf()"})
        sync_wait(postgres::execute_script(shared_io().executor(), cfg, "configure", sql));
    postgres_store_options po;
    po.schema = "w_down";
    auto primary = sync_wait(postgres_store::open(shared_io().executor(), cfg, po));
    auto cache = fresh_cache();
    write_through_options o;
    o.primary_down = on_primary_down::stale;
    o.retry = 100ms;
    std::mutex switches_mutex;
    std::vector<std::string> switches;
    o.on_switch = [&](const store_switch& s) {
        std::lock_guard lock(switches_mutex);
        switches.push_back(s.part + (s.up ? " up" : " down " + s.policy));
    };
    write_through<postgres_store, redis_cache> store(*primary, *cache, o);
    std::vector<session> made;
    for (int i = 0; i < 10; ++i) {
        made.push_back(create_ok(store, make_record("pd" + std::to_string(i))));
        BOOST_REQUIRE(sync_wait(store.get(made.back().id)).has_value());  // cached
    }
    server.stop();  // pg_ctl stop -m immediate
    // Writes fail, fast, naming PostgreSQL.
    auto changed = made[0];
    changed.attributes["late"] = true;
    for (int attempt = 0; attempt < 3; ++attempt) {
        const auto started = std::chrono::steady_clock::now();
        try {
            sync_wait(store.update(changed, made[0].version));
            BOOST_FAIL("a write succeeded with PostgreSQL down");
        } catch (const boost::system::system_error& e) {
            const auto took = std::chrono::steady_clock::now() - started;
            BOOST_TEST_MESSAGE("write failed in " << std::chrono::duration_cast<milliseconds>(took).count()
                                                  << " ms: " << e.what());
            BOOST_TEST((e.code() == condition::unavailable));
            BOOST_TEST(std::string(e.what()).find("PostgreSQL") != std::string::npos);
            BOOST_TEST((took <= cfg.request_timeout + 500ms));
        }
    }
    BOOST_TEST(store.cache_stats().primary_down);
    // Reads are served from the cache, marked stale.
    for (const auto& s : made) {
        auto got = sync_wait(store.get(s.id));
        BOOST_TEST_REQUIRE(got.has_value());
        BOOST_TEST(got->extra.contains("stale"));
        BOOST_TEST(got->version == s.version);
    }
    BOOST_TEST(store.cache_stats().stale_reads >= 10u);
    server.start();
    // It recovers by itself: the probe (every `retry`) finds it, reads are
    // fresh again and writes land.
    BOOST_TEST(testing::eventually(
        [&] {
            auto got = sync_wait(store.get(made[1].id));
            return got && !got->extra.contains("stale");
        },
        20s));
    BOOST_TEST(testing::eventually(
        [&] {
            try {
                return sync_wait(store.update(changed, made[0].version)) == update_result::updated;
            } catch (const std::exception&) {
                return false;
            }
        },
        20s));
    BOOST_TEST(sync_wait(store.get(made[0].id))->attributes.contains("late"));
    std::lock_guard lock(switches_mutex);
    BOOST_TEST((switches == std::vector<std::string>{"primary down stale", "primary up"}));
}

BOOST_AUTO_TEST_SUITE_END()

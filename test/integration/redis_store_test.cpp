// redis_store against a real redis-server: the conformance suite, the
// connection's pipelining, and the faults of issue 4 (restart, stall,
// garbage, several processes). Needs REDIS_URL (the ctest fixture sets it).
//
// This binary also runs as a child process of its own tests:
//   redis_store_test --child acquire URL PREFIX ID COROUTINES
//   redis_store_test --child janitor URL PREFIX OUT_FILE
//   redis_store_test --child append URL PREFIX ID TAG COUNT
#define BOOST_TEST_MODULE sessionkit_redis
#define BOOST_TEST_NO_MAIN
#include <boost/test/unit_test.hpp>

#include "integration/redis_support.hpp"
#include "support/recording_sink.hpp"
#include <sessionkit/testing/run.hpp>

#include <sessionkit/janitor.hpp>
#include <sessionkit/registry.hpp>
#include <sessionkit/store/memory.hpp>
#include <sessionkit/testing/manual_clock.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <boost/json/parse.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

namespace {

using namespace sessionkit;
using namespace std::chrono_literals;

test::background_io& shared_io() {
    static test::background_io io(2);
    return io;
}

std::shared_ptr<redis::connection> shared_connection() {
    static auto conn = std::make_shared<redis::connection>(shared_io().executor(), test::test_config());
    return conn;
}

/// Conformance stores over the shared connection. One partition too:
/// candidates then come from a single index.
template <unsigned Partitions>
struct redis_store_factory_of {
    using store_type = redis_store;
    std::unique_ptr<redis_store> make() {
        redis_store_options o;
        o.prefix = test::fresh_prefix("conf" + std::to_string(Partitions));
        o.partitions = Partitions;
        return std::make_unique<redis_store>(shared_connection(), o);
    }
    /// The same with the event outbox on (the outbox conformance cases).
    std::unique_ptr<redis_store> make_with_outbox(outbox_options outbox) {
        redis_store_options o;
        o.prefix = test::fresh_prefix("confo" + std::to_string(Partitions));
        o.partitions = Partitions;
        o.outbox = outbox;
        return std::make_unique<redis_store>(shared_connection(), o);
    }
};
using redis_store_factory = redis_store_factory_of<4>;
using redis_store_one_partition_factory = redis_store_factory_of<1>;

}  // namespace

using conformance_factories = std::tuple<redis_store_factory, redis_store_one_partition_factory>;
#include <sessionkit/testing/store_conformance.hpp>

using namespace sessionkit;
using namespace sessionkit::testing::conformance;
using test::redis_url;
using testing::sync_wait;

namespace {

/// Runs `op`, expecting a system_error; returns it.
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

}  // namespace

BOOST_AUTO_TEST_SUITE(redis_connection)

BOOST_AUTO_TEST_CASE(many_coroutines_on_several_threads_share_one_pipelined_connection) {
    auto conn = std::make_shared<redis::connection>(shared_io().executor(), test::test_config());
    const std::string prefix = test::fresh_prefix("pipe");
    boost::asio::io_context ctx;
    std::atomic<int> right{0};
    for (int i = 0; i < 1000; ++i)
        boost::asio::co_spawn(
            ctx,
            [&, i]() -> awaitable<void> {
                const std::string key = prefix + std::to_string(i);
                redis::request req;
                req.push("SET", key, std::to_string(i * 7), "PX", "60000").push("GET", key);
                auto replies = co_await conn->exec(std::move(req));
                if (replies.size() == 2 && replies[1].as_string() == std::to_string(i * 7)) ++right;
            },
            boost::asio::detached);
    testing::run_threads(ctx, 4);
    BOOST_TEST(right.load() == 1000);
    auto st = conn->stats();
    BOOST_TEST(st.requests >= 1000u);
    // Pipelining: requests that waited together went out in one write.
    BOOST_TEST(st.writes < st.requests);
    BOOST_TEST_MESSAGE("1000 requests in " << st.writes << " writes");
}

// The fast set-up: the connection on its callers' io_context. Replies then
// resume callers inline (dispatch), on whichever of the threads reads them.
BOOST_AUTO_TEST_CASE(callers_on_the_connections_own_io_context_on_two_threads_get_their_own_replies) {
    boost::asio::io_context ctx;
    auto conn = std::make_shared<redis::connection>(ctx.get_executor(), test::test_config());
    const std::string prefix = test::fresh_prefix("own");
    constexpr int coroutines = 300, each = 20;
    std::atomic<int> right{0}, left{coroutines};
    for (int c = 0; c < coroutines; ++c)
        boost::asio::co_spawn(
            ctx,
            [&, c]() -> awaitable<void> {
                const std::string key = prefix + std::to_string(c);
                for (int i = 1; i <= each; ++i) {
                    auto v = co_await conn->exec_one("INCRBY", key, std::int64_t{c});
                    if (v.as_integer() == std::int64_t{c} * i) ++right;
                }
                co_await conn->exec_one("DEL", key);
                // The connection's loops keep ctx busy until it is closed.
                if (--left == 0) conn->close();
            },
            boost::asio::detached);
    testing::run_threads(ctx, 2);
    BOOST_TEST(right.load() == coroutines * each);
    auto st = conn->stats();
    BOOST_TEST(st.writes < st.requests);
    BOOST_TEST_MESSAGE(st.requests << " requests in " << st.writes << " writes");
}

// A caller resumed inline that closes the connection while later replies of
// the same read wait to be matched: they fail as "connection closed", none
// hangs, nothing crashes.
BOOST_AUTO_TEST_CASE(a_caller_closing_the_connection_as_its_reply_comes_fails_the_rest_cleanly) {
    boost::asio::io_context ctx;
    auto conn = std::make_shared<redis::connection>(ctx.get_executor(), test::test_config());
    constexpr int coroutines = 50;
    std::atomic<int> replied{0}, closed{0}, other{0};
    bool first = true;
    for (int c = 0; c < coroutines; ++c)
        boost::asio::co_spawn(
            ctx,
            [&]() -> awaitable<void> {
                try {
                    co_await conn->exec_one("PING");
                    ++replied;
                    if (std::exchange(first, false)) conn->close();
                } catch (const boost::system::system_error& e) {
                    (contains(e.what(), "connection closed") ? closed : other)++;
                }
            },
            boost::asio::detached);
    ctx.run();  // returns: the closed connection leaves no work behind
    BOOST_TEST(replied.load() + closed.load() == coroutines);
    BOOST_TEST(other.load() == 0);
    BOOST_TEST(replied.load() >= 1);
    BOOST_TEST_MESSAGE(replied.load() << " replied, " << closed.load() << " failed as closed");
}

BOOST_AUTO_TEST_CASE(error_replies_are_values_and_binary_data_round_trips) {
    auto conn = shared_connection();
    const std::string key = test::fresh_prefix("bin") + "k";
    const std::string data("a\r\nb\0c$*-1\r\n", 13);
    sync_wait(conn->exec_one("SET", key, data, "PX", "60000"));
    BOOST_TEST(sync_wait(conn->exec_one("GET", key)).as_string() == data);
    auto err = sync_wait(conn->exec_one("NO_SUCH_COMMAND"));
    BOOST_TEST(err.is_error());
    BOOST_TEST(contains(err.text, "unknown command"));
    BOOST_CHECK_NO_THROW(sync_wait(conn->ping()));
}

BOOST_AUTO_TEST_CASE(an_unreachable_server_fails_fast_with_an_error_naming_it) {
    auto cfg = test::test_config("redis://127.0.0.1:" + std::to_string(test::free_port()) + "/0");
    auto conn = std::make_shared<redis::connection>(shared_io().executor(), cfg);
    const auto started = std::chrono::steady_clock::now();
    auto e = expect_failure(conn->exec_one("PING"));
    const auto took = std::chrono::steady_clock::now() - started;
    BOOST_TEST_MESSAGE(e.what());
    BOOST_TEST((e.code() == error::backend_unavailable || e.code() == error::timeout));
    BOOST_TEST(contains(e.what(), "redis redis://127.0.0.1:"));
    BOOST_TEST(contains(e.what(), "PING"));
    BOOST_TEST(took < cfg.request_timeout + 500ms);
}

BOOST_AUTO_TEST_CASE(a_wrong_database_number_is_named) {
    auto url = redis_url();
    auto cfg = test::test_config(url.substr(0, url.rfind('/')) + "/99999");
    auto conn = std::make_shared<redis::connection>(shared_io().executor(), cfg);
    auto e = expect_failure(conn->exec_one("PING"));
    BOOST_TEST_MESSAGE(e.what());
    BOOST_TEST(contains(e.what(), "SELECT 99999"));
}

BOOST_AUTO_TEST_SUITE_END()

// rediss://, unix:// and passwords against a private redis-server that
// offers them (a throwaway CA, test::test_ca). Each test starts its own:
// a server shared through a function-local static once deadlocked the
// ASan run, when the first test left the static's init guard held.
namespace {

struct secure_server_fixture {
    test::private_redis server{{.tls = true, .unix_socket = true, .password = "s3cret pass"}};

    std::string tls_url(const std::string& host, const std::string& query) const {
        return "rediss://:s3cret%20pass@" + host + ":" + std::to_string(server.tls_port()) + "/0" + query;
    }
};

/// A store round trip over `url`: create, then read back.
void store_round_trip(const std::string& url) {
    auto conn = std::make_shared<redis::connection>(shared_io().executor(), test::test_config(url));
    redis_store_options o;
    o.prefix = test::fresh_prefix("tls");
    redis_store store(conn, o);
    const auto now = from_unix_ms(to_unix_ms(std::chrono::system_clock::now()));
    session s;
    s.id = "over-" + generate_id().substr(0, 8);
    s.owner = "alice";
    s.created_at = s.last_active = now;
    s.idle_timeout = 60s;
    s.idle_deadline = now + 60s;
    BOOST_TEST(sync_wait(store.create(s)).created);
    auto back = sync_wait(store.get(s.id));
    BOOST_TEST_REQUIRE(back.has_value());
    BOOST_TEST(back->owner == "alice");
    BOOST_TEST(conn->stats().connects == 1u);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(redis_transports, secure_server_fixture)

BOOST_AUTO_TEST_CASE(tls_verified_against_the_servers_ca_by_name_and_by_address) {
    const std::string ca = "?ca=" + server.ca_file().string();
    store_round_trip(tls_url("localhost", ca));
    store_round_trip(tls_url("127.0.0.1", ca));
}

BOOST_AUTO_TEST_CASE(tls_refuses_a_certificate_it_cannot_verify_and_says_so) {
    // The system's CAs do not know the throwaway one.
    auto conn =
        std::make_shared<redis::connection>(shared_io().executor(), test::test_config(tls_url("localhost", "")));
    auto e = expect_failure(conn->ping());
    BOOST_TEST_MESSAGE(e.what());
    BOOST_TEST((e.code() == error::backend_unavailable));
    BOOST_TEST(contains(e.what(), "redis rediss://"));
    BOOST_TEST(contains(e.what(), "certificate verify failed"));
    BOOST_TEST(!contains(e.what(), "s3cret"));  // the password never shows
}

BOOST_AUTO_TEST_CASE(tls_refuses_a_certificate_for_another_name) {
    const std::string query = "?ca=" + server.ca_file().string() + "&sni=redis.example.org";
    auto conn =
        std::make_shared<redis::connection>(shared_io().executor(), test::test_config(tls_url("127.0.0.1", query)));
    auto e = expect_failure(conn->ping());
    BOOST_TEST_MESSAGE(e.what());
    BOOST_TEST(contains(e.what(), "certificate verify failed"));
}

BOOST_AUTO_TEST_CASE(tls_without_verification_when_asked) { store_round_trip(tls_url("localhost", "?insecure=true")); }

BOOST_AUTO_TEST_CASE(plain_redis_against_the_tls_port_fails_within_its_timeout) {
    auto cfg = test::test_config("redis://127.0.0.1:" + std::to_string(server.tls_port()) + "/0");
    auto conn = std::make_shared<redis::connection>(shared_io().executor(), cfg);
    const auto started = std::chrono::steady_clock::now();
    auto e = expect_failure(conn->ping());
    BOOST_TEST_MESSAGE(e.what());
    BOOST_TEST(contains(e.what(), "redis redis://127.0.0.1:"));
    const auto took = std::chrono::steady_clock::now() - started;
    BOOST_TEST((took < cfg.connect_timeout + cfg.request_timeout + 500ms));
}

BOOST_AUTO_TEST_CASE(a_unix_socket_with_a_password) {
    store_round_trip("unix://:s3cret%20pass@" + server.socket_path().string());
}

BOOST_AUTO_TEST_CASE(a_wrong_password_is_named_and_a_missing_one_is_noauth) {
    const std::string base = "127.0.0.1:" + std::to_string(server.port()) + "/0";
    auto wrong =
        std::make_shared<redis::connection>(shared_io().executor(), test::test_config("redis://:nope@" + base));
    auto e = expect_failure(wrong->ping());
    BOOST_TEST_MESSAGE(e.what());
    BOOST_TEST(contains(e.what(), "authentication failed"));
    BOOST_TEST(!contains(e.what(), "nope"));
    auto none = std::make_shared<redis::connection>(shared_io().executor(), test::test_config("redis://" + base));
    auto n = expect_failure(none->ping());
    BOOST_TEST_MESSAGE(n.what());
    BOOST_TEST(contains(n.what(), "NOAUTH"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_store_faults)

BOOST_AUTO_TEST_CASE(keys_carry_hash_tags_and_safety_ttls) {
    redis_store_options o;
    o.prefix = test::fresh_prefix("layout");
    o.ttl_margin = 1h;
    redis_store store(shared_connection(), o);
    auto rec =
        make_record("layout-1", "alice", 60s, std::nullopt, from_unix_ms(to_unix_ms(std::chrono::system_clock::now())));
    BOOST_REQUIRE(sync_wait(store.create(rec)).created);
    const std::string key = store.key_of("layout-1");
    BOOST_TEST(contains(key, "{"));
    auto conn = shared_connection();
    // Every key the session made has a TTL past its deadline, none is forever.
    for (std::string k :
         {key, store.partition_base("layout-1") + "live", store.partition_base("layout-1") + "ids",
          store.partition_base("layout-1") + "owner:alice", store.partition_base("layout-1") + "status:active",
          store.partition_base("layout-1") + "warn", store.partition_base("layout-1") + "stats"}) {
        auto ttl = sync_wait(conn->exec_one("PTTL", k)).as_integer();
        BOOST_TEST_CONTEXT(k) { BOOST_TEST((ttl > 3'600'000 && ttl <= 3'660'000)); }
    }
    // Erase leaves nothing behind in the indexes.
    BOOST_REQUIRE(sync_wait(store.erase("layout-1")));
    for (std::string idx : {"live", "ids", "owner:alice", "status:active", "warn"})
        BOOST_TEST(sync_wait(conn->exec_one("ZSCORE", store.partition_base("layout-1") + idx, "layout-1")).is_null());
    BOOST_TEST(sync_wait(conn->exec_one("EXISTS", key)).as_integer() == 0);
}

// Issue 12, defect 4: touch renewed only the record's TTL, so a session
// kept alive by touches alone for longer than ttl_margin, in a partition
// with no other writes, dropped out of the expiry index (it never expired),
// the lists and the stats. Real time: TTLs run on Redis's clock.
BOOST_AUTO_TEST_CASE(a_session_kept_alive_by_touches_alone_stays_in_every_index) {
    redis_store_options o;
    o.prefix = test::fresh_prefix("touchonly");
    o.partitions = 1;
    o.ttl_margin = 300ms;
    redis_store store(shared_connection(), o);
    auto real_now = [] { return from_unix_ms(to_unix_ms(std::chrono::system_clock::now())); };
    create_ok(store, make_record("kept", "carol", 1s, std::nullopt, real_now()));
    // Output, so that the log's TTL is checked too.
    BOOST_REQUIRE(sync_wait(store.append_output("kept", "hello")));
    // Touch for 2.5 s, eight margins, with no other write in the partition.
    const auto until = std::chrono::steady_clock::now() + 2500ms;
    while (std::chrono::steady_clock::now() < until) {
        BOOST_REQUIRE(sync_wait(store.touch("kept", real_now())).has_value());
        std::this_thread::sleep_for(100ms);
    }
    auto conn = shared_connection();
    const std::string base = store.partition_base("kept");
    const auto record_ttl = sync_wait(conn->exec_one("PTTL", store.key_of("kept"))).as_integer();
    BOOST_TEST(record_ttl > 0);
    for (std::string idx : {"live", "ids", "owner:carol", "status:active", "stats", "o:kept"}) {
        auto ttl = sync_wait(conn->exec_one("PTTL", base + idx)).as_integer();
        // (A few ms pass between the PTTL calls.)
        BOOST_TEST_CONTEXT(idx) { BOOST_TEST(ttl >= record_ttl - 50); }
    }
    BOOST_TEST(sync_wait(conn->exec_one("ZSCORE", base + "live", "kept")).is_null() == false);
    list_query q;
    q.owner = "carol";
    BOOST_TEST(sync_wait(store.list(q)).sessions.size() == 1u);
    list_query all;
    BOOST_TEST(sync_wait(store.list(all)).sessions.size() == 1u);
    auto st = sync_wait(store.stats());
    BOOST_TEST(st.count(session_status::active) == 1u);
    BOOST_TEST(st.created_total == 1u);
    auto out = sync_wait(store.read_output("kept", 0, 100));
    BOOST_REQUIRE(out);
    BOOST_TEST(out->data == "hello");
    // Left alone, it expires: the sweep still finds it.
    const auto later = real_now() + 2s;
    auto claimed = sync_wait(store.claim_expired(later, 10, 1min));
    BOOST_REQUIRE(claimed.size() == 1u);
    BOOST_TEST(claimed.front().id == "kept");
}

// claim_expired writes its index changes in one command per index at the
// end of the script; every kind of candidate must still end up filed right.
BOOST_AUTO_TEST_CASE(a_sweep_files_every_kind_of_candidate_where_it_belongs) {
    redis_store_options o;
    o.prefix = test::fresh_prefix("claimidx");
    o.partitions = 1;
    redis_store store(shared_connection(), o);
    for (auto id : {"due-a", "due-b", "touched", "gone"}) create_ok(store, make_record(id, "o", 10s));
    create_ok(store, make_record("later", "o", 1h));
    // Touched since it was filed: its entries still say t0 + 10 s.
    BOOST_REQUIRE(sync_wait(store.touch("touched", t0 + 5s)).has_value());
    // Gone behind the store's back: its index entries remain.
    auto conn = shared_connection();
    sync_wait(conn->exec_one("DEL", store.key_of("gone")));

    auto claimed = sync_wait(store.claim_expired(t0 + 12s, 100, 30s));
    std::set<std::string> ids;
    for (auto& c : claimed) ids.insert(c.id);
    BOOST_TEST((ids == std::set<std::string>{"due-a", "due-b"}));

    const std::string base = store.partition_base("x");
    constexpr std::int64_t absent = -1;
    auto score = [&](const std::string& index, const std::string& id) -> std::int64_t {
        auto v = sync_wait(conn->exec_one("ZSCORE", base + index, id));
        if (v.is_null()) return absent;
        return static_cast<std::int64_t>(v.is_string() ? std::stod(std::string(v.as_string())) : v.as_double());
    };
    for (std::string id : {"due-a", "due-b"}) {
        BOOST_TEST_CONTEXT(id) {
            BOOST_TEST(score("live", id) == to_unix_ms(t0 + 42s));  // the lease
            BOOST_TEST(score("warn", id) == absent);
            BOOST_TEST(score("status:active", id) == absent);
            BOOST_TEST(score("status:stopping", id) == 0);
            BOOST_TEST(sync_wait(conn->exec_one("PTTL", store.key_of(id))).as_integer() > 0);
        }
    }
    BOOST_TEST(score("live", "touched") == to_unix_ms(t0 + 15s));  // re-filed at its real deadline
    BOOST_TEST(score("warn", "touched") == to_unix_ms(t0 + 15s));
    BOOST_TEST(score("status:active", "touched") == 0);
    BOOST_TEST(score("live", "gone") == absent);
    BOOST_TEST(score("warn", "gone") == absent);
    BOOST_TEST(score("live", "later") == to_unix_ms(t0 + 1h));

    list_query q;
    q.status = session_status::stopping;
    auto page = sync_wait(store.list(q));
    BOOST_TEST(page.sessions.size() == 2u);
    auto stats = sync_wait(store.stats());
    BOOST_TEST(stats.expired_total == 2u);
}

BOOST_AUTO_TEST_CASE(a_record_overwritten_with_garbage_is_an_error_naming_the_key) {
    redis_store_options o;
    o.prefix = test::fresh_prefix("garbage");
    std::vector<std::string> reported;
    o.on_corrupt = [&](const std::string& key, const std::string&) { reported.push_back(key); };
    redis_store store(shared_connection(), o);
    for (auto id : {"g1", "g2", "g3", "g4", "ok"})
        BOOST_REQUIRE(sync_wait(store.create(make_record(id, "o", 1s))).created);
    // A second client writes over them.
    redis::connection other(shared_io().executor(), test::test_config());
    sync_wait(other.exec_one("SET", store.key_of("g1"), "garbage"));            // not even a hash
    sync_wait(other.exec_one("HSET", store.key_of("g2"), "doc", "{not json"));  // a broken document
    sync_wait(other.exec_one("HSET", store.key_of("g3"), "version", "many"));   // a broken field
    sync_wait(
        other.exec_one("HSET", store.key_of("g4"), "idle_deadline", "1e999"));  // Lua reads inf, ZADD would refuse it

    auto e1 = expect_failure(store.get("g1"));
    BOOST_TEST((e1.code() == error::corrupt_record));
    BOOST_TEST(contains(e1.what(), store.key_of("g1")));
    auto e1t = expect_failure(store.touch("g1", t0));
    BOOST_TEST((e1t.code() == error::corrupt_record));
    BOOST_TEST(contains(e1t.what(), store.key_of("g1")));
    auto e2 = expect_failure(store.get("g2"));
    BOOST_TEST((e2.code() == error::corrupt_record));
    BOOST_TEST(contains(e2.what(), store.key_of("g2")));
    BOOST_TEST(contains(e2.what(), "doc"));
    auto e3 = expect_failure(store.get("g3"));
    BOOST_TEST(contains(e3.what(), "version"));
    BOOST_TEST_MESSAGE(e1.what() << "\n" << e2.what() << "\n" << e3.what());

    // A sweep is not blocked by them: the good session is claimed, the bad
    // ones reported (and moved aside), and the next sweep is clean.
    auto claimed = sync_wait(store.claim_expired(t0 + 1h, 100, 30s));
    BOOST_TEST(claimed.size() == 1u);
    BOOST_TEST(claimed.at(0).id == "ok");
    BOOST_TEST(store.corrupt_records() >= 3u);
    BOOST_TEST(std::count(reported.begin(), reported.end(), store.key_of("g1")) == 1);
    BOOST_TEST(std::count(reported.begin(), reported.end(), store.key_of("g4")) == 1);
    auto again = sync_wait(store.claim_expired(t0 + 1h, 100, 30s));
    BOOST_TEST(again.empty());
    // list does not crash either: it skips and reports.
    list_query q;
    BOOST_CHECK_NO_THROW(sync_wait(store.list(q)));
}

// The output log's Redis side (doc/redis.md, "Worker output"): bounded,
// kept across updates, with a TTL following its record's, and a log
// someone wrote over is an error naming its key.
BOOST_AUTO_TEST_CASE(the_output_log_is_bounded_kept_across_updates_and_expires_with_its_record) {
    redis_store_options o;
    o.prefix = test::fresh_prefix("output");
    o.output_limit = 10;
    o.ttl_margin = 1h;
    redis_store store(shared_connection(), o);
    auto conn = shared_connection();
    auto s = create_ok(store, make_record("out-1", "o", 60s, std::nullopt,
                                          from_unix_ms(to_unix_ms(std::chrono::system_clock::now()))));
    const std::string log_key = store.partition_base("out-1") + "o:out-1";

    // 26 bytes through a 10-byte limit, in writes of 4 and one of 10.
    for (std::string part : {"abcd", "efgh", "ijkl", "mnop"})
        BOOST_REQUIRE(sync_wait(store.append_output("out-1", part)));
    BOOST_REQUIRE(sync_wait(store.append_output("out-1", "qrstuvwxyz")));
    auto tail = sync_wait(store.read_output("out-1", 0, 100));
    BOOST_REQUIRE(tail);
    BOOST_TEST(tail->dropped);
    BOOST_TEST(tail->offset == 16u);
    BOOST_TEST(tail->data == "qrstuvwxyz");
    BOOST_TEST(tail->next_offset == 26u);
    auto kept = sync_wait(store.read_output("out-1", 20, 3));
    BOOST_TEST(!kept->dropped);
    BOOST_TEST(kept->data == "uvw");
    // Redis holds at most twice the limit between cuts.
    BOOST_TEST(sync_wait(conn->exec_one("STRLEN", log_key)).as_integer() <= 20);
    // One write longer than the limit keeps only its tail.
    BOOST_REQUIRE(sync_wait(store.append_output("out-1", "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")));
    auto big = sync_wait(store.read_output("out-1", 26, 100));
    BOOST_TEST(big->dropped);
    BOOST_TEST(big->data == "QRSTUVWXYZ");
    BOOST_TEST(big->next_offset == 62u);

    // The log has its record's TTL, and an update (which rewrites the
    // record) neither loses it nor its offsets.
    auto record_ttl = sync_wait(conn->exec_one("PTTL", store.key_of("out-1"))).as_integer();
    auto log_ttl = sync_wait(conn->exec_one("PTTL", log_key)).as_integer();
    BOOST_TEST(log_ttl > 3'600'000);  // the record's deadline (60 s) + the margin (1 h), give or take
    BOOST_TEST(std::abs(log_ttl - record_ttl) < 1000);
    auto current = sync_wait(store.get("out-1"));
    BOOST_REQUIRE(current);
    auto changed = *current;
    changed.attributes["k"] = "v";
    BOOST_REQUIRE(sync_wait(store.update(changed, current->version)) == update_result::updated);
    BOOST_REQUIRE(sync_wait(store.append_output("out-1", "!")));
    auto after = sync_wait(store.read_output("out-1", 62, 100));
    BOOST_TEST(after->data == "!");
    BOOST_TEST(after->offset == 62u);
    BOOST_TEST(!after->dropped);
    (void)s;

    // A log that expired on its own (its record outlived it) reads as
    // dropped, never as a shifted offset.
    sync_wait(conn->exec_one("DEL", log_key));
    auto gone = sync_wait(store.read_output("out-1", 50, 100));
    BOOST_TEST(gone->dropped);
    BOOST_TEST(gone->offset == 63u);
    BOOST_TEST(gone->data.empty());

    // Written over by someone else: errors naming the key, and the
    // record's byte count is not moved by a failed append.
    sync_wait(conn->exec_one("SADD", log_key, "garbage"));
    auto e = expect_failure(store.append_output("out-1", "x"));
    BOOST_TEST((e.code() == error::corrupt_record));
    BOOST_TEST(contains(e.what(), log_key));
    sync_wait(conn->exec_one("DEL", log_key));
    sync_wait(conn->exec_one("SET", log_key, std::string(100, 'z')));
    auto e2 = expect_failure(store.read_output("out-1", 0, 10));
    BOOST_TEST((e2.code() == error::corrupt_record));
    BOOST_TEST(contains(e2.what(), log_key));
    sync_wait(conn->exec_one("HSET", store.key_of("out-1"), "out_end", "lots"));
    auto e3 = expect_failure(store.append_output("out-1", "x"));
    BOOST_TEST((e3.code() == error::corrupt_record));
    BOOST_TEST(contains(e3.what(), "out_end"));
    BOOST_TEST(sync_wait(conn->exec_one("STRLEN", log_key)).as_integer() == 100);
}

/// A store on a connection of its own to `server`, with a short request
/// timeout: the fault tests break that server.
redis_store private_store(const test::private_redis& server, std::chrono::milliseconds timeout, std::string_view name) {
    auto cfg = test::test_config(server.url());
    cfg.request_timeout = timeout;
    redis_store_options o;
    o.prefix = test::fresh_prefix(name);
    return redis_store(shared_io().executor(), cfg, o);
}

BOOST_AUTO_TEST_CASE(a_redis_restart_fails_operations_within_their_timeout_then_recovers) {
    test::private_redis server;
    redis_store store = private_store(server, 500ms, "restart");
    const auto& cfg = store.connection().cfg();
    BOOST_REQUIRE(sync_wait(store.create(make_record("r1"))).created);

    server.stop();
    for (int i = 0; i < 5; ++i) {
        const auto started = std::chrono::steady_clock::now();
        auto e = expect_failure(store.touch("r1", t0 + 1s));
        const auto took = std::chrono::steady_clock::now() - started;
        BOOST_TEST((e.code() == error::backend_unavailable || e.code() == error::timeout));
        BOOST_TEST(contains(e.what(), "redis redis://127.0.0.1:" + std::to_string(server.port())));
        BOOST_TEST(contains(e.what(), "touch 'r1'"));
        BOOST_TEST(took <= cfg.request_timeout + 250ms);
        if (i == 0) BOOST_TEST_MESSAGE("during the outage: " << e.what());
    }

    server.start();  // empty: no persistence; the scripts must be loaded again
    bool recovered = false;
    for (int i = 0; i < 100 && !recovered; ++i) {
        try {
            recovered = sync_wait(store.create(make_record("r2"))).created;
        } catch (const boost::system::system_error&) {
            std::this_thread::sleep_for(50ms);
        }
    }
    BOOST_TEST(recovered);
    BOOST_TEST(sync_wait(store.touch("r2", t0 + 1s)).has_value());
    // Every script is loaded again on first use, the output log's too.
    BOOST_TEST(sync_wait(store.append_output("r2", "after")));
    BOOST_TEST(sync_wait(store.read_output("r2", 0, 10))->data == "after");
    BOOST_TEST(store.connection().stats().connects >= 2u);
}

BOOST_AUTO_TEST_CASE(a_stalled_server_times_requests_out_then_recovers) {
    test::private_redis server;
    redis_store store = private_store(server, 300ms, "stall");
    BOOST_REQUIRE(sync_wait(store.create(make_record("s1"))).created);

    // Another client puts the server to sleep for 1.5 s.
    redis::connection_options sleeper_cfg = test::test_config(server.url());
    sleeper_cfg.request_timeout = 5s;
    redis::connection sleeper(shared_io().executor(), sleeper_cfg);
    sync_wait(sleeper.ping());
    std::thread sleeping([&] { sync_wait(sleeper.exec_one("DEBUG", "SLEEP", "1.5")); });
    std::this_thread::sleep_for(100ms);

    const auto started = std::chrono::steady_clock::now();
    auto e = expect_failure(store.touch("s1", t0 + 1s));
    const auto took = std::chrono::steady_clock::now() - started;
    BOOST_TEST((e.code() == error::timeout));
    BOOST_TEST(contains(e.what(), "touch 's1'"));
    BOOST_TEST(contains(e.what(), "redis redis://127.0.0.1:"));
    BOOST_TEST(took < 800ms);
    BOOST_TEST_MESSAGE("during the stall: " << e.what());
    sleeping.join();

    bool recovered = false;
    for (int i = 0; i < 100 && !recovered; ++i) {
        try {
            recovered = sync_wait(store.touch("s1", t0 + 2s)).has_value();
        } catch (const boost::system::system_error&) {
            std::this_thread::sleep_for(50ms);
        }
    }
    BOOST_TEST(recovered);
}

BOOST_AUTO_TEST_CASE(two_processes_of_200_coroutines_acquiring_one_id_make_one_session) {
    const std::string prefix = test::fresh_prefix("acq");
    std::vector<pid_t> children;
    for (int i = 0; i < 2; ++i)
        children.push_back(
            test::spawn({test::self_exe(), "--child", "acquire", redis_url(), prefix, "the-one", "200"}));
    int created = 0;
    for (auto pid : children) {
        int rc = test::wait_exit(pid);
        BOOST_REQUIRE(rc < 100);  // 100+: the child failed
        created += rc;
    }
    BOOST_TEST(created == 1);
    redis_store_options o;
    o.prefix = prefix;
    redis_store store(shared_connection(), o);
    auto st = sync_wait(store.stats());
    BOOST_TEST(st.created_total == 1u);
    BOOST_TEST(st.sessions == 1u);
}

// Output from two processes into one session's log, while a third rewrites
// the record (update carries the log's byte count over): every record
// whole, each once, and the count exact.
BOOST_AUTO_TEST_CASE(two_processes_appending_output_while_the_record_is_updated_lose_nothing) {
    const std::string prefix = test::fresh_prefix("out");
    redis_store_options o;
    o.prefix = prefix;
    redis_store store(shared_connection(), o);
    create_ok(store, make_record("shared-log", "o", 1h));
    constexpr int per_child = 2000;
    std::vector<pid_t> children;
    for (std::string tag : {"a", "b"})
        children.push_back(test::spawn({test::self_exe(), "--child", "append", redis_url(), prefix, "shared-log", tag,
                                        std::to_string(per_child)}));
    // Updates until the children are done, counting those that landed
    // between two appends (the byte count neither 0 nor the total).
    const auto total = std::int64_t{2 * per_child * 10};
    auto written = [&] {
        auto v = sync_wait(shared_connection()->exec_one("HGET", store.key_of("shared-log"), "out_end"));
        return v.is_null() ? std::int64_t{0} : v.as_integer();
    };
    int updates = 0;
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    for (int i = 0; std::chrono::steady_clock::now() < give_up; ++i) {
        const auto before = written();
        if (before >= total) break;
        auto current = sync_wait(store.get("shared-log"));
        BOOST_REQUIRE(current);
        current->attributes["n"] = i;
        if (sync_wait(store.update(*current, current->version)) == update_result::updated && before > 0 &&
            written() < total)
            ++updates;
    }
    for (auto pid : children) BOOST_TEST(test::wait_exit(pid) == 0);

    std::string all;
    for (std::uint64_t at = 0;;) {
        auto c = sync_wait(store.read_output("shared-log", at, max_output_read));
        BOOST_REQUIRE(c);
        BOOST_REQUIRE(!c->dropped);
        if (c->data.empty()) break;
        all += c->data;
        at = c->next_offset;
    }
    BOOST_REQUIRE(all.size() == std::size_t{2 * per_child * 10});
    std::set<std::string> seen;
    for (std::size_t i = 0; i < all.size(); i += 10) {
        const std::string record = all.substr(i, 10);
        BOOST_REQUIRE_MESSAGE(record.front() == '<' && record.back() == '>', "torn record at " << i << ": " << record);
        BOOST_TEST(seen.insert(record).second, "twice: " << record);
    }
    BOOST_TEST(seen.size() == std::size_t{2 * per_child});
    BOOST_TEST_MESSAGE(updates << " updates landed while the children appended");
    BOOST_TEST(updates > 0);  // else the test proved nothing about updates
}

BOOST_AUTO_TEST_CASE(three_janitor_processes_expire_each_session_exactly_once) {
    const std::string prefix = test::fresh_prefix("jan");
    redis_store_options o;
    o.prefix = prefix;
    redis_store store(shared_connection(), o);
    const auto now = from_unix_ms(to_unix_ms(std::chrono::system_clock::now()));
    constexpr int sessions = 600;
    for (int i = 0; i < sessions; ++i)
        BOOST_REQUIRE(
            sync_wait(store.create(make_record("exp-" + std::to_string(i), "o", 1s, std::nullopt, now - 10s))).created);

    // The three start on a barrier against one due set, so that they
    // overlap: each connects, says it is ready, and sweeps only once all
    // three are (else one process could do all the work and the test would
    // prove nothing about several).
    std::vector<std::string> outputs;
    std::vector<pid_t> children;
    const auto dir = std::filesystem::temp_directory_path();
    const std::string go = (dir / (prefix.substr(7, 10) + ".go")).string();
    for (int i = 0; i < 3; ++i) {
        outputs.push_back((dir / (prefix.substr(7, 10) + std::to_string(i) + ".out")).string());
        children.push_back(
            test::spawn({test::self_exe(), "--child", "janitor", redis_url(), prefix, outputs.back(), go}));
    }
    for (int waited = 0; waited < 3000; ++waited) {
        int ready = 0;
        for (auto& path : outputs) ready += std::filesystem::exists(path + ".ready");
        if (ready == 3) break;
        std::this_thread::sleep_for(10ms);
    }
    std::ofstream{go}.put('1');
    for (auto pid : children) BOOST_TEST(test::wait_exit(pid) == 0);
    std::filesystem::remove(go);
    std::map<std::string, int> expired;
    std::vector<int> per_process;
    for (auto& path : outputs) {
        std::ifstream in(path);
        std::string id;
        int n = 0;
        while (in >> id) ++expired[id], ++n;
        per_process.push_back(n);
        std::filesystem::remove(path);
        std::filesystem::remove(path + ".ready");
    }
    BOOST_TEST(expired.size() == std::size_t{sessions});
    for (auto& [id, n] : expired) BOOST_TEST_CONTEXT(id) {
            BOOST_TEST(n == 1);
        }
    BOOST_TEST_MESSAGE("expired per process: " << per_process[0] << ", " << per_process[1] << ", " << per_process[2]);
    BOOST_TEST(std::count_if(per_process.begin(), per_process.end(), [](int n) { return n > 0; }) >= 2,
               "the janitors did not overlap: one of them claimed everything");
    auto st = sync_wait(store.stats());
    BOOST_TEST(st.expired_total == std::uint64_t{sessions});
    BOOST_TEST(st.count(session_status::terminated) == std::uint64_t{sessions});
}

BOOST_AUTO_TEST_SUITE_END()

// ---- compositions (doc/compositions.md) -----------------------------------
//
// Two of the systems our users started from, composed of sessionkit's parts.
// doc/compositions.md shows the code in namespace `composed` as it is
// here (namespace `composed`): these cases are the proof that the page is true.

namespace composed {

// (b) Provider/model sessions: in Redis under "sentinel:session:", a 24 h
// sliding TTL, the provider and the model kept as attributes.
inline redis_store_options sentinel_store_options() {
    redis_store_options o;
    o.prefix = "sentinel:session:";
    return o;
}
inline registry_options sentinel_options() {
    registry_options o;
    o.idle_timeout = std::chrono::hours{24};  // every acquire and touch slides it
    return o;
}
template <class Clock = system_clock_policy>
using sentinel_registry = basic_session_registry<redis_store, Clock>;

inline acquire_options for_model(std::string user, std::string provider, std::string model) {
    acquire_options o;
    o.owner = std::move(user);
    o.attributes["provider"] = std::move(provider);
    o.attributes["model"] = std::move(model);
    return o;
}

// (d) Sessions in memory, or in Redis when USE_REDIS is true (or 1, yes), at
// REDIS_URL, as sessiond reads them. `app(store)` runs on whichever it is:
// a generic lambda or a function template.
template <class App>
auto with_store_from_env(boost::asio::any_io_executor ex, App app, redis_store_options options = {}) {
    const char* use = std::getenv("USE_REDIS");
    const std::string_view v = use ? use : "";
    if (v == "true" || v == "1" || v == "yes") {
        const char* url = std::getenv("REDIS_URL");
        redis_store store(ex, redis::connection_options::from_url(url && *url ? url : "redis://127.0.0.1:6379/0"),
                          std::move(options));
        return app(store);
    }
    memory_store store;
    return app(store);
}

}  // namespace composed

namespace {

/// Sets (or unsets, with nullptr) an environment variable for a scope.
class scoped_env {
public:
    scoped_env(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        value ? ::setenv(name, value, 1) : ::unsetenv(name);
    }
    ~scoped_env() { old_ ? ::setenv(name_, old_->c_str(), 1) : ::unsetenv(name_); }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;

private:
    const char* name_;
    std::optional<std::string> old_;
};

/// Every key in Redis whose name contains `part`.
std::vector<std::string> keys_containing(const std::string& part) {
    auto conn = shared_connection();
    std::vector<std::string> keys;
    std::string cursor = "0";
    do {
        auto reply = sync_wait(conn->exec_one("SCAN", cursor, "MATCH", "*" + part + "*", "COUNT", "1000"));
        cursor = std::string(reply.elements.at(0).as_string());
        for (auto& k : reply.elements.at(1).elements) keys.emplace_back(k.as_string());
    } while (cursor != "0");
    return keys;
}

/// The score of `id` in sorted set `key`, in ms; -1 when absent.
std::int64_t zscore_ms(const std::string& key, const std::string& id) {
    auto v = sync_wait(shared_connection()->exec_one("ZSCORE", key, id));
    if (v.is_null()) return -1;
    return static_cast<std::int64_t>(v.is_string() ? std::stod(std::string(v.as_string())) : v.as_double());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(compositions)

BOOST_AUTO_TEST_CASE(sentinel_sessions_live_under_their_prefix_for_24_hours_sliding) {
    using ::composed::for_model;
    redis_store store(shared_connection(), ::composed::sentinel_store_options());
    // A manual clock from the real now: Redis's safety TTLs run on real time.
    manual_clock clock(from_unix_ms(to_unix_ms(std::chrono::system_clock::now())));
    ::composed::sentinel_registry<manual_clock> sessions(store, ::composed::sentinel_options(), clock);
    const std::string id = "sktest-sentinel-" + generate_id().substr(0, 12);

    auto first = sync_wait(sessions.acquire(id, for_model("alice", "openai", "gpt-4o")));
    BOOST_TEST(first.created);
    BOOST_TEST((first.record.idle_deadline == clock.now() + 24h));

    // Every key of the session is under sentinel:session:, none under the
    // default session: prefix (neither its record nor an index entry).
    const std::string key = store.key_of(id);
    BOOST_TEST(key.starts_with("sentinel:session:"));
    BOOST_TEST(sync_wait(shared_connection()->exec_one("EXISTS", key)).as_integer() == 1);
    const auto keys = keys_containing(id);
    BOOST_TEST(!keys.empty());
    for (auto& k : keys) BOOST_TEST_CONTEXT(k) {
            BOOST_TEST(k.starts_with("sentinel:session:"));
        }
    const std::string base = store.partition_base(id);
    BOOST_TEST(base.starts_with("sentinel:session:{"));
    const std::string default_base = redis_store_keys::partition_base(
        "session:", redis_store_keys::partition_of(id, redis_store_options{}.partitions));
    for (std::string idx : {"live", "ids", "owner:alice", "status:active"}) BOOST_TEST_CONTEXT(idx) {
            BOOST_TEST(zscore_ms(base + idx, id) >= 0);
            BOOST_TEST(zscore_ms(default_base + idx, id) == -1);
        }

    // Its deadline is 24 h out, in the record and in the expiry index; the
    // record's safety TTL lies past it.
    const auto deadline_ms = [&] { return to_unix_ms(clock.now() + 24h); };
    BOOST_TEST(zscore_ms(base + "live", id) == deadline_ms());
    BOOST_TEST(sync_wait(shared_connection()->exec_one("HGET", key, "idle_deadline")).as_integer() == deadline_ms());
    BOOST_TEST(sync_wait(shared_connection()->exec_one("PTTL", key)).as_integer() > 24 * 3'600'000);

    // A touch 3 h later slides it to now + 24 h.
    clock.advance(3h);
    auto touched = sync_wait(sessions.touch(id));
    BOOST_REQUIRE(touched.has_value());
    BOOST_TEST((touched->idle_deadline == clock.now() + 24h));
    // (The expiry index keeps the deadline the session was filed under; a
    // sweep re-files it. The record's deadline is the one that counts.)
    BOOST_TEST(sync_wait(shared_connection()->exec_one("HGET", key, "idle_deadline")).as_integer() == deadline_ms());

    // The provider and the model round-trip, in the store's JSON too; a
    // later acquire (another model asked for) is the same session, unchanged.
    auto again = sync_wait(sessions.acquire(id, for_model("alice", "anthropic", "other")));
    BOOST_TEST(!again.created);
    auto got = sync_wait(sessions.get(id));
    BOOST_REQUIRE(got.has_value());
    BOOST_TEST(got->owner == "alice");
    BOOST_TEST(got->attributes.at("provider").as_string() == "openai");
    BOOST_TEST(got->attributes.at("model").as_string() == "gpt-4o");
    const auto doc = boost::json::parse(sync_wait(shared_connection()->exec_one("HGET", key, "doc")).as_string());
    BOOST_TEST(doc.at("attributes").at("model").as_string() == "gpt-4o");
    BOOST_TEST(doc.at("attributes").at("provider").as_string() == "openai");

    // Not expired a second before the deadline the last acquire slid; due just after it.
    auto claimed_ids = [&](time_point at) {
        std::set<std::string> ids;
        for (auto& c : sync_wait(store.claim_expired(at, 1000, 1min))) ids.insert(c.id);
        return ids;
    };
    BOOST_TEST(!claimed_ids(clock.now() + 24h - 1s).contains(id));
    clock.advance(24h + 1ms);
    BOOST_TEST(claimed_ids(clock.now()).contains(id));

    BOOST_TEST(sync_wait(store.erase(id)));
    BOOST_TEST(keys_containing(id).empty());
}

BOOST_AUTO_TEST_CASE(use_redis_picks_the_store_at_start) {
    const std::string prefix = test::fresh_prefix("useredis");
    redis_store_options options;
    options.prefix = prefix;
    // The same scenario on whichever store the environment picked; returns
    // which one it ran on, and leaves the session in place.
    auto scenario = [](const std::string& id) {
        return [id](auto& store) -> std::string {
            using store_type = std::decay_t<decltype(store)>;
            session_registry<store_type> sessions(store);
            acquire_options who;
            who.owner = "bob";
            who.attributes["plan"] = "pro";
            BOOST_TEST(sync_wait(sessions.acquire(id, who)).created);
            BOOST_TEST(sync_wait(sessions.touch(id)).has_value());
            auto got = sync_wait(sessions.get(id));
            BOOST_REQUIRE(got.has_value());
            BOOST_TEST(got->attributes.at("plan").as_string() == "pro");
            if constexpr (std::is_same_v<store_type, redis_store>) {
                const std::string key = store.key_of(id);
                auto doc = boost::json::parse(sync_wait(shared_connection()->exec_one("HGET", key, "doc")).as_string());
                BOOST_TEST(doc.at("owner").as_string() == "bob");
                return "redis " + key;
            } else {
                return "memory";
            }
        };
    };
    // Where the Redis store would keep `id` (it must not be there on memory).
    auto redis_key = [&](const std::string& id) {
        return redis_store_keys::record_key(
            redis_store_keys::partition_base(prefix, redis_store_keys::partition_of(id, options.partitions)), id);
    };
    auto exists = [](const std::string& key) {
        return sync_wait(shared_connection()->exec_one("EXISTS", key)).as_integer() == 1;
    };
    for (const char* off : {static_cast<const char*>(nullptr), "false", "0", ""}) {
        BOOST_TEST_CONTEXT("USE_REDIS=" << (off ? off : "(unset)")) {
            scoped_env env("USE_REDIS", off);
            const std::string id = "mem-" + generate_id().substr(0, 12);
            BOOST_TEST(::composed::with_store_from_env(shared_io().executor(), scenario(id), options) == "memory");
            BOOST_TEST(!exists(redis_key(id)));
        }
    }
    for (const char* on : {"true", "1", "yes"}) {
        BOOST_TEST_CONTEXT("USE_REDIS=" << on) {
            scoped_env env("USE_REDIS", on);
            const std::string id = "red-" + generate_id().substr(0, 12);
            BOOST_TEST(::composed::with_store_from_env(shared_io().executor(), scenario(id), options) ==
                       "redis " + redis_key(id));
            BOOST_TEST(exists(redis_key(id)));
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ---- child processes ----------------------------------------------------------

namespace {

/// Acquires one id from `coroutines` coroutines on 2 threads; the exit code
/// is how many of them created it (100+ on failure).
int child_acquire(const std::string& url, const std::string& prefix, const std::string& id, int coroutines) {
    test::background_io io;
    redis_store_options o;
    o.prefix = prefix;
    redis_store store(io.executor(), test::test_config(url), o);
    session_registry<redis_store> registry(store);
    boost::asio::io_context ctx;
    std::atomic<int> created{0}, failed{0};
    for (int i = 0; i < coroutines; ++i)
        boost::asio::co_spawn(
            ctx,
            [&]() -> awaitable<void> {
                try {
                    std::string mine = id;
                    auto r = co_await registry.acquire(mine);
                    if (r.created) ++created;
                } catch (const std::exception& e) {
                    ++failed;
                    std::cerr << "acquire failed: " << e.what() << '\n';
                }
            },
            boost::asio::detached);
    testing::run_threads(ctx, 2);
    return failed ? 100 : created.load();
}

/// Appends `count` records "<TAG0000042>" (10 bytes) to session `id`'s
/// output from 4 coroutines on 2 threads (few, so that the parent's updates
/// interleave); 0 when every append was kept.
int child_append(const std::string& url, const std::string& prefix, const std::string& id, const std::string& tag,
                 int count) {
    test::background_io io;
    redis_store_options o;
    o.prefix = prefix;
    redis_store store(io.executor(), test::test_config(url), o);
    boost::asio::io_context ctx;
    std::atomic<int> next{0}, failed{0};
    for (int c = 0; c < 4; ++c)
        boost::asio::co_spawn(
            ctx,
            [&]() -> awaitable<void> {
                for (int n; (n = next++) < count;) {
                    char record[16];
                    std::snprintf(record, sizeof record, "<%s%07d>", tag.c_str(), n);
                    const std::string mine = id, bytes = record;  // named: GCC 12
                    try {
                        if (!co_await store.append_output(mine, bytes)) ++failed;
                    } catch (const std::exception& e) {
                        ++failed;
                        std::cerr << "append failed: " << e.what() << '\n';
                    }
                }
            },
            boost::asio::detached);
    testing::run_threads(ctx, 2);
    return failed ? 100 : 0;
}

/// Sweeps until no session is live, writing the id of every session this
/// process expired to `out`. Starts once the file `go` exists, after saying
/// it is ready (`out`.ready).
int child_janitor(const std::string& url, const std::string& prefix, const std::string& out, const std::string& go) {
    test::background_io io;
    redis_store_options o;
    o.prefix = prefix;
    redis_store store(io.executor(), test::test_config(url), o);
    test::recording_sink sink;
    basic_session_registry<redis_store, system_clock_policy, test::recording_sink> registry(store, {}, {}, sink);
    janitor_options jo;
    jo.batch_size = 25;  // small batches: the three processes interleave
    jo.warning_window = 0s;
    janitor jan(registry, jo);
    try {
        sync_wait(store.ping());  // connected before the start
        std::ofstream{out + ".ready"}.put('1');
        for (int waited = 0; !std::filesystem::exists(go); ++waited) {
            if (waited == 3000) throw std::runtime_error("no start signal within 30 s");
            std::this_thread::sleep_for(10ms);
        }
        for (int i = 0; i < 400; ++i) {
            sync_wait(jan.sweep_once());
            auto st = sync_wait(store.stats());
            if (st.count(session_status::active) == 0 && st.count(session_status::stopping) == 0) break;
        }
    } catch (const std::exception& e) {
        std::cerr << "janitor failed: " << e.what() << '\n';
        return 1;
    }
    std::ofstream f(out);
    for (auto& [id, n] : sink.per_session(event_type::expired))
        for (int k = 0; k < n; ++k) f << id << '\n';
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 3 && std::string_view(argv[1]) == "--child") {
        std::string_view mode = argv[2];
        if (mode == "acquire" && argc == 7) return child_acquire(argv[3], argv[4], argv[5], std::atoi(argv[6]));
        if (mode == "janitor" && argc == 7) return child_janitor(argv[3], argv[4], argv[5], argv[6]);
        if (mode == "append" && argc == 8) return child_append(argv[3], argv[4], argv[5], argv[6], std::atoi(argv[7]));
        std::cerr << "unknown child mode\n";
        return 120;
    }
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

// postgres_store against a real PostgreSQL (issue 15): the store
// conformance suite (outbox and output cases included), the schema and its
// migration (raced, refused when newer), rows corrupted by hand, the
// outbox's commit-order guarantee, and no SQL holding a value.
//
// The conformance suite runs on a private cluster this test starts (initdb
// + pg_ctl under /tmp): the outbox reads only events whose transaction
// ended before every running one, cluster-wide, so another test's open
// transaction on a shared server could hold back an event the suite reads
// at once. Needs DATABASE_URL (the ctest fixture sets it; it proves
// PostgreSQL is installed) and initdb/pg_ctl.
#define BOOST_TEST_MODULE sessionkit_postgres_store
#include <boost/test/unit_test.hpp>

#include "integration/postgres_support.hpp"
#include "support/confirming_recorder.hpp"
#include <sessionkit/event_relay.hpp>
#include <sessionkit/registry.hpp>
#include <sessionkit/store/postgres.hpp>
#include <sessionkit/testing/eventually.hpp>
#include <sessionkit/testing/io_threads.hpp>
#include <sessionkit/testing/run.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <future>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace {

using namespace sessionkit;
using namespace std::chrono_literals;
using testing::sync_wait;
namespace pg = sessionkit::postgres;

testing::io_threads& shared_io() {
    static testing::io_threads io(2);
    return io;
}

test::private_postgres& cluster() {
    static test::private_postgres server;
    return server;
}

pg::connection_options config() {
    auto cfg = test::postgres_test_config(cluster().url());
    cfg.pool_size = 2;
    return cfg;
}

/// A schema of the test's own, so cases never meet.
std::string fresh_schema() { return "t_" + generate_id().substr(0, 12); }

std::unique_ptr<postgres_store> open_store(postgres_store_options o) {
    return sync_wait(postgres_store::open(shared_io().executor(), config(), std::move(o)));
}

/// Runs SQL on the cluster outside the store (what psql would do).
std::vector<pg::result> psql(const std::string& sql) {
    return sync_wait(pg::execute_script(shared_io().executor(), config(), "psql", sql));
}

}  // namespace

struct postgres_store_factory {
    using store_type = postgres_store;
    std::unique_ptr<postgres_store> make() { return open_store(options()); }
    std::unique_ptr<postgres_store> make_with_outbox(outbox_options outbox) {
        auto o = options();
        o.outbox = outbox;
        return open_store(o);
    }
    static postgres_store_options options() {
        postgres_store_options o;
        o.schema = fresh_schema();
        o.stats_max_age = 0ms;  // the suite counts right after each write
        o.output_limit = 1 << 20;
        return o;
    }
};

using conformance_factories = std::tuple<postgres_store_factory>;
#include <sessionkit/testing/store_conformance.hpp>

BOOST_AUTO_TEST_SUITE(postgres_store_specific)

using namespace sessionkit::testing::conformance;

BOOST_AUTO_TEST_CASE(statements_hold_no_values) {
    // Every statement is a constant but for the schema name: built for two
    // schemas, they differ only there.
    auto a = postgres_store_sql::statements("schema_a");
    auto b = postgres_store_sql::statements("schema_b");
    BOOST_REQUIRE_EQUAL(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        BOOST_TEST(std::regex_replace(a[i].sql, std::regex("\"schema_a\""), "S") ==
                   std::regex_replace(b[i].sql, std::regex("\"schema_b\""), "S"));
        // Parameters are $n, never quoted literals made from input: the
        // only literals are the fixed status names and JSON keys.
        BOOST_TEST(a[i].sql.find("' ||") == std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(a_bad_schema_name_is_refused_naming_it) {
    for (const std::string& bad :
         std::vector<std::string>{"", "Upper", "1digit", "semi;colon", "quote\"d", std::string(64, 'a')}) {
        postgres_store_options o;
        o.schema = bad;
        try {
            postgres_store store(shared_io().executor(), config(), o);
            BOOST_FAIL("accepted schema '" + bad + "'");
        } catch (const boost::system::system_error& e) {
            BOOST_TEST((e.code() == error::invalid_argument));
            BOOST_TEST(std::string(e.what()).find("schema name") != std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_CASE(migrations_raced_by_several_openers_run_once) {
    const std::string schema = fresh_schema();
    std::vector<std::future<std::unique_ptr<postgres_store>>> opening;
    for (int i = 0; i < 4; ++i) {
        postgres_store_options o;
        o.schema = schema;
        opening.push_back(boost::asio::co_spawn(shared_io().executor(),
                                                postgres_store::open(shared_io().executor(), config(), o),
                                                boost::asio::use_future));
    }
    for (auto& f : opening) BOOST_TEST(f.get() != nullptr);
    auto rows = psql("SELECT count(*) FROM \"" + schema + "\".schema_migrations");
    BOOST_TEST(rows[0].value(0, 0) == "1");
}

BOOST_AUTO_TEST_CASE(a_schema_newer_than_the_library_is_refused) {
    const std::string schema = fresh_schema();
    postgres_store_options o;
    o.schema = schema;
    open_store(o);
    psql("INSERT INTO \"" + schema + "\".schema_migrations (version, description) VALUES (99, 'from the future')");
    try {
        open_store(o);
        BOOST_FAIL("opened a schema at version 99");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST_MESSAGE(e.what());
        BOOST_TEST(std::string(e.what()).find("version 99, newer than this sessionkit knows (1)") != std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(a_different_partition_count_is_refused_naming_both) {
    postgres_store_options o;
    o.schema = fresh_schema();
    o.outbox_partitions = 4;
    open_store(o);
    o.outbox_partitions = 8;
    try {
        open_store(o);
        BOOST_FAIL("opened with 8 partitions a schema set up with 4");
    } catch (const boost::system::system_error& e) {
        BOOST_TEST((e.code() == error::invalid_argument));
        BOOST_TEST(std::string(e.what()).find("set up with 4 outbox partitions; this store has 8") !=
                   std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(rows_corrupted_by_hand_are_errors_naming_the_session_and_field) {
    auto o = postgres_store_factory::options();
    auto store = open_store(o);
    const std::string table = "\"" + o.schema + "\".sessions";
    struct corruption {
        std::string id, set, field;
    };
    for (const auto& c : std::vector<corruption>{{"bad-status", "status = 'exploded'", "status"},
                                                 {"bad-attrs", "attributes = '[1, 2]'", "attributes"},
                                                 {"bad-worker", "worker = '\"docker\"'", "worker"},
                                                 {"bad-time", "created_at = -5", "created_at"},
                                                 {"bad-timeout", "idle_timeout_ms = -1", "idle_timeout_ms"}}) {
        create_ok(*store, make_record(c.id));
        psql("UPDATE " + table + " SET " + c.set + " WHERE id = '" + c.id + "'");
        try {
            sync_wait(store->get(c.id));
            BOOST_FAIL("read a row with " + c.set);
        } catch (const boost::system::system_error& e) {
            BOOST_TEST_MESSAGE(e.what());
            BOOST_TEST((e.code() == error::corrupt_record));
            BOOST_TEST(std::string(e.what()).find("session '" + c.id + "': field '" + c.field + "'") !=
                       std::string::npos);
        }
        // The sweeps and listing meet it too, and say so the same way.
        BOOST_CHECK_THROW(sync_wait(store->list(list_query{})), boost::system::system_error);
        psql("DELETE FROM " + table + " WHERE id = '" + c.id + "'");
    }
    // Each corrupt row was removed again: the table reads clean.
    BOOST_TEST(sync_wait(store->list(list_query{})).sessions.empty());
}

BOOST_AUTO_TEST_CASE(an_event_whose_transaction_commits_late_is_not_skipped) {
    // Sequence numbers are taken at insert, rows appear at commit: hold a
    // transaction open with an event in it (taken first: the lower seq),
    // write another event that commits at once, and read. The late one
    // must come after the early one is read, never be passed over.
    auto o = postgres_store_factory::options();
    o.outbox = outbox_options{};
    o.outbox_partitions = 1;
    auto store = open_store(o);
    create_ok(*store, make_record("early"));
    const std::string events = "\"" + o.schema + "\".session_events";
    // The held transaction: a script that inserts an event and sleeps
    // before committing (run in the background).
    auto held =
        boost::asio::co_spawn(shared_io().executor(),
                              pg::execute_script(shared_io().executor(), config(), "held",
                                                 "INSERT INTO " + events +
                                                     " (partition, event_id, session_id, type, at, data)"
                                                     " VALUES (0, 'held-event', 'early', 'status_changed', 1, '{}');"
                                                     " SELECT pg_sleep(1.5);",
                                                 10s),
                              boost::asio::use_future);
    std::this_thread::sleep_for(300ms);  // the insert has its sequence number by now
    auto rec = *sync_wait(store->get("early"));
    BOOST_REQUIRE(
        sync_wait(store->update(rec, rec.version, std::vector<event>{test_event("early", "committed-first")})) ==
        update_result::updated);
    // While the held transaction runs, the committed event waits too.
    BOOST_TEST(sync_wait(store->read_outbox(0, "", 100)).empty());
    held.get();
    auto both = sync_wait(store->read_outbox(0, "", 100));
    BOOST_REQUIRE_EQUAL(both.size(), 2u);
    BOOST_TEST(both[0].ev.id == "held-event");
    BOOST_TEST(both[1].ev.data.at("tag").as_string() == "committed-first");
}

BOOST_AUTO_TEST_SUITE_END()

namespace {
awaitable<update_result> update_copy(postgres_store& store, session rec, std::uint64_t version) {
    co_return co_await store.update(rec, version);
}
}  // namespace

BOOST_AUTO_TEST_SUITE(postgres_store_concurrency)

using namespace sessionkit::testing::conformance;

BOOST_AUTO_TEST_CASE(concurrent_compare_and_swap_fails_none_with_an_error) {
    // Losers of a compare-and-swap race get version_conflict, never a
    // serialization or deadlock error from the server.
    auto store = open_store(postgres_store_factory::options());
    auto s = create_ok(*store, make_record("race"));
    std::vector<std::future<update_result>> racing;
    for (int i = 0; i < 32; ++i) {
        session mine = s;
        mine.attributes["writer"] = i;
        racing.push_back(boost::asio::co_spawn(shared_io().executor(), update_copy(*store, mine, s.version),
                                               boost::asio::use_future));
    }
    int wins = 0, conflicts = 0;
    for (auto& f : racing) {
        try {
            const auto r = f.get();
            wins += r == update_result::updated;
            conflicts += r == update_result::version_conflict;
        } catch (const std::exception& e) {
            BOOST_ERROR(e.what());
        }
    }
    BOOST_TEST(wins == 1);
    BOOST_TEST(conflicts == 31);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(postgres_store_relay)

BOOST_AUTO_TEST_CASE(a_registry_and_an_event_relay_deliver_every_event_once_in_order) {
    auto o = postgres_store_factory::options();
    o.outbox = outbox_options{};
    auto store = open_store(o);
    test::confirming_recorder sink;
    sink.refuse_next(3);  // the first publishes fail: the relay retries with the same events
    basic_session_registry<postgres_store, system_clock_policy, test::confirming_recorder> registry(*store, {}, {},
                                                                                                    sink);
    event_relay_options ro;
    ro.poll_interval = 20ms;
    ro.batch_size = 7;  // several batches per partition
    ro.retry_min = 10ms;
    ro.retry_max = 50ms;
    event_relay<postgres_store, test::confirming_recorder> relay(*store, sink, ro);
    testing::io_threads relay_io(1);
    auto running = boost::asio::co_spawn(relay_io.executor(), relay.run(), boost::asio::use_future);

    constexpr int sessions = 30;
    std::vector<std::string> ids;
    for (int i = 0; i < sessions; ++i) {
        auto made = sync_wait(registry.acquire("relayed-" + std::to_string(i)));
        BOOST_TEST_REQUIRE(made.created);
        ids.push_back(made.record.id);
    }
    for (auto& id : ids) sync_wait(registry.set_status(id, session_status::idle));
    for (auto& id : ids) BOOST_TEST_REQUIRE(sync_wait(registry.terminate(id)).has_value());

    const std::size_t expected = 3 * sessions;
    const bool all = testing::eventually([&] { return sink.confirmed_count() >= expected; }, 20s);
    relay.stop();
    running.get();
    BOOST_TEST_REQUIRE(all);
    BOOST_TEST(sink.emitted().empty());  // with the outbox, nothing goes around it
    const auto published = sink.confirmed();
    BOOST_TEST(published.size() == expected);  // each once
    std::set<std::string> unique;
    std::map<std::string, std::vector<event_type>> per_session;
    for (const auto& e : published) {
        unique.insert(e.id);
        per_session[e.session_id].push_back(e.type);
    }
    BOOST_TEST(unique.size() == expected);
    for (const auto& id : ids)
        BOOST_TEST((per_session[id] ==
                    std::vector<event_type>{event_type::created, event_type::status_changed, event_type::terminated}),
                   id);
    // Confirmed, so trimmed (kept as the activity log until purged).
    BOOST_TEST(sync_wait(store->outbox_stats()).depth == 0u);
    auto kept = psql("SELECT count(*) FROM \"" + o.schema + "\".session_events WHERE relayed_at IS NOT NULL");
    BOOST_TEST(kept[0].value(0, 0) == std::to_string(expected));
    // The retention purge removes relayed events older than `before`.
    sync_wait(store->purge_ended(std::chrono::system_clock::now() + 1h, 1000));
    auto left = psql("SELECT count(*) FROM \"" + o.schema + "\".session_events");
    BOOST_TEST(left[0].value(0, 0) == "0");
}

BOOST_AUTO_TEST_SUITE_END()

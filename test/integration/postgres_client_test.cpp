// The PostgreSQL client against real servers: the harness's (DATABASE_URL)
// for prepared statements, pipelining, errors, statement_timeout, the
// pool and scripts; private clusters for the faults of issue 15 (pg_ctl
// restart -m immediate under load, a backend stopped with SIGSTOP).
#define BOOST_TEST_MODULE sessionkit_postgres_client
#include <boost/test/unit_test.hpp>

#include "integration/postgres_support.hpp"
#include "support/stopped_process.hpp"
#include <sessionkit/postgres/connection.hpp>
#include <sessionkit/postgres/pool.hpp>
#include <sessionkit/postgres/script.hpp>
#include <sessionkit/testing/io_threads.hpp>
#include <sessionkit/testing/run.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace sessionkit;
using namespace std::chrono_literals;
using testing::sync_wait;
using clock_type = std::chrono::steady_clock;
namespace pg = sessionkit::postgres;

testing::io_threads& shared_io() {
    static testing::io_threads io(2);
    return io;
}

/// A table of the test's own, so runs and tests never meet.
std::string fresh_table(std::string_view what) {
    return "sktest_" + std::string(what) + "_" + generate_id().substr(0, 10);
}

/// The statements the tests call; with a table (it must exist), "insert"
/// and "count" too.
pg::statement_set statements(const std::string& table = {}) {
    pg::statement_set set{
        {"echo", "SELECT $1::text AS text, $2::int4 AS number, $3::bool AS flag, $4::text IS NULL AS was_null", {}},
        {"add", "SELECT $1::int8 + $2::int8 AS sum", {}},
        {"divide", "SELECT 100 / $1::int4 AS quotient", {}},
        {"sleep", "SELECT pg_sleep($1::float8)", {}},
        {"pid", "SELECT pg_backend_pid()", {}},
        {"setting", "SELECT current_setting($1)", {}},
    };
    if (!table.empty()) {
        set.push_back({"insert", "INSERT INTO " + table + " (id, n) VALUES ($1, $2)", {}});
        set.push_back({"count", "SELECT count(*) FROM " + table + " WHERE id = $1", {}});
    }
    return set;
}

/// Creates `table` through a script (the way a store creates its schema).
void create_table(const pg::connection_options& cfg, const std::string& table) {
    sync_wait(pg::execute_script(shared_io().executor(), cfg, "create " + table,
                                 "CREATE TABLE " + table + " (id text PRIMARY KEY, n int NOT NULL)"));
}

template <class T>
boost::system::system_error expect_failure(boost::asio::awaitable<T> op) {
    try {
        sync_wait(std::move(op));
    } catch (const boost::system::system_error& e) {
        return e;
    }
    BOOST_FAIL("the operation did not fail");
    throw std::logic_error("unreachable");
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

std::int64_t as_int(const pg::result& r, std::size_t row = 0, std::size_t column = 0) {
    return std::stoll(std::string(r.value(row, column)));
}

std::string backend_of(const pg::connection_options& cfg) { return "PostgreSQL " + cfg.describe(); }

/// Retries `op` until it works or `limit` passes; true when it did.
template <class Op>
bool recovers(Op op, std::chrono::milliseconds limit) {
    const auto until = clock_type::now() + limit;
    while (clock_type::now() < until) {
        try {
            op();
            return true;
        } catch (const boost::system::system_error&) {
            std::this_thread::sleep_for(20ms);
        }
    }
    return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(postgres_client)

BOOST_AUTO_TEST_CASE(prepared_statements_round_trip_their_parameters) {
    pg::connection conn(shared_io().executor(), test::postgres_test_config(), statements());
    auto results = sync_wait(conn.execute(pg::operation("echo", "k1")
                                              .call("echo", "héllo 'quoted' \\ text", 42, true, std::nullopt)
                                              .call("echo", std::string(), -7, false, "x")
                                              .call("add", std::int64_t{1} << 40, 2)));
    BOOST_REQUIRE(results.size() == 3u);
    const auto& first = results[0];
    BOOST_TEST(first.rows() == 1u);
    BOOST_TEST(first.columns() == 4u);
    BOOST_TEST(first.column_name(1) == "number");
    BOOST_TEST((first.column("flag") == std::optional<std::size_t>(2)));
    BOOST_TEST(first.value(0, 0) == "héllo 'quoted' \\ text");
    BOOST_TEST(as_int(first, 0, 1) == 42);
    BOOST_TEST(first.value(0, 2) == "t");
    BOOST_TEST(first.value(0, 3) == "t");  // NULL arrived as NULL
    BOOST_TEST(results[1].value(0, 0) == "");
    BOOST_TEST(!results[1].is_null(0, 0));  // an empty string is not NULL
    BOOST_TEST(results[1].value(0, 3) == "f");
    BOOST_TEST(as_int(results[2]) == (std::int64_t{1} << 40) + 2);
    BOOST_CHECK_THROW(first.value(1, 0), std::out_of_range);

    // A NULL result, and the binary format.
    auto null = sync_wait(conn.execute(
        pg::operation("null").call("echo", std::nullopt, std::nullopt, std::nullopt, std::optional<std::string>{})));
    BOOST_TEST(null[0].is_null(0, 0));
    BOOST_TEST(!null[0].get(0, 1).has_value());
    auto binary = sync_wait(conn.execute(pg::operation("binary").call("echo", "b", 258, true, "x").binary_result()));
    const auto bytes = binary[0].value(0, 1);  // int4, big-endian
    BOOST_TEST(bytes.size() == 4u);
    BOOST_TEST((static_cast<unsigned char>(bytes[2]) == 1 && static_cast<unsigned char>(bytes[3]) == 2));

    // Statements are checked before anything is sent; text has no NUL.
    auto unknown = expect_failure(conn.execute(pg::operation("typo", "k").call("ehco", "x")));
    BOOST_TEST((unknown.code() == error::invalid_argument));
    BOOST_TEST(contains(unknown.what(), "no prepared statement 'ehco'"));
    BOOST_CHECK_THROW(pg::operation("nul").call("echo", std::string("a\0b", 3)), boost::system::system_error);
    BOOST_TEST(conn.stats().connects == 1u);
}

BOOST_AUTO_TEST_CASE(many_coroutines_on_several_threads_pipeline_on_one_connection) {
    pg::connection conn(shared_io().executor(), test::postgres_test_config(), statements());
    sync_wait(conn.ping());
    const auto before = conn.stats();
    boost::asio::io_context ctx;
    constexpr int coroutines = 1000;
    std::atomic<int> right{0};
    for (int i = 0; i < coroutines; ++i)
        boost::asio::co_spawn(
            ctx,
            [&, i]() -> boost::asio::awaitable<void> {
                auto r = co_await conn.execute(pg::operation("add", std::to_string(i)).call("add", i, i * 1000));
                if (as_int(r[0]) == i * 1001) ++right;
            },
            boost::asio::detached);
    const auto started = clock_type::now();
    testing::run_threads(ctx, 4);
    const auto took = std::chrono::duration<double>(clock_type::now() - started).count();
    BOOST_TEST(right.load() == coroutines);
    const auto after = conn.stats();
    const auto operations = after.operations - before.operations;
    const auto flushes = after.flushes - before.flushes;
    BOOST_TEST(operations == std::uint64_t{coroutines});
    // Pipelining: operations that waited together went out together, one
    // connection, no reconnect.
    BOOST_TEST(flushes < operations);
    BOOST_TEST(after.connects == 1u);
    BOOST_TEST_MESSAGE(coroutines << " operations in " << flushes << " flushes, " << took * 1000 << " ms ("
                                  << coroutines / took << " ops/s on one connection)");
}

BOOST_AUTO_TEST_CASE(an_error_in_one_operation_does_not_fail_the_next) {
    const std::string table = fresh_table("err");
    auto cfg = test::postgres_test_config();
    create_table(cfg, table);
    pg::connection conn(shared_io().executor(), cfg, statements(table));
    sync_wait(conn.ping());

    // Failing and succeeding operations pipelined together: each failure is
    // its own, with its SQLSTATE and the statement named.
    boost::asio::io_context ctx;
    std::atomic<int> succeeded{0}, failed_right{0};
    std::mutex m;
    std::string one_failure;
    for (int i = 0; i < 200; ++i)
        boost::asio::co_spawn(
            ctx,
            [&, i]() -> boost::asio::awaitable<void> {
                const bool fail = i % 2 == 1;
                try {
                    auto r =
                        co_await conn.execute(pg::operation("divide", std::to_string(i)).call("divide", fail ? 0 : 4));
                    if (!fail && as_int(r[0]) == 25) ++succeeded;
                } catch (const pg::server_error& e) {
                    if (fail && e.sqlstate() == "22012" && e.statement() == "divide" &&
                        e.code() == error::invalid_argument && contains(e.what(), "'" + std::to_string(i) + "'"))
                        ++failed_right;
                    std::lock_guard lock(m);
                    if (one_failure.empty()) one_failure = e.what();
                }
            },
            boost::asio::detached);
    testing::run_threads(ctx, 2);
    BOOST_TEST(succeeded.load() == 100);
    BOOST_TEST(failed_right.load() == 100);
    BOOST_TEST(contains(one_failure, backend_of(cfg)));
    BOOST_TEST(contains(one_failure, "statement 'divide' failed: ERROR 22012: division by zero"));
    BOOST_TEST_MESSAGE("a failed operation: " << one_failure);

    // An operation is one transaction: its insert is rolled back with it.
    auto e = expect_failure(
        conn.execute(pg::operation("insert twice", "dup").call("insert", "dup", 1).call("insert", "dup", 2)));
    BOOST_TEST((e.code() == error::invalid_argument));
    BOOST_TEST(contains(e.what(), "insert twice 'dup': statement 'insert' failed: ERROR 23505"));
    auto count = sync_wait(conn.execute(pg::operation("count").call("count", "dup")));
    BOOST_TEST(as_int(count[0]) == 0);
    sync_wait(conn.execute(pg::operation("insert once").call("insert", "dup", 1)));
    BOOST_TEST(as_int(sync_wait(conn.execute(pg::operation("count").call("count", "dup")))[0]) == 1);
    BOOST_TEST(conn.stats().connects == 1u);  // errors never cost the link
    BOOST_TEST(conn.stats().drops == 0u);
}

BOOST_AUTO_TEST_CASE(a_statement_timeout_is_reported_naming_postgresql_and_keeps_the_connection) {
    auto cfg = test::postgres_test_config();
    cfg.statement_timeout = 200ms;
    pg::connection conn(shared_io().executor(), cfg, statements());
    BOOST_TEST(sync_wait(conn.execute(pg::operation("setting").call("setting", "statement_timeout")))[0].value(0, 0) ==
               "200ms");
    const auto started = clock_type::now();
    std::optional<pg::server_error> caught;
    try {
        sync_wait(conn.execute(pg::operation("sleep", "slow-1").call("sleep", 2)));
    } catch (const pg::server_error& e) {
        caught = e;
    }
    const auto took = clock_type::now() - started;
    BOOST_REQUIRE(caught.has_value());
    const pg::server_error& e = *caught;
    BOOST_TEST((e.code() == error::timeout));
    BOOST_TEST((e.code() == condition::unavailable));
    BOOST_TEST(contains(e.what(), backend_of(cfg) + ": sleep 'slow-1': statement 'sleep' failed: ERROR 57014"));
    BOOST_TEST(contains(e.what(), "canceling statement due to statement timeout"));
    BOOST_TEST(e.sqlstate() == "57014");
    BOOST_TEST(e.diagnostics().key == "slow-1");
    BOOST_TEST((took >= 200ms && took < 1500ms));
    BOOST_TEST_MESSAGE("statement_timeout: " << e.what());
    // The server gave up, not the client: same link, no drop.
    BOOST_TEST(as_int(sync_wait(conn.execute(pg::operation("add").call("add", 1, 1)))[0]) == 2);
    BOOST_TEST(conn.stats().connects == 1u);
    BOOST_TEST(conn.stats().drops == 0u);
}

BOOST_AUTO_TEST_CASE(a_pool_spreads_operations_over_its_connections) {
    auto cfg = test::postgres_test_config();
    cfg.pool_size = 3;
    pg::pool pool(shared_io().executor(), cfg, statements());
    BOOST_TEST(pool.size() == 3u);
    boost::asio::io_context ctx;
    std::mutex m;
    std::set<std::string> pids;
    std::atomic<int> done{0};
    for (int i = 0; i < 300; ++i)
        boost::asio::co_spawn(
            ctx,
            [&]() -> boost::asio::awaitable<void> {
                auto r = co_await pool.execute(pg::operation("pid").call("sleep", 0.01).call("pid"));
                std::lock_guard lock(m);
                pids.insert(std::string(r[1].value(0, 0)));
                ++done;
            },
            boost::asio::detached);
    testing::run_threads(ctx, 2);
    BOOST_TEST(done.load() == 300);
    BOOST_TEST(pids.size() == 3u);  // three server processes served them
    for (std::size_t i = 0; i < 3; ++i) BOOST_TEST(pool.stats(i).operations >= 30u);
    BOOST_TEST(pool.stats().operations == 300u);
}

BOOST_AUTO_TEST_CASE(scripts_run_outside_the_pipeline_and_name_the_failing_line) {
    auto cfg = test::postgres_test_config();
    const std::string table = fresh_table("script");
    auto results = sync_wait(pg::execute_script(shared_io().executor(), cfg, "migrate",
                                                "SELECT pg_advisory_xact_lock(7425);\n"
                                                "CREATE TABLE " +
                                                    table +
                                                    " (id text PRIMARY KEY, n int NOT NULL);\n"
                                                    "INSERT INTO " +
                                                    table +
                                                    " VALUES ('a', 1), ('b', 2);\n"
                                                    "SELECT count(*) FROM " +
                                                    table));
    BOOST_REQUIRE(results.size() == 4u);
    BOOST_TEST(results[2].affected() == 2u);
    BOOST_TEST(as_int(results[3]) == 2);

    // One transaction: a failure rolls back what came before it.
    auto e = expect_failure(pg::execute_script(shared_io().executor(), cfg, "broken",
                                               "INSERT INTO " + table +
                                                   " VALUES ('c', 3);\n"
                                                   "INSERT INTO " +
                                                   table + " VALUES ('d', NULL);\n"));
    BOOST_TEST((e.code() == error::invalid_argument));  // 23502 not_null_violation
    BOOST_TEST(contains(e.what(), backend_of(cfg) + ": broken: ERROR 23502"));
    auto syntax =
        expect_failure(pg::execute_script(shared_io().executor(), cfg, "typo", "SELECT 1;\nSELECT 2;\nSELEC 3;"));
    BOOST_TEST(contains(syntax.what(), "syntax error at or near \"SELEC\" (line 3)"));
    auto after = sync_wait(pg::execute_script(shared_io().executor(), cfg, "count", "SELECT count(*) FROM " + table));
    BOOST_TEST(as_int(after[0]) == 2);

    // Its deadline is the client's.
    const auto started = clock_type::now();
    auto slow = expect_failure(pg::execute_script(shared_io().executor(), cfg, "slow", "SELECT pg_sleep(5)", 300ms));
    BOOST_TEST((slow.code() == error::timeout));
    BOOST_TEST(contains(slow.what(), "slow: no result within 300 ms"));
    BOOST_TEST((clock_type::now() - started < 1500ms));
}

BOOST_AUTO_TEST_CASE(an_unreachable_server_fails_fast_naming_it) {
    auto cfg =
        test::postgres_test_config("postgresql://sessionkit@127.0.0.1:" + std::to_string(test::free_port()) + "/x");
    pg::connection conn(shared_io().executor(), cfg, statements());
    const auto started = clock_type::now();
    auto e = expect_failure(conn.execute(pg::operation("add", "k").call("add", 1, 2)));
    BOOST_TEST((e.code() == error::backend_unavailable));
    BOOST_TEST(contains(e.what(), backend_of(cfg) + ": add 'k': not connected ("));
    BOOST_TEST(contains(e.what(), "Connection refused"));
    BOOST_TEST((clock_type::now() - started < 1s));
    BOOST_TEST_MESSAGE("unreachable: " << e.what());

    auto script = expect_failure(pg::execute_script(shared_io().executor(), cfg, "schema", "SELECT 1"));
    BOOST_TEST((script.code() == error::backend_unavailable));
    BOOST_TEST(contains(script.what(), "Connection refused"));

    auto unknown_host = test::postgres_test_config("postgresql://sessionkit@no-such-host.invalid/x");
    auto dns = expect_failure(pg::execute_script(shared_io().executor(), unknown_host, "schema", "SELECT 1"));
    BOOST_TEST(contains(dns.what(), "cannot resolve 'no-such-host.invalid'"));
}

BOOST_AUTO_TEST_CASE(a_statement_the_server_refuses_to_prepare_is_named) {
    auto set = statements();
    set.push_back({"broken", "SELECT * FROM sktest_no_such_table_at_all", {}});
    pg::connection conn(shared_io().executor(), test::postgres_test_config(), set);
    auto e = expect_failure(conn.execute(pg::operation("add", "k").call("add", 1, 2)));
    BOOST_TEST((e.code() == error::backend_unavailable));
    BOOST_TEST(contains(e.what(), "PREPARE 'broken' failed: ERROR 42P01"));
    BOOST_TEST_MESSAGE("a bad statement: " << e.what());

    BOOST_CHECK_THROW(pg::connection(shared_io().executor(), test::postgres_test_config(),
                                     {{"twice", "SELECT 1", {}}, {"twice", "SELECT 2", {}}}),
                      boost::system::system_error);
}

BOOST_AUTO_TEST_CASE(an_idle_connection_checks_its_health) {
    auto cfg = test::postgres_test_config();
    cfg.health_check_interval = 100ms;
    pg::connection conn(shared_io().executor(), cfg, statements());
    sync_wait(conn.ping());
    std::this_thread::sleep_for(650ms);
    const auto st = conn.stats();
    BOOST_TEST(st.health_checks >= 3u);
    BOOST_TEST(st.connects == 1u);
    BOOST_TEST(st.failed == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(postgres_client_faults)

BOOST_AUTO_TEST_CASE(a_unix_socket_by_encoded_host_and_by_parameter) {
    test::private_postgres server;
    const std::string dir = server.socket_dir().string();
    std::string encoded;
    for (char c : dir) encoded += c == '/' ? std::string("%2F") : std::string(1, c);
    for (const auto& url :
         {"postgresql://sessionkit@" + encoded + ":" + std::to_string(server.port()) + "/sessionkit",
          "postgresql:///sessionkit?user=sessionkit&host=" + dir + "&port=" + std::to_string(server.port())}) {
        auto cfg = test::postgres_test_config(url);
        BOOST_TEST(cfg.is_unix_socket());
        pg::connection conn(shared_io().executor(), cfg, statements());
        auto r = sync_wait(conn.execute(pg::operation("socket").call("setting", "unix_socket_directories")));
        BOOST_TEST(r[0].value(0, 0) == dir);
    }
}

BOOST_AUTO_TEST_CASE(a_restart_fails_what_is_in_flight_naming_postgresql_then_recovers_by_itself) {
    test::private_postgres server;
    auto cfg = test::postgres_test_config(server.url());
    cfg.request_timeout = 3s;
    cfg.pool_size = 2;
    pg::pool pool(shared_io().executor(), cfg, statements());
    sync_wait(pool.ping());

    // Operations in flight on both connections when every backend is killed.
    boost::asio::io_context ctx;
    std::atomic<int> failed_right{0}, other{0};
    std::mutex m;
    std::string one_failure;
    std::atomic<bool> restarted{false};
    std::vector<clock_type::duration> after_restart;
    clock_type::time_point restart_at{};
    for (int i = 0; i < 40; ++i)
        boost::asio::co_spawn(
            ctx,
            [&, i]() -> boost::asio::awaitable<void> {
                try {
                    co_await pool.execute(pg::operation("sleep", "in-flight-" + std::to_string(i)).call("sleep", 2));
                    ++other;
                } catch (const boost::system::system_error& e) {
                    std::lock_guard lock(m);
                    if ((e.code() == error::backend_unavailable || e.code() == error::timeout) &&
                        contains(e.what(), backend_of(cfg)) &&
                        contains(e.what(), "sleep 'in-flight-" + std::to_string(i) + "'"))
                        ++failed_right;
                    if (one_failure.empty()) one_failure = e.what();
                    if (restarted) after_restart.push_back(clock_type::now() - restart_at);
                }
            },
            boost::asio::detached);
    std::thread callers([&] { testing::run_threads(ctx, 1); });
    std::this_thread::sleep_for(300ms);  // all 40 sent
    restart_at = clock_type::now();
    restarted = true;
    server.restart_immediate();
    const auto restart_took = clock_type::now() - restart_at;
    callers.join();
    BOOST_TEST(failed_right.load() == 40);
    BOOST_TEST(other.load() == 0);
    BOOST_TEST_MESSAGE("in flight at the restart: " << one_failure);
    BOOST_TEST_MESSAGE("pg_ctl restart took "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(restart_took).count() << " ms");
    // They failed when the link broke, not at their deadline.
    clock_type::duration latest{};
    for (auto d : after_restart) latest = std::max(latest, d);
    BOOST_TEST(after_restart.size() == 40u);
    BOOST_TEST((latest < 1500ms));
    BOOST_TEST_MESSAGE("the last in-flight operation failed "
                       << std::chrono::duration_cast<std::chrono::milliseconds>(latest).count()
                       << " ms after pg_ctl was started");

    // No restart of ours: the pool reconnects by itself.
    const auto recovering = clock_type::now();
    BOOST_TEST(recovers([&] { sync_wait(pool.execute(pg::operation("add").call("add", 2, 2))); }, 10s));
    BOOST_TEST_MESSAGE(
        "recovered " << std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - recovering).count()
                     << " ms after pg_ctl returned");
    for (int i = 0; i < 20; ++i)
        BOOST_TEST(as_int(sync_wait(pool.execute(pg::operation("add").call("add", i, 1)))[0]) == i + 1);
    // Both connections come back, the idle one too.
    BOOST_TEST(recovers(
        [&] {
            if (pool.stats(0).connects < 2 || pool.stats(1).connects < 2)
                throw boost::system::system_error(make_error_code(error::backend_unavailable));
        },
        5s));
}

BOOST_AUTO_TEST_CASE(a_stopped_backend_makes_the_deadline_fire_and_the_connection_is_replaced) {
    test::private_postgres server;
    auto cfg = test::postgres_test_config(server.url());
    cfg.request_timeout = 500ms;
    pg::connection conn(shared_io().executor(), cfg, statements());
    // The first operation also waits for the connection to open: a slow
    // (sanitized, loaded) machine must not make it miss the short deadline.
    const auto pid =
        static_cast<pid_t>(as_int(sync_wait(conn.execute(pg::operation("pid").call("pid").timeout(30s)))[0]));
    BOOST_REQUIRE(pid > 0);
    test::stop_process(pid);
    struct resume_backend {
        pid_t pid;
        ~resume_backend() { test::continue_process(pid); }
    } guard{pid};

    // Two operations in flight on the stalled backend: both fail at the
    // first one's deadline, with timeout, naming PostgreSQL, the operation
    // and the key.
    boost::asio::io_context ctx;
    std::vector<std::string> failures(2);
    std::vector<clock_type::duration> took(2);
    std::vector<bool> timed_out(2, false);
    for (int i = 0; i < 2; ++i)
        boost::asio::co_spawn(
            ctx,
            [&, i]() -> boost::asio::awaitable<void> {
                const auto started = clock_type::now();
                auto op = pg::operation("add", "stalled-" + std::to_string(i)).call("add", 1, i);
                if (i == 1) op.timeout(2s);
                try {
                    co_await conn.execute(std::move(op));
                } catch (const boost::system::system_error& e) {
                    failures[i] = e.what();
                    timed_out[i] = e.code() == error::timeout;
                }
                took[i] = clock_type::now() - started;
            },
            boost::asio::detached);
    testing::run_threads(ctx, 1);
    for (int i = 0; i < 2; ++i) {
        BOOST_TEST(timed_out[i]);
        BOOST_TEST(contains(failures[i], backend_of(cfg) + ": add 'stalled-" + std::to_string(i) + "'"));
        BOOST_TEST((took[i] >= 450ms && took[i] < 1000ms));
    }
    BOOST_TEST(contains(failures[0], "no result within 500 ms; the connection was dropped"));
    BOOST_TEST(contains(failures[1], "another operation on it got no result within its deadline"));
    BOOST_TEST_MESSAGE("on a stopped backend: " << failures[0]);

    // A new connection, a new backend: no hang. (Like the first, this
    // operation waits for a connection to open: on a loaded CI machine that
    // took longer than the 500 ms meant for the stalled backend.)
    const auto started = clock_type::now();
    const auto next =
        static_cast<pid_t>(as_int(sync_wait(conn.execute(pg::operation("pid").call("pid").timeout(10s)))[0]));
    BOOST_TEST(next != pid);
    BOOST_TEST((clock_type::now() - started < 5s));
    BOOST_TEST(conn.stats().drops == 1u);
    BOOST_TEST(conn.stats().connects == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

// postgres_store's faults and several processes (issue 15), against real
// PostgreSQL servers:
//
//   - a private cluster restarted with `pg_ctl restart -m immediate` under
//     the load of 64 coroutines: what fails, fails within its deadline
//     naming PostgreSQL, the operation and the session; the same store
//     object recovers by itself, and every session it reported created is
//     there afterwards;
//   - a pool connection's backend stopped with SIGSTOP: its operations fail
//     at their deadline with error::timeout, none hangs, the pool replaces
//     the connection;
//   - 2 processes × 200 coroutines acquiring one id: one session, created
//     once;
//   - 3 janitor processes over 10,000 expired sessions: each expired
//     exactly once, by more than one janitor, and no claim ever waited for
//     a row another janitor held (pg_stat_activity sampled meanwhile);
//   - 3 processes opening (migrating) one fresh schema at once;
//   - (disabled: a defect) the lifetime counters count writes that rolled
//     back, and jump after a crash.
//
// The multi-process cases use the harness's server (DATABASE_URL), each on
// a schema of its own. This binary also runs as their child processes:
//   postgres_store_faults_test --child acquire URL SCHEMA ID COROUTINES OUT_FILE DIR
//   postgres_store_faults_test --child janitor URL SCHEMA OUT_FILE DIR
//   postgres_store_faults_test --child migrate URL SCHEMA OUT_FILE DIR
// DIR holds the start barrier: each child creates DIR/<pid>.ready once it
// is set up, and starts when DIR/go exists.
#define BOOST_TEST_MODULE sessionkit_postgres_store_faults
#define BOOST_TEST_NO_MAIN
#include <boost/test/unit_test.hpp>

#include "integration/postgres_support.hpp"
#include "support/recording_sink.hpp"
#include "support/stopped_process.hpp"
#include <sessionkit/janitor.hpp>
#include <sessionkit/registry.hpp>
#include <sessionkit/store/postgres.hpp>
#include <sessionkit/testing/io_threads.hpp>
#include <sessionkit/testing/run.hpp>
#include <sessionkit/testing/store_fixtures.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace sessionkit;
using namespace std::chrono_literals;
using testing::sync_wait;
using steady = std::chrono::steady_clock;
namespace pg = sessionkit::postgres;
namespace fs = std::filesystem;

testing::io_threads& shared_io() {
    static testing::io_threads io(2);
    return io;
}

/// A schema no other case (or earlier run) uses.
std::string fresh_schema(std::string_view what) { return "f_" + std::string(what) + "_" + generate_id().substr(0, 10); }

/// Runs SQL outside the store (what psql would do), as application
/// "sktest_psql" so that it is never taken for one of the store's.
std::vector<pg::result> psql(pg::connection_options cfg, const std::string& sql) {
    cfg.application_name = "sktest_psql";
    return sync_wait(pg::execute_script(shared_io().executor(), std::move(cfg), "psql", sql, 30s));
}

std::int64_t scalar(const pg::connection_options& cfg, const std::string& sql) {
    auto rs = psql(cfg, sql);
    return std::stoll(std::string(rs.back().value(0, 0)));
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

/// How an operation failed: what() and the code (none for an exception
/// that is not a system_error, which no operation should throw).
struct failure {
    std::string what;
    boost::system::error_code code;
};
failure failure_of(const std::exception& e) {
    if (const auto* se = dynamic_cast<const boost::system::system_error*>(&e)) return failure{se->what(), se->code()};
    return failure{e.what(), {}};
}

long long ms(steady::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

std::unique_ptr<postgres_store> open_store(const pg::connection_options& cfg, postgres_store_options o) {
    return sync_wait(postgres_store::open(shared_io().executor(), cfg, std::move(o)));
}

/// A time_point of whole milliseconds (what the store keeps).
time_point now_ms() { return from_unix_ms(to_unix_ms(std::chrono::system_clock::now())); }

// ---- child processes -------------------------------------------------------

pid_t spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (int rc = ::posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ); rc != 0)
        throw std::runtime_error("cannot start " + args[0] + ": " + std::strerror(rc));
    return pid;
}

/// The child's exit code (128 + signal when killed); a child still running
/// after `limit` is killed and reported as 200.
int wait_exit(pid_t pid, std::chrono::seconds limit = 120s) {
    const auto until = steady::now() + limit;
    int status = 0;
    for (;;) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) return 201;
        if (steady::now() > until) {
            ::kill(pid, SIGKILL);
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
            return 200;
        }
        std::this_thread::sleep_for(5ms);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// The application_name of the child processes' connections to `schema`.
std::string child_application(const std::string& schema) { return "sktest_child_" + schema; }

std::string self_exe() { return fs::read_symlink("/proc/self/exe").string(); }

/// A directory for one case's start barrier and child output.
struct scratch_dir {
    fs::path path = fs::temp_directory_path() / ("sktest-pgf-" + generate_id().substr(0, 10));
    scratch_dir() { fs::create_directories(path); }
    ~scratch_dir() {
        std::error_code ignored;
        fs::remove_all(path, ignored);
    }
    std::string str() const { return path.string(); }
};

/// Waits until `n` children said they are ready, then lets them all go at
/// once. False if they were not all ready within 60 s.
bool start_together(const scratch_dir& dir, int n) {
    const auto until = steady::now() + 60s;
    for (;;) {
        int ready = 0;
        for (const auto& entry : fs::directory_iterator(dir.path)) ready += entry.path().extension() == ".ready";
        if (ready >= n) break;
        if (steady::now() > until) return false;
        std::this_thread::sleep_for(5ms);
    }
    std::ofstream{dir.path / "go"}.put('1');
    return true;
}

/// The child's half of start_together.
void wait_for_go(const std::string& dir) {
    std::ofstream{fs::path(dir) / (std::to_string(::getpid()) + ".ready")}.put('1');
    const auto until = steady::now() + 60s;
    while (!fs::exists(fs::path(dir) / "go")) {
        if (steady::now() > until) throw std::runtime_error("no start signal within 60 s");
        std::this_thread::sleep_for(1ms);
    }
}

}  // namespace

using namespace sessionkit::testing::conformance;

BOOST_AUTO_TEST_SUITE(postgres_store_faults)

// ---- 1. a restart under load ------------------------------------------------

BOOST_AUTO_TEST_CASE(a_restart_under_load_fails_within_the_deadline_naming_postgresql_and_recovers_by_itself) {
    test::private_postgres server;
    auto cfg = test::postgres_test_config(server.url());
    cfg.request_timeout = 1500ms;  // statement_timeout: 1200 ms
    cfg.pool_size = 2;
    // The private cluster runs with synchronous_commit = off, under which a
    // crash loses the last commits by design (the WAL writer had not
    // written them yet): this case checks that what the store reported
    // created survives a crash, so commits must be durable.
    psql(cfg, "ALTER SYSTEM SET synchronous_commit = on");
    psql(cfg, "SELECT pg_reload_conf()");
    BOOST_REQUIRE(psql(cfg, "SHOW synchronous_commit")[0].value(0, 0) == "on");

    postgres_store_options o;
    o.schema = fresh_schema("restart");
    auto store = open_store(cfg, o);
    const std::string backend = "PostgreSQL " + cfg.describe();

    std::mutex m;
    std::vector<std::string> created;
    std::vector<std::string> wrong;  // failures that do not say what they should
    std::string one_failure;
    int ok = 0, failed = 0, ok_after_restart = 0;
    steady::duration slowest_failure{}, slowest_ok{};
    std::atomic<bool> stop{false};
    std::optional<steady::time_point> restart_done;  // under m
    steady::time_point first_ok_after{};

    // One operation's outcome: ok, or how it failed.
    auto record = [&](const char* op, const std::string& id, steady::time_point started,
                      const std::optional<failure>& outcome) {
        const auto ended = steady::now();
        const auto took = ended - started;
        std::lock_guard lock(m);
        if (!outcome) {
            ++ok;
            slowest_ok = std::max(slowest_ok, took);
            if (restart_done && started > *restart_done && ok_after_restart++ == 0) first_ok_after = ended;
            return;
        }
        ++failed;
        slowest_failure = std::max(slowest_failure, took);
        if (one_failure.empty()) one_failure = outcome->what;
        const bool code_ok = outcome->code == error::backend_unavailable || outcome->code == error::timeout;
        if (!code_ok || !contains(outcome->what, backend + ": " + op + " '" + id + "'"))
            if (wrong.size() < 10) wrong.push_back(outcome->what + " [" + outcome->code.message() + "]");
    };

    const time_point base = now_ms();
    boost::asio::io_context ctx;
    for (int w = 0; w < 64; ++w)
        boost::asio::co_spawn(
            ctx,
            [&, w]() -> awaitable<void> {
                for (int n = 0; !stop.load(); ++n) {
                    const std::string id = "w" + std::to_string(w) + "-" + std::to_string(n);
                    const session rec = make_record(id, "load", 1h, std::nullopt, base);
                    std::optional<failure> failed_with;
                    auto started = steady::now();
                    bool made = false;
                    try {
                        auto r = co_await store->create(rec);
                        made = r.created;
                        if (!made) throw std::logic_error("create found session '" + id + "' there already");
                    } catch (const std::exception& e) {
                        failed_with = failure_of(e);
                    }
                    record("create", id, started, failed_with);
                    if (!made) continue;
                    {
                        std::lock_guard lock(m);
                        created.push_back(id);
                    }
                    failed_with.reset();
                    started = steady::now();
                    try {
                        auto t = co_await store->touch(id, base + 1s);
                        if (!t) throw std::logic_error("touch found no session '" + id + "'");
                    } catch (const std::exception& e) {
                        failed_with = failure_of(e);
                    }
                    record("touch", id, started, failed_with);
                    failed_with.reset();
                    started = steady::now();
                    try {
                        auto g = co_await store->get(id);
                        if (!g) throw std::logic_error("get found no session '" + id + "'");
                    } catch (const std::exception& e) {
                        failed_with = failure_of(e);
                    }
                    record("get", id, started, failed_with);
                }
            },
            boost::asio::detached);
    std::thread callers([&] { testing::run_threads(ctx, 1); });

    std::this_thread::sleep_for(1s);  // under load
    int ok_before = 0;
    {
        std::lock_guard lock(m);
        ok_before = ok;
    }
    const auto restart_began = steady::now();
    server.restart_immediate();
    const auto restart_returned = steady::now();
    {
        std::lock_guard lock(m);
        restart_done = restart_returned;
    }
    // Load goes on until the store has served for a while again (or gives
    // up after 10 s).
    for (auto until = steady::now() + 10s; steady::now() < until;) {
        {
            std::lock_guard lock(m);
            if (ok_after_restart >= 2000) break;
        }
        std::this_thread::sleep_for(50ms);
    }
    stop = true;
    callers.join();

    BOOST_TEST_MESSAGE("restart under load: "
                       << ok << " operations ok (" << ok_before << " before the restart, " << ok_after_restart
                       << " begun after pg_ctl returned), " << failed << " failed; the slowest failure took "
                       << ms(slowest_failure) << " ms, the slowest success " << ms(slowest_ok)
                       << " ms; pg_ctl restart took " << ms(restart_returned - restart_began) << " ms");
    BOOST_TEST_MESSAGE("a failure: " << one_failure);
    BOOST_TEST(ok_before > 0);
    BOOST_TEST(failed > 0);  // else the restart was not seen and the case proved nothing
    for (const auto& w : wrong) BOOST_ERROR("a failure that does not name PostgreSQL, the operation and the id: " << w);
    // Within their deadline (request_timeout), give or take a loaded machine.
    BOOST_TEST(ms(slowest_failure) <= ms(cfg.request_timeout) + 500);
    // Recovered by itself: the same store object served again.
    BOOST_TEST(ok_after_restart > 0);
    if (ok_after_restart > 0)
        BOOST_TEST_MESSAGE("the first operation begun after pg_ctl returned succeeded "
                           << ms(first_ok_after - restart_returned) << " ms after it returned");
    BOOST_TEST(store->pool().stats().connects >= 4u);

    // Every session reported created is there, read through the same store.
    std::vector<std::string> missing;
    std::atomic<std::size_t> next{0};
    std::atomic<int> read_errors{0};
    boost::asio::io_context readers;
    for (int r = 0; r < 16; ++r)
        boost::asio::co_spawn(
            readers,
            [&]() -> awaitable<void> {
                for (std::size_t i; (i = next++) < created.size();) {
                    const std::string id = created[i];
                    try {
                        auto s = co_await store->get(id);
                        if (!s) {
                            std::lock_guard lock(m);
                            missing.push_back(id);
                        }
                    } catch (const std::exception& e) {
                        if (read_errors++ == 0) std::cerr << "read failed: " << e.what() << '\n';
                    }
                }
            },
            boost::asio::detached);
    testing::run_threads(readers, 1);
    BOOST_TEST_MESSAGE(created.size() << " sessions reported created, " << missing.size()
                                      << " missing after the restart");
    BOOST_TEST(!created.empty());
    BOOST_TEST(read_errors.load() == 0);
    BOOST_TEST(missing.empty());
    for (std::size_t i = 0; i < std::min<std::size_t>(missing.size(), 5); ++i) BOOST_ERROR("missing: " << missing[i]);
}

// ---- 2. a stalled backend ---------------------------------------------------

BOOST_AUTO_TEST_CASE(a_stopped_backend_times_its_operations_out_at_the_deadline_and_the_pool_replaces_it) {
    test::private_postgres server;
    auto cfg = test::postgres_test_config(server.url());
    cfg.request_timeout = 1000ms;
    cfg.pool_size = 2;
    cfg.application_name = "sktest_stall_" + generate_id().substr(0, 8);
    postgres_store_options o;
    o.schema = fresh_schema("stall");
    auto store = open_store(cfg, o);
    const std::string backend = "PostgreSQL " + cfg.describe();
    const time_point base = now_ms();
    for (int i = 0; i < 8; ++i) create_ok(*store, make_record("s" + std::to_string(i), "o", 1h, std::nullopt, base));

    // The pool's backends, found by its application_name (the migration's
    // connection, which had it too, is closed: wait until exactly the
    // pool's are left, and stay).
    auto backends = [&] {
        auto rs = psql(cfg, "SELECT pid FROM pg_stat_activity WHERE application_name = '" + cfg.application_name +
                                "' ORDER BY pid");
        std::vector<pid_t> pids;
        for (std::size_t r = 0; r < rs[0].rows(); ++r) pids.push_back(std::stoi(std::string(rs[0].value(r, 0))));
        return pids;
    };
    std::vector<pid_t> before, seen;
    for (auto until = steady::now() + 10s; steady::now() < until;) {
        // The same pool_size backends twice, 100 ms apart.
        before = std::exchange(seen, backends());
        if (seen.size() == cfg.pool_size && before == seen) break;
        std::this_thread::sleep_for(100ms);
    }
    BOOST_REQUIRE_EQUAL(before.size(), cfg.pool_size);
    const pid_t stalled = before.front();

    test::stop_process(stalled);
    struct resume_backend {
        pid_t pid;
        ~resume_backend() { test::continue_process(pid); }
    } guard{stalled};

    // 40 operations at once, spread over both connections: those on the
    // stopped backend fail at the deadline, the others succeed.
    constexpr int operations = 40;
    std::mutex m;
    int ok = 0, timed_out = 0;
    std::vector<std::string> wrong;
    std::string one_timeout;
    steady::duration fastest_timeout = 1h, slowest{};
    std::atomic<int> done{0};
    boost::asio::io_context ctx;
    for (int i = 0; i < operations; ++i)
        boost::asio::co_spawn(
            ctx,
            [&, i]() -> awaitable<void> {
                const std::string id = "s" + std::to_string(i % 8);
                const bool touching = i % 2 == 1;
                const auto started = steady::now();
                std::optional<failure> failed_with;
                try {
                    if (touching) {
                        auto t = co_await store->touch(id, base + 1s);
                        if (!t) throw std::logic_error("touch found no session");
                    } else {
                        auto g = co_await store->get(id);
                        if (!g) throw std::logic_error("get found no session");
                    }
                } catch (const std::exception& e) {
                    failed_with = failure_of(e);
                }
                const auto took = steady::now() - started;
                std::lock_guard lock(m);
                slowest = std::max(slowest, took);
                if (!failed_with) {
                    ++ok;
                } else if (failed_with->code == error::timeout &&
                           contains(failed_with->what, backend + ": " + (touching ? "touch '" : "get '") + id + "'")) {
                    ++timed_out;
                    fastest_timeout = std::min(fastest_timeout, took);
                    if (one_timeout.empty()) one_timeout = failed_with->what;
                } else {
                    wrong.push_back(failed_with->what + " [" + failed_with->code.message() + "]");
                }
                ++done;
            },
            boost::asio::detached);
    std::thread callers([&] { testing::run_threads(ctx, 1); });
    // None hangs: all are done well before twice the deadline.
    const auto waited_from = steady::now();
    while (done.load() < operations && steady::now() - waited_from < 10s) std::this_thread::sleep_for(5ms);
    const bool all_done = done.load() == operations;
    BOOST_TEST(all_done, "only " << done.load() << " of " << operations << " operations ended within 10 s");
    if (!all_done) test::continue_process(stalled);  // let the rest end, so that the thread can be joined
    callers.join();

    BOOST_TEST_MESSAGE("on a stopped backend: " << ok << " ok, " << timed_out << " timed out (the first after "
                                                << ms(fastest_timeout) << " ms), the slowest took " << ms(slowest)
                                                << " ms");
    BOOST_TEST_MESSAGE("a timeout: " << one_timeout);
    BOOST_TEST(timed_out > 0);  // some were on the stopped backend
    BOOST_TEST(ok > 0);         // the other connection served the rest
    for (const auto& w : wrong) BOOST_ERROR("not a timeout naming PostgreSQL, the operation and the id: " << w);
    // At their deadline: not before it, and not long after.
    if (timed_out > 0) BOOST_TEST(ms(fastest_timeout) >= ms(cfg.request_timeout) - 50);
    BOOST_TEST(ms(slowest) <= ms(cfg.request_timeout) + 700);

    // The pool replaced the connection: later operations succeed, at once,
    // on backends other than the stopped one (still stopped).
    const auto later = steady::now();
    for (int i = 0; i < 20; ++i) {
        const std::string id = "s" + std::to_string(i % 8);
        BOOST_TEST(sync_wait(store->touch(id, base + 2s)).has_value());
        BOOST_TEST(sync_wait(store->get(id)).has_value());
    }
    BOOST_TEST_MESSAGE("40 operations after the stall took " << ms(steady::now() - later) << " ms");
    BOOST_TEST(ms(steady::now() - later) < ms(cfg.request_timeout));
    BOOST_TEST(store->pool().stats().drops >= 1u);
    auto after = backends();
    after.erase(std::remove(after.begin(), after.end(), stalled), after.end());
    BOOST_TEST(after.size() == cfg.pool_size);
    BOOST_TEST((std::find(after.begin(), after.end(), before.back()) != after.end()));  // the healthy one stayed
}

// ---- 3. two processes acquiring one id -------------------------------------

BOOST_AUTO_TEST_CASE(two_processes_of_200_coroutines_acquiring_one_id_make_one_session) {
    auto cfg = test::postgres_test_config();
    postgres_store_options o;
    o.schema = fresh_schema("acquire");
    o.stats_max_age = 0ms;
    auto store = open_store(cfg, o);  // the schema exists before the children start

    scratch_dir dir;
    std::vector<pid_t> children;
    std::vector<std::string> outputs;
    for (int i = 0; i < 2; ++i) {
        outputs.push_back((dir.path / ("acquire" + std::to_string(i) + ".out")).string());
        children.push_back(spawn({self_exe(), "--child", "acquire", test::database_url(), o.schema, "the-one", "200",
                                  outputs.back(), dir.str()}));
    }
    BOOST_TEST(start_together(dir, 2));
    for (auto pid : children) BOOST_TEST(wait_exit(pid) == 0);
    // Each child wrote how many of its acquires created the session.
    int created = 0;
    std::vector<int> per_process;
    for (const auto& path : outputs) {
        std::ifstream in(path);
        int n = -1;
        BOOST_TEST(static_cast<bool>(in >> n), "no count from " << path);
        per_process.push_back(n);
        created += std::max(n, 0);
    }
    BOOST_TEST(created == 1);
    auto st = sync_wait(store->stats());
    BOOST_TEST(st.created_total == 1u);
    BOOST_TEST(st.sessions == 1u);
    BOOST_TEST(scalar(cfg, "SELECT count(*) FROM \"" + o.schema + "\".sessions") == 1);
    // One create, then one touch per other acquire: each of the 400 landed
    // once.
    auto s = sync_wait(store->get("the-one"));
    BOOST_REQUIRE(s);
    BOOST_TEST(s->version == 400u);
    BOOST_TEST_MESSAGE("400 acquires over 2 processes: " << created << " created (" << per_process[0] << " + "
                                                         << per_process[1] << "), version " << s->version);
}

// ---- 4. three janitor processes ---------------------------------------------

BOOST_AUTO_TEST_CASE(three_janitor_processes_expire_each_of_10000_sessions_exactly_once) {
    auto cfg = test::postgres_test_config();
    cfg.pool_size = 4;
    postgres_store_options o;
    o.schema = fresh_schema("janitor");
    o.stats_max_age = 0ms;
    auto store = open_store(cfg, o);

    // 10,000 sessions, all past their idle deadline.
    constexpr int sessions = 10'000;
    const time_point past = now_ms() - 10s;
    const auto filling = steady::now();
    std::atomic<int> next{0}, fill_errors{0};
    boost::asio::io_context ctx;
    for (int c = 0; c < 64; ++c)
        boost::asio::co_spawn(
            ctx,
            [&]() -> awaitable<void> {
                for (int i; (i = next++) < sessions;) {
                    const session rec = make_record("exp-" + std::to_string(i), "o", 1s, std::nullopt, past);
                    try {
                        auto r = co_await store->create(rec);
                        if (!r.created) ++fill_errors;
                    } catch (const std::exception& e) {
                        if (fill_errors++ == 0) std::cerr << "create failed: " << e.what() << '\n';
                    }
                }
            },
            boost::asio::detached);
    testing::run_threads(ctx, 1);
    BOOST_REQUIRE_EQUAL(fill_errors.load(), 0);
    BOOST_TEST_MESSAGE(sessions << " sessions created in " << ms(steady::now() - filling) << " ms");

    // The three start on a barrier, so that they sweep one due set at once.
    scratch_dir dir;
    std::vector<std::string> outputs;
    std::vector<pid_t> children;
    for (int i = 0; i < 3; ++i) {
        outputs.push_back((dir.path / ("janitor" + std::to_string(i) + ".out")).string());
        children.push_back(
            spawn({self_exe(), "--child", "janitor", test::database_url(), o.schema, outputs.back(), dir.str()}));
    }
    // While they sweep, pg_stat_activity is sampled for their backends
    // waiting on a lock. SKIP LOCKED means a claim never waits for a row
    // another janitor holds (wait events transactionid and tuple; extend,
    // for a page of the table, is not about rows); a claim is known by its
    // SQL (the store's own text, as far as pg_stat_activity keeps it).
    std::string claim_sql;
    for (const auto& st : postgres_store_sql::statements(o.schema))
        if (st.name == "claim_expired") claim_sql = st.sql.substr(0, 200);
    BOOST_REQUIRE(!claim_sql.empty());
    pg::pool sampler(
        shared_io().executor(), cfg,
        pg::statement_set{
            {"waits",
             "SELECT count(*) FILTER (WHERE wait_event IN ('transactionid', 'tuple') AND left(query, 200) = $2),"
             " count(*) FILTER (WHERE wait_event_type = 'Lock'), count(*),"
             " coalesce(string_agg(wait_event || ': ' || left(query, 60), ' | ') FILTER"
             " (WHERE wait_event_type = 'Lock'), ''), count(*) FILTER (WHERE left(query, 200) = $2)"
             " FROM pg_stat_activity"
             " WHERE application_name = $1",
             {}}});
    sync_wait(sampler.ping());
    std::atomic<bool> swept{false};
    int samples = 0, samples_with_janitors = 0, samples_with_claims = 0, claim_waits = 0, other_waits = 0;
    std::string waiting;
    BOOST_TEST(start_together(dir, 3));  // each has opened its store (and so migrated) by now
    const auto sweeping = steady::now();
    std::thread sampling([&] {
        while (!swept.load()) {
            try {
                auto rs = sync_wait(
                    sampler.execute(pg::operation("waits").call("waits", child_application(o.schema), claim_sql)));
                ++samples;
                samples_with_janitors += rs[0].value(0, 2) != "0";
                samples_with_claims += rs[0].value(0, 4) != "0";
                const int claims = std::stoi(std::string(rs[0].value(0, 0)));
                const int all = std::stoi(std::string(rs[0].value(0, 1)));
                claim_waits += claims;
                other_waits += all - claims;
                if (all > 0 && waiting.empty()) waiting = std::string(rs[0].value(0, 3));
            } catch (const std::exception& e) {
                std::cerr << "sampling failed: " << e.what() << '\n';
            }
            std::this_thread::sleep_for(1ms);
        }
    });
    for (auto pid : children) BOOST_TEST(wait_exit(pid) == 0);
    swept = true;
    sampling.join();
    BOOST_TEST_MESSAGE("three janitors swept " << sessions << " sessions in " << ms(steady::now() - sweeping) << " ms");
    BOOST_TEST_MESSAGE(samples << " samples of pg_stat_activity (" << samples_with_janitors << " saw janitors, "
                               << samples_with_claims
                               << " a claim as a janitor's last statement): janitor backends seen waiting on a lock "
                               << claim_waits << " times for a row in a claim, " << other_waits << " times otherwise"
                               << (waiting.empty() ? "" : " (") << waiting << (waiting.empty() ? "" : ")"));
    // Else the sampling saw nothing, or did not know a claim, and proves nothing.
    BOOST_TEST(samples_with_claims > 10);
    BOOST_TEST(claim_waits == 0);

    std::map<std::string, int> expired;
    std::vector<int> per_process;
    for (const auto& path : outputs) {
        std::ifstream in(path);
        std::string id;
        int n = 0;
        while (in >> id) ++expired[id], ++n;
        per_process.push_back(n);
    }
    BOOST_TEST(expired.size() == std::size_t{sessions});
    int twice = 0;
    for (const auto& [id, n] : expired)
        if (n != 1 && twice++ < 10) BOOST_ERROR("session " << id << " expired " << n << " times");
    BOOST_TEST(twice == 0);
    BOOST_TEST_MESSAGE("expired per process: " << per_process[0] << ", " << per_process[1] << ", " << per_process[2]
                                               << "; sessions expired more than once: " << twice);
    BOOST_TEST(std::count_if(per_process.begin(), per_process.end(), [](int n) { return n > 0; }) >= 2,
               "the janitors did not overlap: one of them expired everything");
    auto st = sync_wait(store->stats());
    BOOST_TEST(st.expired_total == std::uint64_t{sessions});
    BOOST_TEST(st.count(session_status::terminated) == std::uint64_t{sessions});
    BOOST_TEST(st.sessions == std::uint64_t{sessions});
}

// ---- 5. a migration raced by three processes ---------------------------------

BOOST_AUTO_TEST_CASE(three_processes_migrating_one_fresh_schema_at_once_all_succeed_and_apply_it_once) {
    auto cfg = test::postgres_test_config();
    // Rounds, each on a fresh schema: a race lost by luck in one round is
    // unlikely to be lost in all of them.
    constexpr int rounds = 3;
    for (int round = 0; round < rounds; ++round) BOOST_TEST_CONTEXT("round " << round) {
            const std::string schema = fresh_schema("migrate");
            scratch_dir dir;
            std::vector<pid_t> children;
            std::vector<std::string> outputs;
            for (int i = 0; i < 3; ++i) {
                outputs.push_back((dir.path / ("migrate" + std::to_string(i) + ".out")).string());
                children.push_back(
                    spawn({self_exe(), "--child", "migrate", test::database_url(), schema, outputs.back(), dir.str()}));
            }
            BOOST_TEST(start_together(dir, 3));
            for (auto pid : children) BOOST_TEST(wait_exit(pid) == 0);

            auto rs = psql(cfg, "SELECT version, count(*) FROM \"" + schema +
                                    "\".schema_migrations GROUP BY version ORDER BY version");
            BOOST_REQUIRE_EQUAL(rs[0].rows(), std::size_t{postgres_schema::latest_version});
            for (std::size_t r = 0; r < rs[0].rows(); ++r) {
                BOOST_TEST(rs[0].value(r, 0) == std::to_string(r + 1));
                BOOST_TEST(rs[0].value(r, 1) == "1");
            }
            // The store works from each: every child wrote a session, and a
            // fourth instance reads all three.
            postgres_store_options o;
            o.schema = schema;
            auto store = open_store(cfg, o);
            std::set<std::string> written;
            for (const auto& path : outputs) {
                std::ifstream in(path);
                std::string id;
                while (in >> id) written.insert(id);
            }
            BOOST_TEST(written.size() == 3u);
            for (const auto& id : written) BOOST_TEST(sync_wait(store->get(id)).has_value());
            BOOST_TEST(page_all(*store, list_query{}).size() == 3u);
        }
}

BOOST_AUTO_TEST_SUITE_END()

// ---- a defect: the lifetime counters count what did not happen ---------------
//
// created_total and terminated_total are sequences (schema.hpp: "no hot
// row"), and a sequence is not transactional: a write that takes its
// number with nextval and then rolls back leaves the count raised. The
// create and update statements (statements.hpp) take the number in their
// last SELECT before outbox_append runs, so a write the full outbox refuses
// (SK001, rolled back) is counted anyway. And PostgreSQL WAL-logs a
// sequence 32 values ahead of what it hands out: after a crash the count
// jumps by up to 32 creations that never happened. Disabled so that ctest
// stays green until it is fixed; run it with
//   --run_test=postgres_store_defects/lifetime_counters_count_neither_refused_writes_nor_a_crash
BOOST_AUTO_TEST_SUITE(postgres_store_defects)

BOOST_AUTO_TEST_CASE(lifetime_counters_count_neither_refused_writes_nor_a_crash) {
    const time_point base = now_ms();
    {
        // An outbox of one event per partition that refuses writes when full.
        auto cfg = test::postgres_test_config();
        postgres_store_options o;
        o.schema = fresh_schema("counts");
        o.stats_max_age = 0ms;
        o.outbox_partitions = 1;
        o.outbox = outbox_options{};
        o.outbox->max_events = 1;
        o.outbox->overflow = outbox_overflow::refuse_writes;
        auto store = open_store(cfg, o);
        auto made = sync_wait(store->create(make_record("first", "o", 1h, std::nullopt, base),
                                            std::vector<event>{make_event(event_type::created, "first", base)}));
        BOOST_REQUIRE(made.created);
        // The outbox is full: this create is refused and rolled back...
        BOOST_CHECK_THROW(
            sync_wait(store->create(make_record("refused", "o", 1h, std::nullopt, base),
                                    std::vector<event>{make_event(event_type::created, "refused", base)})),
            boost::system::system_error);
        BOOST_TEST(!sync_wait(store->get("refused")).has_value());
        // ...and so is this transition into a final status.
        session ended = made.record;
        ended.status = session_status::terminated;
        ended.ended_at = base;
        ended.end_reason = "deleted";
        BOOST_CHECK_THROW(
            sync_wait(store->update(ended, made.record.version,
                                    std::vector<event>{make_event(event_type::terminated, "first", base)})),
            boost::system::system_error);
        BOOST_TEST(sync_wait(store->get("first"))->status == session_status::active);
        auto st = sync_wait(store->stats());
        BOOST_TEST_MESSAGE("after a refused create and a refused termination: "
                           << st.sessions << " session, created_total " << st.created_total << ", terminated_total "
                           << st.terminated_total);
        BOOST_TEST(st.sessions == 1u);
        BOOST_TEST(st.created_total == 1u);     // is 2
        BOOST_TEST(st.terminated_total == 0u);  // is 1
    }
    {
        // A crash after 10 creations.
        test::private_postgres server;
        auto cfg = test::postgres_test_config(server.url());
        psql(cfg, "ALTER SYSTEM SET synchronous_commit = on");
        psql(cfg, "SELECT pg_reload_conf()");
        postgres_store_options o;
        o.schema = fresh_schema("crash");
        o.stats_max_age = 0ms;
        auto store = open_store(cfg, o);
        for (int i = 0; i < 10; ++i)
            create_ok(*store, make_record("c" + std::to_string(i), "o", 1h, std::nullopt, base));
        server.restart_immediate();
        std::optional<store_stats> st;
        for (auto until = steady::now() + 10s; !st && steady::now() < until;) {
            try {
                st = sync_wait(store->stats());
            } catch (const boost::system::system_error&) {
                std::this_thread::sleep_for(50ms);
            }
        }
        BOOST_REQUIRE(st);
        BOOST_TEST_MESSAGE("after 10 creations and a crash: " << st->sessions << " sessions, created_total "
                                                              << st->created_total);
        BOOST_TEST(st->sessions == 10u);
        BOOST_TEST(st->created_total == 10u);  // up to 42
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ---- the child processes' bodies --------------------------------------------

namespace {

/// Opens the store from another process (postgres_store::open: migrates if
/// needed), with a pool of 4, as child_application(schema).
std::unique_ptr<postgres_store> child_store(testing::io_threads& io, const std::string& url,
                                            const std::string& schema) {
    auto cfg = test::postgres_test_config(url);
    cfg.application_name = child_application(schema);
    cfg.pool_size = 4;
    cfg.request_timeout = 5s;
    postgres_store_options o;
    o.schema = schema;
    o.stats_max_age = 0ms;
    return sync_wait(postgres_store::open(io.executor(), cfg, o));
}

/// Acquires one id from `coroutines` coroutines on 2 threads, and writes
/// to `out` how many of them created it; 0 when every acquire worked.
int child_acquire(const std::string& url, const std::string& schema, const std::string& id, int coroutines,
                  const std::string& out, const std::string& dir) {
    testing::io_threads io(2);
    try {
        auto store = child_store(io, url, schema);
        sync_wait(store->ping());
        session_registry<postgres_store> registry(*store);
        wait_for_go(dir);
        boost::asio::io_context ctx;
        std::atomic<int> created{0}, failed{0};
        for (int i = 0; i < coroutines; ++i)
            boost::asio::co_spawn(
                ctx,
                [&]() -> awaitable<void> {
                    try {
                        const std::string mine = id;
                        auto r = co_await registry.acquire(mine);
                        if (r.created) ++created;
                    } catch (const std::exception& e) {
                        if (failed++ == 0) std::cerr << "acquire failed: " << e.what() << '\n';
                    }
                },
                boost::asio::detached);
        testing::run_threads(ctx, 2);
        std::ofstream f(out);
        f << created.load() << '\n';
        return failed ? 1 : f ? 0 : 2;
    } catch (const std::exception& e) {
        std::cerr << "acquire child failed: " << e.what() << '\n';
        return 1;
    }
}

/// Sweeps until no session is live, writing the id of every session this
/// process expired to `out`.
int child_janitor(const std::string& url, const std::string& schema, const std::string& out, const std::string& dir) {
    testing::io_threads io(2);
    try {
        auto store = child_store(io, url, schema);
        test::recording_sink sink;
        basic_session_registry<postgres_store, system_clock_policy, test::recording_sink> registry(*store, {}, {},
                                                                                                   sink);
        janitor_options jo;
        jo.batch_size = 50;  // small batches: the three processes interleave
        jo.warning_window = 0s;
        janitor jan(registry, jo);
        sync_wait(store->ping());  // connected before the start
        wait_for_go(dir);
        bool drained = false;
        for (int i = 0; i < 400 && !drained; ++i) {
            sync_wait(jan.sweep_once());
            auto st = sync_wait(store->stats());
            drained = st.count(session_status::active) == 0 && st.count(session_status::stopping) == 0;
        }
        if (!drained) throw std::runtime_error("sessions still live after 400 sweeps");
        std::ofstream f(out);
        for (const auto& [id, n] : sink.per_session(event_type::expired))
            for (int k = 0; k < n; ++k) f << id << '\n';
        return f ? 0 : 2;
    } catch (const std::exception& e) {
        std::cerr << "janitor child failed: " << e.what() << '\n';
        return 1;
    }
}

/// Opens (and so migrates) the schema at the start signal, then writes and
/// reads a session of its own, whose id it writes to `out`.
int child_migrate(const std::string& url, const std::string& schema, const std::string& out, const std::string& dir) {
    testing::io_threads io(2);
    try {
        wait_for_go(dir);
        auto store = child_store(io, url, schema);
        const std::string id = "from-" + std::to_string(::getpid());
        auto made = sync_wait(store->create(make_record(id, "o", 1h, std::nullopt, now_ms())));
        if (!made.created) throw std::runtime_error("session '" + id + "' not created");
        if (!sync_wait(store->get(id))) throw std::runtime_error("session '" + id + "' not read back");
        std::ofstream f(out);
        f << id << '\n';
        return f ? 0 : 2;
    } catch (const std::exception& e) {
        std::cerr << "migrating child failed: " << e.what() << '\n';
        return 1;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 3 && std::string_view(argv[1]) == "--child") {
        const std::string_view mode = argv[2];
        if (mode == "acquire" && argc == 9)
            return child_acquire(argv[3], argv[4], argv[5], std::atoi(argv[6]), argv[7], argv[8]);
        if (mode == "janitor" && argc == 7) return child_janitor(argv[3], argv[4], argv[5], argv[6]);
        if (mode == "migrate" && argc == 7) return child_migrate(argv[3], argv[4], argv[5], argv[6]);
        std::cerr << "unknown child mode\n";
        return 120;
    }
    if (const char* url = std::getenv("DATABASE_URL"); !url || !*url) {
        if (std::getenv("CI")) {
            std::cerr << "FAIL: DATABASE_URL not set (PostgreSQL was not started)\n";
            return 1;
        }
        std::cerr << "SKIP: DATABASE_URL not set (PostgreSQL not installed?)\n";
        return 77;
    }
    return boost::unit_test::unit_test_main([] { return true; }, argc, argv);
}

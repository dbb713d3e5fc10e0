// bench/postgres_store_bench.cpp — postgres_store against pgbench running
// the same prepared statements on the same server, in the same run (only
// ratios hold on a noisy machine).
//
//   postgres_store_bench DATABASE_URL [--quick] [--pool N] [--seconds S] [--rounds R]
//                        [--no-sweep] [--sweep-only] [--pgbench PATH] [--cases LIST] [--keep] [--verbose]
//
// N defaults to 4 (pgbench -c 4 -j 4), S to 4 seconds per phase, R to 3.
//
// Everything goes into schemas of its own ("pgb_<random>..."), dropped at
// the end. bench/run starts a private cluster for it (tools/services/postgres).
//
// Cases (doc/benchmarks.md, "postgres_store"):
//   create_vs_pgbench  our create (64 coroutines over a pool of N pipelined
//                      connections) over pgbench -M prepared -c N -j N
//                      running the very SQL the store prepares for create
//                      (the INSERT ... ON CONFLICT and the get after it, sent
//                      together with one Sync as the store sends them), each
//                      from the same table of 20,000 sessions, analysed
//   get_vs_pgbench     our get over pgbench of the get statement, random ids
//                      among sessions the store created beforehand
//   touch_vs_pgbench   our touch over pgbench of the touch statement, same ids
//   sweep_1M_vs_100k   claim_expired in batches of 1000 until none is due:
//                      10k due among 1M sessions over the same 10k among 100k
// Rounds interleave ours and pgbench (the order alternating), the best of
// each side counts (three rounds; the sweep, five). Beside each throughput
// it prints the CPU that the server (postmaster and its children, from
// /proc) and each client spent per operation, how busy the machine's cores
// were, and `*_cpu_bound_ratio`: pgbench's CPU per operation over ours, the
// ratio to expect when both keep every core busy (on 2 cores they do).
//
// --cases create,get,touch picks cases, --keep leaves the schemas and the
// pgbench scripts in place, --verbose prints every phase (for investigating).
#include <sessionkit/store/postgres.hpp>
#include <sessionkit/store/postgres/statements.hpp>  // the SQL pgbench runs

#include "bench_format.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace pg = sessionkit::postgres;
using namespace sessionkit;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view bench_name = "postgres_store";
constexpr int coroutines = 64;
bool verbose = false;  // --verbose: every phase on stderr (the rounds' spread)

template <class T>
T wait(asio::io_context& ctx, awaitable<T> op) {
    auto fut = asio::co_spawn(ctx, std::move(op), asio::use_future);
    ctx.restart();
    while (fut.wait_for(0s) != std::future_status::ready) ctx.run_one();
    return fut.get();
}

/// One statement (or a script) on a connection of its own, outside the pool.
std::vector<pg::result> sql(asio::io_context& ctx, const pg::connection_options& cfg, const std::string& text,
                            std::chrono::milliseconds timeout = 600s) {
    return wait(ctx, pg::execute_script(ctx.get_executor(), cfg, "bench", text, timeout));
}

// ---- CPU accounting -----------------------------------------------------------

double ticks_to_s(long long ticks) {
    static const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
    return static_cast<double>(ticks) / hz;
}

/// /proc/<pid>/stat after the command name: fields 3.. (state, ppid, ...).
std::vector<std::string> stat_fields(int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(f, line)) return {};
    const auto close = line.rfind(')');
    if (close == std::string::npos) return {};
    std::istringstream rest(line.substr(close + 2));
    std::vector<std::string> out;
    for (std::string w; rest >> w;) out.push_back(w);
    return out;
}

/// The CPU time of the PostgreSQL server: the postmaster, its children
/// alive now (backends, autovacuum, writers) and the ones it has reaped.
struct server_cpu {
    int postmaster = 0;  // 0: not on this machine, figures unknown

    double seconds() const {
        if (postmaster == 0) return 0;
        // A child reaped while the children are read moves its time into
        // the postmaster's cutime: read it before and after, until equal.
        for (;;) {
            const long long before = own_ticks();
            long long ticks = before;
            if (DIR* d = ::opendir("/proc")) {
                while (auto* e = ::readdir(d)) {
                    const int pid = std::atoi(e->d_name);
                    if (pid <= 0 || pid == postmaster) continue;
                    auto f = stat_fields(pid);
                    if (f.size() < 13 || std::stoi(f[1]) != postmaster) continue;
                    ticks += std::stoll(f[11]) + std::stoll(f[12]);
                }
                ::closedir(d);
            }
            if (own_ticks() == before) return ticks_to_s(ticks);
        }
    }

private:
    /// utime, stime, cutime, cstime: fields 14..17 (11..14 here).
    long long own_ticks() const {
        auto own = stat_fields(postmaster);
        if (own.size() < 15) return 0;
        return std::stoll(own[11]) + std::stoll(own[12]) + std::stoll(own[13]) + std::stoll(own[14]);
    }
};

/// Busy and total CPU time of the whole machine (/proc/stat), seconds.
std::pair<double, double> machine_cpu() {
    std::ifstream f("/proc/stat");
    std::string cpu;
    long long v[8] = {};
    f >> cpu;
    for (auto& x : v) f >> x;
    const long long idle = v[3] + v[4];
    long long total = 0;
    for (auto x : v) total += x;
    return {ticks_to_s(total - idle), ticks_to_s(total)};
}

double rusage_s(int who) {
    rusage u{};
    ::getrusage(who, &u);
    auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return s(u.ru_utime) + s(u.ru_stime);
}

/// What one timed phase did: throughput and where the CPU went.
struct phase {
    double ops = 0;
    double ops_per_s = 0;
    double server_us = 0;   ///< server CPU per operation
    double client_us = 0;   ///< the client's CPU per operation
    double busy_cores = 0;  ///< the machine's busy cores on average
};

class meter {
public:
    meter(const server_cpu& server, int who) : server_(server), who_(who) {
        server_s_ = server_.seconds();
        client_s_ = rusage_s(who_);
        machine_ = machine_cpu();
        start_ = std::chrono::steady_clock::now();
    }
    /// `ops` done since; `secs` the throughput's time when the caller knows
    /// it better (pgbench's own, without its connection time).
    phase done(double ops, double secs = 0) const {
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
        const auto m = machine_cpu();
        const double client = rusage_s(who_) - client_s_;  // before reading /proc, which is not the client's
        const double server = server_.seconds() - server_s_;
        phase p;
        p.ops = ops;
        p.ops_per_s = ops / (secs > 0 ? secs : wall);
        p.server_us = server / ops * 1e6;
        p.client_us = client / ops * 1e6;
        p.busy_cores = (m.first - machine_.first) / wall;
        if (verbose)
            std::cerr << "phase: wall " << wall << " s, " << ops << " ops, server " << server << " s, client " << client
                      << " s, machine " << m.first - machine_.first << " s\n";
        return p;
    }

private:
    const server_cpu& server_;
    int who_;
    double server_s_ = 0, client_s_ = 0;
    std::pair<double, double> machine_;
    std::chrono::steady_clock::time_point start_;
};

// ---- our side ------------------------------------------------------------------

/// `coroutines` coroutines each running `op(rng)` until `secs` have passed.
template <class Op>
phase run_ours(asio::io_context& ctx, const server_cpu& server, double secs, Op op) {
    std::uint64_t done = 0;
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(secs);
    meter m(server, RUSAGE_SELF);
    std::vector<std::future<void>> all;
    for (int c = 0; c < coroutines; ++c)
        all.push_back(asio::co_spawn(
            ctx,
            [&, c]() -> awaitable<void> {
                std::mt19937_64 rng(static_cast<std::uint64_t>(c) * 0x9E3779B97F4A7C15ull ^ std::random_device{}());
                while (std::chrono::steady_clock::now() < until) {
                    co_await op(rng);
                    ++done;
                }
            },
            asio::use_future));
    ctx.restart();
    for (auto& f : all)
        while (f.wait_for(0s) != std::future_status::ready) ctx.run_one();
    auto p = m.done(static_cast<double>(done));
    for (auto& f : all) f.get();
    return p;
}

// ---- pgbench -----------------------------------------------------------------

std::string find_pgbench(const std::string& given) {
    if (!given.empty()) return given;
    if (const char* e = std::getenv("PGBENCH")) return e;
    // As tools/services/postgres finds initdb: the newest server version.
    std::string best;
    std::error_code ec;
    for (const auto& d : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
        const auto p = d.path() / "bin" / "pgbench";
        if (std::filesystem::exists(p) &&
            (best.empty() || std::stoi(d.path().filename().string()) >
                                 std::stoi(std::filesystem::path(best).parent_path().parent_path().filename())))
            best = p.string();
    }
    return best.empty() ? "pgbench" : best;
}

std::string quoted(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

/// The store's statement `name` in `schema` as a pgbench command: $N
/// becomes :pN, or the SQL text `literal[N]` (pgbench variables cannot be
/// NULL).
std::string pgbench_command(const std::string& schema, const std::string& name,
                            const std::map<int, std::string>& literal = {}) {
    for (const auto& s : postgres_store_sql::statements(schema)) {
        if (s.name != name) continue;
        std::string out;
        for (std::size_t i = 0; i < s.sql.size();) {
            if (s.sql[i] == '$' && i + 1 < s.sql.size() && std::isdigit(static_cast<unsigned char>(s.sql[i + 1]))) {
                std::size_t j = i + 1;
                while (j < s.sql.size() && std::isdigit(static_cast<unsigned char>(s.sql[j]))) ++j;
                const int n = std::stoi(s.sql.substr(i + 1, j - i - 1));
                auto it = literal.find(n);
                out += it != literal.end() ? it->second : ":p" + std::to_string(n);
                i = j;
            } else {
                out += s.sql[i++];
            }
        }
        return out + ";\n";
    }
    throw std::runtime_error("no statement '" + name + "'");
}

struct pgbench_runner {
    std::string binary;
    pg::connection_options cfg;
    int clients = 4;
    std::filesystem::path dir;  // the script files
    const server_cpu* server = nullptr;

    std::string write(const std::string& name, const std::string& text) const {
        const auto path = dir / (name + ".sql");
        std::ofstream(path) << text;
        return path.string();
    }

    /// pgbench -M prepared -n -c N -j N -T secs -f script; its tps
    /// (without the initial connection time).
    phase run(const std::string& script, int secs, const std::map<std::string, std::string>& defines) const {
        std::ostringstream cmd;
        if (!cfg.password.empty()) cmd << "PGPASSWORD=" << quoted(cfg.password) << " ";
        cmd << quoted(binary) << " -n -M prepared -c " << clients << " -j " << clients << " -T " << secs << " -h "
            << quoted(cfg.host) << " -p " << cfg.port;
        if (!cfg.user.empty()) cmd << " -U " << quoted(cfg.user);
        for (const auto& [k, v] : defines) cmd << " -D " << quoted(k + "=" + v);
        cmd << " -f " << quoted(script) << " " << quoted(cfg.dbname) << " 2>&1";
        meter m(*server, RUSAGE_CHILDREN);
        FILE* p = ::popen(cmd.str().c_str(), "r");
        if (!p) throw std::runtime_error("cannot run " + binary);
        std::string out;
        char buf[4096];
        while (auto n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
        const int status = ::pclose(p);
        // "number of transactions actually processed: 123456"
        // "tps = 30864.012345 (without initial connection time)"
        const auto processed = out.find("actually processed: ");
        const auto tps = out.find("tps = ");
        if (status != 0 || processed == std::string::npos || tps == std::string::npos ||
            out.find("aborted") != std::string::npos)
            throw std::runtime_error("pgbench failed (" + script + "):\n" + out);
        const double n = std::stod(out.substr(processed + 20));
        const double rate = std::stod(out.substr(tps + 6));
        return m.done(n, n / rate);
    }
};

// ---- the records ---------------------------------------------------------------

session make_session(std::string id, time_point now) {
    session s;
    s.id = std::move(id);
    s.owner = "bench";
    s.status = session_status::active;
    s.created_at = now;
    s.last_active = now;
    s.idle_timeout = 1h;
    s.idle_deadline = now + 1h;
    return s;
}

/// Prints a phase's figures under `name`.
void print_phase(const std::string& name, const phase& p) {
    bench::value(bench_name, name, p.ops_per_s, "ops/s");
    bench::value(bench_name, name + "_server_cpu_per_op", p.server_us, "us");
    bench::value(bench_name, name + "_client_cpu_per_op", p.client_us, "us");
    // The cores this side (server and client) obtained: on a machine that
    // other work keeps busy too, the scheduler's share decides throughput.
    bench::value(bench_name, name + "_cores_used", p.ops_per_s * (p.server_us + p.client_us) / 1e6, "cores");
    bench::value(bench_name, name + "_busy_cores", p.busy_cores, "cores");
}

struct best_of {
    phase best;
    void offer(const phase& p) {
        if (p.ops_per_s > best.ops_per_s) best = p;
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: postgres_store_bench DATABASE_URL [--quick] [--pool N] [--seconds S] [--rounds R] "
                     "[--no-sweep] [--sweep-only] [--pgbench PATH] [--cases LIST] [--keep] [--verbose]\n";
        return 2;
    }
    bool quick = false, no_sweep = false, sweep_only = false, keep = false;
    int pool_size = 4, seconds = 4, rounds = 3;
    std::string pgbench_path, cases = "create,get,touch";
    for (int i = 2; i < argc; ++i) {
        std::string_view a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error("missing value after " + std::string(a));
            return argv[++i];
        };
        if (a == "--quick")
            quick = true;
        else if (a == "--no-sweep")
            no_sweep = true;
        else if (a == "--sweep-only")
            sweep_only = true;
        else if (a == "--pool")
            pool_size = std::stoi(next());
        else if (a == "--seconds")
            seconds = std::stoi(next());
        else if (a == "--rounds")
            rounds = std::stoi(next());
        else if (a == "--pgbench")
            pgbench_path = next();
        else if (a == "--verbose")
            verbose = true;
        else if (a == "--keep")
            keep = true;  // leave the schemas and pgbench scripts (investigation)
        else if (a == "--cases")
            cases = next();  // for investigating one of them
        else {
            std::cerr << "postgres_store_bench: unknown option '" << a << "'\n";
            return 2;
        }
    }
    if (quick) {
        seconds = 2;
        rounds = 1;
    }

    asio::io_context ctx;
    auto cfg = pg::connection_options::from_url(argv[1]);
    cfg.pool_size = static_cast<std::size_t>(pool_size);
    cfg.request_timeout = 60s;
    const std::string tag = generate_id().substr(0, 8);
    std::vector<std::string> schemas;
    auto dir = std::filesystem::temp_directory_path() / ("postgres_store_bench." + tag);
    std::filesystem::create_directories(dir);
    int rc = 0;

    try {
        // The server's processes, when it runs on this machine.
        server_cpu server;
        {
            // A pid here is the server's only if it is a postgres process
            // (a remote server's pid may name anything on this machine).
            auto is_postgres = [](int pid) {
                std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
                std::string comm;
                return std::getline(f, comm) && (comm == "postgres" || comm == "postmaster");
            };
            auto r = sql(ctx, cfg, "SELECT pg_backend_pid()");
            const int backend = std::stoi(std::string(r.at(0).value(0, 0)));
            const auto f = stat_fields(backend);
            if (is_postgres(backend) && f.size() > 1 && is_postgres(std::stoi(f[1])))
                server.postmaster = std::stoi(f[1]);
            else
                std::cerr << "postgres_store_bench: the server is not on this machine: no CPU figures\n";
        }
        bench::value(bench_name, "pool_size", pool_size, "connections");

        pgbench_runner pgb{find_pgbench(pgbench_path), cfg, pool_size, dir, &server};
        const auto now = from_unix_ms(to_unix_ms(std::chrono::system_clock::now()));
        const std::int64_t now_ms = to_unix_ms(now);

        if (!sweep_only) {
            // ---- create, get, touch ---------------------------------------
            postgres_store_options create_opts;
            create_opts.schema = "pgb_" + tag + "_create";
            schemas.push_back(create_opts.schema);
            auto creating = wait(ctx, postgres_store::open(ctx.get_executor(), cfg, create_opts));
            postgres_store_options read_opts;
            read_opts.schema = "pgb_" + tag + "_read";
            schemas.push_back(read_opts.schema);
            auto reading = wait(ctx, postgres_store::open(ctx.get_executor(), cfg, read_opts));
            const std::string create_table = "\"" + create_opts.schema + "\".sessions";
            const std::string read_table = "\"" + read_opts.schema + "\".sessions";

            // The store's own statements, its parameters as pgbench variables:
            // the same values ours sends (make_session), NULLs as NULL.
            const std::map<int, std::string> nulls = {{8, "NULL"}, {9, "NULL"}, {10, "NULL"}, {11, "NULL"}};
            const std::string create_script =
                pgb.write("create", "\\set p1 random(1000000000000000000, 9223372036854775807)\n"
                                    "\\set p15 random(0, 3)\n"
                                    "\\startpipeline\n" +
                                        pgbench_command(create_opts.schema, "create", nulls) +
                                        pgbench_command(create_opts.schema, "get") + "\\endpipeline\n");
            const std::map<std::string, std::string> create_vars = {{"p2", "bench"},
                                                                    {"p3", "active"},
                                                                    {"p4", std::to_string(now_ms)},
                                                                    {"p5", std::to_string(now_ms)},
                                                                    {"p6", "3600000"},
                                                                    {"p7", std::to_string(now_ms + 3600000)},
                                                                    {"p12", "false"},
                                                                    {"p13", "{}"},
                                                                    {"p14", "{}"},
                                                                    {"p16", "[]"},
                                                                    {"p17", "0"},
                                                                    {"p18", "false"},
                                                                    {"p19", "0"}};
            const int preload = quick ? 5000 : 20000;
            const std::string pick = "\\set p1 random(1, " + std::to_string(preload) + ")\n";
            const std::string get_script = pgb.write("get", pick + pgbench_command(read_opts.schema, "get"));
            const std::string touch_script = pgb.write("touch", pick + pgbench_command(read_opts.schema, "touch"));
            // Touches at the time the sessions were created: every touch
            // leaves the indexed deadline as it is, on both sides.
            const std::map<std::string, std::string> touch_vars = {{"p2", std::to_string(now_ms)}};

            // Sessions "1".."preload" for get and touch, made by the store.
            std::vector<std::string> ids;
            for (int i = 1; i <= preload; ++i) ids.push_back(std::to_string(i));
            {
                std::atomic<int> next{0};
                std::vector<std::future<void>> all;
                for (int c = 0; c < coroutines; ++c)
                    all.push_back(asio::co_spawn(
                        ctx,
                        [&]() -> awaitable<void> {
                            for (int i; (i = next++) < preload;) {
                                auto made =
                                    co_await reading->create(make_session(ids[static_cast<std::size_t>(i)], now));
                                if (!made.created) throw std::runtime_error("preload: not created");
                            }
                        },
                        asio::use_future));
                ctx.restart();
                for (auto& f : all)
                    while (f.wait_for(0s) != std::future_status::ready) ctx.run_one();
                for (auto& f : all) f.get();
            }
            sql(ctx, cfg, "VACUUM ANALYZE " + read_table);

            std::uniform_int_distribution<std::int64_t> big_id(1'000'000'000'000'000'000, INT64_MAX);
            std::uniform_int_distribution<std::size_t> some_id(0, ids.size() - 1);
            // Each create phase starts from the same table: `preload` rows
            // (ids "c1".., never drawn) and fresh statistics. Not empty: on
            // a table analysed empty, the plans the connections cache
            // (generic after five runs) read the table sequentially, and the
            // get inside every create then costs more the more rows there
            // are, until autovacuum analyses again (3.4k instead of 9k
            // creates/s by pgbench here).
            auto reset_create_table = [&] {
                sql(ctx, cfg, "TRUNCATE " + create_table + " CASCADE");
                sql(ctx, cfg,
                    "INSERT INTO " + create_table +
                        " (id, owner, status, created_at, last_active, idle_timeout_ms, idle_deadline, version)"
                        " SELECT 'c' || g, 'bench', 'active', " +
                        std::to_string(now_ms) + ", " + std::to_string(now_ms) + ", 3600000, " +
                        std::to_string(now_ms + 3600000) + ", 1 FROM generate_series(1, " + std::to_string(preload) +
                        ") g");
                sql(ctx, cfg, "VACUUM ANALYZE " + create_table);
            };
            auto count = [&](const std::string& table) {
                auto r = sql(ctx, cfg, "SELECT count(*) FROM " + table);
                return std::stod(std::string(r.at(0).value(0, 0)));
            };
            auto check_created = [&](const phase& p) {
                // Every create must have inserted a row (distinct ids).
                const double expected = p.ops + preload, rows = count(create_table);
                if (rows != expected)
                    std::cerr << "postgres_store_bench: warning: " << expected << " creates left " << rows << " rows\n";
            };

            best_of create_ours, create_ref, get_ours, get_ref, touch_ours, touch_ref;
            for (int round = 0; round < rounds; ++round) {
                const bool ours_first = round % 2 == 0;
                auto wanted = [&](const char* name) { return cases.find(name) != std::string::npos; };
                // create: each side from an empty table.
                for (int side = 0; side < 2 && wanted("create"); ++side) {
                    reset_create_table();
                    if ((side == 0) == ours_first) {
                        auto p = run_ours(ctx, server, seconds, [&](std::mt19937_64& rng) -> awaitable<void> {
                            auto made = co_await creating->create(make_session(std::to_string(big_id(rng)), now));
                            if (!made.created) throw std::runtime_error("create: an id was taken");
                        });
                        check_created(p);
                        create_ours.offer(p);
                    } else {
                        auto p = pgb.run(create_script, seconds, create_vars);
                        check_created(p);
                        create_ref.offer(p);
                    }
                }
                // get: nothing changes.
                for (int side = 0; side < 2 && wanted("get"); ++side) {
                    if ((side == 0) == ours_first)
                        get_ours.offer(run_ours(ctx, server, seconds, [&](std::mt19937_64& rng) -> awaitable<void> {
                            auto s = co_await reading->get(ids[some_id(rng)]);
                            if (!s) throw std::runtime_error("get: not found");
                        }));
                    else
                        get_ref.offer(pgb.run(get_script, seconds, {}));
                }
                // touch: each side after a VACUUM (no dead rows from before).
                for (int side = 0; side < 2 && wanted("touch"); ++side) {
                    sql(ctx, cfg, "VACUUM " + read_table);
                    if ((side == 0) == ours_first)
                        touch_ours.offer(run_ours(ctx, server, seconds, [&](std::mt19937_64& rng) -> awaitable<void> {
                            auto t = co_await reading->touch(ids[some_id(rng)], now);
                            if (!t) throw std::runtime_error("touch: not found");
                        }));
                    else
                        touch_ref.offer(pgb.run(touch_script, seconds, touch_vars));
                }
            }
            print_phase("create", create_ours.best);
            print_phase("pgbench_create", create_ref.best);
            print_phase("get", get_ours.best);
            print_phase("pgbench_get", get_ref.best);
            print_phase("touch", touch_ours.best);
            print_phase("pgbench_touch", touch_ref.best);
            const std::string n = std::to_string(pool_size);
            const std::string vs = "pgbench -M prepared -c " + n + " -j " + n + " of the store's ";
            bench::ratio(bench_name, "create_vs_pgbench", create_ours.best.ops_per_s / create_ref.best.ops_per_s,
                         vs + "create + get statements (one Sync)", ">= 1.0");
            bench::ratio(bench_name, "get_vs_pgbench", get_ours.best.ops_per_s / get_ref.best.ops_per_s,
                         vs + "get statement", ">= 1.0");
            bench::ratio(bench_name, "touch_vs_pgbench", touch_ours.best.ops_per_s / touch_ref.best.ops_per_s,
                         vs + "touch statement", ">= 1.0");
            // What the server alone spends per operation, ours over pgbench's
            // (pipelining saves the server work per statement).
            auto server_ratio = [&](const char* name, const best_of& a, const best_of& b) {
                if (server.postmaster != 0 && b.best.server_us > 0)
                    bench::ratio(bench_name, name, a.best.server_us / b.best.server_us,
                                 "pgbench's server CPU per operation", "");
            };
            server_ratio("create_server_cpu_vs_pgbench", create_ours, create_ref);
            server_ratio("get_server_cpu_vs_pgbench", get_ours, get_ref);
            server_ratio("touch_server_cpu_vs_pgbench", touch_ours, touch_ref);
            // The ratio to expect when each side, server and client, has the
            // machine's cores to itself and keeps them busy (both are CPU
            // bound here): pgbench's CPU per operation over ours.
            auto cpu_bound = [&](const char* name, const best_of& a, const best_of& b) {
                if (server.postmaster != 0)
                    bench::ratio(bench_name, name,
                                 (b.best.server_us + b.best.client_us) / (a.best.server_us + a.best.client_us),
                                 "pgbench's server + client CPU per operation over ours", "");
            };
            cpu_bound("create_cpu_bound_ratio", create_ours, create_ref);
            cpu_bound("get_cpu_bound_ratio", get_ours, get_ref);
            cpu_bound("touch_cpu_bound_ratio", touch_ours, touch_ref);
        }

        if (!no_sweep) {
            // ---- sweep -----------------------------------------------------
            // Two populations, loaded by one INSERT ... SELECT each. Round r
            // sweeps at base + r hours; `due_per_round` sessions of each are
            // due then (deadline a minute earlier), scattered evenly through
            // the table; the rest are due in a week. Claims move a session
            // a day ahead (the lease), past every later round.
            const int big = quick ? 100'000 : 1'000'000;
            const int small = big / 10;
            const int due_per_round = big / 100;
            const std::int64_t hour = 3'600'000;
            const std::int64_t base = now_ms;
            // Five rounds, the best of each: one sweep is a few hundred ms,
            // where this machine's noise is as large.
            const int sweep_rounds = quick ? 1 : 5;
            struct population {
                int size;
                std::unique_ptr<postgres_store> store;
                std::string table;
                double best_s = 1e9;
                double best_cpu_s = 1e9;  // server + our CPU for one sweep
            };
            std::vector<population> pops;
            for (int size : {big, small}) {
                postgres_store_options o;
                o.schema = "pgb_" + tag + "_sweep_" + std::to_string(size);
                schemas.push_back(o.schema);
                population p{size, wait(ctx, postgres_store::open(ctx.get_executor(), cfg, o)),
                             "\"" + o.schema + "\".sessions"};
                const int every = size / due_per_round;  // 100 or 10
                const double load_s = bench::seconds_of([&] {
                    sql(ctx, cfg,
                        "INSERT INTO " + p.table +
                            " (id, owner, status, created_at, last_active, idle_timeout_ms, idle_deadline, version)"
                            " SELECT 's' || g, 'owner' || (g % 1000), 'active', d - 2 * " +
                            std::to_string(hour) + ", d - " + std::to_string(hour) + ", " + std::to_string(hour) +
                            ", d, 1 FROM (SELECT g, CASE WHEN g % " + std::to_string(every) + " < " +
                            std::to_string(sweep_rounds) + " THEN " + std::to_string(base) + " + (g % " +
                            std::to_string(every) + ") * " + std::to_string(hour) + " - 60000 ELSE " +
                            std::to_string(base + 7 * 24 * hour) + " END AS d FROM generate_series(0, " +
                            std::to_string(size - 1) + ") g) x");
                    sql(ctx, cfg, "VACUUM ANALYZE " + p.table);
                });
                bench::value(bench_name, "sweep_load_" + std::to_string(size), load_s, "s");
                auto mb = sql(ctx, cfg, "SELECT pg_total_relation_size('" + p.table + "') / 1048576.0");
                bench::value(bench_name, "sweep_table_and_indexes_" + std::to_string(size),
                             std::stod(std::string(mb.at(0).value(0, 0))), "MiB");
                pops.push_back(std::move(p));
            }
            // A population larger than the buffer cache measures the cache
            // (reads from the OS and dirty pages evicted on the way), not
            // the sweep: bench/run gives its cluster 512 MB.
            {
                auto r =
                    sql(ctx, cfg,
                        "SELECT setting::bigint * current_setting('block_size')::bigint / 1048576.0 FROM pg_settings"
                        " WHERE name = 'shared_buffers'");
                bench::value(bench_name, "shared_buffers", std::stod(std::string(r.at(0).value(0, 0))), "MiB");
            }
            const std::size_t batch = 1000;
            for (int round = 0; round < sweep_rounds; ++round) {
                const auto at = from_unix_ms(base + round * hour);
                for (int k = 0; k < 2; ++k) {
                    auto& p = pops[static_cast<std::size_t>(round % 2 == 0 ? k : 1 - k)];
                    std::size_t claimed = 0;
                    const meter m(server, RUSAGE_SELF);
                    const double s = bench::seconds_of([&] {
                        wait(ctx, [&]() -> awaitable<void> {
                            for (;;) {
                                auto got = co_await p.store->claim_expired(at, batch, 24h);
                                claimed += got.size();
                                if (got.empty()) break;
                            }
                        }());
                    });
                    const auto used = m.done(1);
                    if (claimed != static_cast<std::size_t>(due_per_round))
                        std::cerr << "postgres_store_bench: warning: round " << round << " claimed " << claimed
                                  << " among " << p.size << ", expected " << due_per_round << "\n";
                    p.best_s = std::min(p.best_s, s);
                    p.best_cpu_s = std::min(p.best_cpu_s, (used.server_us + used.client_us) / 1e6);
                }
                // The next round starts without this round's dead rows.
                for (auto& p : pops) sql(ctx, cfg, "VACUUM " + p.table);
            }
            for (auto& p : pops)
                bench::value(bench_name, "sweep_ours_" + std::to_string(p.size), p.best_s * 1000, "ms");
            bench::value(bench_name, "claim_per_session", pops[0].best_s / due_per_round * 1e6, "us");
            // The CPU the sweeps cost, server and client, beside their time:
            // less at the mercy of what else runs than the wall clock.
            if (server.postmaster != 0) {
                for (auto& p : pops)
                    bench::value(bench_name, "sweep_cpu_" + std::to_string(p.size), p.best_cpu_s * 1000, "ms");
                bench::ratio(bench_name, "sweep_cpu_1M_vs_100k", pops[0].best_cpu_s / pops[1].best_cpu_s,
                             "the server + client CPU of the same sweeps", "");
            }
            bench::ratio(bench_name, "sweep_1M_vs_100k", pops[0].best_s / pops[1].best_s,
                         "our sweep of the same " + std::to_string(due_per_round) + " due sessions among " +
                             std::to_string(small) + " (a tenth of the population)",
                         "<= 1.5");
        }
    } catch (const std::exception& e) {
        std::cerr << "postgres_store_bench: " << e.what() << "\n";
        rc = 1;
    }
    if (keep) {
        std::cerr << "postgres_store_bench: kept the schemas and " << dir.string() << "\n";
        return rc;
    }
    try {
        for (auto& s : schemas) sql(ctx, cfg, "DROP SCHEMA IF EXISTS \"" + s + "\" CASCADE");
    } catch (const std::exception& e) {
        std::cerr << "postgres_store_bench: dropping the schemas: " << e.what() << "\n";
    }
    std::filesystem::remove_all(dir);
    return rc;
}

// bench/redis_store_bench.cpp — redis_store against redis-benchmark on the
// same server, in the same run (only ratios hold on a noisy machine).
//
//   redis_store_bench REDIS_URL [--quick] [--flush] [--no-sweep] [--serial-only]
//
// It writes about 2M sessions (under fresh "bench:", "sweep:" prefixes);
// --flush empties the database at the end (bench/run passes it: its server
// is a throwaway one).
//
// Cases (doc/benchmarks.md):
//   touch_ratio_P1   our touch, 64 coroutines on one connection, over
//                    redis-benchmark -c 64 EVALSHA of the same touch script
//   get_ratio_P1     our get (HMGET + decoding the record) over
//                    redis-benchmark -c 64 HMGET of the same fields
//   touch_ratio_P16  our touch over redis-benchmark -c 64 -P 16 EVALSHA
//   serial_latency_ratio  our serial touch latency over redis-benchmark -c 1
//   sweep_find_speedup  finding the due sessions among 1M (1% due): a SCAN +
//                    HGET walk over our expiry index
//   sweep_1M_vs_100k our sweep of 10k due sessions among 1M over the same 10k
//                    among 100k: the cost follows the expired count, not the
//                    population
//   sweep_vs_scan, claim_per_session  the whole SCAN sweep over ours, and
//                    what a claim costs (for the record, no target)
#include <sessionkit/store/redis.hpp>
#include <sessionkit/store/redis/codec.hpp>    // record_fields: what get reads
#include <sessionkit/store/redis/scripts.hpp>  // the scripts the store runs, by SHA

#include "bench_format.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace sessionkit;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view bench_name = "redis_store";

/// A second io_context on its own thread, for the figures of a connection
/// whose callers run on another thread (every request then crosses threads
/// twice).
struct runner {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
    std::thread thread{[this] { io.run(); }};
    ~runner() {
        guard.reset();
        io.stop();
        thread.join();
    }
};

template <class T>
T wait(asio::io_context& ctx, awaitable<T> op) {
    auto fut = asio::co_spawn(ctx, std::move(op), asio::use_future);
    ctx.restart();
    while (fut.wait_for(0s) != std::future_status::ready) ctx.run_one();
    return fut.get();
}

struct redis_benchmark_result {
    double rps = 0;
    double avg_latency_ms = 0;
    double cpu_us = 0;  ///< the redis-benchmark process's CPU time (user + system)
};

/// User + system CPU time of `who` (RUSAGE_THREAD, RUSAGE_CHILDREN), in µs.
double cpu_us(int who) {
    rusage u{};
    ::getrusage(who, &u);
    auto us = [](const timeval& t) { return t.tv_sec * 1e6 + static_cast<double>(t.tv_usec); };
    return us(u.ru_utime) + us(u.ru_stime);
}

/// Runs redis-benchmark with --csv and reads its throughput and mean latency.
redis_benchmark_result redis_benchmark(const redis::connection_options& cfg, int clients, int pipeline, int requests,
                                       const std::vector<std::string>& command) {
    std::ostringstream cmd;
    cmd << "redis-benchmark -h " << cfg.host << " -p " << cfg.port << " --csv -c " << clients << " -P " << pipeline
        << " -n " << requests;
    for (auto& a : command) cmd << " '" << a << "'";
    cmd << " 2>/dev/null";
    const double children_before = cpu_us(RUSAGE_CHILDREN);
    FILE* p = ::popen(cmd.str().c_str(), "r");
    if (!p) throw std::runtime_error("cannot run redis-benchmark");
    std::string out;
    char buf[4096];
    while (auto n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    ::pclose(p);
    const double children_cpu = cpu_us(RUSAGE_CHILDREN) - children_before;
    // "test","rps","avg_latency_ms",...   then   "EVALSHA ...","123.45","0.345",...
    std::istringstream lines(out);
    std::string line, last;
    while (std::getline(lines, line))
        if (!line.empty() && line.find("rps") == std::string::npos) last = line;
    std::vector<std::string> cols;
    std::string cell;
    bool quoted = false;
    for (char c : last) {
        if (c == '"')
            quoted = !quoted;
        else if (c == ',' && !quoted)
            cols.push_back(std::exchange(cell, {}));
        else
            cell += c;
    }
    cols.push_back(cell);
    if (cols.size() < 3) throw std::runtime_error("redis-benchmark gave no result: " + out);
    return {std::stod(cols[1]), std::stod(cols[2]), children_cpu};
}

/// `per_coroutine` operations from each of `coroutines` coroutines; ops/s.
template <class Op>
double throughput(asio::io_context& ctx, int coroutines, int per_coroutine, Op op) {
    std::atomic<int> left{coroutines};
    auto start = std::chrono::steady_clock::now();
    for (int c = 0; c < coroutines; ++c)
        asio::co_spawn(
            ctx,
            [&, c]() -> awaitable<void> {
                for (int i = 0; i < per_coroutine; ++i) co_await op(c, i);
                --left;
            },
            asio::detached);
    // run_one, not run: the connection's own loops keep ctx busy for ever.
    ctx.restart();
    while (left > 0) ctx.run_one();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return coroutines * per_coroutine / secs;
}

session make_session(std::string id, time_point now, milliseconds idle) {
    session s;
    s.id = std::move(id);
    s.owner = "bench";
    s.created_at = now;
    s.last_active = now;
    s.idle_timeout = idle;
    s.idle_deadline = now + idle;
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: redis_store_bench REDIS_URL [--quick] [--flush] [--no-sweep] [--serial-only]\n";
        return 2;
    }
    bool quick = false, flush = false, no_sweep = false, serial_only = false;
    for (int i = 2; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a == "--quick")
            quick = true;
        else if (a == "--flush")
            flush = true;
        else if (a == "--no-sweep")
            no_sweep = true;
        else if (a == "--serial-only")
            serial_only = true;  // for profiling the serial path alone
        else {
            std::cerr << "redis_store_bench: unknown option '" << a << "'\n";
            return 2;
        }
    }
    auto cfg = redis::connection_options::from_url(argv[1]);
    cfg.request_timeout = 30s;
    runner r;
    asio::io_context ctx;
    redis_store_options opts;
    opts.prefix = "bench:" + generate_id().substr(0, 8) + ":";
    // The store's connection runs on the callers' io_context, one thread, as
    // in sessiond and as redis-benchmark's single event loop does.
    redis_store store(ctx.get_executor(), cfg, opts);
    const auto now = from_unix_ms(to_unix_ms(std::chrono::system_clock::now()));

    // 64 sessions, one per coroutine.
    constexpr int coroutines = 64;
    const int per = quick ? 500 : 3000;
    std::vector<std::string> ids;
    for (int i = 0; i < coroutines; ++i) {
        ids.push_back("bench-" + std::to_string(i));
        wait(ctx, store.create(make_session(ids.back(), now, 1h)));
    }
    wait(ctx, store.touch(ids[0], now));  // loads the script

    const std::string base = store.partition_base(ids[0]);
    const auto& touch_sha = redis_store_scripts::all().touch.sha;
    const std::vector<std::string> touch_cmd = {
        "EVALSHA", touch_sha, "1", base, ids[0], std::to_string(to_unix_ms(now)), "604800000"};
    std::vector<std::string> get_cmd = {"HMGET", store.key_of(ids[0])};
    for (auto f : redis_store_codec::record_fields) get_cmd.emplace_back(f);
    const int ref_requests = quick ? 20000 : 200000;

    // ---- throughput, 64 concurrent ----------------------------------------
    if (!serial_only) {
        double touch_ops =
            throughput(ctx, coroutines, per, [&](int c, int) -> awaitable<void> { co_await store.touch(ids[c], now); });
        auto ref_touch = redis_benchmark(cfg, 64, 1, ref_requests, touch_cmd);
        double get_ops =
            throughput(ctx, coroutines, per, [&](int c, int) -> awaitable<void> { co_await store.get(ids[c]); });
        auto ref_get = redis_benchmark(cfg, 64, 1, ref_requests, get_cmd);
        auto ref_touch_p16 = redis_benchmark(cfg, 64, 16, ref_requests * 4, touch_cmd);
        bench::value(bench_name, "touch_64_coroutines", touch_ops, "ops/s");
        bench::value(bench_name, "get_64_coroutines", get_ops, "ops/s");
        bench::value(bench_name, "redis_benchmark_touch_c64", ref_touch.rps, "ops/s");
        bench::value(bench_name, "redis_benchmark_get_c64", ref_get.rps, "ops/s");
        bench::value(bench_name, "redis_benchmark_touch_c64_P16", ref_touch_p16.rps, "ops/s");
        bench::ratio(bench_name, "touch_ratio_P1", touch_ops / ref_touch.rps,
                     "redis-benchmark -c 64 EVALSHA <touch script>", ">= 1.5");
        bench::ratio(bench_name, "get_ratio_P1", get_ops / ref_get.rps, "redis-benchmark -c 64 HMGET <record fields>",
                     ">= 1.5");
        bench::ratio(bench_name, "touch_ratio_P16", touch_ops / ref_touch_p16.rps,
                     "redis-benchmark -c 64 -P 16 EVALSHA <touch script>", ">= 0.6");
    }

    // ---- serial latency ----------------------------------------------------
    // Measured as redis-benchmark measures it: the mean time from sending a
    // request to having its reply, one request at a time.
    const int serial = quick ? 5000 : 50000;
    double serial_cpu_us = 0;  // this thread's CPU time in the last round, per touch
    auto serial_latency_ms = [&](redis_store& st) {
        std::chrono::steady_clock::duration total{};
        const double cpu_before = cpu_us(RUSAGE_THREAD);
        wait(ctx, [&]() -> awaitable<void> {
            for (int i = 0; i < serial; ++i) {
                const auto start = std::chrono::steady_clock::now();
                co_await st.touch(ids[0], now);
                total += std::chrono::steady_clock::now() - start;
            }
        }());
        serial_cpu_us = (cpu_us(RUSAGE_THREAD) - cpu_before) / serial;
        return std::chrono::duration<double, std::milli>(total).count() / serial;
    };
    // Five alternating rounds, medians of each side: one round is at the
    // mercy of whatever else the machine does for a second.
    std::vector<double> ours_rounds, ref_rounds, ours_cpu, ref_cpu, ref_wall;
    for (int round = 0; round < 5; ++round) {
        ours_rounds.push_back(serial_latency_ms(store));
        ours_cpu.push_back(serial_cpu_us);
        auto ref = redis_benchmark(cfg, 1, 1, serial, touch_cmd);
        ref_rounds.push_back(ref.avg_latency_ms);
        ref_wall.push_back(1000.0 / ref.rps);  // its whole loop per request, as ours is timed
        ref_cpu.push_back(ref.cpu_us / serial);
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    const double ours_ms = median(ours_rounds);
    const redis_benchmark_result ref_serial{0, median(ref_rounds)};
    bench::value(bench_name, "touch_serial_latency", ours_ms, "ms");
    bench::value(bench_name, "redis_benchmark_touch_c1_latency", ref_serial.avg_latency_ms, "ms");
    bench::ratio(bench_name, "serial_latency_ratio", ours_ms / ref_serial.avg_latency_ms,
                 "redis-benchmark -c 1 EVALSHA <touch script>", "<= 1.2");
    // Where the difference comes from: client CPU (user + system) per request.
    bench::value(bench_name, "touch_serial_client_cpu", median(ours_cpu), "us");
    bench::value(bench_name, "redis_benchmark_c1_client_cpu", median(ref_cpu), "us");
    bench::value(bench_name, "redis_benchmark_c1_wall_per_request", median(ref_wall), "ms");

    if (serial_only) return 0;

    // ---- the same with the callers on another thread (information) --------
    {
        redis_store remote(r.io.get_executor(), cfg, opts);
        double remote_touch = throughput(ctx, coroutines, per,
                                         [&](int c, int) -> awaitable<void> { co_await remote.touch(ids[c], now); });
        bench::value(bench_name, "touch_64_coroutines_other_thread", remote_touch, "ops/s");
        bench::value(bench_name, "touch_serial_latency_other_thread", serial_latency_ms(remote), "ms");
    }

    // ---- sweep over 1M sessions, 1% due -----------------------------------
    if (no_sweep) return 0;
    const int total = quick ? 100000 : 1000000;
    const int due = total / 100;
    redis_store_options sweep_opts;
    sweep_opts.prefix = "sweep:" + generate_id().substr(0, 8) + ":";
    redis_store sweep_store(ctx.get_executor(), cfg, sweep_opts);
    // Creates `count` sessions s0, s1, ... from 100 coroutines; every
    // `due_every`-th is already due, the rest have an hour.
    auto load = [&](redis_store& store, int count, int due_every) {
        const int per = count / 100;
        throughput(ctx, 100, per, [&, per, due_every](int c, int i) -> awaitable<void> {
            const int n = c * per + i;
            auto s = make_session("s" + std::to_string(n), now - (n % due_every == 0 ? 2h : 0h), 1h);
            co_await store.create(s);
        });
    };
    const double load_s = bench::seconds_of([&] { load(sweep_store, total, 100); });
    bench::value(bench_name, "load_sessions", load_s, "s");
    const auto sweep_at = now + 1min;

    // Finding alone, for the record: every partition's due entries of the
    // expiry index in one pipelined write (what a sweep reads before it
    // claims), against the SCAN + HGET part of the SCAN sweep. Read from
    // the SCAN sweep's copy, so that it warms nothing our sweep reads.
    // A read of tens of ms, where this machine's noise is as large: the
    // median of 7 (it changes nothing, so it can be repeated).
    std::vector<double> find_rounds;
    for (int round = 0; round < 7; ++round)
        find_rounds.push_back(bench::seconds_of([&] {
            wait(ctx, [&]() -> awaitable<void> {
                redis::request find;
                for (unsigned p = 0; p < sweep_opts.partitions; ++p)
                    find.push("ZRANGEBYSCORE", sweep_opts.prefix + "{" + std::to_string(p) + "}:live", "-inf",
                              std::to_string(to_unix_ms(sweep_at)), "WITHSCORES");
                auto replies = co_await sweep_store.connection().exec(std::move(find));
                std::size_t found = 0;
                for (auto& r : replies) found += r.elements.size();
                if (found == 0) std::cerr << "warning: the find-only pass found nothing\n";
            }());
        }));
    std::sort(find_rounds.begin(), find_rounds.end());
    const double ours_find_s = find_rounds[find_rounds.size() / 2];
    // SCAN-based sweep, as stores without an expiry index do it: walk every
    // record key, read its deadline, claim the due ones (by the same claim
    // script, so both sides do the same writes).
    const std::string pattern = sweep_opts.prefix + "*:s:*";
    std::size_t scan_due = 0;
    std::chrono::steady_clock::duration scan_find{};  // SCAN + HGET only, without the claims
    redis::connection& conn = sweep_store.connection();
    const double scan_s = bench::seconds_of([&] {
        wait(ctx, [&]() -> awaitable<void> {
            std::string cursor = "0";
            do {
                redis::request scan;
                scan.push("SCAN", cursor, "MATCH", pattern, "COUNT", "1000");
                const auto find_start = std::chrono::steady_clock::now();
                auto page = co_await conn.exec(std::move(scan));
                cursor = std::string(page[0].elements[0].as_string());
                auto& keys = page[0].elements[1].elements;
                if (keys.empty()) continue;
                redis::request read;
                for (auto& k : keys) read.push("HGET", k.as_string(), "idle_deadline");
                auto deadlines = co_await conn.exec(std::move(read));
                scan_find += std::chrono::steady_clock::now() - find_start;
                redis::request claim;
                for (std::size_t i = 0; i < keys.size(); ++i) {
                    if (deadlines[i].is_null() || deadlines[i].as_integer() > to_unix_ms(sweep_at)) continue;
                    std::string key(keys[i].as_string());
                    auto brace = key.find("}:s:");
                    claim.push("EVALSHA", redis_store_scripts::all().claim_expired.sha, "1", key.substr(0, brace + 2),
                               std::to_string(to_unix_ms(sweep_at)), "60000", "604800000", key.substr(brace + 4));
                    ++scan_due;
                }
                if (claim.size()) co_await conn.exec(std::move(claim));
            } while (cursor != "0");
        }());
    });
    // Put the due sessions back (same data for our sweep): a fresh store.
    redis_store_options sweep_opts2;
    sweep_opts2.prefix = "sweep2:" + generate_id().substr(0, 8) + ":";
    redis_store ours(ctx.get_executor(), cfg, sweep_opts2);
    load(ours, total, 100);
    // Our sweep: claim in batches of 1000 until nothing is due; seconds,
    // and how many it claimed.
    auto sweep = [&](redis_store& store, std::size_t& claimed_total) {
        return bench::seconds_of([&] {
            wait(ctx, [&]() -> awaitable<void> {
                for (;;) {
                    auto claimed = co_await store.claim_expired(sweep_at, 1000, 60s);
                    claimed_total += claimed.size();
                    if (claimed.empty()) break;
                }
            }());
        });
    };
    std::size_t ours_due = 0;
    const double ours_s = sweep(ours, ours_due);
    if (scan_due != static_cast<std::size_t>(due) || ours_due != static_cast<std::size_t>(due))
        std::cerr << "warning: expected " << due << " due, scan found " << scan_due << ", ours " << ours_due << '\n';
    bench::value(bench_name, "sweep_scan_" + std::to_string(total), scan_s * 1000, "ms");
    bench::value(bench_name, "sweep_ours_" + std::to_string(total), ours_s * 1000, "ms");
    bench::ratio(bench_name, "sweep_vs_scan", scan_s / ours_s, "a SCAN + HGET sweep of the same sessions", "");
    // Where the time goes: finding the due sessions, and claiming each.
    const double scan_find_s = std::chrono::duration<double>(scan_find).count();
    bench::value(bench_name, "sweep_find_scan", scan_find_s * 1000, "ms");
    bench::value(bench_name, "sweep_find_ours", ours_find_s * 1000, "ms");
    bench::ratio(bench_name, "sweep_find_speedup", scan_find_s / ours_find_s,
                 "SCAN + HGET of every record to find the due ones, against reading the expiry index", ">= 200");
    bench::value(bench_name, "claim_per_session", ours_s / static_cast<double>(due) * 1e6, "us");

    // The same number of due sessions among a tenth of the population: a
    // sweep that follows the due count takes about as long.
    const int small_total = total / 10;
    redis_store_options small_opts;
    small_opts.prefix = "sweep3:" + generate_id().substr(0, 8) + ":";
    redis_store small(ctx.get_executor(), cfg, small_opts);
    load(small, small_total, 10);  // every 10th due: the same `due` sessions as above
    std::size_t small_due = 0;
    const double small_s = sweep(small, small_due);
    if (small_due != static_cast<std::size_t>(due))
        std::cerr << "warning: expected " << due << " due among " << small_total << ", found " << small_due << '\n';
    bench::value(bench_name, "sweep_ours_" + std::to_string(small_total), small_s * 1000, "ms");
    bench::ratio(bench_name, "sweep_1M_vs_100k", ours_s / small_s,
                 "our sweep of the same " + std::to_string(due) + " due sessions among " + std::to_string(small_total) +
                     " (a tenth of the population)",
                 "<= 1.5");

    if (flush) wait(ctx, conn.exec_one("FLUSHDB", "ASYNC"));
    return 0;
}

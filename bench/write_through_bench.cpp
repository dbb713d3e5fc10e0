// write_through<postgres_store, redis_cache> against a Redis-only store on
// the same redis-server, in the same run (only ratios hold on a noisy
// machine):
//
//   touch_vs_redis_only   write-through touch ÷ redis_store touch, 64
//                         coroutines (target ≥ 0.8: coalescing must keep
//                         PostgreSQL off the hot path)
//   get_vs_redis_only     write-through get on a warm cache ÷ redis_store
//                         get (target ≥ 0.9)
//   pg_writes_per_1000_touches  touches that reached PostgreSQL, per 1,000
//                         (informative: with the default window, a quarter
//                         of the idle timeout, each session reaches it once
//                         per window)
//
// Rounds alternate the two sides, three of each, best of each side.
// Usage: write_through_bench REDIS_URL DATABASE_URL [--quick]
#include "bench_format.hpp"

#include <sessionkit/store/postgres.hpp>
#include <sessionkit/store/redis.hpp>
#include <sessionkit/store/redis_cache.hpp>
#include <sessionkit/store/write_through.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <iostream>
#include <string>
#include <vector>

namespace {

using namespace sessionkit;
using namespace std::chrono_literals;
namespace asio = boost::asio;
constexpr std::string_view bench_name = "write_through";

template <class T>
T wait(asio::io_context& ctx, awaitable<T> op) {
    auto fut = asio::co_spawn(ctx, std::move(op), asio::use_future);
    ctx.restart();
    while (fut.wait_for(0s) != std::future_status::ready) ctx.run_one();
    return fut.get();
}

/// `per` operations from each of `coroutines` coroutines; ops/s.
template <class Op>
double throughput(asio::io_context& ctx, int coroutines, int per, Op op) {
    std::atomic<int> left{coroutines};
    const auto start = std::chrono::steady_clock::now();
    for (int c = 0; c < coroutines; ++c)
        asio::co_spawn(
            ctx,
            [&, c]() -> awaitable<void> {
                for (int i = 0; i < per; ++i) co_await op(c, i);
                --left;
            },
            asio::detached);
    ctx.restart();
    while (left > 0) ctx.run_one();
    return coroutines * per / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

session make_session(std::string id, time_point now) {
    session s;
    s.id = std::move(id);
    s.owner = "bench";
    s.status = session_status::active;
    s.created_at = s.last_active = now;
    s.idle_timeout = 1h;  // the default window: 15 min
    s.idle_deadline = now + s.idle_timeout;
    return s;
}

time_point now_ms() { return from_unix_ms(to_unix_ms(std::chrono::system_clock::now())); }

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: write_through_bench REDIS_URL DATABASE_URL [--quick]\n";
        return 2;
    }
    const bool quick = argc > 3 && std::string_view(argv[3]) == "--quick";
    asio::io_context ctx;
    auto rcfg = redis::connection_options::from_url(argv[1]);
    rcfg.request_timeout = 30s;
    auto pcfg = postgres::connection_options::from_url(argv[2]);
    pcfg.request_timeout = 30s;
    pcfg.pool_size = 4;
    // Both sides on the callers' io_context, one thread, as in sessiond.
    auto conn = std::make_shared<redis::connection>(ctx.get_executor(), rcfg);
    redis_store_options ro;
    ro.prefix = "benchwt:" + generate_id().substr(0, 8) + ":";
    redis_store redis_only(conn, ro);
    redis_cache_options co;
    co.prefix = "benchwtc:" + generate_id().substr(0, 8) + ":";
    redis_cache cache(conn, co);
    postgres_store_options po;
    po.schema = "bench_wt_" + generate_id().substr(0, 8);
    auto primary = wait(ctx, postgres_store::open(ctx.get_executor(), pcfg, po));
    write_through<postgres_store, redis_cache> store(*primary, cache);

    constexpr int coroutines = 64;
    const int per = quick ? 300 : 2000;
    std::vector<std::string> ids;
    for (int i = 0; i < coroutines; ++i) {
        ids.push_back("wt-" + std::to_string(i));
        wait(ctx, redis_only.create(make_session(ids.back(), now_ms())));
        wait(ctx, store.create(make_session(ids.back(), now_ms())));
    }
    for (const auto& id : ids) wait(ctx, store.get(id));  // warm

    double best_wt_touch = 0, best_redis_touch = 0, best_wt_get = 0, best_redis_get = 0;
    for (int round = 0; round < 3; ++round) {
        auto wt_touch = [&] {
            return throughput(ctx, coroutines, per,
                              [&](int c, int) -> awaitable<void> { co_await store.touch(ids[c], now_ms()); });
        };
        auto redis_touch = [&] {
            return throughput(ctx, coroutines, per,
                              [&](int c, int) -> awaitable<void> { co_await redis_only.touch(ids[c], now_ms()); });
        };
        auto wt_get = [&] {
            return throughput(ctx, coroutines, per, [&](int c, int) -> awaitable<void> { co_await store.get(ids[c]); });
        };
        auto redis_get = [&] {
            return throughput(ctx, coroutines, per,
                              [&](int c, int) -> awaitable<void> { co_await redis_only.get(ids[c]); });
        };
        if (round % 2 == 0) {
            best_wt_touch = std::max(best_wt_touch, wt_touch());
            best_redis_touch = std::max(best_redis_touch, redis_touch());
            best_wt_get = std::max(best_wt_get, wt_get());
            best_redis_get = std::max(best_redis_get, redis_get());
        } else {
            best_redis_touch = std::max(best_redis_touch, redis_touch());
            best_wt_touch = std::max(best_wt_touch, wt_touch());
            best_redis_get = std::max(best_redis_get, redis_get());
            best_wt_get = std::max(best_wt_get, wt_get());
        }
    }
    const auto st = store.cache_stats();
    const double touches = static_cast<double>(st.primary_touches + st.cached_touches);
    bench::value(bench_name, "write_through_touch_64_coroutines", best_wt_touch, "ops/s");
    bench::value(bench_name, "redis_only_touch_64_coroutines", best_redis_touch, "ops/s");
    bench::value(bench_name, "write_through_get_64_coroutines", best_wt_get, "ops/s");
    bench::value(bench_name, "redis_only_get_64_coroutines", best_redis_get, "ops/s");
    bench::value(bench_name, "pg_writes_per_1000_touches", touches > 0 ? 1000.0 * st.primary_touches / touches : 0,
                 "writes");
    bench::ratio(bench_name, "touch_vs_redis_only", best_wt_touch / best_redis_touch,
                 "redis_store touch, same server, 64 coroutines", ">= 0.8");
    bench::ratio(bench_name, "get_vs_redis_only", best_wt_get / best_redis_get,
                 "redis_store get, same server, 64 coroutines", ">= 0.9");
    return 0;
}

// bench/events_bench.cpp — durable events (issue 14): the outbox's cost on a
// write, and the relay into JetStream against nats.c alone, in one run on
// the same servers (only ratios hold on a noisy machine).
//
//   events_bench REDIS_URL NATS_URL [--quick]
//
// Cases (doc/benchmarks.md):
//   outbox_create_cost  redis_store create throughput with the outbox on
//                       (each create carries its `created` event, XADDed in
//                       the same script) over the same creates without it;
//                       64 coroutines on one connection. Target >= 0.85.
//   relay_vs_nats_c     events per second from a filled Redis outbox to
//                       JetStream acknowledgements through event_relay +
//                       nats_sink (read, publish, wait for acks, trim), over
//                       a plain nats.c loop publishing the same payloads,
//                       subjects and Nats-Msg-Ids with js_PublishMsgAsync
//                       and the same in-flight cap. Target >= 0.8.
//   commit_to_ack_ms    median time from a create (with its event) returning
//                       to JetStream acknowledging that event, one at a time,
//                       relay running (informative).
#include <sessionkit/event_relay.hpp>
#include <sessionkit/sink/nats.hpp>
#include <sessionkit/store/redis.hpp>

#include "bench_format.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json/serialize.hpp>

#include <nats/nats.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using namespace sessionkit;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view bench_name = "events";
constexpr std::size_t in_flight_cap = 1024;

template <class T>
T wait(asio::io_context& ctx, awaitable<T> op) {
    auto fut = asio::co_spawn(ctx, std::move(op), asio::use_future);
    ctx.restart();
    while (fut.wait_for(0s) != std::future_status::ready) ctx.run_one();
    return fut.get();
}

std::string unique_tag() {
    return std::to_string(std::chrono::steady_clock::now().time_since_epoch().count() % 1'000'000'007);
}

session record_of(const std::string& id, time_point now) {
    session s;
    s.id = id;
    s.owner = "bench";
    s.status = session_status::active;
    s.created_at = now;
    s.last_active = now;
    s.idle_timeout = 1h;
    s.idle_deadline = now + 1h;
    s.attributes = {{"plan", "pro"}, {"region", "eu-west-1"}};
    return s;
}

// ---- outbox_create_cost ------------------------------------------------------

awaitable<void> create_some(redis_store& store, const std::string& prefix, std::atomic<std::size_t>& next,
                            std::size_t n, bool with_event) {
    for (;;) {
        const std::size_t i = next++;
        if (i >= n) co_return;
        const auto now = system_clock_policy{}.now();
        const std::string id = prefix + std::to_string(i);
        const session rec = record_of(id, now);
        if (with_event) {
            boost::json::object data;
            data["owner"] = "bench";
            std::vector<event> events;
            events.push_back(make_event(event_type::created, id, now, std::move(data)));
            co_await store.create(rec, events);
        } else {
            co_await store.create(rec);
        }
    }
}

double creates_per_second(asio::io_context& ctx, redis_store& store, const std::string& prefix, std::size_t n,
                          bool with_event) {
    std::atomic<std::size_t> next{0};
    const double secs = bench::seconds_of([&] {
        std::vector<std::future<void>> all;
        for (int c = 0; c < 64; ++c)
            all.push_back(asio::co_spawn(ctx, create_some(store, prefix, next, n, with_event), asio::use_future));
        ctx.restart();
        for (auto& f : all)
            while (f.wait_for(0s) != std::future_status::ready) ctx.run_one();
        for (auto& f : all) f.get();
    });
    return static_cast<double>(n) / secs;
}

// ---- the nats.c reference ----------------------------------------------------

struct reference_publisher {
    std::mutex mutex;
    std::condition_variable room;
    std::size_t in_flight = 0;
    std::size_t failed = 0;

    static void on_ack(jsCtx*, natsMsg* msg, jsPubAck*, jsPubAckErr* pae, void* closure) {
        auto* self = static_cast<reference_publisher*>(closure);
        {
            std::lock_guard lock(self->mutex);
            --self->in_flight;
            if (pae) ++self->failed;
        }
        self->room.notify_one();
        natsMsg_Destroy(msg);
    }
};

void check(natsStatus s, const char* what) {
    if (s != NATS_OK) throw std::runtime_error(std::string("nats.c reference: ") + what + ": " + natsStatus_GetText(s));
}

struct prepared_message {
    std::string subject, id, payload;
};

// Publishes `messages` to a fresh stream with nats.c alone; events/s.
double nats_c_rate(const std::string& url, const std::string& stream, const std::string& subjects,
                   const std::vector<prepared_message>& messages) {
    natsConnection* nc = nullptr;
    check(natsConnection_ConnectTo(&nc, url.c_str()), "connect");
    reference_publisher ref;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.AckHandler = &reference_publisher::on_ack;
    jo.PublishAsync.AckHandlerClosure = &ref;
    jo.PublishAsync.MaxPending = static_cast<int64_t>(in_flight_cap) + 64;
    jsCtx* js = nullptr;
    check(natsConnection_JetStream(&js, nc, &jo), "JetStream context");
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    cfg.Name = stream.c_str();
    const char* subject_list[] = {subjects.c_str()};
    cfg.Subjects = subject_list;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Duplicates = std::chrono::nanoseconds(2min).count();
    jsStreamInfo* info = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    check(js_AddStream(&info, js, &cfg, nullptr, &jerr), "add stream");
    jsStreamInfo_Destroy(info);

    const double secs = bench::seconds_of([&] {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 5000;
        for (const auto& m : messages) {
            {
                std::unique_lock lock(ref.mutex);
                ref.room.wait(lock, [&] { return ref.in_flight < in_flight_cap; });
                ++ref.in_flight;
            }
            natsMsg* msg = nullptr;
            check(
                natsMsg_Create(&msg, m.subject.c_str(), nullptr, m.payload.data(), static_cast<int>(m.payload.size())),
                "message");
            po.MsgId = m.id.c_str();
            check(js_PublishMsgAsync(js, &msg, &po), "publish");
        }
        std::unique_lock lock(ref.mutex);
        ref.room.wait(lock, [&] { return ref.in_flight == 0; });
    });
    if (ref.failed) std::fprintf(stderr, "events_bench: nats.c reference: %zu publishes failed\n", ref.failed);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return static_cast<double>(messages.size()) / secs;
}

// ---- commit_to_ack: a sink that notes when each event was confirmed ----------

class timed_sink {
public:
    explicit timed_sink(nats_sink inner) : inner_(std::move(inner)) {}
    void emit(const event& e) noexcept { inner_.emit(e); }
    awaitable<void> publish(std::span<const event> batch) {
        co_await inner_.publish(batch);
        const auto now = std::chrono::steady_clock::now();
        std::lock_guard lock(state_->mutex);
        for (const auto& e : batch) state_->acked[e.id] = now;
        state_->count += batch.size();
    }
    std::optional<std::chrono::steady_clock::time_point> acked_at(const std::string& id) const {
        std::lock_guard lock(state_->mutex);
        auto it = state_->acked.find(id);
        if (it == state_->acked.end()) return std::nullopt;
        return it->second;
    }
    std::size_t count() const {
        std::lock_guard lock(state_->mutex);
        return state_->count;
    }

private:
    struct state {
        mutable std::mutex mutex;
        std::map<std::string, std::chrono::steady_clock::time_point> acked;
        std::size_t count = 0;
    };
    nats_sink inner_;
    std::shared_ptr<state> state_ = std::make_shared<state>();
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) {
        std::cerr << "usage: events_bench REDIS_URL NATS_URL [--quick]\n";
        return 2;
    }
    const std::string redis_url = argv[1];
    const std::string nats_url = argv[2];
    const bool quick = argc > 3 && std::string_view(argv[3]) == "--quick";
    const std::size_t creates = quick ? 5'000 : 20'000;
    const std::size_t relayed = quick ? 5'000 : 20'000;
    const std::size_t serial = quick ? 100 : 400;
    const std::string tag = unique_tag();

    try {
        asio::io_context ctx;
        auto rcfg = redis::connection_options::from_url(redis_url);

        // outbox_create_cost: interleaved rounds, the best of each side.
        {
            redis_store_options plain_opts;
            plain_opts.prefix = "evb-plain-" + tag + ":";
            redis_store plain(ctx.get_executor(), rcfg, plain_opts);
            redis_store_options boxed_opts;
            boxed_opts.prefix = "evb-boxed-" + tag + ":";
            boxed_opts.outbox = outbox_options{.max_events = 10'000'000};
            redis_store boxed(ctx.get_executor(), rcfg, boxed_opts);
            wait(ctx, plain.ping());
            wait(ctx, boxed.ping());
            creates_per_second(ctx, plain, "warm-", 2'000, false);
            creates_per_second(ctx, boxed, "warm-", 2'000, true);
            double best_plain = 0, best_boxed = 0;
            for (int round = 0; round < 3; ++round) {
                const std::string r = "r" + std::to_string(round) + "-";
                best_plain = std::max(best_plain, creates_per_second(ctx, plain, r, creates, false));
                best_boxed = std::max(best_boxed, creates_per_second(ctx, boxed, r, creates, true));
            }
            bench::value(bench_name, "create_without_outbox", best_plain, "ops/s");
            bench::value(bench_name, "create_with_outbox", best_boxed, "ops/s");
            bench::ratio(bench_name, "outbox_create_cost", best_boxed / best_plain, "redis_store create without outbox",
                         ">= 0.85");
        }

        // relay_vs_nats_c: the same events, subjects and ids both ways;
        // interleaved rounds, the best of each side (the machine is noisy).
        {
            double best_ref = 0, best_ours = 0;
            for (int round = 0; round < 3; ++round) {
                const std::string rtag = tag + "r" + std::to_string(round);
                redis_store_options opts;
                opts.prefix = "evb-relay-" + rtag + ":";
                opts.outbox = outbox_options{.max_events = 10'000'000};
                redis_store store(ctx.get_executor(), rcfg, opts);
                std::vector<event> events;
                events.reserve(relayed);
                const auto now = system_clock_policy{}.now();
                for (std::size_t i = 0; i < relayed; ++i)
                    events.push_back(make_event(event_type::status_changed, "relay-" + std::to_string(i / 4), now,
                                                {{"from", "active"}, {"to", "idle"}}));
                // Committed: four events per session, written with its create.
                for (std::size_t i = 0; i < relayed; i += 4) {
                    std::vector<event> four(events.begin() + static_cast<std::ptrdiff_t>(i),
                                            events.begin() + static_cast<std::ptrdiff_t>(std::min(i + 4, relayed)));
                    wait(ctx, store.create(record_of(four.front().session_id, now), four));
                }

                std::vector<prepared_message> reference;
                reference.reserve(relayed);
                const std::string ref_prefix = "evbref" + rtag;
                for (const auto& e : events)
                    reference.push_back({ref_prefix + "." + std::string(to_string(e.type)) + "." + e.session_id, e.id,
                                         boost::json::serialize(to_json(e))});
                const double ref_rate = nats_c_rate(nats_url, "EVBREF" + rtag, ref_prefix + ".>", reference);

                nats_sink_options nopts;
                nopts.url = nats_url;
                nopts.stream = "EVBRELAY" + rtag;
                nopts.subject_prefix = "evbrelay" + rtag;
                nopts.subjects = {nopts.subject_prefix + ".>"};
                nopts.max_in_flight = in_flight_cap;
                auto sink = wait(ctx, nats_sink::connect(nopts));
                event_relay_options ropts;
                ropts.lock_prefix = "evb-relay-" + rtag + ":lease:";
                event_relay<redis_store, nats_sink> relay(store, sink, ropts);
                std::future<void> running;
                const double secs = bench::seconds_of([&] {
                    running = asio::co_spawn(ctx, relay.run(), asio::use_future);
                    ctx.restart();
                    while (relay.stats().published < relayed) ctx.run_one_for(10ms);
                });
                relay.stop();
                while (running.wait_for(0s) != std::future_status::ready) ctx.run_one_for(10ms);
                running.get();
                best_ours = std::max(best_ours, static_cast<double>(relayed) / secs);
                best_ref = std::max(best_ref, ref_rate);
                wait(ctx, sink.close());
            }
            bench::value(bench_name, "nats_c_publish", best_ref, "events/s");
            bench::value(bench_name, "relay_publish", best_ours, "events/s");
            bench::ratio(bench_name, "relay_vs_nats_c", best_ours / best_ref,
                         "nats.c js_PublishMsgAsync loop, same payloads and in-flight cap", ">= 0.8");
        }

        // commit_to_ack_ms: one create at a time, relay running.
        {
            redis_store_options opts;
            opts.prefix = "evb-lat-" + tag + ":";
            opts.outbox = outbox_options{};
            redis_store store(ctx.get_executor(), rcfg, opts);
            nats_sink_options nopts;
            nopts.url = nats_url;
            nopts.stream = "EVBLAT" + tag;
            nopts.subject_prefix = "evblat" + tag;
            nopts.subjects = {nopts.subject_prefix + ".>"};
            timed_sink sink(wait(ctx, nats_sink::connect(nopts)));
            event_relay_options ropts;
            ropts.lock_prefix = "evb-lat-" + tag + ":lease:";
            event_relay<redis_store, timed_sink> relay(store, sink, ropts);
            auto running = asio::co_spawn(ctx, relay.run(), asio::use_future);
            std::vector<double> latencies;
            for (std::size_t i = 0; i < serial; ++i) {
                const auto now = system_clock_policy{}.now();
                const std::string id = "lat-" + std::to_string(i);
                auto e = make_event(event_type::created, id, now, {{"owner", "bench"}});
                wait(ctx, store.create(record_of(id, now), std::vector<event>{e}));
                const auto committed = std::chrono::steady_clock::now();
                std::optional<std::chrono::steady_clock::time_point> acked;
                while (!(acked = sink.acked_at(e.id))) ctx.run_one_for(1ms);
                latencies.push_back(
                    std::max(0.0, std::chrono::duration<double, std::milli>(*acked - committed).count()));
            }
            relay.stop();
            while (running.wait_for(0s) != std::future_status::ready) ctx.run_one_for(10ms);
            running.get();
            std::sort(latencies.begin(), latencies.end());
            bench::value(bench_name, "commit_to_ack_median_ms", latencies[latencies.size() / 2], "ms");
            bench::value(bench_name, "commit_to_ack_p99_ms", latencies[latencies.size() * 99 / 100], "ms");
        }
    } catch (const std::exception& e) {
        std::cerr << "events_bench: " << e.what() << "\n";
        return 1;
    }
    return 0;
}

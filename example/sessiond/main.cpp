// sessiond — a session daemon on the embedded default: memory store, janitor,
// events as JSON lines. (The HTTP API arrives in the next step; until then
// `--demo N` shows the whole lifecycle: sessions are created, one is kept
// alive, the others get a timeout_warning and expire.)
//
//   sessiond [--idle-timeout S] [--max-lifetime S] [--janitor-interval S]
//            [--warning-window S] [--events PATH|-] [--demo N] [--run-for S]
//
// SIGINT/SIGTERM stop the janitor and exit 0.
#include <sessionkit/sessionkit.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/program_options.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

namespace asio = boost::asio;
namespace po = boost::program_options;
using namespace sessionkit;
using namespace std::chrono_literals;

namespace {

constexpr const char* version = "sessiond 0.1.0 (sessionkit core, memory store)";

struct config {
    double idle_timeout_s = 1800;
    double max_lifetime_s = 0;
    double janitor_interval_s = 10;
    double warning_window_s = 60;
    std::string events = "-";
    int demo = 0;
    double run_for_s = 0;
};

milliseconds to_ms(double seconds) { return milliseconds{static_cast<std::int64_t>(std::llround(seconds * 1000))}; }

void need_positive(const char* flag, double v, bool zero_ok = false) {
    if (!std::isfinite(v) || v < 0 || (!zero_ok && v == 0)) {
        char shown[32];
        std::snprintf(shown, sizeof shown, "%g", v);
        throw po::error(std::string("--") + flag + " must be a " + (zero_ok ? "non-negative" : "positive") +
                        " number of seconds, got " + shown);
    }
}

std::optional<config> parse(int argc, char** argv) {
    config c;
    po::options_description opts("sessiond options");
    opts.add_options()
        ("help,h", "show this help")
        ("version", "print the version")
        ("idle-timeout", po::value(&c.idle_timeout_s)->default_value(c.idle_timeout_s),
         "seconds without use before a session expires")
        ("max-lifetime", po::value(&c.max_lifetime_s)->default_value(c.max_lifetime_s),
         "maximum session lifetime in seconds (0: none)")
        ("janitor-interval", po::value(&c.janitor_interval_s)->default_value(c.janitor_interval_s),
         "seconds between janitor sweeps")
        ("warning-window", po::value(&c.warning_window_s)->default_value(c.warning_window_s),
         "seconds before expiry when timeout_warning is sent (0: never)")
        ("events", po::value(&c.events)->default_value(c.events),
         "where events go as JSON lines: a file path, or - for stdout")
        ("demo", po::value(&c.demo)->default_value(c.demo),
         "create N demo sessions; demo-1 is kept alive, the rest expire")
        ("run-for", po::value(&c.run_for_s)->default_value(c.run_for_s),
         "exit after this many seconds (0: run until SIGINT/SIGTERM)");
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, opts), vm);
    if (vm.count("help")) {
        std::cout << "usage: sessiond [options]\n" << opts << '\n';
        return std::nullopt;
    }
    if (vm.count("version")) {
        std::cout << version << '\n';
        return std::nullopt;
    }
    po::notify(vm);
    need_positive("idle-timeout", c.idle_timeout_s);
    need_positive("max-lifetime", c.max_lifetime_s, true);
    need_positive("janitor-interval", c.janitor_interval_s);
    need_positive("warning-window", c.warning_window_s, true);
    need_positive("run-for", c.run_for_s, true);
    if (c.demo < 0 || c.demo > 100000) throw po::error("--demo must be between 0 and 100000");
    return c;
}

void log_line(std::string_view level, std::string_view msg, boost::json::object fields = {}) {
    fields["level"] = level;
    fields["msg"] = msg;
    fields["time"] = to_unix_ms(std::chrono::system_clock::now());
    std::clog << boost::json::serialize(fields) << std::endl;
}

using registry_t = session_registry<memory_store, system_clock_policy, jsonl_sink>;

awaitable<void> keep_alive(registry_t& registry, std::string id, milliseconds every) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (;;) {
        timer.expires_after(every);
        co_await timer.async_wait(asio::use_awaitable);
        auto t = co_await registry.touch(id);
        if (!t || is_final(t->status)) co_return;
    }
}

awaitable<void> run_demo(registry_t& registry, int sessions, milliseconds idle) {
    for (int i = 1; i <= sessions; ++i) {
        acquire_options opts;
        opts.owner = "demo";
        opts.attributes = {{"demo", true}, {"n", i}};
        co_await registry.acquire("demo-" + std::to_string(i), std::move(opts));
    }
    if (sessions > 0) co_await keep_alive(registry, "demo-1", idle / 2);
}

} // namespace

int main(int argc, char** argv) {
    std::optional<config> cfg;
    try {
        cfg = parse(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "sessiond: " << e.what() << "\n(see sessiond --help)\n";
        return 2;
    }
    if (!cfg) return 0;

    try {
        std::unique_ptr<jsonl_sink> sink = cfg->events == "-" ? std::make_unique<jsonl_sink>(std::cout)
                                                              : std::make_unique<jsonl_sink>(cfg->events);
        memory_store store;
        registry_options ropts;
        ropts.idle_timeout = to_ms(cfg->idle_timeout_s);
        if (cfg->max_lifetime_s > 0) ropts.max_lifetime = to_ms(cfg->max_lifetime_s);
        registry_t registry(store, ropts, {}, *sink);

        janitor_options jopts;
        jopts.interval = to_ms(cfg->janitor_interval_s);
        jopts.warning_window = to_ms(cfg->warning_window_s);
        jopts.log = [](std::string_view line) { std::clog << line << std::endl; };
        janitor jan(registry, jopts);

        asio::io_context ctx;
        asio::co_spawn(ctx, jan.run(), asio::detached);
        if (cfg->demo > 0) asio::co_spawn(ctx, run_demo(registry, cfg->demo, ropts.idle_timeout), asio::detached);

        auto stop = [&](std::string_view why) {
            log_line("info", "stopping", {{"reason", why}});
            jan.stop();
            ctx.stop();
        };
        asio::signal_set signals(ctx, SIGINT, SIGTERM);
        signals.async_wait([&](auto ec, int sig) {
            if (!ec) stop(sig == SIGINT ? "SIGINT" : "SIGTERM");
        });
        asio::steady_timer deadline(ctx);
        if (cfg->run_for_s > 0) {
            deadline.expires_after(to_ms(cfg->run_for_s));
            deadline.async_wait([&](auto ec) {
                if (!ec) stop("--run-for elapsed");
            });
        }
        log_line("info", "sessiond started",
                 {{"store", "memory"}, {"idle_timeout_s", cfg->idle_timeout_s},
                  {"janitor_interval_s", cfg->janitor_interval_s}, {"demo_sessions", cfg->demo}});
        ctx.run();
        auto st = store.stats_now();
        log_line("info", "sessiond stopped",
                 {{"sessions", st.sessions}, {"created_total", st.created_total},
                  {"expired_total", st.expired_total}, {"events_dropped", sink->dropped()}});
        return 0;
    } catch (const std::exception& e) {
        log_line("error", "sessiond failed", {{"error", e.what()}});
        return 1;
    }
}

// sandboxd — one Docker container per user session: every `acquire` of a
// user while the session lives returns the same container; `serve` runs the
// janitor that culls sessions idle for 15 minutes (stopping and removing
// their containers) and removes containers that no live session owns.
//
//   sandboxd acquire USER     print the container id of USER's sandbox (starts one if needed)
//   sandboxd release USER     end USER's session and remove its container
//   sandboxd serve            cull idle sandboxes until SIGINT/SIGTERM
//   sandboxd --help
//
// Sessions live in Redis (--redis-url, REDIS_URL) so that any number of
// `sandboxd acquire` processes and `sandboxd serve` instances share them;
// containers on the engine at DOCKER_HOST. Every flag can also come from
// the environment as SANDBOXD_<FLAG>. doc/sandboxd.md documents it all.
#include <sessionkit/sessionkit.hpp>
#include <sessionkit/spawner/docker.hpp>
#include <sessionkit/store/redis.hpp>

#include "common/daemon.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/program_options.hpp>

#include <csignal>
#include <cstdio>
#include <future>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace po = boost::program_options;
using namespace sessionkit;

namespace {

using example::log_line;
using example::optional_jsonl_sink;
using example::to_ms;

constexpr const char* version = "sandboxd 0.1.0 (sessionkit)";

struct options {
    std::string action;  // acquire, release, serve
    std::string user;
    std::string redis_url = "redis://127.0.0.1:6379/0";
    std::string prefix = "sandbox:session:";
    double redis_timeout_s = 2;
    std::string image;
    std::vector<std::string> command;
    std::string deployment = "sandboxd";
    double idle_timeout_s = 900;
    double janitor_interval_s = 10;
    double reconcile_interval_s = 60;
    double stop_grace_s = 10;
    double memory_mib = 512;
    double cpus = 1;
    std::int64_t pids = 256;
    std::string network = "none";
    bool read_only = false;
    std::string events;
    double run_for_s = 0;
};

void need_seconds(const char* flag, double v, bool zero_ok = false) {
    if (!(v > 0 || (zero_ok && v == 0)) || v > 1e9)
        throw po::error(std::string("--") + flag + " must be a " + (zero_ok ? "non-negative" : "positive") +
                        " number of seconds");
}

std::optional<options> parse(int argc, char** argv) {
    options o;
    po::options_description opts("sandboxd options");
    example::add_help_and_version(opts);
    // One option a line, as --help shows them.
    // clang-format off
    opts.add_options()
        ("redis-url", po::value(&o.redis_url)->default_value(o.redis_url), "where sessions live (also REDIS_URL)")
        ("prefix", po::value(&o.prefix)->default_value(o.prefix), "key prefix of the sessions in Redis")
        ("redis-timeout", po::value(&o.redis_timeout_s)->default_value(o.redis_timeout_s), "seconds per Redis request")
        ("image", po::value(&o.image), "the sandbox image (required)")
        ("command", po::value(&o.command)->composing(), "the container's command, one word each (default: the image's)")
        ("deployment", po::value(&o.deployment)->default_value(o.deployment), "label and name prefix of our containers")
        ("idle-timeout", po::value(&o.idle_timeout_s)->default_value(o.idle_timeout_s),
         "seconds without an acquire before a sandbox is culled")
        ("janitor-interval", po::value(&o.janitor_interval_s)->default_value(o.janitor_interval_s),
         "serve: seconds between sweeps")
        ("reconcile-interval", po::value(&o.reconcile_interval_s)->default_value(o.reconcile_interval_s),
         "serve: seconds between reconciliations of containers with sessions")
        ("stop-grace", po::value(&o.stop_grace_s)->default_value(o.stop_grace_s),
         "seconds between SIGTERM and SIGKILL when a sandbox stops")
        ("memory", po::value(&o.memory_mib)->default_value(o.memory_mib), "memory limit per sandbox, MiB (0: none)")
        ("cpus", po::value(&o.cpus)->default_value(o.cpus), "CPU limit per sandbox (0: none)")
        ("pids", po::value(&o.pids)->default_value(o.pids), "process limit per sandbox (0: none)")
        ("network", po::value(&o.network)->default_value(o.network), "network of the sandboxes")
        ("read-only", po::bool_switch(&o.read_only), "read-only root filesystem")
        ("events", po::value(&o.events)->default_value(o.events), "serve: lifecycle events as JSON lines (a path, or -)")
        ("run-for", po::value(&o.run_for_s)->default_value(o.run_for_s), "serve: exit after this many seconds (0: never)");
    // clang-format on
    po::options_description positional_opts;
    positional_opts.add_options()("action", po::value(&o.action))("user", po::value(&o.user));
    po::positional_options_description positional;
    positional.add("action", 1).add("user", 1);
    po::options_description all;
    all.add(opts).add(positional_opts);
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    example::store_environment(opts, "SANDBOXD_", {{"REDIS_URL", "redis-url"}}, vm);
    if (example::answered_help_or_version(vm, "usage: sandboxd acquire USER | release USER | serve  [options]", opts,
                                          version))
        return std::nullopt;
    po::notify(vm);
    if (o.action != "acquire" && o.action != "release" && o.action != "serve")
        throw po::error(o.action.empty() ? "say what to do: acquire USER, release USER or serve"
                                         : "'" + o.action + "' is not an action (acquire, release, serve)");
    if (o.action == "serve" && !o.user.empty()) throw po::error("serve takes no USER");
    if (o.action != "serve") {
        if (o.user.empty()) throw po::error(o.action + " needs a USER");
        if (!is_valid_id(o.user))
            throw po::error("USER '" + o.user + "' must be 1-128 characters of A-Z a-z 0-9 . _ : -");
    }
    if (o.image.empty() && o.action != "release") throw po::error("--image is required (the sandbox image)");
    need_seconds("idle-timeout", o.idle_timeout_s);
    need_seconds("janitor-interval", o.janitor_interval_s);
    need_seconds("reconcile-interval", o.reconcile_interval_s);
    need_seconds("stop-grace", o.stop_grace_s);
    need_seconds("redis-timeout", o.redis_timeout_s);
    need_seconds("run-for", o.run_for_s, true);
    redis::connection_options::from_url(o.redis_url);  // a bad URL is named now
    return o;
}

docker_options docker_config(const options& o) {
    docker_options d;
    d.image = o.image.empty() ? "unused-by-release" : o.image;
    d.command = o.command;
    d.deployment = o.deployment;
    d.memory_bytes = static_cast<std::int64_t>(o.memory_mib * 1024 * 1024);
    d.cpus = o.cpus;
    d.pids_limit = o.pids;
    d.network = o.network;
    d.read_only_root = o.read_only;
    // Nobody here reads a sandbox's output or writes its input, and `acquire`
    // exits at once: no attach stream. `serve` notices dead sandboxes by
    // reconciling.
    d.attach = false;
    return d;
}

using registry_t = basic_session_registry<redis_store, system_clock_policy, optional_jsonl_sink, docker_spawner>;

/// Runs `op` on ctx until it is done (the Redis connection's loops keep ctx busy).
template <class T>
T run_until_done(asio::io_context& ctx, awaitable<T> op) {
    auto done = asio::co_spawn(ctx, std::move(op), asio::use_future);
    while (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) ctx.run_one();
    return done.get();
}

int serve(const options& o, asio::io_context& ctx, registry_t& registry) {
    janitor_options jopts;
    jopts.interval = to_ms(o.janitor_interval_s);
    jopts.reconcile_interval = to_ms(o.reconcile_interval_s);
    jopts.warning_window = std::chrono::milliseconds::zero();
    jopts.log = [](std::string_view line) {
        std::string l(line);
        l += '\n';
        std::fwrite(l.data(), 1, l.size(), stderr);
    };
    janitor jan(registry, jopts);
    jan.on_sweep = [](const sweep_report& r) {
        if (r.expired || r.orphans_removed || r.workers_lost)
            log_line("info", "sweep",
                     {{"culled", r.expired}, {"orphans_removed", r.orphans_removed}, {"workers_lost", r.workers_lost}});
    };
    bool failed = false;
    asio::co_spawn(ctx, jan.run(), [&](std::exception_ptr e) {
        failed = static_cast<bool>(e);
        ctx.stop();
    });
    example::stop_triggers triggers(
        ctx,
        [&](const std::string& why) {
            log_line("info", "stopping", {{"reason", why}});
            jan.stop();
        },
        o.run_for_s, "second signal: exiting without waiting");
    log_line("info", "sandboxd serving",
             {{"image", o.image}, {"deployment", o.deployment}, {"idle_timeout_s", o.idle_timeout_s}});
    ctx.run();
    log_line("info", "sandboxd stopped");
    return failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    auto command_line = example::parse_command_line("sandboxd", parse, argc, argv);
    auto& o = command_line.options;
    if (!o) return command_line.exit_status;
    try {
        asio::io_context ctx;
        auto rcfg = redis::connection_options::from_url(o->redis_url);
        rcfg.request_timeout = to_ms(o->redis_timeout_s);
        rcfg.client_name = "sandboxd";
        redis_store_options ropts;
        ropts.prefix = o->prefix;
        redis_store store(ctx.get_executor(), rcfg, ropts);
        optional_jsonl_sink sink;
        if (o->events == "-")
            sink.sink = std::make_shared<jsonl_sink>(std::cout);
        else if (!o->events.empty())
            sink.sink = std::make_shared<jsonl_sink>(o->events);
        registry_options regopts;
        regopts.idle_timeout = to_ms(o->idle_timeout_s);
        regopts.stop_grace = to_ms(o->stop_grace_s);
        registry_t registry(store, regopts, {}, sink, docker_spawner(ctx.get_executor(), docker_config(*o)));

        if (o->action == "serve") {
            // The janitor logs a failed sweep and tries again: without this
            // check, serve against an absent Redis would run for ever doing
            // nothing. Refuse to start instead, naming what is missing.
            try {
                run_until_done(ctx, store.ping());
            } catch (const std::exception& e) {
                log_line("error", "cannot reach Redis", {{"redis", rcfg.describe()}, {"error", e.what()}});
                return 1;
            }
            return serve(*o, ctx, registry);
        }
        if (o->action == "release") {
            auto done = run_until_done(ctx, registry.terminate(o->user, "released"));
            if (!done) {
                log_line("warn", "no such sandbox", {{"user", o->user}});
                return 1;
            }
            std::cout << to_string(done->status) << '\n';
            return 0;
        }
        acquire_options aopts;
        aopts.owner = o->user;
        auto got = run_until_done(ctx, registry.acquire(o->user, std::move(aopts)));
        if (got.record.status == session_status::stopping) {
            log_line("error", "the sandbox is being stopped; acquire again in a moment", {{"user", o->user}});
            return 1;
        }
        if (!got.record.worker || is_final(got.record.status)) {
            log_line("error", "the sandbox is not running",
                     {{"user", o->user}, {"status", to_string(got.record.status)}});
            return 1;
        }
        std::cout << got.record.worker->id << '\n';
        return 0;
    } catch (const std::exception& e) {
        log_line("error", "sandboxd failed", {{"error", e.what()}});
        return 1;
    }
}

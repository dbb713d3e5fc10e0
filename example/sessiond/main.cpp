// sessiond — the session service: an HTTP JSON API over a session_registry,
// with a janitor that ends idle sessions, and lifecycle events kept in the
// store's outbox and relayed to JSON lines and/or NATS JetStream.
// Runs on the in-memory store with nothing else installed; --store redis or
// --store postgres (where sessionkit::postgres was built) share sessions
// between every sessiond on that store.
//
//   sessiond [--listen 127.0.0.1:8080] [--idle-timeout S] [--token T] ...
//   sessiond --help
//
// Every flag can also come from the environment as SESSIOND_<FLAG> (upper
// case, '-' as '_'), the token also as SESSIONKIT_TOKEN. An empty token is
// an error, and a non-loopback address without a token needs --insecure:
// authentication is never off by accident. SIGINT/SIGTERM stop accepting,
// let requests in flight finish, stop the janitor, exit 0.
// doc/sessiond.md documents every endpoint, flag and metric.
#include <sessionkit/event_relay.hpp>
#include <sessionkit/http/handler.hpp>
#include <sessionkit/http/metrics.hpp>
#include <sessionkit/http/server.hpp>
#include <sessionkit/sessionkit.hpp>
#include <sessionkit/sink/any.hpp>
#include <sessionkit/sink/hub.hpp>
#ifdef SESSIOND_WITH_NATS
#include <sessionkit/sink/nats.hpp>
#endif
#include <sessionkit/spawner/any.hpp>
#include <sessionkit/spawner/docker.hpp>
#include <sessionkit/spawner/process.hpp>
#ifdef SESSIOND_WITH_POSTGRES
#include <sessionkit/store/postgres.hpp>
#include <sessionkit/store/redis_cache.hpp>
#include <sessionkit/store/write_through.hpp>
#endif
#include <sessionkit/store/redis.hpp>

#include "common/daemon.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/program_options.hpp>

#include <sys/resource.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace po = boost::program_options;
using namespace sessionkit;
using namespace std::chrono_literals;

namespace {

using example::log_line;
using example::shown;
using example::to_ms;

#ifdef SESSIOND_WITH_POSTGRES
constexpr const char* version =
    "sessiond 0.5.0 (sessionkit; stores: memory, redis, postgres, postgres+redis; spawners: none, process, docker)";
constexpr const char* stores_available = "memory, redis, postgres, postgres+redis";
#else
constexpr const char* version = "sessiond 0.5.0 (sessionkit; stores: memory, redis; spawners: none, process, docker)";
constexpr const char* stores_available = "memory, redis";
#endif

struct config {
    std::string listen = "127.0.0.1:8080";
    int threads = 1;
    std::string store = "memory";
    std::string spawner = "none";
    std::string worker_command;
    std::vector<std::string> worker_args;
    std::vector<std::string> worker_env;
    std::string worker_dir;
    std::string worker_image;
    std::string deployment = "sessiond";
    double stop_grace_s = 10;
    std::int64_t output_limit = 1 << 20;
    std::string redis_url = "redis://127.0.0.1:6379/0";
    std::string redis_prefix = "session:";
    double redis_timeout_s = 2;
    std::string database_url;
    std::string pg_schema = "sessionkit";
    std::int64_t pg_pool = 4;
    double pg_timeout_s = 5;
    bool pg_pool_given = false;              // else the URL's pool_size, if it has one
    bool pg_timeout_given = false;           // else the URL's request_timeout, if it has one
    std::optional<double> touch_coalesce_s;  // --store postgres+redis; else a quarter of the idle timeout
    std::string on_cache_down = "bypass";
    std::string on_primary_down = "fail";
    double idle_timeout_s = 1800;
    double max_lifetime_s = 0;
    double janitor_interval_s = 10;
    double warning_window_s = 60;
    double history_s = 3600;
    std::vector<std::string> events;
    bool events_fsync = false;
    std::int64_t events_queue = static_cast<std::int64_t>(jsonl_sink::default_max_queued);
    std::int64_t events_keep = 4096;
    std::string nats_url = "nats://127.0.0.1:4222";
    std::string nats_stream = "SESSIONS";
    std::string nats_dead_letters;
    std::int64_t outbox_max = static_cast<std::int64_t>(outbox_options{}.max_events);
    std::string outbox_overflow = "drop_oldest";
    double relay_lease_s = 10;
    double relay_poll_s = 0.1;
    std::string token;
    bool insecure = false;
    std::int64_t body_limit = 1 << 20;
    std::int64_t max_connections = 1024;
    double header_timeout_s = 10;
    double keepalive_timeout_s = 60;
    int demo = 0;
    double run_for_s = 0;
};

// One --events value: jsonl:PATH, PATH, -, nats, or '' (none).
void check_events_target(const std::string& target) {
    if (target.empty() || target == "-") return;
    if (target == "nats") {
#ifndef SESSIOND_WITH_NATS
        throw po::error("--events nats: this sessiond was built without NATS support (libnats was not found)");
#else
        return;
#endif
    }
    if (target.rfind("jsonl:", 0) == 0 && target.size() == 6) throw po::error("--events jsonl: needs a path");
    if (target.find(':') != std::string::npos && target.rfind("jsonl:", 0) != 0 &&
        target.find('/') == std::string::npos)
        throw po::error("--events '" + target + "' is not a target (jsonl:PATH, PATH, -, nats)");
}

void need_seconds(const char* flag, double v, bool zero_ok = false) {
    if (!std::isfinite(v) || v < 0 || (!zero_ok && v == 0) || v > 3'155'760'000.0) {
        throw po::error(std::string("--") + flag + " must be a " + (zero_ok ? "non-negative" : "positive") +
                        " number of seconds (at most 100 years), got " + shown(v));
    }
}

// Only this host can connect (127.0.0.0/8, ::1, or ::ffff:127.x.y.z).
bool loopback(const asio::ip::address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).is_loopback();
    return a.is_loopback();
}

// A token that is there but cannot work is an error, never "no
// authentication": `--token "$UNSET"` must not open the API to everyone.
// (An empty variable is ignored only when --token, which wins, is given.)
void check_token(const po::variables_map& vm, const std::string& token, bool on_command_line) {
    for (const char* name : {"SESSIOND_TOKEN", "SESSIONKIT_TOKEN"})
        if (const char* v = std::getenv(name); v && !*v && !on_command_line)
            throw po::error(std::string(name) +
                            " is set but empty: that would turn authentication off. "
                            "Set a token, or unset " +
                            name + " to serve without one");
    if (!vm.count("token")) return;
    if (token.empty())
        throw po::error("--token is empty: that would turn authentication off. Give a token, or leave --token "
                        "out to serve without one");
    for (char ch : token)
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f)
            throw po::error("--token holds a control character: it could never be sent in an Authorization header");
    if (token.front() == ' ' || token.back() == ' ' || token.front() == '\t' || token.back() == '\t')
        throw po::error("--token begins or ends with white space: clients could never send it (HTTP trims it)");
}

asio::ip::tcp::endpoint parse_listen(const std::string& text) {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) throw po::error("--listen must be HOST:PORT, got '" + text + "'");
    std::string host = text.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty() || host == "*") host = "0.0.0.0";
    if (host == "localhost") host = "127.0.0.1";
    boost::system::error_code ec;
    auto address = asio::ip::make_address(host, ec);
    if (ec) throw po::error("--listen: '" + host + "' is not an IP address");
    const std::string port_text = text.substr(colon + 1);
    char* end = nullptr;
    long port = std::strtol(port_text.c_str(), &end, 10);
    if (port_text.empty() || *end != '\0' || port < 0 || port > 65535)
        throw po::error("--listen: '" + port_text + "' is not a port number (0-65535)");
    return {address, static_cast<unsigned short>(port)};
}

std::optional<config> parse(int argc, char** argv) {
    config c;
    po::options_description opts("sessiond options");
    example::add_help_and_version(opts);
    // One option a line, as --help shows them.
    // clang-format off
    opts.add_options()
        ("listen", po::value(&c.listen)->default_value(c.listen), "HOST:PORT to serve HTTP on (port 0: any free port)")
        ("threads", po::value(&c.threads)->default_value(c.threads), "threads running the server")
        ("store", po::value(&c.store)->default_value(c.store),
         "session store: memory, redis, postgres or postgres+redis (PostgreSQL behind a Redis cache; USE_REDIS=true "
         "also selects redis)")
        ("spawner", po::value(&c.spawner)->default_value(c.spawner),
         "what each session owns: none, process (one --worker-command process per session) or docker "
         "(one --worker-image container per session, on DOCKER_HOST)")
        ("worker-command", po::value(&c.worker_command),
         "process: the program (a path, or a name in PATH); docker: the command's first word (default: the image's)")
        ("worker-arg", po::value(&c.worker_args)->composing(), "one argument of the worker's command (repeat for more)")
        ("worker-env", po::value(&c.worker_env)->composing(),
         "NAME=VALUE added to the worker's environment (repeat for more)")
        ("worker-image", po::value(&c.worker_image), "--spawner docker: the image (it must be on the engine)")
        ("worker-dir", po::value(&c.worker_dir), "--spawner process: working directory (default: sessiond's)")
        ("deployment", po::value(&c.deployment)->default_value(c.deployment),
         "names this deployment's workers (SESSIONKIT_DEPLOYMENT, labels)")
        ("stop-grace", po::value(&c.stop_grace_s)->default_value(c.stop_grace_s),
         "seconds a worker gets between SIGTERM and SIGKILL")
        ("output-limit", po::value(&c.output_limit)->default_value(c.output_limit),
         "bytes of worker output kept per session, the newest (1 .. 134217728)")
        ("redis-url", po::value(&c.redis_url)->default_value(c.redis_url),
         "redis://[user:pass@]host:port/db, rediss://... or unix:///path (also REDIS_URL)")
        ("redis-prefix", po::value(&c.redis_prefix)->default_value(c.redis_prefix), "key prefix of the redis store")
        ("redis-timeout", po::value(&c.redis_timeout_s)->default_value(c.redis_timeout_s),
         "seconds a Redis request may take before it fails")
        ("database-url", po::value(&c.database_url),
         "--store postgres: postgresql://[user[:pass]@]host[:port]/db[?param=value...] (also DATABASE_URL)")
        ("touch-coalesce", po::value<double>(),
         "--store postgres+redis: seconds a touch may stay in Redis alone before it reaches PostgreSQL (default: a "
         "quarter of each session's idle timeout; 0: every touch)")
        ("on-cache-down", po::value(&c.on_cache_down)->default_value(c.on_cache_down),
         "--store postgres+redis: when Redis fails, bypass it (use PostgreSQL alone until Redis answers) or fail")
        ("on-primary-down", po::value(&c.on_primary_down)->default_value(c.on_primary_down),
         "--store postgres+redis: reads while PostgreSQL is down: fail, or stale (served from Redis, marked "
         "\"stale\": true)")
        ("pg-schema", po::value(&c.pg_schema)->default_value(c.pg_schema),
         "--store postgres: the schema holding sessionkit's tables (created or migrated at start)")
        ("pg-pool", po::value(&c.pg_pool)->default_value(c.pg_pool),
         "--store postgres: pipelined connections to PostgreSQL, 1..256 (default: the URL's pool_size, else 4)")
        ("pg-timeout", po::value(&c.pg_timeout_s)->default_value(c.pg_timeout_s),
         "--store postgres: seconds a PostgreSQL request may take before it fails (default: the URL's "
         "request_timeout, else 5)")
        ("idle-timeout", po::value(&c.idle_timeout_s)->default_value(c.idle_timeout_s),
         "default seconds without use before a session expires")
        ("max-lifetime", po::value(&c.max_lifetime_s)->default_value(c.max_lifetime_s),
         "default maximum session lifetime in seconds (0: none)")
        ("janitor-interval", po::value(&c.janitor_interval_s)->default_value(c.janitor_interval_s),
         "seconds between janitor sweeps")
        ("warning-window", po::value(&c.warning_window_s)->default_value(c.warning_window_s),
         "seconds before expiry when timeout_warning is sent (0: never)")
        ("history", po::value(&c.history_s)->default_value(c.history_s),
         "seconds that ended sessions stay readable")
        ("events", po::value(&c.events)->composing(),
         "where lifecycle events go (repeat for several): jsonl:PATH or PATH (JSON lines appended to a file), "
         "- (JSON lines on stdout), nats (JetStream: --nats-url, --nats-stream)")
        ("events-fsync", po::bool_switch(&c.events_fsync), "fsync --events files after each batch (survives a power cut)")
        ("nats-url", po::value(&c.nats_url)->default_value(c.nats_url),
         "--events nats: nats://[user:pass@]host:port or tls://..., comma-separated for several (also NATS_URL)")
        ("nats-stream", po::value(&c.nats_stream)->default_value(c.nats_stream), "--events nats: the JetStream stream")
        ("nats-dead-letters", po::value(&c.nats_dead_letters),
         "--events nats: file (JSON lines) for events the server refuses for good (default: the log)")
        ("outbox-max", po::value(&c.outbox_max)->default_value(c.outbox_max),
         "events kept per outbox partition while the sinks are down, before --outbox-overflow applies")
        ("outbox-overflow", po::value(&c.outbox_overflow)->default_value(c.outbox_overflow),
         "when the outbox is full: drop_oldest (counted and logged by id) or refuse_writes (session changes fail)")
        ("relay-lease", po::value(&c.relay_lease_s)->default_value(c.relay_lease_s),
         "seconds an outbox partition stays leased to a relay that stopped renewing (a killed sessiond)")
        ("relay-poll", po::value(&c.relay_poll_s)->default_value(c.relay_poll_s),
         "seconds between reads of an idle outbox partition (other instances' events; ours wake it at once)")
        ("events-keep", po::value(&c.events_keep)->default_value(c.events_keep),
         "lifecycle events kept in memory for GET /api/v1/events and its ?follow=1 streams to resume from "
         "(0: that endpoint is off)")
        ("events-queue", po::value(&c.events_queue)->default_value(c.events_queue),
         "event lines held for a slow --events reader; events past that are dropped and counted")
        ("token", po::value(&c.token), "bearer token required on /api/ (also SESSIONKIT_TOKEN); never empty")
        ("insecure", po::bool_switch(&c.insecure),
         "serve a non-loopback --listen address without --token (anyone who can connect may create and end "
         "sessions)")
        ("body-limit", po::value(&c.body_limit)->default_value(c.body_limit), "largest request body, bytes")
        ("max-connections", po::value(&c.max_connections)->default_value(c.max_connections),
         "open connections at most; more are answered 503")
        ("header-timeout", po::value(&c.header_timeout_s)->default_value(c.header_timeout_s),
         "seconds to receive a whole request once it began")
        ("keepalive-timeout", po::value(&c.keepalive_timeout_s)->default_value(c.keepalive_timeout_s),
         "seconds an idle keep-alive connection stays open")
        ("demo", po::value(&c.demo)->default_value(c.demo),
         "create N demo sessions at start; demo-1 is kept alive, the rest expire")
        ("run-for", po::value(&c.run_for_s)->default_value(c.run_for_s),
         "exit after this many seconds (0: until SIGINT/SIGTERM)");
    // clang-format on
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, opts), vm);
    const bool token_on_command_line = vm.count("token") > 0;
    // The token has two names; two different tokens leave no right answer.
    const char* sessiond_token = std::getenv("SESSIOND_TOKEN");
    const char* sessionkit_token = std::getenv("SESSIONKIT_TOKEN");
    if (!token_on_command_line && sessiond_token && sessionkit_token &&
        std::string_view(sessiond_token) != sessionkit_token)
        throw po::error("SESSIOND_TOKEN and SESSIONKIT_TOKEN are both set, to different tokens: set one of them");
    // SESSIOND_IDLE_TIMEOUT=60 is --idle-timeout 60, SESSIOND_TOKEN is
    // --token (and so is SESSIONKIT_TOKEN, unless SESSIOND_TOKEN is set).
    std::map<std::string, std::string> aliases{
        {"REDIS_URL", "redis-url"}, {"NATS_URL", "nats-url"}, {"DATABASE_URL", "database-url"}};
    if (!sessiond_token) aliases.emplace("SESSIONKIT_TOKEN", "token");
    example::store_environment(opts, "SESSIOND_", aliases, vm);
    if (example::answered_help_or_version(vm, "usage: sessiond [options]", opts, version,
                                          "\nEvery option can also be set as SESSIOND_<OPTION> "
                                          "in the environment (e.g. SESSIOND_IDLE_TIMEOUT=600).\n"))
        return std::nullopt;
    po::notify(vm);
    check_token(vm, c.token, token_on_command_line);
    need_seconds("idle-timeout", c.idle_timeout_s);
    need_seconds("max-lifetime", c.max_lifetime_s, true);
    need_seconds("janitor-interval", c.janitor_interval_s);
    need_seconds("warning-window", c.warning_window_s, true);
    need_seconds("history", c.history_s, true);
    need_seconds("header-timeout", c.header_timeout_s);
    need_seconds("keepalive-timeout", c.keepalive_timeout_s);
    need_seconds("run-for", c.run_for_s, true);
    if (c.threads < 1 || c.threads > 256) throw po::error("--threads must be between 1 and 256");
    if (c.demo < 0 || c.demo > 100000) throw po::error("--demo must be between 0 and 100000");
    // Signed on purpose: program_options turns "-1" into a huge unsigned.
    if (c.body_limit < 1 || c.body_limit > (std::int64_t{1} << 32))
        throw po::error("--body-limit must be between 1 byte and 4 GiB, got " + std::to_string(c.body_limit));
    if (c.max_connections < 1 || c.max_connections > 1'000'000)
        throw po::error("--max-connections must be between 1 and 1000000, got " + std::to_string(c.max_connections));
    need_seconds("redis-timeout", c.redis_timeout_s);
    // USE_REDIS=true picks redis unless --store (or SESSIOND_STORE) says otherwise.
    if (const char* use = std::getenv("USE_REDIS"); use && vm["store"].defaulted()) {
        const std::string v = use;
        if (v == "true" || v == "1" || v == "yes")
            c.store = "redis";
        else if (v != "false" && v != "0" && v != "no" && !v.empty())
            throw po::error("USE_REDIS must be true or false, got '" + v + "'");
    }
    if (c.store == "postgres" || c.store == "postgres+redis") {
#ifndef SESSIOND_WITH_POSTGRES
        throw po::error("--store " + c.store +
                        ": this sessiond was built without PostgreSQL support (libpq >= 14 was not found)");
#endif
    } else if (c.store != "memory" && c.store != "redis") {
        throw po::error("--store '" + c.store + "' is not a store (available: " + stores_available + ")");
    }
    if (c.store == "redis" || c.store == "postgres+redis")
        redis::connection_options::from_url(c.redis_url);  // a bad URL is named now
    if (vm.count("touch-coalesce")) {
        c.touch_coalesce_s = vm["touch-coalesce"].as<double>();
        need_seconds("touch-coalesce", *c.touch_coalesce_s, true);
    }
    if (c.on_cache_down != "bypass" && c.on_cache_down != "fail")
        throw po::error("--on-cache-down must be bypass or fail, got '" + c.on_cache_down + "'");
    if (c.on_primary_down != "fail" && c.on_primary_down != "stale")
        throw po::error("--on-primary-down must be fail or stale, got '" + c.on_primary_down + "'");
    if (c.store != "postgres+redis" &&
        (vm.count("touch-coalesce") || !vm["on-cache-down"].defaulted() || !vm["on-primary-down"].defaulted()))
        throw po::error("--touch-coalesce, --on-cache-down and --on-primary-down apply to --store postgres+redis only");
    c.pg_pool_given = !vm["pg-pool"].defaulted();
    c.pg_timeout_given = !vm["pg-timeout"].defaulted();
    if (c.pg_pool < 1 || c.pg_pool > 256)
        throw po::error("--pg-pool must be between 1 and 256 connections, got " + std::to_string(c.pg_pool));
    need_seconds("pg-timeout", c.pg_timeout_s);
#ifdef SESSIOND_WITH_POSTGRES
    if (c.store == "postgres" || c.store == "postgres+redis") {
        if (c.database_url.empty())
            throw po::error("--store " + c.store +
                            " needs --database-url (or DATABASE_URL): where PostgreSQL is, e.g. "
                            "postgresql://user@127.0.0.1:5432/db");
        // A bad URL or schema name is named now, not at the first request.
        try {
            postgres::connection_options::from_url(c.database_url);
        } catch (const sessionkit::system_error& e) {
            throw po::error("--database-url: " + e.message());
        }
        try {
            postgres_schema::check_schema_name(c.pg_schema);
        } catch (const sessionkit::system_error& e) {
            throw po::error("--pg-schema: " + e.message());
        }
    }
#endif
    need_seconds("stop-grace", c.stop_grace_s);
    if (c.output_limit < 1 || c.output_limit > (std::int64_t{128} << 20))
        throw po::error("--output-limit must be 1 .. 134217728 bytes (128 MiB), got " + std::to_string(c.output_limit));
    if (c.spawner != "none" && c.spawner != "process" && c.spawner != "docker")
        throw po::error("--spawner '" + c.spawner + "' is not a spawner (available: none, process, docker)");
    if (c.spawner == "process" && c.worker_command.empty())
        throw po::error("--spawner process needs --worker-command (the program each session runs)");
    if (c.spawner == "docker" && c.worker_image.empty())
        throw po::error("--spawner docker needs --worker-image (the image each session's container runs)");
    if (c.spawner == "none" && (!c.worker_command.empty() || !c.worker_args.empty() || !c.worker_env.empty() ||
                                !c.worker_dir.empty() || !c.worker_image.empty()))
        throw po::error("--worker-* flags need --spawner process or docker");
    if (c.spawner != "process" && !c.worker_dir.empty()) throw po::error("--worker-dir needs --spawner process");
    if (c.spawner != "docker" && !c.worker_image.empty()) throw po::error("--worker-image needs --spawner docker");
    for (const auto& kv : c.worker_env)
        if (kv.find('=') == std::string::npos || kv.front() == '=')
            throw po::error("--worker-env must be NAME=VALUE, got '" + kv + "'");
    for (auto& e : c.events) check_events_target(e);
    std::erase(c.events, std::string());  // --events '' (the old way to say none)
    if (c.outbox_max < 1 || c.outbox_max > 100'000'000)
        throw po::error("--outbox-max must be between 1 and 100000000 events, got " + std::to_string(c.outbox_max));
    if (c.outbox_overflow != "drop_oldest" && c.outbox_overflow != "refuse_writes")
        throw po::error("--outbox-overflow must be drop_oldest or refuse_writes, got '" + c.outbox_overflow + "'");
    need_seconds("relay-lease", c.relay_lease_s);
    need_seconds("relay-poll", c.relay_poll_s);
    if (c.relay_lease_s < 0.1) throw po::error("--relay-lease must be at least 0.1 seconds");
    if (c.events_queue < 1 || c.events_queue > 10'000'000)
        throw po::error("--events-queue must be between 1 and 10000000 lines, got " + std::to_string(c.events_queue));
    if (c.events_keep < 0 || c.events_keep > 10'000'000)
        throw po::error("--events-keep must be between 0 and 10000000 events, got " + std::to_string(c.events_keep));
    // Validated now, bound later. Reachable from other hosts without a
    // token, anyone could create and end sessions: only when asked to.
    const auto where = parse_listen(c.listen);
    if (!loopback(where.address()) && c.token.empty() && !c.insecure)
        throw po::error("--listen " + c.listen +
                        " is reachable from other hosts and no --token is set: anyone who "
                        "can connect could create and end sessions. Set --token (or SESSIOND_TOKEN), or pass "
                        "--insecure (SESSIOND_INSECURE=true) to serve without authentication");
    return c;
}

// 1800 rather than 1.8E3 in logs when a number of seconds is whole.
boost::json::value seconds_json(double s) {
    if (std::floor(s) == s && std::fabs(s) < 1e15) return static_cast<std::int64_t>(s);
    return s;
}

template <class Registry>
awaitable<void> keep_alive(Registry& registry, std::string id, milliseconds every) {
    auto executor = co_await asio::this_coro::executor;
    asio::steady_timer timer(executor);
    for (;;) {
        timer.expires_after(every);
        co_await timer.async_wait(asio::use_awaitable);
        auto t = co_await registry.touch(id);
        if (!t || is_final(t->status)) co_return;
    }
}

template <class Registry>
awaitable<void> run_demo(Registry& registry, int sessions, milliseconds idle) {
    for (int i = 1; i <= sessions; ++i) {
        acquire_options opts;
        opts.owner = "demo";
        opts.attributes = {{"demo", true}, {"n", i}};
        std::string id = "demo-" + std::to_string(i);
        co_await registry.acquire(id, std::move(opts));
    }
    std::string kept = "demo-1";  // named before co_await (GCC 12, see registry.hpp)
    if (sessions > 0) co_await keep_alive(registry, std::move(kept), idle / 2);
}

}  // namespace

/// Runs the daemon over `store` until a signal (or --run-for) stops it.
/// The spawner --spawner names; its workers are watched on ctx.
any_spawner make_spawner(const config& c, asio::io_context& ctx) {
    if (c.spawner == "docker") {
        docker_options d;
        d.image = c.worker_image;
        if (!c.worker_command.empty()) d.command.push_back(c.worker_command);
        d.command.insert(d.command.end(), c.worker_args.begin(), c.worker_args.end());
        for (const auto& kv : c.worker_env) d.environment[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
        d.deployment = c.deployment;
        return docker_spawner(ctx.get_executor(), std::move(d));
    }
    if (c.spawner != "process") return no_spawner{};
    process_options o;
    o.command = c.worker_command;
    o.args = c.worker_args;
    for (const auto& kv : c.worker_env) o.environment[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
    o.working_directory = c.worker_dir;
    o.deployment = c.deployment;
    o.log = [](std::string_view line) {
        std::string l(line);
        l += '\n';
        std::fwrite(l.data(), 1, l.size(), stderr);
    };
    return process_spawner(ctx.get_executor(), std::move(o));
}

/// Where --events sends events: the sinks, and what the stop line and
/// /metrics read from them.
struct event_outputs {
    sink_list sinks;
    std::vector<std::shared_ptr<jsonl_sink>> jsonl;  ///< files and stdout
    std::function<std::uint64_t()> dead_letters;     ///< the NATS sink's, when there is one
    std::function<std::uint64_t()> duplicates;       ///< the NATS sink's, when there is one
    /// What GET /api/v1/events serves (unless --events-keep 0): fed like
    /// the other sinks, added to `sinks` last by serve().
    std::optional<event_hub> hub;
    bool configured = false;  ///< --events named a target: the store keeps an outbox
    bool any() const noexcept { return configured; }
    std::uint64_t dropped() const {
        std::uint64_t n = 0;
        for (const auto& j : jsonl) n += j->dropped();
        return n;
    }
};

event_outputs make_event_outputs(const config& c) {
    event_outputs out;
    out.configured = !c.events.empty();
    if (c.events_keep > 0) out.hub.emplace(static_cast<std::size_t>(c.events_keep));
    const jsonl_sink_options jopts{static_cast<std::size_t>(c.events_queue), c.events_fsync};
    for (const auto& target : c.events) {
        if (target == "nats") continue;  // added by the caller, which owns the executor
        std::shared_ptr<jsonl_sink> sink;
        if (target == "-")
            sink = std::make_shared<jsonl_sink>(std::cout, jopts.max_queued);
        else
            sink = std::make_shared<jsonl_sink>(target.rfind("jsonl:", 0) == 0 ? target.substr(6) : target, jopts);
        out.jsonl.push_back(sink);
        // The list holds a handle sharing the writer (jsonl_sink copies do).
        out.sinks.add(any_sink(*sink));
    }
    return out;
}

// With --events, a store that can keep an outbox keeps one.
template <class StoreOptions>
void enable_outbox(StoreOptions& options, const config& c) {
    if constexpr (requires { options.outbox = outbox_options{}; }) {
        if (c.events.empty()) return;
        outbox_options o;
        o.max_events = static_cast<std::size_t>(c.outbox_max);
        o.overflow =
            c.outbox_overflow == "refuse_writes" ? outbox_overflow::refuse_writes : outbox_overflow::drop_oldest;
        options.outbox = o;
    }
}

template <class Store>
awaitable<outbox_stats> outbox_figures(Store& store) {
    if constexpr (outbox_store<Store>)
        co_return co_await store.outbox_stats();
    else
        co_return outbox_stats{};
}

// The relay of a store with an outbox; a store without one publishes
// directly (best effort), and this stands in for the relay.
template <class Store, bool = outbox_store<Store>>
struct relay_for {
    using type = event_relay<Store, sink_list>;
};
template <class Store>
struct relay_for<Store, false> {
    struct type {
        type(Store&, sink_list&, const event_relay_options&) {}
        awaitable<void> run() { co_return; }
        void stop() noexcept {}
        event_relay_stats stats() const noexcept { return {}; }
    };
};

/// `described` is how a failing /healthz names the store ("PostgreSQL
/// postgresql://user@host:port/db").
template <class Store>
int serve(const config& c, asio::io_context& ctx, Store& store, event_outputs& events, std::string described,
          std::function<std::string()> extra_metrics = {}) {
    const config* cfg = &c;
    using registry_t = basic_session_registry<Store, system_clock_policy, sink_list, any_spawner>;
    using handler_t = http::api_handler<registry_t>;
    registry_options ropts;
    ropts.idle_timeout = to_ms(cfg->idle_timeout_s);
    if (cfg->max_lifetime_s > 0) ropts.max_lifetime = to_ms(cfg->max_lifetime_s);
    ropts.stop_grace = to_ms(cfg->stop_grace_s);
    // Last, so a batch the other sinks refused still reaches followers
    // (the relay's retry of it is recognised by id).
    if (events.hub) events.sinks.add(any_sink(*events.hub));
    registry_t registry(store, ropts, {}, events.sinks, make_spawner(*cfg, ctx));

    // With --events the store keeps an outbox and this relay empties it
    // into the sinks (each partition leased by one sessiond at a time).
    event_relay_options relay_opts;
    relay_opts.lease = to_ms(cfg->relay_lease_s);
    relay_opts.poll_interval = std::max(milliseconds{1}, to_ms(cfg->relay_poll_s));
    relay_opts.log = [](std::string_view line) { log_line("warn", std::string(line), {}); };
    std::optional<typename relay_for<Store>::type> relay;
    if (events.any() && writes_events(store)) relay.emplace(store, events.sinks, relay_opts);

    http::api_metrics metrics;
    metrics.extra = std::move(extra_metrics);
    if (relay) {
        metrics.event_source = [&store, &relay, &events]() -> awaitable<http::event_figures> {
            auto box = co_await outbox_figures(store);
            const auto r = relay->stats();
            http::event_figures f;
            f.outbox_depth = box.depth;
            if (box.oldest)
                f.outbox_lag_seconds = std::max(
                    0.0, std::chrono::duration<double>(std::chrono::system_clock::now() - *box.oldest).count());
            f.published = r.published;
            f.publish_errors = r.publish_errors;
            f.dropped = box.dropped;
            f.dead_letters = events.dead_letters ? events.dead_letters() : 0;
            f.duplicates = events.duplicates ? events.duplicates() : 0;
            co_return f;
        };
    }
    janitor_options jopts;
    jopts.interval = to_ms(cfg->janitor_interval_s);
    jopts.warning_window = to_ms(cfg->warning_window_s);
    jopts.history_retention = to_ms(cfg->history_s);
    jopts.log = [](std::string_view line) {
        std::string l(line);
        l += '\n';
        std::fwrite(l.data(), 1, l.size(), stderr);
    };
    janitor jan(registry, jopts);
    jan.on_sweep = [&metrics](const sweep_report& r) { metrics.record_sweep(r); };
    jan.on_sweep_error = [&metrics](std::string_view) { metrics.record_sweep_failure(); };

    http::router_options rcfg;
    rcfg.token = cfg->token;
    handler_t handler(registry, rcfg, metrics);
    handler.log = jopts.log;
    handler.store_name = cfg->store;
    handler.store_description = std::move(described);
    handler.events = events.hub;
    http::server_options sopts;
    sopts.body_limit = static_cast<std::size_t>(cfg->body_limit);
    sopts.max_connections = static_cast<std::size_t>(cfg->max_connections);
    // Every connection is a descriptor: use all the process may have,
    // and keep the connection limit below it (answering 503 needs one).
    if (rlimit lim{}; ::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
        ::getrlimit(RLIMIT_NOFILE, &lim);
        const auto usable = lim.rlim_cur > 128 ? static_cast<std::size_t>(lim.rlim_cur - 128) : std::size_t{1};
        if (sopts.max_connections > usable) {
            log_line("warn", "--max-connections lowered to fit the open-file limit",
                     {{"max_connections", usable}, {"nofile", static_cast<std::uint64_t>(lim.rlim_cur)}});
            sopts.max_connections = usable;
        }
    }
    sopts.header_timeout = to_ms(cfg->header_timeout_s);
    sopts.idle_timeout = to_ms(cfg->keepalive_timeout_s);

    http::http_server<handler_t> server(ctx.get_executor(), handler, sopts);
    server.on_transport_answer = [&metrics](unsigned status) {
        metrics.record_request(http::route_id::unknown, status, {});
    };
    server.listen(parse_listen(cfg->listen));
    const auto where = server.local_endpoint();

    std::atomic<bool> stopping{false};
    std::atomic<bool> loop_failed{false};
    auto stop = [&](std::string_view why) {
        if (stopping.exchange(true)) return;
        log_line("info", "stopping", {{"reason", why}});
        server.stop();
        jan.stop();
        if (relay && !std::is_same_v<Store, memory_store>) relay->stop();
    };
    // The memory store's outbox ends with the process: once the server and
    // janitor have stopped (no more writes), give the relay up to 10 s to
    // publish what is left, then stop it. A shared store keeps its outbox
    // for the next relay.
    std::uint64_t unpublished = 0;
    auto drain_then_stop_relay = [&]() -> awaitable<void> {
        asio::steady_timer pause(ctx);
        const auto give_up = std::chrono::steady_clock::now() + 10s;
        for (;;) {
            std::uint64_t left = 0;
            try {
                const auto box = co_await outbox_figures(store);
                left = box.depth;
            } catch (...) {}
            if (left == 0 || std::chrono::steady_clock::now() >= give_up) {
                unpublished = left;
                break;
            }
            pause.expires_after(20ms);
            co_await pause.async_wait(asio::use_awaitable);
        }
        relay->stop();
    };
    std::atomic<int> running{relay ? 3 : 2};  // server, janitor, relay
    auto finished = [&](std::exception_ptr e) {
        if (e) {
            // One loop failing leaves a daemon that cannot do its job:
            // stop the other and exit non-zero.
            loop_failed = true;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                log_line("error", "a service loop failed", {{"error", ex.what()}});
            }
            stop("a service loop failed");
        }
        const int left = --running;
        if (left == 1 && relay && stopping && std::is_same_v<Store, memory_store>)
            asio::co_spawn(ctx, drain_then_stop_relay(), asio::detached);
        if (left == 0) ctx.stop();
    };
    asio::co_spawn(server.executor(), server.run(), finished);
    asio::co_spawn(ctx, jan.run(), finished);
    if (relay) asio::co_spawn(ctx, relay->run(), finished);
    if (cfg->demo > 0) asio::co_spawn(ctx, run_demo(registry, cfg->demo, ropts.idle_timeout), asio::detached);

    // The first SIGINT/SIGTERM stops gracefully; a second one ends now.
    example::stop_triggers triggers(
        ctx, [&](const std::string& why) { stop(why); }, cfg->run_for_s, "second signal: exiting without waiting");
    log_line("info", "sessiond started",
             {{"listen", where.address().to_string() + ":" + std::to_string(where.port())},
              {"port", where.port()},
              {"store", cfg->store},
              {"spawner", cfg->spawner},
              {"threads", cfg->threads},
              {"auth", cfg->token.empty() ? "none" : "bearer"},
              {"events", events.any() ? boost::json::value(boost::json::value_from(cfg->events)) : nullptr},
              {"idle_timeout_s", seconds_json(cfg->idle_timeout_s)}});
    if (cfg->token.empty() && !loopback(where.address()))
        log_line("warn", "serving without authentication on an address other hosts can reach (--insecure)",
                 {{"listen", where.address().to_string() + ":" + std::to_string(where.port())}});

    std::vector<std::thread> pool;
    for (int t = 1; t < cfg->threads; ++t) pool.emplace_back([&ctx] { ctx.run(); });
    ctx.run();
    for (auto& t : pool) t.join();

    if (loop_failed) return 1;
    // The events still queued are written before the final count, for as
    // long as requests in flight get (10 s): a reader that stopped reading
    // must not keep sessiond from exiting. (Events the relay did not get
    // to stay in the store's outbox: a sessiond on the same store sends
    // them; with the memory store they end with the process.)
    bool drained = true;
    std::uint64_t unwritten = 0;
    for (const auto& j : events.jsonl)
        if (!j->flush_for(std::chrono::seconds(10))) {
            drained = false;
            unwritten += j->queued();
        }
    boost::json::object fields{{"events_dropped", events.dropped()}};
    if (relay) {
        fields["events_published"] = relay->stats().published;
        if constexpr (std::is_same_v<Store, memory_store>) fields["events_unpublished"] = unpublished;
    }
    if (!drained) fields["events_unwritten"] = unwritten;
    if constexpr (std::is_same_v<Store, memory_store>) {
        // The memory store's figures die with the process: log them.
        auto st = store.stats_now();
        fields["sessions"] = st.sessions;
        fields["created_total"] = st.created_total;
        fields["expired_total"] = st.expired_total;
    }
    log_line("info", "sessiond stopped", std::move(fields));
    // The sink's writer is stuck in a write that may never return: leave
    // without the destructors, which would wait for it (and so would the
    // stdio flush at exit).
    if (!drained) std::_Exit(0);
    return 0;
}

int main(int argc, char** argv) {
    auto command_line = example::parse_command_line("sessiond", parse, argc, argv);
    auto& cfg = command_line.options;
    if (!cfg) return command_line.exit_status;

    try {
        event_outputs events = make_event_outputs(*cfg);

        asio::io_context ctx(cfg->threads);
#ifdef SESSIOND_WITH_NATS
        // Connected (and the stream created or checked) before we listen:
        // a NATS we cannot reach, or a stream configured otherwise, stops
        // sessiond now with the reason rather than filling the outbox.
        std::optional<nats_sink> nats;
        if (std::find(cfg->events.begin(), cfg->events.end(), "nats") != cfg->events.end()) {
            nats_sink_options nopts;
            nopts.url = cfg->nats_url;
            nopts.stream = cfg->nats_stream;
            nopts.dead_letter_file = cfg->nats_dead_letters;
            nopts.log = [](std::string_view line) { log_line("warn", std::string(line), {}); };
            auto connecting = asio::co_spawn(ctx, nats_sink::connect(std::move(nopts)), asio::use_future);
            // The wait is on the sink's thread: ctx may run out of work
            // (and stop) meanwhile, so poll it and restart it afterwards.
            while (connecting.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready) {
                ctx.restart();
                ctx.run_one_for(std::chrono::milliseconds(10));
            }
            ctx.restart();
            try {
                nats = connecting.get();
            } catch (const std::exception& e) {
                log_line("error", "cannot use NATS JetStream", {{"error", e.what()}});
                return 1;
            }
            events.sinks.add(any_sink(*nats));
            events.dead_letters = [sink = *nats] { return sink.dead_letters(); };
            events.duplicates = [sink = *nats] { return sink.stats().duplicates; };
        }
#endif
        if (cfg->store == "redis") {
            auto rcfg = redis::connection_options::from_url(cfg->redis_url);
            rcfg.request_timeout = to_ms(cfg->redis_timeout_s);
            rcfg.client_name = "sessiond";
            redis_store_options options;
            options.prefix = cfg->redis_prefix;
            options.output_limit = static_cast<std::size_t>(cfg->output_limit);
            options.on_corrupt = [](const std::string& key, const std::string& what) {
                log_line("error", "unreadable session record moved aside", {{"key", key}, {"error", what}});
            };
            enable_outbox(options, *cfg);
            redis_store store(ctx.get_executor(), rcfg, options);
            // Refuse to start against a Redis we cannot reach: say so now.
            // (The connection's own loops keep ctx busy: run until answered.)
            auto reachable = asio::co_spawn(ctx, store.ping(), asio::use_future);
            while (reachable.wait_for(std::chrono::seconds(0)) != std::future_status::ready) ctx.run_one();
            try {
                reachable.get();
            } catch (const std::exception& e) {
                log_line("error", "cannot reach Redis", {{"redis", store.connection().name()}, {"error", e.what()}});
                return 1;
            }
            return serve(*cfg, ctx, store, events, "Redis " + store.connection().name());
        }
#ifdef SESSIOND_WITH_POSTGRES
        if (cfg->store == "postgres" || cfg->store == "postgres+redis") {
            auto pcfg = postgres::connection_options::from_url(cfg->database_url);
            if (cfg->pg_pool_given) pcfg.pool_size = static_cast<std::size_t>(cfg->pg_pool);
            if (cfg->pg_timeout_given) pcfg.request_timeout = to_ms(cfg->pg_timeout_s);
            pcfg.application_name = "sessiond";
            const std::string where = "PostgreSQL " + pcfg.describe();
            postgres_store_options options;
            options.schema = cfg->pg_schema;
            options.output_limit = static_cast<std::size_t>(cfg->output_limit);
            enable_outbox(options, *cfg);
            // Refuse to start against a PostgreSQL we cannot reach or whose
            // schema we cannot migrate: say so now. (Until the pool runs,
            // ctx may run out of work: restart it afterwards.)
            auto opening =
                asio::co_spawn(ctx, postgres_store::open(ctx.get_executor(), pcfg, options), asio::use_future);
            while (opening.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
                ctx.restart();
                ctx.run_one_for(std::chrono::milliseconds(10));
            }
            ctx.restart();
            std::unique_ptr<postgres_store> store;
            try {
                store = opening.get();
            } catch (const std::exception& e) {
                log_line("error", "cannot open the PostgreSQL store",
                         {{"postgres", pcfg.describe()}, {"schema", cfg->pg_schema}, {"error", e.what()}});
                return 1;
            }
            if (cfg->store == "postgres") return serve(*cfg, ctx, *store, events, where);

            // postgres+redis: PostgreSQL behind a Redis cache (write_through).
            auto rcfg = redis::connection_options::from_url(cfg->redis_url);
            rcfg.request_timeout = to_ms(cfg->redis_timeout_s);
            rcfg.client_name = "sessiond";
            auto rconn = std::make_shared<redis::connection>(ctx.get_executor(), rcfg);
            redis_cache_options copts;
            copts.prefix = cfg->redis_prefix + "cache:";
            redis_cache cache(rconn, copts);
            write_through_options wopts;
            if (cfg->touch_coalesce_s) wopts.touch_coalesce = to_ms(*cfg->touch_coalesce_s);
            wopts.cache_down = cfg->on_cache_down == "fail" ? on_cache_down::fail : on_cache_down::bypass;
            wopts.primary_down = cfg->on_primary_down == "stale" ? on_primary_down::stale : on_primary_down::fail;
            wopts.log = [](const std::string& line) { log_line("warn", line, {}); };
            // Each switch is an event too, sent straight to the targets (best
            // effort: no session's write carries it, and with the primary
            // down no outbox could).
            wopts.on_switch = [sinks = events.sinks](const store_switch& s) mutable {
                boost::json::object data{{"part", s.part}};
                if (!s.up) {
                    data["policy"] = s.policy;
                    data["reason"] = s.reason;
                }
                sinks.emit(make_event(s.up ? event_type::store_recovered : event_type::store_degraded, "",
                                      std::chrono::system_clock::now(), std::move(data)));
            };
            write_through<postgres_store, redis_cache> cached(*store, cache, wopts);
            auto figures = [&cached] {
                const auto w = cached.cache_stats();
                std::string out;
                auto metric = [&out](std::string_view name, std::string_view type, std::string_view help,
                                     std::string value) {
                    out += "# HELP " + std::string(name) + " " + std::string(help) + "\n# TYPE " + std::string(name) +
                           " " + std::string(type) + "\n" + std::string(name) + " " + value + "\n";
                };
                const auto reads = w.hits + w.misses;
                char ratio[32];
                std::snprintf(ratio, sizeof ratio, "%.4f", reads ? static_cast<double>(w.hits) / reads : 0.0);
                metric("sessionkit_cache_hits_total", "counter", "Reads the Redis cache answered.",
                       std::to_string(w.hits));
                metric("sessionkit_cache_misses_total", "counter", "Reads that went to PostgreSQL.",
                       std::to_string(w.misses));
                metric("sessionkit_cache_hit_ratio", "gauge", "Hits over all reads since start.", ratio);
                metric("sessionkit_cache_errors_total", "counter", "Cache operations that failed.",
                       std::to_string(w.cache_errors));
                metric("sessionkit_cache_in_use", "gauge", "1 while the cache is used, 0 while it is bypassed.",
                       w.cache_in_use ? "1" : "0");
                metric("sessionkit_cache_switched_off_total", "counter", "Times the cache was switched off.",
                       std::to_string(w.cache_switched_off));
                metric("sessionkit_cache_restored_total", "counter", "Times the cache came back into use.",
                       std::to_string(w.cache_restored));
                metric("sessionkit_primary_down", "gauge", "1 while PostgreSQL is seen down.",
                       w.primary_down ? "1" : "0");
                metric("sessionkit_touches_cached_total", "counter", "Touches the cache absorbed.",
                       std::to_string(w.cached_touches));
                metric("sessionkit_touches_written_through_total", "counter", "Touches written to PostgreSQL.",
                       std::to_string(w.primary_touches));
                metric("sessionkit_stale_reads_total", "counter", "Reads served stale while PostgreSQL was down.",
                       std::to_string(w.stale_reads));
                metric("sessionkit_claims_undone_total", "counter",
                       "Janitor claims undone because the cache knew the session fresh.",
                       std::to_string(w.claims_undone));
                return out;
            };
            return serve(*cfg, ctx, cached, events, where + " behind Redis " + rconn->name(), figures);
        }
#endif
        memory_store_options options{.output_limit = static_cast<std::size_t>(cfg->output_limit)};
        enable_outbox(options, *cfg);
        memory_store store(options);
        return serve(*cfg, ctx, store, events, "memory");
    } catch (const std::exception& e) {
        log_line("error", "sessiond failed", {{"error", e.what()}});
        return 1;
    }
}

// ghostd — registers this instance in Redis (the "ghost" seed of our users):
// a key `ghost:session:<hostname>` holding {"pid": <pid>, "time": <ms>},
// written with a TTL and refreshed every TTL/3, so the key exists exactly as
// long as a ghostd runs (plus at most one TTL after a crash).
//
//   ghostd [--redis-url URL] [--name NAME] [--prefix P] [--ttl S] [--run-for S]
//   ghostd --help
//
// Every flag can also come from the environment as GHOSTD_<FLAG> (upper case,
// '-' as '_'), and the URL as REDIS_URL. Failure behaviour:
//   - Redis unreachable (or refusing the SET) at start: exit 1, one log line
//     naming the server and the reason;
//   - a refresh that fails later is logged (level warn) and retried at the
//     next refresh: outages never end the daemon;
//   - SIGINT/SIGTERM (or --run-for): DEL the key, but only while it still
//     holds a value this process wrote (a Lua script compares them), so a
//     second ghostd with the same name is never erased; then exit 0.
// doc/ghostd.md documents the flags, the key and these rules.
#include <sessionkit/redis/connection.hpp>

#include "common/daemon.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <boost/program_options.hpp>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace asio = boost::asio;
namespace po = boost::program_options;
using namespace sessionkit;
namespace resp = sessionkit::redis::resp;

namespace {

using example::describe;
using example::log_line;
using example::shown;
using example::to_ms;

constexpr const char* version = "ghostd 0.1.0 (sessionkit)";
constexpr double max_ttl_s = 86400;  // one day

struct options {
    std::string redis_url = "redis://127.0.0.1:6379/0";
    std::string prefix = "ghost:session:";
    std::string name;  // empty: the host name
    double ttl_s = 600;
    double run_for_s = 0;
};

std::string host_name() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0')
        throw std::runtime_error("cannot read the host name (gethostname failed); set --name");
    return buf;
}

std::optional<options> parse(int argc, char** argv) {
    options o;
    po::options_description desc("ghostd options");
    example::add_help_and_version(desc);
    // One option a line, as --help shows them.
    // clang-format off
    desc.add_options()
        ("redis-url", po::value(&o.redis_url)->default_value(o.redis_url),
         "redis://[user:pass@]host:port/db, rediss://... or unix:///path (also REDIS_URL)")
        ("prefix", po::value(&o.prefix)->default_value(o.prefix), "key prefix")
        ("name", po::value(&o.name), "the key's name after the prefix (default: the host name)")
        ("ttl", po::value(&o.ttl_s)->default_value(o.ttl_s),
         "seconds the key lives without a refresh (refreshed every ttl/3); at most 86400")
        ("run-for", po::value(&o.run_for_s)->default_value(o.run_for_s),
         "exit after this many seconds (0: until SIGINT/SIGTERM)");
    // clang-format on
    // Stray words are collected to be named in the error, never ignored.
    std::vector<std::string> stray;
    po::options_description hidden;
    hidden.add_options()("stray-argument", po::value(&stray));
    po::options_description all;
    all.add(desc).add(hidden);
    po::positional_options_description positional;
    positional.add("stray-argument", -1);
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(all).positional(positional).run(), vm);
    // GHOSTD_TTL=60 is --ttl 60; REDIS_URL is --redis-url. The command line wins.
    example::store_environment(desc, "GHOSTD_", {{"REDIS_URL", "redis-url"}}, vm);
    if (example::answered_help_or_version(
            vm,
            "usage: ghostd [options]\n"
            "Keeps the key <prefix><name> = {\"pid\": ..., \"time\": ...} alive in Redis while running.",
            desc, version,
            "\nEvery option can also be set as GHOSTD_<OPTION> in the environment (e.g. GHOSTD_TTL=60).\n"))
        return std::nullopt;
    po::notify(vm);
    if (!stray.empty()) throw po::error("unexpected argument '" + stray.front() + "' (ghostd takes only --options)");
    if (!std::isfinite(o.ttl_s) || o.ttl_s <= 0 || o.ttl_s > max_ttl_s)
        throw po::error("--ttl must be a positive number of seconds, at most 86400 (1 day), got " + shown(o.ttl_s));
    if (to_ms(o.ttl_s) < milliseconds{3})
        throw po::error("--ttl must be at least 0.003 seconds (refreshed every ttl/3), got " + shown(o.ttl_s));
    if (!std::isfinite(o.run_for_s) || o.run_for_s < 0 || o.run_for_s > 3'155'760'000.0)
        throw po::error("--run-for must be a non-negative number of seconds (at most 100 years), got " +
                        shown(o.run_for_s));
    if (vm.count("name") && o.name.empty()) throw po::error("--name must not be empty");
    try {
        redis::connection_options::from_url(o.redis_url);  // a bad URL is named now, not at connect time
    } catch (const boost::system::system_error& e) {
        throw po::error("--redis-url: " + what_without_code(e));
    }
    return o;
}

/// Why and whether the daemon is stopping; set by signals and --run-for.
struct stop_state {
    bool requested = false;
    std::string reason;
    asio::steady_timer* wake = nullptr;  // the refresh timer, cancelled to stop waiting

    void request(std::string why) {
        if (requested) return;
        requested = true;
        reason = std::move(why);
        if (wake) wake->cancel();
    }
};

// Deletes KEYS[1] only while it holds one of our values (ARGV[1]: the last
// value Redis confirmed; ARGV[2..]: later ones whose SET got no reply and may
// have run). 1: deleted; 0: no such key (expired); -1: another owner's.
constexpr std::string_view delete_if_ours = R"lua(
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
for i = 1, #ARGV do
  if v == ARGV[i] then return redis.call('DEL', KEYS[1]) end
end
return -1
)lua";

struct ghost {
    const options& opts;
    redis::connection& conn;
    stop_state& stop;
    std::string key;
    std::int64_t pid = ::getpid();
    std::int64_t ttl_ms = 0;
    std::string confirmed;              // the last value Redis acknowledged
    std::deque<std::string> uncertain;  // sent since, without a reply: may be set

    // A constructor rather than aggregate initialisation: clang's
    // -Wmissing-field-initializers would flag the defaulted members.
    ghost(const options& o, redis::connection& c, stop_state& s, std::string k)
        : opts(o), conn(c), stop(s), key(std::move(k)) {}

    std::string make_value() const {
        boost::json::object v{{"pid", pid}, {"time", to_unix_ms(std::chrono::system_clock::now())}};
        return boost::json::serialize(v);
    }

    /// The connection's error without its "redis <url>: " prefix: log
    /// lines name the server in their own field.
    std::string reason(const std::exception& e) const {
        std::string why = describe(e);
        const std::string prefix = "redis " + conn.name() + ": ";
        if (why.starts_with(prefix)) why.erase(0, prefix.size());
        return why;
    }

    /// One SET: the empty string on success, else why it failed.
    asio::awaitable<std::string> write() {
        std::string value = make_value();
        std::string failure;
        try {
            auto reply = co_await conn.exec_one("SET", key, value, "PX", ttl_ms);
            if (reply.is_error()) {
                failure = "SET refused: " + reply.text;  // certainly not set
            } else {
                confirmed = std::move(value);
                uncertain.clear();
            }
        } catch (const std::exception& e) {
            // A timeout or a dropped link: the SET may have run. Remember the
            // value (the last few), so that stopping still deletes it.
            failure = reason(e);
            uncertain.push_back(std::move(value));
            if (uncertain.size() > 16) uncertain.pop_front();
        }
        co_return failure;
    }

    /// 0 on a clean stop, 1 when Redis could not be reached at start.
    asio::awaitable<int> run() {
        ttl_ms = to_ms(opts.ttl_s).count();
        const milliseconds every{std::max<std::int64_t>(1, ttl_ms / 3)};
        {
            auto failure = co_await write();
            if (!failure.empty()) {
                log_line("error", "cannot register in Redis at " + conn.name() + ": " + failure,
                         {{"redis", conn.name()}, {"key", key}, {"error", failure}});
                co_return 1;
            }
        }
        log_line(
            "info", "ghostd started",
            {{"key", key}, {"ttl_ms", ttl_ms}, {"refresh_ms", every.count()}, {"pid", pid}, {"redis", conn.name()}});

        auto executor = co_await asio::this_coro::executor;
        asio::steady_timer timer(executor);
        stop.wake = &timer;
        auto next = std::chrono::steady_clock::now() + every;
        std::uint64_t failures = 0;
        while (!stop.requested) {
            timer.expires_at(next);
            boost::system::error_code ec;
            auto token = asio::redirect_error(asio::use_awaitable, ec);
            co_await timer.async_wait(token);
            if (stop.requested) break;
            // On schedule from the last refresh, not from when it finished;
            // after a long stall, from now.
            next = std::max(next + every, std::chrono::steady_clock::now());
            auto failure = co_await write();
            if (!failure.empty()) {
                ++failures;
                log_line("warn", "refresh failed; retrying at the next refresh",
                         {{"key", key},
                          {"redis", conn.name()},
                          {"error", failure},
                          {"failures", failures},
                          {"retry_in_ms", every.count()}});
            } else if (failures > 0) {
                log_line("info", "refresh works again", {{"key", key}, {"failures", failures}});
                failures = 0;
            }
        }
        stop.wake = nullptr;

        // Stopping: delete the key if it is still ours.
        std::string outcome;
        std::string error;
        try {
            resp::command eval("EVAL");
            eval.arg(delete_if_ours).arg("1").arg(key).arg(confirmed);
            for (const auto& v : uncertain) eval.arg(v);
            redis::request req("EVAL delete-if-ours");
            req.push(eval);
            auto replies = co_await conn.exec(std::move(req));
            const auto& reply = replies.front();
            if (reply.is_error())
                error = "EVAL refused: " + reply.text;
            else {
                const auto r = reply.as_integer();
                outcome = r == 1 ? "deleted" : r == 0 ? "already gone (expired)" : "kept: held by another owner";
            }
        } catch (const std::exception& e) {
            error = reason(e);
        }
        if (!error.empty()) {
            // A timed-out EVAL may still run later: say what we know.
            log_line("warn",
                     "deleting the key failed or was not confirmed; if it was not deleted, it expires with its TTL",
                     {{"key", key}, {"redis", conn.name()}, {"error", error}, {"ttl_ms", ttl_ms}});
            outcome = "unconfirmed (Redis error)";
        }
        log_line("info", "ghostd stopped", {{"key", key}, {"reason", stop.reason}, {"key_outcome", outcome}});
        co_return 0;
    }
};

}  // namespace

int main(int argc, char** argv) {
    auto command_line = example::parse_command_line("ghostd", parse, argc, argv);
    auto& opts = command_line.options;
    if (!opts) return command_line.exit_status;

    try {
        const std::string name = opts->name.empty() ? host_name() : opts->name;
        auto rcfg = redis::connection_options::from_url(opts->redis_url);
        rcfg.client_name = "ghostd";

        asio::io_context ctx(1);
        redis::connection conn(ctx.get_executor(), rcfg);
        stop_state stop;
        ghost g{*opts, conn, stop, opts->prefix + name};

        // The first SIGINT/SIGTERM stops (and deletes the key); a second one
        // ends at once.
        example::stop_triggers triggers(
            ctx, [&](const std::string& why) { stop.request(why); }, opts->run_for_s,
            "second signal: exiting without deleting the key");

        int rc = 1;
        // The connection's own loops keep ctx busy forever: stop it when done.
        asio::co_spawn(ctx, g.run(), [&](std::exception_ptr e, int result) {
            rc = result;
            if (e) {
                rc = 1;
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    log_line("error", "ghostd failed", {{"key", g.key}, {"error", describe(ex)}});
                }
            }
            ctx.stop();
        });
        ctx.run();
        return rc;
    } catch (const std::exception& e) {
        log_line("error", "ghostd failed", {{"error", describe(e)}});
        return 1;
    }
}

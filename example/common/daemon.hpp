// example/common/daemon.hpp — what the example daemons (sessiond, ghostd,
// sandboxd) share: JSON log lines on stderr, the command-line prologue
// (options from the environment, --help, --version), and stopping on
// SIGINT/SIGTERM or after --run-for.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/sink/jsonl.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <boost/program_options.hpp>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace sessionkit::example {

inline std::chrono::milliseconds to_ms(double seconds) {
    return std::chrono::milliseconds{static_cast<std::int64_t>(std::llround(seconds * 1000))};
}

/// A number as a person wrote it ("%g"), for error messages.
inline std::string shown(double v) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", v);
    return text;
}

/// One JSON object per line on stderr: level, msg, time (ms since the
/// epoch) and the fields given.
inline void log_line(std::string_view level, std::string_view msg, boost::json::object fields = {}) {
    fields["level"] = level;
    fields["msg"] = msg;
    fields["time"] = to_unix_ms(std::chrono::system_clock::now());
    std::string line = boost::json::serialize(fields);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
}

/// An exception's message without the "[category:code]" tail.
inline std::string describe(const std::exception& e) {
    if (auto* se = dynamic_cast<const boost::system::system_error*>(&e)) return what_without_code(*se);
    return e.what();
}

/// Runs `parse(argc, argv)`, which returns std::optional<Options> (empty
/// after --help or --version). A bad command line is one message naming
/// what was wrong and exit status 2. Returns the options, or the status
/// to exit with. First it ignores SIGPIPE: a daemon writes to sockets and
/// pipes a peer may close, and that must fail a write, not kill it.
template <class Parse>
auto parse_command_line(std::string_view daemon, Parse&& parse, int argc, char** argv) {
    using options_type = typename std::invoke_result_t<Parse, int, char**>::value_type;
    struct result {
        std::optional<options_type> options;
        int exit_status = 0;
    } r;
    std::signal(SIGPIPE, SIG_IGN);
    try {
        r.options = std::forward<Parse>(parse)(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << daemon << ": " << e.what() << "\n(see " << daemon << " --help)\n";
        r.exit_status = 2;
    }
    return r;
}

/// Stores the options given in the environment: <PREFIX>_<OPTION> is
/// --<option> (SESSIOND_IDLE_TIMEOUT=60 is --idle-timeout 60), and each
/// alias names an option outright (REDIS_URL is --redis-url). Store the
/// command line first: what it gives wins. --help and --version are never
/// taken from the environment.
inline void store_environment(const boost::program_options::options_description& opts, const std::string& prefix,
                              const std::map<std::string, std::string>& aliases,
                              boost::program_options::variables_map& vm) {
    auto option_of = [&](const std::string& env) -> std::string {
        if (auto alias = aliases.find(env); alias != aliases.end()) return alias->second;
        if (env.size() <= prefix.size() || env.compare(0, prefix.size(), prefix) != 0) return {};
        std::string name = env.substr(prefix.size());
        for (auto& ch : name) ch = ch == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (name == "help" || name == "version") return {};
        return opts.find_nothrow(name, false) ? name : std::string{};
    };
    boost::program_options::store(boost::program_options::parse_environment(opts, option_of), vm);
}

/// --help and --version, which every daemon has and answered_help_or_version answers.
inline void add_help_and_version(boost::program_options::options_description& opts) {
    opts.add_options()("help,h", "show this help")("version", "print the version");
}

/// Answers --help (`usage`, the options, then `footer`) or --version;
/// true when it did, and the daemon then exits with status 0.
inline bool answered_help_or_version(const boost::program_options::variables_map& vm, std::string_view usage,
                                     const boost::program_options::options_description& opts, std::string_view version,
                                     std::string_view footer = {}) {
    if (vm.count("help")) {
        std::cout << usage << '\n' << opts << footer;
        return true;
    }
    if (vm.count("version")) {
        std::cout << version << '\n';
        return true;
    }
    return false;
}

/// Calls `stop(reason)` on the first SIGINT or SIGTERM, or when `run_for`
/// seconds (if > 0) have passed. A second signal logs `second_signal` and
/// ends the process at once with status 1: an operator who asks twice does
/// not want to wait.
class stop_triggers {
public:
    stop_triggers(boost::asio::io_context& ctx, std::function<void(const std::string&)> stop, double run_for_s,
                  std::string second_signal)
        : signals_(ctx, SIGINT, SIGTERM), deadline_(ctx), stop_(std::move(stop)),
          second_signal_(std::move(second_signal)) {
        wait_for_signal();
        if (run_for_s > 0) {
            deadline_.expires_after(to_ms(run_for_s));
            deadline_.async_wait([this](const boost::system::error_code& ec) {
                if (!ec) trigger("--run-for elapsed");
            });
        }
    }
    stop_triggers(const stop_triggers&) = delete;
    stop_triggers& operator=(const stop_triggers&) = delete;

private:
    void wait_for_signal() {
        signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
            if (ec) return;
            if (stopping_) {
                log_line("warn", second_signal_, {{"signal", sig}});
                std::_Exit(1);
            }
            trigger(sig == SIGINT ? "SIGINT" : "SIGTERM");
            wait_for_signal();
        });
    }
    void trigger(const std::string& reason) {
        stopping_ = true;
        stop_(reason);
    }

    boost::asio::signal_set signals_;
    boost::asio::steady_timer deadline_;
    std::function<void(const std::string&)> stop_;
    std::string second_signal_;
    bool stopping_ = false;
};

/// A sink that writes nowhere or to a jsonl_sink, chosen at run time.
struct optional_jsonl_sink {
    std::shared_ptr<jsonl_sink> sink;
    void emit(const event& e) noexcept {
        if (sink) sink->emit(e);
    }
};
static_assert(event_sink<optional_jsonl_sink>);

}  // namespace sessionkit::example

// sessionkit/spawner/process.hpp — a local process per session
// (component sessionkit::process, Boost.Process v2).
//
// Each worker is a child process in a process group of its own, started
// with the configured command, arguments, environment (plus
// SESSIONKIT_SESSION_ID and SESSIONKIT_DEPLOYMENT) and working directory.
// Its stdout and stderr share one pipe, so the output log holds them
// interleaved exactly as written; its stdin is a pipe that send_input
// writes to. An exit is noticed at once (pidfd) and reported to the
// registry after the last output; stop() sends SIGTERM to the group, waits
// the grace period, then sends SIGKILL.
//
// Nothing a worker starts outlives the daemon. The daemon's child is not
// the worker but a supervisor: a forked copy of the daemon that never
// execs, runs only async-signal-safe calls, and is the worker's parent and
// the subreaper of everything the worker starts (PR_SET_CHILD_SUBREAPER:
// an orphan is reparented to it, not to init). When the daemon dies, even
// by SIGKILL, the kernel sends the supervisor SIGHUP (PR_SET_PDEATHSIG);
// when the worker exits, or the supervisor is told to end, it kills the
// worker's group and every process it adopted, reaps them, and exits with
// the worker's own status, which is what the spawner watches and reports
// (doc/decisions.md, "a supervisor per process worker").
//
// Forks happen on the spawner's own launcher thread: PR_SET_PDEATHSIG
// follows the thread that forked, and that thread lives exactly as long as
// the spawner (doc/decisions.md, "process_spawner forks on a thread of its
// own").
//
// The options are in process/options.hpp; the shared state and a worker's
// handles in detail/process_state.hpp; what a worker id says, and the
// /proc/<pid>/stat reading behind alive() of another daemon's worker, in
// detail/process_worker_id.hpp and process/proc_stat.hpp.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/spawner/detail/process_state.hpp>
#include <sessionkit/spawner/detail/process_supervisor.hpp>
#include <sessionkit/spawner/detail/process_worker_id.hpp>
#include <sessionkit/spawner/input.hpp>
#include <sessionkit/spawner/process/options.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

extern "C" char** environ;

namespace sessionkit {

class process_spawner {
public:
    /// Workers' pipes and exit watches run on `executor`.
    process_spawner(boost::asio::any_io_executor executor, process_options options)
        : state_(std::make_shared<detail::process::state>()) {
        namespace dp = detail::process;
        state_->executor = std::move(executor);
        state_->executable = dp::resolve_command(options.command);
        if (!options.working_directory.empty() && !std::filesystem::is_directory(options.working_directory))
            throw_error(error::invalid_argument,
                        "process_options.working_directory: '" + options.working_directory + "' is not a directory");
        if (options.deployment.empty()) throw_error(error::invalid_argument, "process_options.deployment is empty");
        if (options.kill_timeout <= milliseconds::zero() || options.input_timeout <= milliseconds::zero())
            throw_error(error::invalid_argument, "process_options.kill_timeout and input_timeout must be positive");
        for (const auto& [k, v] : options.environment)
            if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos ||
                v.find('\0') != std::string::npos)
                throw_error(error::invalid_argument,
                            "process_options.environment: '" + detail::printable(k) + "' is not a valid variable");
        state_->options = std::move(options);
        state_->instance = dp::host_name() + ":" + std::to_string(::getpid());
        // A write to the stdin of a worker that just died must be an EPIPE
        // error, not a SIGPIPE that ends the daemon (doc/spawners.md).
        struct sigaction current {};
        if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
        state_->launcher = std::thread([s = state_.get()] { s->launch_ctx.run(); });
        owner_ = std::shared_ptr<void>(nullptr, [s = state_](void*) { s->shutdown(); });
    }

    std::string_view kind() const noexcept { return "process"; }

    void watch(worker_listener listener) { state_->listener = std::move(listener); }

    awaitable<std::optional<worker_ref>> spawn(const session& rec) {
        namespace asio = boost::asio;
        const std::string session_id = rec.id;
        auto st = state_;
        // Fork on the launcher thread; the child's pipes and watch live on our executor.
        // (A raw pointer: the launcher thread must never drop the last
        // reference, or it would join itself.)
        auto launched = co_await asio::co_spawn(st->launch_ctx, launch(st.get(), session_id), asio::use_awaitable);
        std::shared_ptr<detail::process::child> c;
        try {
            c = std::make_shared<detail::process::child>(
                st->executor, session_id, worker_ref{"process", st->instance + ":" + std::to_string(launched.pid)},
                launched.pid, launched.group, launched.input, launched.output);
        } catch (const std::exception& e) {
            // Cannot watch it (pidfd_open refused, say): do not leave it
            // running. Its supervisor ends everything and exits.
            ::kill(launched.pid, SIGTERM);
            ::waitpid(launched.pid, nullptr, 0);
            detail::process::close_quietly(launched.input);
            detail::process::close_quietly(launched.output);
            throw_error(error::spawn_failed, "process_spawner.spawn: session '" + session_id +
                                                 "': cannot watch the new process: " + e.what());
        }
        {
            std::lock_guard lock(st->mutex);
            if (st->closed) {
                c->signal_group(SIGKILL);
                throw_error(error::backend_unavailable, "process_spawner.spawn: the spawner is shutting down");
            }
            st->children[c->ref.id] = c;
        }
        asio::co_spawn(c->strand, read_output(st, c), asio::detached);
        asio::co_spawn(c->strand, await_exit(st, c), asio::detached);
        co_return c->ref;
    }

    awaitable<void> stop(const worker_ref& w, milliseconds grace) {
        auto c = state_->find(w);
        if (!c) co_return;  // gone already, or not ours: never signal a pid we do not own
        co_await boost::asio::co_spawn(c->strand, stop_on_strand(c, grace, state_->options.kill_timeout),
                                       boost::asio::use_awaitable);
    }

    /// For a worker of another daemon on this host (after a restart, or a
    /// second sessiond), /proc says whether that daemon's child still runs;
    /// a worker of another host is reported alive: only its own host can
    /// judge it.
    awaitable<bool> alive(const worker_ref& w) {
        if (auto c = state_->find(w)) co_return !c->exited.is_set();
        co_return detail::process::foreign_worker_runs(w.id, state_->instance, detail::process::read_proc_stat);
    }

    awaitable<std::vector<owned_worker>> list_owned() {
        std::vector<owned_worker> out;
        std::lock_guard lock(state_->mutex);
        for (const auto& [id, c] : state_->children) out.push_back({c->ref, c->session_id});
        co_return out;
    }

    awaitable<void> send_input(const worker_ref& w, std::string_view bytes) {
        auto c = state_->find(w);
        if (!c) throw_error(error::not_found, "process_spawner.send_input: worker '" + w.id + "' is gone");
        std::string copy(bytes);  // named: GCC 12, see doc/decisions.md
        auto write = write_input(c, std::move(copy), state_->options.input_timeout);
        co_await boost::asio::co_spawn(c->strand, std::move(write), boost::asio::use_awaitable);
    }

private:
    struct launched_child {
        pid_t pid;    ///< the supervisor
        pid_t group;  ///< the worker, and its group
        int input;    ///< our end of its stdin
        int output;   ///< our end of its stdout+stderr
    };

    // Runs on the launcher thread: forks the supervisor (which forks the
    // worker) and waits until the worker has run exec, or failed to.
    static awaitable<launched_child> launch(detail::process::state* st, std::string session_id) {
        namespace dp = detail::process;
        const auto& o = st->options;
        std::vector<std::string> env;
        std::map<std::string, std::string> set = o.environment;
        set["SESSIONKIT_SESSION_ID"] = session_id;
        set["SESSIONKIT_DEPLOYMENT"] = o.deployment;
        if (o.inherit_environment)
            for (char** e = ::environ; e && *e; ++e) {
                std::string_view kv(*e);
                if (!set.contains(std::string(kv.substr(0, kv.find('='))))) env.emplace_back(kv);
            }
        for (const auto& [k, v] : set) env.push_back(k + "=" + v);
        std::vector<const char*> envp;
        for (const auto& e : env) envp.push_back(e.c_str());
        envp.push_back(nullptr);
        std::vector<const char*> argv{st->executable.c_str()};
        for (const auto& a : o.args) argv.push_back(a.c_str());
        argv.push_back(nullptr);

        dp::pipe_pair in, out, report;
        const long open_max = ::sysconf(_SC_OPEN_MAX);
        const dp::launch_plan plan{st->executable.c_str(),
                                   argv.data(),
                                   envp.data(),
                                   o.working_directory.empty() ? nullptr : o.working_directory.c_str(),
                                   in.read,
                                   out.write,
                                   report.write,
                                   ::getpid(),
                                   open_max > 0 ? std::min(open_max, 65536L) : 65536L};
        const std::string who = "process_spawner.spawn: session '" + session_id + "': ";
        const pid_t supervisor = ::fork();
        if (supervisor < 0) throw_error(error::spawn_failed, who + "fork: " + std::strerror(errno));
        if (supervisor == 0) dp::supervise(plan);
        dp::close_quietly(in.take_read());
        dp::close_quietly(out.take_write());
        dp::close_quietly(report.take_write());  // so that a supervisor that died is end of file
        dp::launch_report told;
        const bool complete = dp::read_fully(report.read, &told, sizeof told) == sizeof told;
        if (!complete || told.failed_at != dp::launch_report::started) {
            ::waitpid(supervisor, nullptr, 0);  // it has ended (or ends now: its worker could not run)
            if (!complete)
                throw_error(error::spawn_failed,
                            who + "the supervisor process ended before starting '" + st->executable + "'");
            const std::string why = std::strerror(told.error);
            switch (told.failed_at) {
            case dp::launch_report::chdir_failed:
                throw_error(error::spawn_failed,
                            who + "cannot enter working directory '" + o.working_directory + "': " + why);
            case dp::launch_report::exec_failed:
                throw_error(error::spawn_failed, who + "cannot run '" + st->executable + "': " + why);
            default:
                throw_error(error::spawn_failed, who + "cannot start a process for '" + st->executable + "': " + why);
            }
        }
        co_return launched_child{supervisor, told.worker, in.take_write(), out.take_read()};
    }

    static awaitable<void> read_output(std::shared_ptr<detail::process::state> st,
                                       std::shared_ptr<detail::process::child> c) {
        std::string buffer(64 * 1024, '\0');
        for (;;) {
            boost::system::error_code ec;
            const std::size_t n = co_await c->output.async_read_some(
                boost::asio::buffer(buffer), boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            if (n > 0 && st->listener.output && !st->is_closed()) {
                std::string what;
                try {
                    std::string session_id = c->session_id;  // named: GCC 12, see doc/decisions.md
                    worker_ref ref = c->ref;
                    std::string bytes = buffer.substr(0, n);
                    co_await st->listener.output(std::move(session_id), std::move(ref), std::move(bytes));
                } catch (const std::exception& e) {
                    what = e.what();
                }
                if (!what.empty())
                    st->log(boost::json::serialize(boost::json::object{{"level", "error"},
                                                                       {"component", "process_spawner"},
                                                                       {"msg", "output lost"},
                                                                       {"session", c->session_id},
                                                                       {"error", what}}));
            }
            if (ec) break;  // end of file: every writer closed it
        }
        c->drained.set();
    }

    static awaitable<void> await_exit(std::shared_ptr<detail::process::state> st,
                                      std::shared_ptr<detail::process::child> c) {
        namespace asio = boost::asio;
        using namespace asio::experimental::awaitable_operators;
        // Boost 1.81's pidfd wait can miss an exit that lands between its
        // WNOHANG check and queueing the wait when another thread's
        // epoll_wait takes the edge; a periodic running() check bounds that.
        asio::steady_timer poll(c->strand);
        for (;;) {
            poll.expires_after(std::chrono::seconds{1});
            boost::system::error_code ec;
            auto which = co_await (c->process.async_wait(asio::redirect_error(asio::use_awaitable, ec)) ||
                                   poll.async_wait(asio::use_awaitable));
            if (which.index() == 0 && !ec) break;
            if (!c->process.running(ec)) break;
        }
        const worker_exit how = detail::process::exit_of(c->process.native_exit_code());
        c->process.detach();  // reaped: the pid is not ours any more
        c->exited.set();
        // Its supervisor killed the rest of the worker's group before it
        // exited; should the supervisor itself have been killed, do it here,
        // so the output pipe closes. Then let the last bytes reach the log.
        c->signal_group(SIGKILL);
        const bool drained = co_await c->drained.wait_for(std::chrono::seconds{2});
        if (!drained) {
            c->output.close();  // a process that left the group still holds the pipe
            co_await c->drained.wait_for(std::chrono::seconds{2});
        }
        if (!c->stop_requested && st->listener.exited && !st->is_closed()) {
            std::string what;
            try {
                std::string session_id = c->session_id;  // named: GCC 12, see doc/decisions.md
                worker_ref ref = c->ref;
                co_await st->listener.exited(std::move(session_id), std::move(ref), how);
            } catch (const std::exception& e) {
                what = e.what();
            }
            if (!what.empty())
                st->log(boost::json::serialize(boost::json::object{{"level", "error"},
                                                                   {"component", "process_spawner"},
                                                                   {"msg", "exit not recorded"},
                                                                   {"session", c->session_id},
                                                                   {"error", what}}));
        }
        // Listed until its exit is recorded, so that a reconciliation in
        // between does not take it for lost.
        std::lock_guard lock(st->mutex);
        st->children.erase(c->ref.id);
    }

    static awaitable<void> stop_on_strand(std::shared_ptr<detail::process::child> c, milliseconds grace,
                                          milliseconds kill_timeout) {
        c->stop_requested = true;
        if (c->exited.is_set()) co_return;
        c->signal_group(SIGTERM);
        c->signal_group(SIGCONT);  // a stopped process cannot act on SIGTERM
        // Awaited into named values: with two `if (co_await …) co_return;` in
        // this coroutine, GCC 12 emitted code that traps (SIGILL) on resume.
        const bool ended_politely = co_await c->exited.wait_for(grace);
        if (ended_politely) co_return;
        c->signal_group(SIGKILL);
        const bool killed = co_await c->exited.wait_for(kill_timeout);
        if (killed) co_return;
        throw_error(error::timeout, "process_spawner.stop: worker '" + c->ref.id + "' (session '" + c->session_id +
                                        "') still runs " + std::to_string(kill_timeout.count()) + " ms after SIGKILL");
    }

    static awaitable<void> write_input(std::shared_ptr<detail::process::child> c, std::string bytes,
                                       milliseconds limit) {
        std::string who = "process_spawner.send_input: worker '" + c->ref.id + "' (session '" + c->session_id + "')";
        co_await detail::write_input_in_turn(c->input, c->write_turn, std::move(bytes), limit, std::move(who));
    }

    std::shared_ptr<detail::process::state> state_;
    // Shared by the copies of this spawner; the last one shuts the state
    // down (watches still running keep the state itself alive).
    std::shared_ptr<void> owner_;
};
static_assert(watching_spawner<process_spawner>);
static_assert(input_spawner<process_spawner>);

}  // namespace sessionkit

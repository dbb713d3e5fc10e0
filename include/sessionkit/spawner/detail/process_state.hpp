// sessionkit/spawner/detail/process_state.hpp — a process_spawner's shared
// state and one running worker's handles (pipes, exit watch, events).
// Private to spawner/process.hpp; what runs in the forked processes is in
// process_supervisor.hpp.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/spawner/input.hpp>
#include <sessionkit/spawner/process/options.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/writable_pipe.hpp>
#include <boost/process/v2/environment.hpp>
#include <boost/process/v2/process.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace sessionkit {

namespace detail::process {

namespace asio = boost::asio;
namespace bp = boost::process::v2;

inline int close_quietly(int fd) noexcept { return fd >= 0 ? ::close(fd) : 0; }

/// One pipe, both ends close-on-exec in the daemon.
struct pipe_pair {
    int read = -1, write = -1;
    pipe_pair() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0)
            throw_error(error::spawn_failed, std::string("process_spawner: pipe: ") + std::strerror(errno));
        read = fds[0];
        write = fds[1];
    }
    ~pipe_pair() {
        close_quietly(read);
        close_quietly(write);
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
    int take_read() noexcept { return std::exchange(read, -1); }
    int take_write() noexcept { return std::exchange(write, -1); }
};

inline worker_exit exit_of(int status) noexcept {
    if (WIFSIGNALED(status)) return {-1, WTERMSIG(status)};
    if (WIFEXITED(status)) return {WEXITSTATUS(status), 0};
    return {-1, 0};
}

/// A one-shot event on a strand: wait() returns once set() was called.
class event {
public:
    explicit event(asio::strand<asio::any_io_executor> s) : timer_(s, asio::steady_timer::time_point::max()) {}
    void set() {
        done_ = true;
        timer_.cancel();
    }
    /// Safe from any thread (alive() asks from outside the strand).
    bool is_set() const noexcept { return done_.load(); }
    /// Waits until set() or `limit` passes; returns is_set().
    awaitable<bool> wait_for(std::chrono::steady_clock::duration limit) {
        if (done_) co_return true;
        asio::steady_timer bound(timer_.get_executor(), limit);
        using namespace asio::experimental::awaitable_operators;
        // set() cancels timer_, which ends this wait.
        auto event_wait = [this]() -> awaitable<void> {
            boost::system::error_code ec;
            co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        };
        co_await (event_wait() || bound.async_wait(asio::use_awaitable));
        co_return done_;
    }

private:
    asio::steady_timer timer_;
    std::atomic<bool> done_{false};
};

/// One running worker. Everything after launch happens on its strand.
struct child {
    child(asio::any_io_executor ex, std::string session, worker_ref w, pid_t p, pid_t g, int in_fd, int out_fd)
        : strand(asio::make_strand(ex)), session_id(std::move(session)), ref(std::move(w)), pid(p), group(g),
          process(strand, p), input(strand, in_fd), output(strand, out_fd), exited(strand), drained(strand),
          write_turn(strand, 1) {}

    asio::strand<asio::any_io_executor> strand;
    std::string session_id;
    worker_ref ref;
    pid_t pid;    ///< the supervisor: our child, watched and reaped; it exits as the worker did
    pid_t group;  ///< the worker's pid, and its process group's id
    bp::basic_process<asio::strand<asio::any_io_executor>> process;
    asio::basic_writable_pipe<asio::strand<asio::any_io_executor>> input;
    asio::basic_readable_pipe<asio::strand<asio::any_io_executor>> output;
    event exited;   ///< the process is gone (reaped)
    event drained;  ///< its output pipe reached end of file (or was closed)
    bool stop_requested = false;
    /// Serialises send_input's writes: a write holds the one slot.
    input_turn write_turn;

    void signal_group(int sig) const noexcept { ::kill(-group, sig); }
};

struct state {
    asio::any_io_executor executor;
    process_options options;
    std::string executable;
    std::string instance;  ///< host:daemon pid: worker ids name where they run
    worker_listener listener;

    std::mutex mutex;
    std::map<std::string, std::shared_ptr<child>> children;  ///< by worker id, until reported gone
    bool closed = false;                                     ///< the spawner is gone: report nothing more

    // The launcher thread and its private io_context (see the header comment).
    asio::io_context launch_ctx;
    asio::executor_work_guard<asio::io_context::executor_type> launch_work{launch_ctx.get_executor()};
    std::thread launcher;

    /// The last process_spawner handle is gone: kill every worker (their
    /// watches reap them and report nothing) and end the launcher thread.
    void shutdown() {
        {
            std::lock_guard lock(mutex);
            closed = true;
            for (auto& [id, c] : children) c->signal_group(SIGKILL);
        }
        launch_work.reset();
        launch_ctx.stop();
        if (launcher.joinable()) launcher.join();
    }

    bool is_closed() {
        std::lock_guard lock(mutex);
        return closed;
    }

    void log(std::string_view line) {
        if (options.log)
            options.log(line);
        else
            std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    }

    std::shared_ptr<child> find(const worker_ref& w) {
        std::lock_guard lock(mutex);
        auto it = children.find(w.id);
        return it == children.end() ? nullptr : it->second;
    }
};

inline std::string resolve_command(const std::string& command) {
    if (command.empty()) throw_error(error::invalid_argument, "process_options.command is empty");
    if (command.find('/') == std::string::npos) {
        auto found = bp::environment::find_executable(command);
        if (found.empty())
            throw_error(error::invalid_argument, "process_options.command: '" + command + "' is not in PATH");
        return found.string();
    }
    if (::access(command.c_str(), X_OK) != 0)
        throw_error(error::invalid_argument, "process_options.command: '" + command + "' is not an executable file (" +
                                                 std::strerror(errno) + ")");
    return command;
}

inline std::string host_name() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
    return buf;
}

}  // namespace detail::process

}  // namespace sessionkit

// sessionkit/spawner/detail/process_supervisor.hpp — what runs in the
// processes process_spawner forks: the supervisor of one worker (subreaper
// of everything the worker starts, ended with the daemon by
// PR_SET_PDEATHSIG) and the worker up to its exec. Private to
// spawner/process.hpp; doc/decisions.md, "a supervisor per process worker".
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <initializer_list>

namespace sessionkit::detail::process {

// ---- In the forked processes: async-signal-safe calls only -----------------
//
// The daemon has other threads, so a forked copy may find any lock (malloc's
// included) held for ever. Everything from here to supervise() runs in the
// supervisor, or in the worker before exec: system calls on data prepared
// before the fork, no allocation, no exceptions.

/// Everything the supervisor and the worker need, made before the fork.
struct launch_plan {
    const char* executable;
    const char* const* argv;
    const char* const* envp;
    const char* working_directory;  ///< nullptr: the daemon's
    int input;                      ///< read end of the worker's stdin
    int output;                     ///< write end of its stdout and stderr
    int report;                     ///< write end of the supervisor's report to the daemon
    pid_t daemon;
    long max_fd;  ///< where closing ends without close_range
};

/// What the supervisor tells the daemon once the worker has run exec, or
/// could not: one write of a few bytes, atomic on a pipe.
struct launch_report {
    enum step : int { started, fork_failed, chdir_failed, exec_failed, setup_failed };
    pid_t worker = 0;
    step failed_at = started;
    int error = 0;  ///< errno of the step that failed
};

/// The signal the kernel sends the supervisor when the daemon (its launcher
/// thread) is gone.
inline constexpr int daemon_gone_signal = SIGHUP;

inline void write_fully(int fd, const void* data, std::size_t size) noexcept {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd, p, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        p += n;
        size -= static_cast<std::size_t>(n);
    }
}

/// Reads up to `size` bytes, until end of file; returns how many.
inline std::size_t read_fully(int fd, void* data, std::size_t size) noexcept {
    char* p = static_cast<char*>(data);
    std::size_t got = 0;
    while (got < size) {
        const ssize_t n = ::read(fd, p + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    return got;
}

/// Closes every fd from `first` on (really closes: the supervisor never execs).
inline void close_from(int first, long max_fd) noexcept {
    if (::syscall(SYS_close_range, static_cast<unsigned>(first), ~0u, 0u) == 0) return;
    for (long fd = first; fd < max_fd; ++fd) ::close(static_cast<int>(fd));
}

/// Every signal back to its default action (handlers of the daemon's mean
/// nothing here, and exec would keep an ignored SIGPIPE), except those
/// listed as ignored.
inline void reset_signals(int ignored = 0) noexcept {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigemptyset(&dfl.sa_mask);
    struct sigaction ign = dfl;
    ign.sa_handler = SIG_IGN;
    for (int sig = 1; sig < NSIG; ++sig)
        if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, sig == ignored ? &ign : &dfl, nullptr);
}

/// The worker, in the supervisor's child: its own group, then exec. A
/// failure is written to `error_pipe` (close-on-exec: end of file means
/// exec succeeded).
[[noreturn]] inline void run_worker(const launch_plan& plan, int error_pipe, pid_t supervisor) noexcept {
    auto fail = [error_pipe](launch_report::step step) {
        const int code[2] = {static_cast<int>(step), errno};
        write_fully(error_pipe, code, sizeof code);
        ::_exit(127);
    };
    ::setpgid(0, 0);                              // a group of its own: stop() signals the whole group
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);           // dies with the supervisor, should that be killed
    if (::getppid() != supervisor) ::_exit(127);  // it was, before prctl took effect
    reset_signals();
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (plan.working_directory && ::chdir(plan.working_directory) != 0) fail(launch_report::chdir_failed);
    ::execve(plan.executable, const_cast<char* const*>(plan.argv), const_cast<char* const*>(plan.envp));
    fail(launch_report::exec_failed);
    ::_exit(127);  // not reached
}

/// SIGKILL to every child of this process. Orphans adopted as subreaper
/// are known to nobody else, so /proc is read (getdents64: opendir may
/// allocate). Returns how many were found.
inline int kill_children() noexcept {
    const pid_t self = ::getpid();
    const int proc = ::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (proc < 0) return 0;
    int found = 0;
    alignas(struct dirent64) char entries[8192];
    for (;;) {
        const long n = ::syscall(SYS_getdents64, proc, entries, sizeof entries);
        if (n <= 0) break;
        for (long at = 0; at < n;) {
            const auto* entry = reinterpret_cast<const struct dirent64*>(entries + at);
            at += entry->d_reclen;
            const char* name = entry->d_name;
            long pid = 0;
            bool numeric = *name != 0;
            for (const char* c = name; *c && numeric; ++c) {
                numeric = *c >= '0' && *c <= '9';
                pid = pid * 10 + (*c - '0');
            }
            if (!numeric || pid <= 0 || pid == self) continue;
            // "<pid>/stat": "pid (comm) state ppid ...", comm may hold anything.
            char path[32];
            std::size_t len = 0;
            for (const char* c = name; *c && len < sizeof path - 6; ++c) path[len++] = *c;
            for (const char* c = "/stat"; *c; ++c) path[len++] = *c;
            path[len] = 0;
            const int fd = ::openat(proc, path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            char stat[512];
            const std::size_t got = read_fully(fd, stat, sizeof stat - 1);
            ::close(fd);
            stat[got] = 0;
            const char* after = nullptr;
            for (std::size_t i = 0; i < got; ++i)
                if (stat[i] == ')') after = stat + i + 1;
            if (!after || after[0] != ' ' || !after[1] || after[2] != ' ') continue;
            long ppid = 0;
            for (const char* c = after + 3; *c >= '0' && *c <= '9'; ++c) ppid = ppid * 10 + (*c - '0');
            if (ppid != self) continue;
            ::kill(static_cast<pid_t>(pid), SIGKILL);
            ++found;
        }
    }
    ::close(proc);
    return found;
}

/// Ends the supervisor the way its worker ended: the same exit code, or
/// the same signal (without a core dump: that would be a copy of the
/// daemon's memory, not the worker's).
[[noreturn]] inline void exit_like(int status) noexcept {
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        ::prctl(PR_SET_DUMPABLE, 0);
        const struct rlimit no_core { 0, 0 };
        ::setrlimit(RLIMIT_CORE, &no_core);
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        ::sigemptyset(&dfl.sa_mask);
        ::sigaction(sig, &dfl, nullptr);
        sigset_t only;
        ::sigemptyset(&only);
        ::sigaddset(&only, sig);
        ::sigprocmask(SIG_UNBLOCK, &only, nullptr);
        ::kill(::getpid(), sig);
        ::_exit(128 + sig);  // a signal that does not end a process by default
    }
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
}

/// The supervisor: the daemon's child, the worker's parent. Never returns.
[[noreturn]] inline void supervise(const launch_plan& plan) noexcept {
    // A group of its own: neither the terminal's signals to the daemon's
    // group nor stop()'s to the worker's reach it.
    ::setpgid(0, 0);
    sigset_t all;
    ::sigfillset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);  // taken with sigwaitinfo below
    reset_signals(SIGPIPE);                     // a report to a dead daemon is EPIPE, not death
    ::prctl(PR_SET_NAME, "sessionkit-sup");     // in ps and top, not a second daemon
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    ::prctl(PR_SET_PDEATHSIG, daemon_gone_signal);
    if (::getppid() != plan.daemon) ::_exit(127);  // the daemon died before prctl took effect

    // Keep only the worker's stdio (as 0, 1, 2) and the report (3): a copy
    // of a daemon's socket would keep it open after the daemon closed it.
    const int input = ::fcntl(plan.input, F_DUPFD, 10);
    const int output = ::fcntl(plan.output, F_DUPFD, 10);
    const int report = ::fcntl(plan.report, F_DUPFD, 10);
    if (input < 0 || output < 0 || report < 0 || ::dup2(input, 0) < 0 || ::dup2(output, 1) < 0 ||
        ::dup2(output, 2) < 0 || ::dup2(report, 3) < 0) {
        const launch_report failed{0, launch_report::setup_failed, errno};
        write_fully(plan.report, &failed, sizeof failed);
        ::_exit(127);
    }
    close_from(4, plan.max_fd);
    ::fcntl(3, F_SETFD, FD_CLOEXEC);

    launch_report told;
    int error_pipe[2];
    pid_t worker = -1;
    if (::pipe2(error_pipe, O_CLOEXEC) != 0) {
        told = {0, launch_report::setup_failed, errno};
    } else {
        const pid_t self = ::getpid();
        worker = ::fork();
        if (worker == 0) run_worker(plan, error_pipe[1], self);
        if (worker < 0) {
            told = {0, launch_report::fork_failed, errno};
        } else {
            ::close(error_pipe[1]);
            int failure[2] = {0, 0};
            if (read_fully(error_pipe[0], failure, sizeof failure) == sizeof failure)
                told = {worker, static_cast<launch_report::step>(failure[0]), failure[1]};
            else
                told = {worker, launch_report::started, 0};
            ::close(error_pipe[0]);
        }
    }
    ::close(0);  // the worker's stdio are the worker's: its end of file is the daemon's
    ::close(1);
    ::close(2);
    write_fully(3, &told, sizeof told);
    ::close(3);
    if (worker < 0) ::_exit(127);

    sigset_t waited;
    ::sigemptyset(&waited);
    for (int sig : {SIGCHLD, daemon_gone_signal, SIGTERM, SIGINT, SIGQUIT}) ::sigaddset(&waited, sig);
    int status = 0;
    bool worker_done = false;
    bool ending = false;  // the daemon is gone, or someone told the supervisor to end
    for (;;) {
        // Reap what ended: the worker, and orphans adopted on the way.
        for (;;) {
            int st = 0;
            const pid_t ended = ::waitpid(-1, &st, WNOHANG);
            if (ended < 0 && errno == EINTR) continue;
            if (ended < 0 && errno == ECHILD && worker_done) exit_like(status);
            if (ended <= 0) break;
            if (ended == worker) {
                worker_done = true;
                status = st;
            }
        }
        if (worker_done || ending) {
            // Its group first (members need not be our children), then our
            // children, until none is left: a killed parent's children are
            // reparented to us and found on the next round.
            ::kill(-worker, SIGKILL);
            kill_children();
            int st = 0;
            const pid_t ended = ::waitpid(-1, &st, 0);
            if (ended == worker) {
                worker_done = true;
                status = st;
            }
            continue;
        }
        const int sig = ::sigwaitinfo(&waited, nullptr);
        if (sig > 0 && sig != SIGCHLD) ending = true;
    }
}

}  // namespace sessionkit::detail::process

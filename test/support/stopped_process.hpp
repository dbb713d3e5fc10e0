// SIGSTOP that returns only once the process is stopped.
//
// kill() only queues the signal: on a loaded machine the target can run on
// for a few milliseconds, answering a connection a test meant it to ignore
// (the NATS connect-to-a-stopped-server case failed in CI that way). Fault
// tests stop a server and then assert on what it does not answer, so they
// wait for /proc/<pid>/stat to show state 'T' first.
#pragma once

#include <chrono>
#include <csignal>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <sys/types.h>

namespace sessionkit::test {

// The one-letter state in /proc/<pid>/stat ('R', 'S', 'T', ...), or '?'.
inline char process_state(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "pid (comm) S ...": comm may hold spaces and parentheses, so the
    // state follows the last ')'.
    const auto close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size()) return '?';
    return stat[close + 2];
}

inline void stop_process(pid_t pid, std::chrono::milliseconds within = std::chrono::seconds(5)) {
    if (::kill(pid, SIGSTOP) != 0) throw std::runtime_error("SIGSTOP " + std::to_string(pid) + " failed");
    const auto until = std::chrono::steady_clock::now() + within;
    while (process_state(pid) != 'T') {
        if (std::chrono::steady_clock::now() > until)
            throw std::runtime_error("process " + std::to_string(pid) + " not stopped after SIGSTOP");
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

inline void continue_process(pid_t pid) { ::kill(pid, SIGCONT); }

}  // namespace sessionkit::test

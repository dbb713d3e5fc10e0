// sessionkit/spawner/process/options.hpp — what a process_spawner is
// configured with.
//
// Apart from the spawner so that its private parts (spawner/detail/) and
// users can name the options without the spawner's I/O.
#pragma once

#include <sessionkit/clock.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sessionkit {

struct process_options {
    /// The program: a path, or a name looked up in PATH when the spawner is made.
    std::string command;
    std::vector<std::string> args;
    /// Added to (or replacing in) the daemon's environment; see inherit_environment.
    std::map<std::string, std::string> environment;
    bool inherit_environment = true;
    /// Empty: the daemon's.
    std::string working_directory;
    /// Names this deployment's workers (SESSIONKIT_DEPLOYMENT in their environment).
    std::string deployment = "default";
    /// How long stop() waits for a group to die after SIGKILL before it
    /// reports error::timeout (a process stuck in the kernel).
    milliseconds kill_timeout = std::chrono::seconds{10};
    /// How long send_input waits for a worker that does not read its stdin
    /// (a full pipe) before it reports error::timeout.
    milliseconds input_timeout = std::chrono::seconds{10};
    /// Where problems that have no caller are reported (output that the
    /// store refused, say), one line each; default: stderr.
    std::function<void(std::string_view)> log;
};

}  // namespace sessionkit

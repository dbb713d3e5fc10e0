// sessionkit/spawner/docker/options.hpp — what a docker_spawner is
// configured with, and the check that refuses bad options by name.
//
// Apart from the spawner so that the container spec (spec.hpp), which is
// made from these options, can be used and tested without the spawner's
// I/O.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/docker/client.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sessionkit {

struct docker_options {
    /// The image; it must be present on the engine (nothing is pulled).
    std::string image;
    /// The container's command (Cmd); empty: the image's own.
    std::vector<std::string> command;
    /// Added to the container's environment (with SESSIONKIT_SESSION_ID
    /// and SESSIONKIT_DEPLOYMENT).
    std::map<std::string, std::string> environment;
    /// Names this deployment's containers (label and name).
    std::string deployment = "default";
    /// Hardening defaults; every one can be loosened on purpose.
    std::int64_t memory_bytes = 512LL << 20;  ///< 0: no limit
    double cpus = 1.0;                        ///< 0: no limit
    std::int64_t pids_limit = 256;            ///< 0: no limit
    std::string network = "none";             ///< a network name to attach to instead
    bool read_only_root = false;
    bool drop_all_capabilities = true;
    /// How long spawn waits for a started container to be running.
    milliseconds start_timeout = std::chrono::seconds{30};
    /// Wire the container's stdin, stdout and stderr to the session (an
    /// attach connection held by this spawner; the container is created
    /// with OpenStdin). Its exit is then noticed at once, too.
    bool attach = true;
    /// How long send_input waits for a container that does not read its
    /// stdin before it reports error::timeout.
    milliseconds input_timeout = std::chrono::seconds{10};
    /// Where problems that have no caller are reported; default: stderr.
    std::function<void(std::string_view)> log;
    docker::client_options engine = docker::client_options::from_env();
};

namespace detail::docker_spawner {

/// `o` if every option is usable; error::invalid_argument naming the
/// first that is not.
inline docker_options validated(docker_options o) {
    if (o.image.empty()) throw_error(error::invalid_argument, "docker_options.image is empty");
    if (o.deployment.empty() || o.deployment.size() > 40 ||
        o.deployment.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
            std::string::npos)
        throw_error(error::invalid_argument, "docker_options.deployment '" + detail::printable(o.deployment) +
                                                 "' must be 1-40 characters of A-Z a-z 0-9 _ . - (it is part of "
                                                 "container names and label filters)");
    if (o.input_timeout <= milliseconds::zero())
        throw_error(error::invalid_argument, "docker_options.input_timeout must be positive");
    if (o.memory_bytes < 0 || (o.memory_bytes > 0 && o.memory_bytes < (6LL << 20)))
        throw_error(error::invalid_argument,
                    "docker_options.memory_bytes must be 0 (no limit) or at least 6 MiB, got " +
                        std::to_string(o.memory_bytes));
    if (!(o.cpus >= 0 && o.cpus <= 1024))
        throw_error(error::invalid_argument, "docker_options.cpus must be between 0 (no limit) and 1024");
    if (o.pids_limit < 0) throw_error(error::invalid_argument, "docker_options.pids_limit must not be negative");
    if (o.network.empty()) throw_error(error::invalid_argument, "docker_options.network is empty (use \"none\")");
    if (o.start_timeout <= milliseconds::zero())
        throw_error(error::invalid_argument, "docker_options.start_timeout must be positive");
    for (const auto& [k, v] : o.environment)
        if (k.empty() || k.find('=') != std::string::npos)
            throw_error(error::invalid_argument,
                        "docker_options.environment: '" + detail::printable(k) + "' is not a valid variable");
    (void)o.engine.socket_path();  // a bad DOCKER_HOST is named now
    return o;
}

}  // namespace detail::docker_spawner

}  // namespace sessionkit

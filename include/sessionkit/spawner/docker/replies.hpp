// sessionkit/spawner/docker/replies.hpp — what the engine's answers about
// containers mean to a docker_spawner: the labels and state an inspect
// shows, how a started container is doing, the exit status a wait
// reports, and the workers a container list names.
//
// Pure functions of parsed JSON (no I/O), unit-tested with hand-written
// answers. A field that is missing or of another type reads as absent:
// engines add fields, and old ones lack some.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/session.hpp>
#include <sessionkit/spawner/docker/spec.hpp>

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sessionkit::docker {

namespace detail {

/// `v` as an object; error::protocol_error naming `what` when it is not.
inline const boost::json::object& object_of(const boost::json::value& v, std::string_view what) {
    if (!v.is_object()) throw_error(error::protocol_error, "docker: " + std::string(what) + ": expected a JSON object");
    return v.as_object();
}

/// The string at `key`; empty when absent or not a string.
inline std::string string_at(const boost::json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

/// The object at `key`; null when absent or not an object.
inline const boost::json::object* object_at(const boost::json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    return v && v->is_object() ? &v->as_object() : nullptr;
}

}  // namespace detail

/// The sessionkit labels of an inspected container (GET
/// /containers/{id}/json, Config.Labels); empty strings for missing ones.
inline container_labels labels_of(const boost::json::object& inspected) {
    container_labels out;
    const auto* config = detail::object_at(inspected, "Config");
    const auto* labels = config ? detail::object_at(*config, "Labels") : nullptr;
    if (!labels) return out;
    out.session = detail::string_at(*labels, "sessionkit.session");
    out.deployment = detail::string_at(*labels, "sessionkit.deployment");
    out.created_at = detail::string_at(*labels, "sessionkit.created_at");
    return out;
}

/// Whether an inspected container runs (State.Running is true).
inline bool is_running(const boost::json::object& inspected) {
    const auto* state = detail::object_at(inspected, "State");
    const auto* running = state ? state->if_contains("Running") : nullptr;
    return running && running->is_bool() && running->as_bool();
}

/// How a started container is doing, from its inspect.
struct start_progress {
    enum phase_t {
        running,   ///< up: spawn is done
        starting,  ///< not yet: look again (until start_timeout)
        ended,     ///< exited or dead: spawn failed, for the reason in `why`
    } phase = starting;
    std::string status;  ///< State.Status as the engine said it ("created", ...)
    std::string why;     ///< for `ended`: "exited at once with code 7 (killed: out of memory): <Error>"
};

inline start_progress start_progress_of(const boost::json::object& inspected) {
    start_progress out;
    const auto* state = detail::object_at(inspected, "State");
    if (!state) return out;
    out.status = detail::string_at(*state, "Status");
    if (out.status == "running") {
        out.phase = start_progress::running;
    } else if (out.status == "exited" || out.status == "dead") {
        out.phase = start_progress::ended;
        out.why = "exited at once";
        if (auto* code = state->if_contains("ExitCode"); code && code->is_int64())
            out.why += " with code " + std::to_string(code->as_int64());
        if (auto* oom = state->if_contains("OOMKilled"); oom && oom->is_bool() && oom->as_bool())
            out.why += " (killed: out of memory)";
        if (auto err = detail::string_at(*state, "Error"); !err.empty()) out.why += ": " + err;
    }
    return out;
}

/// The exit a POST /containers/{id}/wait answer reports ({"StatusCode": n});
/// nullopt when it reports none. The engine gives a code only: a container
/// killed by a signal reads as 128 + the signal, as a shell would say.
inline std::optional<worker_exit> exit_of_wait(const boost::json::value& answer) {
    const auto* code = answer.is_object() ? answer.as_object().if_contains("StatusCode") : nullptr;
    if (!code || !code->is_int64()) return std::nullopt;
    return worker_exit{static_cast<int>(code->as_int64()), 0};
}

/// The workers a GET /containers/json answer lists, each on engine `node`
/// with the session of its label (empty without one); error::protocol_error
/// when the answer is not a list. Entries that are not objects are skipped.
inline std::vector<owned_worker> owned_of(const boost::json::value& list, const std::string& node) {
    if (!list.is_array()) throw_error(error::protocol_error, "docker_spawner.list_owned: expected a JSON array");
    std::vector<owned_worker> out;
    for (const auto& c : list.as_array()) {
        if (!c.is_object()) continue;
        const auto& o = c.as_object();
        std::string session_id;
        if (const auto* labels = detail::object_at(o, "Labels"))
            session_id = detail::string_at(*labels, "sessionkit.session");
        const bool running = detail::string_at(o, "State") == "running";
        out.push_back({worker_ref{"docker", detail::string_at(o, "Id"), node}, std::move(session_id), running});
    }
    return out;
}

}  // namespace sessionkit::docker

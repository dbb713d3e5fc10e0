// sessionkit/spawner/docker/spec.hpp — the container a docker_spawner asks
// the engine for: its name, its labels, the create request's body, the
// list filter, the stop timeout, and what to do when the name is taken.
//
// Pure functions of the options and the session (no I/O), so that each is
// unit-tested field by field (test/unit/spawner_specs_test.cpp); the
// spawner only sends what they return. The name and the labels are how a
// restarted daemon finds its containers again: they never change format.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/detail/fnv.hpp>
#include <sessionkit/session.hpp>
#include <sessionkit/spawner/docker/options.hpp>

#include <boost/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace sessionkit::docker {

namespace detail {

/// 64-bit FNV-1a: the name only needs to tell session ids apart when their
/// readable part was cut or changed; the labels carry the real id.
///
/// Its offset basis lacks the standard one's last digit (14695981039346656037):
/// a slip made when names were first given, kept because a container's name
/// is how a restarted daemon finds (adopts) it.
inline constexpr std::uint64_t name_hash_offset = 1469598103934665603ULL;

inline std::uint64_t name_hash(std::string_view session_id) noexcept {
    return sessionkit::detail::fnv1a_64(session_id, name_hash_offset);
}

}  // namespace detail

/// sk-<deployment>-<session id, as far as a name allows>-<hash>: the first
/// 40 characters of the deployment, the first 60 of the id with ':' as '_'
/// (names allow [a-zA-Z0-9][a-zA-Z0-9_.-]*; session ids also allow ':'),
/// and the 16 hex digits of the id's hash.
inline std::string container_name(std::string_view deployment, std::string_view session_id) {
    auto clean = [](std::string_view in, std::size_t max) {
        std::string out;
        for (char c : in.substr(0, max)) out += (c == ':') ? '_' : c;
        return out;
    };
    char hash[17];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(detail::name_hash(session_id)));
    return "sk-" + clean(deployment, 40) + "-" + clean(session_id, 60) + "-" + hash;
}

/// The labels every container of ours carries. created_at (ms since the
/// epoch, in decimal) tells this session's container from that of an
/// earlier session under the same id.
struct container_labels {
    std::string session;
    std::string deployment;
    std::string created_at;
    friend bool operator==(const container_labels&, const container_labels&) = default;
};

/// The labels for `rec`'s container.
inline container_labels labels_for(const docker_options& o, const session& rec) {
    return {rec.id, o.deployment, std::to_string(to_unix_ms(rec.created_at))};
}

/// The labels as the engine's "Labels" object.
inline boost::json::object labels_json(const container_labels& l) {
    return {{"sessionkit.session", l.session},
            {"sessionkit.deployment", l.deployment},
            {"sessionkit.created_at", l.created_at}};
}

/// The body of POST /containers/create for the container labelled `l`
/// (hardened: see doc/spawners.md, "Hardening defaults").
inline boost::json::object create_body(const docker_options& o, const container_labels& l) {
    boost::json::array env;
    for (const auto& [k, v] : o.environment) env.emplace_back(k + "=" + v);
    env.emplace_back("SESSIONKIT_SESSION_ID=" + l.session);
    env.emplace_back("SESSIONKIT_DEPLOYMENT=" + l.deployment);
    boost::json::object host{{"NetworkMode", o.network},
                             {"Privileged", false},
                             {"ReadonlyRootfs", o.read_only_root},
                             {"SecurityOpt", boost::json::array{"no-new-privileges"}},
                             // tini as PID 1: a shell or sleep as PID 1 ignores
                             // SIGTERM, and every stop would wait the whole grace.
                             {"Init", true},
                             {"AutoRemove", false},
                             {"RestartPolicy", boost::json::object{{"Name", "no"}}}};
    if (o.memory_bytes > 0) {
        host["Memory"] = o.memory_bytes;
        host["MemorySwap"] = o.memory_bytes;  // no swap beyond the limit
    }
    if (o.cpus > 0) host["NanoCpus"] = static_cast<std::int64_t>(std::llround(o.cpus * 1e9));
    if (o.pids_limit > 0) host["PidsLimit"] = o.pids_limit;
    if (o.drop_all_capabilities) host["CapDrop"] = boost::json::array{"ALL"};
    boost::json::object body{{"Image", o.image},         {"Env", std::move(env)},
                             {"Labels", labels_json(l)}, {"Tty", false},
                             {"OpenStdin", o.attach},    {"StdinOnce", false},
                             {"AttachStdin", o.attach},  {"AttachStdout", o.attach},
                             {"AttachStderr", o.attach}, {"HostConfig", std::move(host)}};
    if (!o.command.empty()) {
        boost::json::array cmd;
        for (const auto& a : o.command) cmd.emplace_back(a);
        body["Cmd"] = std::move(cmd);
    }
    return body;
}

/// What spawn does when the container name is taken (create answered 409).
enum class taken_name_action {
    adopt,    ///< this session's container, from an earlier attempt: use it
    replace,  ///< an earlier session's under the same id: remove it, create anew
    refuse,   ///< not ours (another session, or another deployment): fail, touch nothing
};

/// Decides from the labels `found` on the name's holder and the labels
/// `wanted` for this spawn.
inline taken_name_action on_taken_name(const container_labels& found, const container_labels& wanted) noexcept {
    if (found.session != wanted.session || found.deployment != wanted.deployment) return taken_name_action::refuse;
    return found.created_at == wanted.created_at ? taken_name_action::adopt : taken_name_action::replace;
}

/// The filters value of GET /containers/json that lists a deployment's
/// containers (to be URL-encoded).
inline std::string deployment_filter(std::string_view deployment) {
    return boost::json::serialize(
        boost::json::object{{"label", boost::json::array{"sessionkit.deployment=" + std::string(deployment)}}});
}

/// The engine's stop timeout (whole seconds) for a grace period: rounded
/// up, so that a worker always gets at least the grace it was promised.
inline long long stop_seconds(milliseconds grace) noexcept {
    return grace.count() <= 0 ? 0 : (grace.count() + 999) / 1000;
}

}  // namespace sessionkit::docker

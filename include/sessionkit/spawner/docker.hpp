// sessionkit/spawner/docker.hpp — a Docker container per session
// (component sessionkit::docker).
//
// spawn = create (hardened by default: no network, memory / CPU / pids
// limits, all capabilities dropped, no-new-privileges, an init process,
// never privileged) + start + check that it runs. Every container carries
// the labels sessionkit.session, sessionkit.deployment and
// sessionkit.created_at, and a name derived from the deployment and the
// session id, so a second spawn for the same session finds the first
// instead of making another. stop = the engine's stop (SIGTERM, then
// SIGKILL after the grace) + remove.
#pragma once

#include <sessionkit/detail/fnv.hpp>
#include <sessionkit/concepts.hpp>
#include <sessionkit/docker/client.hpp>
#include <sessionkit/docker/frames.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/spawner/input.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <atomic>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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
    double cpus = 1.0;                         ///< 0: no limit
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
    docker::client_config engine = docker::client_config::from_env();
};

namespace detail::docker_spawner {

/// 64-bit FNV-1a: the name only needs to tell session ids apart when their
/// readable part was cut or changed; the labels carry the real id.
///
/// Its offset basis lacks the standard one's last digit (14695981039346656037):
/// a slip made when names were first given, kept because a container's name
/// is how a restarted daemon finds (adopts) it.
inline std::uint64_t fnv1a(std::string_view s) noexcept {
    return sessionkit::detail::fnv1a_64(s, 1469598103934665603ULL);
}

/// sk-<deployment>-<session id, as far as a name allows>-<hash>. Names
/// allow [a-zA-Z0-9][a-zA-Z0-9_.-]*; session ids also allow ':'.
inline std::string container_name(std::string_view deployment, std::string_view session_id) {
    auto clean = [](std::string_view in, std::size_t max) {
        std::string out;
        for (char c : in.substr(0, max)) out += (c == ':') ? '_' : c;
        return out;
    };
    char hash[17];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(fnv1a(session_id)));
    return "sk-" + clean(deployment, 40) + "-" + clean(session_id, 60) + "-" + hash;
}

inline const boost::json::object& object_of(const boost::json::value& v, std::string_view what) {
    if (!v.is_object()) throw_error(error::protocol_error, "docker: " + std::string(what) + ": expected a JSON object");
    return v.as_object();
}

inline std::string string_at(const boost::json::object& o, std::string_view key) {
    auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

} // namespace detail::docker_spawner

class docker_spawner {
public:
    docker_spawner(boost::asio::any_io_executor executor, docker_options options)
        : state_(std::make_shared<state>(executor, validated(std::move(options)))),
          owner_(nullptr, [s = state_](void*) { s->shutdown(); }) {}

    void watch(worker_listener listener) {
        std::lock_guard lock(state_->mutex);
        state_->listener = std::move(listener);
    }

    /// Writes to the container's stdin through this spawner's attach
    /// connection. not_found when there is none: the container is gone, or
    /// another daemon started it.
    awaitable<void> send_input(const worker_ref& w, std::string_view bytes) {
        auto io = state_->find(w.id);
        if (!io)
            throw_error(error::not_found, "docker_spawner.send_input: container " + w.id +
                                              " has no input stream here (gone, or started by another daemon)");
        std::string copy(bytes);  // named: GCC 12, see doc/decisions.md
        auto write = write_input(io, std::move(copy), state_->options.input_timeout);
        co_await boost::asio::co_spawn(io->strand, std::move(write), boost::asio::use_awaitable);
    }

    std::string_view kind() const noexcept { return "docker"; }
    const docker_options& options() const noexcept { return state_->options; }
    docker::client& engine() noexcept { return state_->engine; }

    awaitable<std::optional<worker_ref>> spawn(const session& rec) {
        namespace http = boost::beast::http;
        namespace ds = detail::docker_spawner;
        auto st = state_;
        const std::string session_id = rec.id;
        const std::string created_at = std::to_string(to_unix_ms(rec.created_at));
        const std::string name = ds::container_name(st->options.deployment, session_id);
        const std::string who = "docker_spawner.spawn: session '" + session_id + "'";
        // The engine's ID goes on the worker: several engines may share one store.
        const std::string node = co_await st->engine.engine_id();

        std::string id;
        for (int attempt = 0; attempt < 2 && id.empty(); ++attempt) {
            // Arguments named before awaiting (GCC 12, see doc/decisions.md).
            std::string target = "/containers/create?name=" + name;
            std::optional<boost::json::value> body = create_body(*st, session_id, created_at);
            auto made = co_await st->engine.request(http::verb::post, std::move(target), std::move(body));
            if (made.status == 201) {
                id = ds::string_at(ds::object_of(made.json("create"), "create"), "Id");
                if (id.empty()) throw_error(error::protocol_error, who + ": create answered no Id");
            } else if (made.status == 404) {
                throw_error(error::spawn_failed, who + ": image '" + st->options.image + "' not found (" +
                                                     made.message() + ")");
            } else if (made.status == 409) {
                // The name is taken: this session's container from an
                // earlier attempt (adopt it), an earlier session's under the
                // same id (remove it and create anew), or not ours at all.
                auto existing = co_await inspect(*st, name);
                if (!existing) continue;  // removed meanwhile: create again
                const auto labels = labels_of(*existing);
                if (labels.session != session_id || labels.deployment != st->options.deployment)
                    throw_error(error::spawn_failed, who + ": container name '" + name +
                                                         "' is taken by a container that is not this session's");
                if (labels.created_at == created_at) {
                    id = ds::string_at(*existing, "Id");
                } else {
                    co_await remove(*st, name);
                }
            } else {
                throw_error(error::spawn_failed, who + ": create failed: " + made.message());
            }
        }
        if (id.empty()) throw_error(error::spawn_failed, who + ": container name '" + name + "' stays taken");

        // From here on a failure removes the container: no half-made worker.
        std::exception_ptr failure;
        try {
            // Attached before it starts, so that no output is missed.
            if (st->options.attach && st->watched()) {
                worker_ref w{"docker", id, node};  // named: GCC 12, see doc/decisions.md
                co_await attach(st, std::move(w), session_id);
            }
            co_await start_and_wait(*st, id, who);
        } catch (...) {
            failure = std::current_exception();
        }
        if (failure) {
            if (auto io = st->find(id)) io->stop_requested = true;
            try {
                co_await remove(*st, id);
            } catch (...) {
                // The janitor's reconciliation removes it later.
            }
            std::rethrow_exception(failure);
        }
        co_return worker_ref{"docker", id, node};
    }

    /// A container of another engine (w.node names it) is not reached
    /// from here: stop returns at once, and that engine's janitor removes
    /// the container once its session has ended (an orphan).
    awaitable<void> stop(const worker_ref& w, milliseconds grace) {
        namespace http = boost::beast::http;
        auto st = state_;
        const std::string id = w.id;
        if (co_await on_another_engine(w)) {
            st->log(boost::json::serialize(boost::json::object{
                {"level", "info"}, {"component", "docker_spawner"},
                {"msg", "container runs on another engine: its janitor removes it"},
                {"container", id}, {"engine", w.node}}));
            co_return;
        }
        const auto seconds = std::max<long long>(0, (grace.count() + 999) / 1000);
        if (auto io = st->find(id)) io->stop_requested = true;  // its end is ours, not news
        // The engine's stop blocks for up to the grace plus the kill: give it that long.
        std::string target = "/containers/" + id + "/stop?t=" + std::to_string(seconds);
        auto r = co_await st->engine.request(http::verb::post, std::move(target), std::nullopt,
                                             milliseconds{seconds * 1000});
        if (!r.ok() && r.status != 304 && r.status != 404)
            throw_error(error::backend_unavailable, "docker_spawner.stop: container " + id + ": " + r.message());
        co_await remove(*st, id);
    }

    /// Another engine's container is reported alive: only a janitor on
    /// that engine can judge it.
    awaitable<bool> alive(const worker_ref& w) {
        if (co_await on_another_engine(w)) co_return true;
        const std::string id = w.id;
        auto found = co_await inspect(*state_, id);
        if (!found) co_return false;
        auto* s = found->if_contains("State");
        co_return s && s->is_object() && s->as_object().if_contains("Running") &&
            s->as_object().at("Running").is_bool() && s->as_object().at("Running").as_bool();
    }

    awaitable<std::vector<owned_worker>> list_owned() {
        namespace http = boost::beast::http;
        auto st = state_;
        const std::string filters = boost::json::serialize(
            boost::json::object{{"label", boost::json::array{"sessionkit.deployment=" + st->options.deployment}}});
        std::string target = "/containers/json?all=true&filters=" + docker::url_encode(filters);
        const std::string node = co_await st->engine.engine_id();
        auto r = co_await st->engine.request(http::verb::get, std::move(target));
        if (!r.ok()) throw_error(error::backend_unavailable, "docker_spawner.list_owned: " + r.message());
        auto v = r.json("list containers");
        if (!v.is_array()) throw_error(error::protocol_error, "docker_spawner.list_owned: expected a JSON array");
        std::vector<owned_worker> out;
        for (const auto& c : v.as_array()) {
            if (!c.is_object()) continue;
            const auto& o = c.as_object();
            std::string session_id;
            if (auto* l = o.if_contains("Labels"); l && l->is_object())
                session_id = detail::docker_spawner::string_at(l->as_object(), "sessionkit.session");
            const bool running = detail::docker_spawner::string_at(o, "State") == "running";
            out.push_back({worker_ref{"docker", detail::docker_spawner::string_at(o, "Id"), node},
                           std::move(session_id), running});
        }
        co_return out;
    }

private:
    /// One attach connection: the container's stdin, stdout and stderr.
    struct container_io {
        container_io(boost::asio::strand<boost::asio::any_io_executor> s, docker::raw_stream c, std::string session,
                     worker_ref w)
            : strand(s), conn(std::move(c)), session_id(std::move(session)), ref(std::move(w)), write_turn(s, 1) {}
        boost::asio::strand<boost::asio::any_io_executor> strand;
        docker::raw_stream conn;
        std::string session_id;
        worker_ref ref;
        std::atomic<bool> stop_requested{false};
        /// Serialises send_input's writes: a write holds the one slot.
        detail::input_turn write_turn;
    };

    struct state {
        state(boost::asio::any_io_executor ex, docker_options o)
            : executor(ex), options(std::move(o)), engine(std::move(ex), options.engine) {}
        boost::asio::any_io_executor executor;
        docker_options options;
        docker::client engine;

        std::mutex mutex;
        worker_listener listener;
        std::map<std::string, std::shared_ptr<container_io>> attached;  ///< by container id
        bool closed = false;

        bool watched() {
            std::lock_guard lock(mutex);
            return static_cast<bool>(listener.output) && !closed;
        }
        std::shared_ptr<container_io> find(const std::string& id) {
            std::lock_guard lock(mutex);
            auto it = attached.find(id);
            return it == attached.end() ? nullptr : it->second;
        }
        /// The listener while the spawner lives; an empty one after.
        worker_listener current_listener() {
            std::lock_guard lock(mutex);
            return closed ? worker_listener{} : listener;
        }
        /// The last docker_spawner handle is gone: close the attach
        /// connections (containers live on: the next janitor reconciles).
        void shutdown() {
            std::lock_guard lock(mutex);
            closed = true;
            for (auto& [id, io] : attached)
                boost::asio::post(io->strand, [io = io] {
                    boost::system::error_code ignored;
                    io->conn.stream.socket().close(ignored);
                });
        }
        void log(std::string_view line) {
            if (options.log) options.log(line);
            else std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
        }
    };

    struct labels {
        std::string session, deployment, created_at;
    };

    static docker_options validated(docker_options o) {
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

    static boost::json::object create_body(const state& st, const std::string& session_id,
                                           const std::string& created_at) {
        const auto& o = st.options;
        boost::json::array env;
        for (const auto& [k, v] : o.environment) env.emplace_back(k + "=" + v);
        env.emplace_back("SESSIONKIT_SESSION_ID=" + session_id);
        env.emplace_back("SESSIONKIT_DEPLOYMENT=" + o.deployment);
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
        boost::json::object body{{"Image", o.image},
                                 {"Env", std::move(env)},
                                 {"Labels", boost::json::object{{"sessionkit.session", session_id},
                                                                {"sessionkit.deployment", o.deployment},
                                                                {"sessionkit.created_at", created_at}}},
                                 {"Tty", false},
                                 {"OpenStdin", o.attach},
                                 {"StdinOnce", false},
                                 {"AttachStdin", o.attach},
                                 {"AttachStdout", o.attach},
                                 {"AttachStderr", o.attach},
                                 {"HostConfig", std::move(host)}};
        if (!o.command.empty()) {
            boost::json::array cmd;
            for (const auto& a : o.command) cmd.emplace_back(a);
            body["Cmd"] = std::move(cmd);
        }
        return body;
    }

    static labels labels_of(const boost::json::object& inspected) {
        labels out;
        auto* config = inspected.if_contains("Config");
        if (!config || !config->is_object()) return out;
        auto* l = config->as_object().if_contains("Labels");
        if (!l || !l->is_object()) return out;
        const auto& m = l->as_object();
        out.session = detail::docker_spawner::string_at(m, "sessionkit.session");
        out.deployment = detail::docker_spawner::string_at(m, "sessionkit.deployment");
        out.created_at = detail::docker_spawner::string_at(m, "sessionkit.created_at");
        return out;
    }

    /// GET /containers/{id or name}/json; nullopt when there is none.
    static awaitable<std::optional<boost::json::object>> inspect(state& st, std::string id) {
        std::string target = "/containers/" + id + "/json";
        auto r = co_await st.engine.request(boost::beast::http::verb::get, std::move(target));
        if (r.status == 404) co_return std::nullopt;
        if (!r.ok()) throw_error(error::backend_unavailable, "docker: inspect container " + id + ": " + r.message());
        co_return detail::docker_spawner::object_of(r.json("inspect " + id), "inspect " + id);
    }

    /// Whether `w` names another engine than ours. A worker with no node
    /// (a record written before nodes were kept) is taken to be ours.
    awaitable<bool> on_another_engine(const worker_ref& w) {
        if (w.node.empty()) co_return false;
        const std::string ours = co_await state_->engine.engine_id();
        co_return !ours.empty() && w.node != ours;
    }

    /// Forced removal (with its anonymous volumes); gone already is fine.
    static awaitable<void> remove(state& st, std::string id) {
        std::string target = "/containers/" + id + "?force=true&v=true";
        auto r = co_await st.engine.request(boost::beast::http::verb::delete_, std::move(target));
        // 409: a removal is already in progress.
        if (!r.ok() && r.status != 404 && r.status != 409)
            throw_error(error::backend_unavailable, "docker: remove container " + id + ": " + r.message());
    }

    static awaitable<void> attach(std::shared_ptr<state> st, worker_ref w, std::string session_id) {
        auto strand = boost::asio::make_strand(st->executor);
        const std::string id = w.id;
        std::string target = "/containers/" + id + "/attach?stream=1&stdin=1&stdout=1&stderr=1";
        auto conn = co_await st->engine.upgrade(std::move(target), strand);
        auto io = std::make_shared<container_io>(strand, std::move(conn), session_id, std::move(w));
        {
            std::lock_guard lock(st->mutex);
            st->attached[id] = io;
        }
        boost::asio::co_spawn(strand, watch_io(st, io), boost::asio::detached);
    }

    // Output frames to the listener until the stream ends, then (unless we
    // stopped it) the exit code through the engine's wait.
    static awaitable<void> watch_io(std::shared_ptr<state> st, std::shared_ptr<container_io> io) {
        docker::frame_reader frames;
        frames.feed(io->conn.pending);
        std::string buffer(64 * 1024, '\0');
        for (bool open = true;;) {
            auto batch = take_frames(*st, *io, frames);
            for (auto& f : batch) {
                docker::frame one = std::move(f);  // named: GCC 12, see doc/decisions.md
                co_await deliver(*st, *io, std::move(one));
            }
            if (!open) break;
            boost::system::error_code ec;
            const std::size_t n = co_await io->conn.stream.async_read_some(
                boost::asio::buffer(buffer), boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            frames.feed(std::string_view(buffer.data(), n));
            if (ec) open = false;  // the container ended (or the stream broke): drain, then stop
        }
        {
            std::lock_guard lock(st->mutex);
            // Only our entry: an adopting spawn may have attached anew.
            if (auto it = st->attached.find(io->ref.id); it != st->attached.end() && it->second == io)
                st->attached.erase(it);
        }
        if (io->stop_requested) co_return;
        auto listener = st->current_listener();
        if (!listener.exited) co_return;
        // The stream ends when the container does: ask how it ended.
        std::string target = "/containers/" + io->ref.id + "/wait?condition=not-running";
        std::optional<worker_exit> how;
        try {
            auto r = co_await st->engine.request(boost::beast::http::verb::post, std::move(target));
            if (r.ok()) {
                auto v = r.json("wait");
                if (auto* code = v.is_object() ? v.as_object().if_contains("StatusCode") : nullptr; code && code->is_int64())
                    how = worker_exit{static_cast<int>(code->as_int64()), 0};
            }
        } catch (const std::exception& e) {
            warn(*st, *io, "exit unknown", e.what());
        }
        // Removed meanwhile (404), or the engine went away: reconciliation decides.
        if (!how || io->stop_requested) co_return;
        std::string session_id = io->session_id;  // named: GCC 12, see doc/decisions.md
        worker_ref ref = io->ref;
        std::string failure;
        try {
            co_await listener.exited(std::move(session_id), std::move(ref), *how);
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (!failure.empty()) warn(*st, *io, "exit not recorded", failure);
    }

    // Whole frames so far. A stream that is not frames is logged and its
    // connection closed (the loop then sees the end).
    static std::vector<docker::frame> take_frames(state& st, container_io& io, docker::frame_reader& frames) {
        std::vector<docker::frame> out;
        try {
            while (auto f = frames.next()) out.push_back(std::move(*f));
        } catch (const std::exception& e) {
            warn(st, io, "attach stream unreadable", e.what());
            boost::system::error_code ignored;
            io.conn.stream.socket().close(ignored);
        }
        return out;
    }

    static awaitable<void> deliver(state& st, container_io& io, docker::frame f) {
        if (f.stream == 3) {
            warn(st, io, "engine error on the attach stream", f.payload);
            co_return;
        }
        auto listener = st.current_listener();
        if (!listener.output) co_return;
        std::string failure;
        try {
            std::string session_id = io.session_id;  // named: GCC 12, see doc/decisions.md
            worker_ref ref = io.ref;
            co_await listener.output(std::move(session_id), std::move(ref), std::move(f.payload));
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (!failure.empty()) warn(st, io, "output lost", failure);
    }

    static void warn(state& st, const container_io& io, std::string_view what, std::string_view why) {
        st.log(boost::json::serialize(boost::json::object{{"level", "warn"},
                                                          {"component", "docker_spawner"},
                                                          {"msg", what},
                                                          {"session", io.session_id},
                                                          {"error", detail::printable(why)}}));
    }

    static awaitable<void> write_input(std::shared_ptr<container_io> io, std::string bytes, milliseconds limit) {
        std::string who = "docker_spawner.send_input: container " + io->ref.id + " (session '" + io->session_id + "')";
        co_await detail::write_input_in_turn(io->conn.stream, io->write_turn, std::move(bytes), limit, std::move(who));
    }

    static awaitable<void> start_and_wait(state& st, std::string id, std::string who) {
        namespace http = boost::beast::http;
        std::string target = "/containers/" + id + "/start";
        auto started = co_await st.engine.request(http::verb::post, std::move(target));
        if (!started.ok() && started.status != 304)
            throw_error(error::spawn_failed, who + ": start failed: " + started.message());
        boost::asio::steady_timer pause(co_await boost::asio::this_coro::executor);
        const auto give_up = std::chrono::steady_clock::now() + st.options.start_timeout;
        for (milliseconds wait{5};; wait = std::min<milliseconds>(wait * 2, milliseconds{200})) {
            auto found = co_await inspect(st, id);
            if (!found) throw_error(error::spawn_failed, who + ": the container vanished as it started");
            const auto* s = found->if_contains("State");
            const auto* state_obj = s && s->is_object() ? &s->as_object() : nullptr;
            const std::string status = state_obj ? detail::docker_spawner::string_at(*state_obj, "Status") : "";
            if (status == "running") co_return;
            if (status == "exited" || status == "dead") {
                std::string why = "exited at once";
                if (auto* code = state_obj->if_contains("ExitCode"); code && code->is_int64())
                    why += " with code " + std::to_string(code->as_int64());
                if (auto* oom = state_obj->if_contains("OOMKilled"); oom && oom->is_bool() && oom->as_bool())
                    why += " (killed: out of memory)";
                if (auto err = detail::docker_spawner::string_at(*state_obj, "Error"); !err.empty()) why += ": " + err;
                throw_error(error::spawn_failed, who + ": the container " + why);
            }
            if (std::chrono::steady_clock::now() >= give_up)
                throw_error(error::spawn_failed, who + ": the container is still '" + status + "' after " +
                                                     std::to_string(st.options.start_timeout.count()) + " ms");
            pause.expires_after(wait);
            co_await pause.async_wait(boost::asio::use_awaitable);
        }
    }

    std::shared_ptr<state> state_;
    // Shared by the copies of this spawner; the last one closes the attach
    // connections (watches still running keep the state itself alive).
    std::shared_ptr<void> owner_;
};
static_assert(watching_spawner<docker_spawner>);
static_assert(input_spawner<docker_spawner>);

} // namespace sessionkit

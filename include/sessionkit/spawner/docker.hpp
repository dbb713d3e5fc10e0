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
//
// What is sent and how answers are read are pure functions beside this
// header (docker/spec.hpp, docker/replies.hpp); the attach connections
// are in docker/detail/attach.hpp. This header holds the engine calls.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/docker/client.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/spawner/docker/detail/attach.hpp>
#include <sessionkit/spawner/docker/options.hpp>
#include <sessionkit/spawner/docker/replies.hpp>
#include <sessionkit/spawner/docker/spec.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sessionkit {

class docker_spawner {
    using state = detail::docker_spawner::state;

public:
    docker_spawner(boost::asio::any_io_executor executor, docker_options options)
        : state_(std::make_shared<state>(executor, detail::docker_spawner::validated(std::move(options)))),
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
        auto write = detail::docker_spawner::write_input(io, std::move(copy), state_->options.input_timeout);
        co_await boost::asio::co_spawn(io->strand, std::move(write), boost::asio::use_awaitable);
    }

    std::string_view kind() const noexcept { return "docker"; }
    const docker_options& options() const noexcept { return state_->options; }
    docker::client& engine() noexcept { return state_->engine; }

    awaitable<std::optional<worker_ref>> spawn(const session& rec) {
        namespace http = boost::beast::http;
        auto st = state_;
        const docker::container_labels wanted = docker::labels_for(st->options, rec);
        const std::string& session_id = wanted.session;
        const std::string name = docker::container_name(st->options.deployment, session_id);
        const std::string who = "docker_spawner.spawn: session '" + session_id + "'";
        // The engine's ID goes on the worker: several engines may share one store.
        const std::string node = co_await st->engine.engine_id();

        std::string id;
        for (int attempt = 0; attempt < 2 && id.empty(); ++attempt) {
            // Arguments named before awaiting (GCC 12, see doc/decisions.md).
            std::string target = "/containers/create?name=" + name;
            std::optional<boost::json::value> body = docker::create_body(st->options, wanted);
            auto made = co_await st->engine.request(http::verb::post, std::move(target), std::move(body));
            if (made.status == 201) {
                id = docker::detail::string_at(docker::detail::object_of(made.json("create"), "create"), "Id");
                if (id.empty()) throw_error(error::protocol_error, who + ": create answered no Id");
            } else if (made.status == 404) {
                throw_error(error::spawn_failed,
                            who + ": image '" + st->options.image + "' not found (" + made.message() + ")");
            } else if (made.status == 409) {
                // The name is taken: see docker::on_taken_name.
                auto existing = co_await inspect(*st, name);
                if (!existing) continue;  // removed meanwhile: create again
                switch (docker::on_taken_name(docker::labels_of(*existing), wanted)) {
                case docker::taken_name_action::refuse:
                    throw_error(error::spawn_failed, who + ": container name '" + name +
                                                         "' is taken by a container that is not this session's");
                case docker::taken_name_action::adopt: id = docker::detail::string_at(*existing, "Id"); break;
                case docker::taken_name_action::replace: co_await remove(*st, name); break;
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
                co_await detail::docker_spawner::attach(st, std::move(w), session_id);
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
            st->log(boost::json::serialize(
                boost::json::object{{"level", "info"},
                                    {"component", "docker_spawner"},
                                    {"msg", "container runs on another engine: its janitor removes it"},
                                    {"container", id},
                                    {"engine", w.node}}));
            co_return;
        }
        const auto seconds = docker::stop_seconds(grace);
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
        co_return found&& docker::is_running(*found);
    }

    awaitable<std::vector<owned_worker>> list_owned() {
        namespace http = boost::beast::http;
        auto st = state_;
        std::string target = "/containers/json?all=true&filters=" +
                             docker::url_encode(docker::deployment_filter(st->options.deployment));
        const std::string node = co_await st->engine.engine_id();
        auto r = co_await st->engine.request(http::verb::get, std::move(target));
        if (!r.ok()) throw_error(error::backend_unavailable, "docker_spawner.list_owned: " + r.message());
        co_return docker::owned_of(r.json("list containers"), node);
    }

private:
    /// GET /containers/{id or name}/json; nullopt when there is none.
    static awaitable<std::optional<boost::json::object>> inspect(state& st, std::string id) {
        std::string target = "/containers/" + id + "/json";
        auto r = co_await st.engine.request(boost::beast::http::verb::get, std::move(target));
        if (r.status == 404) co_return std::nullopt;
        if (!r.ok()) throw_error(error::backend_unavailable, "docker: inspect container " + id + ": " + r.message());
        co_return docker::detail::object_of(r.json("inspect " + id), "inspect " + id);
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
            const auto progress = docker::start_progress_of(*found);
            if (progress.phase == docker::start_progress::running) co_return;
            if (progress.phase == docker::start_progress::ended)
                throw_error(error::spawn_failed, who + ": the container " + progress.why);
            if (std::chrono::steady_clock::now() >= give_up)
                throw_error(error::spawn_failed, who + ": the container is still '" + progress.status + "' after " +
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

}  // namespace sessionkit

// sessionkit/spawner/docker/detail/attach.hpp — a docker_spawner's shared
// state and its attach connections: the container's stdin written to, its
// output frames handed to the listener, and its exit reported when the
// stream ends. Private to spawner/docker.hpp.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/docker/client.hpp>
#include <sessionkit/docker/frames.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/spawner/docker/options.hpp>
#include <sessionkit/spawner/docker/replies.hpp>
#include <sessionkit/spawner/input.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sessionkit::detail::docker_spawner {

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
    input_turn write_turn;
};

/// What every copy of a docker_spawner shares, and its watches keep alive.
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
        if (options.log)
            options.log(line);
        else
            std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    }
};

inline void warn(state& st, const container_io& io, std::string_view what, std::string_view why) {
    st.log(boost::json::serialize(boost::json::object{{"level", "warn"},
                                                      {"component", "docker_spawner"},
                                                      {"msg", what},
                                                      {"session", io.session_id},
                                                      {"error", printable(why)}}));
}

// Whole frames so far. A stream that is not frames is logged and its
// connection closed (the loop then sees the end).
inline std::vector<docker::frame> take_frames(state& st, container_io& io, docker::frame_reader& frames) {
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

inline awaitable<void> deliver(state& st, container_io& io, docker::frame f) {
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

// Output frames to the listener until the stream ends, then (unless we
// stopped it) the exit code through the engine's wait.
inline awaitable<void> watch_io(std::shared_ptr<state> st, std::shared_ptr<container_io> io) {
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
        if (r.ok()) how = docker::exit_of_wait(r.json("wait"));
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

/// Opens the attach connection of container `w` (before it starts, so that
/// no output is missed) and starts watching it.
inline awaitable<void> attach(std::shared_ptr<state> st, worker_ref w, std::string session_id) {
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

/// Writes `bytes` to the container's stdin in turn. Run it on io's strand.
inline awaitable<void> write_input(std::shared_ptr<container_io> io, std::string bytes, milliseconds limit) {
    std::string who = "docker_spawner.send_input: container " + io->ref.id + " (session '" + io->session_id + "')";
    co_await write_input_in_turn(io->conn.stream, io->write_turn, std::move(bytes), limit, std::move(who));
}

}  // namespace sessionkit::detail::docker_spawner

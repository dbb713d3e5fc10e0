// sessionkit/testing/detail/spawner_support.hpp — what the spawner
// conformance suite runs on: threads for the spawner's watches, a
// synchronous wait for one operation, a recorder of what a watching
// spawner reports, and the world (threads, recorder, spawner) each check
// makes and cleans up. Private to testing/spawner_conformance.hpp.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/session.hpp>
#include <sessionkit/testing/eventually.hpp>
#include <sessionkit/testing/io_threads.hpp>
#include <sessionkit/testing/run.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace sessionkit::testing {

/// What the workers of a spawner made for one check must do. A factory
/// maps each to a command or image of its own (see spawner_conformance.hpp).
enum class worker_program {
    /// Copies its input to its output until stopped, and ends on SIGTERM (`cat`).
    echo,
    /// Writes "bye\n", lives about a second (long enough for spawn to see it
    /// run), then exits with code 0.
    exit_0,
    /// The same, exiting with code 3.
    exit_3,
    /// Ignores SIGTERM, then writes "ready\n", and runs until killed.
    ignore_sigterm,
};

namespace detail::spawner_support {

using testing::eventually;
using testing::io_threads;
using testing::sync_wait;

/// One exit as a watching spawner reported it, with the output of its
/// session reported before it.
struct reported_exit {
    std::string session_id;
    worker_ref worker;
    worker_exit how;
    std::string output_before;
};

/// What a watching spawner reported, by session; safe from any thread.
class recorder {
public:
    void output(const std::string& session_id, const std::string& bytes) {
        std::lock_guard lock(mutex_);
        outputs_[session_id] += bytes;
    }
    void exited(std::string session_id, worker_ref worker, worker_exit how) {
        std::lock_guard lock(mutex_);
        std::string before = outputs_[session_id];
        exits_.push_back({std::move(session_id), std::move(worker), how, std::move(before)});
    }
    std::string output_of(const std::string& session_id) {
        std::lock_guard lock(mutex_);
        return outputs_[session_id];
    }
    std::vector<reported_exit> exits_of(const std::string& session_id) {
        std::lock_guard lock(mutex_);
        std::vector<reported_exit> out;
        for (const auto& e : exits_)
            if (e.session_id == session_id) out.push_back(e);
        return out;
    }

    /// The listener to watch() with. The callbacks are plain functions
    /// that start a coroutine holding its own reference to the recorder.
    static worker_listener listener_for(std::shared_ptr<recorder> r) {
        worker_listener l;
        l.output = [r](std::string session_id, worker_ref, std::string bytes) {
            return record_output(r, std::move(session_id), std::move(bytes));
        };
        l.exited = [r](std::string session_id, worker_ref worker, worker_exit how) {
            return record_exit(r, std::move(session_id), std::move(worker), how);
        };
        return l;
    }

private:
    static awaitable<void> record_output(std::shared_ptr<recorder> r, std::string session_id, std::string bytes) {
        r->output(session_id, bytes);
        co_return;
    }
    static awaitable<void> record_exit(std::shared_ptr<recorder> r, std::string session_id, worker_ref worker,
                                       worker_exit how) {
        r->exited(std::move(session_id), std::move(worker), how);
        co_return;
    }

    std::mutex mutex_;
    std::map<std::string, std::string> outputs_;
    std::vector<reported_exit> exits_;
};

/// A session id no other check (or run of the suite) shares.
inline std::string unique_session_id(std::string_view what) {
    static std::atomic<int> counter{0};
    return "conf-" + std::string(what) + "-" + std::to_string(++counter);
}

/// The record a check spawns for: the factory's make_session(id) when it
/// has one, else a fresh initializing session (created now).
template <class F>
session session_for(F& factory, std::string id) {
    if constexpr (requires { factory.make_session(id); }) {
        return factory.make_session(std::move(id));
    } else {
        session s;
        s.id = std::move(id);
        s.status = session_status::initializing;
        s.created_at = s.last_active = std::chrono::system_clock::now();
        s.idle_timeout = std::chrono::minutes{1};
        s.idle_deadline = s.created_at + s.idle_timeout;
        return s;
    }
}

/// One check's world: threads, a recorder watching (when the spawner
/// watches), and a spawner from the factory. On the way out every worker
/// the spawner still lists is stopped, so a failed check leaves nothing.
template <class F>
struct world {
    using spawner_type = typename F::spawner_type;

    explicit world(worker_program program) : spawner(factory.make(threads.executor(), program)) {
        if constexpr (watching_spawner<spawner_type>) spawner->watch(recorder::listener_for(reported));
    }
    ~world() {
        try {
            for (auto& w : sync_wait(spawner->list_owned()))
                sync_wait(spawner->stop(w.worker, std::chrono::seconds{0}));
            eventually([&] { return sync_wait(spawner->list_owned()).empty(); }, std::chrono::seconds{10});
        } catch (...) {
            // Clean-up is best effort; the check has said what went wrong.
        }
        spawner.reset();
        threads.stop();
    }
    world(const world&) = delete;
    world& operator=(const world&) = delete;

    /// Spawns for a new session; the session's id is in `id`.
    worker_ref spawn(std::string_view what, std::string& id) {
        id = unique_session_id(what);
        const session rec = session_for(factory, id);
        auto w = sync_wait(spawner->spawn(rec));
        if (!w) throw std::runtime_error("spawn for session '" + id + "' made no worker");
        return *w;
    }

    bool lists(const worker_ref& w) {
        for (const auto& o : sync_wait(spawner->list_owned()))
            if (o.worker.id == w.id) return true;
        return false;
    }

    F factory;
    io_threads threads{2};
    std::shared_ptr<recorder> reported = std::make_shared<recorder>();
    std::unique_ptr<spawner_type> spawner;
};

}  // namespace detail::spawner_support
}  // namespace sessionkit::testing

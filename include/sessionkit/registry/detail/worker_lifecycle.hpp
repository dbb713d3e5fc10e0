// sessionkit/registry/detail/worker_lifecycle.hpp — a session's worker from
// spawn to exit: the creator's spawn, waiting for another creator's
// worker, and what a watching spawner reports (output, exits).
//
// One per registry, holding it by reference and using only its public
// accessors (store, clock, spawner, options, emit). Its writes are the
// planners' (transitions.hpp), driven by the one compare-and-swap loop
// (cas.hpp); waiting for another creator polls and takes a lock, which
// is not a read-plan-write shape and stays a loop of its own here.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/output.hpp>
#include <sessionkit/registry/detail/cas.hpp>
#include <sessionkit/registry/detail/transitions.hpp>
#include <sessionkit/session.hpp>
#include <sessionkit/status.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>

namespace sessionkit::detail {

template <class Registry>
class worker_lifecycle {
public:
    explicit worker_lifecycle(Registry& registry) : reg_(registry) {}
    worker_lifecycle(const worker_lifecycle&) = delete;
    worker_lifecycle& operator=(const worker_lifecycle&) = delete;

    // The creator's spawn. The spawn lock marks a spawn in progress, so that
    // a waiter takes over only when its holder died (await_worker). The
    // creator spawns even if a stale lock from an earlier session under
    // this id is still held: nobody else can be spawning this one.
    awaitable<session> start_worker_locked(session s) {
        auto token = co_await reg_.store().try_lock(spawn_lock(s.id), reg_.options().spawn_timeout, reg_.clock().now());
        co_return co_await start_worker_then_unlock(std::move(s), std::move(token));
    }

    // Another caller created the session and is starting its worker: wait
    // for it (polling the store, whichever process that caller is in), or
    // take over if it has been initializing for spawn_timeout. nullopt when
    // it ended meanwhile (the caller creates a new one).
    awaitable<std::optional<session>> await_worker(session s) {
        auto& store = reg_.store();
        const auto spawn_timeout = reg_.options().spawn_timeout;
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
        const auto give_up = std::chrono::steady_clock::now() + spawn_timeout;
        milliseconds pause{2};
        for (;;) {
            if (s.status == session_status::failed && s.end_reason == "spawn_failed")
                throw_error(error::spawn_failed, "acquire: session '" + s.id +
                                                     "': its worker could not be started "
                                                     "(the status_changed event says why)");
            if (is_final(s.status)) co_return std::nullopt;
            if (s.status != session_status::initializing) co_return std::move(s);
            if (reg_.clock().now() - s.created_at >= spawn_timeout) {
                // Its creator died while spawning: the first to lock takes over.
                auto token = co_await store.try_lock(spawn_lock(s.id), spawn_timeout, reg_.clock().now());
                if (token) {
                    auto again = co_await store.get(s.id);
                    if (again && again->status == session_status::initializing && !again->worker)
                        co_return co_await start_worker_then_unlock(std::move(*again), std::move(token));
                    co_await store.unlock(spawn_lock(s.id), *token);
                }
            }
            if (std::chrono::steady_clock::now() >= give_up)
                throw_error(error::timeout, "acquire: session '" + s.id + "': its worker is still starting after " +
                                                std::to_string(spawn_timeout.count()) + " ms");
            timer.expires_after(pause);
            co_await timer.async_wait(boost::asio::use_awaitable);
            pause = std::min<milliseconds>(pause * 2, milliseconds{100});
            auto again = co_await store.get(s.id);
            if (!again) co_return std::nullopt;
            s = std::move(*again);
        }
    }

    /// What a watching spawner is given: output and exits come back here.
    worker_listener listener() {
        worker_listener l;
        l.output = [this](std::string id, worker_ref w, std::string bytes) {
            return on_worker_output(std::move(id), std::move(w), std::move(bytes));
        };
        l.exited = [this](std::string id, worker_ref w, worker_exit how) {
            return on_worker_exit(std::move(id), std::move(w), how);
        };
        return l;
    }

    // Ends the session if it still has worker `w`, announcing it with a
    // worker_exited event (kind, worker, status, reason and `detail`) after
    // its `terminated`. True if this call ended it.
    awaitable<bool> end_for_worker(std::string id, worker_ref w, session_status final_status, std::string reason,
                                   boost::json::object detail) {
        end_request req;
        req.cause = end_cause::worker_exit;
        req.final_status = final_status;
        req.reason = std::move(reason);
        req.worker = w;
        req.exit_detail = std::move(detail);
        auto planner = [&](const std::optional<session>& current) {
            return plan_end(current, req, reg_.clock().now(), reg_.options().stop_lease);
        };
        auto out = co_await drive<modify_outcome>(reg_, std::move(id), std::nullopt, std::move(planner));
        if (!out.written) co_return false;  // ended already, or not by this worker: not ours to end
        // What is left of it goes too (a stopped container); a failure here
        // is the janitor's reconciliation's to finish.
        try {
            co_await reg_.spawner().stop(w, reg_.options().stop_grace);
        } catch (...) {}
        co_return true;
    }

private:
    awaitable<session> start_worker_then_unlock(session s, std::optional<std::string> token) {
        const std::string lock_name = spawn_lock(s.id);
        std::optional<session> started;
        std::exception_ptr failure;
        try {
            started = co_await start_worker(std::move(s));
        } catch (...) {
            failure = std::current_exception();
        }
        if (token) {
            try {
                co_await reg_.store().unlock(lock_name, *token);
            } catch (...) {
                // The lock expires by itself: a failed release costs a waiter
                // at most spawn_timeout, never a second worker.
            }
        }
        if (failure) std::rethrow_exception(failure);
        co_return std::move(*started);
    }

    static std::string spawn_lock(std::string_view id) { return "spawn:" + std::string(id); }

    awaitable<session> start_worker(session s) {
        std::optional<worker_ref> worker;
        std::exception_ptr spawn_error;
        std::string spawn_message;
        try {
            worker = co_await reg_.spawner().spawn(s);
        } catch (const std::exception& e) {
            spawn_error = std::current_exception();
            spawn_message = e.what();
        }
        if (spawn_error) {
            // No half-made session: it is failed, with the spawner's words.
            // (Waiters touch it meanwhile, hence the re-plans.)
            auto failed = [&](const std::optional<session>& current) {
                return plan_spawn_failed(current, s, spawn_message, reg_.clock().now());
            };
            co_await drive<std::monostate>(reg_, s.id, s, std::move(failed));
            std::rethrow_exception(spawn_error);
        }
        // The last record that still waited for this worker: what is
        // returned if the session then vanishes.
        session latest = s;
        auto recorded = [&](const std::optional<session>& current) {
            if (awaits_its_worker(current, s)) latest = *current;
            return plan_worker_recorded(current, s, worker);
        };
        auto out = co_await drive<std::monostate>(reg_, s.id, s, std::move(recorded));
        if (out.written) {
            session next = std::move(*out.written);
            if (worker) {
                // It may have exited before it was recorded (see on_worker_exit).
                if (auto how = take_early_exit(worker->id)) {
                    co_await end_for_exit(next.id, *worker, *how);
                    auto now_stored = co_await reg_.store().get(next.id);
                    co_return now_stored ? std::move(*now_stored) : std::move(next);
                }
            }
            co_return next;
        }
        if (out.exhausted) {
            if (worker) {
                take_early_exit(worker->id);
                co_await reg_.spawner().stop(*worker, reg_.options().stop_grace);
            }
            throw_contention("acquire", s.id, reg_.options().max_cas_attempts);
        }
        // Someone ended it while the worker started: do not leak the worker,
        // unless the record holds this very worker (a spawner that adopted
        // the container another spawn of this session made).
        auto now_stored = co_await reg_.store().get(s.id);
        if (worker && !(now_stored && now_stored->worker == worker)) {
            take_early_exit(worker->id);
            co_await reg_.spawner().stop(*worker, reg_.options().stop_grace);
        }
        co_return now_stored ? std::move(*now_stored) : std::move(latest);
    }

    // Only into the log of the session this worker belongs to: bytes an old
    // worker wrote as it was stopped must not reach a new session under the
    // same id. (Before the worker is recorded, its session is initializing.)
    awaitable<void> on_worker_output(std::string id, worker_ref w, std::string bytes) {
        auto& store = reg_.store();
        if constexpr (output_log<std::remove_reference_t<decltype(store)>>) {
            auto current = co_await store.get(id);
            if (!current) co_return;
            const bool ours = current->worker ? *current->worker == w : current->status == session_status::initializing;
            if (ours) {
                co_await store.append_output(id, bytes);
                reg_.output_signal().notify();  // wakes this process's followers of the output
            }
        }
    }

    // A worker ended by itself. If start_worker has not recorded it on its
    // session yet, it is left in early_exits_ and start_worker ends the
    // session once it has; whichever of the two takes the entry acts.
    awaitable<void> on_worker_exit(std::string id, worker_ref w, worker_exit how) {
        {
            std::lock_guard lock(exits_mutex_);
            // Entries no start_worker took (its spawn failed after the exit
            // was reported) are dropped once they are older than any spawn.
            const auto now = std::chrono::steady_clock::now();
            const auto spawn_timeout = reg_.options().spawn_timeout;
            std::erase_if(early_exits_, [&](const auto& kv) { return now - kv.second.at > 2 * spawn_timeout; });
            early_exits_.insert_or_assign(w.id, early_exit{how, now});
        }
        auto current = co_await reg_.store().get(id);
        if (current && current->status == session_status::initializing && !current->worker) co_return;
        if (auto mine = take_early_exit(w.id)) co_await end_for_exit(id, w, *mine);
    }

    std::optional<worker_exit> take_early_exit(const std::string& worker_id) {
        std::lock_guard lock(exits_mutex_);
        auto it = early_exits_.find(worker_id);
        if (it == early_exits_.end()) return std::nullopt;
        worker_exit how = it->second.how;
        early_exits_.erase(it);
        return how;
    }

    // Exit code 0 ends the session as terminated, anything else as failed;
    // either way with reason worker_exited and a worker_exited event.
    awaitable<void> end_for_exit(std::string id, worker_ref w, worker_exit how) {
        const session_status final_status = how.success() ? session_status::terminated : session_status::failed;
        std::string reason = "worker_exited";  // named: GCC 12, see doc/decisions.md
        boost::json::object detail{{"exit_code", how.exit_code}, {"signal", how.signal}};
        co_await end_for_worker(std::move(id), std::move(w), final_status, std::move(reason), std::move(detail));
        reg_.output_signal().notify();  // followers of its output see it ended
    }

    Registry& reg_;
    std::mutex exits_mutex_;
    struct early_exit {
        worker_exit how;
        std::chrono::steady_clock::time_point at;
    };
    std::unordered_map<std::string, early_exit> early_exits_;  ///< by worker id
};

}  // namespace sessionkit::detail

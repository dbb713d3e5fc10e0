// sessionkit/testing/fake_spawner.hpp — a spawner that starts nothing real.
//
// Part of the testing kit, for unit tests of worker logic (a registry's, a
// janitor's, yours): the test decides what the "worker" does (output, exit,
// vanish, fail to start, be slow) and reads back what it was sent. Copies
// share one state. Real spawners are tested against real processes and a
// real dockerd instead.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/session.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sessionkit::testing {

class fake_spawner {
public:
    std::string_view kind() const noexcept { return "fake"; }

    awaitable<std::optional<worker_ref>> spawn(const session& s) {
        const std::string id = s.id;  // s may not outlive our first suspension
        if (state_->spawn_delay > milliseconds::zero()) {
            boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, state_->spawn_delay);
            co_await t.async_wait(boost::asio::use_awaitable);
        }
        ++state_->spawns;
        if (state_->fail_spawns.load())
            throw_error(error::spawn_failed, "fake_spawner.spawn: session '" + id + "': image 'nope' not found");
        worker_ref w{"fake", "w-" + id};
        {
            std::lock_guard lock(state_->mutex);
            state_->running.insert(w.id);
        }
        // A worker that dies at once: its exit is reported before spawn returns.
        if (state_->exit_on_spawn) co_await report_exit(id, *state_->exit_on_spawn);
        co_return w;
    }

    // ---- watching_spawner and input_spawner ----
    void watch(worker_listener l) { state_->listener = std::move(l); }
    awaitable<void> send_input(const worker_ref& w, std::string_view bytes) {
        std::lock_guard lock(state_->mutex);
        if (!state_->running.contains(w.id))
            throw_error(error::not_found, "fake_spawner.send_input: worker '" + w.id + "' is gone");
        state_->input[w.id] += bytes;
        co_return;
    }

    /// What the worker of session `id` would report: output, then its end.
    awaitable<void> report_output(std::string id, std::string bytes) {
        worker_ref w{"fake", "w-" + id};
        co_await state_->listener.output(std::move(id), std::move(w), std::move(bytes));
    }
    awaitable<void> report_exit(std::string id, worker_exit how) {
        worker_ref w{"fake", "w-" + id};
        return report_exit_of(std::move(id), std::move(w), how);
    }
    awaitable<void> report_exit_of(std::string id, worker_ref w, worker_exit how) {
        {
            std::lock_guard lock(state_->mutex);
            state_->running.erase(w.id);
        }
        co_await state_->listener.exited(std::move(id), std::move(w), how);
    }
    std::string input_of(const std::string& worker_id) const {
        std::lock_guard lock(state_->mutex);
        auto it = state_->input.find(worker_id);
        return it == state_->input.end() ? std::string() : it->second;
    }
    void exit_on_spawn(std::optional<worker_exit> how) { state_->exit_on_spawn = how; }
    /// A worker that vanished without a report (its host rebooted, say).
    void vanish(const std::string& worker_id) {
        std::lock_guard lock(state_->mutex);
        state_->running.erase(worker_id);
    }
    /// A worker running with no session behind it (left by a dead daemon).
    void leave_running(const std::string& worker_id) {
        std::lock_guard lock(state_->mutex);
        state_->running.insert(worker_id);
    }
    void spawn_delay(milliseconds d) { state_->spawn_delay = d; }
    /// Each stop takes this long (a worker slow to end).
    void stop_delay(milliseconds d) { state_->stop_delay = d; }
    awaitable<void> stop(const worker_ref& w, milliseconds) {
        if (state_->stop_delay > milliseconds::zero()) {
            boost::asio::steady_timer t(co_await boost::asio::this_coro::executor, state_->stop_delay);
            co_await t.async_wait(boost::asio::use_awaitable);
        }
        ++state_->stops;
        std::lock_guard lock(state_->mutex);
        state_->running.erase(w.id);
        co_return;
    }
    awaitable<bool> alive(const worker_ref& w) {
        std::lock_guard lock(state_->mutex);
        co_return state_->running.contains(w.id);
    }
    awaitable<std::vector<owned_worker>> list_owned() {
        std::lock_guard lock(state_->mutex);
        std::vector<owned_worker> out;
        for (auto& id : state_->running) out.push_back({worker_ref{"fake", id}, id.substr(2)});
        co_return out;
    }

    int spawns() const { return state_->spawns.load(); }
    int stops() const { return state_->stops.load(); }
    bool running(const std::string& worker_id) const {
        std::lock_guard lock(state_->mutex);
        return state_->running.contains(worker_id);
    }
    void fail_spawns(bool on) { state_->fail_spawns = on; }

private:
    struct state {
        mutable std::mutex mutex;
        std::set<std::string> running;
        std::atomic<int> spawns{0}, stops{0};
        std::atomic<bool> fail_spawns{false};
        worker_listener listener;
        std::map<std::string, std::string> input;  // by worker id
        std::optional<worker_exit> exit_on_spawn;
        milliseconds spawn_delay{0};
        milliseconds stop_delay{0};
    };
    std::shared_ptr<state> state_ = std::make_shared<state>();
};
static_assert(watching_spawner<fake_spawner>);
static_assert(input_spawner<fake_spawner>);

}  // namespace sessionkit::testing

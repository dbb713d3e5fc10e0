// test/support/fake_spawner.hpp — a spawner that starts nothing real, for
// unit tests of the registry's and janitor's worker logic only (the real
// spawners are tested against real processes and a real dockerd).
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace sessionkit::test {

class fake_spawner {
public:
    std::string_view kind() const noexcept { return "fake"; }

    awaitable<std::optional<worker_ref>> spawn(const session& s) {
        if (state_->fail_spawns.load())
            throw_error(error::spawn_failed, "fake_spawner.spawn: session '" + s.id + "': image 'nope' not found");
        ++state_->spawns;
        std::lock_guard lock(state_->mutex);
        state_->running.insert("w-" + s.id);
        worker_ref w{"fake", "w-" + s.id};
        co_return w;
    }
    awaitable<void> stop(const worker_ref& w, milliseconds) {
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
    };
    std::shared_ptr<state> state_ = std::make_shared<state>();
};
static_assert(spawner<fake_spawner>);

} // namespace sessionkit::test

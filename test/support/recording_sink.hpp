// test/support/recording_sink.hpp — an event sink that remembers, for
// assertions. Copies share one log, like real sinks share one stream.
#pragma once

#include <sessionkit/concepts.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sessionkit::test {

class recording_sink {
public:
    void emit(const event& e) noexcept {
        std::lock_guard lock(state_->mutex);
        state_->events.push_back(e);
    }
    std::vector<event> events() const {
        std::lock_guard lock(state_->mutex);
        return state_->events;
    }
    std::size_t count(event_type t) const {
        std::lock_guard lock(state_->mutex);
        std::size_t n = 0;
        for (const auto& e : state_->events) n += e.type == t;
        return n;
    }
    /// How many events of type `t` each session got.
    std::map<std::string, int> per_session(event_type t) const {
        std::lock_guard lock(state_->mutex);
        std::map<std::string, int> out;
        for (const auto& e : state_->events)
            if (e.type == t) ++out[e.session_id];
        return out;
    }
    void clear() {
        std::lock_guard lock(state_->mutex);
        state_->events.clear();
    }

private:
    struct state {
        mutable std::mutex mutex;
        std::vector<event> events;
    };
    std::shared_ptr<state> state_ = std::make_shared<state>();
};
static_assert(event_sink<recording_sink>);

}  // namespace sessionkit::test

// test/support/confirming_recorder.hpp — a confirming sink that remembers
// what it confirmed, and can be told to refuse the next publishes: the
// relay's logic tested without a broker. Copies share one log.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>

#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace sessionkit::test {

class confirming_recorder {
public:
    void emit(const event& e) noexcept {
        std::lock_guard lock(state_->mutex);
        state_->emitted.push_back(e);
    }
    awaitable<void> publish(std::span<const event> batch) {
        {
            std::lock_guard lock(state_->mutex);
            ++state_->attempts;
            if (state_->refuse > 0) {
                --state_->refuse;
                throw_error(error::backend_unavailable, "confirming_recorder: refused (test)");
            }
            state_->confirmed.insert(state_->confirmed.end(), batch.begin(), batch.end());
        }
        co_return;
    }
    /// The next `n` publishes throw.
    void refuse_next(int n) {
        std::lock_guard lock(state_->mutex);
        state_->refuse = n;
    }
    std::vector<event> confirmed() const {
        std::lock_guard lock(state_->mutex);
        return state_->confirmed;
    }
    std::size_t confirmed_count() const {
        std::lock_guard lock(state_->mutex);
        return state_->confirmed.size();
    }
    std::vector<event> emitted() const {
        std::lock_guard lock(state_->mutex);
        return state_->emitted;
    }
    int attempts() const {
        std::lock_guard lock(state_->mutex);
        return state_->attempts;
    }

private:
    struct state {
        mutable std::mutex mutex;
        std::vector<event> confirmed, emitted;
        int refuse = 0;
        int attempts = 0;
    };
    std::shared_ptr<state> state_ = std::make_shared<state>();
};
static_assert(confirming_sink<confirming_recorder>);

}  // namespace sessionkit::test

// sessionkit/sink/hub.hpp — the recent events, for followers in this
// process (sessiond's GET /api/v1/events?follow=1).
//
// An event_hub is a confirming sink that keeps the last `keep` events in a
// ring, numbered 1, 2, 3, ... in the order they arrived. A follower keeps
// the number of the last event it read and asks for what came after; it
// never holds anything of the hub's, so a slow follower costs nothing and
// never slows the relay: if it falls more than `keep` events behind, its
// next read says how many it missed. Behind a relay the hub sees each
// event once its write has committed; an event the relay publishes again
// (a retried batch) is recognised by id while it is still kept and not
// kept twice.
//
// Copies share one hub (like jsonl_sink), so one can sit in a sink_list
// while the HTTP handler reads another. Thread-safe.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/detail/wake_signal.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/event.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace sessionkit {

class event_hub {
public:
    /// Keeps the last `keep` events (1..10,000,000).
    explicit event_hub(std::size_t keep = 4096) : state_(std::make_shared<state>(keep)) {
        if (keep == 0 || keep > 10'000'000)
            throw_error(error::invalid_argument,
                        "event_hub: keep must be between 1 and 10000000 events, got " + std::to_string(keep));
    }

    void emit(const event& e) noexcept {
        try {
            state_->signal.notify([&] { state_->append(e); });
        } catch (...) {
            // Out of memory copying the event: a follower misses it (its
            // numbers stay contiguous, so it cannot tell; events never fail
            // a session operation).
        }
    }

    /// Confirms once the batch is kept (at once: it is in memory).
    awaitable<void> publish(std::span<const event> batch) {
        state_->signal.notify([&] {
            for (const auto& e : batch) state_->append(e);
        });
        co_return;
    }

    /// What one read returns.
    struct read_result {
        std::vector<event> events;
        std::uint64_t next = 0;    ///< the number of the last event returned (or `after` when none): ask after it next
        std::uint64_t missed = 0;  ///< events after `after` no longer kept (the follower fell behind)
    };

    /// Up to `limit` events numbered after `after`, oldest first.
    read_result read(std::uint64_t after, std::size_t limit) const {
        std::lock_guard lock(state_->signal.mutex());
        const auto& s = *state_;
        read_result out;
        const std::uint64_t first = s.last + 1 - s.ring.size();  // number of ring.front()
        std::uint64_t from = after + 1;
        if (from < first) {
            out.missed = first - from;
            from = first;
        }
        out.next = std::max(after, from - 1);
        for (std::uint64_t n = from; n <= s.last && out.events.size() < limit; ++n) {
            out.events.push_back(s.ring[static_cast<std::size_t>(n - first)]);
            out.next = n;
        }
        return out;
    }

    /// The number of the newest event (0 before the first).
    std::uint64_t last() const {
        std::lock_guard lock(state_->signal.mutex());
        return state_->last;
    }

    /// The number of the event with id `event_id`, if it is still kept
    /// (how a follower that reconnects with Last-Event-ID resumes).
    std::optional<std::uint64_t> number_of(std::string_view event_id) const {
        std::lock_guard lock(state_->signal.mutex());
        const auto& s = *state_;
        if (!s.ids.contains(std::string(event_id))) return std::nullopt;
        const std::uint64_t first = s.last + 1 - s.ring.size();
        for (std::size_t i = s.ring.size(); i-- > 0;)
            if (s.ring[i].id == event_id) return first + i;
        return std::nullopt;
    }

    /// Returns once an event numbered after `after` arrived, or after
    /// `at_most`.
    awaitable<void> wait(std::uint64_t after, milliseconds at_most) {
        const std::uint64_t seen = state_->signal.generation();
        if (last() > after) co_return;
        co_await state_->signal.wait(at_most, seen);
    }

    std::size_t keep() const noexcept { return state_->keep; }

private:
    struct state {
        explicit state(std::size_t k) : keep(k) {}

        // Under signal's lock.
        void append(const event& e) {
            if (!ids.insert(e.id).second) return;  // published again: already kept
            ring.push_back(e);
            ++last;
            if (ring.size() > keep) {
                ids.erase(ring.front().id);
                ring.pop_front();
            }
        }

        const std::size_t keep;
        detail::wake_signal signal;  ///< its mutex guards the rest
        std::deque<event> ring;
        std::unordered_set<std::string> ids;  ///< of the events in ring
        std::uint64_t last = 0;
    };

    std::shared_ptr<state> state_;
};
static_assert(confirming_sink<event_hub>);

}  // namespace sessionkit

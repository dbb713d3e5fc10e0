// sessionkit/store/memory/detail/outbox.hpp — memory_store's outbox: one
// bounded queue of events, appended under the store's lock with the write
// that implies them.
//
// Private to memory_store (store/memory.hpp), which holds its mutex around
// every call. Positions are sequence numbers written in decimal: they only
// grow, and a relay hands them back unchanged. The bound and the overflow
// policy are outbox_options' (sessionkit/outbox.hpp).
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/event.hpp>
#include <sessionkit/outbox.hpp>

#include <charconv>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace sessionkit::detail::memory {

class outbox {
public:
    explicit outbox(outbox_options options) : options_(options) {
        if (options_.max_events == 0 || options_.max_events > 100'000'000)
            throw_error(error::invalid_argument,
                        "outbox_options.max_events must be 1..100000000, got " + std::to_string(options_.max_events));
    }

    /// Throws error::backend_unavailable when `n` more events would not fit
    /// and the policy refuses writes. Called before the write changes
    /// anything, so a refused write leaves the store as it was.
    void check_room(std::size_t n) const {
        if (options_.overflow == outbox_overflow::refuse_writes && entries_.size() + n > options_.max_events)
            throw_error(error::backend_unavailable,
                        "memory_store: outbox partition 0 is full (" + std::to_string(entries_.size()) +
                            " events, max_events " + std::to_string(options_.max_events) +
                            "; overflow refuse_writes): the write was refused, nothing changed");
    }

    /// Appends `events` in order. What no longer fits is dropped and
    /// recorded: with drop_oldest the oldest events; with refuse_writes
    /// (reached only by a sweep's warnings: writes call check_room first)
    /// the newcomers.
    void append(const std::vector<event>& events) {
        for (const auto& e : events) {
            if (options_.overflow == outbox_overflow::refuse_writes && entries_.size() >= options_.max_events) {
                record_dropped(e);
                continue;
            }
            entries_.push_back({next_++, e});
        }
        while (entries_.size() > options_.max_events) {
            record_dropped(entries_.front().ev);
            entries_.pop_front();
        }
    }

    std::vector<outbox_entry> read(std::string_view after, std::size_t limit) const {
        const std::uint64_t from = after.empty() ? 0 : position_of(after, "read_outbox") + 1;
        std::vector<outbox_entry> out;
        for (auto it = first_at_or_after(from); it != entries_.end() && out.size() < limit; ++it)
            out.push_back({std::to_string(it->seq), it->ev});
        return out;
    }

    std::size_t trim(std::string_view upto) {
        const std::uint64_t last = position_of(upto, "trim_outbox");
        std::size_t n = 0;
        while (!entries_.empty() && entries_.front().seq <= last) {
            entries_.pop_front();
            ++n;
        }
        return n;
    }

    outbox_stats stats() const {
        outbox_stats st;
        st.depth = entries_.size();
        if (!entries_.empty()) st.oldest = entries_.front().ev.time;
        st.dropped = dropped_total_;
        return st;
    }

    std::vector<dropped_event> take_dropped(std::size_t limit) {
        std::vector<dropped_event> out;
        while (!dropped_.empty() && out.size() < limit) {
            out.push_back(std::move(dropped_.front()));
            dropped_.pop_front();
        }
        return out;
    }

private:
    struct entry {
        std::uint64_t seq;
        event ev;
    };

    void record_dropped(const event& gone) {
        ++dropped_total_;
        dropped_.push_back({0, gone.id, gone.session_id, std::string(to_string(gone.type))});
        if (dropped_.size() > options_.dropped_ids_kept) dropped_.pop_front();
    }

    static std::uint64_t position_of(std::string_view text, std::string_view operation) {
        std::uint64_t value = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc{} || end != text.data() + text.size())
            throw_error(error::invalid_argument, "memory_store." + std::string(operation) + ": position '" +
                                                     std::string(text) + "' is not one this outbox gave out");
        return value;
    }

    std::deque<entry>::const_iterator first_at_or_after(std::uint64_t seq) const {
        // Sequence numbers are consecutive from the front: index, not search.
        if (entries_.empty() || seq <= entries_.front().seq) return entries_.begin();
        const std::uint64_t skip = seq - entries_.front().seq;
        return skip >= entries_.size() ? entries_.end() : entries_.begin() + static_cast<std::ptrdiff_t>(skip);
    }

    outbox_options options_;
    std::deque<entry> entries_;
    std::uint64_t next_ = 1;
    std::uint64_t dropped_total_ = 0;
    std::deque<dropped_event> dropped_;
};

}  // namespace sessionkit::detail::memory

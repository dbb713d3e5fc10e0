// sessionkit/outbox.hpp — the outbox capability of a store: events written
// in the same atomic operation as the state change they describe.
//
// A store with an outbox (memory_store, redis_store when its options turn
// the outbox on) takes, with each write that changes state, the events the
// transition implies, and appends them only if the write lands: in Redis an
// XADD in the same script, in memory under the same lock. They wait in the
// outbox of the session's partition, in the order they were written, until
// an event_relay (event_relay.hpp) has published them and a sink confirmed
// them; then the relay trims them. So an event is lost only if the state
// change it describes is lost too. doc/events.md has the guarantee, the
// wire format and the failure behaviour.
//
// The outbox is bounded per partition (outbox_options). When a sink stays
// down longer than the bound allows, the overflow policy decides: drop the
// oldest event (the default: every session operation keeps succeeding) or
// refuse the write (error::unavailable: no event is ever dropped, but state
// changes fail until the relay catches up). Every dropped event is counted
// and its id kept for the relay to log: never silent.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/concepts.hpp>
#include <sessionkit/detail/wake_signal.hpp>
#include <sessionkit/event.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sessionkit {

/// What a full outbox does with the next event.
enum class outbox_overflow : std::uint8_t {
    drop_oldest,    ///< trim the oldest event of the partition (counted, its id logged); the write succeeds
    refuse_writes,  ///< the write fails with error::unavailable naming the partition; nothing is dropped
};

constexpr std::string_view to_string(outbox_overflow o) noexcept {
    return o == outbox_overflow::drop_oldest ? "drop_oldest" : "refuse_writes";
}

/// How a store keeps its outbox. Every instance sharing a backend should
/// use the same settings.
struct outbox_options {
    /// Events held per partition before the overflow policy applies
    /// (1..100,000,000). 100,000 events of ~250 bytes is ~25 MB per partition.
    std::size_t max_events = 100'000;
    outbox_overflow overflow = outbox_overflow::drop_oldest;
    /// Ids of dropped events kept per partition for the relay to log
    /// (older ones are still counted).
    std::size_t dropped_ids_kept = 1000;
};

/// One event waiting in a partition's outbox. `position` is the store's
/// (Redis: the stream entry id; memory: a sequence number); positions only
/// grow within a partition, and the relay hands them back unchanged.
struct outbox_entry {
    std::string position;
    event ev;
};

/// An event the overflow policy dropped (the relay logs it).
struct dropped_event {
    unsigned partition = 0;
    std::string event_id;
    std::string session_id;
    std::string type;  ///< to_string(event_type)
};

/// A snapshot of the whole outbox (all partitions).
struct outbox_stats {
    std::uint64_t depth = 0;           ///< events waiting
    std::optional<time_point> oldest;  ///< time of the oldest waiting event (lag = now - oldest)
    std::uint64_t dropped = 0;         ///< events ever dropped by the overflow policy
};

/// In-process wake-up: a store notifies it after a write that appended
/// events; an event_relay waits on it (with a bounded timeout, which is
/// how it notices other processes' writes). Thread-safe; cheap when
/// nobody waits.
class outbox_signal {
public:
    /// Marks `partition` as having new events and wakes every waiter.
    void notify(unsigned partition) noexcept {
        signal_.notify([&] {
            if (dirty_.size() <= partition) dirty_.resize(partition + 1, false);
            dirty_[partition] = true;
        });
    }

    /// The partitions notified since the last call, cleared.
    std::vector<unsigned> take_dirty() {
        std::lock_guard lock(signal_.mutex());
        std::vector<unsigned> out;
        for (unsigned p = 0; p < dirty_.size(); ++p)
            if (dirty_[p]) {
                out.push_back(p);
                dirty_[p] = false;
            }
        return out;
    }

    /// Returns once notify() was called after generation() returned
    /// `seen` (at once if it already was), or after `at_most`.
    awaitable<void> wait(milliseconds at_most, std::uint64_t seen) { return signal_.wait(at_most, seen); }

    /// Notifications so far: read it before looking at the outbox, pass it
    /// to wait(), and a notify() in between is not missed.
    std::uint64_t generation() const { return signal_.generation(); }

private:
    detail::wake_signal signal_;
    std::vector<bool> dirty_;  ///< guarded by signal_.mutex()
};

/// outbox_store: a session_store whose writes can carry their events.
///
///   - has_outbox(): whether this instance keeps one (redis_store: when
///     its options say so). When false, the overloads below must not be
///     called, and the registry publishes directly (best effort).
///   - create(rec, events) / update(rec, v, events): as create/update, and
///     the events are appended to rec.id's partition in the same atomic
///     operation, in order, only when the write lands (created / updated).
///   - claim_warnings(...) of a store with an outbox appends a
///     timeout_warning event (make_timeout_warning) per claimed record.
///   - outbox_partitions(): how many partitions (0..n-1) the relay leases.
///   - read_outbox(p, after, limit): up to `limit` entries of partition p
///     following position `after` ("" = from the oldest), oldest first.
///   - trim_outbox(p, upto): removes the entries at or before `upto`;
///     returns how many. Trimming what is already gone is a no-op.
///   - outbox_stats(): depth, oldest and dropped over every partition.
///   - take_dropped(limit): ids of events the overflow policy dropped, not
///     yet taken (the relay logs them), oldest first.
///   - outbox_signal(): the in-process wake-up (see above).
///   - extend_lock(name, token, ttl, now): keeps a lock held by `token` for
///     `ttl` more; false if the token no longer holds it (how a relay
///     keeps, and notices it lost, a partition's lease).
template <class S>
concept outbox_store = session_store<S> &&
    requires(S& s, const S& cs, const session& rec, const std::vector<event>& events, std::uint64_t version,
             unsigned partition, std::string_view position, std::size_t limit, std::string_view name,
             std::string_view token, milliseconds ttl, time_point now) {
    { cs.has_outbox() }
    noexcept->std::same_as<bool>;
    { s.create(rec, events) } -> std::same_as<awaitable<create_result>>;
    { s.update(rec, version, events) } -> std::same_as<awaitable<update_result>>;
    { cs.outbox_partitions() }
    noexcept->std::same_as<unsigned>;
    { s.read_outbox(partition, position, limit) } -> std::same_as<awaitable<std::vector<outbox_entry>>>;
    { s.trim_outbox(partition, position) } -> std::same_as<awaitable<std::size_t>>;
    { s.outbox_stats() } -> std::same_as<awaitable<outbox_stats>>;
    { s.take_dropped(limit) } -> std::same_as<awaitable<std::vector<dropped_event>>>;
    { s.outbox_signal() } -> std::same_as<outbox_signal&>;
    { s.extend_lock(name, token, ttl, now) } -> std::same_as<awaitable<bool>>;
};

/// Whether `store` takes events with its writes (an outbox_store whose
/// outbox is on).
template <class Store>
bool writes_events(const Store& store) noexcept {
    if constexpr (outbox_store<Store>)
        return store.has_outbox();
    else
        return false;
}

}  // namespace sessionkit

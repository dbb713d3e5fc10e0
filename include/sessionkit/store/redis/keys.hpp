// sessionkit/store/redis/keys.hpp — the name of every key redis_store uses,
// as pure functions.
//
// Sessions are spread over hash-tagged partitions "<prefix>{<n>}:" (n =
// FNV-1a(id) mod partitions): a partition's records and indexes share one
// Redis Cluster slot, so a script can touch all of them. The Lua scripts
// (scripts.hpp) derive the same names from the partition base they are
// given; these functions are the C++ side of that layout, public so that a
// tool can find a session's keys the way the store does. doc/redis.md, "Key
// layout", describes what each key holds.
#pragma once

#include <sessionkit/detail/fnv.hpp>
#include <sessionkit/status.hpp>
#include <sessionkit/store_types.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace sessionkit::redis_store_keys {

/// How many partitions a prefix may be split into.
inline constexpr unsigned max_partitions = 1024;

/// The partition that holds `id` (precondition: 1 <= partitions). FNV-1a
/// is stable across processes, languages and versions, so every instance
/// (and every tool) agrees where an id lives.
constexpr unsigned partition_of(std::string_view id, unsigned partitions) noexcept {
    return sessionkit::detail::fnv1a_32(id) % partitions;
}

/// "<prefix>{<partition>}:": what every key of the partition starts with,
/// and the one key each script is given.
inline std::string partition_base(std::string_view prefix, unsigned partition) {
    std::string base;
    base.reserve(prefix.size() + 8);
    base.append(prefix).append("{").append(std::to_string(partition)).append("}:");
    return base;
}

/// A session's record, a hash: "<base>s:<id>".
inline std::string record_key(std::string_view base, std::string_view id) {
    std::string key;
    key.reserve(base.size() + 2 + id.size());
    key.append(base).append("s:").append(id);
    return key;
}

/// A session's worker output, a string: "<base>o:<id>".
inline std::string output_key(std::string_view base, std::string_view id) {
    std::string key;
    key.reserve(base.size() + 2 + id.size());
    key.append(base).append("o:").append(id);
    return key;
}

/// A named lock: "<prefix>lock:<name>" (no partition: a lock is not a
/// session's).
inline std::string lock_key(std::string_view prefix, std::string_view name) {
    std::string key;
    key.reserve(prefix.size() + 5 + name.size());
    key.append(prefix).append("lock:").append(name);
    return key;
}

// The per-partition keys below are named relative to the partition base
// (the key is base + name): that is how list and the sweeps pass them to
// their scripts.

/// Every id of the partition, a sorted set (score 0, paged by id).
inline constexpr std::string_view ids_index = "ids";
/// Live sessions by the deadline they were filed under.
inline constexpr std::string_view live_index = "live";
/// Live sessions that still owe an expiry warning, by deadline.
inline constexpr std::string_view warn_index = "warn";
/// Finished sessions by end time (purge_ended reads it).
inline constexpr std::string_view ended_index = "ended";
/// Records that could not be read, moved out of the sweep indexes.
inline constexpr std::string_view corrupt_index = "corrupt";
/// The partition's counters, a hash (store_stats).
inline constexpr std::string_view stats_hash = "stats";

/// The partition's event outbox, a stream (doc/redis.md, "Outbox").
inline constexpr std::string_view outbox_stream = "outbox";
/// Events the outbox's overflow policy dropped, a list, oldest first:
/// "<time ms> <type> <event id> <session id>".
inline constexpr std::string_view outbox_dropped = "outbox:dropped";
/// The field of stats_hash that counts the events ever dropped.
inline constexpr std::string_view outbox_dropped_counter = "outbox_dropped";

/// The ids of one owner's sessions.
inline std::string owner_index(std::string_view owner) { return "owner:" + std::string(owner); }
/// The ids of the sessions in one status.
inline std::string status_index(session_status s) { return "status:" + std::string(to_string(s)); }

/// What a list query reads in each partition: an index (relative to the
/// base) and, when the index cannot filter by itself, the status a record
/// must have ("" for any).
struct list_source {
    std::string index;
    std::string status_filter;
};

/// Owner first (an owner has few sessions; the status is then checked per
/// record), else status, else every id.
inline list_source list_source_of(const list_query& q) {
    if (q.owner) return {owner_index(*q.owner), q.status ? std::string(to_string(*q.status)) : std::string()};
    if (q.status) return {status_index(*q.status), std::string()};
    return {std::string(ids_index), std::string()};
}

}  // namespace sessionkit::redis_store_keys

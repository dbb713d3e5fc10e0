// sessionkit/concepts.hpp — the three pluggable parts, requirement by
// requirement. Every model has static_assert(concept<model>) beside it, and
// sessionkit/testing/archetypes.hpp holds minimal models and near-misses
// that must not satisfy them (test/unit/concepts_test.cpp asserts both).
//
// All operations are boost::asio::awaitable<T> (default executor) and never
// block an executor thread. Expected outcomes are values; a backend failure
// is a boost::system::system_error with a sessionkit::error code whose
// message names the backend, the operation and the key.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/event.hpp>
#include <sessionkit/session.hpp>
#include <sessionkit/store_types.hpp>

#include <boost/asio/awaitable.hpp>

#include <concepts>
#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sessionkit {

template <class T>
using awaitable = boost::asio::awaitable<T>;

/// session_store: durable session state, shared by every registry and
/// janitor that uses the same backend. Each operation is atomic with
/// respect to every other (in Redis one script, in PostgreSQL one
/// transaction). Time is passed in by the caller's session_clock so that
/// every instance agrees on deadlines.
template <class S>
concept session_store = requires(S& s, const session& rec, std::string_view id, std::string_view name,
                                 std::string_view token, time_point now, std::uint64_t version, std::size_t limit,
                                 milliseconds ttl, const list_query& query) {
    /// create(rec): insert rec if no live session has rec.id. A final
    /// (terminated/failed) record with that id is replaced, continuing its
    /// version sequence so a stale compare-and-swap can never hit the new
    /// session. The store sets record.version; rec.version is ignored.
    { s.create(rec) } -> std::same_as<awaitable<create_result>>;
    /// get(id): the record, history included; nullopt when absent.
    { s.get(id) } -> std::same_as<awaitable<std::optional<session>>>;
    /// touch(id, now): last_active = now; idle_deadline = now + idle_timeout
    /// capped at absolute_deadline; warning_sent = false; version + 1.
    /// A stopping or final record is reported unchanged (never revived).
    /// nullopt when absent.
    { s.touch(id, now) } -> std::same_as<awaitable<std::optional<touch_result>>>;
    /// update(rec, v): replace the record with rec if its stored version is
    /// v; the stored version becomes v + 1. A final record is never updated.
    { s.update(rec, version) } -> std::same_as<awaitable<update_result>>;
    /// erase(id): remove the record and every index entry; false if absent.
    { s.erase(id) } -> std::same_as<awaitable<bool>>;
    /// claim_expired(now, limit, lease): atomically hand over up to `limit`
    /// non-final records whose idle_deadline <= now (roughly earliest first), each to
    /// exactly one caller: status becomes stopping, end_reason "idle" or
    /// "lifetime" (kept if already set), idle_deadline = now + lease (so a
    /// claim whose janitor died is claimed again later), version + 1.
    { s.claim_expired(now, limit, ttl) } -> std::same_as<awaitable<std::vector<session>>>;
    /// claim_warnings(now, horizon, limit): atomically mark warning_sent on
    /// up to `limit` records that are not stopping or final, not yet
    /// warned, and whose deadline lies in (now, horizon]; return them.
    { s.claim_warnings(now, now, limit) } -> std::same_as<awaitable<std::vector<session>>>;
    /// purge_ended(before, limit): erase up to `limit` final records that
    /// ended at or before `before` (history retention); returns how many.
    { s.purge_ended(now, limit) } -> std::same_as<awaitable<std::size_t>>;
    /// list(query): one page in id order, filtered by owner and/or status.
    { s.list(query) } -> std::same_as<awaitable<session_page>>;
    /// stats(): counts by status and lifetime counters.
    { s.stats() } -> std::same_as<awaitable<store_stats>>;
    /// ping(): returns when the backend answers; throws when it does not.
    { s.ping() } -> std::same_as<awaitable<void>>;
    /// try_lock(name, ttl, now): a short-lived named lock; a fresh token
    /// when acquired, nullopt while another holder's lock is unexpired.
    { s.try_lock(name, ttl, now) } -> std::same_as<awaitable<std::optional<std::string>>>;
    /// unlock(name, token): releases only if `token` still holds it.
    { s.unlock(name, token) } -> std::same_as<awaitable<bool>>;
};

/// event_sink: where lifecycle events go.
///   - emit(e) is noexcept and does not suspend: a sink buffers, drops or
///     logs, but never blocks or fails its caller;
///   - emit may be called from several threads at once.
template <class K>
concept event_sink = requires(K& k, const event& e) {
    { k.emit(e) }
    noexcept->std::same_as<void>;
};

/// confirming_sink: an event_sink that can also say when events are kept.
///   - publish(batch) completes once every event of the batch is stored
///     where the sink keeps it (jsonl_sink: written and flushed; nats_sink:
///     acknowledged by JetStream; null_sink: at once), in the batch's
///     order; it throws a sessionkit error naming the sink when it cannot
///     be, and the caller (an event_relay) publishes the batch again,
///     with the same event ids, so a sink that de-duplicates by id keeps
///     each event once;
///   - one publish at a time per caller; several callers may publish at once.
template <class K>
concept confirming_sink = event_sink<K> && requires(K& k, std::span<const event> batch) {
    { k.publish(batch) } -> std::same_as<awaitable<void>>;
};

/// A worker this deployment owns, as the spawner lists it.
struct owned_worker {
    worker_ref worker;
    std::string session_id;  ///< from its label; empty when it has none
    bool running = true;     ///< false: it exists but has ended (a stopped container)
};

/// spawner: one resource (process, container) per session.
template <class P>
concept spawner = requires(P& p, const session& rec, const worker_ref& w, milliseconds grace) {
    /// kind(): the name stored in worker_ref::kind ("process", "docker").
    { p.kind() } -> std::convertible_to<std::string_view>;
    /// spawn(rec): start a worker for rec and return it once it runs;
    /// nullopt for a spawner that makes none. Throws error::spawn_failed
    /// (or backend_unavailable) naming what went wrong.
    { p.spawn(rec) } -> std::same_as<awaitable<std::optional<worker_ref>>>;
    /// stop(w, grace): ask it to end, force it after `grace`; returns when
    /// it is gone. Stopping a worker that is already gone succeeds.
    { p.stop(w, grace) } -> std::same_as<awaitable<void>>;
    /// alive(w): whether it still runs.
    { p.alive(w) } -> std::same_as<awaitable<bool>>;
    /// list_owned(): every worker labelled with this deployment, for
    /// reconciliation after a crash.
    { p.list_owned() } -> std::same_as<awaitable<std::vector<owned_worker>>>;
};

/// How a worker ended on its own (not through stop()).
struct worker_exit {
    int exit_code = 0;  ///< what it passed to exit(); -1 when a signal ended it
    int signal = 0;     ///< the signal that ended it; 0 when it exited
    bool success() const noexcept { return signal == 0 && exit_code == 0; }
};

/// What a watching spawner reports to its registry. Both run on the
/// spawner's executor; the spawner awaits each before reading on, so a slow
/// store slows the worker's pipe, never loses bytes.
struct worker_listener {
    /// Bytes the worker wrote (stdout and stderr, interleaved as written).
    std::function<awaitable<void>(std::string session_id, worker_ref worker, std::string bytes)> output;
    /// The worker ended by itself; reported once, after its last output.
    std::function<awaitable<void>(std::string session_id, worker_ref worker, worker_exit how)> exited;
};

/// watching_spawner: a spawner that notices its workers' output and exits.
/// The registry calls watch() once, from its constructor.
template <class P>
concept watching_spawner = spawner<P> && requires(P& p, worker_listener listener) {
    { p.watch(std::move(listener)) } -> std::same_as<void>;
};

/// input_spawner: a spawner whose workers read input (a process's stdin).
/// send_input(w, bytes) returns once the bytes are written; a worker that
/// is gone is error::not_found naming it.
template <class P>
concept input_spawner = spawner<P> && requires(P& p, const worker_ref& w, std::string_view bytes) {
    { p.send_input(w, bytes) } -> std::same_as<awaitable<void>>;
};

}  // namespace sessionkit

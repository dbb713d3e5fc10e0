// sessionkit/testing/archetypes.hpp — the least that models each concept, and
// near-misses that must not.
//
// Part of the testing kit. Archetypes (namespace archetypes) declare exactly
// what a concept requires and nothing more: compile your generic code over
// them (`sizeof(my_thing<archetypes::minimal_store>)`, a function template
// called in an unevaluated context) and it cannot lean on anything a real
// store, spawner or clock happens to offer beyond its concept. Near-misses
// (namespace near_miss) each get one requirement wrong, with the reason in a
// comment; a concept that accepts one has lost that requirement. Everything
// here is declared, never defined: use it only where nothing is called.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/output.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sessionkit::testing {

namespace archetypes {

/// session_clock: a const now() returning a system_clock time_point.
struct minimal_clock {
    time_point now() const;
};

/// event_sink: emit, noexcept, returning nothing.
struct minimal_sink {
    void emit(const event&) noexcept;
};

/// spawner: kind, spawn, stop, alive, list_owned.
struct minimal_spawner {
    std::string_view kind() const;
    awaitable<std::optional<worker_ref>> spawn(const session&);
    awaitable<void> stop(const worker_ref&, milliseconds);
    awaitable<bool> alive(const worker_ref&);
    awaitable<std::vector<owned_worker>> list_owned();
};

/// watching_spawner: a spawner that takes one listener.
struct minimal_watching_spawner : minimal_spawner {
    void watch(worker_listener);
};

/// input_spawner: a spawner that writes to its workers.
struct minimal_input_spawner : minimal_spawner {
    awaitable<void> send_input(const worker_ref&, std::string_view);
};

/// session_store: the thirteen operations, each an awaitable.
struct minimal_store {
    awaitable<create_result> create(const session&);
    awaitable<std::optional<session>> get(std::string_view);
    awaitable<std::optional<touch_result>> touch(std::string_view, time_point);
    awaitable<update_result> update(const session&, std::uint64_t);
    awaitable<bool> erase(std::string_view);
    awaitable<std::vector<session>> claim_expired(time_point, std::size_t, milliseconds);
    awaitable<std::vector<session>> claim_warnings(time_point, time_point, std::size_t);
    awaitable<std::size_t> purge_ended(time_point, std::size_t);
    awaitable<session_page> list(const list_query&);
    awaitable<store_stats> stats();
    awaitable<void> ping();
    awaitable<std::optional<std::string>> try_lock(std::string_view, milliseconds, time_point);
    awaitable<bool> unlock(std::string_view, std::string_view);
};

/// session_store and output_log: a store that keeps worker output.
struct minimal_logging_store : minimal_store {
    awaitable<bool> append_output(std::string_view, std::string_view);
    awaitable<std::optional<output_chunk>> read_output(std::string_view, std::uint64_t, std::size_t);
};

}  // namespace archetypes

namespace near_miss {

// ---- clocks
struct steady_now {
    std::chrono::steady_clock::time_point now() const;  // not comparable across hosts
};
struct mutable_now {
    time_point now();  // not callable on a const clock
};
struct no_copy_clock {
    no_copy_clock() = default;
    no_copy_clock(const no_copy_clock&) = delete;  // the registry and janitors each hold a copy
    time_point now() const;
};

// ---- sinks
struct throwing_sink {
    void emit(const event&);  // not noexcept
};
struct returning_sink {
    bool emit(const event&) noexcept;  // a result nobody reads
};
struct by_string_sink {
    void emit(const std::string&) noexcept;  // not an event
};

// ---- spawners
struct blocking_spawner : archetypes::minimal_spawner {
    std::optional<worker_ref> spawn(const session&);  // not an awaitable: would block
};
struct no_list_spawner {  // cannot be reconciled after a crash
    std::string_view kind() const;
    awaitable<std::optional<worker_ref>> spawn(const session&);
    awaitable<void> stop(const worker_ref&, milliseconds);
    awaitable<bool> alive(const worker_ref&);
};
struct numbered_kind_spawner : archetypes::minimal_spawner {
    int kind() const;  // worker_ref::kind is a name, not a number
};
struct awaited_watch_spawner : archetypes::minimal_spawner {
    awaitable<void> watch(worker_listener);  // called from a constructor: cannot be awaited
};
struct blocking_input_spawner : archetypes::minimal_spawner {
    void send_input(const worker_ref&, std::string_view);  // not an awaitable: would block
};

// ---- stores: minimal_store, each missing or bending one requirement
struct sync_get_store : archetypes::minimal_store {
    std::optional<session> get(std::string_view);  // synchronous: would block
};
struct bool_update_store : archetypes::minimal_store {
    awaitable<bool> update(const session&, std::uint64_t);  // loses the reason
};
struct no_claim_store {  // janitors cannot sweep it
    awaitable<create_result> create(const session&);
    awaitable<std::optional<session>> get(std::string_view);
    awaitable<std::optional<touch_result>> touch(std::string_view, time_point);
    awaitable<update_result> update(const session&, std::uint64_t);
    awaitable<bool> erase(std::string_view);
    awaitable<session_page> list(const list_query&);
    awaitable<store_stats> stats();
    awaitable<void> ping();
    awaitable<std::optional<std::string>> try_lock(std::string_view, milliseconds, time_point);
    awaitable<bool> unlock(std::string_view, std::string_view);
};
struct untimed_touch_store : archetypes::minimal_store {
    awaitable<std::optional<session>> touch(std::string_view);  // reads its own clock
};
struct record_touch_store : archetypes::minimal_store {
    awaitable<std::optional<session>> touch(std::string_view, time_point);  // wrong result type
};

// ---- output logs
struct offsetless_output_store : archetypes::minimal_store {
    awaitable<bool> append_output(std::string_view, std::string_view);
    // A reader cannot tell where it is, nor what was dropped.
    awaitable<std::optional<std::string>> read_output(std::string_view, std::uint64_t, std::size_t);
};

}  // namespace near_miss

}  // namespace sessionkit::testing

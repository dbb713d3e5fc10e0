// Models satisfy their concepts; near-misses (one requirement wrong) do not.
#include <sessionkit/sessionkit.hpp>

#include "support/recording_sink.hpp"

#include <boost/test/unit_test.hpp>

using namespace sessionkit;

namespace near_miss {

// ---- clocks
struct steady_now { std::chrono::steady_clock::time_point now() const; };
struct mutable_now { time_point now(); };  // not callable on a const clock
struct no_copy_clock {
    no_copy_clock() = default;
    no_copy_clock(const no_copy_clock&) = delete;
    time_point now() const;
};

// ---- sinks
struct throwing_sink { void emit(const event&); };  // not noexcept
struct returning_sink { bool emit(const event&) noexcept; };
struct by_string_sink { void emit(const std::string&) noexcept; };

// ---- spawners
struct blocking_spawner : no_spawner {
    std::optional<worker_ref> spawn(const session&);  // not an awaitable
};
struct no_list_spawner {
    std::string_view kind() const;
    awaitable<std::optional<worker_ref>> spawn(const session&);
    awaitable<void> stop(const worker_ref&, milliseconds);
    awaitable<bool> alive(const worker_ref&);
};

// ---- stores: memory_store's surface, each missing or bending one requirement
struct full_store {
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
struct sync_get_store : full_store {
    std::optional<session> get(std::string_view);  // synchronous: would block
};
struct bool_update_store : full_store {
    awaitable<bool> update(const session&, std::uint64_t);  // loses the reason
};
struct no_claim_store {
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
struct untimed_touch_store : full_store {
    awaitable<std::optional<session>> touch(std::string_view);  // reads its own clock
};

struct record_touch_store : full_store {
    awaitable<std::optional<session>> touch(std::string_view, time_point);  // wrong result type
};

} // namespace near_miss

// Models.
static_assert(session_clock<system_clock_policy>);
static_assert(session_clock<manual_clock>);
static_assert(event_sink<null_sink>);
static_assert(event_sink<jsonl_sink>);
static_assert(event_sink<fanout<null_sink, jsonl_sink>>);
static_assert(event_sink<test::recording_sink>);
static_assert(spawner<no_spawner>);
static_assert(session_store<memory_store>);
static_assert(session_store<near_miss::full_store>);  // the archetype itself is a model

// Near-misses.
static_assert(!session_clock<near_miss::steady_now>);
static_assert(!session_clock<near_miss::mutable_now>);
static_assert(!session_clock<near_miss::no_copy_clock>);
static_assert(!event_sink<near_miss::throwing_sink>);
static_assert(!event_sink<near_miss::returning_sink>);
static_assert(!event_sink<near_miss::by_string_sink>);
static_assert(!spawner<near_miss::blocking_spawner>);
static_assert(!spawner<near_miss::no_list_spawner>);
static_assert(!session_store<near_miss::sync_get_store>);
static_assert(!session_store<near_miss::bool_update_store>);
static_assert(!session_store<near_miss::no_claim_store>);
static_assert(!session_store<near_miss::untimed_touch_store>);
static_assert(!session_store<near_miss::record_touch_store>);

// A registry composes over the archetype store without instantiating bodies.
static_assert(sizeof(session_registry<near_miss::full_store>) > 0);

BOOST_AUTO_TEST_CASE(concept_checks_compile) {
    // The checks are the static_asserts above; this case records that the
    // file was built into the suite.
    BOOST_TEST(session_store<memory_store>);
}

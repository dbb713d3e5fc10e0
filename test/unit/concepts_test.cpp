// Models satisfy their concepts; near-misses (one requirement wrong) do not.
// The archetypes and near-misses are the testing kit's
// (<sessionkit/testing/archetypes.hpp>); the checks are here.
#include <sessionkit/sessionkit.hpp>
#include <sessionkit/testing/archetypes.hpp>
#include <sessionkit/testing/fake_spawner.hpp>

#include "support/recording_sink.hpp"

#include <boost/test/unit_test.hpp>

using namespace sessionkit;
namespace archetypes = sessionkit::testing::archetypes;
namespace near_miss = sessionkit::testing::near_miss;

// Models.
static_assert(session_clock<system_clock_policy>);
static_assert(session_clock<manual_clock>);
static_assert(event_sink<null_sink>);
static_assert(event_sink<jsonl_sink>);
static_assert(event_sink<fanout<null_sink, jsonl_sink>>);
static_assert(event_sink<test::recording_sink>);
static_assert(spawner<no_spawner>);
static_assert(watching_spawner<testing::fake_spawner>);
static_assert(input_spawner<testing::fake_spawner>);
static_assert(session_store<memory_store>);
static_assert(output_log<memory_store>);

// The archetypes are models, of their concept and no richer one.
static_assert(session_clock<archetypes::minimal_clock>);
static_assert(event_sink<archetypes::minimal_sink>);
static_assert(spawner<archetypes::minimal_spawner>);
static_assert(!watching_spawner<archetypes::minimal_spawner>);
static_assert(!input_spawner<archetypes::minimal_spawner>);
static_assert(watching_spawner<archetypes::minimal_watching_spawner>);
static_assert(!input_spawner<archetypes::minimal_watching_spawner>);
static_assert(input_spawner<archetypes::minimal_input_spawner>);
static_assert(!watching_spawner<archetypes::minimal_input_spawner>);
static_assert(session_store<archetypes::minimal_store>);
static_assert(!output_log<archetypes::minimal_store>);
static_assert(session_store<archetypes::minimal_logging_store>);
static_assert(output_log<archetypes::minimal_logging_store>);

// Near-misses.
static_assert(!session_clock<near_miss::steady_now>);
static_assert(!session_clock<near_miss::mutable_now>);
static_assert(!session_clock<near_miss::no_copy_clock>);
static_assert(!event_sink<near_miss::throwing_sink>);
static_assert(!event_sink<near_miss::returning_sink>);
static_assert(!event_sink<near_miss::by_string_sink>);
static_assert(!spawner<near_miss::blocking_spawner>);
static_assert(!spawner<near_miss::no_list_spawner>);
static_assert(!spawner<near_miss::numbered_kind_spawner>);
static_assert(!watching_spawner<near_miss::awaited_watch_spawner>);
static_assert(!input_spawner<near_miss::blocking_input_spawner>);
static_assert(!session_store<near_miss::sync_get_store>);
static_assert(!session_store<near_miss::bool_update_store>);
static_assert(!session_store<near_miss::no_claim_store>);
static_assert(!session_store<near_miss::untimed_touch_store>);
static_assert(!session_store<near_miss::record_touch_store>);
static_assert(session_store<near_miss::offsetless_output_store>);  // still a store,
static_assert(!output_log<near_miss::offsetless_output_store>);    // not an output log

// A registry composes over the archetypes without instantiating bodies.
static_assert(sizeof(session_registry<archetypes::minimal_store>) > 0);
static_assert(sizeof(basic_session_registry<archetypes::minimal_logging_store, archetypes::minimal_clock,
                                            archetypes::minimal_sink, archetypes::minimal_watching_spawner>) > 0);

BOOST_AUTO_TEST_CASE(concept_checks_compile) {
    // The checks are the static_asserts above; this case records that the
    // file was built into the suite.
    BOOST_TEST(session_store<memory_store>);
}

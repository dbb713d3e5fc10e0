// sessionkit/testing/store_conformance.hpp — the session_store contract as one
// templated Boost.Test suite (`store_conformance`) that every store runs unchanged.
//
// Part of the testing kit (CMake: sessionkit::testing). To run it against
// your store, give it a factory that makes a fresh, empty store per test
// case, list the factories in a tuple named conformance_factories at global
// scope, then include this header, once, in one translation unit of a
// Boost.Test executable:
//
//   struct my_factory {
//       using store_type = my_store;
//       std::unique_ptr<my_store> make();  // a fresh store with no sessions
//                                          // (e.g. a new key prefix on a shared server)
//   };
//   using conformance_factories = std::tuple<my_factory>;
//   #include <sessionkit/testing/store_conformance.hpp>
//
// The suite passes time in explicitly (stores never read a clock), so it is
// deterministic. Concurrency cases run real threads against one store. The
// output_log cases run only for stores that model output_log. The helpers
// the cases use (make_record, t0, ...) are in <sessionkit/testing/store_fixtures.hpp>.
// header-check prelude: conformance_factories (the suite is compiled over an archetype store)
#pragma once

#include <sessionkit/testing/store_fixtures.hpp>

// In this order: the order the cases run in.
#include <sessionkit/testing/detail/store_cases_listing.hpp>
#include <sessionkit/testing/detail/store_cases_locks.hpp>
#include <sessionkit/testing/detail/store_cases_outbox.hpp>
#include <sessionkit/testing/detail/store_cases_output.hpp>
#include <sessionkit/testing/detail/store_cases_records.hpp>
#include <sessionkit/testing/detail/store_cases_sweeps.hpp>

// test/headers/prelude_conformance_factories.hpp — what headers.self-contained
// puts before a store conformance header (they say so with
// "header-check prelude: conformance_factories"): the factory list the suite
// needs, over the archetype store (declared only: a syntax check calls nothing).
#pragma once

#include <sessionkit/testing/archetypes.hpp>

#include <memory>
#include <tuple>

struct header_check_factory {
    using store_type = sessionkit::testing::archetypes::minimal_logging_store;
    std::unique_ptr<store_type> make();
};
using conformance_factories = std::tuple<header_check_factory>;

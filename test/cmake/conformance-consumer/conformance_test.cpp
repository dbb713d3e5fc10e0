// An out-of-tree store author's test: sessionkit's store conformance suite,
// from the installed package, run against toy_store (this project's own).
#define BOOST_TEST_MODULE toy_store_conformance
#include <boost/test/unit_test.hpp>

#include "toy_store.hpp"

#include <memory>
#include <tuple>

struct toy_store_factory {
    using store_type = toy::toy_store;
    std::unique_ptr<toy::toy_store> make() { return std::make_unique<toy::toy_store>(); }
};

using conformance_factories = std::tuple<toy_store_factory>;
#include <sessionkit/testing/store_conformance.hpp>

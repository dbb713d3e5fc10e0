// test/conformance/store_conformance.hpp — forwards to
// <sessionkit/testing/store_conformance.hpp>, keeping the old helper
// namespace (sessionkit::conformance) for the tests that still use it.
#pragma once

#include <sessionkit/testing/store_conformance.hpp>

namespace sessionkit {
namespace conformance = testing::conformance;
} // namespace sessionkit

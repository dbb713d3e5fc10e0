// test/support/run.hpp — forwards to <sessionkit/testing/run.hpp> under the
// old names (sessionkit::test::sync_wait, run_threads) for the tests that
// still include it.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/testing/run.hpp>

namespace sessionkit::test {
using testing::run_threads;
using testing::sync_wait;
} // namespace sessionkit::test

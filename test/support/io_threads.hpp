// test/support/io_threads.hpp — forwards to <sessionkit/testing/io_threads.hpp>
// under the old name (sessionkit::test::io_threads).
#pragma once

#include <sessionkit/testing/io_threads.hpp>

namespace sessionkit::test {
using testing::io_threads;
} // namespace sessionkit::test

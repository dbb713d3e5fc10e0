// test/support/fake_spawner.hpp — forwards to <sessionkit/testing/fake_spawner.hpp>
// under the old name (sessionkit::test::fake_spawner).
#pragma once

#include <sessionkit/testing/fake_spawner.hpp>

namespace sessionkit::test {
using testing::fake_spawner;
} // namespace sessionkit::test

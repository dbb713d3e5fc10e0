// sessionkit/testing/eventually.hpp — wait for something another thread or
// process makes true, with a deadline.
#pragma once

#include <chrono>
#include <thread>

namespace sessionkit::testing {

/// Polls `done()` every 5 ms until it is true or `limit` has passed;
/// returns done().
template <class F>
bool eventually(F done, std::chrono::milliseconds limit = std::chrono::seconds{5}) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds{5});
    }
    return true;
}

}  // namespace sessionkit::testing

// sessionkit::testing from an installed prefix: one Boost.Test case on the
// kit's manual_clock. It links only if the target sets BOOST_TEST_DYN_LINK
// for a shared Boost.Test, as it says it does.
#define BOOST_TEST_MODULE sessionkit_testing_consumer
#include <sessionkit/testing/manual_clock.hpp>

#include <boost/test/unit_test.hpp>

BOOST_AUTO_TEST_CASE(manual_clock_advances) {
    sessionkit::testing::manual_clock clock;
    const auto start = clock.now();
    clock.advance(std::chrono::seconds{2});
    BOOST_TEST((clock.now() - start == std::chrono::seconds{2}));
}

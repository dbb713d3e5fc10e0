// event_relay's decisions without I/O: the partition lease.
#include <sessionkit/relay/detail/lease.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>

using namespace std::chrono_literals;
using sessionkit::detail::partition_lease;
using step = partition_lease::step;

BOOST_AUTO_TEST_SUITE(relay_lease)

BOOST_AUTO_TEST_CASE(a_free_partition_is_tried_at_once_then_a_third_of_a_lease_later) {
    partition_lease lease(9000ms);
    const auto t0 = partition_lease::steady::time_point{} + 1h;
    BOOST_TEST((lease.next(t0) == step::acquire));
    lease.tried(std::nullopt, t0, 500ms);  // someone else holds it
    BOOST_TEST((lease.next(t0 + 3000ms) == step::wait));
    BOOST_TEST((lease.due_at() == t0 + 3500ms));
    BOOST_TEST((lease.next(t0 + 3500ms) == step::acquire));
}

BOOST_AUTO_TEST_CASE(a_held_partition_is_worked_and_renewed_every_third_of_the_lease) {
    partition_lease lease(9000ms);
    const auto t0 = partition_lease::steady::time_point{} + 1h;
    lease.tried(std::string("tok"), t0);
    BOOST_TEST(lease.held());
    BOOST_TEST((lease.next(t0 + 2999ms) == step::work));
    BOOST_TEST((lease.next(t0 + 3000ms) == step::renew));
    lease.renewed(true, t0 + 3000ms);
    BOOST_TEST((lease.next(t0 + 5000ms) == step::work));
    BOOST_TEST((lease.next(t0 + 6000ms) == step::renew));
}

BOOST_AUTO_TEST_CASE(a_lost_renewal_stops_the_work_and_tries_again_later) {
    partition_lease lease(9000ms);
    const auto t0 = partition_lease::steady::time_point{} + 1h;
    lease.tried(std::string("tok"), t0);
    lease.renewed(false, t0 + 3000ms);
    BOOST_TEST(!lease.held());
    BOOST_TEST((lease.next(t0 + 3001ms) == step::wait));
    BOOST_TEST((lease.next(t0 + 6000ms) == step::acquire));
}

BOOST_AUTO_TEST_CASE(a_store_error_keeps_the_lease_and_retries_the_step_later) {
    partition_lease lease(9000ms);
    const auto t0 = partition_lease::steady::time_point{} + 1h;
    lease.failed(t0);  // try_lock threw
    BOOST_TEST((lease.next(t0 + 1ms) == step::wait));
    lease.tried(std::string("tok"), t0 + 3000ms);
    lease.failed(t0 + 6000ms);  // extend_lock threw: the lock may well still be ours
    BOOST_TEST(lease.held());
    BOOST_TEST((lease.next(t0 + 6001ms) == step::work));
    BOOST_TEST((lease.release() == std::optional<std::string>("tok")));
    BOOST_TEST(!lease.held());
}

BOOST_AUTO_TEST_SUITE_END()

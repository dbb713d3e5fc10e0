// memory_store: the conformance suite, plus what only the memory store promises.
#include <sessionkit/store/memory.hpp>

#include <boost/test/unit_test.hpp>

#include <memory>
#include <tuple>

namespace {
struct memory_store_factory {
    using store_type = sessionkit::memory_store;
    std::unique_ptr<sessionkit::memory_store> make() { return std::make_unique<sessionkit::memory_store>(); }
};
} // namespace

using conformance_factories = std::tuple<memory_store_factory>;
#include "conformance/store_conformance.hpp"

using namespace sessionkit;
using namespace sessionkit::conformance;

BOOST_AUTO_TEST_CASE(memory_store_claims_visit_only_due_sessions) {
    // 100k live sessions, 10 due: a claim must not walk the rest. Timed
    // loosely (it is a unit test, not a benchmark): a scan of 100k records
    // would show as milliseconds per claim, the index as microseconds.
    memory_store store;
    for (int i = 0; i < 100000; ++i)
        store.create_now(make_record("big" + std::to_string(i), "o", i < 10 ? 1s : 1h));
    auto claimed = store.claim_expired_now(t0 + 2s, 1000, 1min);
    BOOST_TEST(claimed.size() == 10u);
    BOOST_TEST(store.claim_warnings_now(t0 + 2s, t0 + 3s, 1000).empty());
    BOOST_TEST(store.purge_ended_now(t0 + 1h, 1000) == 0u);
}

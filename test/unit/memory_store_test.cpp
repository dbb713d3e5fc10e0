// memory_store: the conformance suite, plus what only the memory store
// promises. The suite also runs on write_through<memory_store, memory_cache>
// (its logic; on real servers: test/integration/write_through_test.cpp).
#include "support/owned_write_through.hpp"
#include <sessionkit/store/memory.hpp>
#include <sessionkit/store/memory_cache.hpp>

#include <boost/test/unit_test.hpp>

#include <memory>
#include <tuple>

namespace {
struct memory_store_factory {
    using store_type = sessionkit::memory_store;
    std::unique_ptr<sessionkit::memory_store> make() { return std::make_unique<sessionkit::memory_store>(); }
    std::unique_ptr<sessionkit::memory_store> make_with_outbox(sessionkit::outbox_options outbox) {
        return std::make_unique<sessionkit::memory_store>(sessionkit::memory_store_options{.outbox = outbox});
    }
};

/// Every touch reaches the primary (coalescing off) or none does within a
/// case (a long window): the suite must pass both ways.
template <int CoalesceMs>
struct write_through_memory_factory {
    using store_type = sessionkit::test::owned_write_through<sessionkit::memory_store, sessionkit::memory_cache>;
    static constexpr bool coalesces_touches = CoalesceMs > 0;
    static sessionkit::write_through_options options() {
        sessionkit::write_through_options o;
        o.touch_coalesce = std::chrono::milliseconds{CoalesceMs};
        return o;
    }
    std::unique_ptr<store_type> make() {
        return std::make_unique<store_type>(std::make_unique<sessionkit::memory_store>(),
                                            std::make_unique<sessionkit::memory_cache>(), options());
    }
    std::unique_ptr<store_type> make_with_outbox(sessionkit::outbox_options outbox) {
        return std::make_unique<store_type>(
            std::make_unique<sessionkit::memory_store>(sessionkit::memory_store_options{.outbox = outbox}),
            std::make_unique<sessionkit::memory_cache>(), options());
    }
};
}  // namespace

using conformance_factories =
    std::tuple<memory_store_factory, write_through_memory_factory<0>, write_through_memory_factory<3600000>>;
#include <sessionkit/testing/store_conformance.hpp>

using namespace sessionkit;
using namespace sessionkit::testing::conformance;

BOOST_AUTO_TEST_CASE(memory_store_claims_visit_only_due_sessions) {
    // 100k live sessions, 10 due: a sweep must visit the due entries, not
    // the table. Counted, not timed: a full scan would pass any loose time
    // limit on a fast machine.
    memory_store store;
    for (int i = 0; i < 100000; ++i) store.create_now(make_record("big" + std::to_string(i), "o", i < 10 ? 1s : 1h));
    const auto before = store.sweep_visits();
    auto claimed = store.claim_expired_now(t0 + 2s, 1000, 1min);
    BOOST_TEST(claimed.size() == 10u);
    BOOST_TEST(store.sweep_visits() - before == 10u);
    // Nothing is near its deadline, nothing has ended: nothing to visit.
    BOOST_TEST(store.claim_warnings_now(t0 + 2s, t0 + 3s, 1000).empty());
    BOOST_TEST(store.purge_ended_now(t0 + 1h, 1000) == 0u);
    BOOST_TEST(store.sweep_visits() - before == 10u);
}

BOOST_AUTO_TEST_CASE(memory_store_output_keeps_the_newest_bytes_and_says_what_was_dropped) {
    memory_store store(memory_store_options{.output_limit = 8});
    sync_wait(store.create(make_record("b1")));
    sync_wait(store.append_output("b1", "0123"));
    sync_wait(store.append_output("b1", "4567"));
    sync_wait(store.append_output("b1", "89"));  // 10 bytes written, 8 kept
    auto from0 = *sync_wait(store.read_output("b1", 0, 100));
    BOOST_TEST(from0.dropped);
    BOOST_TEST(from0.offset == 2u);
    BOOST_TEST(from0.data == "23456789");
    BOOST_TEST(from0.next_offset == 10u);
    auto from5 = *sync_wait(store.read_output("b1", 5, 100));
    BOOST_TEST(!from5.dropped);
    BOOST_TEST(from5.data == "56789");
    // Many small writes: always exactly the last 8 bytes, at their offsets.
    for (int i = 0; i < 1000; ++i)
        sync_wait(store.append_output("b1", std::string(1, static_cast<char>('a' + i % 26))));
    auto tail = *sync_wait(store.read_output("b1", 0, 100));
    BOOST_TEST(tail.offset == 1002u);
    BOOST_TEST(tail.next_offset == 1010u);
    std::string expect;
    for (int i = 992; i < 1000; ++i) expect += static_cast<char>('a' + i % 26);
    BOOST_TEST(tail.data == expect);
    // One write larger than the whole log keeps its own tail.
    sync_wait(store.append_output("b1", "ABCDEFGHIJKL"));
    auto big = *sync_wait(store.read_output("b1", 1010, 100));
    BOOST_TEST(big.dropped);
    BOOST_TEST(big.offset == 1014u);
    BOOST_TEST(big.data == "EFGHIJKL");
    BOOST_CHECK_THROW(memory_store(memory_store_options{.output_limit = 0}), boost::system::system_error);
}

// sessionkit/testing/detail/store_cases_output.hpp — conformance cases:
// output_log, for the stores that keep worker output (no-ops for the rest).
//
// One part of the store conformance suite: include
// <sessionkit/testing/store_conformance.hpp>, not this (the cases need the
// user's conformance_factories declared first).
// header-check prelude: conformance_factories (the suite is compiled over an archetype store)
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/output.hpp>
#include <sessionkit/testing/store_fixtures.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdint>
#include <string>

BOOST_AUTO_TEST_SUITE(store_conformance)

using namespace sessionkit;
using namespace sessionkit::testing::conformance;

BOOST_AUTO_TEST_CASE_TEMPLATE(output_is_read_back_by_offset_in_order, F, conformance_factories) {
    if constexpr (output_log<typename F::store_type>) {
        F factory;
        auto store = factory.make();
        create_ok(*store, make_record("o1"));
        auto empty = sync_wait(store->read_output("o1", 0, 100));
        BOOST_REQUIRE(empty);
        BOOST_TEST(empty->data.empty());
        BOOST_TEST(empty->next_offset == 0u);
        BOOST_TEST(sync_wait(store->append_output("o1", "abc")));
        BOOST_TEST(sync_wait(store->append_output("o1", std::string("d\0e", 3))));
        auto all = sync_wait(store->read_output("o1", 0, 100));
        BOOST_TEST(all->data == std::string("abcd\0e", 6));
        BOOST_TEST(all->next_offset == 6u);
        BOOST_TEST(!all->dropped);
        auto mid = sync_wait(store->read_output("o1", 2, 2));
        BOOST_TEST(mid->data == "cd");
        BOOST_TEST(mid->offset == 2u);
        BOOST_TEST(mid->next_offset == 4u);
        BOOST_TEST(sync_wait(store->read_output("o1", 6, 100))->data.empty());
        try {
            sync_wait(store->read_output("o1", 7, 100));
            BOOST_FAIL("expected invalid_argument");
        } catch (const boost::system::system_error& e) {
            BOOST_TEST(e.code() == make_error_code(error::invalid_argument));
            BOOST_TEST(std::string(e.what()).find("offset 7") != std::string::npos);
            BOOST_TEST(std::string(e.what()).find("o1") != std::string::npos);
        }
        BOOST_TEST(!sync_wait(store->append_output("nobody", "x")));
        BOOST_TEST(!sync_wait(store->read_output("nobody", 0, 10)));
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(output_goes_with_its_record, F, conformance_factories) {
    if constexpr (output_log<typename F::store_type>) {
        F factory;
        auto store = factory.make();
        auto s = create_ok(*store, make_record("o2"));
        sync_wait(store->append_output("o2", "first life"));
        // A finished session keeps its log (a failed worker's last words)...
        auto ended = finish(*store, s, t0 + 1s, session_status::failed);
        BOOST_TEST(sync_wait(store->read_output("o2", 0, 100))->data == "first life");
        BOOST_TEST(sync_wait(store->append_output("o2", "!")));
        // ...until a new session takes its id,
        create_ok(*store, make_record("o2"));
        BOOST_TEST(sync_wait(store->read_output("o2", 0, 100))->data.empty());
        // or it is erased, or purged.
        sync_wait(store->append_output("o2", "second"));
        BOOST_TEST(sync_wait(store->erase("o2")));
        BOOST_TEST(!sync_wait(store->read_output("o2", 0, 100)));
        create_ok(*store, make_record("o2"));
        BOOST_TEST(sync_wait(store->read_output("o2", 0, 100))->data.empty());
        auto s3 = create_ok(*store, make_record("o3"));
        sync_wait(store->append_output("o3", "old"));
        finish(*store, s3, t0 + 1s);
        BOOST_TEST(sync_wait(store->purge_ended(t0 + 2s, 10)) == 1u);
        BOOST_TEST(!sync_wait(store->read_output("o3", 0, 100)));
        (void)ended;
    }
}

BOOST_AUTO_TEST_CASE_TEMPLATE(concurrent_appends_are_each_kept_whole, F, conformance_factories) {
    if constexpr (output_log<typename F::store_type>) {
        F factory;
        auto store = factory.make();
        create_ok(*store, make_record("o4"));
        boost::asio::io_context ctx;
        for (int i = 0; i < 100; ++i)
            boost::asio::co_spawn(
                ctx,
                [&, i]() -> awaitable<void> {
                    co_await store->append_output("o4", "<" + std::string(10, static_cast<char>('a' + i % 26)) + ">");
                },
                boost::asio::detached);
        run_threads(ctx, 4);
        std::string all;
        for (std::uint64_t at = 0;;) {
            auto c = sync_wait(store->read_output("o4", at, 256));
            if (c->data.empty()) break;
            all += c->data;
            at = c->next_offset;
        }
        BOOST_REQUIRE(all.size() == 1200u);
        for (std::size_t i = 0; i < all.size(); i += 12) {
            BOOST_TEST(all[i] == '<');
            BOOST_TEST(all[i + 11] == '>');
            BOOST_TEST(all.substr(i + 1, 10) == std::string(10, all[i + 1]));
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()

// sessionkit/testing/store_fixtures.hpp — the records and steps the store
// conformance suite builds its cases from.
//
// Part of the testing kit. A store's own tests may use them too (after
// `using namespace sessionkit::testing::conformance;`): make_record builds a
// live session at t0, create_ok / finish assert each step landed, page_all
// follows cursors to the end. Time is always passed in: t0 is a fixed
// instant, so every run is the same.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/session.hpp>
#include <sessionkit/status.hpp>
#include <sessionkit/store_types.hpp>
#include <sessionkit/testing/run.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sessionkit::testing::conformance {

using namespace std::chrono_literals;
using testing::run_threads;
using testing::sync_wait;

inline const time_point t0 = from_unix_ms(1'893'456'000'000);  // 2030-01-01

/// A factory whose store coalesces touches (write_through with a window):
/// a touch it absorbs keeps the version, so the cases that count versions
/// after a touch check only that it did not go down. Declared by the
/// factory: `static constexpr bool coalesces_touches = true;`.
template <class F>
concept coalesces_touches = requires {
    requires F::coalesces_touches;
};

inline session make_record(std::string id, std::string owner = "alice", milliseconds idle = 60s,
                           std::optional<milliseconds> lifetime = std::nullopt, time_point now = t0) {
    session s;
    s.id = std::move(id);
    s.owner = std::move(owner);
    s.status = session_status::active;
    s.created_at = now;
    s.last_active = now;
    s.idle_timeout = idle;
    if (lifetime) s.absolute_deadline = now + *lifetime;
    s.idle_deadline = sliding_deadline(s, now);
    s.attributes = {{"k", "v"}};
    return s;
}

template <class Store>
session create_ok(Store& store, const session& s) {
    auto r = sync_wait(store.create(s));
    BOOST_REQUIRE(r.created);
    return r.record;
}

template <class Store>
session finish(Store& store, session s, time_point when, session_status final_status = session_status::terminated) {
    auto expected = s.version;
    s.status = final_status;
    s.ended_at = when;
    s.end_reason = "deleted";
    BOOST_REQUIRE(sync_wait(store.update(s, expected)) == update_result::updated);
    s.version = expected + 1;
    return s;
}

template <class Store>
std::vector<std::string> page_all(Store& store, list_query q, std::size_t* pages = nullptr) {
    std::vector<std::string> ids;
    for (std::size_t n = 0;; ++n) {
        auto page = sync_wait(store.list(q));
        for (auto& s : page.sessions) ids.push_back(s.id);
        if (!page.next_cursor) {
            if (pages) *pages = n + 1;
            return ids;
        }
        BOOST_REQUIRE(n < 100000);
        q.cursor = *page.next_cursor;
    }
}

}  // namespace sessionkit::testing::conformance

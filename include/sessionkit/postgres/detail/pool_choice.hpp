// sessionkit/postgres/detail/pool_choice.hpp — which connection of a pool
// takes the next operation, decided from a snapshot of their states and
// loads, without I/O.
#pragma once

#include <sessionkit/postgres/detail/pipeline.hpp>

#include <cstddef>
#include <limits>
#include <span>

namespace sessionkit::postgres::detail {

/// One pool member as the chooser sees it.
struct member_view {
    link_state state = link_state::connecting;
    std::size_t load = 0;  ///< operations queued or in flight
};

/// The least-loaded ready connection; ties go to the first at or after
/// `start` (the caller turns `start` round, so equal loads take turns).
/// None ready: the least-loaded one still connecting or setting up (the
/// operation waits for it within its deadline). None of those either (all
/// down between attempts, or closed): the one at `start`, which refuses the
/// operation at once with the reason of its last attempt.
inline std::size_t choose_member(std::span<const member_view> members, std::size_t start) {
    const std::size_t n = members.size();
    if (n == 0) return 0;
    start %= n;
    auto best_of = [&](auto accept) {
        std::size_t best = n;
        std::size_t best_load = std::numeric_limits<std::size_t>::max();
        for (std::size_t k = 0; k < n; ++k) {
            const std::size_t i = (start + k) % n;
            if (!accept(members[i].state)) continue;
            if (members[i].load < best_load) {
                best = i;
                best_load = members[i].load;
            }
        }
        return best;
    };
    if (auto i = best_of([](link_state s) { return s == link_state::ready; }); i < n) return i;
    if (auto i = best_of([](link_state s) { return s == link_state::connecting || s == link_state::setting_up; });
        i < n)
        return i;
    return start;
}

}  // namespace sessionkit::postgres::detail

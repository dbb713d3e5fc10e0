// sessionkit/spawner/none.hpp — the spawner for sessions that own nothing.
#pragma once

#include <sessionkit/concepts.hpp>

namespace sessionkit {

struct no_spawner {
    /// Lets the registry skip the spawn step entirely (sessions start active).
    static constexpr bool spawns_workers = false;

    std::string_view kind() const noexcept { return "none"; }
    awaitable<std::optional<worker_ref>> spawn(const session&) { co_return std::nullopt; }
    awaitable<void> stop(const worker_ref&, milliseconds) { co_return; }
    awaitable<bool> alive(const worker_ref&) { co_return false; }
    awaitable<std::vector<owned_worker>> list_owned() { co_return std::vector<owned_worker>{}; }
};
static_assert(spawner<no_spawner>);

}  // namespace sessionkit

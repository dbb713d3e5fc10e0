// sessionkit/registry_types.hpp — the values session_registry takes and
// returns (its options, acquire's options and result, modify's outcome),
// apart from the registry itself, so that code which only builds or reads
// them (the HTTP router) need not include the whole registry.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/session.hpp>
#include <sessionkit/store_types.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <optional>
#include <string>

namespace sessionkit {

struct registry_options {
    /// Idle timeout of a new session unless acquire says otherwise.
    milliseconds idle_timeout = std::chrono::minutes{30};
    /// Maximum lifetime of a new session (none: only the idle timeout ends it).
    std::optional<milliseconds> max_lifetime;
    /// How long a worker gets between the polite stop and the forced one.
    milliseconds stop_grace = std::chrono::seconds{10};
    /// How long a session may sit in `stopping` before a janitor takes over
    /// (the instance that began stopping it may have died).
    milliseconds stop_lease = std::chrono::seconds{60};
    /// How many times a compare-and-swap is retried before error::contention.
    int max_cas_attempts = 64;
    /// How long acquire waits for another caller's worker to start; a
    /// session still initializing after this (its creator died while
    /// spawning) has its worker started by the next acquire.
    milliseconds spawn_timeout = std::chrono::minutes{2};
};

/// Per-call settings of a new session (ignored when the session exists).
///
/// GCC 12 destroys an aggregate temporary twice when it is brace-initialised
/// inside a co_await expression (`co_await reg.acquire(id, {.owner = "a"})`,
/// `co_await reg.list({...})`): on that compiler, name acquire_options and
/// list_query variables before awaiting; see doc/decisions.md. This is also
/// why no coroutine here takes a defaulted aggregate argument.
struct acquire_options {
    std::string owner;
    boost::json::object attributes;
    std::optional<milliseconds> idle_timeout;
    std::optional<milliseconds> max_lifetime;
};

struct acquire_result {
    session record;
    bool created = false;
};

/// What modify() did; `record` is the stored session afterwards (or the
/// current one on a conflict), nullopt when there is none.
struct modify_outcome {
    update_result result = update_result::not_found;
    std::optional<session> record;
};

}  // namespace sessionkit

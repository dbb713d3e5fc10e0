// sessionkit/sessionkit.hpp — the core, in one include: everything that
// needs nothing but Boost. Backends (redis, postgres, nats, process,
// docker) have headers and CMake components of their own.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/event.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/janitor.hpp>
#include <sessionkit/registry.hpp>
#include <sessionkit/session.hpp>
#include <sessionkit/sink/fanout.hpp>
#include <sessionkit/sink/jsonl.hpp>
#include <sessionkit/sink/null.hpp>
#include <sessionkit/spawner/none.hpp>
#include <sessionkit/status.hpp>
#include <sessionkit/store/memory.hpp>
#include <sessionkit/store_types.hpp>
#include <sessionkit/version.hpp>

namespace sessionkit {

/// The embedded default: in-memory store, system clock, no events, no workers.
using memory_registry = session_registry<memory_store>;

}  // namespace sessionkit

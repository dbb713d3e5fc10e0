// sessionkit/sink/null.hpp — an event sink that drops every event.
#pragma once

#include <sessionkit/concepts.hpp>

#include <span>

namespace sessionkit {

struct null_sink {
    void emit(const event&) noexcept {}
    /// Confirms at once: a relay with a null_sink empties the outbox.
    awaitable<void> publish(std::span<const event>) { co_return; }
};
static_assert(confirming_sink<null_sink>);

}  // namespace sessionkit

// sessionkit/sink/null.hpp — an event sink that drops every event.
#pragma once

#include <sessionkit/concepts.hpp>

namespace sessionkit {

struct null_sink {
    void emit(const event&) noexcept {}
};
static_assert(event_sink<null_sink>);

}  // namespace sessionkit

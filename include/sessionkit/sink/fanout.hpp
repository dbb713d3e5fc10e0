// sessionkit/sink/fanout.hpp — one event to several sinks, in order.
#pragma once

#include <sessionkit/concepts.hpp>

#include <tuple>
#include <utility>

namespace sessionkit {

template <event_sink... Sinks>
class fanout {
public:
    fanout() = default;
    explicit fanout(Sinks... sinks) : sinks_{std::move(sinks)...} {}

    // Each sink's emit is noexcept, so one sink cannot keep the event from
    // the others.
    void emit(const event& e) noexcept {
        std::apply([&e](auto&... s) { (s.emit(e), ...); }, sinks_);
    }

    template <std::size_t I>
    auto& get() noexcept {
        return std::get<I>(sinks_);
    }

private:
    std::tuple<Sinks...> sinks_;
};

}  // namespace sessionkit

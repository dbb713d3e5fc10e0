// sessionkit/sink/fanout.hpp — one event to several sinks, in order.
//
// publish() (when every sink confirms) returns once each sink has
// confirmed the batch, in the order the sinks are listed; the first sink
// that throws makes it throw after the others were tried. A relay then
// publishes the batch again to all of them, so a sink that confirmed the
// first time sees it twice: JetStream drops the repeats by event id; a
// jsonl file keeps both (its readers de-duplicate by id).
#pragma once

#include <sessionkit/concepts.hpp>

#include <exception>
#include <span>
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

    /// Confirms once every sink confirmed (only when all of them can).
    awaitable<void> publish(std::span<const event> batch) requires(confirming_sink<Sinks>&&...) {
        std::exception_ptr first_failure;
        co_await std::apply(
            [&](auto&... s) -> awaitable<void> { (co_await publish_one(s, batch, first_failure), ...); }, sinks_);
        if (first_failure) std::rethrow_exception(first_failure);
    }

    template <std::size_t I>
    auto& get() noexcept {
        return std::get<I>(sinks_);
    }

private:
    template <class S>
    static awaitable<void> publish_one(S& sink, std::span<const event> batch, std::exception_ptr& first_failure) {
        try {
            co_await sink.publish(batch);
        } catch (...) {
            if (!first_failure) first_failure = std::current_exception();
        }
    }

    std::tuple<Sinks...> sinks_;
};

}  // namespace sessionkit

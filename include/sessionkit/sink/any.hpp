// sessionkit/sink/any.hpp — confirming sinks chosen at run time: any_sink
// holds one of any type, sink_list sends to several.
//
// fanout<Sinks...> fixes its sinks at compile time; a daemon whose command
// line picks them (sessiond's repeated --events) needs this instead. Both
// are cheap to copy: copies share the sinks.
#pragma once

#include <sessionkit/concepts.hpp>

#include <exception>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace sessionkit {

class any_sink {
public:
    template <confirming_sink Sink>
    explicit any_sink(Sink sink) : impl_(std::make_shared<model<Sink>>(std::move(sink))) {}

    void emit(const event& e) noexcept { impl_->emit(e); }
    awaitable<void> publish(std::span<const event> batch) { return impl_->publish(batch); }

private:
    struct interface {
        virtual ~interface() = default;
        virtual void emit(const event& e) noexcept = 0;
        virtual awaitable<void> publish(std::span<const event> batch) = 0;
    };
    template <class Sink>
    struct model final : interface {
        explicit model(Sink s) : sink(std::move(s)) {}
        void emit(const event& e) noexcept override { sink.emit(e); }
        awaitable<void> publish(std::span<const event> batch) override { return sink.publish(batch); }
        Sink sink;
    };
    std::shared_ptr<interface> impl_;
};
static_assert(confirming_sink<any_sink>);

/// Every event to each sink, in the order they were added. publish()
/// confirms once all of them did; the first failure is thrown after every
/// sink was tried (as fanout does). An empty list confirms at once.
class sink_list {
public:
    void add(any_sink sink) { sinks_->push_back(std::move(sink)); }
    bool empty() const noexcept { return sinks_->empty(); }
    std::size_t size() const noexcept { return sinks_->size(); }

    void emit(const event& e) noexcept {
        for (auto& s : *sinks_) s.emit(e);
    }

    awaitable<void> publish(std::span<const event> batch) {
        std::exception_ptr first_failure;
        for (auto& s : *sinks_) {
            try {
                co_await s.publish(batch);
            } catch (...) {
                if (!first_failure) first_failure = std::current_exception();
            }
        }
        if (first_failure) std::rethrow_exception(first_failure);
    }

private:
    std::shared_ptr<std::vector<any_sink>> sinks_ = std::make_shared<std::vector<any_sink>>();
};
static_assert(confirming_sink<sink_list>);

}  // namespace sessionkit

// sessionkit/spawner/any.hpp — a spawner chosen at run time.
//
// The registry takes its spawner as a template parameter, so a daemon whose
// spawner is a command-line choice would otherwise compile one registry
// (and one HTTP handler, one janitor) per choice. any_spawner holds any
// model behind one virtual call per operation, which is nothing next to
// starting a process or a container.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/spawner/none.hpp>

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

namespace sessionkit {

class any_spawner {
public:
    /// Sessions own nothing (no_spawner).
    any_spawner() : any_spawner(no_spawner{}) {}

    template <spawner P>
    requires(!std::is_same_v<std::remove_cvref_t<P>, any_spawner>)
        any_spawner(P p)  // NOLINT(google-explicit-constructor): a spawner is an any_spawner
        : self_(std::make_shared<model<P>>(std::move(p))) {}

    std::string_view kind() const noexcept { return self_->kind(); }
    /// False for no_spawner: the registry then skips the spawn step.
    bool spawns_workers() const noexcept { return self_->spawns_workers(); }
    /// Whether the held spawner's workers take input (input_spawner).
    bool takes_input() const noexcept { return self_->takes_input(); }
    /// Whether the held spawner reports its workers' output (watching_spawner).
    bool reports_output() const noexcept { return self_->reports_output(); }

    awaitable<std::optional<worker_ref>> spawn(const session& rec) { return self_->spawn(rec); }
    awaitable<void> stop(const worker_ref& w, milliseconds grace) { return self_->stop(w, grace); }
    awaitable<bool> alive(const worker_ref& w) { return self_->alive(w); }
    awaitable<std::vector<owned_worker>> list_owned() { return self_->list_owned(); }
    void watch(worker_listener listener) { self_->watch(std::move(listener)); }
    /// error::invalid_argument when the held spawner's workers take no input.
    awaitable<void> send_input(const worker_ref& w, std::string_view bytes) { return self_->send_input(w, bytes); }

    /// The held spawner, if it is a P.
    template <class P>
    P* get() noexcept {
        auto* m = dynamic_cast<model<P>*>(self_.get());
        return m ? &m->spawner : nullptr;
    }

private:
    struct concept_base {
        virtual ~concept_base() = default;
        virtual std::string_view kind() const noexcept = 0;
        virtual bool spawns_workers() const noexcept = 0;
        virtual bool takes_input() const noexcept = 0;
        virtual bool reports_output() const noexcept = 0;
        virtual awaitable<std::optional<worker_ref>> spawn(const session&) = 0;
        virtual awaitable<void> stop(const worker_ref&, milliseconds) = 0;
        virtual awaitable<bool> alive(const worker_ref&) = 0;
        virtual awaitable<std::vector<owned_worker>> list_owned() = 0;
        virtual void watch(worker_listener) = 0;
        virtual awaitable<void> send_input(const worker_ref&, std::string_view) = 0;
    };

    template <class P>
    struct model final : concept_base {
        explicit model(P p) : spawner(std::move(p)) {}
        std::string_view kind() const noexcept override { return spawner.kind(); }
        bool spawns_workers() const noexcept override {
            if constexpr (requires { P::spawns_workers; })
                return P::spawns_workers;
            else
                return true;
        }
        bool takes_input() const noexcept override { return input_spawner<P>; }
        bool reports_output() const noexcept override { return watching_spawner<P>; }
        awaitable<std::optional<worker_ref>> spawn(const session& rec) override { return spawner.spawn(rec); }
        awaitable<void> stop(const worker_ref& w, milliseconds grace) override { return spawner.stop(w, grace); }
        awaitable<bool> alive(const worker_ref& w) override { return spawner.alive(w); }
        awaitable<std::vector<owned_worker>> list_owned() override { return spawner.list_owned(); }
        void watch(worker_listener listener) override {
            if constexpr (watching_spawner<P>) spawner.watch(std::move(listener));
        }
        awaitable<void> send_input(const worker_ref& w, std::string_view bytes) override {
            if constexpr (input_spawner<P>) {
                return spawner.send_input(w, bytes);
            } else {
                return refuse_input(std::string(spawner.kind()));
            }
        }
        static awaitable<void> refuse_input(std::string kind) {
            throw_error(error::invalid_argument, "the '" + kind + "' spawner's workers take no input");
            co_return;
        }
        P spawner;
    };

    std::shared_ptr<concept_base> self_;
};
static_assert(watching_spawner<any_spawner>);
static_assert(input_spawner<any_spawner>);

}  // namespace sessionkit

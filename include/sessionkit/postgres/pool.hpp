// sessionkit/postgres/pool.hpp — a few pipelined PostgreSQL connections
// behind the interface of one.
//
// Each operation goes to the least-loaded connection that is ready
// (operations queued or in flight; equal loads take turns), so a
// connection being replaced after a deadline or a lost link takes no new
// work while the others have it; with none ready it waits for one that is
// connecting, within its deadline; with all of them down it fails at once
// with the reason (postgres/detail/pool_choice.hpp decides). A pool does
// not need many connections: each one pipelines (doc/postgres.md).
#pragma once

#include <sessionkit/postgres/config.hpp>
#include <sessionkit/postgres/connection.hpp>
#include <sessionkit/postgres/detail/pool_choice.hpp>
#include <sessionkit/postgres/operation.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace sessionkit::postgres {

/// cfg.pool_size pipelined connections (1..256), each preparing `statements`.
/// Thread-safe; destroying it closes every connection.
class pool {
public:
    static constexpr std::size_t max_size = 256;

    pool(boost::asio::any_io_executor ex, connection_options cfg, statement_set statements = {}) {
        const std::size_t n = std::clamp<std::size_t>(cfg.pool_size, 1, max_size);
        members_.reserve(n);
        for (std::size_t i = 0; i < n; ++i)
            members_.push_back(std::make_shared<detail::connection_impl>(ex, cfg, statements));
        for (auto& m : members_) m->start();
    }
    ~pool() { close(); }
    pool(const pool&) = delete;
    pool& operator=(const pool&) = delete;

    /// As connection::execute, on the connection chosen for it.
    boost::asio::awaitable<result_set> execute(operation op) { return detail::execute_on(pick(), std::move(op)); }

    /// One round trip on the connection an operation would get now.
    boost::asio::awaitable<void> ping() {
        auto impl = pick();
        co_await detail::ping_on(std::move(impl));
    }

    /// Fails everything waiting on every connection and stops them. Thread-safe.
    void close() {
        for (auto& m : members_) m->close();
    }

    std::size_t size() const noexcept { return members_.size(); }
    const std::string& name() const noexcept { return members_.front()->name(); }
    const connection_options& cfg() const noexcept { return members_.front()->cfg(); }

    /// The connections' counters, summed.
    connection_stats stats() const noexcept {
        connection_stats s;
        for (const auto& m : members_) s += m->stats();
        return s;
    }
    /// Connection `i`'s counters.
    connection_stats stats(std::size_t i) const noexcept { return members_.at(i)->stats(); }

private:
    std::shared_ptr<detail::connection_impl> pick() {
        std::array<detail::member_view, max_size> view;
        for (std::size_t i = 0; i < members_.size(); ++i) view[i] = {members_[i]->state(), members_[i]->load()};
        const std::size_t start = next_.fetch_add(1, std::memory_order_relaxed);
        return members_[detail::choose_member(std::span(view.data(), members_.size()), start)];
    }

    std::vector<std::shared_ptr<detail::connection_impl>> members_;
    std::atomic<std::size_t> next_{0};
};

}  // namespace sessionkit::postgres

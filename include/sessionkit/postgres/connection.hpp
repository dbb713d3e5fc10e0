// sessionkit/postgres/connection.hpp — one PostgreSQL connection shared by
// many coroutines, pipelined, on libpq's non-blocking API.
//
// Callers hand in an `operation` (calls of prepared statements) and await
// its results. Operations are handed to libpq as they come, each ended by
// its own Sync, while earlier ones are still running (pipeline mode), and
// results are matched to operations in FIFO order: 64 coroutines share one
// connection without waiting for each other's round trips. All state lives
// on one strand; callers may be on any executor and thread. What to send,
// which result is whose, what timed out, the setup and the backoff are
// decided by state machines without I/O (postgres/detail/pipeline.hpp,
// connect_steps.hpp); this file performs what they decide.
//
// Failure behaviour (doc/postgres.md):
//   - a statement the server refuses fails its operation alone, with a
//     postgres::server_error whose code follows its SQLSTATE
//     (statement_timeout: error::timeout); the next operation is untouched;
//   - every operation has a deadline (request_timeout, or its own); when it
//     passes in flight, the connection is dropped (libpq 15 cannot cancel
//     without blocking) and what was in flight fails with error::timeout;
//     what was still queued goes out on the next connection;
//   - when the link drops, operations in flight fail at once with
//     error::backend_unavailable; none hangs, none is re-sent (it may have
//     run); the connection reconnects by itself with backoff, and while it
//     is down new operations fail at once with the reason of the last attempt;
//   - every message names PostgreSQL and the server, the operation and its key.
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/postgres/config.hpp>
#include <sessionkit/postgres/detail/connect_steps.hpp>
#include <sessionkit/postgres/detail/libpq.hpp>
#include <sessionkit/postgres/detail/link.hpp>
#include <sessionkit/postgres/detail/pipeline.hpp>
#include <sessionkit/postgres/detail/resumer.hpp>
#include <sessionkit/postgres/operation.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace sessionkit::postgres {

namespace detail {

/// One awaited operation: the pipeline's view of it, the operation, its
/// results so far, who to tell.
struct pending : exchange {
    pending(operation o, clock_type::time_point due, std::chrono::milliseconds t) : op(std::move(o)) {
        statements = op.size();
        deadline = due;
        timeout = t;
        results.resize(statements);
    }
    /// The connection's own: the setup, a health check.
    pending(exchange::kind k, std::size_t n, clock_type::time_point due, std::chrono::milliseconds t)
        : op(k == exchange::kind::setup ? "setup" : "health check") {
        what = k;
        statements = n;
        deadline = due;
        timeout = t;
    }

    operation op;
    result_set results;
    resumer resume;  ///< empty for the connection's own operations, and once completed

    /// Resumes the caller on its own executor: a success is dispatched (the
    /// caller on the connection's io_context resumes at once, on the thread
    /// that read the result), a failure posted (it may be raised inside
    /// execute()'s initiation, where the caller must not resume).
    void complete(std::exception_ptr failure) {
        if (!resume) return;
        auto ex = std::move(resume.executor);
        const bool failed = failure != nullptr;
        auto resume_caller = [fn = std::move(resume.fn), failure = std::move(failure),
                              results = std::move(results)]() mutable {
            (*fn)(std::move(failure), std::move(results));
        };
        if (failed)
            boost::asio::post(ex, std::move(resume_caller));
        else
            boost::asio::dispatch(ex, std::move(resume_caller));
    }
};

/// The I/O around the pipeline machine: it opens links, reads, flushes and
/// sleeps, and does what the machine decides. All of it on one strand.
class connection_impl : public std::enable_shared_from_this<connection_impl> {
public:
    connection_impl(boost::asio::any_io_executor ex, connection_options cfg, statement_set statements)
        : strand_(boost::asio::make_strand(ex)), cfg_(std::move(cfg)), name_("PostgreSQL " + cfg_.describe()),
          statements_(std::move(statements)),
          machine_({cfg_.connect_timeout, cfg_.request_timeout, cfg_.health_check_interval, cfg_.reconnect_min,
                    cfg_.reconnect_max}),
          resolver_(strand_), watchdog_(strand_), backoff_timer_(strand_) {
        for (const auto& s : statements_) {
            if (s.name.empty() || s.name.find('\0') != std::string::npos || s.sql.find('\0') != std::string::npos)
                throw_error(error::invalid_argument,
                            name_ + ": a prepared statement needs a name and SQL without NUL bytes ('" +
                                sessionkit::detail::printable(s.name) + "')");
            if (!names_.insert(s.name).second)
                throw_error(error::invalid_argument, name_ + ": two prepared statements are called '" +
                                                         sessionkit::detail::printable(s.name) + "'");
        }
    }

    /// "PostgreSQL postgresql://user@host:port/db": how errors name it.
    const std::string& name() const noexcept { return name_; }
    const connection_options& cfg() const noexcept { return cfg_; }
    strand_type& strand() noexcept { return strand_; }

    void start() {
        boost::asio::co_spawn(
            strand_, [self = shared_from_this()] { return self->run(); }, boost::asio::detached);
        boost::asio::co_spawn(
            strand_, [self = shared_from_this()] { return self->watch(); }, boost::asio::detached);
    }

    /// Throws invalid_argument when `op` cannot be sent here: no calls, or
    /// a statement this connection does not prepare.
    void check(const operation& op) const {
        if (op.empty()) throw_error(error::invalid_argument, name_ + ": " + op.label() + ": no statement to call");
        for (const auto& c : op.calls())
            if (!names_.contains(c.statement))
                throw_error(error::invalid_argument, name_ + ": " + op.label() + ": no prepared statement '" +
                                                         sessionkit::detail::printable(c.statement) +
                                                         "' (statements are given to the connection or pool)");
    }

    /// Called on the strand: queue an operation (a lone one is sent at
    /// once) or fail it at once.
    void enqueue(std::shared_ptr<pending> p) {
        auto a = machine_.enqueue(std::move(p), clock_type::now());
        if (a.refused) return fail(*a.refused);
        if (a.wake_timer) watchdog_.cancel();
        if (a.write) write(a.write);
    }

    void close() {
        boost::asio::dispatch(strand_, [self = shared_from_this()] {
            if (self->machine_.state() == link_state::closed) return;
            self->fail_all(self->machine_.close());
            self->publish();
            if (self->link_) self->link_->close("connection closed");
            self->resolver_.cancel();
            self->watchdog_.cancel();
            self->backoff_timer_.cancel();
        });
    }

    /// For a pool's choice, from any thread.
    link_state state() const noexcept { return state_.load(std::memory_order_relaxed); }
    std::size_t load() const noexcept { return load_.load(std::memory_order_relaxed); }
    void add_load() noexcept { load_.fetch_add(1, std::memory_order_relaxed); }

    connection_stats stats() const noexcept {
        return {connects_.load(), flushes_.load(), operations_.load(),   timeouts_.load(),
                failed_.load(),   drops_.load(),   health_checks_.load()};
    }

private:
    // ---- completing operations -----------------------------------------------------

    void finished(pending& p) {
        if (p.what == exchange::kind::user) load_.fetch_sub(1, std::memory_order_relaxed);
    }

    void fail(const pipeline::failed_operation& f) {
        auto& p = static_cast<pending&>(*f.operation);  // the only kind this connection enqueues
        if (p.what != exchange::kind::user) return;
        finished(p);
        (f.code == error::timeout ? timeouts_ : failed_).fetch_add(1, std::memory_order_relaxed);
        p.complete(
            make_failure(f.code, name_ + ": " + p.op.label() + ": " + f.why, {name_, p.op.name(), p.op.key(), f.why}));
    }

    void fail_all(const std::vector<pipeline::failed_operation>& v) {
        for (const auto& f : v) fail(f);
    }

    /// A statement of `p` was refused by the server.
    void fail_server(pending& p, error code) {
        if (p.what != exchange::kind::user) return;
        finished(p);
        (code == error::timeout ? timeouts_ : failed_).fetch_add(1, std::memory_order_relaxed);
        const statement_error& f = *p.failure;
        const std::string statement = f.statement < p.op.size() ? p.op.calls()[f.statement].statement : "";
        const std::string said = describe(f);
        const std::string why = "statement '" + sessionkit::detail::printable(statement) + "' failed: " + said;
        p.complete(make_server_failure(code, name_ + ": " + p.op.label() + ": " + why,
                                       {name_, p.op.name(), p.op.key(), said}, f.sqlstate, statement));
    }

    void succeed(pending& p) {
        if (p.what != exchange::kind::user) return;
        finished(p);
        p.complete(nullptr);
    }

    // ---- the link's life -----------------------------------------------------------

    /// The state, for a pool's choice; a new state has new deadlines (a
    /// connect deadline, health checks once ready): the timer looks again.
    void publish() noexcept {
        const auto now = machine_.state();
        if (state_.exchange(now, std::memory_order_relaxed) != now) watchdog_.cancel();
    }

    std::size_t setup_statements() const noexcept {
        return (cfg_.effective_statement_timeout().count() > 0 ? 1 : 0) + statements_.size();
    }

    /// What the setup's statement `i` was, for messages.
    std::string setup_label(std::size_t i) const {
        if (cfg_.effective_statement_timeout().count() > 0) {
            if (i == 0) return "SET statement_timeout";
            --i;
        }
        if (i < statements_.size()) return "PREPARE '" + sessionkit::detail::printable(statements_[i].name) + "'";
        return "setup";
    }

    boost::asio::awaitable<void> run() {
        auto self = shared_from_this();
        std::minstd_rand jitter(std::random_device{}());
        while (machine_.state() != link_state::closed) {
            machine_.connecting(clock_type::now());
            publish();
            auto l = std::make_shared<link>(strand_);
            link_ = l;
            std::string reason;
            try {
                connect_steps steps(cfg_.connect_timeout, clock_type::now());
                co_await open_link(*l, resolver_, cfg_, steps);
                if (PQsetnonblocking(l->get(), 1) != 0 || PQenterPipelineMode(l->get()) != 1)
                    throw_error(error::backend_unavailable,
                                "cannot enter pipeline mode: " + one_line(PQerrorMessage(l->get())));
                if (machine_.state() == link_state::connecting) {  // not closed meanwhile
                    const auto now = clock_type::now();
                    auto setup =
                        std::make_shared<pending>(exchange::kind::setup, setup_statements(), now, cfg_.connect_timeout);
                    auto w = machine_.connected(std::move(setup), now);
                    publish();
                    if (w) write(w);
                    co_await read_loop(l);
                }
            } catch (const boost::system::system_error& e) {
                reason = l->closing ? l->reason : describe_failure(e);
            } catch (const std::exception& e) {
                reason = e.what();
            }
            l->close(reason);  // ends a flush still waiting on the socket
            link_.reset();
            auto lost = machine_.link_lost(std::move(reason), jitter());
            publish();
            fail_all(lost.failed);
            if (machine_.state() == link_state::closed) break;
            if (lost.reconnect_after.count() > 0) {
                backoff_timer_.expires_after(lost.reconnect_after);
                boost::system::error_code ignored;
                co_await backoff_timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
            }
        }
    }

    static std::string describe_failure(const boost::system::system_error& e) {
        if (e.code().category() == sessionkit::error_category()) return what_without_code(e);
        return e.code().message();
    }

    /// Hands everything the machine says to libpq (each operation's calls
    /// and its Sync), then flushes. A failed send closes the link: the
    /// reader notices, and link_lost() fails what was in flight.
    void write(const pipeline::write_action& w) {
        auto l = link_;
        if (!l || l->closing) return;
        flushes_.fetch_add(1, std::memory_order_relaxed);
        for (const auto& e : w.operations) {
            auto& p = static_cast<pending&>(*e);
            if (p.what == exchange::kind::user) operations_.fetch_add(1, std::memory_order_relaxed);
            if (!send(l->get(), p)) return l->close(one_line(PQerrorMessage(l->get())));
        }
        flush(l);
    }

    bool send(PGconn* c, const pending& p) {
        if (p.what == exchange::kind::setup) return send_setup(c);
        const auto& params = p.op.parameters();
        for (const auto& call : p.op.calls()) {
            values_.clear();
            for (std::size_t i = call.first; i < call.first + call.count; ++i)
                values_.push_back(params[i] ? params[i]->c_str() : nullptr);
            if (!PQsendQueryPrepared(c, call.statement.c_str(), static_cast<int>(call.count), values_.data(), nullptr,
                                     nullptr, static_cast<int>(call.result_format)))
                return false;
        }
        return PQpipelineSync(c) == 1;
    }

    bool send_setup(PGconn* c) {
        if (const auto t = cfg_.effective_statement_timeout(); t.count() > 0) {
            const std::string ms = std::to_string(t.count());
            const char* values[] = {ms.c_str()};
            if (!PQsendQueryParams(c, "SELECT pg_catalog.set_config('statement_timeout', $1, false)", 1, nullptr,
                                   values, nullptr, nullptr, 0))
                return false;
        }
        for (const auto& s : statements_)
            if (!PQsendPrepare(c, s.name.c_str(), s.sql.c_str(), static_cast<int>(s.parameter_types.size()),
                               s.parameter_types.empty() ? nullptr : s.parameter_types.data()))
                return false;
        return PQpipelineSync(c) == 1;
    }

    /// Until libpq's buffer is out: when the socket is full, again once it
    /// is writable (the reader keeps reading meanwhile, so the server is
    /// never stuck writing results to us while we wait to write).
    void flush(const std::shared_ptr<link>& l) {
        if (l->closing || l != link_) return;
        const int r = PQflush(l->get());
        if (r == 0) {
            // Reported through the strand, as an Asio write's completion
            // would be: operations that come meanwhile leave together next.
            boost::asio::post(strand_, [self = shared_from_this(), l] {
                if (l->closing || l != self->link_) return;
                if (auto next = self->machine_.write_done(true, clock_type::now())) self->write(next);
            });
            return;
        }
        if (r < 0) return l->close(one_line(PQerrorMessage(l->get())));
        l->socket.async_wait(boost::asio::posix::stream_descriptor::wait_write,
                             boost::asio::bind_executor(strand_, [self = shared_from_this(), l](auto ec) {
                                 if (!ec)
                                     self->flush(l);
                                 else if (!l->closing)
                                     l->close("waiting to write: " + ec.message());
                             }));
    }

    boost::asio::awaitable<void> read_loop(std::shared_ptr<link> l) {
        for (;;) {
            boost::system::error_code ec;
            co_await l->socket.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                                          boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            throw_if_closing(*l);
            if (ec) throw boost::system::system_error(ec);
            if (PQconsumeInput(l->get()) != 1)
                throw_error(error::backend_unavailable, one_line(PQerrorMessage(l->get())));
            machine_.received(clock_type::now());
            drain(*l);
        }
    }

    /// Every result libpq has complete, to the machine; stops where libpq
    /// would block.
    void drain(link& l) {
        PGconn* c = l.get();
        while (!l.closing && !PQisBusy(c)) {
            result r(PQgetResult(c));
            if (PQstatus(c) == CONNECTION_BAD) throw_error(error::backend_unavailable, one_line(PQerrorMessage(c)));
            const result_kind kind = kind_of(r.native_handle());
            auto a = kind == result_kind::error || kind == result_kind::aborted
                         ? machine_.on_result(kind, clock_type::now(), error_of(r.native_handle()))
                         : machine_.on_result(kind, clock_type::now());
            if (a.idle) return;
            if (a.out_of_step)
                throw_error(error::protocol_error,
                            std::string("a result came that no operation is waiting for (") +
                                (r ? PQresStatus(PQresultStatus(r.native_handle())) : "end of results") + ")");
            if (a.keep_for) {
                auto& results = static_cast<pending&>(*a.keep_for).results;  // none kept for the setup
                if (a.index < results.size()) results[a.index] = std::move(r);
            }
            if (a.completed) succeed(static_cast<pending&>(*a.completed));
            if (a.failed) fail_server(static_cast<pending&>(*a.failed), a.code);
            if (a.setup_failed) {
                const auto& f = *a.setup_failed->failure;
                throw_error(error::backend_unavailable, setup_label(f.statement) + " failed: " + describe(f));
            }
            if (a.link_ready) {
                connects_.fetch_add(1, std::memory_order_relaxed);
                publish();
                if (a.write) write(a.write);
            }
        }
    }

    /// Deadlines and health checks: one timer, armed for what the machine
    /// says is due first.
    boost::asio::awaitable<void> watch() {
        auto self = shared_from_this();
        while (machine_.state() != link_state::closed) {
            const auto now = clock_type::now();
            const bool was_ready = machine_.state() == link_state::ready;
            auto a = machine_.tick(now);
            fail_all(a.failed);
            if (a.drop_link) {
                if (was_ready) drops_.fetch_add(1, std::memory_order_relaxed);
                resolver_.cancel();
                if (link_) link_->close("dropped");  // the machine knows why
            }
            if (a.health_check) {
                health_checks_.fetch_add(1, std::memory_order_relaxed);
                enqueue(std::make_shared<pending>(exchange::kind::health_check, 0, now + cfg_.request_timeout,
                                                  cfg_.request_timeout));
                continue;
            }
            watchdog_.expires_at(a.wake_at);
            boost::system::error_code ignored;
            co_await watchdog_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
        }
    }

    strand_type strand_;
    connection_options cfg_;
    std::string name_;
    statement_set statements_;
    std::unordered_set<std::string> names_;
    pipeline machine_;
    std::shared_ptr<link> link_;
    tcp::resolver resolver_;
    boost::asio::steady_timer watchdog_;
    boost::asio::steady_timer backoff_timer_;
    std::vector<const char*> values_;  ///< parameters of the call being sent
    std::atomic<link_state> state_{link_state::connecting};
    std::atomic<std::size_t> load_{0};
    std::atomic<std::uint64_t> connects_{0}, flushes_{0}, operations_{0}, timeouts_{0}, failed_{0}, drops_{0},
        health_checks_{0};
};

/// Awaits `p` on `impl`: dispatched to its strand, resumed on the caller's
/// executor.
inline boost::asio::awaitable<result_set> await_on(std::shared_ptr<connection_impl> impl, std::shared_ptr<pending> p) {
    impl->add_load();
    // Named, not a temporary inside co_await (GCC 12 destroys those twice,
    // doc/decisions.md).
    auto initiation = [impl, p](auto handler) mutable {
        // Tracked: the caller's io_context must keep running while its
        // coroutine waits here (it holds no other work).
        p->resume.executor = boost::asio::prefer(boost::asio::get_associated_executor(handler, impl->strand()),
                                                 boost::asio::execution::outstanding_work.tracked);
        p->resume.fn = std::make_unique<resumer::of<decltype(handler)>>(std::move(handler));
        auto& strand = impl->strand();
        boost::asio::dispatch(strand,
                              [impl = std::move(impl), p = std::move(p)]() mutable { impl->enqueue(std::move(p)); });
    };
    // use_awaitable rethrows a non-null exception_ptr in the caller.
    auto results = co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&,
                                                        void(std::exception_ptr, result_set)>(
        std::move(initiation), boost::asio::use_awaitable);
    co_return results;
}

/// A coroutine, so that a refused operation is thrown where it is awaited.
inline boost::asio::awaitable<result_set> execute_on(std::shared_ptr<connection_impl> impl, operation op) {
    impl->check(op);
    const auto timeout = op.timeout().value_or(impl->cfg().request_timeout);
    auto p = std::make_shared<pending>(std::move(op), clock_type::now() + timeout, timeout);
    auto results = co_await await_on(std::move(impl), std::move(p));
    co_return results;
}

/// A Sync alone: one round trip, no statement.
inline boost::asio::awaitable<result_set> ping_on(std::shared_ptr<connection_impl> impl) {
    const auto timeout = impl->cfg().request_timeout;
    auto p = std::make_shared<pending>(operation("ping"), clock_type::now() + timeout, timeout);
    return await_on(std::move(impl), std::move(p));
}

}  // namespace detail

/// A shared, self-healing, pipelined PostgreSQL connection. Thread-safe:
/// execute() may be called from any thread and executor. Destroying it
/// closes the link; operations still waiting fail with backend_unavailable.
class connection {
public:
    /// Connects at once (in the background) and prepares `statements` on
    /// every (re)connect. Throws invalid_argument for statements without a
    /// name, or two with the same one.
    connection(boost::asio::any_io_executor ex, connection_options cfg, statement_set statements = {})
        : impl_(std::make_shared<detail::connection_impl>(std::move(ex), std::move(cfg), std::move(statements))) {
        impl_->start();
    }
    ~connection() {
        if (impl_) impl_->close();
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Sends `op` and returns one result per call, in order. Throws
    /// postgres::server_error when the server refused one of its
    /// statements (the whole operation is rolled back), system_error with
    /// error::timeout or error::backend_unavailable when the connection
    /// failed it, invalid_argument when it names a statement not prepared
    /// here; every message names PostgreSQL, the operation and its key.
    boost::asio::awaitable<result_set> execute(operation op) { return detail::execute_on(impl_, std::move(op)); }

    /// Returns when the server answered an empty Sync; throws otherwise.
    boost::asio::awaitable<void> ping() {
        auto impl = impl_;
        co_await detail::ping_on(std::move(impl));
    }

    /// Fails everything waiting and stops reconnecting. Thread-safe.
    void close() { impl_->close(); }

    const std::string& name() const noexcept { return impl_->name(); }
    const connection_options& cfg() const noexcept { return impl_->cfg(); }
    connection_stats stats() const noexcept { return impl_->stats(); }

private:
    std::shared_ptr<detail::connection_impl> impl_;
};

}  // namespace sessionkit::postgres

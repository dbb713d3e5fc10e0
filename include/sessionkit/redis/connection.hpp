// sessionkit/redis/connection.hpp — one Redis connection shared by many
// coroutines, with automatic pipelining.
//
// Callers hand in a `request` (one or more commands) and await its replies.
// Everything that waits is written by one writer in a single write, and
// replies are matched to requests in FIFO order, so 64 coroutines touching
// sessions cost a handful of system calls, not 128. All state lives on one
// strand; callers may be on any executor and thread. What to send, which
// reply is whose, what timed out, the handshake and the backoff are decided
// by state machines without I/O (redis/detail/multiplexer.hpp,
// handshake.hpp, sessionkit/detail/backoff.hpp); this file performs what they decide.
//
// Failure behaviour (doc/redis.md):
//   - every request has a deadline (connection_options::request_timeout) and fails with
//     error::timeout naming the server and the command when it passes;
//   - when the link drops, requests in flight fail at once with
//     error::backend_unavailable naming the server and the command; none
//     hangs. A request is never re-sent (it may have run);
//   - the connection reconnects by itself with backoff; while it is down,
//     new requests fail at once with the reason of the last attempt;
//   - a link with requests outstanding and nothing received for
//     connection_options::stall_timeout is closed and reconnected (a peer that vanished
//     without a FIN, a server stuck in DEBUG SLEEP);
//   - an idle link sends PING every health_check_interval.
//
// The interface is small on purpose (exec, ping, close, stats), so this
// class can be replaced by Boost.Redis once the distributions ship Boost
// 1.84 (doc/decisions.md).
#pragma once

#include <sessionkit/detail/backoff.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/redis/config.hpp>
#include <sessionkit/redis/detail/handshake.hpp>
#include <sessionkit/redis/detail/link.hpp>
#include <sessionkit/redis/detail/multiplexer.hpp>
#include <sessionkit/redis/detail/resp_parser.hpp>
#include <sessionkit/redis/detail/resumer.hpp>
#include <sessionkit/redis/request.hpp>
#include <sessionkit/redis/resp.hpp>

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

#include <array>
#include <atomic>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sessionkit::redis {

namespace detail {

/// One awaited request: the multiplexer's view of it (bytes, deadline,
/// replies), the request itself, who to tell.
struct pending : exchange {
    pending(request r, clock_type::time_point due) : req(std::move(r)) {
        payload = req.payload();
        commands = req.size();
        deadline = due;
    }
    pending(const pending&) = delete;  // `payload` points into `req`
    pending& operator=(const pending&) = delete;

    request req;
    resumer resume;  ///< empty for internal PINGs, and once completed

    /// Resumes the caller on its own executor. A reply is dispatched: when
    /// the caller's executor runs on this thread (the connection on the
    /// callers' io_context, the fast set-up) the coroutine resumes at once,
    /// without a trip through the scheduler, as Asio's own operations do. A
    /// failure is posted: it may be raised inside exec()'s initiation, where
    /// the caller must not resume.
    void complete(std::exception_ptr failure) {
        if (!resume) return;
        auto ex = std::move(resume.executor);
        const bool failed = failure != nullptr;
        // The failure is moved, not copied: this thread keeps no reference
        // to release after the caller has it (libstdc++'s reference count is
        // invisible to ThreadSanitizer, which reported that as a race).
        auto resume_caller = [fn = std::move(resume.fn), failure = std::move(failure),
                              replies = std::move(replies)]() mutable {
            (*fn)(std::move(failure), std::move(replies));
        };
        if (failed)
            boost::asio::post(ex, std::move(resume_caller));
        else
            boost::asio::dispatch(ex, std::move(resume_caller));
    }
};

/// The I/O around the multiplexer and handshake machines: it opens links,
/// reads, writes and sleeps, and does what the machines decide. All of it
/// runs on one strand.
class connection_impl : public std::enable_shared_from_this<connection_impl> {
public:
    connection_impl(boost::asio::any_io_executor ex, connection_options cfg)
        : strand_(boost::asio::make_strand(ex)), cfg_(std::move(cfg)), name_(cfg_.describe()),
          mux_({cfg_.request_timeout, cfg_.effective_stall_timeout(), cfg_.health_check_interval}),
          backoff_(cfg_.reconnect_min, cfg_.reconnect_max), watchdog_(strand_), backoff_timer_(strand_) {}

    const std::string& name() const noexcept { return name_; }
    const connection_options& cfg() const noexcept { return cfg_; }

    void start() {
        boost::asio::co_spawn(
            strand_, [self = shared_from_this()] { return self->run(); }, boost::asio::detached);
        boost::asio::co_spawn(
            strand_, [self = shared_from_this()] { return self->watch(); }, boost::asio::detached);
    }

    /// Called on the strand: queue a request (a lone one is written at
    /// once) or fail it at once.
    void enqueue(std::shared_ptr<pending> p) {
        auto a = mux_.enqueue(std::move(p), &clock_type::now);
        if (a.refused) return fail(*a.refused, error::backend_unavailable, a.why);
        if (a.wake_timer) watchdog_.cancel();
        if (a.write) write(a.write);
    }

    void close() {
        boost::asio::dispatch(strand_, [self = shared_from_this()] {
            if (self->mux_.state() == link_state::closed) return;
            self->fail_all(self->mux_.close());
            if (self->link_) self->link_->close();
            self->watchdog_.cancel();
            self->backoff_timer_.cancel();
        });
    }

    strand_type& strand() noexcept { return strand_; }
    connection_stats stats() const noexcept {
        return {connects_.load(), writes_.load(), requests_.load(), timeouts_.load(), failed_.load()};
    }

private:
    // ---- failing requests --------------------------------------------------

    void fail(exchange& e, error code, const std::string& why) {
        auto& p = static_cast<pending&>(e);  // the only kind this connection enqueues
        (code == error::timeout ? timeouts_ : failed_).fetch_add(1, std::memory_order_relaxed);
        p.complete(make_failure(code, "redis " + name_ + ": " + p.req.label() + ": " + why,
                                {"redis " + name_, p.req.operation(), p.req.subject(), why}));
    }

    void fail_all(const multiplexer::failure_action& a) {
        for (const auto& p : a.requests) fail(*p, a.code, a.why);
    }

    // ---- the link's life ---------------------------------------------------

    boost::asio::awaitable<void> run() {
        auto self = shared_from_this();
        std::minstd_rand jitter(std::random_device{}());
        while (mux_.state() != link_state::closed) {
            mux_.connecting();
            parser_.reset();  // a dropped link may have left half a reply
            std::string reason;
            try {
                link_ = co_await open_link(strand_, cfg_, tls_);
                co_await handshake(*link_);
                if (mux_.state() != link_state::closed) {  // close() may have come meanwhile
                    connects_.fetch_add(1, std::memory_order_relaxed);
                    backoff_.reset();
                    if (auto w = mux_.link_up(clock_type::now())) write(w);  // what queued while connecting
                    co_await read_loop(*link_);
                }
            } catch (const boost::system::system_error& e) {
                reason = describe_failure(e, mux_.state() == link_state::ready);
            } catch (const std::exception& e) {
                reason = e.what();
            }
            if (link_) link_->close();
            link_.reset();
            fail_all(mux_.link_lost(std::move(reason)));
            if (mux_.state() == link_state::closed) break;
            backoff_timer_.expires_after(backoff_.next_wait(jitter()));
            boost::system::error_code ignored;
            co_await backoff_timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
        }
    }

    /// Before any request: the handshake machine's requests, each read back
    /// directly, all under the connect timeout.
    boost::asio::awaitable<void> handshake(link& l) {
        detail::handshake machine({cfg_.user, cfg_.password, cfg_.db, cfg_.client_name});
        auto step = machine.start();
        while (step.what == handshake_step::kind::send) {
            auto replies = co_await roundtrip(l, step);
            step = machine.on_replies(replies);
        }
        if (step.what == handshake_step::kind::failed) throw_error(error::backend_unavailable, step.failure);
    }

    boost::asio::awaitable<std::vector<resp::value>> roundtrip(link& l, const handshake_step& step) {
        auto op = [](connection_impl* self, link* l,
                     const handshake_step* step) -> boost::asio::awaitable<std::vector<resp::value>> {
            self->parser_.reset();  // after an error reply, the next step starts clean
            co_await l->write(boost::asio::buffer(step->payload));
            std::vector<resp::value> replies;
            while (replies.size() < step->commands) {
                std::size_t n = co_await l->read_some(boost::asio::buffer(self->read_buffer_));
                std::string_view data(self->read_buffer_.data(), n);
                while (!data.empty()) {
                    data.remove_prefix(self->parser_.feed(data));
                    if (!self->parser_.has_value()) continue;
                    auto v = self->parser_.take();
                    if (v.kind != resp::type::push) replies.push_back(std::move(v));
                }
            }
            co_return replies;
        };
        // link_ is the shared owner of `l` (set before the handshake).
        auto exchange = op(this, &l, &step);
        auto replies = co_await with_connect_deadline(strand_, cfg_.connect_timeout, link_, std::move(exchange));
        co_return replies;
    }

    /// One write for everything the multiplexer hands over; the buffers
    /// stay valid until write_done(). A failed write closes the link: the
    /// read loop notices, fails what is in flight and reconnects.
    void write(const multiplexer::write_action& w) {
        writes_.fetch_add(1, std::memory_order_relaxed);
        requests_.fetch_add(w.requests, std::memory_order_relaxed);
        auto written = [self = shared_from_this(), l = link_](boost::system::error_code ec, std::size_t) {
            auto next = self->mux_.write_done(!ec, &clock_type::now);
            if (ec)
                l->close();
            else if (next)
                self->write(next);
        };
        link_->async_write(w.buffers, boost::asio::bind_executor(strand_, std::move(written)));
    }

    boost::asio::awaitable<void> read_loop(link& l) {
        for (;;) {
            std::size_t n = co_await l.read_some(boost::asio::buffer(read_buffer_));
            mux_.received(clock_type::now());
            std::string_view data(read_buffer_.data(), n);
            while (!data.empty()) {
                data.remove_prefix(parser_.feed(data));
                if (parser_.has_value()) deliver(parser_.take());
            }
        }
    }

    void deliver(resp::value v) {
        auto a = mux_.reply_parsed(std::move(v));
        if (a.unexpected) throw_error(error::protocol_error, "a reply came that no request is waiting for");
        if (a.completed) static_cast<pending&>(*a.completed).complete(nullptr);
    }

    /// Deadlines, stalls and health checks: one timer, armed for what the
    /// multiplexer says is due first.
    boost::asio::awaitable<void> watch() {
        auto self = shared_from_this();
        while (mux_.state() != link_state::closed) {
            const auto now = clock_type::now();
            auto a = mux_.tick(now);
            fail_all(a.timed_out);
            if (a.close_link && link_) link_->close();
            if (a.send_ping) {
                request ping("PING (health check)");
                ping.push("PING");
                enqueue(std::make_shared<pending>(std::move(ping), now + cfg_.request_timeout));
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
    multiplexer mux_;
    sessionkit::detail::backoff backoff_;
    std::shared_ptr<link> link_;
    std::unique_ptr<boost::asio::ssl::context> tls_;
    resp_codec::parser parser_;
    std::array<char, 64 * 1024> read_buffer_{};
    boost::asio::steady_timer watchdog_;
    boost::asio::steady_timer backoff_timer_;
    std::atomic<std::uint64_t> connects_{0}, writes_{0}, requests_{0}, timeouts_{0}, failed_{0};
};

}  // namespace detail

/// A shared, self-healing Redis connection. Thread-safe: exec() may be
/// called from any thread and executor. Destroying it closes the link;
/// requests still waiting fail with backend_unavailable.
class connection {
public:
    connection(boost::asio::any_io_executor ex, connection_options cfg)
        : impl_(std::make_shared<detail::connection_impl>(std::move(ex), std::move(cfg))) {
        impl_->start();
    }
    ~connection() {
        if (impl_) impl_->close();
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Sends `req` and returns its replies, one per command, in order. A
    /// Redis error reply is a value (resp::value::is_error()), not an
    /// exception: the caller knows what it means. Throws system_error with
    /// error::timeout or error::backend_unavailable naming the server and
    /// the request's label.
    boost::asio::awaitable<std::vector<resp::value>> exec(request req) {
        auto p =
            std::make_shared<detail::pending>(std::move(req), detail::clock_type::now() + impl_->cfg().request_timeout);
        auto impl = impl_;
        // Named, not a temporary inside co_await (GCC 12 destroys those twice,
        // doc/decisions.md).
        auto initiation = [impl, p](auto handler) mutable {
            // Tracked: the caller's io_context must keep running while its
            // coroutine waits here (it holds no other work).
            p->resume.executor = boost::asio::prefer(boost::asio::get_associated_executor(handler, impl->strand()),
                                                     boost::asio::execution::outstanding_work.tracked);
            p->resume.fn = std::make_unique<detail::resumer::of<decltype(handler)>>(std::move(handler));
            auto& strand = impl->strand();
            boost::asio::dispatch(
                strand, [impl = std::move(impl), p = std::move(p)]() mutable { impl->enqueue(std::move(p)); });
        };
        // use_awaitable rethrows a non-null exception_ptr in the caller.
        auto replies = co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&,
                                                            void(std::exception_ptr, std::vector<resp::value>)>(
            std::move(initiation), boost::asio::use_awaitable);
        co_return replies;
    }

    /// One command, one reply.
    template <class... Args>
    boost::asio::awaitable<resp::value> exec_one(std::string_view name, Args&&... args) {
        request req;
        req.push(name, std::forward<Args>(args)...);
        auto replies = co_await exec(std::move(req));
        co_return std::move(replies.front());
    }

    /// Returns when the server answers PING; throws otherwise.
    boost::asio::awaitable<void> ping() {
        auto reply = co_await exec_one("PING");
        if (reply.is_error())
            throw_error(error::backend_unavailable, "redis " + impl_->name() + ": PING: " + reply.text);
    }

    /// Fails everything waiting and stops reconnecting. Thread-safe.
    void close() { impl_->close(); }

    const std::string& name() const noexcept { return impl_->name(); }
    const connection_options& cfg() const noexcept { return impl_->cfg(); }
    connection_stats stats() const noexcept { return impl_->stats(); }

private:
    std::shared_ptr<detail::connection_impl> impl_;
};

}  // namespace sessionkit::redis

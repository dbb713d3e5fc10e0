// sessionkit/redis/connection.hpp — one Redis connection shared by many
// coroutines, with automatic pipelining.
//
// Callers hand in a `request` (one or more commands) and await its replies.
// Everything that waits is written by one writer in a single write, and
// replies are matched to requests in FIFO order, so 64 coroutines touching
// sessions cost a handful of system calls, not 128. All state lives on one
// strand; callers may be on any executor and thread.
//
// Failure behaviour (doc/redis.md):
//   - every request has a deadline (config::request_timeout) and fails with
//     error::timeout naming the server and the command when it passes;
//   - when the link drops, requests in flight fail at once with
//     error::backend_unavailable naming the server and the command; none
//     hangs. A request is never re-sent (it may have run);
//   - the connection reconnects by itself with backoff; while it is down,
//     new requests fail at once with the reason of the last attempt;
//   - a link with requests outstanding and nothing received for
//     config::stall_timeout is closed and reconnected (a peer that vanished
//     without a FIN, a server stuck in DEBUG SLEEP);
//   - an idle link sends PING every health_check_interval.
//
// The interface is small on purpose (exec, ping, close, stats), so this
// class can be replaced by Boost.Redis once the distributions ship Boost
// 1.84 (doc/decisions.md).
#pragma once

#include <sessionkit/detail/resp.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/redis/config.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace sessionkit::redis {

namespace resp = sessionkit::detail::resp;

/// One or more commands sent together; their replies come back together,
/// in order. `label` names the request in errors ("EVALSHA touch"), with
/// an optional subject: ("touch", id) reads "touch 'abc'". The two parts
/// are joined only when an error needs them, not on every request.
class request {
public:
    request() = default;
    explicit request(std::string label, std::string subject = {})
        : label_(std::move(label)), subject_(std::move(subject)) {}

    request& push(const resp::command& cmd) {
        cmd.append_to(payload_);
        if (label_.empty()) label_ = cmd.name();
        ++commands_;
        return *this;
    }
    template <class... Args>
    request& push(std::string_view name, Args&&... args) {
        resp::command cmd(name);
        (cmd.arg(std::forward<Args>(args)), ...);
        return push(cmd);
    }

    std::size_t size() const noexcept { return commands_; }
    const std::string& payload() const noexcept { return payload_; }
    std::string label() const {
        if (subject_.empty()) return label_;
        return label_ + " '" + sessionkit::detail::printable(subject_) + "'";
    }

private:
    std::string label_;
    std::string subject_;
    std::string payload_;
    std::size_t commands_ = 0;
};

/// Counters, for tests, metrics and benchmarks.
struct connection_stats {
    std::uint64_t connects = 0;       ///< successful (re)connects
    std::uint64_t writes = 0;         ///< write system calls' worth of batches
    std::uint64_t requests = 0;       ///< requests sent
    std::uint64_t timeouts = 0;
    std::uint64_t failed = 0;         ///< requests failed by a lost or absent link
};

namespace detail {

using tcp = boost::asio::ip::tcp;
using unix_socket = boost::asio::local::stream_protocol;
using tls_stream = boost::asio::ssl::stream<tcp::socket>;
using clock_type = std::chrono::steady_clock;

/// Who to resume when a request completes: the awaiting coroutine's
/// handler, type-erased (it is move-only), and the executor it runs on.
/// (asio::any_completion_handler would do, but its executor cannot be
/// posted to in Boost 1.81.)
struct resumer {
    struct base {
        virtual ~base() = default;
        virtual void operator()(std::exception_ptr, std::vector<resp::value>) = 0;
    };
    template <class Handler>
    struct of final : base {
        explicit of(Handler h) : handler(std::move(h)) {}
        void operator()(std::exception_ptr e, std::vector<resp::value> v) override {
            std::move(handler)(std::move(e), std::move(v));
        }
        Handler handler;
    };

    boost::asio::any_io_executor executor;
    std::unique_ptr<base> fn;

    explicit operator bool() const noexcept { return fn != nullptr; }
};

/// One awaited request: its bytes, its replies so far, who to tell.
struct pending {
    request req;
    clock_type::time_point deadline;
    std::vector<resp::value> replies;
    resumer resume;  ///< empty for internal PINGs, and once completed
    bool done = false;

    /// Resumes the caller on its own executor. A reply is dispatched: when
    /// the caller's executor runs on this thread (the connection on the
    /// callers' io_context, the fast set-up) the coroutine resumes at once,
    /// without a trip through the scheduler, as Asio's own operations do. A
    /// failure is posted: it may be raised inside exec()'s initiation, where
    /// the caller must not resume.
    void complete(std::exception_ptr failure) {
        done = true;
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
        if (failed) boost::asio::post(ex, std::move(resume_caller));
        else boost::asio::dispatch(ex, std::move(resume_caller));
    }
};

/// The link, whichever transport it uses.
struct link {
    std::variant<tcp::socket, unix_socket::socket, std::unique_ptr<tls_stream>> stream;

    template <class Buffers>
    boost::asio::awaitable<std::size_t> read_some(const Buffers& b) {
        return std::visit([&](auto& s) -> boost::asio::awaitable<std::size_t> {
            if constexpr (std::is_same_v<std::decay_t<decltype(s)>, std::unique_ptr<tls_stream>>)
                return s->async_read_some(b, boost::asio::use_awaitable);
            else
                return s.async_read_some(b, boost::asio::use_awaitable);
        }, stream);
    }
    template <class Buffers>
    boost::asio::awaitable<std::size_t> write(const Buffers& b) {
        return std::visit([&](auto& s) -> boost::asio::awaitable<std::size_t> {
            if constexpr (std::is_same_v<std::decay_t<decltype(s)>, std::unique_ptr<tls_stream>>)
                return boost::asio::async_write(*s, b, boost::asio::use_awaitable);
            else
                return boost::asio::async_write(s, b, boost::asio::use_awaitable);
        }, stream);
    }
    template <class Buffers, class Handler>
    void async_write(const Buffers& b, Handler&& handler) {
        std::visit([&](auto& s) {
            if constexpr (std::is_same_v<std::decay_t<decltype(s)>, std::unique_ptr<tls_stream>>)
                boost::asio::async_write(*s, b, std::forward<Handler>(handler));
            else
                boost::asio::async_write(s, b, std::forward<Handler>(handler));
        }, stream);
    }
    void close() noexcept {
        boost::system::error_code ignored;
        std::visit([&](auto& s) {
            if constexpr (std::is_same_v<std::decay_t<decltype(s)>, std::unique_ptr<tls_stream>>) {
                if (s) s->lowest_layer().close(ignored);
            } else {
                s.close(ignored);
            }
        }, stream);
    }
};

class connection_impl : public std::enable_shared_from_this<connection_impl> {
public:
    using strand_type = boost::asio::strand<boost::asio::any_io_executor>;

    connection_impl(boost::asio::any_io_executor ex, config cfg)
        : strand_(boost::asio::make_strand(ex)), cfg_(std::move(cfg)), name_(cfg_.describe()),
          watchdog_(strand_), backoff_timer_(strand_) {}

    const std::string& name() const noexcept { return name_; }
    const config& cfg() const noexcept { return cfg_; }

    void start() {
        boost::asio::co_spawn(strand_, [self = shared_from_this()] { return self->run(); },
                              boost::asio::detached);
        boost::asio::co_spawn(strand_, [self = shared_from_this()] { return self->watch(); },
                              boost::asio::detached);
    }

    /// Called on the strand: queue a request or fail it at once.
    void enqueue(std::shared_ptr<pending> p) {
        if (state_ == state::closed)
            return fail(*p, error::backend_unavailable, "connection closed");
        if (state_ == state::down)
            return fail(*p, error::backend_unavailable, "not connected (" + last_error_ + ")");
        // The watchdog never sleeps past now + request_timeout, so it only
        // needs waking for a deadline earlier than that (a shorter timeout).
        if (p->deadline < watchdog_due_) watchdog_.cancel();
        queued_.push_back(std::move(p));
        start_write();
    }

    void close() {
        boost::asio::dispatch(strand_, [self = shared_from_this()] {
            if (self->state_ == state::closed) return;
            self->state_ = state::closed;
            self->fail_all(error::backend_unavailable, "connection closed");
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
    enum class state : std::uint8_t { connecting, ready, down, closed };

    // ---- failing requests --------------------------------------------------

    void fail(pending& p, error e, const std::string& why) {
        (e == error::timeout ? timeouts_ : failed_).fetch_add(1, std::memory_order_relaxed);
        p.complete(failure(e, "redis " + name_ + ": " + p.req.label() + ": " + why));
    }

    /// The exception, made where it lives. std::make_exception_ptr copies
    /// its argument, and libstdc++'s runtime_error shares its message
    /// between copies with a reference count ThreadSanitizer cannot see:
    /// the temporary, released here after the caller already has the
    /// copy, was reported as a race. A thrown prvalue has no such twin.
    static std::exception_ptr failure(error e, const std::string& what) {
        try {
            throw boost::system::system_error(make_error_code(e), what);
        } catch (...) {
            return std::current_exception();
        }
    }

    void fail_all(error e, const std::string& why) {
        for (auto& p : in_flight_)
            if (!p->done) fail(*p, e, why);
        for (auto& p : queued_)
            if (!p->done) fail(*p, e, why);
        in_flight_.clear();
        queued_.clear();
    }

    // ---- the link's life ---------------------------------------------------

    boost::asio::awaitable<void> run() {
        auto self = shared_from_this();
        milliseconds backoff = cfg_.reconnect_min;
        std::minstd_rand jitter(std::random_device{}());
        while (state_ != state::closed) {
            state_ = state::connecting;
            bool was_ready = false;
            parser_.reset();  // a dropped link may have left half a reply
            try {
                link_ = co_await open_link();
                co_await handshake(*link_);
                state_ = state::ready;
                was_ready = true;
                connects_.fetch_add(1, std::memory_order_relaxed);
                last_received_ = clock_type::now();
                backoff = cfg_.reconnect_min;
                start_write();  // what was queued while connecting
                co_await read_loop(*link_);
            } catch (const boost::system::system_error& e) {
                // The watchdog closes a stalled link: its reason, not "aborted".
                last_error_ = stall_reason_.empty() ? describe_failure(e, was_ready) : stall_reason_;
            } catch (const std::exception& e) {
                last_error_ = e.what();
            }
            stall_reason_.clear();
            if (link_) link_->close();
            link_.reset();
            if (state_ == state::closed) break;
            state_ = state::down;
            fail_all(error::backend_unavailable,
                     was_ready ? "connection lost (" + last_error_ + ") before the reply came"
                               : "not connected (" + last_error_ + ")");
            // Backoff with jitter, so that many clients do not reconnect in
            // step after a server restart.
            auto wait = backoff / 2 + milliseconds{std::uniform_int_distribution<std::int64_t>(
                                          0, std::max<std::int64_t>(1, backoff.count() / 2))(jitter)};
            backoff = std::min(backoff * 2, cfg_.reconnect_max);
            backoff_timer_.expires_after(wait);
            boost::system::error_code ignored;
            co_await backoff_timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
        }
    }

    static std::string describe_failure(const boost::system::system_error& e, bool was_ready) {
        if (e.code() == boost::asio::error::eof) return was_ready ? "the server closed the connection" : "the server closed the connection during the handshake";
        if (e.code().category() == sessionkit::error_category()) return what_without_code(e);
        return e.code().message();
    }

    /// Runs `op` with the connect timeout: the link is closed when it passes.
    template <class T>
    boost::asio::awaitable<T> with_connect_deadline(std::shared_ptr<link> l, boost::asio::awaitable<T> op) {
        // The flag is shared: the timer's handler may run after this frame.
        auto timer = std::make_shared<boost::asio::steady_timer>(strand_);
        auto timed_out = std::make_shared<bool>(false);
        timer->expires_after(cfg_.connect_timeout);
        timer->async_wait([l, timer, timed_out](boost::system::error_code ec) {
            if (!ec) { *timed_out = true; l->close(); }
        });
        try {
            T result = co_await std::move(op);
            timer->cancel();
            co_return result;
        } catch (const boost::system::system_error&) {
            timer->cancel();
            if (!*timed_out) throw;
        }
        throw_error(error::timeout, "connect and handshake took longer than " +
                                         std::to_string(cfg_.connect_timeout.count()) + " ms");
    }

    boost::asio::awaitable<std::shared_ptr<link>> open_link() {
        auto l = std::make_shared<link>(link{tcp::socket(strand_)});
        if (cfg_.via == config::transport::unix_socket) {
            l->stream.emplace<unix_socket::socket>(strand_);
            auto op = [](std::shared_ptr<link> l, std::string path) -> boost::asio::awaitable<int> {
                co_await std::get<unix_socket::socket>(l->stream).async_connect(unix_socket::endpoint(path),
                                                                                 boost::asio::use_awaitable);
                co_return 0;
            };
            auto connecting = op(l, cfg_.socket_path);
            co_await with_connect_deadline(l, std::move(connecting));
            co_return l;
        }
        tcp::resolver resolver(strand_);
        const std::string service = std::to_string(cfg_.port);
        auto endpoints = co_await resolver.async_resolve(cfg_.host, service, boost::asio::use_awaitable);
        if (cfg_.via == config::transport::tcp) {
            auto op = [](std::shared_ptr<link> l, tcp::resolver::results_type eps) -> boost::asio::awaitable<int> {
                auto& s = std::get<tcp::socket>(l->stream);
                co_await boost::asio::async_connect(s, eps, boost::asio::use_awaitable);
                s.set_option(tcp::no_delay(true));
                co_return 0;
            };
            auto connecting = op(l, endpoints);
            co_await with_connect_deadline(l, std::move(connecting));
            co_return l;
        }
        // TLS: connect, then the TLS handshake, both under the deadline.
        if (!tls_) tls_ = make_tls_context();
        auto& s = l->stream.emplace<std::unique_ptr<tls_stream>>(std::make_unique<tls_stream>(strand_, *tls_));
        const std::string sni = cfg_.tls_sni.empty() ? cfg_.host : cfg_.tls_sni;
        if (!SSL_set_tlsext_host_name(s->native_handle(), sni.c_str()))
            throw_error(error::invalid_argument, "TLS: cannot use server name '" + sni + "'");
        if (cfg_.tls_verify) s->set_verify_callback(boost::asio::ssl::host_name_verification(sni));
        auto op = [](std::shared_ptr<link> l, tcp::resolver::results_type eps) -> boost::asio::awaitable<int> {
            auto& tls = *std::get<std::unique_ptr<tls_stream>>(l->stream);
            co_await boost::asio::async_connect(tls.lowest_layer(), eps, boost::asio::use_awaitable);
            tls.lowest_layer().set_option(tcp::no_delay(true));
            co_await tls.async_handshake(boost::asio::ssl::stream_base::client, boost::asio::use_awaitable);
            co_return 0;
        };
        auto connecting = op(l, endpoints);
        co_await with_connect_deadline(l, std::move(connecting));
        co_return l;
    }

    std::unique_ptr<boost::asio::ssl::context> make_tls_context() const {
        auto ctx = std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client);
        if (cfg_.tls_verify) {
            ctx->set_verify_mode(boost::asio::ssl::verify_peer);
            if (cfg_.tls_ca_file.empty()) ctx->set_default_verify_paths();
            else ctx->load_verify_file(cfg_.tls_ca_file);
        } else {
            ctx->set_verify_mode(boost::asio::ssl::verify_none);
        }
        return ctx;
    }

    /// HELLO 3 (RESP3, with AUTH), falling back to AUTH + RESP2 on servers
    /// before 6; then SELECT and CLIENT SETNAME. Sent before any request.
    boost::asio::awaitable<void> handshake(link& l) {
        const std::string user = cfg_.user.empty() ? "default" : cfg_.user;
        request hello("HELLO");
        if (cfg_.password.empty()) hello.push("HELLO", "3");
        else hello.push("HELLO", "3", "AUTH", user, cfg_.password);
        auto replies = co_await roundtrip(l, hello);
        if (replies[0].is_error()) {
            const std::string_view text = replies[0].text;
            if (text.starts_with("WRONGPASS") || text.starts_with("NOPERM"))
                throw_error(error::backend_unavailable, "authentication failed: " + std::string(text));
            // A server without HELLO speaks RESP2 only.
            parser_.reset();
            if (!cfg_.password.empty()) {
                request auth("AUTH");
                if (cfg_.user.empty()) auth.push("AUTH", cfg_.password);
                else auth.push("AUTH", cfg_.user, cfg_.password);
                auto r = co_await roundtrip(l, auth);
                if (r[0].is_error()) throw_error(error::backend_unavailable, "authentication failed: " + r[0].text);
            }
        }
        request setup("SELECT");
        if (cfg_.db != 0) setup.push("SELECT", static_cast<std::int64_t>(cfg_.db));
        if (!cfg_.client_name.empty()) setup.push("CLIENT", "SETNAME", cfg_.client_name);
        if (setup.size() == 0) co_return;
        auto r = co_await roundtrip(l, setup);
        if (cfg_.db != 0 && r[0].is_error())
            throw_error(error::backend_unavailable, "SELECT " + std::to_string(cfg_.db) + " failed: " + r[0].text);
    }

    /// Handshake I/O: write one request and read its replies directly.
    boost::asio::awaitable<std::vector<resp::value>> roundtrip(link& l, const request& req) {
        auto op = [](connection_impl* self, link* l, const request* req) -> boost::asio::awaitable<std::vector<resp::value>> {
            co_await l->write(boost::asio::buffer(req->payload()));
            std::vector<resp::value> replies;
            while (replies.size() < req->size()) {
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
        auto exchange = op(this, &l, &req);
        auto replies = co_await with_connect_deadline(link_, std::move(exchange));
        co_return replies;
    }

    /// Writes everything that waits in one write, unless a write is under
    /// way: then it goes out in the next, when that one completes. Called
    /// on the strand by enqueue (a lone request leaves at once, with no
    /// trip through the scheduler), by a finished write, and once a link is
    /// ready. `write_batch_` keeps the bytes alive until the write is over,
    /// whatever happens meanwhile.
    void start_write() {
        if (writing_ || state_ != state::ready || !link_) return;
        write_batch_.clear();
        write_buffers_.clear();
        for (auto& p : queued_) {
            if (p->done) continue;  // timed out before it was sent: never sent
            write_buffers_.push_back(boost::asio::buffer(p->req.payload()));
            in_flight_.push_back(p);
            write_batch_.push_back(std::move(p));
        }
        queued_.clear();
        if (write_batch_.empty()) return;
        if (in_flight_.size() == write_batch_.size()) last_received_ = clock_type::now();
        writes_.fetch_add(1, std::memory_order_relaxed);
        requests_.fetch_add(write_batch_.size(), std::memory_order_relaxed);
        writing_ = true;
        auto written = [self = shared_from_this(), l = link_](boost::system::error_code ec, std::size_t) {
            self->writing_ = false;
            self->write_batch_.clear();
            // A failed write: the read loop notices the closed link, fails
            // what is in flight and reconnects.
            if (ec) l->close();
            else self->start_write();
        };
        link_->async_write(write_buffers_, boost::asio::bind_executor(strand_, std::move(written)));
    }

    boost::asio::awaitable<void> read_loop(link& l) {
        for (;;) {
            std::size_t n = co_await l.read_some(boost::asio::buffer(read_buffer_));
            last_received_ = clock_type::now();
            std::string_view data(read_buffer_.data(), n);
            while (!data.empty()) {
                data.remove_prefix(parser_.feed(data));
                if (parser_.has_value()) deliver(parser_.take());
            }
        }
    }

    void deliver(resp::value v) {
        if (v.kind == resp::type::push) return;  // we never subscribe; ignore out-of-band data
        if (in_flight_.empty())
            throw_error(error::protocol_error, "a reply came that no request is waiting for");
        auto& p = *in_flight_.front();
        p.replies.push_back(std::move(v));
        if (p.replies.size() < p.req.size()) return;
        auto done = std::move(in_flight_.front());
        in_flight_.pop_front();
        if (!done->done) done->complete(nullptr);
    }

    /// Deadlines, stalls and health checks: one timer, armed for the
    /// earliest thing due.
    boost::asio::awaitable<void> watch() {
        auto self = shared_from_this();
        const auto stall = cfg_.effective_stall_timeout();
        while (state_ != state::closed) {
            const auto now = clock_type::now();
            auto next = clock_type::time_point::max();
            for (auto* q : {&in_flight_, &queued_})
                for (auto& p : *q) {
                    if (p->done) continue;
                    if (p->deadline <= now)
                        fail(*p, error::timeout, "no reply within " + std::to_string(cfg_.request_timeout.count()) + " ms");
                    else
                        next = std::min(next, p->deadline);
                }
            // Timed-out requests leave the queue at once; in flight they keep
            // their place until their reply comes, so later replies match.
            std::erase_if(queued_, [](auto& p) { return p->done; });
            if (!in_flight_.empty() && state_ == state::ready) {
                if (now - last_received_ >= stall) {
                    stall_reason_ = "no reply for " + std::to_string(stall.count()) + " ms";
                    if (link_) link_->close();
                } else {
                    next = std::min(next, last_received_ + stall);
                }
            }
            if (state_ == state::ready && in_flight_.empty() && queued_.empty() &&
                cfg_.health_check_interval > milliseconds::zero()) {
                if (now - last_received_ >= cfg_.health_check_interval) {
                    auto ping = std::make_shared<pending>();
                    ping->req = request("PING (health check)");
                    ping->req.push("PING");
                    ping->deadline = now + cfg_.request_timeout;
                    queued_.push_back(ping);
                    start_write();
                    continue;
                }
                next = std::min(next, last_received_ + cfg_.health_check_interval);
            }
            // Never asleep longer than a request's timeout (or the stall
            // limit): a request enqueued meanwhile then has a later
            // deadline and need not wake us, so a request costs no timer
            // update.
            next = std::min(next, now + std::min(cfg_.request_timeout, stall));
            watchdog_due_ = next;
            watchdog_.expires_at(next);
            boost::system::error_code ignored;
            co_await watchdog_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ignored));
        }
    }

    strand_type strand_;
    config cfg_;
    std::string name_;
    state state_ = state::connecting;
    std::shared_ptr<link> link_;
    std::unique_ptr<boost::asio::ssl::context> tls_;
    resp::parser parser_;
    std::array<char, 64 * 1024> read_buffer_{};
    std::deque<std::shared_ptr<pending>> queued_;     ///< not yet written
    std::deque<std::shared_ptr<pending>> in_flight_;  ///< written, replies awaited, in order
    bool writing_ = false;
    std::vector<std::shared_ptr<pending>> write_batch_;      ///< what the write under way sends
    std::vector<boost::asio::const_buffer> write_buffers_;
    boost::asio::steady_timer watchdog_;
    clock_type::time_point watchdog_due_ = clock_type::time_point::min();  ///< when the watchdog wakes
    boost::asio::steady_timer backoff_timer_;
    clock_type::time_point last_received_{};
    std::string last_error_ = "connecting";
    std::string stall_reason_;
    std::atomic<std::uint64_t> connects_{0}, writes_{0}, requests_{0}, timeouts_{0}, failed_{0};
};

} // namespace detail

/// A shared, self-healing Redis connection. Thread-safe: exec() may be
/// called from any thread and executor. Destroying it closes the link;
/// requests still waiting fail with backend_unavailable.
class connection {
public:
    connection(boost::asio::any_io_executor ex, config cfg)
        : impl_(std::make_shared<detail::connection_impl>(std::move(ex), std::move(cfg))) {
        impl_->start();
    }
    ~connection() { if (impl_) impl_->close(); }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Sends `req` and returns its replies, one per command, in order. A
    /// Redis error reply is a value (resp::value::is_error()), not an
    /// exception: the caller knows what it means. Throws system_error with
    /// error::timeout or error::backend_unavailable naming the server and
    /// the request's label.
    boost::asio::awaitable<std::vector<resp::value>> exec(request req) {
        auto p = std::make_shared<detail::pending>();
        p->req = std::move(req);
        p->deadline = detail::clock_type::now() + impl_->cfg().request_timeout;
        auto impl = impl_;
        // Named, not a temporary inside co_await (GCC 12 destroys those twice,
        // doc/decisions.md).
        auto initiation = [impl, p](auto handler) mutable {
            // Tracked: the caller's io_context must keep running while its
            // coroutine waits here (it holds no other work).
            p->resume.executor = boost::asio::prefer(
                boost::asio::get_associated_executor(handler, impl->strand()),
                boost::asio::execution::outstanding_work.tracked);
            p->resume.fn = std::make_unique<detail::resumer::of<decltype(handler)>>(std::move(handler));
            auto& strand = impl->strand();
            boost::asio::dispatch(strand, [impl = std::move(impl), p = std::move(p)]() mutable {
                impl->enqueue(std::move(p));
            });
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
    const config& cfg() const noexcept { return impl_->cfg(); }
    connection_stats stats() const noexcept { return impl_->stats(); }

private:
    std::shared_ptr<detail::connection_impl> impl_;
};

} // namespace sessionkit::redis

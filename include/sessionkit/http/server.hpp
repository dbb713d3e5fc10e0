// sessionkit/http/server.hpp — a small HTTP/1.1 server on Boost.Beast and
// coroutines for the session API: keep-alive, a request body limit, header
// and idle timeouts, a bounded number of connections, and a graceful stop
// (stop accepting, let requests in flight finish, close idle connections).
// A request whose body length is not certain (framing_error, router.hpp)
// is answered 400 and its connection closed.
//
// Each connection runs on its own strand, so stop() can cancel an idle
// read from any thread without racing the connection's own operations.
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/http/handler.hpp>
#include <sessionkit/http/stream.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>

namespace sessionkit::http {

struct server_options {
    std::size_t body_limit = 1 << 20;                  ///< bytes; larger bodies get 413
    std::size_t header_limit = 16 << 10;               ///< bytes of request line + headers
    std::chrono::milliseconds header_timeout{10'000};  ///< to receive a whole request once it began
    std::chrono::milliseconds idle_timeout{60'000};    ///< keep-alive wait for the next request
    std::chrono::milliseconds write_timeout{30'000};   ///< to send one response
    std::size_t max_connections = 1024;                ///< more are answered 503 and closed
    std::chrono::milliseconds shutdown_grace{10'000};  ///< for requests in flight at stop()
};

/// Serves `Handler` (anything with `awaitable<reply> handle(const request&)`;
/// a reply with a stream is sent as a chunked body while it is written).
///
/// Threading: the acceptor lives on a strand of its own (`executor()`): run()
/// must be co_spawned there. Each connection gets a strand too. stop() may be
/// called from any thread.
template <class Handler>
class http_server {
public:
    using tcp = boost::asio::ip::tcp;
    using strand_type = boost::asio::strand<boost::asio::any_io_executor>;

    http_server(boost::asio::any_io_executor executor, Handler& handler, server_options options = {})
        : executor_(std::move(executor)), strand_(boost::asio::make_strand(executor_)), acceptor_(strand_),
          handler_(handler), options_(options) {}

    /// Where run() must be co_spawned.
    strand_type executor() const { return strand_; }

    /// Binds and listens; throws error::invalid_argument naming the address
    /// when it cannot.
    void listen(const tcp::endpoint& where) {
        boost::system::error_code ec;
        acceptor_.open(where.protocol(), ec);
        if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec) acceptor_.bind(where, ec);
        if (!ec) acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
        if (ec)
            throw_error(error::invalid_argument, "http_server: cannot listen on " + where.address().to_string() + ":" +
                                                     std::to_string(where.port()) + ": " + ec.message());
    }

    tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

    /// Accepts until stop(); returns when every connection has closed (or the
    /// shutdown grace ran out and the rest were closed).
    awaitable<void> run() {
        if (!strand_.running_in_this_thread())
            throw_error(error::invalid_argument, "http_server::run must be co_spawned on http_server::executor()");
        boost::asio::steady_timer backoff(strand_);
        while (!stopping_.load()) {
            tcp::socket socket(boost::asio::make_strand(executor_));
            boost::system::error_code ec;
            co_await acceptor_.async_accept(socket, boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            if (ec) {
                if (stopping_.load() || ec == boost::asio::error::operation_aborted) break;
                // Out of descriptors or memory: the listening socket stays
                // readable, so pause instead of spinning.
                backoff.expires_after(std::chrono::milliseconds(100));
                co_await backoff.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
                continue;
            }
            auto conn = std::make_shared<connection>(std::move(socket));
            switch (admit(conn)) {
            case admission::serve:
                boost::asio::co_spawn(conn->stream.get_executor(), serve(conn), boost::asio::detached);
                break;
            case admission::refuse:
                boost::asio::co_spawn(conn->stream.get_executor(), refuse(conn), boost::asio::detached);
                break;
            case admission::drop: break;  // a flood: close without a word
            }
        }
        co_await drain();
    }

    /// Stops accepting and closes idle connections; requests in flight
    /// finish and their connections then close. Thread-safe.
    void stop() {
        if (stopping_.exchange(true)) return;
        boost::asio::post(strand_, [this] {
            boost::system::error_code ignored;
            acceptor_.close(ignored);
        });
        cancel_idle();
    }

    std::size_t connections() const {
        std::lock_guard lock(mutex_);
        return open_;
    }

    /// Called with the status of every answer the server writes itself
    /// (400, 413, 417, 431, 503): the handler never sees those requests.
    std::function<void(unsigned status)> on_transport_answer;

private:
    struct connection {
        explicit connection(tcp::socket s) : stream(std::move(s)) {}
        boost::beast::tcp_stream stream;
        bool idle = true;  ///< waiting for a request's first byte (read and written on its strand only)
    };

    enum class admission { serve, refuse, drop };

    admission admit(const std::shared_ptr<connection>& c) {
        std::lock_guard lock(mutex_);
        if (open_ >= options_.max_connections) {
            // Answer a few with 503; past that, a flood gets closed sockets.
            if (refusing_ >= 64) return admission::drop;
            ++refusing_;
            return admission::refuse;
        }
        ++open_;
        // Forget closed connections as we go, so the list stays small.
        connections_.remove_if([](const auto& w) { return w.expired(); });
        connections_.push_back(c);
        return admission::serve;
    }

    // Ends the counting of a connection however its coroutine ends.
    struct release_on_exit {
        http_server* self;
        bool refused;
        ~release_on_exit() {
            std::lock_guard lock(self->mutex_);
            if (refused)
                --self->refusing_;
            else
                --self->open_;
        }
    };

    void cancel_idle() {
        std::lock_guard lock(mutex_);
        for (auto& weak : connections_)
            if (auto c = weak.lock())
                boost::asio::post(c->stream.get_executor(), [c] {
                    if (c->idle) c->stream.cancel();
                });
    }

    void report(unsigned status) {
        if (on_transport_answer) on_transport_answer(status);
    }

    // Sends the last bytes, then reads (and drops) what the client still
    // sends, up to 2 s or 64 KiB, so that closing does not reset the
    // connection before the client has read our answer.
    static awaitable<void> close_gracefully(boost::beast::tcp_stream& stream) {
        boost::system::error_code ec;
        stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        stream.expires_after(std::chrono::seconds(2));
        char sink[4096];
        for (std::size_t total = 0; !ec && total < (64u << 10);)
            total += co_await stream.async_read_some(boost::asio::buffer(sink),
                                                     boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        stream.close();
    }

    awaitable<void> refuse(std::shared_ptr<connection> c) {
        release_on_exit guard{this, true};
        report(503);
        auto res = error_response({503, "unavailable", "too many connections; try again", {}}, 11, false);
        c->stream.expires_after(std::chrono::seconds(2));
        boost::system::error_code ec;
        co_await boost::beast::http::async_write(c->stream, res,
                                                 boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        co_await close_gracefully(c->stream);
    }

    awaitable<void> serve(std::shared_ptr<connection> c) {
        release_on_exit guard{this, false};
        boost::beast::flat_buffer buffer;
        boost::system::error_code ec;
        for (;;) {
            boost::beast::http::request_parser<boost::beast::http::string_body> parser;
            parser.body_limit(options_.body_limit);
            parser.header_limit(static_cast<std::uint32_t>(options_.header_limit));
            // Idle: waiting for the first byte of the next request, under the
            // idle timeout; stop() may cancel this wait. Once a byte is
            // here, one header timeout covers the whole request.
            if (buffer.size() == 0) {
                c->idle = true;
                if (stopping_.load()) break;
                c->stream.expires_after(options_.idle_timeout);
                auto n = co_await c->stream.async_read_some(
                    buffer.prepare(4096), boost::asio::redirect_error(boost::asio::use_awaitable, ec));
                buffer.commit(n);
                if (ec) break;  // closed, idle too long, or stopping
            }
            c->idle = false;
            c->stream.expires_after(options_.header_timeout);
            co_await boost::beast::http::async_read_header(c->stream, buffer, parser,
                                                           boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            if (!ec) {
                // A body of uncertain length ends the connection: what
                // follows must never be read as a request (smuggling).
                if (auto bad_framing = framing_error(parser.get())) {
                    response refusal = error_response(*bad_framing, 11, false);  // named: GCC 12
                    co_await answer_and_close(c->stream, std::move(refusal));
                    co_return;
                }
            }
            if (!ec && parser.get()[boost::beast::http::field::expect].size() > 0) {
                if (!boost::beast::iequals(parser.get()[boost::beast::http::field::expect], "100-continue")) {
                    // Named before co_await: see the GCC 12 note in registry.hpp.
                    response refusal = error_response(
                        {417, "expectation_failed", "only Expect: 100-continue is supported", {}}, 11, false);
                    co_await answer_and_close(c->stream, std::move(refusal));
                    co_return;
                }
                boost::beast::http::response<boost::beast::http::empty_body> go_on{
                    boost::beast::http::status::continue_, 11};
                co_await boost::beast::http::async_write(c->stream, go_on,
                                                         boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            }
            if (!ec && !parser.is_done())
                co_await boost::beast::http::async_read(c->stream, buffer, parser,
                                                        boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            if (ec) {
                if (auto res = response_for_read_error(ec))
                    co_await answer_and_close(c->stream, std::move(*res));
                else
                    c->stream.close();
                co_return;
            }

            reply rep = co_await respond(parser.get());
            response& res = rep.res;
            if (stopping_.load()) res.keep_alive(false);
            c->stream.expires_after(options_.write_timeout);
            if (rep.stream) {
                const bool whole = co_await stream_body(*c, rep);
                if (!whole) break;
            } else {
                co_await boost::beast::http::async_write(c->stream, res,
                                                         boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            }
            if (ec) break;
            if (!res.keep_alive()) {
                co_await close_gracefully(c->stream);
                co_return;
            }
        }
        c->stream.close();
    }

    // The handler's answer; HEAD is answered as GET without the body (and
    // without a stream's).
    awaitable<reply> respond(request& req) {
        const bool head = req.method() == boost::beast::http::verb::head;
        if (head) req.method(boost::beast::http::verb::get);
        reply rep;
        bool failed = false;
        try {
            reply answer = co_await handler_.handle(req);
            rep = std::move(answer);
        } catch (...) {
            failed = true;  // handle() does not throw; this is the last line of defence
        }
        if (failed) {
            report(500);
            rep = reply{error_response({500, "internal", "the request could not be handled", {}}, req.version(), false),
                        {}};
        }
        if (head && rep.stream) {
            rep.stream = nullptr;
            rep.res.chunked(true);
        } else if (head) {
            const auto length = rep.res.body().size();
            rep.res.body().clear();
            rep.res.content_length(length);
        }
        co_return rep;
    }

    // Writes pieces of a streamed body as chunks, each under the write
    // timeout (none while the stream waits for something to say).
    class chunk_writer final : public stream_writer {
    public:
        chunk_writer(connection& c, const http_server& server) : c_(c), server_(server) {}
        awaitable<bool> send(std::string piece) override {
            if (gone_ || piece.empty()) co_return !gone_;
            boost::system::error_code ec;
            c_.stream.expires_after(server_.options_.write_timeout);
            co_await boost::asio::async_write(c_.stream, boost::beast::http::make_chunk(boost::asio::buffer(piece)),
                                              boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            c_.stream.expires_never();
            gone_ = static_cast<bool>(ec);
            co_return !gone_;
        }
        bool stopping() const noexcept override { return server_.stopping_.load(); }
        bool gone() const noexcept { return gone_; }

    private:
        connection& c_;
        const http_server& server_;
        bool gone_ = false;
    };

    // The head with chunked encoding, the stream's pieces, the last chunk.
    // False when the body could not be sent whole (the client left, a
    // write timed out, the stream threw): the connection is then closed.
    awaitable<bool> stream_body(connection& c, reply& rep) {
        rep.res.chunked(true);
        boost::beast::http::response_serializer<boost::beast::http::string_body> head(rep.res);
        boost::system::error_code ec;
        co_await boost::beast::http::async_write_header(c.stream, head,
                                                        boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        if (ec) co_return false;
        chunk_writer writer(c, *this);
        bool threw = false;
        try {
            co_await rep.stream(writer);
        } catch (...) {
            threw = true;  // a follow body does not throw; this is the last line of defence
        }
        if (threw || writer.gone()) co_return false;
        c.stream.expires_after(options_.write_timeout);
        co_await boost::asio::async_write(c.stream, boost::beast::http::make_chunk_last(),
                                          boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        co_return !ec;
    }

    awaitable<void> answer_and_close(boost::beast::tcp_stream& stream, response res) {
        report(res.result_int());
        boost::system::error_code ec;
        stream.expires_after(std::chrono::seconds(5));
        co_await boost::beast::http::async_write(stream, res,
                                                 boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        co_await close_gracefully(stream);
    }

    // What to answer when reading a request failed: a JSON error for a
    // request we can name, nothing for a peer that closed or went silent.
    static std::optional<response> response_for_read_error(const boost::system::error_code& ec) {
        // A timeout: Beast's tcp_stream has already closed the socket.
        if (ec == boost::beast::http::error::end_of_stream || ec == boost::asio::error::operation_aborted ||
            ec == boost::asio::error::connection_reset || ec == boost::asio::error::eof ||
            ec == boost::beast::error::timeout)
            return std::nullopt;
        if (ec == boost::beast::http::error::body_limit)
            return error_response({413, "payload_too_large", "the request body is larger than this server accepts", {}},
                                  11, false);
        if (ec == boost::beast::http::error::header_limit)
            return error_response({431, "headers_too_large", "the request headers are too large", {}}, 11, false);
        return error_response({400, "bad_request", "malformed HTTP request: " + ec.message(), {}}, 11, false);
    }

    awaitable<void> drain() {
        boost::asio::steady_timer timer(strand_);
        const auto deadline = std::chrono::steady_clock::now() + options_.shutdown_grace;
        while (connections() > 0 && std::chrono::steady_clock::now() < deadline) {
            cancel_idle();
            timer.expires_after(std::chrono::milliseconds(20));
            co_await timer.async_wait(boost::asio::use_awaitable);
        }
        std::lock_guard lock(mutex_);
        for (auto& weak : connections_)
            if (auto c = weak.lock()) boost::asio::post(c->stream.get_executor(), [c] { c->stream.cancel(); });
    }

    boost::asio::any_io_executor executor_;
    strand_type strand_;
    tcp::acceptor acceptor_;
    Handler& handler_;
    server_options options_;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mutex_;
    std::list<std::weak_ptr<connection>> connections_;
    std::size_t open_ = 0;
    std::size_t refusing_ = 0;
};

}  // namespace sessionkit::http

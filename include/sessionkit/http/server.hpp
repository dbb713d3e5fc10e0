// sessionkit/http/server.hpp — a small HTTP/1.1 server on Boost.Beast and
// coroutines for the session API: keep-alive, a request body limit, header
// and idle timeouts, a bounded number of connections, and a graceful stop
// (stop accepting, let requests in flight finish, close idle connections).
//
// Each connection runs on its own strand, so stop() can cancel an idle
// read from any thread without racing the connection's own operations.
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/http/handler.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/http/parser.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>

namespace sessionkit::http_api {

struct server_options {
    std::size_t body_limit = 1 << 20;                       ///< bytes; larger bodies get 413
    std::size_t header_limit = 16 << 10;                    ///< bytes of request line + headers
    std::chrono::milliseconds header_timeout{10'000};       ///< to read one request once it began
    std::chrono::milliseconds idle_timeout{60'000};         ///< keep-alive wait for the next request
    std::size_t max_connections = 1024;                     ///< more are answered 503 and closed
    std::chrono::milliseconds shutdown_grace{10'000};       ///< for requests in flight at stop()
};

/// Serves `Handler` (anything with `awaitable<response> handle(const request&)`).
template <class Handler>
class http_server {
public:
    using tcp = boost::asio::ip::tcp;

    http_server(boost::asio::any_io_executor executor, Handler& handler, server_options options = {})
        : executor_(std::move(executor)), acceptor_(executor_), handler_(handler), options_(options) {}

    /// Binds and listens; throws error::invalid_argument naming the address
    /// when it cannot.
    void listen(const tcp::endpoint& where) {
        boost::system::error_code ec;
        acceptor_.open(where.protocol(), ec);
        if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
        if (!ec) acceptor_.bind(where, ec);
        if (!ec) acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
        if (ec)
            throw_error(error::invalid_argument, "http_server: cannot listen on " + where.address().to_string() +
                                                     ":" + std::to_string(where.port()) + ": " + ec.message());
    }

    tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }

    /// Accepts until stop(); returns when every connection has closed (or the
    /// shutdown grace ran out and the rest were closed).
    awaitable<void> run() {
        while (!stopping_.load()) {
            auto strand = boost::asio::make_strand(executor_);
            tcp::socket socket(strand);
            boost::system::error_code ec;
            co_await acceptor_.async_accept(socket, boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            if (ec) {
                if (stopping_.load() || ec == boost::asio::error::operation_aborted) break;
                continue;  // e.g. too many open files: try the next one
            }
            auto conn = std::make_shared<connection>(std::move(socket));
            if (!admit(conn)) {
                boost::asio::co_spawn(conn->stream.get_executor(), refuse(conn), boost::asio::detached);
                continue;
            }
            boost::asio::co_spawn(conn->stream.get_executor(), serve(conn), boost::asio::detached);
        }
        co_await drain();
    }

    /// Stops accepting and closes idle connections; requests in flight
    /// finish and their connections then close. Thread-safe.
    void stop() {
        if (stopping_.exchange(true)) return;
        boost::asio::post(acceptor_.get_executor(), [this] {
            boost::system::error_code ignored;
            acceptor_.close(ignored);
        });
        std::lock_guard lock(mutex_);
        for (auto& weak : connections_)
            if (auto c = weak.lock()) cancel_if_idle(c);
    }

    std::size_t connections() const {
        std::lock_guard lock(mutex_);
        return open_;
    }

private:
    struct connection {
        explicit connection(tcp::socket s) : stream(std::move(s)) {}
        boost::beast::tcp_stream stream;
        bool idle = true;  ///< waiting for a request (touched on its strand only)
    };

    bool admit(const std::shared_ptr<connection>& c) {
        std::lock_guard lock(mutex_);
        if (open_ >= options_.max_connections) return false;
        ++open_;
        // Forget closed connections as we go, so the list stays small.
        connections_.remove_if([](const auto& w) { return w.expired(); });
        connections_.push_back(c);
        return true;
    }
    void release() {
        std::lock_guard lock(mutex_);
        --open_;
    }

    void cancel_if_idle(const std::shared_ptr<connection>& c) {
        boost::asio::post(c->stream.get_executor(), [c] {
            if (c->idle) c->stream.cancel();
        });
    }

    awaitable<void> refuse(std::shared_ptr<connection> c) {
        auto res = error_response({503, "unavailable", "too many connections; try again", {}}, 11, false);
        c->stream.expires_after(std::chrono::seconds(2));
        boost::system::error_code ec;
        co_await boost::beast::http::async_write(c->stream, res,
                                                 boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        c->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        // Read what the client already sent until it closes (bounded), so
        // closing does not reset the connection before it read our answer.
        char sink[1024];
        while (!ec)
            co_await c->stream.async_read_some(boost::asio::buffer(sink),
                                               boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    }

    awaitable<void> serve(std::shared_ptr<connection> c) {
        namespace http = boost::beast::http;
        boost::beast::flat_buffer buffer;
        boost::system::error_code ec;
        for (bool first = true;; first = false) {
            http::request_parser<http::string_body> parser;
            parser.body_limit(options_.body_limit);
            parser.header_limit(static_cast<std::uint32_t>(options_.header_limit));
            c->idle = true;
            if (stopping_.load()) break;
            // Waiting for the next request is the idle timeout; once bytes
            // arrive, the header timeout bounds the whole request.
            c->stream.expires_after(first || buffer.size() > 0 ? options_.header_timeout : options_.idle_timeout);
            co_await http::async_read_header(c->stream, buffer, parser,
                                             boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            c->idle = false;
            if (!ec && !parser.is_done()) {
                c->stream.expires_after(options_.header_timeout);
                co_await http::async_read(c->stream, buffer, parser,
                                          boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            }
            if (ec) {
                if (auto res = response_for_read_error(ec)) {
                    c->stream.expires_after(std::chrono::seconds(5));
                    co_await http::async_write(c->stream, *res,
                                               boost::asio::redirect_error(boost::asio::use_awaitable, ec));
                }
                break;
            }
            response res = co_await handler_.handle(parser.get());
            if (stopping_.load()) res.keep_alive(false);
            c->stream.expires_after(options_.header_timeout);
            co_await http::async_write(c->stream, res, boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            if (ec || !res.keep_alive()) break;
        }
        c->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        c->stream.close();
        release();
    }

    // What to answer when reading a request failed: a JSON error for a
    // request we can name, nothing for a closed or silent peer.
    static std::optional<response> response_for_read_error(const boost::system::error_code& ec) {
        namespace http = boost::beast::http;
        if (ec == http::error::end_of_stream || ec == boost::beast::error::timeout ||
            ec == boost::asio::error::operation_aborted || ec == boost::asio::error::connection_reset ||
            ec == boost::asio::error::eof)
            return std::nullopt;
        if (ec == http::error::body_limit)
            return error_response({413, "payload_too_large", "the request body is larger than this server accepts", {}},
                                  11, false);
        if (ec == http::error::header_limit)
            return error_response({431, "headers_too_large", "the request headers are too large", {}}, 11, false);
        return error_response({400, "bad_request", "malformed HTTP request: " + ec.message(), {}}, 11, false);
    }

    awaitable<void> drain() {
        boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
        const auto deadline = std::chrono::steady_clock::now() + options_.shutdown_grace;
        while (connections() > 0 && std::chrono::steady_clock::now() < deadline) {
            {
                std::lock_guard lock(mutex_);
                for (auto& weak : connections_)
                    if (auto c = weak.lock()) cancel_if_idle(c);
            }
            timer.expires_after(std::chrono::milliseconds(20));
            co_await timer.async_wait(boost::asio::use_awaitable);
        }
        std::lock_guard lock(mutex_);
        for (auto& weak : connections_)
            if (auto c = weak.lock())
                boost::asio::post(c->stream.get_executor(), [c] { c->stream.cancel(); });
    }

    boost::asio::any_io_executor executor_;
    tcp::acceptor acceptor_;
    Handler& handler_;
    server_options options_;
    std::atomic<bool> stopping_{false};
    mutable std::mutex mutex_;
    std::list<std::weak_ptr<connection>> connections_;
    std::size_t open_ = 0;
};

} // namespace sessionkit::http_api

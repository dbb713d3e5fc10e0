// sessionkit/redis/detail/link.hpp — the byte stream under a Redis
// connection (TCP, TLS or a unix socket) and how one is opened.
//
// Opening resolves, connects and (for rediss://) completes the TLS handshake
// under connection_options::connect_timeout; the connection's Redis handshake runs under
// the same kind of deadline (with_connect_deadline). Everything here is I/O;
// the decisions are in multiplexer.hpp and handshake.hpp.
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/redis/config.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace sessionkit::redis::detail {

using tcp = boost::asio::ip::tcp;
using unix_socket = boost::asio::local::stream_protocol;
using tls_stream = boost::asio::ssl::stream<tcp::socket>;
using strand_type = boost::asio::strand<boost::asio::any_io_executor>;

/// The link, whichever transport it uses.
struct link {
    std::variant<tcp::socket, unix_socket::socket, std::unique_ptr<tls_stream>> stream;

    template <class Buffers>
    boost::asio::awaitable<std::size_t> read_some(const Buffers& b) {
        return std::visit(
            [&](auto& s) -> boost::asio::awaitable<std::size_t> {
                if constexpr (std::is_same_v<std::decay_t<decltype(s)>, std::unique_ptr<tls_stream>>)
                    return s->async_read_some(b, boost::asio::use_awaitable);
                else
                    return s.async_read_some(b, boost::asio::use_awaitable);
            },
            stream);
    }
    template <class Buffers>
    boost::asio::awaitable<std::size_t> write(const Buffers& b) {
        return std::visit(
            [&](auto& s) -> boost::asio::awaitable<std::size_t> {
                if constexpr (std::is_same_v<std::decay_t<decltype(s)>, std::unique_ptr<tls_stream>>)
                    return boost::asio::async_write(*s, b, boost::asio::use_awaitable);
                else
                    return boost::asio::async_write(s, b, boost::asio::use_awaitable);
            },
            stream);
    }
    template <class Buffers, class Handler>
    void async_write(const Buffers& b, Handler&& handler) {
        std::visit(
            [&](auto& s) {
                if constexpr (std::is_same_v<std::decay_t<decltype(s)>, std::unique_ptr<tls_stream>>)
                    boost::asio::async_write(*s, b, std::forward<Handler>(handler));
                else
                    boost::asio::async_write(s, b, std::forward<Handler>(handler));
            },
            stream);
    }
    void close() noexcept {
        boost::system::error_code ignored;
        std::visit(
            [&](auto& s) {
                if constexpr (std::is_same_v<std::decay_t<decltype(s)>, std::unique_ptr<tls_stream>>) {
                    if (s) s->lowest_layer().close(ignored);
                } else {
                    s.close(ignored);
                }
            },
            stream);
    }
};

/// Runs `op` with the connect timeout: the link is closed when it passes,
/// and the failure then says so instead of "operation aborted".
template <class T>
boost::asio::awaitable<T> with_connect_deadline(const strand_type& strand, milliseconds timeout,
                                                std::shared_ptr<link> l, boost::asio::awaitable<T> op) {
    // The flag is shared: the timer's handler may run after this frame.
    auto timer = std::make_shared<boost::asio::steady_timer>(strand);
    auto timed_out = std::make_shared<bool>(false);
    timer->expires_after(timeout);
    timer->async_wait([l, timer, timed_out](boost::system::error_code ec) {
        if (!ec) {
            *timed_out = true;
            l->close();
        }
    });
    try {
        T result = co_await std::move(op);
        timer->cancel();
        co_return result;
    } catch (const boost::system::system_error&) {
        timer->cancel();
        if (!*timed_out) throw;
    }
    throw_error(error::timeout, "connect and handshake took longer than " + std::to_string(timeout.count()) + " ms");
}

inline std::unique_ptr<boost::asio::ssl::context> make_tls_context(const connection_options& cfg) {
    auto ctx = std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client);
    if (cfg.tls_verify) {
        ctx->set_verify_mode(boost::asio::ssl::verify_peer);
        if (cfg.tls_ca_file.empty())
            ctx->set_default_verify_paths();
        else
            ctx->load_verify_file(cfg.tls_ca_file);
    } else {
        ctx->set_verify_mode(boost::asio::ssl::verify_none);
    }
    return ctx;
}

/// Resolves, connects (TLS included) under the connect timeout. `tls` is
/// made on first use and kept for the next attempts.
inline boost::asio::awaitable<std::shared_ptr<link>> open_link(const strand_type& strand, const connection_options& cfg,
                                                               std::unique_ptr<boost::asio::ssl::context>& tls) {
    auto l = std::make_shared<link>(link{tcp::socket(strand)});
    if (cfg.via == connection_options::transport::unix_socket) {
        l->stream.emplace<unix_socket::socket>(strand);
        auto op = [](std::shared_ptr<link> l, std::string path) -> boost::asio::awaitable<int> {
            co_await std::get<unix_socket::socket>(l->stream).async_connect(unix_socket::endpoint(path),
                                                                            boost::asio::use_awaitable);
            co_return 0;
        };
        auto connecting = op(l, cfg.socket_path);
        co_await with_connect_deadline(strand, cfg.connect_timeout, l, std::move(connecting));
        co_return l;
    }
    tcp::resolver resolver(strand);
    const std::string service = std::to_string(cfg.port);
    auto endpoints = co_await resolver.async_resolve(cfg.host, service, boost::asio::use_awaitable);
    if (cfg.via == connection_options::transport::tcp) {
        auto op = [](std::shared_ptr<link> l, tcp::resolver::results_type eps) -> boost::asio::awaitable<int> {
            auto& s = std::get<tcp::socket>(l->stream);
            co_await boost::asio::async_connect(s, eps, boost::asio::use_awaitable);
            s.set_option(tcp::no_delay(true));
            co_return 0;
        };
        auto connecting = op(l, endpoints);
        co_await with_connect_deadline(strand, cfg.connect_timeout, l, std::move(connecting));
        co_return l;
    }
    // TLS: connect, then the TLS handshake, both under the deadline.
    if (!tls) tls = make_tls_context(cfg);
    auto& s = l->stream.emplace<std::unique_ptr<tls_stream>>(std::make_unique<tls_stream>(strand, *tls));
    const std::string sni = cfg.tls_sni.empty() ? cfg.host : cfg.tls_sni;
    if (!SSL_set_tlsext_host_name(s->native_handle(), sni.c_str()))
        throw_error(error::invalid_argument, "TLS: cannot use server name '" + sni + "'");
    if (cfg.tls_verify) s->set_verify_callback(boost::asio::ssl::host_name_verification(sni));
    auto op = [](std::shared_ptr<link> l, tcp::resolver::results_type eps) -> boost::asio::awaitable<int> {
        auto& tls = *std::get<std::unique_ptr<tls_stream>>(l->stream);
        co_await boost::asio::async_connect(tls.lowest_layer(), eps, boost::asio::use_awaitable);
        tls.lowest_layer().set_option(tcp::no_delay(true));
        co_await tls.async_handshake(boost::asio::ssl::stream_base::client, boost::asio::use_awaitable);
        co_return 0;
    };
    auto connecting = op(l, endpoints);
    co_await with_connect_deadline(strand, cfg.connect_timeout, l, std::move(connecting));
    co_return l;
}

/// An I/O failure in words, for "connection lost (...)" and "not connected (...)".
inline std::string describe_failure(const boost::system::system_error& e, bool was_ready) {
    if (e.code() == boost::asio::error::eof)
        return was_ready ? "the server closed the connection" : "the server closed the connection during the handshake";
    if (e.code().category() == sessionkit::error_category()) return what_without_code(e);
    return e.code().message();
}

}  // namespace sessionkit::redis::detail

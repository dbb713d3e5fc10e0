// sessionkit/postgres/detail/link.hpp — a libpq connection on Asio: the
// PGconn, an Asio descriptor on its socket, and how one is opened without
// blocking a thread.
//
// libpq owns the socket. The descriptor only waits on it (readable,
// writable) and is released, never closed, before PQfinish. Opening first
// resolves a host name with Asio's resolver (libpq's own lookup would block
// inside PQconnectPoll) and hands libpq the addresses as hostaddr, then
// follows PQconnectPoll as connect_steps says, binding the descriptor
// afresh before every wait. Whoever holds the link may drop it from
// another handler (a deadline): waits end at once and the opener or
// reader stops with the reason given.
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/postgres/config.hpp>
#include <sessionkit/postgres/detail/connect_steps.hpp>
#include <sessionkit/postgres/detail/libpq.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sessionkit::postgres::detail {

using strand_type = boost::asio::strand<boost::asio::any_io_executor>;
using tcp = boost::asio::ip::tcp;

/// One libpq connection and the descriptor that waits on its socket.
struct link {
    explicit link(const strand_type& strand) : socket(strand) {}
    link(const link&) = delete;
    link& operator=(const link&) = delete;
    ~link() {
        release();
        conn.reset();  // PQfinish closes the socket libpq owns
    }

    PGconn* get() const noexcept { return conn.get(); }

    /// Waits on `fd` from now on (libpq may have replaced its socket, even
    /// under the same number: the registration is made afresh).
    void rebind(int fd) {
        release();
        socket.assign(fd);
    }

    /// Stops using it: pending waits end with operation_aborted, and the
    /// code awaiting them sees `closing` and throws `reason`.
    void close(std::string why) {
        if (closing) return;
        closing = true;
        reason = std::move(why);
        boost::system::error_code ignored;
        socket.cancel(ignored);
    }

    void release() noexcept {
        if (socket.is_open()) {
            boost::system::error_code ignored;
            socket.cancel(ignored);
            socket.release();
        }
    }

    connection_ptr conn;
    boost::asio::posix::stream_descriptor socket;
    bool closing = false;
    std::string reason;
};

/// Throws backend_unavailable with the reason the link was closed for.
inline void throw_if_closing(const link& l) {
    if (l.closing) throw_error(error::backend_unavailable, l.reason);
}

/// The addresses to hand libpq for cfg.host: none for a unix socket, a
/// literal address or libpq's default host; else what the resolver found
/// (at most eight, in its order, without repeats).
inline boost::asio::awaitable<std::vector<std::string>> resolve_host(tcp::resolver& resolver,
                                                                     const connection_options& cfg) {
    std::vector<std::string> out;
    if (cfg.host.empty() || cfg.is_unix_socket()) co_return out;
    boost::system::error_code ec;
    boost::asio::ip::make_address(cfg.host, ec);
    if (!ec) co_return out;  // an address already
    auto results = co_await resolver.async_resolve(cfg.host, std::to_string(cfg.port), boost::asio::use_awaitable);
    for (const auto& entry : results) {
        std::string a = entry.endpoint().address().to_string();
        if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(std::move(a));
        if (out.size() == 8) break;
    }
    co_return out;
}

/// Opens `l` (resolve, PQconnectStartParams, PQconnectPoll until done),
/// as `steps` decides; throws backend_unavailable naming the reason. The
/// caller's timer enforces steps.deadline() by closing the link (and
/// cancelling the resolver).
inline boost::asio::awaitable<void> open_link(link& l, tcp::resolver& resolver, const connection_options& cfg,
                                              connect_steps& steps) {
    std::vector<std::string> addresses;
    {
        boost::system::error_code ec;
        try {
            addresses = co_await resolve_host(resolver, cfg);
        } catch (const boost::system::system_error& e) {
            ec = e.code();
        }
        throw_if_closing(l);
        if (ec) throw_error(error::backend_unavailable, "cannot resolve '" + cfg.host + "': " + ec.message());
    }
    const conninfo info(cfg, addresses);
    l.conn.reset(PQconnectStartParams(info.keywords(), info.values(), 0));
    if (!l.conn) throw_error(error::backend_unavailable, steps.refused("out of memory").failure);
    PQsetNoticeProcessor(l.get(), &ignore_notice, nullptr);
    connect_action a;
    if (PQstatus(l.get()) == CONNECTION_BAD)
        a = steps.refused(PQerrorMessage(l.get()));
    else
        a = steps.step(poll_status::writing, PQsocket(l.get()), "", clock_type::now());
    for (;;) {
        switch (a.what) {
        case connect_action::kind::connected: co_return;
        case connect_action::kind::failed: throw_error(error::backend_unavailable, a.failure);
        case connect_action::kind::wait_read:
        case connect_action::kind::wait_write: break;
        }
        l.rebind(a.socket);
        boost::system::error_code ec;
        co_await l.socket.async_wait(a.what == connect_action::kind::wait_read
                                         ? boost::asio::posix::stream_descriptor::wait_read
                                         : boost::asio::posix::stream_descriptor::wait_write,
                                     boost::asio::redirect_error(boost::asio::use_awaitable, ec));
        throw_if_closing(l);
        if (ec) throw_error(error::backend_unavailable, "waiting on the socket: " + ec.message());
        const auto status = to_poll_status(PQconnectPoll(l.get()));
        a = steps.step(status, PQsocket(l.get()), PQerrorMessage(l.get()), clock_type::now());
    }
}

}  // namespace sessionkit::postgres::detail

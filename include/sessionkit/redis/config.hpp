// sessionkit/redis/config.hpp — where a Redis server is and how to talk to
// it, parsed from a URL:
//
//   redis://[[user]:password@]host[:port][/db]     plain TCP (port 6379)
//   rediss://[[user]:password@]host[:port][/db]    TLS through asio::ssl
//   unix://[[user]:password@]/path/to/redis.sock[?db=N]
//
// TLS options ride in the query: `?insecure=true` skips certificate
// verification (test servers with self-signed certificates), `?ca=/path`
// trusts that CA file instead of the system store, `?sni=name` verifies and
// sends that host name. Every timeout is a field here, never infinite.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace sessionkit::redis {

struct connection_options {
    enum class transport : std::uint8_t { tcp, tls, unix_socket };

    transport via = transport::tcp;
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string socket_path;  ///< unix_socket only
    std::string user;         ///< empty: "default" when a password is set
    std::string password;     ///< empty: no AUTH
    int db = 0;

    bool tls_verify = true;   ///< rediss: verify the server's certificate and name
    std::string tls_ca_file;  ///< rediss: trust this CA file (empty: the system store)
    std::string tls_sni;      ///< rediss: name to send and verify (empty: host)

    /// Every request fails with error::timeout when its reply has not come
    /// back within this time.
    milliseconds request_timeout{2000};
    /// Connecting and the handshake (TLS, HELLO, AUTH, SELECT) together.
    milliseconds connect_timeout{2000};
    /// A link with requests in flight and nothing received for this long is
    /// considered dead and reconnected (0: 2 x request_timeout).
    milliseconds stall_timeout{0};
    /// An idle link sends PING this often, so a dead peer is noticed
    /// without traffic (0: never).
    milliseconds health_check_interval{5000};
    /// Reconnect backoff: doubles from min to max, with jitter.
    milliseconds reconnect_min{50};
    milliseconds reconnect_max{1000};
    /// CLIENT SETNAME (visible in CLIENT LIST); empty: not set.
    std::string client_name = "sessionkit";

    /// "redis://127.0.0.1:6379/0" without the password: for errors and logs.
    std::string describe() const {
        switch (via) {
        case transport::unix_socket: return "unix://" + socket_path + (db ? "?db=" + std::to_string(db) : "");
        case transport::tls: return "rediss://" + host + ":" + std::to_string(port) + "/" + std::to_string(db);
        case transport::tcp: break;
        }
        return "redis://" + host + ":" + std::to_string(port) + "/" + std::to_string(db);
    }

    milliseconds effective_stall_timeout() const noexcept {
        return stall_timeout > milliseconds::zero() ? stall_timeout : 2 * request_timeout;
    }

    /// Parses a redis://, rediss:// or unix:// URL. Throws invalid_argument
    /// naming the URL (password masked) and what is wrong with it.
    static connection_options from_url(std::string_view url);
};

namespace detail {

/// The URL with any password replaced by "***", for error messages.
inline std::string masked_url(std::string_view url) {
    auto at = url.find('@');
    auto scheme_end = url.find("://");
    if (at == std::string_view::npos || scheme_end == std::string_view::npos || at < scheme_end)
        return sessionkit::detail::printable(url);
    auto colon = url.substr(0, at).find(':', scheme_end + 3);
    if (colon == std::string_view::npos) return sessionkit::detail::printable(url);
    return sessionkit::detail::printable(std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at)));
}

[[noreturn]] inline void bad_url(std::string_view url, const std::string& why) {
    throw_error(error::invalid_argument, "redis URL '" + masked_url(url) + "': " + why);
}

inline int parse_db(std::string_view url, std::string_view text) {
    int db = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), db);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || db < 0 || db > 1'000'000)
        bad_url(url, "database '" + sessionkit::detail::printable(text) + "' is not a number 0..1000000");
    return db;
}

inline bool parse_flag(std::string_view url, std::string_view key, std::string_view v) {
    if (v == "true" || v == "1" || v == "yes") return true;
    if (v == "false" || v == "0" || v == "no") return false;
    bad_url(url,
            "query '" + std::string(key) + "' must be true or false, got '" + sessionkit::detail::printable(v) + "'");
}

}  // namespace detail

inline connection_options connection_options::from_url(std::string_view url) {
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) detail::bad_url(url, "not a URL (" + parsed.error().message() + ")");
    const boost::urls::url_view u = *parsed;
    connection_options c;
    const std::string scheme = u.scheme();
    if (scheme == "redis")
        c.via = transport::tcp;
    else if (scheme == "rediss")
        c.via = transport::tls;
    else if (scheme == "unix")
        c.via = transport::unix_socket;
    else
        detail::bad_url(url, "scheme '" + sessionkit::detail::printable(scheme) + "' is not redis, rediss or unix");

    if (u.has_userinfo()) {
        c.user = u.user();
        if (u.has_password())
            c.password = u.password();
        else if (!c.user.empty()) {
            // redis://secret@host is the common shorthand for a password.
            c.password = std::move(c.user);
            c.user.clear();
        }
    }
    for (auto param : u.params()) {
        if (param.key == "db")
            c.db = detail::parse_db(url, param.value);
        else if (param.key == "insecure")
            c.tls_verify = !detail::parse_flag(url, param.key, param.value);
        else if (param.key == "ca")
            c.tls_ca_file = param.value;
        else if (param.key == "sni")
            c.tls_sni = param.value;
        else
            detail::bad_url(url, "unknown query parameter '" + sessionkit::detail::printable(param.key) +
                                     "' (known: db, insecure, ca, sni)");
    }
    if (c.via == transport::unix_socket) {
        c.socket_path = u.path();
        if (c.socket_path.empty() || c.socket_path.front() != '/')
            detail::bad_url(url, "a unix URL needs an absolute socket path, as in unix:///run/redis.sock");
        if (u.has_authority() && !u.host().empty())
            detail::bad_url(url, "a unix URL has no host (write unix:///path, three slashes)");
        return c;
    }
    c.host = u.host();
    if (c.host.size() >= 2 && c.host.front() == '[' && c.host.back() == ']')
        c.host = c.host.substr(1, c.host.size() - 2);
    if (c.host.empty()) detail::bad_url(url, "no host");
    if (u.has_port()) {
        const std::string_view p = u.port();
        unsigned port = 0;
        auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
        if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || port == 0 || port > 65535)
            detail::bad_url(url, "port '" + sessionkit::detail::printable(p) + "' is not 1..65535");
        c.port = static_cast<std::uint16_t>(port);
    }
    std::string_view path = u.encoded_path();
    if (!path.empty() && path != "/") {
        if (path.front() == '/') path.remove_prefix(1);
        c.db = detail::parse_db(url, path);
    }
    return c;
}

}  // namespace sessionkit::redis

// sessionkit/postgres/config.hpp — where a PostgreSQL server is and how to
// talk to it, parsed from a URL (libpq's own form):
//
//   postgres[ql]://[user[:password]@][host][:port][/dbname][?param=value&...]
//
// The host may be a name, an address ([::1] for IPv6) or, percent-encoded,
// the directory of a unix socket (postgresql://%2Frun%2Fpostgresql/db); the
// `host` query parameter does the same (postgresql:///db?host=/run/postgresql).
// libpq's own parameters ride in the query and are handed to it (sslmode,
// sslrootcert, options, ...): TLS is libpq's. Ours are the pool size and the
// timeouts; every timeout is a field here, never infinite.
//
// Pure: no libpq, no I/O. A URL we cannot use is error::invalid_argument
// naming the field and the URL, its password masked.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/detail/text.hpp>
#include <sessionkit/error.hpp>

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sessionkit::postgres {

struct connection_options {
    /// A host name or address, or a unix socket's directory (starts with
    /// '/'). Empty: libpq's default (PGHOST, else its compiled-in socket
    /// directory).
    std::string host = "127.0.0.1";
    std::uint16_t port = 5432;
    std::string user;      ///< empty: libpq's default (PGUSER, else the OS user)
    std::string password;  ///< empty: none, or libpq's (PGPASSWORD, ~/.pgpass)
    std::string dbname;    ///< empty: libpq's default (PGDATABASE, else the user)
    std::string sslmode;   ///< empty: libpq's default (prefer)
    /// Other libpq connection parameters from the URL's query (sslrootcert,
    /// options, keepalives, ...), handed over as they are.
    std::vector<std::pair<std::string, std::string>> libpq_parameters;

    /// Pipelined connections in a postgres::pool.
    std::size_t pool_size = 4;
    /// Resolving, connecting, TLS, authentication and the setup of a new
    /// connection (statement_timeout, PREPARE) together.
    milliseconds connect_timeout{5000};
    /// The client's deadline for every operation: when it passes, the
    /// operation fails with error::timeout and its connection is dropped
    /// (libpq 15 cannot cancel a query without blocking).
    milliseconds request_timeout{5000};
    /// The server's limit for one statement (SET statement_timeout at
    /// connect). Unset: four fifths of request_timeout, so that the server
    /// gives up first and the connection survives; 0: the server's default.
    std::optional<milliseconds> statement_timeout;
    /// An idle connection sends an empty Sync this often, so that a dead
    /// peer is noticed without traffic (0: never).
    milliseconds health_check_interval{5000};
    /// Reconnect backoff: doubles from min to max, with jitter.
    milliseconds reconnect_min{50};
    milliseconds reconnect_max{2000};
    /// application_name (visible in pg_stat_activity); empty: not set.
    std::string application_name = "sessionkit";

    bool is_unix_socket() const noexcept { return !host.empty() && host.front() == '/'; }

    milliseconds effective_statement_timeout() const noexcept {
        return statement_timeout ? *statement_timeout : request_timeout * 4 / 5;
    }

    /// "postgresql://user@host:port/db" without the password: for errors and logs.
    std::string describe() const {
        std::string out = "postgresql://";
        if (!user.empty()) out += sessionkit::detail::printable(user) + "@";
        if (is_unix_socket()) {
            out += "/" + sessionkit::detail::printable(dbname) + "?host=" + sessionkit::detail::printable(host);
            if (port != 5432) out += "&port=" + std::to_string(port);
            return out;
        }
        if (host.find(':') != std::string::npos)
            out += "[" + host + "]";
        else
            out += sessionkit::detail::printable(host);
        out += ":" + std::to_string(port) + "/" + sessionkit::detail::printable(dbname);
        return out;
    }

    /// Parses a postgres:// or postgresql:// URL. Throws invalid_argument
    /// naming the URL (password masked) and the field that is wrong.
    static connection_options from_url(std::string_view url);

    /// The URL in environment variable `variable` (DATABASE_URL by default).
    /// Throws invalid_argument naming the variable when it is unset or empty.
    static connection_options from_env(const char* variable = "DATABASE_URL");
};

namespace detail {

/// libpq parameters a URL may carry that we hand over without reading them.
inline constexpr std::array<std::string_view, 24> passthrough_parameters{"sslrootcert",
                                                                         "sslcert",
                                                                         "sslkey",
                                                                         "sslcrl",
                                                                         "sslcrldir",
                                                                         "sslsni",
                                                                         "sslpassword",
                                                                         "sslcompression",
                                                                         "ssl_min_protocol_version",
                                                                         "ssl_max_protocol_version",
                                                                         "requirepeer",
                                                                         "gssencmode",
                                                                         "krbsrvname",
                                                                         "gsslib",
                                                                         "channel_binding",
                                                                         "target_session_attrs",
                                                                         "options",
                                                                         "keepalives",
                                                                         "keepalives_idle",
                                                                         "keepalives_interval",
                                                                         "keepalives_count",
                                                                         "tcp_user_timeout",
                                                                         "passfile",
                                                                         "service"};

inline constexpr std::array<std::string_view, 6> sslmodes{"disable", "allow",     "prefer",
                                                          "require", "verify-ca", "verify-full"};

/// The URL with its passwords replaced by "***" (the one before '@' and
/// any password= or sslpassword= in the query), printable, for messages.
inline std::string masked_url(std::string_view url) {
    std::string out(url);
    const auto scheme_end = out.find("://");
    const auto authority_end =
        std::min(out.find_first_of("/?#", scheme_end == std::string::npos ? 0 : scheme_end + 3), out.size());
    if (scheme_end != std::string::npos) {
        const auto at = out.rfind('@', authority_end);
        if (at != std::string::npos && at > scheme_end) {
            const auto colon = out.find(':', scheme_end + 3);
            if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
        }
    }
    for (std::string_view key : {"password=", "sslpassword="}) {
        auto from = out.find('?');
        while (from != std::string::npos) {
            const auto pos = out.find(key, from);
            if (pos == std::string::npos) break;
            const bool starts_param = pos > 0 && (out[pos - 1] == '?' || out[pos - 1] == '&');
            const auto value = pos + key.size();
            const auto end = std::min(out.find_first_of("&#", value), out.size());
            if (starts_param) out.replace(value, end - value, "***");
            from = starts_param ? value + 3 : pos + 1;
        }
    }
    return sessionkit::detail::printable(out, 400);
}

[[noreturn]] inline void bad_url(std::string_view url, const std::string& why) {
    throw_error(error::invalid_argument, "postgres URL '" + masked_url(url) + "': " + why);
}

/// "500", "500ms", "5s", "2min" as milliseconds; a bare number is in
/// `bare_unit` (PostgreSQL's statement_timeout: ms; libpq's
/// connect_timeout: s). Throws naming `field`.
inline milliseconds parse_duration(std::string_view url, std::string_view field, std::string_view text,
                                   milliseconds bare_unit) {
    std::int64_t n = 0;
    const char* end = text.data() + text.size();
    auto [stop, ec] = std::from_chars(text.data(), end, n);
    const std::string_view unit(stop, static_cast<std::size_t>(end - stop));
    milliseconds scale{0};
    if (unit.empty())
        scale = bare_unit;
    else if (unit == "ms")
        scale = milliseconds{1};
    else if (unit == "s")
        scale = milliseconds{1000};
    else if (unit == "min")
        scale = milliseconds{60'000};
    constexpr std::int64_t limit = 24LL * 3600 * 1000;  // a day: anything longer is a mistake
    if (text.empty() || ec != std::errc{} || stop == text.data() || scale.count() == 0 || n < 0 ||
        n > limit / scale.count())
        bad_url(url, std::string(field) + " '" + sessionkit::detail::printable(text) +
                         "' is not a duration of at most a day (a number with ms, s or min; a bare number is " +
                         (bare_unit.count() == 1 ? "ms" : "s") + ")");
    return n * scale;
}

inline std::uint16_t parse_port(std::string_view url, std::string_view text) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || port == 0 || port > 65535)
        bad_url(url, "port '" + sessionkit::detail::printable(text) + "' is not 1..65535");
    return static_cast<std::uint16_t>(port);
}

inline std::size_t parse_pool_size(std::string_view url, std::string_view text) {
    unsigned n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || n == 0 || n > 256)
        bad_url(url, "pool_size '" + sessionkit::detail::printable(text) + "' is not 1..256");
    return n;
}

/// A host as libpq takes it; a unix socket directory must be absolute.
inline std::string checked_host(std::string_view url, std::string host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.find(',') != std::string::npos)
        bad_url(url, "host '" + sessionkit::detail::printable(host) + "' lists several hosts (not supported)");
    if (host.find('\0') != std::string::npos) bad_url(url, "host contains a NUL byte");
    return host;
}

inline void check_text(std::string_view url, std::string_view field, const std::string& value) {
    if (value.find('\0') != std::string::npos) bad_url(url, std::string(field) + " contains a NUL byte");
}

}  // namespace detail

inline connection_options connection_options::from_url(std::string_view url) {
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) detail::bad_url(url, "not a URL (" + parsed.error().message() + ")");
    const boost::urls::url_view u = *parsed;
    const std::string scheme = u.scheme();
    if (scheme != "postgres" && scheme != "postgresql")
        detail::bad_url(url, "scheme '" + sessionkit::detail::printable(scheme) + "' is not postgres or postgresql");
    if (!u.has_authority())
        detail::bad_url(url, "no '//' after the scheme (write postgresql://host/db or postgresql:///db?host=/dir)");

    connection_options c;
    if (u.has_userinfo()) {
        c.user = u.user();
        if (u.has_password()) c.password = u.password();
    }
    c.host = detail::checked_host(url, u.host());
    if (u.has_port()) c.port = detail::parse_port(url, u.port());

    std::string_view path = u.encoded_path();
    if (!path.empty()) {
        path.remove_prefix(1);  // the '/' before the database name
        if (path.find('/') != std::string_view::npos)
            detail::bad_url(url, "database name '" + sessionkit::detail::printable(path) +
                                     "' contains '/' (percent-encode it as %2F)");
        c.dbname = boost::urls::pct_string_view(path).decode();
    }

    for (auto param : u.params()) {
        const std::string& key = param.key;
        const std::string& value = param.value;
        if (!param.has_value && key.empty()) continue;  // "?" or "&&"
        if (key == "host") {
            c.host = detail::checked_host(url, value);
        } else if (key == "port") {
            c.port = detail::parse_port(url, value);
        } else if (key == "user") {
            c.user = value;
        } else if (key == "password") {
            c.password = value;
        } else if (key == "dbname") {
            c.dbname = value;
        } else if (key == "sslmode") {
            if (std::find(detail::sslmodes.begin(), detail::sslmodes.end(), value) == detail::sslmodes.end())
                detail::bad_url(url, "sslmode '" + sessionkit::detail::printable(value) +
                                         "' is not disable, allow, prefer, require, verify-ca or verify-full");
            c.sslmode = value;
        } else if (key == "application_name") {
            c.application_name = value;
        } else if (key == "pool_size") {
            c.pool_size = detail::parse_pool_size(url, value);
        } else if (key == "connect_timeout") {
            // libpq's parameter, in seconds when bare; 0 there means "wait
            // forever", which we never do.
            c.connect_timeout = detail::parse_duration(url, key, value, milliseconds{1000});
            if (c.connect_timeout.count() == 0) detail::bad_url(url, "connect_timeout must be more than 0");
        } else if (key == "request_timeout") {
            c.request_timeout = detail::parse_duration(url, key, value, milliseconds{1});
            if (c.request_timeout.count() == 0) detail::bad_url(url, "request_timeout must be more than 0");
        } else if (key == "statement_timeout") {
            c.statement_timeout = detail::parse_duration(url, key, value, milliseconds{1});
        } else if (key == "health_check_interval") {
            c.health_check_interval = detail::parse_duration(url, key, value, milliseconds{1});
        } else if (std::find(detail::passthrough_parameters.begin(), detail::passthrough_parameters.end(), key) !=
                   detail::passthrough_parameters.end()) {
            c.libpq_parameters.emplace_back(key, value);
        } else {
            detail::bad_url(url, "unknown query parameter '" + sessionkit::detail::printable(key) +
                                     "' (ours: pool_size, connect_timeout, request_timeout, statement_timeout, "
                                     "health_check_interval, application_name; libpq's: host, port, user, "
                                     "password, dbname, sslmode, sslrootcert, options, ...)");
        }
    }
    if (!c.host.empty() && c.host.front() != '/' && c.host.find('/') != std::string::npos)
        detail::bad_url(url, "host '" + sessionkit::detail::printable(c.host) +
                                 "' is neither a host name nor an absolute socket directory");
    for (const auto& [field, value] : {std::pair<std::string_view, const std::string&>{"user", c.user},
                                       {"password", c.password},
                                       {"dbname", c.dbname},
                                       {"application_name", c.application_name}})
        detail::check_text(url, field, value);
    if (c.statement_timeout && *c.statement_timeout > milliseconds::zero() && *c.statement_timeout >= c.request_timeout)
        detail::bad_url(url, "statement_timeout (" + std::to_string(c.statement_timeout->count()) +
                                 " ms) must be shorter than request_timeout (" +
                                 std::to_string(c.request_timeout.count()) +
                                 " ms): the server must give up before the client drops the connection");
    return c;
}

inline connection_options connection_options::from_env(const char* variable) {
    const char* url = std::getenv(variable);
    if (!url || !*url)
        throw_error(error::invalid_argument,
                    std::string("postgres: environment variable ") + variable + " is not set (a postgresql:// URL)");
    return from_url(url);
}

}  // namespace sessionkit::postgres

// sessionkit/sink/nats/options.hpp — what nats_sink connects to and how it
// publishes, and the checks that turn a bad option into
// error::invalid_argument naming the option and its value. Pure: no nats.c,
// no I/O (sessiond parses its flags with it; the unit tests check it
// without a server). doc/events.md#nats-jetstream tables every option.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/event.hpp>
#include <sessionkit/sink/nats/detail/subject.hpp>

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace sessionkit {

/// One server of nats_sink_options::url.
struct nats_server_url {
    bool tls = false;      ///< tls://
    std::string user;      ///< before ':' in user:pass@ (alone: a token, as nats.c reads it)
    std::string password;  ///< after it
    std::string host;      ///< a name, an IPv4 address, or an IPv6 one in brackets
    std::uint16_t port = 4222;
    std::string text;  ///< the entry as given (what nats.c is handed)

    /// "nats://host:port" without credentials: for errors and logs.
    std::string describe() const { return (tls ? "tls://" : "nats://") + host + ":" + std::to_string(port); }
};

struct nats_sink_options {
    /// nats://[user:pass@]host[:port] (port 4222 by default), tls:// for
    /// TLS; several servers separated by commas (one scheme for all).
    std::string url = "nats://127.0.0.1:4222";
    /// An authentication token (not with credentials in the URL or a
    /// credentials file).
    std::string token;
    /// A .creds file (JWT and NKey seed), for servers with decentralised auth.
    std::string credentials_file;
    /// A PEM file of CA certificates to verify the servers' certificates
    /// with (empty: the system's).
    std::string tls_ca_file;
    /// The JetStream stream; created when missing, verified when present.
    std::string stream = "SESSIONS";
    /// The stream's subjects; must take in every subject the sink publishes.
    std::vector<std::string> subjects{"sessions.>"};
    /// Events go to <subject_prefix>.<type>.<encoded session id>.
    std::string subject_prefix = "sessions";
    /// The stream's duplicate window: a message whose Nats-Msg-Id (the event
    /// id) the stream saw within it is acknowledged and not stored again.
    /// At least 2 minutes, so a relay's retries stay inside it.
    milliseconds duplicate_window{120'000};
    /// Messages handed to nats.c and not yet acknowledged, at most (our own
    /// cap: nats.c would stall the publishing thread past its own).
    std::size_t max_in_flight = 1024;
    /// A message not acknowledged within this time fails its batch with
    /// error::timeout.
    milliseconds ack_deadline{5'000};
    /// Where permanently refused events are written, one JSON line each
    /// (empty: none; they are logged and counted only).
    std::string dead_letter_file;
    /// Connecting to one server, and each JetStream API request (stream
    /// lookup and creation).
    milliseconds connect_timeout{2'000};
    /// On close, how long acknowledgements of what is in flight are waited for.
    milliseconds drain_timeout{2'000};
    /// Where the sink reports connection changes and dead letters (default: stderr).
    std::function<void(std::string_view)> log;
};

namespace detail::nats {

inline constexpr milliseconds min_duplicate_window{120'000};
inline constexpr std::size_t max_in_flight_limit = 65'536;
inline constexpr milliseconds max_timeout{86'400'000};  // a day

/// The URL for a message: every user:pass@ (or token@) shown as ***@.
inline std::string masked_url(std::string_view url) {
    std::string out;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = url.find(',', start);
        std::string_view entry =
            url.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        const std::size_t scheme = entry.find("://");
        const std::size_t at = entry.rfind('@');
        if (at != std::string_view::npos) {
            const std::size_t from = scheme == std::string_view::npos ? 0 : scheme + 3;
            out += entry.substr(0, from);
            out += "***";
            out += entry.substr(at);
        } else {
            out += entry;
        }
        if (comma == std::string_view::npos) return out;
        out += ',';
        start = comma + 1;
    }
}

[[noreturn]] inline void bad_option(std::string_view field, std::string_view shown, std::string_view why) {
    throw_error(error::invalid_argument,
                "nats_sink option " + std::string(field) + " = " + std::string(shown) + ": " + std::string(why));
}

/// Text for a message, in single quotes, made printable.
inline std::string shown(std::string_view s) { return "'" + printable(s) + "'"; }

inline std::string trimmed(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return std::string(s);
}

}  // namespace detail::nats

/// The servers of a nats_sink_options::url. Throws error::invalid_argument
/// naming the option and the URL (credentials masked) and what is wrong.
inline std::vector<nats_server_url> parse_nats_url(std::string_view url) {
    using namespace detail::nats;
    const std::string whole = shown(masked_url(url));
    auto fail = [&](const std::string& why) { bad_option("url", whole, why); };
    std::vector<nats_server_url> servers;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = url.find(',', start);
        const std::string entry =
            trimmed(url.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
        if (entry.empty()) fail(url.empty() ? "no server given" : "an empty server in the list");
        nats_server_url s;
        s.text = entry;
        std::string_view rest = entry;
        if (rest.starts_with("nats://")) {
            rest.remove_prefix(7);
        } else if (rest.starts_with("tls://")) {
            s.tls = true;
            rest.remove_prefix(6);
        } else {
            const std::size_t sep = rest.find("://");
            fail(sep == std::string_view::npos
                     ? "server " + shown(masked_url(entry)) + " has no scheme (nats:// or tls://)"
                     : "scheme " + shown(rest.substr(0, sep)) + " is not nats:// or tls://");
        }
        if (const std::size_t at = rest.rfind('@'); at != std::string_view::npos) {
            const std::string_view info = rest.substr(0, at);
            const std::size_t colon = info.find(':');
            s.user = std::string(info.substr(0, colon));
            if (colon != std::string_view::npos) s.password = std::string(info.substr(colon + 1));
            if (s.user.empty() && s.password.empty()) fail("empty credentials before '@'");
            rest.remove_prefix(at + 1);
        }
        for (char ch : rest)
            if (ch == '/' || ch == '?' || ch == '#' || static_cast<unsigned char>(ch) <= 0x20)
                fail("server " + shown(masked_url(entry)) + " has a path, a query or a space (only host[:port])");
        std::size_t colon = std::string_view::npos;  // before the port, if any
        if (rest.starts_with('[')) {                 // [IPv6]
            const std::size_t close = rest.find(']');
            if (close == std::string_view::npos) fail("an IPv6 address without its ']'");
            s.host = std::string(rest.substr(0, close + 1));
            if (close + 1 < rest.size()) {
                if (rest[close + 1] != ':') fail("text after the IPv6 address " + shown(s.host));
                colon = close + 1;
            }
        } else {
            colon = rest.find(':');
            s.host = std::string(rest.substr(0, colon));
        }
        if (s.host.empty() || s.host == "[]") fail("server " + shown(masked_url(entry)) + " has no host");
        if (colon != std::string_view::npos) {
            const std::string_view port = rest.substr(colon + 1);
            unsigned value = 0;
            auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
            if (ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535)
                fail("port " + shown(port) + " is not a number from 1 to 65535");
            s.port = static_cast<std::uint16_t>(value);
        }
        if (!servers.empty() && servers.front().tls != s.tls) fail("mixes nats:// and tls:// servers");
        servers.push_back(std::move(s));
        if (comma == std::string_view::npos) return servers;
        start = comma + 1;
    }
}

/// "nats://a:4222,nats://b:4222": the servers without credentials.
inline std::string describe_servers(const std::vector<nats_server_url>& servers) {
    std::string out;
    for (const auto& s : servers) {
        if (!out.empty()) out += ',';
        out += s.describe();
    }
    return out;
}

/// Checks every option (no file is opened: whether the files exist is
/// checked when the sink connects). Throws error::invalid_argument naming
/// the first bad option, its value and what is wrong with it.
inline void validate(const nats_sink_options& o) {
    using namespace detail::nats;
    const auto servers = parse_nats_url(o.url);
    bool url_credentials = false;
    for (const auto& s : servers) url_credentials = url_credentials || !s.user.empty() || !s.password.empty();
    for (char ch : o.token)
        if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f)
            bad_option("token", "(hidden)", "holds white space or a control character");
    if (!o.token.empty() && url_credentials)
        bad_option("token", "(hidden)", "the url " + shown(masked_url(o.url)) + " carries credentials too: give one");
    if (!o.credentials_file.empty() && (url_credentials || !o.token.empty()))
        bad_option("credentials_file", shown(o.credentials_file),
                   "credentials are given in the url or as a token too: give one");
    if (!valid_stream_name(o.stream))
        bad_option("stream", shown(o.stream),
                   "a stream name is 1 to 255 printable characters without space, '.', '*', '>', '/' or '\\'");
    if (o.subjects.empty()) bad_option("subjects", "[]", "the stream needs at least one subject");
    for (const auto& s : o.subjects)
        if (!valid_subject(s, true))
            bad_option("subjects", shown(s),
                       "not a subject (non-empty tokens separated by '.', '*' as a whole token, '>' last)");
    if (!valid_subject(o.subject_prefix, false))
        bad_option("subject_prefix", shown(o.subject_prefix),
                   "not a subject without wildcards (non-empty tokens separated by '.')");
    for (auto type : all_event_types) {
        const std::string sample = o.subject_prefix + "." + std::string(to_string(type)) + ".id";
        bool taken = false;
        for (const auto& s : o.subjects) taken = taken || subject_matches(s, sample);
        if (!taken)
            bad_option("subjects", shown(o.subjects.front() + (o.subjects.size() > 1 ? ",..." : "")),
                       "the stream would not take in " +
                           shown(o.subject_prefix + "." + std::string(to_string(type)) + ".<id>") +
                           " (subject_prefix " + shown(o.subject_prefix) + ")");
    }
    auto ms = [](milliseconds d) { return std::to_string(d.count()) + " ms"; };
    if (o.duplicate_window < min_duplicate_window || o.duplicate_window > max_duration)
        bad_option("duplicate_window", ms(o.duplicate_window),
                   "must be at least 120000 ms (2 minutes), so that a retried batch is still de-duplicated");
    if (o.max_in_flight < 1 || o.max_in_flight > max_in_flight_limit)
        bad_option("max_in_flight", std::to_string(o.max_in_flight), "must be from 1 to 65536");
    if (o.ack_deadline < milliseconds{1} || o.ack_deadline > max_timeout)
        bad_option("ack_deadline", ms(o.ack_deadline), "must be from 1 ms to a day");
    if (o.connect_timeout < milliseconds{1} || o.connect_timeout > max_timeout)
        bad_option("connect_timeout", ms(o.connect_timeout), "must be from 1 ms to a day");
    if (o.drain_timeout < milliseconds{0} || o.drain_timeout > max_timeout)
        bad_option("drain_timeout", ms(o.drain_timeout), "must be from 0 to a day");
    if (o.dead_letter_file.find('\0') != std::string::npos)
        bad_option("dead_letter_file", shown(o.dead_letter_file), "holds a NUL byte");
}

}  // namespace sessionkit

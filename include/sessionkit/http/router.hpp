// sessionkit/http/router.hpp — the HTTP JSON API's routing and request
// validation, sans I/O: a parsed request in, either a typed command or an
// api_error out. No socket, no registry: unit tests and the fuzzer drive it
// directly, and http/handler.hpp executes what it returns.
//
// Routes (doc/sessiond.md has every field and status):
//   POST   /api/v1/sessions                 create (acquire semantics)
//   GET    /api/v1/sessions?owner=&status=&limit=&cursor=
//   GET    /api/v1/sessions/stats
//   GET    /api/v1/sessions/{id}
//   PATCH  /api/v1/sessions/{id}            status, attributes; If-Match: version
//   DELETE /api/v1/sessions/{id}?reason=
//   POST   /api/v1/sessions/{id}/touch
//   POST   /api/v1/sessions/{id}/input
//   GET    /api/v1/sessions/{id}/output?from=
//   GET    /healthz, GET /metrics            (no token needed)
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/registry_types.hpp>
#include <sessionkit/status.hpp>
#include <sessionkit/store_types.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <unordered_set>
#include <variant>
#include <vector>

namespace sessionkit::http_api {

namespace http = boost::beast::http;
using request = http::request<http::string_body>;

/// Which endpoint a request reached: the label of its metrics.
enum class route_id : std::uint8_t {
    create, list, stats, get, patch, remove, touch, input, output, healthz, metrics, unknown
};

constexpr std::string_view to_string(route_id r) noexcept {
    constexpr std::array<std::string_view, 12> names = {
        "create", "list", "stats", "get", "patch", "delete", "touch", "input", "output",
        "healthz", "metrics", "unknown"};
    return names[static_cast<std::size_t>(r)];
}

inline std::ostream& operator<<(std::ostream& os, route_id r) { return os << to_string(r); }

/// A request the API refuses, with the status and a message naming what
/// was wrong. Rendered as {"error": code, "message": message}.
struct api_error {
    unsigned status = 400;
    std::string code;
    std::string message;
    std::string allow;  ///< for 405: the methods the path accepts
};

struct create_cmd {
    std::optional<std::string> id;
    acquire_options options;
};
struct list_cmd { list_query query; };
struct stats_cmd {};
struct get_cmd { std::string id; };
struct patch_cmd {
    std::string id;
    std::optional<session_status> status;
    /// RFC 7386 merge patch applied to the attributes (null removes a key).
    std::optional<boost::json::object> attributes;
    std::optional<std::uint64_t> if_match;
};
struct delete_cmd { std::string id; std::string reason; };
struct touch_cmd { std::string id; };
struct input_cmd { std::string id; std::string data; };
struct output_cmd { std::string id; std::uint64_t from = 0; };
struct health_cmd {};
struct metrics_cmd {};

using command = std::variant<create_cmd, list_cmd, stats_cmd, get_cmd, patch_cmd, delete_cmd, touch_cmd,
                             input_cmd, output_cmd, health_cmd, metrics_cmd>;

struct routed {
    route_id route = route_id::unknown;
    command cmd;
};

struct router_config {
    /// When set, /api/ requests need "Authorization: Bearer <token>".
    std::string token;
};

/// Longer than any cursor a store issues (an id of at most 128 bytes and a
/// check); a longer one is refused before it reaches the store.
inline constexpr std::size_t max_cursor_size = 256;

namespace detail {

inline api_error bad(std::string code, std::string message, unsigned status = 400) {
    return api_error{status, std::move(code), std::move(message), {}};
}

// Compares in time independent of where the strings differ.
inline bool same_secret(std::string_view a, std::string_view b) noexcept {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
    return diff == 0;
}

inline std::optional<std::uint64_t> parse_u64(std::string_view s) {
    std::uint64_t v = 0;
    if (s.empty()) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

inline std::variant<std::string, api_error> checked_id(std::string_view id) {
    if (!is_valid_id(id))
        return bad("invalid_id", "session id '" + sessionkit::detail::printable(id) + "' " +
                                     sessionkit::detail::why_invalid(id));
    return std::string(id);
}

// Finds a key that appears twice in one object, at any depth.
// boost::json::parse (1.81 has no option against it) keeps the last value
// of a repeated key, so {"id":"a","id":"b"} would quietly mean "b". A
// handler for boost::json::basic_parser that only watches keys.
class duplicate_key_finder {
public:
    static constexpr std::size_t max_object_size = boost::json::object::max_size();
    static constexpr std::size_t max_array_size = boost::json::array::max_size();
    static constexpr std::size_t max_key_size = boost::json::string::max_size();
    static constexpr std::size_t max_string_size = boost::json::string::max_size();

    std::string duplicate;  ///< the first key seen twice in one object

    bool on_object_begin(boost::json::error_code&) {
        keys_.emplace_back();
        return true;
    }
    bool on_object_end(std::size_t, boost::json::error_code&) {
        keys_.pop_back();
        return true;
    }
    bool on_key_part(boost::json::string_view s, std::size_t, boost::json::error_code&) {
        key_.append(s.data(), s.size());
        return true;
    }
    bool on_key(boost::json::string_view s, std::size_t, boost::json::error_code& ec) {
        key_.append(s.data(), s.size());
        if (!keys_.back().insert(key_).second) {
            duplicate = std::move(key_);
            ec = boost::json::error::syntax;  // stops the parser; `duplicate` says why
            return false;
        }
        key_.clear();
        return true;
    }
    bool on_document_begin(boost::json::error_code&) { return true; }
    bool on_document_end(boost::json::error_code&) { return true; }
    bool on_array_begin(boost::json::error_code&) { return true; }
    bool on_array_end(std::size_t, boost::json::error_code&) { return true; }
    bool on_string_part(boost::json::string_view, std::size_t, boost::json::error_code&) { return true; }
    bool on_string(boost::json::string_view, std::size_t, boost::json::error_code&) { return true; }
    bool on_number_part(boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_int64(std::int64_t, boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_uint64(std::uint64_t, boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_double(double, boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_bool(bool, boost::json::error_code&) { return true; }
    bool on_null(boost::json::error_code&) { return true; }
    bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }

private:
    std::vector<std::unordered_set<std::string>> keys_;  ///< per open object, innermost last
    std::string key_;
};

/// The first key that appears twice in one object of `json` (valid JSON).
inline std::optional<std::string> duplicate_key(std::string_view json, const boost::json::parse_options& opts) {
    boost::json::basic_parser<duplicate_key_finder> p(opts);
    boost::json::error_code ec;
    p.write_some(false, json.data(), json.size(), ec);
    if (p.handler().duplicate.empty()) return std::nullopt;
    return std::move(p.handler().duplicate);
}

// The JSON body as an object: never empty, no key twice in one object.
inline std::variant<boost::json::object, api_error> json_body(const request& req) {
    if (req.body().empty()) return bad("malformed_json", "empty body: expected a JSON object");
    auto type = req[http::field::content_type];
    auto semi = type.find(';');
    std::string_view media = type.substr(0, semi);
    while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
    if (!boost::beast::iequals(media, "application/json"))
        return bad("unsupported_media_type",
                   "Content-Type must be application/json, got '" +
                       sessionkit::detail::printable(std::string_view(type.data(), type.size())) + "'",
                   415);
    boost::system::error_code ec;
    boost::json::parse_options opts;
    opts.max_depth = 32;
    auto v = boost::json::parse(req.body(), ec, {}, opts);
    if (ec) return bad("malformed_json", "the body is not valid JSON: " + ec.message());
    if (!v.is_object()) return bad("malformed_json", "the body must be a JSON object");
    if (auto key = duplicate_key(req.body(), opts))
        return bad("malformed_json", "duplicate key '" + sessionkit::detail::printable(*key) +
                                         "' in the JSON body (a key may appear once per object)");
    return std::move(v.as_object());
}

// What a JSON value is, for messages ("got null").
inline std::string_view kind_of(const boost::json::value& v) noexcept {
    switch (v.kind()) {
    case boost::json::kind::null: return "null";
    case boost::json::kind::bool_: return "a boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_: return "a number";
    case boost::json::kind::string: return "a string";
    case boost::json::kind::array: return "an array";
    case boost::json::kind::object: return "an object";
    }
    return "a JSON value";
}

// null is a value, not "absent": a client that sends {"id":null} has a bug
// to hear about, so a field is given with its type or left out.
inline api_error wrong_type(std::string_view field, std::string_view expected, const boost::json::value& got) {
    return bad("invalid_field", "field '" + std::string(field) + "' must be " + std::string(expected) + ", got " +
                                    std::string(kind_of(got)) +
                                    (got.is_null() ? " (leave the field out for its default)" : ""));
}

// Seconds as a positive whole number no larger than 100 years.
inline std::variant<std::optional<milliseconds>, api_error> seconds_field(const boost::json::object& o,
                                                                        std::string_view field) {
    auto* v = o.if_contains(field);
    if (!v) return std::optional<milliseconds>{};
    std::int64_t s = 0;
    if (v->is_int64()) s = v->get_int64();
    else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) s = static_cast<std::int64_t>(v->get_uint64());
    else return wrong_type(field, "a whole number of seconds", *v);
    const std::int64_t max_s = max_duration.count() / 1000;
    if (s <= 0 || s > max_s)
        return bad("invalid_field", "field '" + std::string(field) + "' must be between 1 and " +
                                        std::to_string(max_s) + " seconds, got " + std::to_string(s));
    return std::optional<milliseconds>{std::chrono::seconds{s}};
}

inline std::variant<routed, api_error> route_create(const request& req) {
    auto body = json_body(req);
    if (auto* e = std::get_if<api_error>(&body)) return std::move(*e);
    auto& o = std::get<boost::json::object>(body);
    create_cmd cmd;
    for (const auto& kv : o) {
        std::string_view k = kv.key();
        if (k != "id" && k != "owner" && k != "attributes" && k != "idle_timeout_s" && k != "max_lifetime_s")
            return bad("invalid_field", "unknown field '" + sessionkit::detail::printable(k) +
                                            "' (expected id, owner, attributes, idle_timeout_s, max_lifetime_s)");
    }
    if (auto* v = o.if_contains("id")) {
        if (!v->is_string()) return wrong_type("id", "a string", *v);
        auto id = checked_id(v->get_string());
        if (auto* e = std::get_if<api_error>(&id)) return std::move(*e);
        if (std::get<std::string>(id) == "stats")
            return bad("invalid_id", "session id 'stats' is reserved: GET /api/v1/sessions/stats is the counts");
        cmd.id = std::move(std::get<std::string>(id));
    }
    if (auto* v = o.if_contains("owner")) {
        if (!v->is_string()) return wrong_type("owner", "a string", *v);
        if (v->get_string().size() > 256) return bad("invalid_field", "field 'owner' is longer than 256 bytes");
        cmd.options.owner = std::string(v->get_string());
    }
    if (auto* v = o.if_contains("attributes")) {
        if (!v->is_object()) return wrong_type("attributes", "an object", *v);
        cmd.options.attributes = v->get_object();
    }
    auto idle = seconds_field(o, "idle_timeout_s");
    if (auto* e = std::get_if<api_error>(&idle)) return std::move(*e);
    cmd.options.idle_timeout = std::get<0>(idle);
    auto life = seconds_field(o, "max_lifetime_s");
    if (auto* e = std::get_if<api_error>(&life)) return std::move(*e);
    cmd.options.max_lifetime = std::get<0>(life);
    return routed{route_id::create, std::move(cmd)};
}

inline std::variant<routed, api_error> route_list(const boost::urls::url_view& url) {
    list_cmd cmd;
    for (auto param : url.params()) {
        const std::string& key = param.key;
        const std::string& value = param.value;
        if (key == "owner") {
            cmd.query.owner = value;
        } else if (key == "status") {
            auto s = parse_status(value);
            if (!s)
                return bad("unknown_status", unknown_status_message(value));
            cmd.query.status = *s;
        } else if (key == "limit") {
            auto n = parse_u64(value);
            if (!n || *n == 0 || *n > max_page_size)
                return bad("invalid_field", "query parameter 'limit' must be a whole number from 1 to " +
                                                std::to_string(max_page_size) + ", got '" +
                                                sessionkit::detail::printable(value) + "'");
            cmd.query.limit = static_cast<std::size_t>(*n);
        } else if (key == "cursor") {
            // Its form is the store's to check (list throws naming it);
            // what no store issues is refused here without echoing it.
            if (value.size() > max_cursor_size ||
                std::any_of(value.begin(), value.end(), [](char ch) { return ch <= ' ' || ch >= 0x7f; }))
                return bad("invalid_field", "query parameter 'cursor' is not a cursor this server issued "
                                            "(pass back next_cursor unchanged)");
            cmd.query.cursor = value;
        } else {
            return bad("invalid_field", "unknown query parameter '" + sessionkit::detail::printable(key) +
                                            "' (expected owner, status, limit, cursor)");
        }
    }
    return routed{route_id::list, std::move(cmd)};
}

inline std::variant<routed, api_error> route_patch(std::string id, const request& req) {
    auto body = json_body(req);
    if (auto* e = std::get_if<api_error>(&body)) return std::move(*e);
    auto& o = std::get<boost::json::object>(body);
    patch_cmd cmd;
    cmd.id = std::move(id);
    for (const auto& kv : o) {
        std::string_view k = kv.key();
        if (k != "status" && k != "attributes")
            return bad("invalid_field", "unknown field '" + sessionkit::detail::printable(k) +
                                            "' (PATCH takes status and attributes)");
    }
    if (auto* v = o.if_contains("status")) {
        if (!v->is_string()) return wrong_type("status", "a string", *v);
        auto s = parse_status(v->get_string());
        if (!s)
            return bad("unknown_status", unknown_status_message(v->get_string()));
        cmd.status = *s;
    }
    if (auto* v = o.if_contains("attributes")) {
        if (!v->is_object()) return wrong_type("attributes", "an object (a merge patch)", *v);
        cmd.attributes = v->get_object();
    }
    if (auto h = req.find(http::field::if_match); h != req.end() && h->value() != "*") {
        std::string_view tag(h->value().data(), h->value().size());
        if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"') tag = tag.substr(1, tag.size() - 2);
        auto v = parse_u64(tag);
        if (!v)
            return bad("invalid_field", "If-Match must be a session version (a whole number), got '" +
                                            sessionkit::detail::printable(tag) + "'");
        cmd.if_match = *v;
    }
    return routed{route_id::patch, std::move(cmd)};
}

inline api_error method_not_allowed(const request& req, std::string_view path, std::string allow) {
    api_error e = bad("method_not_allowed",
                      std::string(req.method_string()) + " is not allowed on " +
                          sessionkit::detail::printable(path) + " (allowed: " + allow + ")",
                      405);
    e.allow = std::move(allow);
    return e;
}

// Endpoints without parameters refuse any, so a typo is not silently ignored.
inline std::optional<api_error> no_params(const boost::urls::url_view& url) {
    for (auto param : url.params())
        return bad("invalid_field", "unknown query parameter '" + sessionkit::detail::printable(param.key) +
                                        "' (this endpoint takes none)");
    return std::nullopt;
}

// A parameter given twice (?limit=1&limit=2) would silently take one of
// its values: refused, whichever endpoint it is.
inline std::optional<api_error> repeated_param(const boost::urls::url_view& url) {
    std::set<std::string> seen;
    for (auto param : url.params())
        if (!seen.insert(param.key).second)
            return bad("invalid_field", "query parameter '" + sessionkit::detail::printable(param.key) +
                                            "' given twice");
    return std::nullopt;
}

inline bool needs_length(const request& req) {
    return req.find(http::field::content_length) == req.end() && !req.chunked();
}

} // namespace detail

namespace detail {

inline std::string_view trimmed(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

} // namespace detail

/// Whether the length of a request's body is certain (RFC 9112 section 6),
/// decided from its headers alone: nothing when it is, otherwise the 400
/// to answer before the connection is closed. A server that guessed would
/// read the rest of the bytes as a request of its own: with
/// "Transfer-Encoding: gzip" a body that says "DELETE /api/v1/sessions/x"
/// is run as that request (request smuggling). Accepted: no body framing at
/// all (no body), one Content-Length, or "Transfer-Encoding: chunked"
/// alone on HTTP/1.1. Called by http_server once the headers are read.
inline std::optional<api_error> framing_error(const http::request_header<>& h) {
    using detail::bad;
    using sessionkit::detail::printable;
    std::size_t lengths = 0;
    std::string_view length;
    bool has_transfer_encoding = false;
    std::string codings;  ///< every Transfer-Encoding field, as one list
    std::vector<std::string_view> coding_list;
    for (const auto& f : h) {
        const std::string_view value(f.value().data(), f.value().size());
        if (f.name() == http::field::content_length) {
            ++lengths;
            length = value;
        } else if (f.name() == http::field::transfer_encoding) {
            has_transfer_encoding = true;
            if (!codings.empty()) codings += ", ";
            codings += value;
            for (std::size_t at = 0; at <= value.size();) {
                auto comma = std::min(value.find(',', at), value.size());
                if (auto coding = detail::trimmed(value.substr(at, comma - at)); !coding.empty())
                    coding_list.push_back(coding);
                at = comma + 1;
            }
        }
    }
    if (has_transfer_encoding) {
        if (h.version() < 11)
            return bad("bad_request", "Transfer-Encoding in an HTTP/1.0 request: its body length cannot be trusted");
        if (lengths > 0)
            return bad("bad_request", "both Transfer-Encoding and Content-Length: the body length is ambiguous");
        if (coding_list.empty() || !boost::beast::iequals(coding_list.back(), "chunked"))
            return bad("bad_request", "Transfer-Encoding '" + printable(codings) +
                                          "': the last coding must be chunked, or the body length is unknown");
        if (coding_list.size() > 1)
            return bad("bad_request", "Transfer-Encoding '" + printable(codings) +
                                          "': only chunked is supported, on its own");
        return std::nullopt;
    }
    if (lengths > 1) return bad("bad_request", "Content-Length given " + std::to_string(lengths) + " times");
    if (lengths == 1 && (length.empty() || length.size() > 19 ||
                         !std::all_of(length.begin(), length.end(), [](char c) { return c >= '0' && c <= '9'; })))
        return bad("bad_request", "Content-Length '" + printable(length) + "' is not a number of bytes");
    return std::nullopt;
}

/// Validates and routes one parsed request.
inline std::variant<routed, api_error> route(const request& req, const router_config& cfg = {}) {
    using detail::bad;
    std::string_view target(req.target().data(), req.target().size());
    auto parsed = boost::urls::parse_origin_form(target);
    if (!parsed)
        return bad("invalid_target", "request target '" + sessionkit::detail::printable(target) +
                                         "' is not a valid path and query");
    const boost::urls::url_view url = *parsed;
    std::vector<std::string> seg;
    for (auto s : url.segments()) seg.push_back(s);
    const std::string path(url.encoded_path().data(), url.encoded_path().size());
    const auto method = req.method();
    if (req.version() >= 11 && req.find(http::field::host) == req.end())
        return bad("bad_request", "an HTTP/1.1 request needs a Host header");

    if (seg.size() == 1 && (seg[0] == "healthz" || seg[0] == "metrics")) {
        if (method != http::verb::get) return detail::method_not_allowed(req, path, "GET, HEAD");
        if (auto e = detail::no_params(url)) return std::move(*e);
        if (seg[0] == "healthz") return routed{route_id::healthz, health_cmd{}};
        return routed{route_id::metrics, metrics_cmd{}};
    }
    if (seg.size() < 3 || seg[0] != "api" || seg[1] != "v1" || seg[2] != "sessions")
        return bad("not_found", "no such endpoint: " + sessionkit::detail::printable(path), 404);

    if (!cfg.token.empty()) {
        auto auth = req[http::field::authorization];
        std::string_view given(auth.data(), auth.size());
        constexpr std::string_view scheme = "Bearer ";
        if (given.size() < scheme.size() || !boost::beast::iequals(given.substr(0, scheme.size()), scheme))
            return bad("unauthorized", "this API needs 'Authorization: Bearer <token>'", 401);
        if (!detail::same_secret(given.substr(scheme.size()), cfg.token))
            return bad("unauthorized", "the bearer token is not valid", 401);
    }
    if (auto e = detail::repeated_param(url)) return std::move(*e);

    if (seg.size() == 3) {
        if (method == http::verb::post) return detail::route_create(req);
        if (method == http::verb::get) return detail::route_list(url);
        return detail::method_not_allowed(req, path, "GET, HEAD, POST");
    }
    if (seg.size() == 4 && seg[3] == "stats") {
        if (method != http::verb::get) return detail::method_not_allowed(req, path, "GET, HEAD");
        if (auto e = detail::no_params(url)) return std::move(*e);
        return routed{route_id::stats, stats_cmd{}};
    }
    if (seg.size() > 5) return bad("not_found", "no such endpoint: " + sessionkit::detail::printable(path), 404);

    auto checked = detail::checked_id(seg[3]);
    if (auto* e = std::get_if<api_error>(&checked)) return std::move(*e);
    std::string id = std::move(std::get<std::string>(checked));

    if (seg.size() == 4) {
        switch (method) {
        case http::verb::get:
            if (auto e = detail::no_params(url)) return std::move(*e);
            return routed{route_id::get, get_cmd{std::move(id)}};
        case http::verb::patch:
            if (auto e = detail::no_params(url)) return std::move(*e);
            if (detail::needs_length(req))
                return bad("length_required", "PATCH needs a Content-Length (or a chunked body)", 411);
            return detail::route_patch(std::move(id), req);
        case http::verb::delete_: {
            delete_cmd cmd{std::move(id), "deleted"};
            for (auto param : url.params()) {
                if (param.key != "reason")
                    return bad("invalid_field", "unknown query parameter '" +
                                                    sessionkit::detail::printable(param.key) + "' (expected reason)");
                if (param.value.empty() || param.value.size() > 128 ||
                    param.value.find_first_of(std::string_view("\0\r\n", 3)) != std::string::npos)
                    return bad("invalid_field", "query parameter 'reason' must be 1 to 128 bytes with no "
                                                "line breaks");
                cmd.reason = param.value;
            }
            return routed{route_id::remove, std::move(cmd)};
        }
        default: return detail::method_not_allowed(req, path, "GET, HEAD, PATCH, DELETE");
        }
    }
    const std::string& action = seg[4];
    if (action == "touch") {
        if (method != http::verb::post) return detail::method_not_allowed(req, path, "POST");
        if (auto e = detail::no_params(url)) return std::move(*e);
        return routed{route_id::touch, touch_cmd{std::move(id)}};
    }
    if (action == "input") {
        if (method != http::verb::post) return detail::method_not_allowed(req, path, "POST");
        if (auto e = detail::no_params(url)) return std::move(*e);
        if (detail::needs_length(req))
            return bad("length_required", "input needs a Content-Length (or a chunked body)", 411);
        return routed{route_id::input, input_cmd{std::move(id), req.body()}};
    }
    if (action == "output") {
        if (method != http::verb::get) return detail::method_not_allowed(req, path, "GET, HEAD");
        output_cmd cmd{std::move(id), 0};
        for (auto param : url.params()) {
            if (param.key != "from")
                return bad("invalid_field", "unknown query parameter '" + sessionkit::detail::printable(param.key) +
                                                "' (expected from)");
            auto v = detail::parse_u64(param.value);
            if (!v) return bad("invalid_field", "query parameter 'from' must be a byte offset (a whole number)");
            cmd.from = *v;
        }
        return routed{route_id::output, std::move(cmd)};
    }
    return bad("not_found", "no such endpoint: " + sessionkit::detail::printable(path), 404);
}

} // namespace sessionkit::http_api

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
//   GET    /api/v1/sessions/{id}/output?from=&follow=
//   GET    /api/v1/events?follow=&session=&type=
//   GET    /healthz, GET /metrics            (no token needed)
#pragma once

#include <sessionkit/http/command.hpp>
#include <sessionkit/http/detail/validate.hpp>
#include <sessionkit/http/framing.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/status.hpp>

#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sessionkit::http {

namespace detail {

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
            if (!s) return bad("unknown_status", unknown_status_message(value));
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

// ?follow=1|true|0|false
inline std::variant<bool, api_error> parse_flag(std::string_view name, std::string_view value) {
    if (value == "1" || value == "true") return true;
    if (value == "0" || value == "false") return false;
    return bad("invalid_field", "query parameter '" + std::string(name) + "' must be 1, true, 0 or false, got '" +
                                    sessionkit::detail::printable(value) + "'");
}

inline std::variant<routed, api_error> route_events(const boost::urls::url_view& url, const request& req) {
    events_cmd cmd;
    for (auto param : url.params()) {
        const std::string& key = param.key;
        const std::string& value = param.value;
        if (key == "follow") {
            auto f = parse_flag("follow", value);
            if (auto* e = std::get_if<api_error>(&f)) return std::move(*e);
            cmd.follow = std::get<bool>(f);
        } else if (key == "session") {
            auto id = checked_id(value);
            if (auto* e = std::get_if<api_error>(&id)) return std::move(*e);
            cmd.session = std::move(std::get<std::string>(id));
        } else if (key == "type") {
            for (std::size_t start = 0; start <= value.size();) {
                const std::size_t end = std::min(value.find(',', start), value.size());
                const std::string_view name = std::string_view(value).substr(start, end - start);
                auto type = event_type_of(name);
                if (!type) {
                    std::string known;
                    for (auto t : all_event_types) known += (known.empty() ? "" : ", ") + std::string(to_string(t));
                    return bad("invalid_field", "query parameter 'type': unknown event type '" +
                                                    sessionkit::detail::printable(name) + "' (expected " + known + ")");
                }
                if (std::find(cmd.types.begin(), cmd.types.end(), *type) == cmd.types.end()) cmd.types.push_back(*type);
                start = end + 1;
            }
        } else {
            return bad("invalid_field", "unknown query parameter '" + sessionkit::detail::printable(key) +
                                            "' (expected follow, session, type)");
        }
    }
    if (auto h = req.find("Last-Event-ID"); cmd.follow && h != req.end()) {
        const std::string_view given(h->value().data(), h->value().size());
        // Event ids are 26 characters of base32: anything else is no id of ours.
        if (given.empty() || given.size() > 64 || !std::all_of(given.begin(), given.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c));
            }))
            return bad("invalid_field", "Last-Event-ID of the event stream must be an event id");
        cmd.last_event_id = std::string(given);
    }
    return routed{route_id::events, std::move(cmd)};
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
            return bad("invalid_field",
                       "unknown field '" + sessionkit::detail::printable(k) + "' (PATCH takes status and attributes)");
    }
    if (auto* v = o.if_contains("status")) {
        if (!v->is_string()) return wrong_type("status", "a string", *v);
        auto s = parse_status(v->get_string());
        if (!s) return bad("unknown_status", unknown_status_message(v->get_string()));
        cmd.status = *s;
    }
    if (auto* v = o.if_contains("attributes")) {
        if (!v->is_object()) return wrong_type("attributes", "an object (a merge patch)", *v);
        cmd.attributes = v->get_object();
    }
    if (auto h = req.find(boost::beast::http::field::if_match); h != req.end() && h->value() != "*") {
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
                      std::string(req.method_string()) + " is not allowed on " + sessionkit::detail::printable(path) +
                          " (allowed: " + allow + ")",
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
            return bad("invalid_field",
                       "query parameter '" + sessionkit::detail::printable(param.key) + "' given twice");
    return std::nullopt;
}

inline bool needs_length(const request& req) {
    return req.find(boost::beast::http::field::content_length) == req.end() && !req.chunked();
}

}  // namespace detail

/// Validates and routes one parsed request.
inline std::variant<routed, api_error> route(const request& req, const router_options& cfg = {}) {
    using detail::bad;
    std::string_view target(req.target().data(), req.target().size());
    auto parsed = boost::urls::parse_origin_form(target);
    if (!parsed)
        return bad("invalid_target",
                   "request target '" + sessionkit::detail::printable(target) + "' is not a valid path and query");
    const boost::urls::url_view url = *parsed;
    std::vector<std::string> seg;
    for (auto s : url.segments()) seg.push_back(s);
    const std::string path(url.encoded_path().data(), url.encoded_path().size());
    const auto method = req.method();
    if (req.version() >= 11 && req.find(boost::beast::http::field::host) == req.end())
        return bad("bad_request", "an HTTP/1.1 request needs a Host header");

    if (seg.size() == 1 && (seg[0] == "healthz" || seg[0] == "metrics")) {
        if (method != boost::beast::http::verb::get) return detail::method_not_allowed(req, path, "GET, HEAD");
        if (auto e = detail::no_params(url)) return std::move(*e);
        if (seg[0] == "healthz") return routed{route_id::healthz, health_cmd{}};
        return routed{route_id::metrics, metrics_cmd{}};
    }
    if (seg.size() < 3 || seg[0] != "api" || seg[1] != "v1" || (seg[2] != "sessions" && seg[2] != "events") ||
        (seg[2] == "events" && seg.size() != 3))
        return bad("not_found", "no such endpoint: " + sessionkit::detail::printable(path), 404);

    if (!cfg.token.empty()) {
        auto auth = req[boost::beast::http::field::authorization];
        std::string_view given(auth.data(), auth.size());
        constexpr std::string_view scheme = "Bearer ";
        if (given.size() < scheme.size() || !boost::beast::iequals(given.substr(0, scheme.size()), scheme))
            return bad("unauthorized", "this API needs 'Authorization: Bearer <token>'", 401);
        if (!detail::same_secret(given.substr(scheme.size()), cfg.token))
            return bad("unauthorized", "the bearer token is not valid", 401);
    }
    if (auto e = detail::repeated_param(url)) return std::move(*e);

    if (seg[2] == "events") {
        if (method != boost::beast::http::verb::get) return detail::method_not_allowed(req, path, "GET, HEAD");
        return detail::route_events(url, req);
    }
    if (seg.size() == 3) {
        if (method == boost::beast::http::verb::post) return detail::route_create(req);
        if (method == boost::beast::http::verb::get) return detail::route_list(url);
        return detail::method_not_allowed(req, path, "GET, HEAD, POST");
    }
    if (seg.size() == 4 && seg[3] == "stats") {
        if (method != boost::beast::http::verb::get) return detail::method_not_allowed(req, path, "GET, HEAD");
        if (auto e = detail::no_params(url)) return std::move(*e);
        return routed{route_id::stats, stats_cmd{}};
    }
    if (seg.size() > 5) return bad("not_found", "no such endpoint: " + sessionkit::detail::printable(path), 404);

    auto checked = detail::checked_id(seg[3]);
    if (auto* e = std::get_if<api_error>(&checked)) return std::move(*e);
    std::string id = std::move(std::get<std::string>(checked));

    if (seg.size() == 4) {
        switch (method) {
        case boost::beast::http::verb::get:
            if (auto e = detail::no_params(url)) return std::move(*e);
            return routed{route_id::get, get_cmd{std::move(id)}};
        case boost::beast::http::verb::patch:
            if (auto e = detail::no_params(url)) return std::move(*e);
            if (detail::needs_length(req))
                return bad("length_required", "PATCH needs a Content-Length (or a chunked body)", 411);
            return detail::route_patch(std::move(id), req);
        case boost::beast::http::verb::delete_: {
            delete_cmd cmd{std::move(id), "deleted"};
            for (auto param : url.params()) {
                if (param.key != "reason")
                    return bad("invalid_field", "unknown query parameter '" + sessionkit::detail::printable(param.key) +
                                                    "' (expected reason)");
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
        if (method != boost::beast::http::verb::post) return detail::method_not_allowed(req, path, "POST");
        if (auto e = detail::no_params(url)) return std::move(*e);
        return routed{route_id::touch, touch_cmd{std::move(id)}};
    }
    if (action == "input") {
        if (method != boost::beast::http::verb::post) return detail::method_not_allowed(req, path, "POST");
        if (auto e = detail::no_params(url)) return std::move(*e);
        if (detail::needs_length(req))
            return bad("length_required", "input needs a Content-Length (or a chunked body)", 411);
        return routed{route_id::input, input_cmd{std::move(id), req.body()}};
    }
    if (action == "output") {
        if (method != boost::beast::http::verb::get) return detail::method_not_allowed(req, path, "GET, HEAD");
        output_cmd cmd{std::move(id), 0, false};
        for (auto param : url.params()) {
            if (param.key == "follow") {
                auto f = detail::parse_flag("follow", param.value);
                if (auto* e = std::get_if<api_error>(&f)) return std::move(*e);
                cmd.follow = std::get<bool>(f);
                continue;
            }
            if (param.key != "from")
                return bad("invalid_field", "unknown query parameter '" + sessionkit::detail::printable(param.key) +
                                                "' (expected from, follow)");
            auto v = detail::parse_u64(param.value);
            if (!v) return bad("invalid_field", "query parameter 'from' must be a byte offset (a whole number)");
            cmd.from = *v;
        }
        // A follower that reconnects resumes after the last event it saw:
        // its id is the offset to read from.
        if (auto h = req.find("Last-Event-ID"); cmd.follow && h != req.end()) {
            auto v = detail::parse_u64(std::string_view(h->value().data(), h->value().size()));
            if (!v) return bad("invalid_field", "Last-Event-ID of an output stream must be a byte offset");
            cmd.from = *v;
        }
        return routed{route_id::output, std::move(cmd)};
    }
    return bad("not_found", "no such endpoint: " + sessionkit::detail::printable(path), 404);
}

}  // namespace sessionkit::http

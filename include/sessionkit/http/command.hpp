// sessionkit/http/command.hpp — what the HTTP JSON API's router hands
// the handler: a route, a typed command, or an api_error to answer with.
//
// Plain data, so the router, the handler, the metrics and the fuzzer share
// them without including each other.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/event.hpp>
#include <sessionkit/registry_types.hpp>
#include <sessionkit/store_types.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sessionkit::http {

using request = boost::beast::http::request<boost::beast::http::string_body>;

/// Which endpoint a request reached: the label of its metrics.
enum class route_id : std::uint8_t {
    create,
    list,
    stats,
    get,
    patch,
    remove,
    touch,
    input,
    output,
    healthz,
    metrics,
    events,
    unknown
};

constexpr std::string_view to_string(route_id r) noexcept {
    constexpr std::array<std::string_view, 13> names = {"create",  "list",   "stats",  "get",    "patch",
                                                        "delete",  "touch",  "input",  "output", "healthz",
                                                        "metrics", "events", "unknown"};
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
struct list_cmd {
    list_query query;
};
struct stats_cmd {};
struct get_cmd {
    std::string id;
};
struct patch_cmd {
    std::string id;
    std::optional<session_status> status;
    /// RFC 7386 merge patch applied to the attributes (null removes a key).
    std::optional<boost::json::object> attributes;
    std::optional<std::uint64_t> if_match;
};
struct delete_cmd {
    std::string id;
    std::string reason;
};
struct touch_cmd {
    std::string id;
};
struct input_cmd {
    std::string id;
    std::string data;
};
struct output_cmd {
    std::string id;
    std::uint64_t from = 0;  ///< ?from=, or with follow the Last-Event-ID a reconnecting client sends
    bool follow = false;     ///< ?follow=1: server-sent events until the session ends
};
struct health_cmd {};
struct metrics_cmd {};
/// GET /api/v1/events: the lifecycle events this server keeps (its hub),
/// or with follow, those and every later one as server-sent events.
struct events_cmd {
    std::optional<std::string> session;  ///< ?session=: only this session's
    std::vector<event_type> types;       ///< ?type=a,b: only these (empty: all)
    bool follow = false;                 ///< ?follow=1
    std::string last_event_id;           ///< Last-Event-ID: resume after this event (follow only)
};

using command = std::variant<create_cmd, list_cmd, stats_cmd, get_cmd, patch_cmd, delete_cmd, touch_cmd, input_cmd,
                             output_cmd, health_cmd, metrics_cmd, events_cmd>;

struct routed {
    route_id route = route_id::unknown;
    command cmd;
};

struct router_options {
    /// When set, /api/ requests need "Authorization: Bearer <token>".
    std::string token;
};

/// Longer than any cursor a store issues (an id of at most 128 bytes and a
/// check); a longer one is refused before it reaches the store.
inline constexpr std::size_t max_cursor_size = 256;

}  // namespace sessionkit::http

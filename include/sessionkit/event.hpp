// sessionkit/event.hpp — lifecycle events.
//
// Wire form, one JSON object (a jsonl line, a NATS message payload):
//   {"v":1,"id":"<event id>","type":"expired","session_id":"…",
//    "time":<ms since epoch>,"data":{…}}
// The event id is 128 random bits; sinks that can retry use it to
// de-duplicate (NATS: Nats-Msg-Id).
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/session.hpp>

#include <boost/json.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>

#include <string>
#include <string_view>

namespace sessionkit {

enum class event_type : std::uint8_t {
    created,          ///< a session was created (data: owner)
    status_changed,   ///< data: from, to (and error, when a spawn failed)
    terminated,       ///< ended on request (data: reason, from, status)
    expired,          ///< ended by a janitor (data: reason = idle|lifetime, or the
                      ///< reason of a terminate that died midway; last_active)
    timeout_warning,  ///< its deadline is near (data: deadline, reason, remaining_ms)
    worker_started,   ///< data: kind, worker
    worker_exited,    ///< its worker ended by itself or was lost: data: kind, worker, exit_code
    input_sent,       ///< input reached its worker: data: bytes (the count, never the bytes)
    store_degraded,   ///< about no session (session_id ""): a part of the store went down: data: part, policy, reason
    store_recovered,  ///< about no session: that part is back: data: part
};

/// Every event type, in declaration order (the one list to loop over).
inline constexpr std::array all_event_types = {
    event_type::created,         event_type::status_changed, event_type::terminated,    event_type::expired,
    event_type::timeout_warning, event_type::worker_started, event_type::worker_exited, event_type::input_sent,
    event_type::store_degraded,  event_type::store_recovered};
inline constexpr std::size_t event_type_count = all_event_types.size();

constexpr std::string_view to_string(event_type t) noexcept {
    switch (t) {
    case event_type::created: return "created";
    case event_type::status_changed: return "status_changed";
    case event_type::terminated: return "terminated";
    case event_type::expired: return "expired";
    case event_type::timeout_warning: return "timeout_warning";
    case event_type::worker_started: return "worker_started";
    case event_type::worker_exited: return "worker_exited";
    case event_type::input_sent: return "input_sent";
    case event_type::store_degraded: return "store_degraded";
    case event_type::store_recovered: return "store_recovered";
    }
    return "unknown";
}

/// The event type named `name` (as to_string writes it); nullopt if none.
inline std::optional<event_type> event_type_of(std::string_view name) noexcept {
    for (auto t : all_event_types)
        if (to_string(t) == name) return t;
    return std::nullopt;
}

struct event {
    std::string id;
    event_type type{};
    std::string session_id;
    time_point time{};
    boost::json::object data;
};

inline event make_event(event_type type, std::string session_id, time_point time, boost::json::object data = {}) {
    return event{generate_id(), type, std::move(session_id), time, std::move(data)};
}

inline boost::json::object to_json(const event& e) {
    return {{"v", 1},
            {"id", e.id},
            {"type", to_string(e.type)},
            {"session_id", e.session_id},
            {"time", to_unix_ms(e.time)},
            {"data", e.data}};
}

/// The wire form as text: what a jsonl line and a NATS payload hold, and
/// what an outbox stores.
inline std::string to_text(const event& e) { return boost::json::serialize(to_json(e)); }

/// Reads an event's wire form back (what an outbox stores). Throws
/// error::corrupt_record naming `where` and what is wrong.
inline event event_from_text(std::string_view text, std::string_view where) {
    auto fail = [&](std::string_view what) {
        throw_error(error::corrupt_record, "event in " + std::string(where) + ": " + std::string(what));
    };
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) fail("not a JSON object");
    const auto& o = v.get_object();
    auto text_of = [&](std::string_view key) -> std::string {
        auto* f = o.if_contains(key);
        if (!f || !f->is_string()) fail("field '" + std::string(key) + "' is missing or not a string");
        return std::string(f->get_string());
    };
    event e;
    e.id = text_of("id");
    e.session_id = text_of("session_id");
    auto type = event_type_of(text_of("type"));
    if (!type) fail("unknown type");
    e.type = *type;
    auto* time = o.if_contains("time");
    if (!time || !time->is_int64()) fail("field 'time' is missing or not an integer");
    e.time = from_unix_ms(time->get_int64());
    if (auto* data = o.if_contains("data")) {
        if (!data->is_object()) fail("field 'data' is not an object");
        e.data = data->get_object();
    }
    return e;
}

/// The timeout_warning event of a record whose deadline is near: the one
/// definition of its data (a store with an outbox appends it when it
/// claims the warning; redis_store's script builds the same JSON).
inline event make_timeout_warning(const session& s, time_point now, std::string event_id) {
    boost::json::object data{{"deadline", to_unix_ms(s.idle_deadline)},
                             {"reason", s.lifetime_bound() ? "lifetime" : "idle"},
                             {"remaining_ms", std::chrono::duration_cast<milliseconds>(s.idle_deadline - now).count()}};
    return event{std::move(event_id), event_type::timeout_warning, s.id, now, std::move(data)};
}

}  // namespace sessionkit

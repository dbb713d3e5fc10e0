// sessionkit/event.hpp — lifecycle events.
//
// Wire form, one JSON object (a jsonl line, a NATS message payload):
//   {"v":1,"id":"<event id>","type":"expired","session_id":"…",
//    "time":<ms since epoch>,"data":{…}}
// The event id is 128 random bits; sinks that can retry use it to
// de-duplicate (NATS: Nats-Msg-Id).
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/id.hpp>

#include <boost/json.hpp>

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
    worker_exited,    ///< reserved for the spawners: data: kind, worker, exit_code
};

constexpr std::string_view to_string(event_type t) noexcept {
    switch (t) {
    case event_type::created: return "created";
    case event_type::status_changed: return "status_changed";
    case event_type::terminated: return "terminated";
    case event_type::expired: return "expired";
    case event_type::timeout_warning: return "timeout_warning";
    case event_type::worker_started: return "worker_started";
    case event_type::worker_exited: return "worker_exited";
    }
    return "unknown";
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

}  // namespace sessionkit

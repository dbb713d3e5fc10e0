// sessionkit/session.hpp — the session record and its JSON form.
//
// Wire form (schema "v": 1), every time in ms since the Unix epoch:
//   {"v":1,"id":"k3v7…","owner":"alice","status":"active",
//    "created_at":…,"last_active":…,"idle_timeout_ms":…,"idle_deadline":…,
//    "absolute_deadline":…?,"ended_at":…?,"end_reason":"idle"?,
//    "version":3,"worker":{"kind":"docker","id":"…","node":"…"?}?,"warning_sent":false,
//    "attributes":{…}}
// Fields this version does not know are kept and written back unchanged, so
// a newer writer's data survives an older reader's update.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/status.hpp>

#include <boost/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sessionkit {

inline constexpr std::int64_t session_schema_version = 1;

/// The resource a session owns: which spawner made it, and its id there
/// (a container id, a process id).
struct worker_ref {
    std::string kind;
    std::string id;
    /// Where it runs, when its spawner can tell (docker: the engine's ID);
    /// empty when unknown. A spawner judges only the workers of its own
    /// node: another node's are left to that node's janitor.
    std::string node{};
    /// The same worker: kind and id (ids are unique across nodes: a
    /// container id is random, a process id names its host). `node` says
    /// where, not which, so a record written before it was known still
    /// names the same worker.
    friend bool operator==(const worker_ref& a, const worker_ref& b) noexcept {
        return a.kind == b.kind && a.id == b.id;
    }
};

struct session {
    std::string id;
    std::string owner;
    session_status status = session_status::initializing;
    time_point created_at{};
    time_point last_active{};
    milliseconds idle_timeout{0};
    /// When the session expires unless touched. Never later than
    /// absolute_deadline: touch() caps it, so this one field orders expiry.
    time_point idle_deadline{};
    /// Maximum lifetime, if any: touching never moves a session past it.
    std::optional<time_point> absolute_deadline;
    /// Bumped by every write; updates are compare-and-swap on it.
    std::uint64_t version = 0;
    std::optional<worker_ref> worker;
    /// A timeout_warning was emitted for the current idle_deadline
    /// (cleared by touch, which moves the deadline).
    bool warning_sent = false;
    /// When the session reached a final status, and why ("idle",
    /// "lifetime", "deleted", "worker_exited", ...). Also set on a claimed
    /// (stopping) session to the reason it is being ended.
    std::optional<time_point> ended_at;
    std::string end_reason;
    boost::json::object attributes;
    /// Unknown top-level fields, preserved across read-modify-write.
    boost::json::object extra;

    /// True when the deadline that ends this session is its max lifetime.
    bool lifetime_bound() const noexcept { return absolute_deadline && idle_deadline >= *absolute_deadline; }
};

/// The idle deadline a touch at `now` gives: now + idle_timeout, capped at
/// the absolute deadline.
inline time_point sliding_deadline(const session& s, time_point now) noexcept {
    time_point d = now + s.idle_timeout;
    if (s.absolute_deadline && d > *s.absolute_deadline) d = *s.absolute_deadline;
    return d;
}

// ---- JSON ---------------------------------------------------------------------

inline boost::json::object to_json(const session& s) {
    boost::json::object o(s.extra);  // unknown fields first; ours overwrite
    o["v"] = session_schema_version;
    o["id"] = s.id;
    o["owner"] = s.owner;
    o["status"] = to_string(s.status);
    o["created_at"] = to_unix_ms(s.created_at);
    o["last_active"] = to_unix_ms(s.last_active);
    o["idle_timeout_ms"] = static_cast<std::int64_t>(s.idle_timeout.count());
    o["idle_deadline"] = to_unix_ms(s.idle_deadline);
    if (s.absolute_deadline)
        o["absolute_deadline"] = to_unix_ms(*s.absolute_deadline);
    else
        o.erase("absolute_deadline");
    if (s.ended_at)
        o["ended_at"] = to_unix_ms(*s.ended_at);
    else
        o.erase("ended_at");
    if (!s.end_reason.empty())
        o["end_reason"] = s.end_reason;
    else
        o.erase("end_reason");
    o["version"] = s.version;
    if (s.worker) {
        boost::json::object w{{"kind", s.worker->kind}, {"id", s.worker->id}};
        if (!s.worker->node.empty()) w["node"] = s.worker->node;
        o["worker"] = std::move(w);
    } else {
        o.erase("worker");
    }
    o["warning_sent"] = s.warning_sent;
    o["attributes"] = s.attributes;
    return o;
}

inline std::string serialize(const session& s) { return boost::json::serialize(to_json(s)); }

namespace detail {

// Reads a record field by field; every complaint names the session and key.
class record_reader {
public:
    record_reader(const boost::json::object& o, std::string_view id_hint) : o_(o), id_(id_hint) {}

    [[noreturn]] void fail(std::string_view key, std::string_view what) const {
        throw_error(error::corrupt_record,
                    "session '" + printable(id_) + "': field '" + std::string(key) + "' " + std::string(what));
    }
    const boost::json::value* find(std::string_view key) const { return o_.if_contains(key); }
    const boost::json::value& need(std::string_view key) const {
        if (auto* v = find(key)) return *v;
        fail(key, "is missing");
    }
    std::string string(std::string_view key, bool required = true) const {
        const auto* v = required ? &need(key) : find(key);
        if (!v) return {};
        if (!v->is_string()) fail(key, std::string("must be a string, got ") + kind(*v));
        return std::string(v->get_string());
    }
    std::int64_t integer(std::string_view key) const { return integer_of(key, need(key)); }
    /// A time in ms since the epoch, within [0, max_unix_ms].
    time_point time(std::string_view key) const { return time_of(key, integer(key)); }
    std::optional<time_point> optional_time(std::string_view key) const {
        auto v = optional_integer(key);
        if (!v) return std::nullopt;
        return time_of(key, *v);
    }
    time_point time_of(std::string_view key, std::int64_t ms) const {
        if (ms < 0 || ms > max_unix_ms)
            fail(key, "must be a time in ms since the Unix epoch between 0 and " + std::to_string(max_unix_ms) +
                          ", got " + std::to_string(ms));
        return from_unix_ms(ms);
    }
    std::optional<std::int64_t> optional_integer(std::string_view key) const {
        auto* v = find(key);
        if (!v || v->is_null()) return std::nullopt;
        return integer_of(key, *v);
    }
    std::int64_t integer_of(std::string_view key, const boost::json::value& v) const {
        if (v.is_int64()) return v.get_int64();
        if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
            return static_cast<std::int64_t>(v.get_uint64());
        fail(key, std::string("must be an integer, got ") + kind(v));
    }
    static const char* kind(const boost::json::value& v) {
        switch (v.kind()) {
        case boost::json::kind::null: return "null";
        case boost::json::kind::bool_: return "a boolean";
        case boost::json::kind::int64: return "an integer";
        case boost::json::kind::uint64: return "an integer beyond the int64 range";
        case boost::json::kind::double_: return "a number with a fraction";
        case boost::json::kind::string: return "a string";
        case boost::json::kind::array: return "an array";
        case boost::json::kind::object: return "an object";
        }
        return "something else";
    }

private:
    const boost::json::object& o_;
    std::string_view id_;
};

inline bool is_known_field(std::string_view k) noexcept {
    for (std::string_view known :
         {"v", "id", "owner", "status", "created_at", "last_active", "idle_timeout_ms", "idle_deadline",
          "absolute_deadline", "ended_at", "end_reason", "version", "worker", "warning_sent", "attributes"})
        if (k == known) return true;
    return false;
}

}  // namespace detail

/// Reads a record. `id_hint` names the session in error messages (the key
/// the record was found under). Throws error::corrupt_record naming the
/// session and the field; never crashes on any input.
inline session session_from_json(const boost::json::value& v, std::string_view id_hint) {
    if (!v.is_object())
        throw_error(error::corrupt_record, "session '" + detail::printable(id_hint) +
                                               "': record must be a JSON object, got " +
                                               detail::record_reader::kind(v));
    const auto& o = v.get_object();
    detail::record_reader r(o, id_hint);

    auto schema = r.integer("v");
    if (schema != session_schema_version)
        r.fail("v", "is " + std::to_string(schema) + "; this library reads schema " +
                        std::to_string(session_schema_version));

    session s;
    s.id = r.string("id");
    if (!is_valid_id(s.id)) r.fail("id", "is not a valid session id: " + detail::why_invalid(s.id));
    s.owner = r.string("owner", false);
    auto status = parse_status(r.string("status"));
    if (!status) r.fail("status", "is not a known status");
    s.status = *status;
    s.created_at = r.time("created_at");
    s.last_active = r.time("last_active");
    auto timeout = r.integer("idle_timeout_ms");
    if (timeout < 0 || timeout > max_duration.count())
        r.fail("idle_timeout_ms", "must be between 0 and " + std::to_string(max_duration.count()) +
                                      " (100 years), got " + std::to_string(timeout));
    s.idle_timeout = milliseconds{timeout};
    s.idle_deadline = r.time("idle_deadline");
    s.absolute_deadline = r.optional_time("absolute_deadline");
    s.ended_at = r.optional_time("ended_at");
    s.end_reason = r.string("end_reason", false);
    auto version = r.integer("version");
    if (version < 0) r.fail("version", "must not be negative");
    s.version = static_cast<std::uint64_t>(version);
    if (auto* w = r.find("worker"); w && !w->is_null()) {
        if (!w->is_object()) r.fail("worker", "must be an object with kind and id");
        detail::record_reader wr(w->get_object(), id_hint);
        try {
            s.worker = worker_ref{wr.string("kind"), wr.string("id"), wr.string("node", false)};
        } catch (const boost::system::system_error&) {
            r.fail("worker", "must be an object with string fields kind and id (and node)");
        }
    }
    if (auto* w = r.find("warning_sent"); w && !w->is_null()) {
        if (!w->is_bool()) r.fail("warning_sent", "must be a boolean");
        s.warning_sent = w->get_bool();
    }
    if (auto* a = r.find("attributes"); a && !a->is_null()) {
        if (!a->is_object())
            r.fail("attributes", std::string("must be an object, got ") + detail::record_reader::kind(*a));
        s.attributes = a->get_object();
    }
    for (const auto& kv : o)
        if (!detail::is_known_field(kv.key())) s.extra.emplace(kv.key(), kv.value());
    return s;
}

/// Parses a record from its text form; malformed JSON is error::corrupt_record
/// naming the session and what the parser found wrong.
inline session parse_session(std::string_view text, std::string_view id_hint) {
    boost::system::error_code ec;
    boost::json::parse_options opts;
    opts.max_depth = 64;
    auto v = boost::json::parse(text, ec, {}, opts);
    if (ec)
        throw_error(error::corrupt_record,
                    "session '" + detail::printable(id_hint) + "': record is not valid JSON (" + ec.message() + ")");
    return session_from_json(v, id_hint);
}

}  // namespace sessionkit

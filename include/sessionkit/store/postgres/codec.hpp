// sessionkit/store/postgres/codec.hpp — a session row as PostgreSQL holds
// it, to and from the text values of a result or of a statement's
// parameters: pure functions, no I/O (unit-tested and fuzzed without a
// server).
//
// A row is the record's fields as columns (record_columns, in this order);
// attributes, unknown top-level fields (`extra`) and the worker are jsonb.
// Decoding checks every column and throws error::corrupt_record naming the
// session and the column ("session 'abc': field 'status' is not a known
// status"): a row someone edited by hand is an error, never a crash.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/session.hpp>
#include <sessionkit/status.hpp>
#include <sessionkit/store_types.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sessionkit::postgres_store_codec {

/// The columns every statement returning a record selects, in this order.
inline constexpr std::string_view record_columns =
    "id, owner, status, created_at, last_active, idle_timeout_ms, idle_deadline, absolute_deadline, ended_at, "
    "end_reason, version, worker, warning_sent, attributes, extra";
inline constexpr std::size_t record_column_count = 15;

/// One row's values (nullopt: NULL), in record_columns order.
using row_values = std::array<std::optional<std::string_view>, record_column_count>;

namespace detail {

inline constexpr std::array<std::string_view, record_column_count> column_names{
    "id",           "owner",           "status",        "created_at",
    "last_active",  "idle_timeout_ms", "idle_deadline", "absolute_deadline",
    "ended_at",     "end_reason",      "version",       "worker",
    "warning_sent", "attributes",      "extra"};

[[noreturn]] inline void fail(std::string_view id, std::string_view column, std::string_view what) {
    throw_error(error::corrupt_record, "session '" + sessionkit::detail::printable(id) + "': field '" +
                                           std::string(column) + "' " + std::string(what));
}

inline std::optional<std::int64_t> integer(std::string_view id, std::size_t c, const row_values& row) {
    if (!row[c]) return std::nullopt;
    std::int64_t v = 0;
    auto [end, ec] = std::from_chars(row[c]->data(), row[c]->data() + row[c]->size(), v);
    if (ec != std::errc{} || end != row[c]->data() + row[c]->size())
        fail(id, column_names[c], "is not an integer: '" + sessionkit::detail::printable(*row[c]) + "'");
    return v;
}

inline std::int64_t required_integer(std::string_view id, std::size_t c, const row_values& row) {
    auto v = integer(id, c, row);
    if (!v) fail(id, column_names[c], "is NULL");
    return *v;
}

inline std::optional<time_point> optional_time(std::string_view id, std::size_t c, const row_values& row) {
    auto v = integer(id, c, row);
    if (!v) return std::nullopt;
    if (*v < 0 || *v > max_unix_ms)
        fail(id, column_names[c],
             "must be a time in ms since the Unix epoch between 0 and " + std::to_string(max_unix_ms) + ", got " +
                 std::to_string(*v));
    return from_unix_ms(*v);
}

inline time_point required_time(std::string_view id, std::size_t c, const row_values& row) {
    auto t = optional_time(id, c, row);
    if (!t) fail(id, column_names[c], "is NULL");
    return *t;
}

inline std::optional<boost::json::value> json(std::string_view id, std::size_t c, const row_values& row) {
    if (!row[c]) return std::nullopt;
    boost::system::error_code ec;
    auto v = boost::json::parse(*row[c], ec);
    if (ec) fail(id, column_names[c], "is not JSON: " + ec.message());
    return v;
}

inline session_status status(std::string_view id, std::size_t c, const row_values& row) {
    if (!row[c]) fail(id, column_names[c], "is NULL");
    auto s = parse_status(*row[c]);
    if (!s) fail(id, column_names[c], "is not a known status: '" + sessionkit::detail::printable(*row[c]) + "'");
    return *s;
}

}  // namespace detail

/// The session a row holds. `id_hint` names it in errors until its own id
/// is read. Throws error::corrupt_record naming the session and column.
inline session decode_record(const row_values& row, std::string_view id_hint) {
    using namespace detail;
    session s;
    if (!row[0]) fail(id_hint, "id", "is NULL");
    s.id = std::string(*row[0]);
    if (!is_valid_id(s.id)) fail(id_hint, "id", "is not a valid session id: " + sessionkit::detail::why_invalid(s.id));
    const std::string_view id = s.id;
    s.owner = row[1] ? std::string(*row[1]) : std::string();
    s.status = status(id, 2, row);
    s.created_at = required_time(id, 3, row);
    s.last_active = required_time(id, 4, row);
    const auto timeout = required_integer(id, 5, row);
    if (timeout < 0 || timeout > max_duration.count())
        fail(id, "idle_timeout_ms",
             "must be between 0 and " + std::to_string(max_duration.count()) + ", got " + std::to_string(timeout));
    s.idle_timeout = milliseconds{timeout};
    s.idle_deadline = required_time(id, 6, row);
    s.absolute_deadline = optional_time(id, 7, row);
    s.ended_at = optional_time(id, 8, row);
    s.end_reason = row[9] ? std::string(*row[9]) : std::string();
    const auto version = required_integer(id, 10, row);
    if (version < 0) fail(id, "version", "must not be negative, got " + std::to_string(version));
    s.version = static_cast<std::uint64_t>(version);
    if (auto w = json(id, 11, row); w && !w->is_null()) {
        const auto* o = w->if_object();
        const auto* kind = o ? o->if_contains("kind") : nullptr;
        const auto* wid = o ? o->if_contains("id") : nullptr;
        const auto* node = o ? o->if_contains("node") : nullptr;
        if (!kind || !kind->is_string() || !wid || !wid->is_string() || (node && !node->is_string()))
            fail(id, "worker", "must be an object with string fields kind and id (and node)");
        s.worker = worker_ref{std::string(kind->get_string()), std::string(wid->get_string()),
                              node ? std::string(node->get_string()) : std::string()};
    }
    if (!row[12] || (*row[12] != "t" && *row[12] != "f")) fail(id, "warning_sent", "must be a boolean");
    s.warning_sent = *row[12] == "t";
    if (auto a = json(id, 13, row)) {
        if (!a->is_object())
            fail(id, "attributes",
                 std::string("must be an object, got ") + sessionkit::detail::record_reader::kind(*a));
        s.attributes = std::move(a->get_object());
    }
    if (auto x = json(id, 14, row)) {
        if (!x->is_object())
            fail(id, "extra", std::string("must be an object, got ") + sessionkit::detail::record_reader::kind(*x));
        for (auto& kv : x->get_object())
            if (!sessionkit::detail::is_known_field(kv.key())) s.extra.emplace(kv.key(), kv.value());
    }
    return s;
}

/// What touch's row holds: status, last_active, idle_deadline,
/// absolute_deadline, version.
inline touch_result decode_touch(const std::array<std::optional<std::string_view>, 5>& row, std::string_view id) {
    row_values r{};
    r[2] = row[0];
    r[4] = row[1];
    r[6] = row[2];
    r[7] = row[3];
    r[10] = row[4];
    touch_result t;
    t.status = detail::status(id, 2, r);
    t.last_active = detail::required_time(id, 4, r);
    t.idle_deadline = detail::required_time(id, 6, r);
    t.absolute_deadline = detail::optional_time(id, 7, r);
    const auto version = detail::required_integer(id, 10, r);
    if (version < 0) detail::fail(id, "version", "must not be negative");
    t.version = static_cast<std::uint64_t>(version);
    return t;
}

/// A record's fields as statement parameters (text, nullopt for NULL), in
/// the order the create and update statements take them after the id:
/// owner, status, created_at, last_active, idle_timeout_ms, idle_deadline,
/// absolute_deadline, ended_at, end_reason, worker, warning_sent,
/// attributes, extra.
inline std::vector<std::optional<std::string>> record_parameters(const session& s) {
    std::vector<std::optional<std::string>> p;
    p.reserve(13);
    auto ms = [](time_point t) { return std::to_string(to_unix_ms(t)); };
    p.emplace_back(s.owner);
    p.emplace_back(std::string(to_string(s.status)));
    p.emplace_back(ms(s.created_at));
    p.emplace_back(ms(s.last_active));
    p.emplace_back(std::to_string(s.idle_timeout.count()));
    p.emplace_back(ms(s.idle_deadline));
    p.push_back(s.absolute_deadline ? std::optional<std::string>(ms(*s.absolute_deadline)) : std::nullopt);
    p.push_back(s.ended_at ? std::optional<std::string>(ms(*s.ended_at)) : std::nullopt);
    p.push_back(s.end_reason.empty() ? std::nullopt : std::optional<std::string>(s.end_reason));
    if (s.worker) {
        boost::json::object w{{"kind", s.worker->kind}, {"id", s.worker->id}};
        if (!s.worker->node.empty()) w["node"] = s.worker->node;
        p.emplace_back(boost::json::serialize(w));
    } else {
        p.emplace_back(std::nullopt);
    }
    p.emplace_back(s.warning_sent ? "true" : "false");
    p.emplace_back(boost::json::serialize(s.attributes));
    p.emplace_back(boost::json::serialize(s.extra));
    return p;
}

/// Bytes as the hex text decode($n, 'hex') reads: output may hold NUL
/// bytes, which a text parameter cannot.
inline std::string to_hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.resize(bytes.size() * 2);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        const auto b = static_cast<unsigned char>(bytes[i]);
        out[2 * i] = digits[b >> 4];
        out[2 * i + 1] = digits[b & 15];
    }
    return out;
}

/// A bytea value in PostgreSQL's text form ("\x" then hex digits) as
/// bytes. Throws error::corrupt_record naming the session for anything else.
inline std::string from_bytea_text(std::string_view text, std::string_view id) {
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    auto fail = [&] {
        throw_error(error::corrupt_record,
                    "session '" + sessionkit::detail::printable(id) + "': output is not bytea in hex form");
    };
    if (text.size() < 2 || text[0] != '\\' || text[1] != 'x' || text.size() % 2 != 0) fail();
    std::string out((text.size() - 2) / 2, '\0');
    for (std::size_t i = 0; i < out.size(); ++i) {
        const int hi = digit(text[2 + 2 * i]), lo = digit(text[3 + 2 * i]);
        if (hi < 0 || lo < 0) fail();
        out[i] = static_cast<char>(hi * 16 + lo);
    }
    return out;
}

/// An outbox position: "<xid>:<seq>", the inserting transaction's 64-bit
/// id and the event's sequence number. Ordered by xid first (see
/// postgres.hpp, "why positions are transaction ids").
struct position {
    std::uint64_t xid = 0;
    std::int64_t seq = 0;
};

inline std::string to_text(const position& p) { return std::to_string(p.xid) + ":" + std::to_string(p.seq); }

/// Reads a position; "" is the start. Throws error::invalid_argument
/// naming `who` for anything a store did not issue.
inline position parse_position(std::string_view who, std::string_view text) {
    position p;
    if (text.empty()) return p;
    const auto colon = text.find(':');
    bool ok = colon != std::string_view::npos && colon > 0 && colon + 1 < text.size();
    if (ok) {
        auto a = std::from_chars(text.data(), text.data() + colon, p.xid);
        auto b = std::from_chars(text.data() + colon + 1, text.data() + text.size(), p.seq);
        ok = a.ec == std::errc{} && a.ptr == text.data() + colon && b.ec == std::errc{} &&
             b.ptr == text.data() + text.size() && p.seq >= 0;
    }
    if (!ok)
        throw_error(error::invalid_argument, std::string(who) + ": outbox position '" +
                                                 sessionkit::detail::printable(text) +
                                                 "' is not one this store issued (<xid>:<seq>)");
    return p;
}

}  // namespace sessionkit::postgres_store_codec

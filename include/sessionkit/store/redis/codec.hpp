// sessionkit/store/redis/codec.hpp — a session record and the stats counters
// as Redis holds them, to and from RESP values: pure functions, no I/O.
//
// A record is a hash (doc/redis.md, "Key layout"): `doc` is the whole
// session as JSON, and the fields the scripts change sit beside it and win
// where they differ. `record_fields` is the list, in order, that `get`
// (HMGET) and every script returning a record (its FIELDS, see
// scripts.hpp) read back; a unit test checks the Lua lists against it.
// It is public on purpose: a tool or a benchmark reads a record the way
// the store does.
//
// Decoders take any reply tree and either return or throw system_error:
// corrupt_record for a record that is not a session (naming the field and
// what it holds), protocol_error for a reply of the wrong shape. They do
// not name the session's key: the store adds that (and the connection).
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/redis/detail/resp_parser.hpp>
#include <sessionkit/redis/resp.hpp>
#include <sessionkit/session.hpp>
#include <sessionkit/status.hpp>
#include <sessionkit/store_types.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace sessionkit::redis_store_codec {

namespace resp = sessionkit::redis::resp;

/// The record's fields that come back to the client, in this order.
inline constexpr std::array<std::string_view, 8> record_fields = {
    "doc", "status", "version", "last_active", "idle_deadline", "warning_sent", "end_reason", "ended_at"};

/// One (name, value) pair of a record as the create and update scripts
/// write it.
struct field {
    std::string_view name;
    std::string value;
};

/// Every field a record is written with: `doc`, the fields scripts change,
/// and those they read (owner, idle_timeout, absolute_deadline). Times are
/// milliseconds since the epoch; an absent time is "".
inline std::array<field, 10> encode_record(const session& rec) {
    auto ms = [](time_point t) { return std::to_string(to_unix_ms(t)); };
    return {{{"doc", serialize(rec)},
             {"status", std::string(to_string(rec.status))},
             {"owner", rec.owner},
             {"last_active", ms(rec.last_active)},
             {"idle_deadline", ms(rec.idle_deadline)},
             {"idle_timeout", std::to_string(rec.idle_timeout.count())},
             {"absolute_deadline", rec.absolute_deadline ? ms(*rec.absolute_deadline) : std::string()},
             {"warning_sent", rec.warning_sent ? "1" : "0"},
             {"end_reason", rec.end_reason},
             {"ended_at", rec.ended_at ? ms(*rec.ended_at) : std::string()}}};
}

/// A time or a version as a record holds it: decimal digits, in
/// [0, max_unix_ms]. Throws corrupt_record naming `name`.
inline std::int64_t parse_record_number(std::string_view text, std::string_view name) {
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || n < 0 || n > max_unix_ms)
        throw_error(error::corrupt_record, "field '" + std::string(name) + "' is '" +
                                               sessionkit::detail::printable(text.substr(0, 40)) + "', not a number");
    return n;
}

/// The session `id` from its record_fields values (an HMGET reply, or the
/// fields a script returns). Throws corrupt_record naming the field that
/// is missing or unreadable, or protocol_error for a value that is not a
/// string at all.
inline session decode_record(std::string_view id, const resp::value& fields) {
    if (fields.kind != resp::type::array || fields.elements.size() != record_fields.size())
        throw_error(error::corrupt_record, "the record is not a hash with the expected fields");
    auto text = [&](std::size_t i) -> std::string_view {
        auto& v = fields.elements[i];
        if (v.is_null()) throw_error(error::corrupt_record, "field '" + std::string(record_fields[i]) + "' is missing");
        return v.as_string();
    };
    auto number = [&](std::size_t i) { return parse_record_number(text(i), record_fields[i]); };
    session s;
    try {
        s = parse_session(text(0), id);
    } catch (const boost::system::system_error& e) {
        throw_error(error::corrupt_record, "field 'doc': " + what_without_code(e));
    }
    auto st = parse_status(text(1));
    if (!st) throw_error(error::corrupt_record, "field 'status': " + unknown_status_message(text(1)));
    s.status = *st;
    s.version = static_cast<std::uint64_t>(number(2));
    s.last_active = from_unix_ms(number(3));
    s.idle_deadline = from_unix_ms(number(4));
    s.warning_sent = text(5) == "1";
    s.end_reason = std::string(text(6));
    if (text(7).empty())
        s.ended_at.reset();
    else
        s.ended_at = from_unix_ms(number(7));
    if (s.id != id)
        throw_error(error::corrupt_record, "field 'doc' holds session '" + sessionkit::detail::printable(s.id) + "'");
    return s;
}

/// An HMGET of record_fields: nothing when there is no record (no doc or
/// no status), else the session. Throws as decode_record.
inline std::optional<session> decode_get(std::string_view id, const resp::value& reply) {
    if (reply.kind != resp::type::array || reply.elements.empty() || reply.elements[0].is_null() ||
        (reply.elements.size() > 1 && reply.elements[1].is_null()))
        return std::nullopt;
    return decode_record(id, reply);
}

/// Adds one partition's counters (an HGETALL of its stats hash: a RESP3
/// map or a RESP2 array, both key, value, ...) to `st`. Unknown counters
/// are ignored and a negative one counts as zero; `st.sessions` is left to
/// finish_stats. Throws protocol_error for a value that is not a number.
inline void add_stats(store_stats& st, const resp::value& hash) {
    for (std::size_t i = 0; i + 1 < hash.elements.size(); i += 2) {
        std::string_view k = hash.elements[i].as_string();
        auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(0, hash.elements[i + 1].as_integer()));
        if (k.starts_with("st:")) {
            if (auto s = parse_status(k.substr(3))) st.by_status[static_cast<std::size_t>(*s)] += v;
        } else if (k == "created_total")
            st.created_total += v;
        else if (k == "expired_total")
            st.expired_total += v;
        else if (k == "terminated_total")
            st.terminated_total += v;
    }
}

/// Sets `st.sessions` from the per-status counts.
inline void finish_stats(store_stats& st) noexcept {
    st.sessions = 0;
    for (auto n : st.by_status) st.sessions += n;
}

/// Every partition's stats hash, summed.
inline store_stats decode_stats(std::span<const resp::value> hashes) {
    store_stats st;
    for (auto& h : hashes) add_stats(st, h);
    finish_stats(st);
    return st;
}

/// What a Redis error reply means for the store: a key of the wrong type
/// (WRONGTYPE) or a record a script found unreadable (CORRUPT) is a corrupt
/// record; anything else is the backend failing.
inline error error_of_reply(const resp::value& reply) noexcept {
    const bool corrupt = reply.text.find("WRONGTYPE") != std::string::npos || reply.text.starts_with("CORRUPT");
    return corrupt ? error::corrupt_record : error::backend_unavailable;
}

}  // namespace sessionkit::redis_store_codec

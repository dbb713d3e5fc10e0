// sessionkit/store/redis/detail/replies.hpp — what each of redis_store's
// scripts answers, decoded: pure functions from a RESP reply to a result.
//
// Private: the reply shapes are a contract between these functions and
// the Lua beside them (detail/lua_*.hpp), not a public format. Error
// replies are the caller's to handle first (they name the key); a decoder
// given any other tree returns or throws system_error: protocol_error for
// the wrong shape, corrupt_record for a record that is not a session. The
// caller adds the session, key and connection to the message.
#pragma once

#include <sessionkit/detail/cursor.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/event.hpp>
#include <sessionkit/outbox.hpp>
#include <sessionkit/output.hpp>
#include <sessionkit/redis/detail/resp_parser.hpp>
#include <sessionkit/redis/resp.hpp>
#include <sessionkit/store/redis/codec.hpp>
#include <sessionkit/store_types.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sessionkit::detail::redis_store {

namespace resp = sessionkit::redis::resp;

[[noreturn]] inline void unexpected_reply(const resp::value& reply) {
    throw_error(error::protocol_error, "unexpected reply type " + std::string(resp::to_string(reply.kind)));
}

/// `reply`, when it is an array of at least `n` elements.
inline const resp::value& expect_array(const resp::value& reply, std::size_t n) {
    if (reply.kind != resp::type::array || reply.elements.size() < n) unexpected_reply(reply);
    return reply;
}

/// create: {1, version} when created (the result is `sent` at that
/// version), {0, fields} of the live session that has the id already.
inline create_result decode_create(const resp::value& reply, const session& sent) {
    auto& r = expect_array(reply, 2);
    if (r.elements[0].as_integer() == 1) {
        session made = sent;
        made.version = static_cast<std::uint64_t>(r.elements[1].as_integer());
        return create_result{true, std::move(made)};
    }
    return create_result{false, redis_store_codec::decode_record(sent.id, r.elements[1])};
}

/// A time the touch script sends back, checked before it becomes one.
inline time_point touch_time(const resp::value& v) {
    const std::int64_t ms = v.as_integer();
    if (ms < -max_unix_ms || ms > max_unix_ms)
        throw_error(error::corrupt_record, "time " + std::to_string(ms) + " is out of range");
    return from_unix_ms(ms);
}

/// touch: null when there is no record, else {status, last_active,
/// idle_deadline, absolute_deadline ("" for none), version}. The values
/// come from the record, so one that cannot be read is a corrupt record.
inline std::optional<touch_result> decode_touch(const resp::value& reply) {
    if (reply.is_null()) return std::nullopt;
    auto& r = expect_array(reply, 5);
    try {
        touch_result t;
        auto st = parse_status(r.elements[0].as_string());
        if (!st) throw_error(error::corrupt_record, unknown_status_message(r.elements[0].as_string()));
        t.status = *st;
        t.last_active = touch_time(r.elements[1]);
        t.idle_deadline = touch_time(r.elements[2]);
        if (!r.elements[3].as_string().empty()) t.absolute_deadline = touch_time(r.elements[3]);
        t.version = static_cast<std::uint64_t>(r.elements[4].as_integer());
        return t;
    } catch (const boost::system::system_error& e) {
        throw_error(error::corrupt_record, what_without_code(e));
    }
}

/// update: 0 updated, 1 not found, 2 version conflict, 3 final.
inline update_result decode_update(const resp::value& reply) {
    switch (reply.as_integer()) {
    case 0: return update_result::updated;
    case 1: return update_result::not_found;
    case 2: return update_result::version_conflict;
    case 3: return update_result::final_state;
    }
    throw_error(error::protocol_error, "unexpected script reply");
}

/// erase, append_output and unlock: 1 when done.
inline bool decode_done(const resp::value& reply) { return reply.as_integer() == 1; }

/// try_lock: 1 when taken, nil when someone else holds the lock.
inline bool decode_locked(const resp::value& reply) { return !reply.is_null(); }

/// purge_ended: how many records one partition removed.
inline std::size_t decode_count(const resp::value& reply) {
    const std::int64_t n = reply.as_integer();
    if (n < 0) throw_error(error::protocol_error, "a count of " + std::to_string(n));
    return static_cast<std::size_t>(n);
}

/// One entry of a sweep's or list's reply: {id, fields} or, for a record
/// the script could not read (and quarantined), {id, false, error}.
struct entry {
    std::string id;
    std::optional<session> record;  ///< none when unreadable
    std::string problem;            ///< why not, when unreadable
    bool script_found_it = false;   ///< the script reported it, rather than the decoder
};

inline entry decode_entry(const resp::value& reply) {
    if (reply.elements.size() < 2) throw_error(error::protocol_error, "malformed script reply");
    entry e;
    e.id = std::string(reply.elements[0].as_string());
    auto& fields = reply.elements[1];
    if (fields.is_null() || fields.kind == resp::type::boolean) {
        e.problem = reply.elements.size() > 2 ? std::string(reply.elements[2].as_string()) : "unreadable";
        e.script_found_it = true;
        return e;
    }
    try {
        e.record = redis_store_codec::decode_record(e.id, fields);
    } catch (const boost::system::system_error& err) {
        e.problem = what_without_code(err);
    }
    return e;
}

/// Every partition's page (each in id order) merged: the first `limit`
/// sessions by id, and a cursor when a partition filled its page (it may
/// hold more) or more than `limit` came back.
inline session_page merge_pages(std::vector<session> all, bool partition_full, std::size_t limit) {
    std::sort(all.begin(), all.end(), [](const session& a, const session& b) { return a.id < b.id; });
    session_page page;
    bool more = partition_full;
    if (all.size() > limit) {
        all.resize(limit);
        more = true;
    }
    page.sessions = std::move(all);
    if (more && !page.sessions.empty()) page.next_cursor = cursor_after(page.sessions.back().id);
    return page;
}

/// A sweep candidate: a due entry of one partition's index.
struct candidate {
    double score;
    unsigned partition;
    std::string id;
};

/// A score as ZRANGEBYSCORE sends it: a double in RESP3, a string in RESP2
/// (servers before 6). Redis never stores NaN; a reply that holds one is
/// refused rather than sorted (NaN has no order).
inline double score_of(const resp::value& v) {
    double d = 0;
    if (!v.is_string()) {
        d = v.as_double();
    } else {
        const std::string_view t = v.as_string();
        std::from_chars(t.data(), t.data() + t.size(), d);
    }
    if (std::isnan(d)) throw_error(error::protocol_error, "a score that is not a number");
    return d;
}

/// Adds one partition's ZRANGEBYSCORE ... WITHSCORES reply to `out`: RESP2
/// sends id, score, id, score...; RESP3 [id, score] pairs.
inline void add_candidates(std::vector<candidate>& out, const resp::value& reply, unsigned partition) {
    auto& e = reply.elements;
    if (!e.empty() && e[0].kind == resp::type::array) {
        for (auto& pair : e)
            if (pair.elements.size() == 2)
                out.push_back({score_of(pair.elements[1]), partition, std::string(pair.elements[0].as_string())});
    } else {
        for (std::size_t i = 0; i + 1 < e.size(); i += 2)
            out.push_back({score_of(e[i + 1]), partition, std::string(e[i].as_string())});
    }
}

/// The earliest `limit` candidates (by score, then id), by partition.
inline std::map<unsigned, std::vector<std::string>> pick_earliest(std::vector<candidate> all, std::size_t limit) {
    std::map<unsigned, std::vector<std::string>> picked;
    const std::size_t n = std::min(limit, all.size());
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
                      [](const candidate& a, const candidate& b) {
                          return a.score < b.score || (a.score == b.score && a.id < b.id);
                      });
    for (std::size_t i = 0; i < n; ++i) picked[all[i].partition].push_back(std::move(all[i].id));
    return picked;
}

/// read_output: false when there is no record, else {first, end, data}
/// (see the script). An `offset` past `end` is the caller's mistake:
/// invalid_argument.
inline std::optional<output_chunk> decode_output(const resp::value& reply, std::uint64_t offset) {
    if (reply.is_null()) return std::nullopt;
    auto& r = expect_array(reply, 3);
    output_chunk out;
    out.offset = static_cast<std::uint64_t>(r.elements[0].as_integer());
    const auto end = static_cast<std::uint64_t>(r.elements[1].as_integer());
    if (offset > end)
        throw_error(error::invalid_argument, "offset " + std::to_string(offset) + " is past the end of the output (" +
                                                 std::to_string(end) + " bytes so far)");
    out.data = std::string(r.elements[2].as_string());
    out.dropped = offset < out.offset;
    out.next_offset = out.offset + out.data.size();
    return out;
}

// ---- the outbox (lua_outbox.hpp) ------------------------------------------

/// create and update carrying events: when the outbox refused them
/// (refuse_writes, full), the script answers {`code`, length} (create 2,
/// update 4) and wrote nothing; the length, else nothing.
inline std::optional<std::uint64_t> outbox_refusal(const resp::value& reply, std::int64_t code) {
    if (reply.kind != resp::type::array || reply.elements.size() != 2) return std::nullopt;
    if (reply.elements[0].kind != resp::type::integer || reply.elements[0].as_integer() != code) return std::nullopt;
    return static_cast<std::uint64_t>(std::max<std::int64_t>(0, reply.elements[1].as_integer()));
}

/// A stream entry id "<ms>-<seq>" (an outbox position) as two numbers, or
/// nothing when `text` is not one.
inline std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_position(std::string_view text) {
    const auto dash = text.find('-');
    if (dash == std::string_view::npos || dash == 0 || dash + 1 == text.size()) return std::nullopt;
    std::uint64_t ms = 0, seq = 0;
    auto number = [](std::string_view t, std::uint64_t& n) {
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
        return ec == std::errc{} && end == t.data() + t.size();
    };
    if (!number(text.substr(0, dash), ms) || !number(text.substr(dash + 1), seq)) return std::nullopt;
    return std::pair{ms, seq};
}

/// The smallest position after `text` (XRANGE and XTRIM MINID are
/// inclusive, so "after p" is "from next_position(p)"). Throws
/// invalid_argument for a position the outbox never gave out.
inline std::string next_position(std::string_view text) {
    auto p = parse_position(text);
    if (!p)
        throw_error(error::invalid_argument,
                    "position '" + printable(text.substr(0, 60)) + "' is not one this outbox gave out (<ms>-<seq>)");
    auto [ms, seq] = *p;
    if (seq == UINT64_MAX) {
        if (ms == UINT64_MAX) throw_error(error::invalid_argument, "position '" + std::string(text) + "' is the last");
        return std::to_string(ms + 1) + "-0";
    }
    return std::to_string(ms) + "-" + std::to_string(seq + 1);
}

/// The value of `name` among a stream entry's fields (a flat array, or a
/// RESP3 map: both name, value, ...), or null when absent.
inline const resp::value* entry_field(const resp::value& fields, std::string_view name) {
    for (std::size_t i = 0; i + 1 < fields.elements.size(); i += 2)
        if (fields.elements[i].is_string() && fields.elements[i].as_string() == name) return &fields.elements[i + 1];
    return nullptr;
}

/// An XRANGE of an outbox: its entries, and those that could not be read
/// (someone else wrote them) with why.
struct outbox_read {
    std::vector<outbox_entry> entries;
    struct unreadable {
        std::string position;
        std::string problem;
    };
    std::vector<unreadable> skipped;
    std::string last_position;  ///< of the last entry, readable or not ("" when none)
    std::size_t count = 0;      ///< entries in the reply
};

/// XRANGE <outbox> ... : each entry [id, [field, value, ...]]. `where`
/// names the stream in the problems.
inline outbox_read decode_outbox(const resp::value& reply, std::string_view where) {
    if (reply.kind != resp::type::array && !reply.is_null()) unexpected_reply(reply);
    outbox_read out;
    for (auto& e : reply.elements) {
        if (e.kind != resp::type::array || e.elements.size() != 2 || !e.elements[0].is_string())
            throw_error(error::protocol_error, "malformed stream entry");
        std::string position(e.elements[0].as_string());
        ++out.count;
        out.last_position = position;
        const auto* text = entry_field(e.elements[1], "event");
        if (!text || !text->is_string()) {
            out.skipped.push_back({std::move(position), "it has no 'event' field"});
            continue;
        }
        try {
            event ev = event_from_text(text->as_string(), std::string(where) + " entry " + position);
            out.entries.push_back({std::move(position), std::move(ev)});
        } catch (const boost::system::system_error& err) {
            out.skipped.push_back({std::move(position), what_without_code(err)});
        }
    }
    return out;
}

/// The time (ms) of the first entry of an XRANGE ... COUNT 1, or nothing
/// when the stream is empty or the entry has no readable time.
inline std::optional<std::int64_t> first_entry_time(const resp::value& reply) {
    if (reply.kind != resp::type::array || reply.elements.empty()) return std::nullopt;
    const auto& e = reply.elements.front();
    if (e.elements.size() != 2) return std::nullopt;
    const auto* t = entry_field(e.elements[1], "time");
    if (!t || !t->is_string()) return std::nullopt;
    std::int64_t ms = 0;
    const std::string_view text = t->as_string();
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec != std::errc{} || end != text.data() + text.size() || ms < -max_unix_ms || ms > max_unix_ms)
        return std::nullopt;
    return ms;
}

/// A counter an HGET answers: null (none yet) is 0.
inline std::uint64_t decode_counter(const resp::value& reply) {
    if (reply.is_null()) return 0;
    return static_cast<std::uint64_t>(std::max<std::int64_t>(0, reply.as_integer()));
}

/// A dropped event as the outbox lists it: "<time> <type> <event id>
/// <session id>" (the session id last: it is the one part that could hold
/// a space). With the time it was written, for merging partitions.
struct dropped_line {
    std::int64_t time = 0;
    dropped_event event;
};

inline dropped_line decode_dropped(std::string_view line, unsigned partition) {
    dropped_line out;
    out.event.partition = partition;
    auto next = [&line]() {
        const auto sp = line.find(' ');
        std::string_view part = line.substr(0, sp);
        line = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
        return part;
    };
    const std::string_view time = next();
    std::from_chars(time.data(), time.data() + time.size(), out.time);
    out.event.type = std::string(next());
    out.event.event_id = std::string(next());
    out.event.session_id = std::string(line);
    return out;
}

/// One partition's LRANGE or LPOP of dropped lines (null: none).
inline std::vector<dropped_line> decode_dropped_list(const resp::value& reply, unsigned partition) {
    std::vector<dropped_line> out;
    if (reply.is_null()) return out;
    if (reply.kind != resp::type::array) unexpected_reply(reply);
    for (auto& line : reply.elements) out.push_back(decode_dropped(line.as_string(), partition));
    return out;
}

/// Partitions' dropped lines merged oldest first (by the time written;
/// each partition keeps its own order), the first `limit` of them; also
/// how many each partition gave.
inline std::vector<dropped_line> merge_dropped(std::vector<std::vector<dropped_line>> per_partition,
                                               std::size_t limit) {
    std::vector<dropped_line> out;
    std::vector<std::size_t> next(per_partition.size(), 0);
    while (out.size() < limit) {
        std::size_t best = per_partition.size();
        for (std::size_t p = 0; p < per_partition.size(); ++p)
            if (next[p] < per_partition[p].size() &&
                (best == per_partition.size() || per_partition[p][next[p]].time < per_partition[best][next[best]].time))
                best = p;
        if (best == per_partition.size()) break;
        out.push_back(std::move(per_partition[best][next[best]++]));
    }
    return out;
}

}  // namespace sessionkit::detail::redis_store

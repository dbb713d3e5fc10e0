// sessionkit/http/follow.hpp — the bodies of the two follow streams
// (server-sent events, http/sse.hpp): a session's output until it ends,
// and the lifecycle events an event_hub keeps.
//
// Output stream, from a byte offset:
//   data: {"offset":0,"next_offset":6,"text":"hello\n"}      id: 6
//   data: {"offset":6,"next_offset":9,"base64":"AP8K"}        id: 9 (not UTF-8)
//   event: end  data: {"status":"terminated","end_reason":"worker_exited","next_offset":9}
// A chunk is sent as "text" when it is valid UTF-8 (a character cut by a
// read waits for the next one), else as "base64"; "dropped":true when the
// bounded log lost bytes before it. The id is the offset to resume from.
//
// Event stream: each event's wire form (doc/events.md) as data, its id as
// id; `event: missed` {"missed":n} when the follower fell more than the
// hub keeps behind.
//
// Both send a comment every `heartbeat` while idle (so a proxy keeps the
// stream and a client that left is noticed), end when the server stops
// (the client reconnects with Last-Event-ID), and end with `event: error`
// when the store fails mid-stream.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/detail/text.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/event.hpp>
#include <sessionkit/http/command.hpp>
#include <sessionkit/http/sse.hpp>
#include <sessionkit/http/stream.hpp>
#include <sessionkit/output.hpp>
#include <sessionkit/sink/hub.hpp>
#include <sessionkit/status.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>

namespace sessionkit::http {

struct follow_options {
    /// How often a follower looks for what other processes wrote (this
    /// process's writes wake it at once).
    milliseconds poll{250};
    /// A comment is sent after this long without anything else.
    milliseconds heartbeat{15'000};
};

/// The data of one output event (see the header comment).
inline std::string output_event_data(const output_chunk& chunk) {
    boost::json::object o{{"offset", chunk.offset}, {"next_offset", chunk.next_offset}};
    if (sessionkit::detail::valid_utf8(chunk.data))
        o["text"] = chunk.data;
    else
        o["base64"] = sessionkit::detail::to_base64(chunk.data);
    if (chunk.dropped) o["dropped"] = true;
    return boost::json::serialize(o);
}

/// What of a read to send now, so that text goes as text: its longest
/// valid UTF-8 prefix; a read that starts with bytes that are not UTF-8
/// whole (as base64); nothing when all it holds is a character the read
/// cut off, which waits for the rest unless the session has `ended`.
inline std::optional<output_chunk> output_to_send(output_chunk chunk, bool ended) {
    if (chunk.data.empty()) {
        if (!chunk.dropped) return std::nullopt;
        return chunk;  // says what was dropped
    }
    const std::size_t text = sessionkit::detail::valid_utf8_prefix(chunk.data);
    if (text == chunk.data.size()) return chunk;
    const bool cut_off = sessionkit::detail::utf8_sequence(chunk.data, text) < 0;
    if (text == 0) {
        if (cut_off && !ended) return std::nullopt;
        return chunk;  // as base64
    }
    chunk.next_offset = chunk.offset + text;
    chunk.data.erase(text);
    return chunk;
}

/// Whether the event stream `cmd` asked for takes `e`.
inline bool wanted(const events_cmd& cmd, const event& e) {
    if (cmd.session && e.session_id != *cmd.session) return false;
    return cmd.types.empty() || std::find(cmd.types.begin(), cmd.types.end(), e.type) != cmd.types.end();
}

namespace detail {

// Sends a heartbeat when nothing was sent for `every`; false once the
// client is gone.
struct heartbeat {
    milliseconds every;
    std::chrono::steady_clock::time_point last_sent = std::chrono::steady_clock::now();

    awaitable<bool> send(stream_writer& w, std::string piece) {
        last_sent = std::chrono::steady_clock::now();
        co_return co_await w.send(std::move(piece));
    }
    awaitable<bool> beat_if_due(stream_writer& w) {
        if (std::chrono::steady_clock::now() - last_sent < every) co_return true;
        co_return co_await send(w, sse_comment("keep-alive"));
    }
};

// What a stream says when the store failed under it (then it ends; the
// client may reconnect from its last id).
inline std::string error_event(const std::exception& e) {
    const auto* se = dynamic_cast<const boost::system::system_error*>(&e);
    const bool unavailable = se && se->code() == condition::unavailable;
    return sse_event("error", "",
                     boost::json::serialize(boost::json::object{{"error", unavailable ? "unavailable" : "internal"},
                                                                {"message", e.what()}}));
}

inline bool is_not_found(const std::exception& e) {
    const auto* se = dynamic_cast<const boost::system::system_error*>(&e);
    return se && se->code() == error::not_found;
}

}  // namespace detail

/// Streams session `id`'s output from `offset` until the session ends (its
/// log drained) or the client leaves. The registry gives read_output, get
/// and output_signal.
template <class Registry>
awaitable<void> follow_output(Registry& registry, stream_writer& w, std::string id, std::uint64_t offset,
                              follow_options options) {
    detail::heartbeat beat{options.heartbeat};
    for (;;) {
        const std::uint64_t seen = registry.output_signal().generation();
        output_chunk chunk;
        std::optional<session> now_stored;
        bool erased = false;
        std::string failure;
        try {
            chunk = co_await registry.read_output(id, offset);
            // Nothing new: has it ended? (Read after the output, so bytes
            // written before the end are never left unsent.)
            if (chunk.data.empty() && !chunk.dropped) now_stored = co_await registry.get(id);
        } catch (const std::exception& e) {
            erased = detail::is_not_found(e);
            if (!erased) failure = detail::error_event(e);
        }
        if (!failure.empty()) {
            co_await w.send(std::move(failure));
            co_return;
        }
        if (!erased && (!chunk.data.empty() || chunk.dropped)) {
            auto piece = output_to_send(chunk, false);
            if (!piece) {
                // Only a cut character: it waits for the rest, unless the
                // session ended (then it goes as it is).
                now_stored = co_await registry.get(id);
                if (!now_stored || is_final(now_stored->status)) piece = output_to_send(std::move(chunk), true);
            }
            if (piece) {
                offset = piece->next_offset;
                if (!co_await beat.send(w, sse_event("", std::to_string(offset), output_event_data(*piece)))) co_return;
                continue;
            }
        } else if (erased || !now_stored || is_final(now_stored->status)) {
            boost::json::object end{{"next_offset", offset}};
            if (now_stored) {
                end["status"] = to_string(now_stored->status);
                end["end_reason"] = now_stored->end_reason;
            } else {
                end["status"] = nullptr;  // erased (or purged) while followed
            }
            co_await w.send(sse_event("end", "", boost::json::serialize(end)));
            co_return;
        }
        if (w.stopping() || !co_await beat.beat_if_due(w)) co_return;
        co_await registry.output_signal().wait(std::min(options.poll, options.heartbeat), seen);
    }
}

/// Streams the events `cmd` asks for from `hub`: after the event named by
/// Last-Event-ID when the hub still keeps it (else every event it keeps),
/// or from now; until the client leaves or the server stops.
inline awaitable<void> follow_events(event_hub hub, stream_writer& w, events_cmd cmd, follow_options options) {
    detail::heartbeat beat{options.heartbeat};
    std::uint64_t after = hub.last();
    if (!cmd.last_event_id.empty()) {
        if (auto n = hub.number_of(cmd.last_event_id)) {
            after = *n;
        } else {
            // No longer kept (or never here): how much was missed is not
            // known; the follower gets every event still kept.
            after = 0;
            if (!co_await beat.send(w, sse_event("missed", "", R"({"missed":null})"))) co_return;
        }
    }
    for (bool first_read = true;; first_read = false) {
        auto got = hub.read(after, 256);
        if (got.missed > 0 && !(first_read && after == 0)) {
            const std::string data = boost::json::serialize(boost::json::object{{"missed", got.missed}});
            if (!co_await beat.send(w, sse_event("missed", "", data))) co_return;
        }
        for (const auto& e : got.events)
            if (wanted(cmd, e) && !co_await beat.send(w, sse_event("", e.id, to_text(e)))) co_return;
        after = got.next;
        if (!got.events.empty()) continue;
        if (w.stopping() || !co_await beat.beat_if_due(w)) co_return;
        co_await hub.wait(after, std::min(options.poll * 4, options.heartbeat));
    }
}

}  // namespace sessionkit::http

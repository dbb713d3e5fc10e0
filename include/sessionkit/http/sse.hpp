// sessionkit/http/sse.hpp — server-sent events (the WHATWG HTML "event
// stream" format), written as text. Pure: what the follow endpoints send,
// unit-tested without a socket.
//
//   event: output
//   id: 120
//   data: {"offset":114,"next_offset":120,"text":"hello\n"}
//   <blank line>
//
// A client's EventSource resends the last id it saw as Last-Event-ID when
// it reconnects; the endpoints resume from it.
#pragma once

#include <string>
#include <string_view>

namespace sessionkit::http {

/// One event: its `type` (the "event:" field; empty for the default
/// "message"), `id` (empty: none) and `data`. `data` may hold line feeds
/// (each line becomes a "data:" line); carriage returns and NUL are not
/// allowed anywhere, nor line feeds in `type` or `id`: the callers send
/// JSON, event types and numbers, which hold none.
inline std::string sse_event(std::string_view type, std::string_view id, std::string_view data) {
    std::string out;
    out.reserve(type.size() + id.size() + data.size() + 24);
    if (!type.empty()) out.append("event: ").append(type).append("\n");
    if (!id.empty()) out.append("id: ").append(id).append("\n");
    for (std::size_t start = 0;;) {
        const std::size_t end = data.find('\n', start);
        out.append("data: ").append(data.substr(start, end - start)).append("\n");
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    out += '\n';
    return out;
}

/// A comment line: ignored by clients, it keeps proxies from closing an
/// idle stream and shows whether the client is still there.
inline std::string sse_comment(std::string_view text) { return ": " + std::string(text) + "\n\n"; }

}  // namespace sessionkit::http

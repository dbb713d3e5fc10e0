// sessionkit/sink/nats/detail/stream.hpp — the parts of a JetStream stream's
// configuration nats_sink cares about, and whether an existing stream will
// do. Pure: unit-tested without a server.
//
// nats_sink creates the stream with file storage, its subjects and its
// duplicate window. A stream of that name that already exists is used as
// it is when it has the same subjects (in any order), file storage, a
// duplicate window of at least 2 minutes, acknowledgements on and is not
// sealed; any other is refused with both configurations named, never
// changed (it may belong to someone else).
#pragma once

#include <sessionkit/sink/nats/options.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace sessionkit::detail::nats {

struct stream_settings {
    std::vector<std::string> subjects;
    bool file_storage = true;
    std::chrono::nanoseconds duplicate_window{0};
    bool no_ack = false;  ///< JetStream acknowledges nothing: no publish could ever confirm
    bool sealed = false;  ///< the stream takes no more messages

    /// "subjects [sessions.>], file storage, duplicate window 120 s"
    std::string describe() const {
        std::string out = "subjects [";
        for (std::size_t i = 0; i < subjects.size(); ++i) out += (i ? ", " : "") + printable(subjects[i]);
        out += "], ";
        out += file_storage ? "file" : "memory";
        out += " storage, duplicate window ";
        const auto ms = std::chrono::duration_cast<milliseconds>(duplicate_window).count();
        out += ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
        if (no_ack) out += ", no acknowledgements";
        if (sealed) out += ", sealed";
        return out;
    }
};

/// What nats_sink creates for these options.
inline stream_settings wanted_stream(const nats_sink_options& o) {
    return {o.subjects, true, std::chrono::duration_cast<std::chrono::nanoseconds>(o.duplicate_window)};
}

/// Why `found` will not do for `wanted` (nullopt: it will).
inline std::optional<std::string> incompatibility(const stream_settings& wanted, const stream_settings& found) {
    auto sorted = [](std::vector<std::string> v) {
        std::sort(v.begin(), v.end());
        v.erase(std::unique(v.begin(), v.end()), v.end());
        return v;
    };
    std::string why;
    auto add = [&why](const std::string& part) { why += (why.empty() ? "" : "; ") + part; };
    if (sorted(wanted.subjects) != sorted(found.subjects)) add("other subjects");
    if (!found.file_storage) add("memory storage, not file");
    if (found.duplicate_window < std::chrono::nanoseconds(min_duplicate_window))
        add("a duplicate window under 2 minutes");
    if (found.no_ack) add("no acknowledgements, so nothing could be confirmed");
    if (found.sealed) add("sealed");
    if (why.empty()) return std::nullopt;
    return why;
}

}  // namespace sessionkit::detail::nats

// sessionkit/sink/nats/detail/subject.hpp — NATS subjects for events, and
// the checks on the subjects and stream names an operator configures.
// Pure functions, no nats.c: unit-tested without a server.
//
// An event goes to `<prefix>.<type>.<session id, encoded>`. A subject is a
// list of tokens separated by '.', and a session id may hold '.' (ids are
// [A-Za-z0-9._:-]), so the id is encoded into one token: '.' becomes %2E
// and '%' becomes %25. Any other byte outside [A-Za-z0-9_:-] (none in a
// valid id) becomes %XX too, so that whatever the id, the token holds no
// '.', '*', '>' or white space. Valid ids other than '.' pass unchanged:
// "alice-1" → "alice-1", "a.b" → "a%2Eb".
#pragma once

#include <sessionkit/detail/text.hpp>
#include <sessionkit/event.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace sessionkit::detail::nats {

/// Bytes a token keeps as they are.
constexpr bool plain_token_byte(unsigned char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == ':' ||
           c == '-';
}

/// One subject token for a session id (see the top of this file). Empty for
/// an empty id (an empty token is not a subject).
inline std::string encode_subject_token(std::string_view id) {
    std::string out;
    out.reserve(id.size());
    for (char ch : id) {
        const auto c = static_cast<unsigned char>(ch);
        if (plain_token_byte(c)) {
            out += ch;
        } else {
            out += '%';
            append_hex(out, c, true);
        }
    }
    return out;
}

/// The session id back from its token; nullopt when the token is not one
/// encode_subject_token writes (a '%' without two hex digits, a byte that
/// should have been encoded, or an encoding of a byte that needs none).
inline std::optional<std::string> decode_subject_token(std::string_view token) {
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;  // encode writes upper case only
    };
    std::string out;
    out.reserve(token.size());
    for (std::size_t i = 0; i < token.size(); ++i) {
        const auto c = static_cast<unsigned char>(token[i]);
        if (plain_token_byte(c)) {
            out += token[i];
            continue;
        }
        if (c != '%' || i + 2 >= token.size()) return std::nullopt;
        const int hi = hex(token[i + 1]);
        const int lo = hex(token[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        const auto byte = static_cast<unsigned char>(hi * 16 + lo);
        if (plain_token_byte(byte)) return std::nullopt;
        out += static_cast<char>(byte);
        i += 2;
    }
    return out;
}

/// The subject of event `e` under `prefix` ("sessions.expired.alice-1"). An
/// event about no session (store_degraded, store_recovered: its type says
/// so) has "_" for the id ("sessions.store_degraded._"), so every subject
/// has the same three parts and a stream of "sessions.*.*" takes it.
inline std::string event_subject(std::string_view prefix, const event& e) {
    std::string s(prefix);
    s += '.';
    s += to_string(e.type);
    s += '.';
    s += e.session_id.empty() ? std::string("_") : encode_subject_token(e.session_id);
    return s;
}

/// Whether `subject` is a valid NATS subject: non-empty tokens separated
/// by '.', no white space or control bytes; with `wildcards`, a token may
/// be '*' and the last one '>' (a stream's subjects), else neither may
/// appear anywhere (a subject to publish to).
inline bool valid_subject(std::string_view subject, bool wildcards) {
    if (subject.empty()) return false;
    std::size_t start = 0;
    for (;;) {
        const std::size_t dot = subject.find('.', start);
        const std::string_view token =
            subject.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (token.empty()) return false;
        for (char ch : token) {
            const auto c = static_cast<unsigned char>(ch);
            if (c <= 0x20 || c == 0x7f) return false;
            if ((c == '*' || c == '>') && (!wildcards || token.size() != 1)) return false;
        }
        if (token == ">" && dot != std::string_view::npos) return false;  // '>' only last
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

/// Whether the (wildcard-free) `subject` is one that `pattern` (a stream
/// subject, maybe with '*' and '>') takes in.
inline bool subject_matches(std::string_view pattern, std::string_view subject) {
    std::size_t p = 0, s = 0;
    for (;;) {
        const std::size_t pd = pattern.find('.', p);
        const std::string_view pt = pattern.substr(p, pd == std::string_view::npos ? std::string_view::npos : pd - p);
        if (pt == ">") return true;  // one or more tokens: the subject has one left here
        const std::size_t sd = subject.find('.', s);
        const std::string_view st = subject.substr(s, sd == std::string_view::npos ? std::string_view::npos : sd - s);
        if (pt != "*" && pt != st) return false;
        const bool pattern_ends = pd == std::string_view::npos;
        const bool subject_ends = sd == std::string_view::npos;
        if (pattern_ends || subject_ends) return pattern_ends && subject_ends;
        p = pd + 1;
        s = sd + 1;
    }
}

/// Whether `name` is a stream name we accept: 1–255 bytes of printable
/// ASCII other than ' ', '.', '*', '>', '/' and '\' (the server also keeps
/// a stream as a directory of that name).
inline bool valid_stream_name(std::string_view name) {
    if (name.empty() || name.size() > 255) return false;
    for (char ch : name) {
        const auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c >= 0x7f || c == '.' || c == '*' || c == '>' || c == '/' || c == '\\') return false;
    }
    return true;
}

}  // namespace sessionkit::detail::nats

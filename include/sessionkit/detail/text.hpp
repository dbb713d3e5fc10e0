// sessionkit/detail/text.hpp — bytes written as hex or base64, untrusted
// bytes made safe to put in an error message, and UTF-8 checks. Written
// once for every folder (ids, RESP replies, Docker answers, script
// digests, URLs, worker output streamed as JSON).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace sessionkit::detail {

inline constexpr char lower_hex_digits[] = "0123456789abcdef";
inline constexpr char upper_hex_digits[] = "0123456789ABCDEF";

/// Appends the two hex digits of `byte` (lower case unless `upper`).
inline void append_hex(std::string& out, unsigned char byte, bool upper = false) {
    const char* digits = upper ? upper_hex_digits : lower_hex_digits;
    out += digits[byte >> 4];
    out += digits[byte & 0xf];
}

/// Bytes as lower-case hex ("a9993e36..." for a SHA-1 digest).
inline std::string to_hex(std::span<const unsigned char> bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) append_hex(out, b);
    return out;
}

/// Shows untrusted text (an id, a header, a parameter) in an error message
/// without letting it break the message: control and non-ASCII bytes, the
/// backslash and the single quote become \xNN, and it is cut at `max`
/// bytes of output, marked with "...".
inline std::string printable(std::string_view text, std::size_t max = 160) {
    std::string out;
    for (std::size_t i = 0; i < text.size() && out.size() < max; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            append_hex(out, c);
        }
    }
    if (out.size() >= max && text.size() > out.size()) out += "...";
    return out;
}

/// A server's bytes (a reply that may be binary, or a whole HTML page) for
/// an error message: in single quotes, \r \n \t \\ \' spelled as in C,
/// other non-printable bytes as \xNN, cut at `max` bytes of input with
/// "..." after the closing quote.
inline std::string quote_untrusted(std::string_view s, std::size_t max = 32) {
    std::string out = "'";
    for (std::size_t i = 0; i < s.size() && i < max; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        switch (c) {
        case '\r': out += "\\r"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\\': out += "\\\\"; break;
        case '\'': out += "\\'"; break;
        default:
            if (c >= 0x20 && c < 0x7f) {
                out += static_cast<char>(c);
            } else {
                out += "\\x";
                append_hex(out, c);
            }
        }
    }
    out += s.size() > max ? "'..." : "'";
    return out;
}

/// Standard base64 (RFC 4648 section 4, with padding). Beast has one only
/// in its detail namespace, so we keep our own (doc/decisions.md).
inline std::string to_base64(std::string_view bytes) {
    static constexpr char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    auto at = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(bytes[k])); };
    for (; i + 3 <= bytes.size(); i += 3) {
        const unsigned n = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
        for (int shift : {18, 12, 6, 0}) out += digits[(n >> shift) & 63];
    }
    if (const std::size_t left = bytes.size() - i; left > 0) {
        const unsigned n = at(i) << 16 | (left == 2 ? at(i + 1) << 8 : 0u);
        out += digits[(n >> 18) & 63];
        out += digits[(n >> 12) & 63];
        out += left == 2 ? digits[(n >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

/// The length of the UTF-8 sequence starting at `text[i]` if it is a
/// whole, valid one (no overlong form, no surrogate, at most U+10FFFF);
/// 0 if it is invalid; and -n if it is a valid start cut off by the end
/// of `text` after n bytes.
inline int utf8_sequence(std::string_view text, std::size_t i) noexcept {
    auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char b0 = byte(i);
    if (b0 < 0x80) return 1;
    int len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        if (b0 == 0xE0) lo = 0xA0;  // no overlong form
        if (b0 == 0xED) hi = 0x9F;  // no surrogate
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        if (b0 == 0xF0) lo = 0x90;  // no overlong form
        if (b0 == 0xF4) hi = 0x8F;  // at most U+10FFFF
    } else {
        return 0;
    }
    for (int k = 1; k < len; ++k) {
        if (i + k >= text.size()) return -k;
        const unsigned char b = byte(i + k);
        if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
    }
    return len;
}

/// The length of the longest prefix of `text` that is whole, valid UTF-8.
inline std::size_t valid_utf8_prefix(std::string_view text) noexcept {
    std::size_t i = 0;
    while (i < text.size()) {
        const int n = utf8_sequence(text, i);
        if (n <= 0) break;
        i += static_cast<std::size_t>(n);
    }
    return i;
}

/// Whether `text` is wholly valid UTF-8.
inline bool valid_utf8(std::string_view text) noexcept { return valid_utf8_prefix(text) == text.size(); }

}  // namespace sessionkit::detail

// sessionkit/detail/text.hpp — bytes written as hex, and untrusted bytes
// made safe to put in an error message. Written once for every folder
// (ids, RESP replies, Docker answers, script digests, URLs).
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

}  // namespace sessionkit::detail

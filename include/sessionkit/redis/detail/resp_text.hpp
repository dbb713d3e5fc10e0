// sessionkit/redis/detail/resp_text.hpp — the byte-level pieces of the RESP
// codec: strict number grammars and bulk-string encoding.
//
// Shared by the public value and command types (redis/resp.hpp) and the
// parser (resp_parser.hpp); nothing here is part of the interface.
#pragma once

#include <sessionkit/detail/text.hpp>
#include <sessionkit/error.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace sessionkit::redis::detail::resp_codec {

/// Untrusted bytes in an error message (detail/text.hpp, shared with the
/// other folders' messages).
using sessionkit::detail::quote_untrusted;

[[noreturn]] inline void fail(const std::string& what) { throw_error(error::protocol_error, "redis: " + what); }

/// Strict int64: optional '-', digits, nothing else (no blanks, no '+').
inline bool parse_int64(std::string_view s, std::int64_t& out) noexcept {
    const char* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(s.data(), end, out);
    return ec == std::errc{} && p == end && !s.empty();
}

inline bool all_digits(std::string_view s) noexcept {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// RESP3 double grammar: [+-] then "inf", "nan", or digits[.digits][(e|E)[+-]digits].
/// Checked by hand because from_chars also takes forms a server never sends
/// ("infinity", "nan(...)", "1.", ".5") that we would rather flag as garbage.
inline bool valid_double(std::string_view s) noexcept {
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
    if (s == "inf" || s == "nan") return true;
    auto digits = [&s] {
        std::size_t n = 0;
        while (n < s.size() && s[n] >= '0' && s[n] <= '9') ++n;
        s.remove_prefix(n);
        return n != 0;
    };
    if (!digits()) return false;
    if (!s.empty() && s[0] == '.') {
        s.remove_prefix(1);
        if (!digits()) return false;
    }
    if (!s.empty() && (s[0] == 'e' || s[0] == 'E')) {
        s.remove_prefix(1);
        if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
        if (!digits()) return false;
    }
    return s.empty();
}

/// Converts a string that passed valid_double(). A number too large or too
/// small for a double ("1e400", "1e-400") is still a number: it saturates to
/// infinity or zero as strtod would, instead of failing.
inline double to_double(std::string_view s) noexcept {
    if (!s.empty() && s[0] == '+') s.remove_prefix(1);  // from_chars refuses '+'
    double d = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
    (void)p;
    if (ec != std::errc::result_out_of_range) return d;
    // Decide overflow vs underflow from the decimal magnitude: position of the
    // first significant digit relative to the point, plus the exponent.
    const bool negative = s[0] == '-';
    if (negative) s.remove_prefix(1);
    const auto e = s.find_first_of("eE");
    std::int64_t exp = 0;
    if (e != std::string_view::npos) {
        auto es = s.substr(e + 1);
        if (!es.empty() && es[0] == '+') es.remove_prefix(1);
        if (std::from_chars(es.data(), es.data() + es.size(), exp).ec != std::errc{})
            exp = es[0] == '-' ? -1'000'000'000 : 1'000'000'000;  // beyond int64: sign is all that matters
        exp = std::clamp<std::int64_t>(exp, -1'000'000'000, 1'000'000'000);
        s = s.substr(0, e);
    }
    const auto dot = s.find('.');
    const auto integral = s.substr(0, dot);
    const auto first = integral.find_first_not_of('0');
    std::int64_t magnitude = 0;
    if (first != std::string_view::npos) {
        magnitude = static_cast<std::int64_t>(integral.size() - first);
    } else if (dot != std::string_view::npos) {
        const auto fraction = s.substr(dot + 1);
        const auto nz = fraction.find_first_not_of('0');
        magnitude = -static_cast<std::int64_t>(nz == std::string_view::npos ? fraction.size() : nz);
    }
    const double r = magnitude + exp > 0 ? std::numeric_limits<double>::infinity() : 0.0;
    return negative ? -r : r;
}

inline void append_decimal(std::string& out, std::uint64_t n) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, n);
    out.append(buf, r.ptr);
}

inline std::size_t decimal_width(std::uint64_t n) noexcept {
    std::size_t w = 1;
    while (n >= 10) {
        n /= 10;
        ++w;
    }
    return w;
}

/// "$<len>\r\n<bytes>\r\n": Redis takes every command argument as a bulk
/// string, so binary data (CR, LF, NUL) needs no escaping.
inline void append_bulk(std::string& out, std::string_view a) {
    out += '$';
    append_decimal(out, a.size());
    out += "\r\n";
    out += a;
    out += "\r\n";
}

inline std::size_t bulk_size(std::string_view a) noexcept { return 1 + decimal_width(a.size()) + 2 + a.size() + 2; }

template <class T>
inline constexpr bool is_char_like =
    std::is_same_v<T, char> || std::is_same_v<T, signed char> || std::is_same_v<T, unsigned char> ||
    std::is_same_v<T, wchar_t> || std::is_same_v<T, char8_t> || std::is_same_v<T, char16_t> ||
    std::is_same_v<T, char32_t>;

}  // namespace sessionkit::redis::detail::resp_codec

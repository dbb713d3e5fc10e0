// sessionkit/redis/resp.hpp — the values Redis replies with and the commands
// we send it: what redis::connection::exec returns and takes.
//
// A reply is one `value` (RESP2 and RESP3 types; aggregates nest), read with
// is_error(), as_integer(), as_string(), as_double() or by its fields. A
// command is built with `command` (arguments as bulk strings, integers and
// doubles in decimal) or append_command(). The parser that makes values out
// of bytes is private (redis/detail/resp_parser.hpp).
#pragma once

#include <sessionkit/redis/detail/resp_text.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace sessionkit::redis::resp {

enum class type : std::uint8_t {
    simple_string,
    simple_error,
    integer,
    bulk_string,
    bulk_error,
    null,
    boolean,
    double_,
    big_number,
    verbatim_string,
    array,
    map,
    set,
    push
};

inline std::string_view to_string(type t) noexcept {
    switch (t) {
    case type::simple_string: return "simple_string";
    case type::simple_error: return "simple_error";
    case type::integer: return "integer";
    case type::bulk_string: return "bulk_string";
    case type::bulk_error: return "bulk_error";
    case type::null: return "null";
    case type::boolean: return "boolean";
    case type::double_: return "double";
    case type::big_number: return "big_number";
    case type::verbatim_string: return "verbatim_string";
    case type::array: return "array";
    case type::map: return "map";
    case type::set: return "set";
    case type::push: return "push";
    }
    return "unknown";
}

struct value {
    type kind = type::null;
    std::string text;             // strings, errors, verbatim payload (no "txt:"), big_number digits, double as sent
    std::int64_t integer = 0;     // integer; boolean as 0/1
    std::vector<value> elements;  // array, set, push; map as key,value,key,value...
    std::string format;           // verbatim_string only: the 3-letter format

    bool operator==(const value&) const = default;

    /// Replies made by hand (tests, a fake server): a string-like kind
    /// (strings, errors, double, big number) with its text, an integer,
    /// a boolean, an aggregate (array, set, push, map) with its elements.
    static value of_text(type k, std::string text) {
        value v;
        v.kind = k;
        v.text = std::move(text);
        return v;
    }
    static value of_integer(std::int64_t n) {
        value v;
        v.kind = type::integer;
        v.integer = n;
        return v;
    }
    static value of_boolean(bool b) {
        value v;
        v.kind = type::boolean;
        v.integer = b ? 1 : 0;
        return v;
    }
    static value of_elements(type k, std::vector<value> elements) {
        value v;
        v.kind = k;
        v.elements = std::move(elements);
        return v;
    }

    bool is_null() const noexcept { return kind == type::null; }
    bool is_error() const noexcept { return kind == type::simple_error || kind == type::bulk_error; }
    bool is_string() const noexcept {
        return kind == type::simple_string || kind == type::bulk_string || kind == type::verbatim_string;
    }

    /// An integer reply, or a string holding exactly a decimal int64: Lua
    /// scripts and RESP2 servers hand numbers back as strings.
    std::int64_t as_integer() const {
        if (kind == type::integer) return integer;
        std::int64_t n = 0;
        if (is_string() && detail::resp_codec::parse_int64(text, n)) return n;
        mismatch("integer");
    }

    std::string_view as_string() const {
        if (!is_string()) mismatch("string");
        return text;
    }

    double as_double() const {
        if (kind == type::double_) {
            // Parsed values are valid already; this catches hand-built ones.
            if (!detail::resp_codec::valid_double(text))
                detail::resp_codec::fail("bad double " + detail::resp_codec::quote_untrusted(text));
            return detail::resp_codec::to_double(text);
        }
        if (kind == type::integer) return static_cast<double>(integer);
        mismatch("double");
    }

private:
    // Names both types, and the payload when there is one: an unexpected
    // error reply ("-WRONGTYPE ...") is the most common reason to land here.
    [[noreturn]] void mismatch(std::string_view expected) const {
        std::string what = "expected ";
        what += expected;
        what += ", got ";
        what += to_string(kind);
        if (kind == type::integer || kind == type::boolean) {
            what += ' ';
            what += std::to_string(integer);
        } else if (!text.empty() || is_string() || is_error()) {
            what += ' ';
            what += detail::resp_codec::quote_untrusted(text);
        }
        detail::resp_codec::fail(what);
    }
};

/// Request encoding (always RESP2 arrays of bulk strings, as Redis expects).
/// Appends one command to `out`.
inline void append_command(std::string& out, std::span<const std::string_view> args) {
    std::size_t size = 1 + detail::resp_codec::decimal_width(args.size()) + 2;
    for (auto a : args) size += detail::resp_codec::bulk_size(a);
    out.reserve(out.size() + size);
    out += '*';
    detail::resp_codec::append_decimal(out, args.size());
    out += "\r\n";
    for (auto a : args) detail::resp_codec::append_bulk(out, a);
}

inline void append_command(std::string& out, std::initializer_list<std::string_view> args) {
    append_command(out, std::span<const std::string_view>(args.begin(), args.size()));
}

/// A command being built argument by argument (integers written in decimal).
class command {
public:
    explicit command(std::string_view name) {
        args_.reserve(64);
        detail::resp_codec::append_bulk(args_, name);
        count_ = 1;
        name_off_ = 1 + detail::resp_codec::decimal_width(name.size()) + 2;
        name_len_ = name.size();
    }

    command& arg(std::string_view a) {
        detail::resp_codec::append_bulk(args_, a);
        ++count_;
        return *this;
    }

    command& arg(std::int64_t n) {
        char buf[24];
        const auto r = std::to_chars(buf, buf + sizeof buf, n);
        return arg(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
    }

    // Every other integer type, exactly, so int, unsigned, uint64_t and
    // size_t neither become ambiguous nor wrap through int64_t.
    template <std::integral T>
    requires(!std::is_same_v<T, bool> && !detail::resp_codec::is_char_like<T> && sizeof(T) <= 8) command& arg(T n) {
        char buf[24];
        const auto r = std::to_chars(buf, buf + sizeof buf, n);
        return arg(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
    }

    // A char or a bool is almost certainly a mistake ('x' would go out as
    // "120"); say so at compile time.
    template <class T>
    requires(std::is_same_v<T, bool> || detail::resp_codec::is_char_like<T>) command& arg(T) = delete;

    /// Shortest text that reads back as the same double ("1.5", "1e+100",
    /// "inf"), which is what ZADD and INCRBYFLOAT accept.
    command& arg(double d) {
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, d);
        return arg(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
    }

    void append_to(std::string& out) const {
        out.reserve(out.size() + 1 + detail::resp_codec::decimal_width(count_) + 2 + args_.size());
        out += '*';
        detail::resp_codec::append_decimal(out, count_);
        out += "\r\n";
        out += args_;
    }

    std::string_view name() const noexcept { return std::string_view(args_).substr(name_off_, name_len_); }
    std::size_t size() const noexcept { return count_; }

private:
    std::string args_;  // the arguments already encoded as bulk strings
    std::size_t count_ = 0;
    std::size_t name_off_ = 0;
    std::size_t name_len_ = 0;
};

}  // namespace sessionkit::redis::resp

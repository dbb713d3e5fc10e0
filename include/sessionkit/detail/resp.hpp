// sessionkit/detail/resp.hpp — a sans-I/O codec for RESP, the Redis protocol
// (RESP2 and RESP3). It only turns bytes into values and commands into bytes;
// the connection that owns the socket decides when to read and write.
//
// The parser is incremental: a reply may arrive in any number of fragments,
// split anywhere (inside a length, between CR and LF, inside a bulk body), so
// all partial state lives in the parser and each byte is looked at once.
// Everything a server can make us allocate is bounded by parser_limits, and
// nothing is reserved on the strength of a declared length alone: a hostile or
// corrupt "*16777215" costs what its bytes cost, not gigabytes up front.
#pragma once

#include <sessionkit/error.hpp>

#include <algorithm>
#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace sessionkit::detail::resp {

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

namespace impl {

/// Renders untrusted bytes for an error message: quoted, non-printable bytes
/// escaped, cut at `max` bytes, so a garbage reply (binary, a whole HTML page)
/// cannot make the message unreadable or huge.
inline std::string quote(std::string_view s, std::size_t max = 32) {
    static constexpr char hex[] = "0123456789abcdef";
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
                out += hex[c >> 4];
                out += hex[c & 0xf];
            }
        }
    }
    out += s.size() > max ? "'..." : "'";
    return out;
}

[[noreturn]] inline void fail(const std::string& what) {
    throw_error(error::protocol_error, "redis: " + what);
}

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

inline std::size_t bulk_size(std::string_view a) noexcept {
    return 1 + decimal_width(a.size()) + 2 + a.size() + 2;
}

template <class T>
inline constexpr bool is_char_like = std::is_same_v<T, char> || std::is_same_v<T, signed char> ||
                                     std::is_same_v<T, unsigned char> || std::is_same_v<T, wchar_t> ||
                                     std::is_same_v<T, char8_t> || std::is_same_v<T, char16_t> ||
                                     std::is_same_v<T, char32_t>;

} // namespace impl

struct value {
    type kind = type::null;
    std::string text;             // strings, errors, verbatim payload (no "txt:"), big_number digits, double as sent
    std::int64_t integer = 0;     // integer; boolean as 0/1
    std::vector<value> elements;  // array, set, push; map as key,value,key,value...
    std::string format;           // verbatim_string only: the 3-letter format

    bool operator==(const value&) const = default;

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
        if (is_string() && impl::parse_int64(text, n)) return n;
        mismatch("integer");
    }

    std::string_view as_string() const {
        if (!is_string()) mismatch("string");
        return text;
    }

    double as_double() const {
        if (kind == type::double_) {
            // Parsed values are valid already; this catches hand-built ones.
            if (!impl::valid_double(text)) impl::fail("bad double " + impl::quote(text));
            return impl::to_double(text);
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
            what += impl::quote(text);
        }
        impl::fail(what);
    }
};

struct parser_limits {
    std::size_t max_depth = 64;                 // nesting of aggregates
    std::size_t max_bulk = 512u * 1024 * 1024;  // bulk/verbatim/blob error length
    std::size_t max_elements = 1u << 24;        // one aggregate's element count (map counts pairs*2)
    std::size_t max_line = 64 * 1024;           // simple string/error/number line length
};

/// Incremental, resumable parser: feed it bytes in fragments of any size; it
/// keeps partial state itself (a partial line, a partial bulk body, the stack
/// of open aggregates) so no byte is scanned twice.
class parser {
public:
    explicit parser(parser_limits limits = {}) : limits_(limits) {}

    /// Consumes bytes from `in` up to and including the end of ONE complete
    /// top-level value, or all of `in` if no value completes. Returns the
    /// number of bytes consumed. After it returns with has_value()==true,
    /// take() yields the value and the parser is ready for the next one
    /// (until then feed() consumes nothing and returns 0).
    /// Throws protocol_error on malformed input; after that the parser is
    /// unusable until reset().
    std::size_t feed(std::string_view in) {
        if (state_ == state::failed) impl::fail("parser used after a protocol error without reset()");
        std::size_t pos = 0;
        try {
            while (pos < in.size() && !ready_) {
                switch (state_) {
                case state::type_byte: pos = on_type_byte(in, pos); break;
                case state::line: pos = on_line_bytes(in, pos); break;
                case state::bulk: pos = on_bulk_bytes(in, pos); break;
                case state::bulk_cr:
                case state::bulk_lf: pos = on_bulk_crlf(in, pos); break;
                case state::failed: break;  // unreachable: failures leave through the catch
                }
            }
        } catch (...) {
            state_ = state::failed;  // partial state is now meaningless
            throw;
        }
        return pos;
    }

    bool has_value() const noexcept { return ready_; }

    value take() {
        if (!ready_) throw_error(error::invalid_argument, "redis: parser::take() without a complete value");
        ready_ = false;
        return std::exchange(result_, value{});
    }

    void reset() {
        state_ = state::type_byte;
        cr_pending_ = false;
        ready_ = false;
        line_.clear();
        bulk_.clear();
        bulk_need_ = 0;
        stack_.clear();
        result_ = value{};
    }

private:
    enum class state : std::uint8_t { type_byte, line, bulk, bulk_cr, bulk_lf, failed };

    // An aggregate still waiting for `remaining` elements. Attributes use a
    // frame too (their contents must be parsed to be skipped) but keep nothing.
    struct frame {
        value v;
        std::size_t remaining = 0;
        bool attribute = false;
    };

    // Elements reserved up front per aggregate: enough for typical replies,
    // small enough that a lying count costs nothing. Beyond it vectors grow
    // as elements actually arrive.
    static constexpr std::size_t reserve_cap = 16;

    std::size_t on_type_byte(std::string_view in, std::size_t pos) {
        const char c = in[pos];
        switch (c) {
        case '+': case '-': case ':': case '$': case '*': case '_': case '#': case ',':
        case '(': case '!': case '=': case '%': case '~': case '>': case '|':
            break;
        default:
            impl::fail("unknown type byte " + impl::quote(in.substr(pos, 1)));
        }
        kind_ = c;
        line_.clear();
        state_ = state::line;
        return pos + 1;
    }

    // Reads the rest of a header line up to CRLF. A line wholly inside `in`
    // is handed on as a view into it; only a line split across fragments is
    // copied into line_. At most max_line + 1 bytes are searched, so an
    // endless line fails as soon as it is too long, not when memory runs out.
    std::size_t on_line_bytes(std::string_view in, std::size_t pos) {
        if (cr_pending_) {  // the previous fragment ended right after the CR
            if (in[pos] != '\n') impl::fail("CR not followed by LF after " + impl::quote(line_));
            cr_pending_ = false;
            on_line(line_);
            return pos + 1;
        }
        const auto avail = in.substr(pos);
        const std::size_t room = limits_.max_line - line_.size();
        const std::size_t limit = room == std::numeric_limits<std::size_t>::max() ? room : room + 1;
        const auto window = avail.substr(0, std::min(avail.size(), limit));
        const void* cr = std::memchr(window.data(), '\r', window.size());
        const auto chunk =
            cr ? window.substr(0, static_cast<std::size_t>(static_cast<const char*>(cr) - window.data())) : window;
        if (const void* lf = std::memchr(chunk.data(), '\n', chunk.size())) {
            const auto upto = static_cast<std::size_t>(static_cast<const char*>(lf) - chunk.data()) + 1;
            impl::fail("bare LF in line " + impl::quote(std::string(line_).append(chunk.substr(0, upto))));
        }
        if (cr == nullptr) {
            if (window.size() == limit)
                impl::fail("line longer than " + std::to_string(limits_.max_line) + " bytes " +
                           impl::quote(std::string(line_).append(chunk)));
            line_.append(chunk);
            return in.size();
        }
        const std::size_t k = chunk.size();
        if (k + 1 == avail.size()) {  // the LF is in the next fragment
            line_.append(chunk);
            cr_pending_ = true;
            return in.size();
        }
        if (avail[k + 1] != '\n')
            impl::fail("CR not followed by LF after " + impl::quote(std::string(line_).append(chunk)));
        if (line_.empty()) {
            on_line(chunk);
        } else {
            line_.append(chunk);
            on_line(line_);
        }
        return pos + k + 2;
    }

    // A complete header line for the type byte kind_ (CRLF stripped).
    void on_line(std::string_view line) {
        state_ = state::type_byte;  // unless a bulk body follows, see below
        switch (kind_) {
        case '+': complete(scalar(type::simple_string, line)); break;
        case '-': complete(scalar(type::simple_error, line)); break;
        case '(':
            if (!impl::all_digits(line.substr(!line.empty() && line[0] == '-')))
                impl::fail("bad big number " + impl::quote(line));
            complete(scalar(type::big_number, line));
            break;
        case ',':
            if (!impl::valid_double(line)) impl::fail("bad double " + impl::quote(line));
            complete(scalar(type::double_, line));
            break;
        case ':': {
            value v;
            v.kind = type::integer;
            // RESP3 allows an explicit '+'; from_chars does not, and must not
            // then see a second sign ("+-5").
            const auto digits = !line.empty() && line[0] == '+' ? line.substr(1) : line;
            if (digits.data() != line.data() && (digits.empty() || digits[0] == '-'))
                impl::fail("bad integer " + impl::quote(line));
            const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v.integer);
            if (ec == std::errc::result_out_of_range) impl::fail("integer out of range " + impl::quote(line));
            if (ec != std::errc{} || p != digits.data() + digits.size())
                impl::fail("bad integer " + impl::quote(line));
            complete(std::move(v));
            break;
        }
        case '#': {
            if (line != "t" && line != "f") impl::fail("bad boolean " + impl::quote(line));
            value v;
            v.kind = type::boolean;
            v.integer = line[0] == 't';
            complete(std::move(v));
            break;
        }
        case '_':
            if (!line.empty()) impl::fail("bad null " + impl::quote(line));
            complete(value{});
            break;
        case '$': case '!': case '=': {
            const auto len = length(line, kind_ == '$');
            if (len < 0) {  // RESP2 null bulk string
                complete(value{});
                break;
            }
            const auto n = static_cast<std::uint64_t>(len);
            if (n > limits_.max_bulk)
                impl::fail("bulk length " + std::to_string(n) + " exceeds limit " + std::to_string(limits_.max_bulk));
            if (kind_ == '=' && n < 4)
                impl::fail("verbatim string too short for its format prefix: " + std::to_string(n));
            bulk_.clear();
            bulk_need_ = static_cast<std::size_t>(n);
            state_ = bulk_need_ == 0 ? state::bulk_cr : state::bulk;
            break;
        }
        default: open_aggregate(line); break;  // * % ~ > |
        }
    }

    void open_aggregate(std::string_view line) {
        const auto len = length(line, kind_ == '*');
        if (len < 0) {  // RESP2 null array
            complete(value{});
            return;
        }
        auto count = static_cast<std::uint64_t>(len);
        const bool pairs = kind_ == '%' || kind_ == '|';
        if (count > limits_.max_elements || (pairs && count > limits_.max_elements / 2))
            impl::fail("aggregate of " + std::to_string(count) + (pairs ? " pairs" : " elements") +
                       " exceeds limit " + std::to_string(limits_.max_elements));
        if (pairs) count *= 2;
        if (stack_.size() + 1 > limits_.max_depth)
            impl::fail("aggregates nested deeper than " + std::to_string(limits_.max_depth));
        frame f;
        f.attribute = kind_ == '|';
        f.remaining = static_cast<std::size_t>(count);
        f.v.kind = kind_ == '*' ? type::array
                 : kind_ == '%' ? type::map
                 : kind_ == '~' ? type::set
                                : type::push;  // '>' (and '|', whose kind is never seen)
        if (count == 0) {
            if (!f.attribute) complete(std::move(f.v));
            return;
        }
        if (!f.attribute) f.v.elements.reserve(std::min<std::size_t>(f.remaining, reserve_cap));
        stack_.push_back(std::move(f));
    }

    /// A length or count: digits only, or "-1" where RESP2 allows a null
    /// (returned as -1). Leading '+', blanks and other negatives are garbage.
    std::int64_t length(std::string_view line, bool null_allowed) const {
        if (line == "-1" && null_allowed) return -1;
        if (!line.empty() && line[0] == '-' && impl::all_digits(line.substr(1)))
            impl::fail("negative length " + impl::quote(line));
        if (!impl::all_digits(line)) impl::fail("bad length " + impl::quote(line));
        std::uint64_t n = 0;
        const auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), n);
        (void)p;
        if (ec != std::errc{} || n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            impl::fail("length out of range " + impl::quote(line));
        return static_cast<std::int64_t>(n);
    }

    std::size_t on_bulk_bytes(std::string_view in, std::size_t pos) {
        const std::size_t avail = in.size() - pos;
        // Reserve what is really coming: the whole body when it is all here,
        // otherwise no more than the bytes at hand (at least 64 KiB) so a
        // declared 512 MiB that never arrives allocates nothing of the sort.
        if (bulk_.empty()) bulk_.reserve(std::min(bulk_need_, std::max<std::size_t>(avail, 64 * 1024)));
        const std::size_t n = std::min(avail, bulk_need_);
        bulk_.append(in.data() + pos, n);
        bulk_need_ -= n;
        if (bulk_need_ == 0) state_ = state::bulk_cr;
        return pos + n;
    }

    std::size_t on_bulk_crlf(std::string_view in, std::size_t pos) {
        const char want = state_ == state::bulk_cr ? '\r' : '\n';
        if (in[pos] != want)
            impl::fail("bulk body of " + std::to_string(bulk_.size()) + " bytes not followed by CRLF (got " +
                       impl::quote(in.substr(pos, 1)) + ")");
        if (state_ == state::bulk_cr) {
            state_ = state::bulk_lf;
            return pos + 1;
        }
        state_ = state::type_byte;
        value v;
        if (kind_ == '=') {
            if (bulk_[3] != ':') impl::fail("bad verbatim string " + impl::quote(bulk_));
            v.kind = type::verbatim_string;
            v.format.assign(bulk_, 0, 3);
            bulk_.erase(0, 4);
        } else {
            v.kind = kind_ == '$' ? type::bulk_string : type::bulk_error;
        }
        v.text = std::move(bulk_);
        bulk_.clear();  // moved-from strings are valid but unspecified
        complete(std::move(v));
        return pos + 1;
    }

    static value scalar(type k, std::string_view text) {
        value v;
        v.kind = k;
        v.text = text;
        return v;
    }

    // Hands a finished value to the innermost open aggregate, closing every
    // aggregate it completes, or makes it the result at the top level.
    void complete(value v) {
        while (!stack_.empty()) {
            frame& f = stack_.back();
            if (!f.attribute) f.v.elements.push_back(std::move(v));
            if (--f.remaining != 0) return;
            const bool discard = f.attribute;
            v = std::move(f.v);
            stack_.pop_back();
            // An attribute annotates the value after it; it is neither an
            // element of its parent nor a reply of its own.
            if (discard) return;
        }
        result_ = std::move(v);
        ready_ = true;
    }

    parser_limits limits_;
    state state_ = state::type_byte;
    char kind_ = 0;            // type byte of the value whose header or body is being read
    bool cr_pending_ = false;  // line_ ends just before a CR whose LF has not arrived
    bool ready_ = false;
    std::string line_;         // a header line split across fragments
    std::string bulk_;         // a bulk body being received
    std::size_t bulk_need_ = 0;
    std::vector<frame> stack_;
    value result_;
};

/// Request encoding (always RESP2 arrays of bulk strings, as Redis expects).
/// Appends one command to `out`.
inline void append_command(std::string& out, std::span<const std::string_view> args) {
    std::size_t size = 1 + impl::decimal_width(args.size()) + 2;
    for (auto a : args) size += impl::bulk_size(a);
    out.reserve(out.size() + size);
    out += '*';
    impl::append_decimal(out, args.size());
    out += "\r\n";
    for (auto a : args) impl::append_bulk(out, a);
}

inline void append_command(std::string& out, std::initializer_list<std::string_view> args) {
    append_command(out, std::span<const std::string_view>(args.begin(), args.size()));
}

/// A command being built argument by argument (integers written in decimal).
class command {
public:
    explicit command(std::string_view name) {
        args_.reserve(64);
        impl::append_bulk(args_, name);
        count_ = 1;
        name_off_ = 1 + impl::decimal_width(name.size()) + 2;
        name_len_ = name.size();
    }

    command& arg(std::string_view a) {
        impl::append_bulk(args_, a);
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
        requires(!std::is_same_v<T, bool> && !impl::is_char_like<T> && sizeof(T) <= 8)
    command& arg(T n) {
        char buf[24];
        const auto r = std::to_chars(buf, buf + sizeof buf, n);
        return arg(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
    }

    // A char or a bool is almost certainly a mistake ('x' would go out as
    // "120"); say so at compile time.
    template <class T>
        requires(std::is_same_v<T, bool> || impl::is_char_like<T>)
    command& arg(T) = delete;

    /// Shortest text that reads back as the same double ("1.5", "1e+100",
    /// "inf"), which is what ZADD and INCRBYFLOAT accept.
    command& arg(double d) {
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, d);
        return arg(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
    }

    void append_to(std::string& out) const {
        out.reserve(out.size() + 1 + impl::decimal_width(count_) + 2 + args_.size());
        out += '*';
        impl::append_decimal(out, count_);
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

} // namespace sessionkit::detail::resp

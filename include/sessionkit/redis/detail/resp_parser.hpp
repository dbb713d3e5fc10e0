// sessionkit/redis/detail/resp_parser.hpp — a sans-I/O, incremental parser
// for RESP2 and RESP3 replies: bytes in, resp::value out. The connection that
// owns the socket decides when to read.
//
// A reply may arrive in any number of fragments, split anywhere (inside a
// length, between CR and LF, inside a bulk body), so all partial state lives
// in the parser and each byte is looked at once. Everything a server can make
// us allocate is bounded by parser_limits, and nothing is reserved on the
// strength of a declared length alone: a hostile or corrupt "*16777215" costs
// what its bytes cost, not gigabytes up front.
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/redis/detail/resp_text.hpp>
#include <sessionkit/redis/resp.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sessionkit::redis::detail::resp_codec {

using resp::type;
using resp::value;

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
        if (state_ == state::failed) fail("parser used after a protocol error without reset()");
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
        case '+':
        case '-':
        case ':':
        case '$':
        case '*':
        case '_':
        case '#':
        case ',':
        case '(':
        case '!':
        case '=':
        case '%':
        case '~':
        case '>':
        case '|': break;
        default: fail("unknown type byte " + quote_untrusted(in.substr(pos, 1)));
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
            if (in[pos] != '\n') fail("CR not followed by LF after " + quote_untrusted(line_));
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
            fail("bare LF in line " + quote_untrusted(std::string(line_).append(chunk.substr(0, upto))));
        }
        if (cr == nullptr) {
            if (window.size() == limit)
                fail("line longer than " + std::to_string(limits_.max_line) + " bytes " +
                     quote_untrusted(std::string(line_).append(chunk)));
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
            fail("CR not followed by LF after " + quote_untrusted(std::string(line_).append(chunk)));
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
            if (!all_digits(line.substr(!line.empty() && line[0] == '-')))
                fail("bad big number " + quote_untrusted(line));
            complete(scalar(type::big_number, line));
            break;
        case ',':
            if (!valid_double(line)) fail("bad double " + quote_untrusted(line));
            complete(scalar(type::double_, line));
            break;
        case ':': {
            value v;
            v.kind = type::integer;
            // RESP3 allows an explicit '+'; from_chars does not, and must not
            // then see a second sign ("+-5").
            const auto digits = !line.empty() && line[0] == '+' ? line.substr(1) : line;
            if (digits.data() != line.data() && (digits.empty() || digits[0] == '-'))
                fail("bad integer " + quote_untrusted(line));
            const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v.integer);
            if (ec == std::errc::result_out_of_range) fail("integer out of range " + quote_untrusted(line));
            if (ec != std::errc{} || p != digits.data() + digits.size()) fail("bad integer " + quote_untrusted(line));
            complete(std::move(v));
            break;
        }
        case '#': {
            if (line != "t" && line != "f") fail("bad boolean " + quote_untrusted(line));
            value v;
            v.kind = type::boolean;
            v.integer = line[0] == 't';
            complete(std::move(v));
            break;
        }
        case '_':
            if (!line.empty()) fail("bad null " + quote_untrusted(line));
            complete(value{});
            break;
        case '$':
        case '!':
        case '=': {
            const auto len = length(line, kind_ == '$');
            if (len < 0) {  // RESP2 null bulk string
                complete(value{});
                break;
            }
            const auto n = static_cast<std::uint64_t>(len);
            if (n > limits_.max_bulk)
                fail("bulk length " + std::to_string(n) + " exceeds limit " + std::to_string(limits_.max_bulk));
            if (kind_ == '=' && n < 4) fail("verbatim string too short for its format prefix: " + std::to_string(n));
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
            fail("aggregate of " + std::to_string(count) + (pairs ? " pairs" : " elements") + " exceeds limit " +
                 std::to_string(limits_.max_elements));
        if (pairs) count *= 2;
        if (stack_.size() + 1 > limits_.max_depth)
            fail("aggregates nested deeper than " + std::to_string(limits_.max_depth));
        frame f;
        f.attribute = kind_ == '|';
        f.remaining = static_cast<std::size_t>(count);
        f.v.kind = kind_ == '*'   ? type::array
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
        if (!line.empty() && line[0] == '-' && all_digits(line.substr(1)))
            fail("negative length " + quote_untrusted(line));
        if (!all_digits(line)) fail("bad length " + quote_untrusted(line));
        std::uint64_t n = 0;
        const auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), n);
        (void)p;
        if (ec != std::errc{} || n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            fail("length out of range " + quote_untrusted(line));
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
            fail("bulk body of " + std::to_string(bulk_.size()) + " bytes not followed by CRLF (got " +
                 quote_untrusted(in.substr(pos, 1)) + ")");
        if (state_ == state::bulk_cr) {
            state_ = state::bulk_lf;
            return pos + 1;
        }
        state_ = state::type_byte;
        value v;
        if (kind_ == '=') {
            if (bulk_[3] != ':') fail("bad verbatim string " + quote_untrusted(bulk_));
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
    std::string line_;  // a header line split across fragments
    std::string bulk_;  // a bulk body being received
    std::size_t bulk_need_ = 0;
    std::vector<frame> stack_;
    value result_;
};

}  // namespace sessionkit::redis::detail::resp_codec

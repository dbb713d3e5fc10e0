// The RESP codec: every type byte by byte, RESP2 nulls, nesting, attributes,
// every rejection with its message, limits against hostile lengths, command
// encoding, and a random round trip. Every input is parsed whole, split in two
// at every position, and one byte at a time, with the same outcome each time.
#include <sessionkit/redis/detail/resp_parser.hpp>
#include <sessionkit/redis/resp.hpp>

#include "fuzz/resp_encode.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace rp = sessionkit::redis::resp;
namespace resp_codec = sessionkit::redis::detail::resp_codec;
using rp::type;
using rp::value;
using namespace std::literals;

// ---- value builders

value scalar(type k, std::string text) { return value::of_text(k, std::move(text)); }
value simple(std::string s) { return scalar(type::simple_string, std::move(s)); }
value bulk(std::string s) { return scalar(type::bulk_string, std::move(s)); }
value integer(std::int64_t n) { return value::of_integer(n); }
value boolean(bool b) { return value::of_boolean(b); }
value verbatim(std::string format, std::string text) {
    value v = scalar(type::verbatim_string, std::move(text));
    v.format = std::move(format);
    return v;
}
value aggregate(type k, std::vector<value> elements) { return value::of_elements(k, std::move(elements)); }
value array(std::vector<value> e) { return aggregate(type::array, std::move(e)); }
value map(std::vector<value> e) { return aggregate(type::map, std::move(e)); }
const value null{};

// ---- feeding

std::string show(std::string_view bytes) { return sessionkit::detail::quote_untrusted(bytes, 200); }

std::string show(const std::vector<value>& values) {
    std::string out;
    for (const auto& v : values) resp_test::encode(out, v);
    return show(out);
}

/// Feeds one fragment, looping as a connection would: feed() stops after
/// each complete value. Checks the consumed counts as it goes.
void feed_fragment(resp_codec::parser& p, std::string_view fragment, std::vector<value>& out) {
    while (!fragment.empty()) {
        const auto n = p.feed(fragment);
        BOOST_REQUIRE_LE(n, fragment.size());
        if (p.has_value()) {
            BOOST_REQUIRE_GT(n, 0u);
            out.push_back(p.take());
            BOOST_REQUIRE(!p.has_value());
        } else {
            BOOST_REQUIRE_EQUAL(n, fragment.size());  // no value completed: all of it is consumed
        }
        fragment.remove_prefix(n);
    }
}

using fragments = std::vector<std::string_view>;

/// Calls f(fragments, description) for: the whole input, every split in two
/// (empty halves included), and one byte at a time.
void for_each_split(std::string_view input, const std::function<void(const fragments&, const std::string&)>& f) {
    f({input}, "whole");
    for (std::size_t i = 0; i <= input.size(); ++i)
        f({input.substr(0, i), input.substr(i)}, "split at " + std::to_string(i));
    fragments bytes;
    for (std::size_t i = 0; i < input.size(); ++i) bytes.push_back(input.substr(i, 1));
    f(bytes, "byte by byte");
}

std::vector<value> parse_fragments(const fragments& frags, resp_codec::parser_limits limits = {}) {
    resp_codec::parser p(limits);
    std::vector<value> got;
    for (auto f : frags) feed_fragment(p, f, got);
    return got;
}

void check(std::string_view input, const std::vector<value>& expected, resp_codec::parser_limits limits = {}) {
    for_each_split(input, [&](const fragments& frags, const std::string& how) {
        const auto got = parse_fragments(frags, limits);
        BOOST_TEST((got == expected), show(input)
                                          << " (" << how << "): got " << show(got) << ", expected " << show(expected));
    });
}

void check(std::string_view input, const value& expected, resp_codec::parser_limits limits = {}) {
    check(input, std::vector<value>{expected}, limits);
}

/// The input must fail with a protocol_error naming `what`, however split;
/// the parser then refuses more input until reset().
void check_error(std::string_view input, std::string_view what, resp_codec::parser_limits limits = {}) {
    for_each_split(input, [&](const fragments& frags, const std::string& how) {
        resp_codec::parser p(limits);
        std::vector<value> got;
        try {
            for (auto f : frags) feed_fragment(p, f, got);
        } catch (const boost::system::system_error& e) {
            BOOST_TEST((e.code() == sessionkit::make_error_code(sessionkit::error::protocol_error)));
            const std::string_view msg = e.what();
            BOOST_TEST(msg.starts_with("redis: "), msg);
            BOOST_TEST(msg.find(what) != std::string_view::npos,
                       show(input) << " (" << how << "): '" << msg << "' does not mention '" << what << "'");
            BOOST_CHECK_THROW(p.feed("+OK\r\n"), boost::system::system_error);
            BOOST_TEST(!p.has_value());
            p.reset();
            BOOST_TEST(p.feed("+OK\r\n") == 5u);
            BOOST_TEST((p.take() == simple("OK")));
            return;
        }
        BOOST_ERROR(show(input) << " (" << how << "): accepted, expected an error about '" << what << "'");
    });
}

std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const boost::system::system_error& e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(resp)

// ---------------------------------------------------------------- scalars

BOOST_AUTO_TEST_CASE(simple_strings_and_errors) {
    check("+OK\r\n", simple("OK"));
    check("+\r\n", simple(""));
    check("+hello world \t\x01\xff\r\n", simple("hello world \t\x01\xff"));
    check("-ERR unknown command 'x'\r\n", scalar(type::simple_error, "ERR unknown command 'x'"));
    check("-\r\n", scalar(type::simple_error, ""));
}

BOOST_AUTO_TEST_CASE(integers) {
    check(":0\r\n", integer(0));
    check(":-42\r\n", integer(-42));
    check(":+7\r\n", integer(7));  // RESP3 allows the explicit sign
    check(":007\r\n", integer(7));
    check(":9223372036854775807\r\n", integer(std::numeric_limits<std::int64_t>::max()));
    check(":-9223372036854775808\r\n", integer(std::numeric_limits<std::int64_t>::min()));
}

BOOST_AUTO_TEST_CASE(bulk_strings) {
    check("$5\r\nhello\r\n", bulk("hello"));
    check("$0\r\n\r\n", bulk(""));
    // Binary bodies: CR, LF, NUL and a fake header inside are just bytes.
    check("$8\r\na\r\n\0$1\r\n\r\n"sv, bulk("a\r\n\0$1\r\n"s));
    check("!21\r\nSYNTAX invalid syntax\r\n", scalar(type::bulk_error, "SYNTAX invalid syntax"));
    check("!0\r\n\r\n", scalar(type::bulk_error, ""));
    const std::string medium(3000, 'm');
    check("$3000\r\n" + medium + "\r\n", bulk(medium));
}

BOOST_AUTO_TEST_CASE(bulk_larger_than_the_initial_reservation) {
    // Over the 64 KiB the parser reserves for a body still in flight, so a
    // fragmented body must grow the string. Splitting this one at every
    // position would mean 100k parses of 100 KB; the split logic is the one
    // the 3000-byte body above goes through, so fixed fragment sizes do here.
    std::string big(100'000, 'x');
    big[0] = '\r';
    big[65'536] = '\n';
    const std::string input = "$100000\r\n" + big + "\r\n";
    for (std::size_t step : {1u, 7u, 4096u, 65'536u, 65'545u, 99'999u, 100'009u, 200'000u}) {
        fragments frags;
        for (std::size_t pos = 0; pos < input.size(); pos += step)
            frags.push_back(std::string_view(input).substr(pos, step));
        const auto got = parse_fragments(frags);
        BOOST_TEST_REQUIRE(got.size() == 1u, "step " << step);
        BOOST_TEST((got[0] == bulk(big)), "step " << step);
    }
}

BOOST_AUTO_TEST_CASE(verbatim_strings) {
    check("=15\r\ntxt:Some string\r\n", verbatim("txt", "Some string"));
    check("=4\r\nmkd:\r\n", verbatim("mkd", ""));
    check("=7\r\ntxt:\r\n\0\r\n"sv, verbatim("txt", "\r\n\0"s));
}

BOOST_AUTO_TEST_CASE(nulls_booleans_doubles_big_numbers) {
    check("_\r\n", null);
    check("$-1\r\n", null);  // RESP2 null bulk string
    check("*-1\r\n", null);  // RESP2 null array
    check("#t\r\n", boolean(true));
    check("#f\r\n", boolean(false));
    for (auto d : {"1.23", "10", "-1.5E+10", "1e-5", "+2.5", "inf", "-inf", "nan", "0.0", "1e400"})
        check("," + std::string(d) + "\r\n", scalar(type::double_, d));
    check("(3492890328409238509324850943850943825024385\r\n",
          scalar(type::big_number, "3492890328409238509324850943850943825024385"));
    check("(-3492890328409238509324850943850943825024385\r\n",
          scalar(type::big_number, "-3492890328409238509324850943850943825024385"));
    check("(0\r\n", scalar(type::big_number, "0"));
}

// ---------------------------------------------------------------- aggregates

BOOST_AUTO_TEST_CASE(flat_aggregates) {
    check("*2\r\n:1\r\n$1\r\na\r\n", array({integer(1), bulk("a")}));
    check("*0\r\n", array({}));
    check("%0\r\n", map({}));
    check("~0\r\n", aggregate(type::set, {}));
    check(">0\r\n", aggregate(type::push, {}));
    check("~3\r\n+a\r\n+b\r\n:3\r\n", aggregate(type::set, {simple("a"), simple("b"), integer(3)}));
    check("%2\r\n+first\r\n:1\r\n+second\r\n#f\r\n",
          map({simple("first"), integer(1), simple("second"), boolean(false)}));
    check("*3\r\n$-1\r\n*-1\r\n_\r\n", array({null, null, null}));  // RESP2 nulls as elements
}

BOOST_AUTO_TEST_CASE(push) {
    check(">3\r\n$7\r\nmessage\r\n$4\r\nchan\r\n$5\r\nhello\r\n",
          aggregate(type::push, {bulk("message"), bulk("chan"), bulk("hello")}));
    // A push between two replies is just another top-level value.
    check("+OK\r\n>2\r\n+invalidate\r\n*1\r\n+k\r\n:1\r\n",
          std::vector<value>{simple("OK"), aggregate(type::push, {simple("invalidate"), array({simple("k")})}),
                             integer(1)});
}

BOOST_AUTO_TEST_CASE(nested_aggregates) {
    // A map of arrays of maps, with an empty map and an empty array inside.
    const std::string input = "%2\r\n"
                              "+alpha\r\n*2\r\n%1\r\n+a\r\n:1\r\n%0\r\n"
                              "$4\r\nbeta\r\n*3\r\n%2\r\n+x\r\n,1.5\r\n+y\r\n*0\r\n_\r\n~1\r\n#t\r\n";
    check(input, map({simple("alpha"), array({map({simple("a"), integer(1)}), map({})}), bulk("beta"),
                      array({map({simple("x"), scalar(type::double_, "1.5"), simple("y"), array({})}), null,
                             aggregate(type::set, {boolean(true)})})}));
    // Deep but within the limit: 64 levels by default.
    std::string deep;
    for (int i = 0; i < 64; ++i) deep += "*1\r\n";
    deep += ":1\r\n";
    value expected = integer(1);
    for (int i = 0; i < 64; ++i) expected = array({expected});
    check(deep, expected);
}

BOOST_AUTO_TEST_CASE(attributes_are_skipped) {
    // The example from the RESP3 specification, at top level.
    check("|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
          "*2\r\n:2039123\r\n:9543892\r\n",
          array({integer(2039123), integer(9543892)}));
    // Inside an aggregate, before its first, a middle and its last element:
    // the attribute is not counted as an element.
    check("*3\r\n|1\r\n+ttl\r\n:3600\r\n+a\r\n+b\r\n|1\r\n+k\r\n*1\r\n:1\r\n+c\r\n",
          array({simple("a"), simple("b"), simple("c")}));
    check("*1\r\n|1\r\n+k\r\n+v\r\n:5\r\n", array({integer(5)}));
    // Attributes before a map value, inside an attribute, empty, and two in a row.
    check("%1\r\n+k\r\n|1\r\n+meta\r\n|1\r\n+inner\r\n_\r\n%1\r\n+a\r\n+b\r\n:2\r\n", map({simple("k"), integer(2)}));
    check("|0\r\n+x\r\n", simple("x"));
    check("|1\r\n+a\r\n+b\r\n|1\r\n+c\r\n+d\r\n$1\r\nz\r\n", bulk("z"));
    // An attribute that ends the input leaves no value (yet).
    check("|1\r\n+a\r\n+b\r\n", std::vector<value>{});
    check("+one\r\n|1\r\n+a\r\n+b\r\n+two\r\n", std::vector<value>{simple("one"), simple("two")});
}

// ---------------------------------------------------------------- streams

BOOST_AUTO_TEST_CASE(values_back_to_back) {
    const std::string input = "+OK\r\n:1\r\n$-1\r\n*0\r\n$3\r\nfoo\r\n%1\r\n+a\r\n+b\r\n";
    check(input, {simple("OK"), integer(1), null, array({}), bulk("foo"), map({simple("a"), simple("b")})});

    // feed() stops right after each value and says how far it got.
    resp_codec::parser p;
    std::string_view rest = input;
    std::vector<std::size_t> consumed;
    while (!rest.empty()) {
        const auto n = p.feed(rest);
        BOOST_REQUIRE(p.has_value());
        p.take();
        consumed.push_back(n);
        rest.remove_prefix(n);
    }
    BOOST_TEST(consumed == (std::vector<std::size_t>{5, 4, 5, 4, 9, 12}), boost::test_tools::per_element());

    // Until the value is taken, feed() consumes nothing more.
    BOOST_TEST(p.feed(":1\r\n:2\r\n") == 4u);
    BOOST_TEST(p.feed(":2\r\n") == 0u);
    BOOST_TEST(p.take().as_integer() == 1);
    BOOST_TEST(p.feed(":2\r\n") == 4u);
    BOOST_TEST(p.take().as_integer() == 2);
    BOOST_CHECK_THROW(p.take(), boost::system::system_error);
}

BOOST_AUTO_TEST_CASE(reset_discards_partial_state) {
    resp_codec::parser p;
    BOOST_TEST(p.feed("*2\r\n$10\r\nabc") == 12u);
    BOOST_TEST(!p.has_value());
    p.reset();
    BOOST_TEST(p.feed("+OK\r\n") == 5u);
    BOOST_TEST((p.take() == simple("OK")));
    BOOST_TEST(p.feed("+O") == 2u);
    p.reset();
    BOOST_TEST(p.feed(":5\r\n") == 4u);
    BOOST_TEST((p.take() == integer(5)));
}

// ---------------------------------------------------------------- rejections

BOOST_AUTO_TEST_CASE(rejects_unknown_type_bytes) {
    check_error("?x\r\n", "unknown type byte '?'");
    check_error("HTTP/1.1 400 Bad Request\r\n", "unknown type byte 'H'");
    check_error("\x00\r\n"sv, "unknown type byte '\\x00'");
    check_error("$?\r\n;4\r\nHell\r\n;0\r\n", "bad length '?'");  // RESP3 streamed strings: not supported
    check_error(".\r\n", "unknown type byte '.'");
    check_error("+OK\r\n\r\n", "unknown type byte '\\r'");  // the first value parses, the stray CRLF does not
    check_error("*2\r\n:1\r\nx\r\n", "unknown type byte 'x'");
}

BOOST_AUTO_TEST_CASE(rejects_bad_lengths) {
    check_error("$-2\r\n", "negative length '-2'");
    check_error("*-5\r\n", "negative length '-5'");
    check_error("%-1\r\n", "negative length '-1'");  // only $ and * had RESP2 nulls
    check_error("!-1\r\n", "negative length '-1'");
    check_error("=-1\r\n", "negative length '-1'");
    check_error("~-1\r\n", "negative length '-1'");
    check_error("$3x\r\nabc\r\n", "bad length '3x'");
    check_error("$ 3\r\nabc\r\n", "bad length ' 3'");
    check_error("$+3\r\nabc\r\n", "bad length '+3'");
    check_error("*+1\r\n:1\r\n", "bad length '+1'");
    check_error("$\r\n", "bad length ''");
    check_error("*-\r\n", "bad length '-'");
    check_error("$--1\r\n", "bad length '--1'");
    check_error("$99999999999999999999999\r\n", "length out of range");
    check_error("*9223372036854775808\r\n", "length out of range");
}

BOOST_AUTO_TEST_CASE(rejects_bad_numbers) {
    check_error(":9223372036854775808\r\n", "integer out of range '9223372036854775808'");
    check_error(":-9223372036854775809\r\n", "integer out of range");
    check_error(":\r\n", "bad integer ''");
    check_error(":abc\r\n", "bad integer 'abc'");
    check_error(":12 \r\n", "bad integer '12 '");
    check_error(": 12\r\n", "bad integer ' 12'");
    check_error(":+-5\r\n", "bad integer '+-5'");
    check_error(":+\r\n", "bad integer '+'");
    check_error(":1.5\r\n", "bad integer '1.5'");
    for (auto d : {"", "abc", "1.", ".5", "1e", "1e+", "infinity", "--1", "1.5x", "Inf", "nan(1)", "0x10", " 1"})
        check_error("," + std::string(d) + "\r\n", "bad double '" + std::string(d) + "'");
    for (auto b : {"", "-", "+1", "12a", "1-2", " 1", "--1"})
        check_error("(" + std::string(b) + "\r\n", "bad big number '" + std::string(b) + "'");
}

BOOST_AUTO_TEST_CASE(rejects_bad_scalars) {
    check_error("#x\r\n", "bad boolean 'x'");
    check_error("#\r\n", "bad boolean ''");
    check_error("#tt\r\n", "bad boolean 'tt'");
    check_error("#T\r\n", "bad boolean 'T'");
    check_error("_x\r\n", "bad null 'x'");
    check_error("=3\r\ntxt\r\n", "verbatim string too short");
    check_error("=5\r\ntxt-a\r\n", "bad verbatim string 'txt-a'");
}

BOOST_AUTO_TEST_CASE(rejects_bad_line_ends) {
    check_error("+OK\n", "bare LF in line 'OK\\n'");
    check_error("+O\nK\r\n", "bare LF in line 'O\\n'");
    check_error(":1\n:2\r\n", "bare LF");
    check_error("+OK\rx", "CR not followed by LF after 'OK'");
    check_error("+OK\r\r\n", "CR not followed by LF");
    check_error("$3\r\nabcd\r\n", "bulk body of 3 bytes not followed by CRLF (got 'd')");
    check_error("$3\r\nabc\n", "not followed by CRLF (got '\\n')");
    check_error("$3\r\nabc\rx", "not followed by CRLF (got 'x')");
    check_error("$0\r\nx", "not followed by CRLF");
    check_error("!2\r\nabc\r\n", "not followed by CRLF");
}

BOOST_AUTO_TEST_CASE(error_messages_are_escaped_and_truncated) {
    const std::string junk = "+" + std::string(100, 'a') + "\n";
    const auto msg = message_of([&] {
        resp_codec::parser p;
        p.feed(junk);
    });
    BOOST_TEST(msg.find("bare LF in line '" + std::string(32, 'a') + "'...") != std::string::npos, msg);
    BOOST_TEST(msg.find(std::string(33, 'a')) == std::string::npos, msg);
    const auto binary = message_of([] {
        resp_codec::parser p;
        p.feed("\x80"sv);
    });
    BOOST_TEST(binary.find("unknown type byte '\\x80'") != std::string::npos, binary);
    check_error("#'\\\x7f\t\r\n"sv, "bad boolean '\\'\\\\\\x7f\\t'");
}

// ---------------------------------------------------------------- limits

BOOST_AUTO_TEST_CASE(limits) {
    resp_codec::parser_limits small;
    small.max_line = 8;
    small.max_bulk = 4;
    small.max_elements = 4;
    small.max_depth = 3;

    check("+12345678\r\n", simple("12345678"), small);
    check_error("+123456789\r\n", "line longer than 8 bytes '123456789'", small);
    check_error("-" + std::string(1000, 'e'), "line longer than 8 bytes", small);  // fails before the end arrives
    check_error(":000000000001\r\n", "line longer than 8 bytes", small);

    check("$4\r\nabcd\r\n", bulk("abcd"), small);
    check_error("$5\r\nabcde\r\n", "bulk length 5 exceeds limit 4", small);
    check_error("!5\r\nabcde\r\n", "bulk length 5 exceeds limit 4", small);
    check_error("=9\r\ntxt:abcde\r\n", "bulk length 9 exceeds limit 4", small);

    check("*4\r\n:1\r\n:2\r\n:3\r\n:4\r\n", array({integer(1), integer(2), integer(3), integer(4)}), small);
    check_error("*5\r\n", "aggregate of 5 elements exceeds limit 4", small);
    check_error("~5\r\n", "aggregate of 5 elements exceeds limit 4", small);
    check_error(">5\r\n", "aggregate of 5 elements exceeds limit 4", small);
    check("%2\r\n:1\r\n:2\r\n:3\r\n:4\r\n", map({integer(1), integer(2), integer(3), integer(4)}), small);
    check_error("%3\r\n", "aggregate of 3 pairs exceeds limit 4", small);
    check_error("|3\r\n", "aggregate of 3 pairs exceeds limit 4", small);

    check("*1\r\n*1\r\n*1\r\n:1\r\n", array({array({array({integer(1)})})}), small);
    check_error("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", "nested deeper than 3", small);
    check_error("*1\r\n*1\r\n*1\r\n*0\r\n", "nested deeper than 3", small);
    check("*1\r\n%1\r\n+k\r\n|1\r\n+a\r\n+b\r\n~1\r\n:1\r\n",
          array({map({simple("k"), aggregate(type::set, {integer(1)})})}), small);
    check_error("*1\r\n|1\r\n+a\r\n*1\r\n*1\r\n:1\r\n:1\r\n", "nested deeper than 3", small);  // attributes count
    std::string deep;
    for (int i = 0; i < 65; ++i) deep += "*1\r\n";
    check_error(deep, "nested deeper than 64");
}

BOOST_AUTO_TEST_CASE(hostile_lengths_allocate_nothing_up_front) {
    // Reserving by the declared length would ask for ~100 TB here: a
    // bad_alloc, or an ASan "allocation-size-too-big" abort. Without limits
    // in the way, the parser must simply wait for elements that never come.
    resp_codec::parser_limits unlimited;
    unlimited.max_elements = std::numeric_limits<std::size_t>::max();
    unlimited.max_bulk = std::numeric_limits<std::size_t>::max();
    unlimited.max_line = std::numeric_limits<std::size_t>::max();
    unlimited.max_depth = std::numeric_limits<std::size_t>::max();
    check("+OK\r\n*1\r\n$2\r\nab\r\n", {simple("OK"), array({bulk("ab")})}, unlimited);
    for (auto header : {"*1000000000000\r\n", "%1000000000000\r\n", "~1000000000000\r\n", ">1000000000000\r\n",
                        "$1000000000000\r\n", "!1000000000000\r\n", "=1000000000000\r\n"}) {
        resp_codec::parser p(unlimited);
        const std::string input = std::string(header) + ":1\r\n:2\r\n";
        BOOST_TEST(p.feed(input) == input.size());
        BOOST_TEST(!p.has_value());
    }
    // The default limits allow "*16777216"; 64 nested levels of it cost what
    // their bytes cost.
    resp_codec::parser p;
    std::string nested;
    for (int i = 0; i < 64; ++i) nested += "*16777216\r\n";
    BOOST_TEST(p.feed(nested) == nested.size());
    BOOST_TEST(!p.has_value());
    check_error("*16777217\r\n", "aggregate of 16777217 elements exceeds limit 16777216");
    check_error("$536870913\r\n", "bulk length 536870913 exceeds limit 536870912");
}

// ---------------------------------------------------------------- value helpers

BOOST_AUTO_TEST_CASE(type_names) {
    const std::vector<std::pair<type, std::string_view>> names = {{type::simple_string, "simple_string"},
                                                                  {type::simple_error, "simple_error"},
                                                                  {type::integer, "integer"},
                                                                  {type::bulk_string, "bulk_string"},
                                                                  {type::bulk_error, "bulk_error"},
                                                                  {type::null, "null"},
                                                                  {type::boolean, "boolean"},
                                                                  {type::double_, "double"},
                                                                  {type::big_number, "big_number"},
                                                                  {type::verbatim_string, "verbatim_string"},
                                                                  {type::array, "array"},
                                                                  {type::map, "map"},
                                                                  {type::set, "set"},
                                                                  {type::push, "push"}};
    for (auto [t, name] : names) BOOST_TEST(rp::to_string(t) == name);
}

BOOST_AUTO_TEST_CASE(predicates_and_accessors) {
    BOOST_TEST(null.is_null());
    BOOST_TEST(!simple("").is_null());
    BOOST_TEST(scalar(type::simple_error, "x").is_error());
    BOOST_TEST(scalar(type::bulk_error, "x").is_error());
    BOOST_TEST(!bulk("x").is_error());
    BOOST_TEST(simple("x").is_string());
    BOOST_TEST(bulk("x").is_string());
    BOOST_TEST(verbatim("txt", "x").is_string());
    BOOST_TEST(!scalar(type::simple_error, "x").is_string());
    BOOST_TEST(!scalar(type::big_number, "1").is_string());

    BOOST_TEST(integer(-5).as_integer() == -5);
    BOOST_TEST(bulk("123").as_integer() == 123);
    BOOST_TEST(simple("-9223372036854775808").as_integer() == std::numeric_limits<std::int64_t>::min());
    BOOST_TEST(verbatim("txt", "42").as_integer() == 42);
    BOOST_TEST(bulk("abc").as_string() == "abc");
    BOOST_TEST(simple("").as_string() == "");
    BOOST_TEST(verbatim("mkd", "# hi").as_string() == "# hi");

    BOOST_TEST(integer(3).as_double() == 3.0);
    BOOST_TEST(scalar(type::double_, "1.5").as_double() == 1.5);
    BOOST_TEST(scalar(type::double_, "+2.5e1").as_double() == 25.0);
    BOOST_TEST(scalar(type::double_, "inf").as_double() == std::numeric_limits<double>::infinity());
    BOOST_TEST(scalar(type::double_, "-inf").as_double() == -std::numeric_limits<double>::infinity());
    BOOST_TEST(std::isnan(scalar(type::double_, "nan").as_double()));
    // Out of a double's range: saturates like strtod instead of failing.
    BOOST_TEST(scalar(type::double_, "1e400").as_double() == std::numeric_limits<double>::infinity());
    BOOST_TEST(scalar(type::double_, "-1e400").as_double() == -std::numeric_limits<double>::infinity());
    BOOST_TEST(scalar(type::double_, "0.0001e-400").as_double() == 0.0);
    BOOST_TEST(std::signbit(scalar(type::double_, "-1e-400").as_double()));
    BOOST_TEST(scalar(type::double_, "1" + std::string(400, '0')).as_double() ==
               std::numeric_limits<double>::infinity());
    BOOST_TEST(scalar(type::double_, "0." + std::string(400, '0') + "1").as_double() == 0.0);
    BOOST_TEST(scalar(type::double_, "1e99999999999999999999").as_double() == std::numeric_limits<double>::infinity());
    BOOST_TEST(scalar(type::double_, "1e-99999999999999999999").as_double() == 0.0);
    BOOST_TEST(scalar(type::double_, "4.9406564584124654e-324").as_double() > 0.0);  // denormal, not underflow
}

BOOST_AUTO_TEST_CASE(accessors_name_expected_and_actual_types) {
    auto check_msg = [](const std::function<void()>& f, std::string_view what) {
        const auto msg = message_of(f);
        BOOST_TEST(msg.find(what) != std::string::npos, "'" << msg << "' does not mention '" << what << "'");
        BOOST_TEST(msg.find("backend protocol error") != std::string::npos, msg);
    };
    check_msg([] { (void)bulk("12a").as_integer(); }, "redis: expected integer, got bulk_string '12a'");
    check_msg([] { (void)bulk("+12").as_integer(); }, "expected integer, got bulk_string '+12'");
    check_msg([] { (void)bulk(" 12").as_integer(); }, "expected integer, got bulk_string ' 12'");
    check_msg([] { (void)bulk("").as_integer(); }, "expected integer, got bulk_string ''");
    check_msg([] { (void)bulk("99999999999999999999").as_integer(); }, "expected integer, got bulk_string");
    check_msg([] { (void)null.as_integer(); }, "expected integer, got null");
    check_msg([] { (void)boolean(true).as_integer(); }, "expected integer, got boolean 1");
    check_msg([] { (void)scalar(type::simple_error, "WRONGTYPE Operation").as_string(); },
              "expected string, got simple_error 'WRONGTYPE Operation'");
    check_msg([] { (void)scalar(type::bulk_error, "SYNTAX\r\n").as_string(); },
              "expected string, got bulk_error 'SYNTAX\\r\\n'");
    check_msg([] { (void)integer(4).as_string(); }, "expected string, got integer 4");
    check_msg([] { (void)array({}).as_string(); }, "expected string, got array");
    check_msg([] { (void)bulk("1.5").as_double(); }, "expected double, got bulk_string '1.5'");
    check_msg([] { (void)scalar(type::big_number, "1").as_double(); }, "expected double, got big_number '1'");
    check_msg([] { (void)scalar(type::double_, "1.5x").as_double(); }, "bad double '1.5x'");
}

// ---------------------------------------------------------------- commands

BOOST_AUTO_TEST_CASE(append_command_encodes_bulk_arrays) {
    std::string out;
    rp::append_command(out, {"SET", "key", "value"});
    BOOST_TEST(out == "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");
    // Appends: a pipeline is commands back to back.
    rp::append_command(out, {"GET", ""});
    BOOST_TEST(out == "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$0\r\n\r\n");

    out.clear();
    const std::vector<std::string_view> args = {"SET", "k", "a\r\nb\0c"sv, ""};
    rp::append_command(out, std::span<const std::string_view>(args));
    BOOST_TEST(out == "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\na\r\nb\0c\r\n$0\r\n\r\n"sv);

    out.clear();
    rp::append_command(out, std::span<const std::string_view>{});
    BOOST_TEST(out == "*0\r\n");

    out.clear();
    const std::string long_arg(12345, '\0');
    rp::append_command(out, {"SET", long_arg});
    BOOST_TEST(out == "*2\r\n$3\r\nSET\r\n$12345\r\n" + long_arg + "\r\n");
}

BOOST_AUTO_TEST_CASE(command_builder) {
    rp::command cmd("ZADD");
    BOOST_TEST(cmd.name() == "ZADD");
    BOOST_TEST(cmd.size() == 1u);
    cmd.arg("key")
        .arg(std::int64_t{-12})
        .arg(5)
        .arg(5u)
        .arg(std::uint64_t{18446744073709551615u})
        .arg(std::size_t{10})
        .arg(std::numeric_limits<std::int64_t>::min())
        .arg(static_cast<short>(-3))
        .arg(1.5)
        .arg(""sv)
        .arg("\r\n\0"sv)
        .arg(std::string("str"));
    BOOST_TEST(cmd.size() == 13u);
    BOOST_TEST(cmd.name() == "ZADD");
    std::string out = "prefix";
    cmd.append_to(out);
    BOOST_TEST(out == "prefix*13\r\n$4\r\nZADD\r\n$3\r\nkey\r\n$3\r\n-12\r\n$1\r\n5\r\n$1\r\n5\r\n"
                      "$20\r\n18446744073709551615\r\n$2\r\n10\r\n$20\r\n-9223372036854775808\r\n$2\r\n-3\r\n"
                      "$3\r\n1.5\r\n$0\r\n\r\n$3\r\n\r\n\0\r\n$3\r\nstr\r\n"sv);

    // name() survives the buffer growing; an empty name is still a name.
    rp::command big("SET");
    for (int i = 0; i < 1000; ++i) big.arg(i);
    BOOST_TEST(big.name() == "SET");
    rp::command empty{""};
    BOOST_TEST(empty.name() == "");
    std::string e;
    empty.append_to(e);
    BOOST_TEST(e == "*1\r\n$0\r\n\r\n");

    BOOST_TEST(rp::command("X").arg(-0.0).arg(1e100).arg(std::numeric_limits<double>::infinity()).size() == 4u);
    std::string doubles;
    rp::command("X").arg(1e100).arg(-std::numeric_limits<double>::infinity()).append_to(doubles);
    BOOST_TEST(doubles == "*3\r\n$1\r\nX\r\n$6\r\n1e+100\r\n$4\r\n-inf\r\n");
}

// A char or a bool as an argument does not compile; strings and every
// integer width do.
template <class T>
concept takes_arg = requires(rp::command c, T v) {
    c.arg(v);
};
static_assert(takes_arg<const char*>);
static_assert(takes_arg<std::string>);
static_assert(takes_arg<int> && takes_arg<unsigned> && takes_arg<long long> && takes_arg<std::uint64_t>);
static_assert(takes_arg<std::size_t> && takes_arg<short> && takes_arg<double> && takes_arg<float>);
static_assert(!takes_arg<char> && !takes_arg<bool> && !takes_arg<unsigned char> && !takes_arg<char8_t>);

BOOST_AUTO_TEST_CASE(commands_parse_back_as_arrays_of_bulk_strings) {
    std::string out;
    rp::append_command(out, {"SET", "a\r\n\0"sv, ""});
    rp::command("INCRBY").arg("n").arg(-7).append_to(out);
    check(out, std::vector<value>{array({bulk("SET"), bulk("a\r\n\0"s), bulk("")}),
                                  array({bulk("INCRBY"), bulk("n"), bulk("-7")})});
}

// ---------------------------------------------------------------- round trip

namespace {

struct generator {
    std::mt19937_64 rng;

    std::size_t below(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); }
    bool one_in(std::size_t n) { return below(n) == 0; }

    std::string bytes(std::size_t max_len, bool line_safe) {
        std::string s(below(max_len + 1), '\0');
        for (auto& c : s) {
            c = static_cast<char>(below(256));
            if (line_safe && (c == '\r' || c == '\n')) c = ' ';
        }
        if (!line_safe && one_in(4)) s += "\r\n";  // CRLF inside a body must not end it
        return s;
    }

    std::string digits(std::size_t max_len) {
        std::string s(1 + below(max_len), '0');
        for (auto& c : s) c = static_cast<char>('0' + below(10));
        return s;
    }

    std::string double_text() {
        switch (below(6)) {
        case 0: {
            static const char* const fixed[] = {"inf", "-inf", "nan", "0", "-0.0", "1e400", "+1.5", "1E-7"};
            return fixed[below(std::size(fixed))];
        }
        case 1: return digits(5);
        case 2: return "-" + digits(3) + "." + digits(8);
        default: {
            const double d = std::uniform_real_distribution<double>(-1e6, 1e6)(rng) *
                             std::pow(10.0, static_cast<double>(below(40)) - 20);
            char buf[32];
            return std::string(buf, std::to_chars(buf, buf + sizeof buf, d).ptr);
        }
        }
    }

    value make(int depth) {
        const std::size_t kinds = depth < 4 ? 14 : 10;
        switch (below(kinds)) {
        case 0: return simple(bytes(20, true));
        case 1: return scalar(type::simple_error, bytes(20, true));
        case 2: {
            static const std::int64_t edges[] = {0, -1, 1, std::numeric_limits<std::int64_t>::min(),
                                                 std::numeric_limits<std::int64_t>::max()};
            return integer(one_in(3) ? edges[below(5)] : static_cast<std::int64_t>(rng()));
        }
        case 3: return bulk(bytes(one_in(20) ? 3000 : 40, false));
        case 4: return scalar(type::bulk_error, bytes(30, false));
        case 5: return one_in(2) ? null : boolean(one_in(2));
        case 6: return scalar(type::double_, double_text());
        case 7: return scalar(type::big_number, (one_in(2) ? "-" : "") + digits(60));
        case 8: {
            static const char* const formats[] = {"txt", "mkd", "abc"};
            return verbatim(formats[below(3)], bytes(30, false));
        }
        case 9: return bulk("");
        default: {
            static const type aggregates[] = {type::array, type::map, type::set, type::push};
            value v;
            v.kind = aggregates[below(4)];
            const std::size_t n = below(6) * (v.kind == type::map ? 2 : 1);
            for (std::size_t i = 0; i < n; ++i) v.elements.push_back(make(depth + 1));
            return v;
        }
        }
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(random_round_trip) {
    generator gen{std::mt19937_64{20240611}};
    std::size_t total_values = 0;
    for (int batch = 0; batch < 400; ++batch) {
        // A handful of values back to back, with attributes slipped in front
        // of some of them (at any depth) for the parser to drop.
        std::vector<value> expected;
        std::string wire;
        const bool annotate = gen.one_in(3);
        for (std::size_t i = 0, n = 1 + gen.below(10); i < n; ++i) {
            expected.push_back(gen.make(0));
            resp_test::encode(wire, expected.back(), [&](std::string& out) {
                if (annotate && gen.one_in(6)) {
                    out += "|1\r\n+ttl\r\n";
                    resp_test::encode(out, gen.make(2));
                }
            });
        }
        total_values += expected.size();

        // Random fragment sizes, mostly small, sometimes large.
        fragments frags;
        for (std::size_t pos = 0; pos < wire.size();) {
            const std::size_t n = std::min(wire.size() - pos, 1 + gen.below(gen.one_in(4) ? 4000 : 12));
            frags.push_back(std::string_view(wire).substr(pos, n));
            pos += n;
        }
        const auto got = parse_fragments(frags);
        BOOST_TEST((got == expected), "batch " << batch << ": " << show(wire));
        BOOST_TEST((parse_fragments({wire}) == expected), "batch " << batch << " whole");
        if (batch % 10 == 0) {
            fragments bytes;
            for (std::size_t i = 0; i < wire.size(); ++i) bytes.push_back(std::string_view(wire).substr(i, 1));
            BOOST_TEST((parse_fragments(bytes) == expected), "batch " << batch << " byte by byte");
        }
    }
    BOOST_TEST(total_values > 2000u);
}

BOOST_AUTO_TEST_SUITE_END()

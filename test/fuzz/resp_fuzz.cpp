// libFuzzer target: arbitrary bytes through the RESP parser, fed in
// fragments. The first input byte picks two fragment sizes (low and high
// nibble, see `sizes`) used alternately; the rest is the stream. Nothing may
// crash or trip ASan/UBSan, and:
//   - feed() consumes at most what it is given, all of it unless a value
//     completes, and at least one byte when one does;
//   - the fragmented parse and the one-shot parse agree exactly: same values,
//     or the same error message after the same values;
//   - every value is well formed (maps hold pairs, verbatim formats are three
//     bytes, booleans are 0/1) and, re-encoded in RESP3 and parsed again,
//     comes back equal;
//   - the only exception is a protocol_error system_error, and a failed
//     parser keeps failing until reset().
#include <sessionkit/redis/detail/resp_parser.hpp>
#include <sessionkit/redis/resp.hpp>

#include "fuzz/resp_encode.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace resp = sessionkit::redis::resp;
namespace resp_codec = sessionkit::redis::detail::resp_codec;

// Small limits: the fuzzer explores them all without running out of memory.
constexpr resp_codec::parser_limits limits{
    .max_depth = 16, .max_bulk = 1u << 20, .max_elements = 4096, .max_line = 1024};

// Fragment sizes a nibble selects; 0 means "the rest of the input".
constexpr std::size_t sizes[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 13, 16, 31, 64, 257, 1000};

struct outcome {
    std::vector<resp::value> values;
    bool failed = false;
    std::string error;
};

outcome parse(std::string_view in, std::size_t size_a, std::size_t size_b) {
    resp_codec::parser p(limits);
    outcome out;
    std::size_t pos = 0;
    bool first = true;
    try {
        while (pos < in.size()) {
            std::size_t n = first ? size_a : size_b;
            first = !first;
            if (n == 0 || n > in.size() - pos) n = in.size() - pos;
            auto fragment = in.substr(pos, n);
            pos += n;
            while (!fragment.empty()) {
                const std::size_t used = p.feed(fragment);
                if (used > fragment.size()) std::abort();
                if (p.has_value()) {
                    if (used == 0) std::abort();
                    out.values.push_back(p.take());
                    if (p.has_value()) std::abort();
                } else if (used != fragment.size()) {
                    std::abort();
                }
                fragment.remove_prefix(used);
            }
        }
    } catch (const boost::system::system_error& e) {
        if (e.code() != sessionkit::make_error_code(sessionkit::error::protocol_error)) std::abort();
        out.failed = true;
        out.error = e.what();
        if (p.has_value()) std::abort();
        bool refused = false;
        try {
            p.feed("+OK\r\n");
        } catch (const boost::system::system_error&) {
            refused = true;
        }
        if (!refused) std::abort();
    }
    return out;
}

void check_well_formed(const resp::value& v, std::size_t depth) {
    using resp::type;
    if (depth > limits.max_depth) std::abort();
    switch (v.kind) {
    case type::array:
    case type::set:
    case type::push:
    case type::map:
        if (v.kind == type::map && v.elements.size() % 2 != 0) std::abort();
        if (v.elements.size() > limits.max_elements || !v.text.empty()) std::abort();
        for (const auto& e : v.elements) check_well_formed(e, depth + 1);
        return;
    case type::boolean:
        if (v.integer != 0 && v.integer != 1) std::abort();
        break;
    case type::verbatim_string:
        if (v.format.size() != 3 || v.text.size() + 4 > limits.max_bulk) std::abort();
        (void)v.as_string();
        break;
    case type::double_:
        (void)v.as_double();  // must not throw: the parser validated it
        break;
    case type::integer:
        if (v.as_integer() != v.integer) std::abort();
        break;
    case type::bulk_string:
    case type::bulk_error:
        if (v.text.size() > limits.max_bulk) std::abort();
        break;
    default: break;
    }
    if (!v.elements.empty() || (v.kind != type::verbatim_string && !v.format.empty())) std::abort();
    if (v.is_string()) {
        try {
            (void)v.as_integer();  // either parses or says why
        } catch (const boost::system::system_error&) {}
    }
}

/// Re-encodes `v` and parses it again in one go: it must come back equal,
/// consuming exactly the encoding. No try: any error here is a bug.
void check_round_trip(const resp::value& v) {
    const std::string wire = resp_test::encode(v);
    resp_codec::parser p(limits);
    if (p.feed(wire) != wire.size() || !p.has_value()) std::abort();
    if (!(p.take() == v)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    const outcome split = parse(in, sizes[data[0] & 0xf], sizes[data[0] >> 4]);
    const outcome whole = parse(in, 0, 0);
    if (split.failed != whole.failed || split.error != whole.error || !(split.values == whole.values)) std::abort();
    for (const auto& v : whole.values) {
        check_well_formed(v, 0);
        check_round_trip(v);
    }
    return 0;
}

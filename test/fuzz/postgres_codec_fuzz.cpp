// libFuzzer target: arbitrary rows through postgres_store's decoders
// (store/postgres/codec.hpp) — what a row edited by hand, or written by
// another version, can hold. The input is split at 0x1f into the 15 record
// columns (a column of exactly one 0x00 byte is NULL); the whole input is
// also read as an outbox position, and its first five columns as a touch
// row. Nothing may crash or trip ASan/UBSan, and:
//   - the only exception is a system_error of sessionkit's category;
//   - a row that decodes comes back the same through record_parameters and
//     a second decode (the codec loses nothing it accepted);
//   - a position that parses prints back as the same text.
#include <sessionkit/store/postgres/codec.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace sessionkit;
namespace codec = sessionkit::postgres_store_codec;

bool ours(const boost::system::system_error& e) { return e.code().category() == sessionkit::error_category(); }

std::vector<std::optional<std::string_view>> split(std::string_view in) {
    std::vector<std::optional<std::string_view>> parts;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= in.size(); ++i)
        if (i == in.size() || in[i] == '\x1f') {
            const auto part = in.substr(start, i - start);
            parts.push_back(part == std::string_view("\0", 1) ? std::nullopt : std::optional(part));
            start = i + 1;
        }
    return parts;
}

void record(std::string_view in) {
    const auto parts = split(in);
    codec::row_values row{};
    for (std::size_t i = 0; i < row.size() && i < parts.size(); ++i) row[i] = parts[i];
    session s;
    try {
        s = codec::decode_record(row, "fuzz");
    } catch (const boost::system::system_error& e) {
        if (!ours(e)) std::abort();
        return;
    }
    // Round trip: what the store would write for it reads back the same.
    auto p = codec::record_parameters(s);
    std::vector<std::optional<std::string>> text{s.id,
                                                 p[0],
                                                 p[1],
                                                 p[2],
                                                 p[3],
                                                 p[4],
                                                 p[5],
                                                 p[6],
                                                 p[7],
                                                 p[8],
                                                 std::to_string(s.version),
                                                 p[9],
                                                 std::string(*p[10] == "true" ? "t" : "f"),
                                                 p[11],
                                                 p[12]};
    codec::row_values again{};
    for (std::size_t i = 0; i < again.size(); ++i)
        if (text[i]) again[i] = std::string_view(*text[i]);
    if (serialize(codec::decode_record(again, s.id)) != serialize(s)) std::abort();
}

void touch(std::string_view in) {
    const auto parts = split(in);
    std::array<std::optional<std::string_view>, 5> row{};
    for (std::size_t i = 0; i < row.size() && i < parts.size(); ++i) row[i] = parts[i];
    try {
        codec::decode_touch(row, "fuzz");
    } catch (const boost::system::system_error& e) {
        if (!ours(e)) std::abort();
    }
}

void position(std::string_view in) {
    try {
        const auto p = codec::parse_position("fuzz", in);
        if (!in.empty() && codec::to_text(p) != in) {
            // Leading zeros or a '+' parse to the same numbers: the printed
            // form must at least parse back to them.
            const auto q = codec::parse_position("fuzz", codec::to_text(p));
            if (q.xid != p.xid || q.seq != p.seq) std::abort();
        }
    } catch (const boost::system::system_error& e) {
        if (!ours(e)) std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    record(in);
    touch(in);
    position(in);
    return 0;
}

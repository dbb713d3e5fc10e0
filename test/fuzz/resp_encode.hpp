// Test-only RESP3 encoder of parsed values, shared by the unit test and the
// fuzzer: what the parser produced, written back as a server would send it,
// must parse to the same value. The library itself only encodes commands.
#pragma once

#include <sessionkit/redis/detail/resp_parser.hpp>
#include <sessionkit/redis/resp.hpp>

#include <string>

namespace resp_test {

namespace resp = sessionkit::redis::resp;

inline void append_line(std::string& out, char kind, std::string_view body) {
    out += kind;
    out += body;
    out += "\r\n";
}

inline void append_blob(std::string& out, char kind, std::string_view format, std::string_view body) {
    out += kind;
    out += std::to_string(body.size() + (format.empty() ? 0 : format.size() + 1));
    out += "\r\n";
    if (!format.empty()) {
        out += format;
        out += ':';
    }
    out += body;
    out += "\r\n";
}

/// Appends `v` in RESP3. `before` is called with `out` before every value,
/// nested ones included, so a test can slip in attributes the parser must skip.
template <class Before>
void encode(std::string& out, const resp::value& v, Before&& before) {
    using resp::type;
    before(out);
    switch (v.kind) {
    case type::simple_string: append_line(out, '+', v.text); return;
    case type::simple_error: append_line(out, '-', v.text); return;
    case type::integer: append_line(out, ':', std::to_string(v.integer)); return;
    case type::bulk_string: append_blob(out, '$', {}, v.text); return;
    case type::bulk_error: append_blob(out, '!', {}, v.text); return;
    case type::null: out += "_\r\n"; return;
    case type::boolean: out += v.integer ? "#t\r\n" : "#f\r\n"; return;
    case type::double_: append_line(out, ',', v.text); return;
    case type::big_number: append_line(out, '(', v.text); return;
    case type::verbatim_string: append_blob(out, '=', v.format, v.text); return;
    case type::array:
    case type::set:
    case type::push:
    case type::map: {
        const char kind = v.kind == type::array ? '*' : v.kind == type::set ? '~' : v.kind == type::push ? '>' : '%';
        append_line(out, kind, std::to_string(v.kind == type::map ? v.elements.size() / 2 : v.elements.size()));
        for (const auto& e : v.elements) encode(out, e, before);
        return;
    }
    }
}

inline void encode(std::string& out, const resp::value& v) {
    encode(out, v, [](std::string&) {});
}

inline std::string encode(const resp::value& v) {
    std::string out;
    encode(out, v);
    return out;
}

}  // namespace resp_test

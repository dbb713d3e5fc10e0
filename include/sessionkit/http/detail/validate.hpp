// sessionkit/http/detail/validate.hpp — the router's input checks:
// strict JSON bodies (one object, no key twice), typed fields with messages
// that name the field, ids, numbers and the bearer comparison.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/http/command.hpp>
#include <sessionkit/id.hpp>

#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <variant>
#include <vector>

namespace sessionkit::http {

namespace detail {

inline api_error bad(std::string code, std::string message, unsigned status = 400) {
    return api_error{status, std::move(code), std::move(message), {}};
}

// Compares in time independent of where the strings differ.
inline bool same_secret(std::string_view a, std::string_view b) noexcept {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
    return diff == 0;
}

inline std::optional<std::uint64_t> parse_u64(std::string_view s) {
    std::uint64_t v = 0;
    if (s.empty()) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

inline std::variant<std::string, api_error> checked_id(std::string_view id) {
    if (!is_valid_id(id))
        return bad("invalid_id",
                   "session id '" + sessionkit::detail::printable(id) + "' " + sessionkit::detail::why_invalid(id));
    return std::string(id);
}

// Finds a key that appears twice in one object, at any depth.
// boost::json::parse (1.81 has no option against it) keeps the last value
// of a repeated key, so {"id":"a","id":"b"} would quietly mean "b". A
// handler for boost::json::basic_parser that only watches keys.
class duplicate_key_finder {
public:
    static constexpr std::size_t max_object_size = boost::json::object::max_size();
    static constexpr std::size_t max_array_size = boost::json::array::max_size();
    static constexpr std::size_t max_key_size = boost::json::string::max_size();
    static constexpr std::size_t max_string_size = boost::json::string::max_size();

    std::string duplicate;  ///< the first key seen twice in one object

    bool on_object_begin(boost::json::error_code&) {
        keys_.emplace_back();
        return true;
    }
    bool on_object_end(std::size_t, boost::json::error_code&) {
        keys_.pop_back();
        return true;
    }
    bool on_key_part(boost::json::string_view s, std::size_t, boost::json::error_code&) {
        key_.append(s.data(), s.size());
        return true;
    }
    bool on_key(boost::json::string_view s, std::size_t, boost::json::error_code& ec) {
        key_.append(s.data(), s.size());
        if (!keys_.back().insert(key_).second) {
            duplicate = std::move(key_);
            ec = boost::json::error::syntax;  // stops the parser; `duplicate` says why
            return false;
        }
        key_.clear();
        return true;
    }
    bool on_document_begin(boost::json::error_code&) { return true; }
    bool on_document_end(boost::json::error_code&) { return true; }
    bool on_array_begin(boost::json::error_code&) { return true; }
    bool on_array_end(std::size_t, boost::json::error_code&) { return true; }
    bool on_string_part(boost::json::string_view, std::size_t, boost::json::error_code&) { return true; }
    bool on_string(boost::json::string_view, std::size_t, boost::json::error_code&) { return true; }
    bool on_number_part(boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_int64(std::int64_t, boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_uint64(std::uint64_t, boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_double(double, boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_bool(bool, boost::json::error_code&) { return true; }
    bool on_null(boost::json::error_code&) { return true; }
    bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
    bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }

private:
    std::vector<std::unordered_set<std::string>> keys_;  ///< per open object, innermost last
    std::string key_;
};

/// The first key that appears twice in one object of `json` (valid JSON).
inline std::optional<std::string> duplicate_key(std::string_view json, const boost::json::parse_options& opts) {
    boost::json::basic_parser<duplicate_key_finder> p(opts);
    boost::json::error_code ec;
    p.write_some(false, json.data(), json.size(), ec);
    if (p.handler().duplicate.empty()) return std::nullopt;
    return std::move(p.handler().duplicate);
}

// The JSON body as an object: never empty, no key twice in one object.
inline std::variant<boost::json::object, api_error> json_body(const request& req) {
    if (req.body().empty()) return bad("malformed_json", "empty body: expected a JSON object");
    auto type = req[boost::beast::http::field::content_type];
    auto semi = type.find(';');
    std::string_view media = type.substr(0, semi);
    while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
    if (!boost::beast::iequals(media, "application/json"))
        return bad("unsupported_media_type",
                   "Content-Type must be application/json, got '" +
                       sessionkit::detail::printable(std::string_view(type.data(), type.size())) + "'",
                   415);
    boost::system::error_code ec;
    boost::json::parse_options opts;
    opts.max_depth = 32;
    auto v = boost::json::parse(req.body(), ec, {}, opts);
    if (ec) return bad("malformed_json", "the body is not valid JSON: " + ec.message());
    if (!v.is_object()) return bad("malformed_json", "the body must be a JSON object");
    if (auto key = duplicate_key(req.body(), opts))
        return bad("malformed_json", "duplicate key '" + sessionkit::detail::printable(*key) +
                                         "' in the JSON body (a key may appear once per object)");
    return std::move(v.as_object());
}

// What a JSON value is, for messages ("got null").
inline std::string_view kind_of(const boost::json::value& v) noexcept {
    switch (v.kind()) {
    case boost::json::kind::null: return "null";
    case boost::json::kind::bool_: return "a boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_: return "a number";
    case boost::json::kind::string: return "a string";
    case boost::json::kind::array: return "an array";
    case boost::json::kind::object: return "an object";
    }
    return "a JSON value";
}

// null is a value, not "absent": a client that sends {"id":null} has a bug
// to hear about, so a field is given with its type or left out.
inline api_error wrong_type(std::string_view field, std::string_view expected, const boost::json::value& got) {
    return bad("invalid_field", "field '" + std::string(field) + "' must be " + std::string(expected) + ", got " +
                                    std::string(kind_of(got)) +
                                    (got.is_null() ? " (leave the field out for its default)" : ""));
}

// Seconds as a positive whole number no larger than 100 years.
inline std::variant<std::optional<milliseconds>, api_error> seconds_field(const boost::json::object& o,
                                                                          std::string_view field) {
    auto* v = o.if_contains(field);
    if (!v) return std::optional<milliseconds>{};
    std::int64_t s = 0;
    if (v->is_int64())
        s = v->get_int64();
    else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
        s = static_cast<std::int64_t>(v->get_uint64());
    else
        return wrong_type(field, "a whole number of seconds", *v);
    const std::int64_t max_s = max_duration.count() / 1000;
    if (s <= 0 || s > max_s)
        return bad("invalid_field", "field '" + std::string(field) + "' must be between 1 and " +
                                        std::to_string(max_s) + " seconds, got " + std::to_string(s));
    return std::optional<milliseconds>{std::chrono::seconds{s}};
}

}  // namespace detail

}  // namespace sessionkit::http

// sessionkit/http/framing.hpp — whether a request's body length is
// certain from its headers alone (RFC 9112 section 6): the check that keeps
// a request from being smuggled inside another's body.
#pragma once

#include <sessionkit/http/command.hpp>
#include <sessionkit/http/detail/validate.hpp>
#include <sessionkit/id.hpp>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/message.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sessionkit::http {

namespace detail {

inline std::string_view trimmed(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace detail

/// Whether the length of a request's body is certain (RFC 9112 section 6),
/// decided from its headers alone: nothing when it is, otherwise the 400
/// to answer before the connection is closed. A server that guessed would
/// read the rest of the bytes as a request of its own: with
/// "Transfer-Encoding: gzip" a body that says "DELETE /api/v1/sessions/x"
/// is run as that request (request smuggling). Accepted: no body framing at
/// all (no body), one Content-Length, or "Transfer-Encoding: chunked"
/// alone on HTTP/1.1. Called by http_server once the headers are read.
inline std::optional<api_error> framing_error(const boost::beast::http::request_header<>& h) {
    using detail::bad;
    using sessionkit::detail::printable;
    std::size_t lengths = 0;
    std::string_view length;
    bool has_transfer_encoding = false;
    std::string codings;  ///< every Transfer-Encoding field, as one list
    std::vector<std::string_view> coding_list;
    for (const auto& f : h) {
        const std::string_view value(f.value().data(), f.value().size());
        if (f.name() == boost::beast::http::field::content_length) {
            ++lengths;
            length = value;
        } else if (f.name() == boost::beast::http::field::transfer_encoding) {
            has_transfer_encoding = true;
            if (!codings.empty()) codings += ", ";
            codings += value;
            for (std::size_t at = 0; at <= value.size();) {
                auto comma = std::min(value.find(',', at), value.size());
                if (auto coding = detail::trimmed(value.substr(at, comma - at)); !coding.empty())
                    coding_list.push_back(coding);
                at = comma + 1;
            }
        }
    }
    if (has_transfer_encoding) {
        if (h.version() < 11)
            return bad("bad_request", "Transfer-Encoding in an HTTP/1.0 request: its body length cannot be trusted");
        if (lengths > 0)
            return bad("bad_request", "both Transfer-Encoding and Content-Length: the body length is ambiguous");
        if (coding_list.empty() || !boost::beast::iequals(coding_list.back(), "chunked"))
            return bad("bad_request", "Transfer-Encoding '" + printable(codings) +
                                          "': the last coding must be chunked, or the body length is unknown");
        if (coding_list.size() > 1)
            return bad("bad_request",
                       "Transfer-Encoding '" + printable(codings) + "': only chunked is supported, on its own");
        return std::nullopt;
    }
    if (lengths > 1) return bad("bad_request", "Content-Length given " + std::to_string(lengths) + " times");
    if (lengths == 1 && (length.empty() || length.size() > 19 ||
                         !std::all_of(length.begin(), length.end(), [](char c) { return c >= '0' && c <= '9'; })))
        return bad("bad_request", "Content-Length '" + printable(length) + "' is not a number of bytes");
    return std::nullopt;
}

}  // namespace sessionkit::http

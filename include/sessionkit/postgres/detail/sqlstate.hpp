// sessionkit/postgres/detail/sqlstate.hpp — what a server error means for a
// caller: its SQLSTATE mapped to one of our error codes, and libpq's
// multi-line messages made into one line for an error text.
#pragma once

#include <sessionkit/error.hpp>

#include <string>
#include <string_view>

namespace sessionkit::postgres::detail {

/// The error code a failed statement is reported with, by its SQLSTATE
/// (https://www.postgresql.org/docs/current/errcodes-appendix.html):
///   57014 query_canceled (statement_timeout)           -> timeout
///   08P01 protocol violation (a call with the wrong number
///         of parameters)                                -> invalid_argument
///   08 connection, 53 resources, 57P shutdown, 58 system -> backend_unavailable
///   40 serialization failure or deadlock, 55P03 lock    -> contention (retry)
///   22 data exception, 23 integrity constraint          -> invalid_argument
///   anything else (42 syntax or undefined object, ...)  -> protocol_error
inline error error_for_sqlstate(std::string_view s) {
    if (s == "57014") return error::timeout;
    if (s == "08P01") return error::invalid_argument;
    if (s.starts_with("08") || s.starts_with("53") || s.starts_with("57P") || s.starts_with("58"))
        return error::backend_unavailable;
    if (s.starts_with("40") || s == "55P03") return error::contention;
    if (s.starts_with("22") || s.starts_with("23")) return error::invalid_argument;
    return error::protocol_error;
}

/// libpq's messages end in a newline and continue on tab-indented lines
/// ("...failed: Connection refused\n\tIs the server running...?\n"): one
/// line, without the trailing newline.
inline std::string one_line(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    bool space = false;
    for (char c : text) {
        if (c == '\n' || c == '\r' || c == '\t') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

}  // namespace sessionkit::postgres::detail

// sessionkit/postgres/detail/resumer.hpp — how an operation's caller is
// resumed: its completion handler, type-erased, with its executor, and the
// exception it gets when the operation fails.
#pragma once

#include <sessionkit/detail/resumer.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/postgres/operation.hpp>

#include <exception>
#include <string>
#include <utility>

namespace sessionkit::postgres::detail {

/// An operation's caller: resumed with the operation's results.
using resumer = sessionkit::detail::basic_resumer<result_set>;
using sessionkit::detail::make_failure;

/// A failure the server reported: a server_error with its SQLSTATE and
/// statement (made where it lives, as make_failure explains).
inline std::exception_ptr make_server_failure(error e, const std::string& what, diagnostics diag, std::string sqlstate,
                                              std::string statement) {
    try {
        throw server_error(e, what, std::move(diag), std::move(sqlstate), std::move(statement));
    } catch (...) {
        return std::current_exception();
    }
}

}  // namespace sessionkit::postgres::detail

// sessionkit/postgres/script.hpp — SQL with several statements (schema
// creation, migrations), run on a connection of its own that never enters
// pipeline mode.
//
// Pipeline mode refuses a query string with several statements, so a
// script cannot go through a pooled connection. execute_script() opens one
// (the same way, without blocking), sends the script with the simple query
// protocol, collects one result per statement and closes the connection.
// PostgreSQL runs the statements of one such string as one transaction
// unless the script says BEGIN/COMMIT itself, and stops at the first
// error. statement_timeout is not set on this connection (a migration may
// be slow, and may wait for an advisory lock); the deadline is the
// client's: when it passes the connection is dropped and the call fails
// with error::timeout (the server may still finish the script).
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/postgres/config.hpp>
#include <sessionkit/postgres/detail/connect_steps.hpp>
#include <sessionkit/postgres/detail/libpq.hpp>
#include <sessionkit/postgres/detail/link.hpp>
#include <sessionkit/postgres/detail/sqlstate.hpp>
#include <sessionkit/postgres/operation.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sessionkit::postgres {

namespace detail {

/// The line of `sql` where PostgreSQL's error position (1-based, in
/// characters) falls; 0 when there is none.
inline std::size_t line_of_position(std::string_view sql, std::string_view position) {
    std::size_t chars = 0;
    auto [end, ec] = std::from_chars(position.data(), position.data() + position.size(), chars);
    if (ec != std::errc{} || chars == 0) return 0;
    std::size_t line = 1, seen = 0;
    for (unsigned char c : sql) {
        if ((c & 0xC0) != 0x80 && ++seen == chars) break;  // a character starts here
        if (c == '\n') ++line;
    }
    return line;
}

inline boost::asio::awaitable<std::vector<result>> run_script(strand_type strand, connection_options cfg,
                                                              std::string name, std::string sql,
                                                              std::chrono::milliseconds timeout) {
    const std::string backend = "PostgreSQL " + cfg.describe();
    auto l = std::make_shared<link>(strand);
    auto resolver = std::make_shared<tcp::resolver>(strand);
    auto timer = std::make_shared<boost::asio::steady_timer>(strand);
    auto timed_out = std::make_shared<bool>(false);
    auto armed = std::make_shared<int>(0);  // which deadline is current: a superseded one may still fire
    // The deadline closes the link (and the resolver): the awaited step
    // then throws with `why`.
    auto arm = [&](std::chrono::milliseconds after, std::string why) {
        const int generation = ++*armed;
        timer->cancel();
        timer->expires_after(after);
        timer->async_wait(
            [l, resolver, timed_out, armed, generation, why = std::move(why)](boost::system::error_code ec) {
                if (ec || l->closing || *armed != generation) return;
                *timed_out = true;
                resolver->cancel();
                l->close(why);
            });
    };
    auto failure = [&](error code, const std::string& why) {
        throw sessionkit::system_error(code, backend + ": " + name + ": " + why, {backend, name, {}, why});
    };

    if (sql.find('\0') != std::string::npos)
        throw_error(error::invalid_argument, backend + ": " + name + ": the script contains a NUL byte");
    std::vector<result> results;
    std::optional<statement_error> refused;
    std::string problem;
    try {
        connect_steps steps(cfg.connect_timeout, clock_type::now());
        arm(cfg.connect_timeout, steps.timed_out().failure);
        co_await open_link(*l, *resolver, cfg, steps);
        arm(timeout, "no result within " + std::to_string(timeout.count()) + " ms; the connection was dropped");
        PGconn* c = l->get();
        if (PQsetnonblocking(c, 1) != 0 || PQsendQuery(c, sql.c_str()) != 1)
            throw_error(error::backend_unavailable, one_line(PQerrorMessage(c)));
        for (int r; (r = PQflush(c)) != 0;) {
            if (r < 0) throw_error(error::backend_unavailable, one_line(PQerrorMessage(c)));
            boost::system::error_code ec;
            co_await l->socket.async_wait(boost::asio::posix::stream_descriptor::wait_write,
                                          boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            throw_if_closing(*l);
        }
        for (;;) {
            if (!PQisBusy(c)) {
                result r(PQgetResult(c));
                if (!r) break;  // the script is over
                const auto kind = kind_of(r.native_handle());
                if (kind == result_kind::error) {
                    if (!refused) {
                        refused = error_of(r.native_handle());
                        const auto line = line_of_position(sql, field(r.native_handle(), PG_DIAG_STATEMENT_POSITION));
                        if (line > 0) refused->message += " (line " + std::to_string(line) + ")";
                    }
                } else {
                    results.push_back(std::move(r));
                }
                if (PQstatus(c) == CONNECTION_BAD) throw_error(error::backend_unavailable, one_line(PQerrorMessage(c)));
                continue;
            }
            boost::system::error_code ec;
            co_await l->socket.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                                          boost::asio::redirect_error(boost::asio::use_awaitable, ec));
            throw_if_closing(*l);
            if (PQconsumeInput(c) != 1) throw_error(error::backend_unavailable, one_line(PQerrorMessage(c)));
        }
    } catch (const boost::system::system_error& e) {
        problem = l->closing ? l->reason : what_without_code(e);
    }
    ++*armed;
    timer->cancel();
    if (!problem.empty()) failure(*timed_out ? error::timeout : error::backend_unavailable, problem);
    if (refused) {
        const std::string said = describe(*refused);
        throw server_error(error_for_sqlstate(refused->sqlstate), backend + ": " + name + ": " + said,
                           {backend, name, {}, said}, refused->sqlstate, {});
    }
    co_return results;
}

}  // namespace detail

/// Runs `sql` (any number of statements, no parameters) on a connection
/// of its own, outside pipeline mode, and returns one result per statement
/// that ran. `name` names it in errors ("migrate to 3"). Connecting has
/// cfg.connect_timeout; the script `timeout` (default cfg.request_timeout).
/// Throws postgres::server_error for a statement the server refused (its
/// line in the script named), system_error with error::timeout or
/// error::backend_unavailable otherwise.
inline boost::asio::awaitable<std::vector<result>> execute_script(boost::asio::any_io_executor ex,
                                                                  connection_options cfg, std::string name,
                                                                  std::string sql,
                                                                  std::optional<milliseconds> timeout = {}) {
    auto strand = boost::asio::make_strand(ex);
    const auto limit = timeout.value_or(cfg.request_timeout);
    // On a strand of its own: the deadline's handler and the script's steps
    // never run at once, whatever executor the caller is on.
    auto results = co_await boost::asio::co_spawn(
        strand, detail::run_script(strand, std::move(cfg), std::move(name), std::move(sql), limit),
        boost::asio::use_awaitable);
    co_return results;
}

}  // namespace sessionkit::postgres

// sessionkit/postgres/operation.hpp — what a caller hands a PostgreSQL
// connection and what comes back:
//
//   - statement / statement_set: SQL prepared once on every connection,
//     under a name, at every (re)connect;
//   - operation: calls of those statements (each with its parameters, as
//     text), named for errors, sent together and ended by one Sync: one
//     implicit transaction, one round trip, and a failure inside it fails
//     it alone;
//   - result / result_set: one statement's rows (owning libpq's PGresult),
//     and one per call of an operation, in order;
//   - server_error: the exception a statement the server refused is thrown
//     as, with its SQLSTATE;
//   - connection_stats: counters.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/detail/text.hpp>
#include <sessionkit/error.hpp>

#include <libpq-fe.h>

#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace sessionkit::postgres {

/// How values travel: PostgreSQL's text form, or its binary one (a
/// statement's results only; parameters are always text).
enum class format : std::uint8_t { text = 0, binary = 1 };

/// A statement prepared on every connection of a pool, at every connect,
/// before any operation: `$1`, `$2`... are its parameters, whose types the
/// server infers unless `parameter_types` gives their OIDs.
struct statement {
    std::string name;
    std::string sql;
    std::vector<Oid> parameter_types;
};
using statement_set = std::vector<statement>;

/// Calls of prepared statements sent together with one Sync: they run in
/// one implicit transaction, in one round trip, and come back as one
/// result per call. `name` and `key` name the operation in errors:
/// operation("touch", id) reads "touch 'abc'".
class operation {
public:
    struct call_info {
        std::string statement;
        std::size_t first = 0;  ///< its first parameter in parameters()
        std::size_t count = 0;
        format result_format = format::text;
    };

    explicit operation(std::string name, std::string key = {}) : name_(std::move(name)), key_(std::move(key)) {}

    /// Calls prepared statement `statement` with these parameters, each
    /// sent as text: strings as they are, integers and floating-point
    /// numbers in decimal, bool as true/false, std::nullopt (or an empty
    /// optional) as NULL. Text cannot hold a NUL byte: such a parameter is
    /// refused with invalid_argument.
    ///
    /// On a temporary (`operation("touch", id).call(...)`) each of these
    /// returns it as an rvalue, so that handing it to execute() moves it.
    template <class... Params>
    operation& call(std::string statement, Params&&... params) & {
        call_info c{std::move(statement), parameters_.size(), sizeof...(Params), format::text};
        (add(c, std::forward<Params>(params)), ...);
        calls_.push_back(std::move(c));
        return *this;
    }
    template <class... Params>
    operation&& call(std::string statement, Params&&... params) && {
        return std::move(call(std::move(statement), std::forward<Params>(params)...));
    }

    /// The same with the parameters in a vector (nullopt: NULL).
    operation& call_with(std::string statement, std::vector<std::optional<std::string>> params) & {
        call_info c{std::move(statement), parameters_.size(), params.size(), format::text};
        for (auto& p : params) add(c, std::move(p));
        calls_.push_back(std::move(c));
        return *this;
    }
    operation&& call_with(std::string statement, std::vector<std::optional<std::string>> params) && {
        return std::move(call_with(std::move(statement), std::move(params)));
    }

    /// The last call's result comes in binary (PostgreSQL's send format).
    operation& binary_result() & {
        if (!calls_.empty()) calls_.back().result_format = format::binary;
        return *this;
    }
    operation&& binary_result() && { return std::move(binary_result()); }

    /// A deadline of its own instead of the connection's request_timeout.
    operation& timeout(milliseconds t) & {
        timeout_ = t;
        return *this;
    }
    operation&& timeout(milliseconds t) && { return std::move(timeout(t)); }

    std::size_t size() const noexcept { return calls_.size(); }
    bool empty() const noexcept { return calls_.empty(); }
    const std::vector<call_info>& calls() const noexcept { return calls_; }
    const std::vector<std::optional<std::string>>& parameters() const noexcept { return parameters_; }
    const std::optional<milliseconds>& timeout() const noexcept { return timeout_; }
    const std::string& name() const noexcept { return name_; }
    const std::string& key() const noexcept { return key_; }
    /// "touch 'abc'", for messages.
    std::string label() const {
        if (key_.empty()) return name_;
        return name_ + " '" + sessionkit::detail::printable(key_) + "'";
    }

private:
    void add(const call_info& c, std::optional<std::string> text) {
        if (text && text->find('\0') != std::string::npos)
            throw_error(error::invalid_argument, "postgres " + label() + ": parameter $" +
                                                     std::to_string(parameters_.size() - c.first + 1) + " of '" +
                                                     sessionkit::detail::printable(c.statement) +
                                                     "' contains a NUL byte (text cannot hold one)");
        parameters_.push_back(std::move(text));
    }
    void add(const call_info& c, std::nullopt_t) { add(c, std::optional<std::string>{}); }
    void add(const call_info& c, const char* s) { add(c, s ? std::optional<std::string>(s) : std::nullopt); }
    void add(const call_info& c, std::string s) { add(c, std::optional<std::string>(std::move(s))); }
    void add(const call_info& c, std::string_view s) { add(c, std::optional<std::string>(std::string(s))); }
    void add(const call_info& c, bool b) { add(c, std::optional<std::string>(b ? "true" : "false")); }
    template <class T>
    requires(std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char>) void add(const call_info& c, T n) {
        add(c, std::optional<std::string>(std::to_string(n)));
    }
    template <class T>
    requires std::floating_point<T>
    void add(const call_info& c, T x) {
        char buf[64];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
        add(c, std::optional<std::string>(std::string(buf, ec == std::errc{} ? end : buf)));
    }
    template <class T>
    void add(const call_info& c, const std::optional<T>& v) {
        if (v)
            add(c, *v);
        else
            add(c, std::optional<std::string>{});
    }

    std::string name_;
    std::string key_;
    std::vector<call_info> calls_;
    std::vector<std::optional<std::string>> parameters_;
    std::optional<milliseconds> timeout_;
};

/// One statement's result: its rows, or what a command did. Owns libpq's
/// PGresult; values are views into it, valid while it lives.
class result {
public:
    result() = default;
    explicit result(PGresult* r) noexcept : r_(r) {}

    explicit operator bool() const noexcept { return r_ != nullptr; }
    std::size_t rows() const noexcept { return r_ ? static_cast<std::size_t>(PQntuples(r_.get())) : 0; }
    std::size_t columns() const noexcept { return r_ ? static_cast<std::size_t>(PQnfields(r_.get())) : 0; }
    bool empty() const noexcept { return rows() == 0; }

    bool is_null(std::size_t row, std::size_t column) const {
        check(row, column);
        return PQgetisnull(r_.get(), static_cast<int>(row), static_cast<int>(column)) != 0;
    }
    /// The value's bytes (text, or binary with format::binary); "" for NULL.
    std::string_view value(std::size_t row, std::size_t column) const {
        check(row, column);
        const int r = static_cast<int>(row), c = static_cast<int>(column);
        return {PQgetvalue(r_.get(), r, c), static_cast<std::size_t>(PQgetlength(r_.get(), r, c))};
    }
    /// The value, or nullopt for NULL.
    std::optional<std::string_view> get(std::size_t row, std::size_t column) const {
        if (is_null(row, column)) return std::nullopt;
        return value(row, column);
    }
    std::string_view column_name(std::size_t column) const {
        check(0, column, false);
        return PQfname(r_.get(), static_cast<int>(column));
    }
    /// The column called `name`, if there is one.
    std::optional<std::size_t> column(std::string_view name) const {
        for (std::size_t c = 0; c < columns(); ++c)
            if (column_name(c) == name) return c;
        return std::nullopt;
    }
    /// Rows an INSERT, UPDATE, DELETE... touched, or a SELECT returned.
    std::uint64_t affected() const noexcept {
        if (!r_) return 0;
        const std::string_view n = PQcmdTuples(r_.get());
        std::uint64_t out = 0;
        std::from_chars(n.data(), n.data() + n.size(), out);
        return out;
    }
    PGresult* native_handle() const noexcept { return r_.get(); }

private:
    struct clear {
        void operator()(PGresult* r) const noexcept { PQclear(r); }
    };
    void check(std::size_t row, std::size_t column, bool check_row = true) const {
        if ((check_row && row >= rows()) || column >= columns())
            throw std::out_of_range("postgres result: no value at row " + std::to_string(row) + ", column " +
                                    std::to_string(column) + " (" + std::to_string(rows()) + " rows, " +
                                    std::to_string(columns()) + " columns)");
    }
    std::unique_ptr<PGresult, clear> r_;
};

/// One result per call of an operation, in order.
using result_set = std::vector<result>;

/// A statement the server refused: error code by its SQLSTATE
/// (statement_timeout: error::timeout; see doc/postgres.md), the
/// diagnostics name PostgreSQL, the operation and its key, and carry the
/// server's message.
class server_error : public sessionkit::system_error {
public:
    server_error(error code, std::string message, sessionkit::diagnostics diag, std::string sqlstate,
                 std::string statement)
        : sessionkit::system_error(code, std::move(message), std::move(diag)), sqlstate_(std::move(sqlstate)),
          statement_(std::move(statement)) {}

    /// "23505"; empty when libpq made the error itself.
    const std::string& sqlstate() const noexcept { return sqlstate_; }
    /// The prepared statement that failed.
    const std::string& statement() const noexcept { return statement_; }

private:
    std::string sqlstate_;
    std::string statement_;
};

/// Counters, for tests, metrics and benchmarks (a pool sums its connections').
struct connection_stats {
    std::uint64_t connects = 0;       ///< links that came up (connected and set up)
    std::uint64_t flushes = 0;        ///< batches of operations handed to libpq together
    std::uint64_t operations = 0;     ///< operations sent
    std::uint64_t timeouts = 0;       ///< operations failed with error::timeout
    std::uint64_t failed = 0;         ///< operations failed otherwise (a lost link, a server error)
    std::uint64_t drops = 0;          ///< links dropped because an operation passed its deadline
    std::uint64_t health_checks = 0;  ///< health checks sent

    connection_stats& operator+=(const connection_stats& o) noexcept {
        connects += o.connects;
        flushes += o.flushes;
        operations += o.operations;
        timeouts += o.timeouts;
        failed += o.failed;
        drops += o.drops;
        health_checks += o.health_checks;
        return *this;
    }
};

}  // namespace sessionkit::postgres

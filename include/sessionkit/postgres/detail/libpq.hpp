// sessionkit/postgres/detail/libpq.hpp — the small things between libpq and
// the state machines: connection parameters as libpq's keyword arrays, a
// PGconn that PQfinish()es itself, what a PGresult is to the pipeline, the
// server's error fields, and a notice processor that keeps notices off
// stderr.
#pragma once

#include <sessionkit/postgres/config.hpp>
#include <sessionkit/postgres/detail/connect_steps.hpp>
#include <sessionkit/postgres/detail/pipeline.hpp>
#include <sessionkit/postgres/detail/sqlstate.hpp>

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#ifndef LIBPQ_HAS_PIPELINING
#error "sessionkit::postgres needs libpq 14 or later (pipeline mode)"
#endif

namespace sessionkit::postgres::detail {

struct finish_connection {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using connection_ptr = std::unique_ptr<PGconn, finish_connection>;

/// Keyword/value arrays for PQconnectStartParams, owning their strings.
class conninfo {
public:
    /// `addresses`: the host's addresses, resolved beforehand so that libpq
    /// does no blocking name lookup (hostaddr); empty for a unix socket or
    /// an address given as such.
    conninfo(const connection_options& cfg, const std::vector<std::string>& addresses) {
        if (!cfg.host.empty()) {
            if (addresses.empty()) {
                add("host", cfg.host);
            } else {
                // host names the server (TLS verification, .pgpass) once per address.
                std::string hosts, addrs;
                for (const auto& a : addresses) {
                    if (!hosts.empty()) {
                        hosts += ',';
                        addrs += ',';
                    }
                    hosts += cfg.host;
                    addrs += a;
                }
                add("host", std::move(hosts));
                add("hostaddr", std::move(addrs));
            }
        }
        add("port", std::to_string(cfg.port));
        if (!cfg.user.empty()) add("user", cfg.user);
        if (!cfg.password.empty()) add("password", cfg.password);
        if (!cfg.dbname.empty()) add("dbname", cfg.dbname);
        if (!cfg.sslmode.empty()) add("sslmode", cfg.sslmode);
        if (!cfg.application_name.empty()) add("application_name", cfg.application_name);
        add("client_encoding", "UTF8");
        for (const auto& [k, v] : cfg.libpq_parameters) add(k, v);
        for (const auto& [k, v] : pairs_) {
            keywords_.push_back(k.c_str());
            values_.push_back(v.c_str());
        }
        keywords_.push_back(nullptr);
        values_.push_back(nullptr);
    }
    conninfo(const conninfo&) = delete;
    conninfo& operator=(const conninfo&) = delete;

    const char* const* keywords() const noexcept { return keywords_.data(); }
    const char* const* values() const noexcept { return values_.data(); }

private:
    void add(std::string k, std::string v) { pairs_.emplace_back(std::move(k), std::move(v)); }

    std::vector<std::pair<std::string, std::string>> pairs_;
    std::vector<const char*> keywords_;
    std::vector<const char*> values_;
};

inline poll_status to_poll_status(PostgresPollingStatusType s) noexcept {
    switch (s) {
    case PGRES_POLLING_READING: return poll_status::reading;
    case PGRES_POLLING_WRITING: return poll_status::writing;
    case PGRES_POLLING_OK: return poll_status::ok;
    case PGRES_POLLING_FAILED:
    case PGRES_POLLING_ACTIVE: break;  // ACTIVE is unused by libpq
    }
    return poll_status::failed;
}

/// What a result from PQgetResult is to the pipeline (null: end).
inline result_kind kind_of(const PGresult* r) noexcept {
    if (!r) return result_kind::end;
    switch (PQresultStatus(r)) {
    case PGRES_TUPLES_OK:
    case PGRES_SINGLE_TUPLE: return result_kind::rows;
    case PGRES_COMMAND_OK:
    case PGRES_EMPTY_QUERY: return result_kind::command;
    case PGRES_PIPELINE_SYNC: return result_kind::sync;
    case PGRES_PIPELINE_ABORTED: return result_kind::aborted;
    default: return result_kind::error;  // FATAL_ERROR, BAD_RESPONSE, NONFATAL_ERROR, COPY_* (never asked for)
    }
}

inline std::string field(const PGresult* r, int code) {
    const char* v = PQresultErrorField(r, code);
    return v ? std::string(v) : std::string();
}

/// The server's fields of an error result; libpq's message when it made
/// the error itself (no SQLSTATE).
inline statement_error error_of(const PGresult* r) {
    statement_error e;
    e.sqlstate = field(r, PG_DIAG_SQLSTATE);
    e.severity = field(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (e.severity.empty()) e.severity = field(r, PG_DIAG_SEVERITY);
    e.message = field(r, PG_DIAG_MESSAGE_PRIMARY);
    if (e.message.empty()) e.message = one_line(PQresultErrorMessage(r));
    if (e.message.empty() && PQresultStatus(r) != PGRES_FATAL_ERROR)
        e.message = std::string("unexpected result ") + PQresStatus(PQresultStatus(r));
    return e;
}

/// "ERROR 23505: duplicate key value violates unique constraint ..." .
inline std::string describe(const statement_error& e) {
    std::string out = e.severity.empty() ? "ERROR" : e.severity;
    if (!e.sqlstate.empty()) out += " " + e.sqlstate;
    return out + ": " + e.message;
}

/// libpq prints notices (a WARNING, a NOTICE from a function) to stderr
/// unless told otherwise; a library must not.
inline void ignore_notice(void*, const char*) noexcept {}

}  // namespace sessionkit::postgres::detail

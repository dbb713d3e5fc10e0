// sessionkit/postgres/detail/connect_steps.hpp — opening a libpq connection
// without blocking, as a state machine: given what PQconnectPoll said and
// the socket libpq has now, what to wait for next, or done, or failed.
//
// libpq's rule (PQconnectStartParams): after PQconnectStart act as if
// PQconnectPoll returned PGRES_POLLING_WRITING; then wait until the socket
// is readable or writable as the last poll asked, and poll again, until it
// says OK or FAILED. libpq may close its socket and open another during
// those steps (several addresses, TLS refused then plain with
// sslmode=prefer), so the socket is read again at every step — and the new
// one may carry the old one's number, so the I/O side rebinds its
// descriptor before every wait (an epoll registration does not survive the
// close). libpq enforces no connect_timeout in this mode: the deadline is
// ours, checked at every step and by the caller's timer.
#pragma once

#include <sessionkit/postgres/detail/sqlstate.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace sessionkit::postgres::detail {

using clock_type = std::chrono::steady_clock;

/// PQconnectPoll's answers (PGRES_POLLING_READING/WRITING/OK/FAILED).
enum class poll_status : std::uint8_t { reading, writing, ok, failed };

struct connect_action {
    enum class kind : std::uint8_t { wait_read, wait_write, connected, failed };
    kind what = kind::failed;
    int socket = -1;      ///< wait_*: the socket to wait on (bind the descriptor to it afresh)
    std::string failure;  ///< failed: why, in one line
};

class connect_steps {
public:
    using time_point = clock_type::time_point;
    using milliseconds = std::chrono::milliseconds;

    connect_steps(milliseconds timeout, time_point now) : timeout_(timeout), deadline_(now + timeout) {}

    time_point deadline() const noexcept { return deadline_; }
    int steps() const noexcept { return steps_; }

    /// The connection could not even start (PQconnectStartParams gave a
    /// connection in CONNECTION_BAD, or none).
    connect_action refused(std::string_view libpq_error) { return fail(libpq_error); }

    /// After PQconnectStart (pass `writing`) and after every PQconnectPoll:
    /// its status, PQsocket() as it is now, PQerrorMessage() for failures.
    connect_action step(poll_status s, int socket, std::string_view libpq_error, time_point now) {
        ++steps_;
        switch (s) {
        case poll_status::ok: return {connect_action::kind::connected, socket, {}};
        case poll_status::failed: return fail(libpq_error);
        case poll_status::reading:
        case poll_status::writing: break;
        }
        if (now >= deadline_) return fail_timeout();
        if (socket < 0) return fail("libpq has no socket to wait on");
        return {
            s == poll_status::reading ? connect_action::kind::wait_read : connect_action::kind::wait_write, socket, {}};
    }

    /// The caller's timer cut a wait short at the deadline.
    connect_action timed_out() { return fail_timeout(); }

private:
    connect_action fail(std::string_view why) {
        std::string text = one_line(why);
        if (text.empty()) text = "libpq gave no reason";
        return {connect_action::kind::failed, -1, std::move(text)};
    }
    connect_action fail_timeout() {
        return {connect_action::kind::failed, -1,
                "connecting took longer than " + std::to_string(timeout_.count()) + " ms"};
    }

    milliseconds timeout_;
    time_point deadline_;
    int steps_ = 0;
};

}  // namespace sessionkit::postgres::detail

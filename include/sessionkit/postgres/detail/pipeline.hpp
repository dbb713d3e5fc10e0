// sessionkit/postgres/detail/pipeline.hpp — one pipelined PostgreSQL
// connection's decisions, without I/O: what to send next, which result is
// whose, what has waited too long, and what a lost link fails.
//
// The connection (postgres/connection.hpp) feeds it events — an operation
// to send, a flush finished, a result taken from libpq, time passed, the
// link connected, lost or closed — and performs the actions it returns:
// send these operations, keep this result for that operation, complete or
// fail these, drop the link, send a health check, reconnect after so long,
// wake at T. Time and the backoff's random draw are parameters; there is
// no libpq, executor or socket here.
//
// The protocol it follows is libpq's pipeline mode. Each operation is its
// statements followed by one Sync, so it is its own implicit transaction
// and a failure inside it never touches the next one. For every statement
// PQgetResult gives one result (rows, command, error, or "aborted" for the
// statements after an error up to the Sync) and then a null; after the
// Sync it gives PGRES_PIPELINE_SYNC, with no null after it. Anything else
// means the stream is out of step, and the link is dropped.
//
// The life of a link: connecting (operations wait) → connected, setting up
// (one internal operation: SET statement_timeout and the PREPAREs, under
// the connect deadline) → ready (operations flow) → lost (what was in
// flight fails; what was only queued fails too unless the link was dropped
// for a deadline) → down for a backoff wait (operations are refused at
// once with the reason) → connecting again. close() ends it for good.
//
// Deadlines: libpq 15 can only cancel a query by blocking (PQcancel), so an
// operation in flight past its deadline makes the connection drop the
// link: it fails with error::timeout, and so does everything else in
// flight on that link (it may have run). Operations still queued were
// never sent: they wait for the next link, which is opened at once.
#pragma once

#include <sessionkit/detail/backoff.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/postgres/detail/sqlstate.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sessionkit::postgres::detail {

using clock_type = std::chrono::steady_clock;

/// What PQgetResult gave, as the pipeline sees it.
enum class result_kind : std::uint8_t {
    rows,     ///< PGRES_TUPLES_OK (a statement that returns rows)
    command,  ///< PGRES_COMMAND_OK, PGRES_EMPTY_QUERY (one that does not)
    error,    ///< PGRES_FATAL_ERROR, PGRES_BAD_RESPONSE: the statement failed
    aborted,  ///< PGRES_PIPELINE_ABORTED: not run, an earlier statement failed
    sync,     ///< PGRES_PIPELINE_SYNC: the operation's Sync
    end,      ///< a null: the current statement's results are over
};

/// The first error of an operation, as the server said it.
struct statement_error {
    std::size_t statement = 0;  ///< which of the operation's statements (0-based)
    std::string sqlstate;       ///< "57014"; empty when libpq made the error itself
    std::string severity;       ///< "ERROR", "FATAL"
    std::string message;        ///< the primary message
};

/// One operation as the pipeline sees it. The connection derives its
/// awaited operation (the statements, the caller to resume) from this.
struct exchange {
    enum class kind : std::uint8_t { user, setup, health_check };
    kind what = kind::user;
    std::size_t statements = 0;  ///< sent before its Sync (0 for a health check)
    clock_type::time_point deadline{};
    std::chrono::milliseconds timeout{0};    ///< for messages: the time it was given
    std::size_t answered = 0;                ///< statements whose results are over
    bool has_result = false;                 ///< the current statement's result came, its null not yet
    std::optional<statement_error> failure;  ///< the first error inside it
    bool done = false;                       ///< completed or failed: no action names it again
};

enum class link_state : std::uint8_t { connecting, setting_up, ready, down, closed };

class pipeline {
public:
    using pointer = std::shared_ptr<exchange>;
    using time_point = clock_type::time_point;
    using milliseconds = std::chrono::milliseconds;

    struct timing {
        milliseconds connect_timeout{5000};        ///< connect and setup together
        milliseconds request_timeout{5000};        ///< the longest the timer sleeps
        milliseconds health_check_interval{5000};  ///< 0: never
        milliseconds reconnect_min{50};
        milliseconds reconnect_max{2000};
    };

    /// Send each of these (its statements, then one Sync), in order, then
    /// flush, and report write_done().
    struct write_action {
        std::vector<pointer> operations;
        explicit operator bool() const noexcept { return !operations.empty(); }
    };

    /// Fail `operation` with `code` and `why` (already marked done).
    struct failed_operation {
        pointer operation;
        error code = error::backend_unavailable;
        std::string why;
    };

    struct enqueue_action {
        std::optional<failed_operation> refused;  ///< it cannot be queued: fail it
        bool wake_timer = false;                  ///< its deadline is earlier than the timer is armed for
        write_action write;
    };

    struct result_action {
        pointer keep_for;                    ///< keep the result as statement `index` of this operation
        std::size_t index = 0;               ///<
        pointer completed;                   ///< all its results are in: resume its caller
        pointer failed;                      ///< one of its statements failed (failed->failure says how)
        error code = error::protocol_error;  ///< for `failed`: what the SQLSTATE means
        bool idle = false;                   ///< a null with nothing expected: stop taking results
        bool out_of_step = false;            ///< a result nobody waits for: drop the link
        bool link_ready = false;             ///< the setup went through: the link is ready
        pointer setup_failed;                ///< the setup was refused (its failure says how): drop the link
        write_action write;                  ///< what waited for the link (with link_ready)
    };

    struct tick_action {
        std::vector<failed_operation> failed;
        bool drop_link = false;     ///< close it now; link_lost() follows
        bool health_check = false;  ///< idle long enough: enqueue a health check, then tick again
        time_point wake_at{};       ///< tick again then (when not checking health)
    };

    struct lost_action {
        std::vector<failed_operation> failed;
        milliseconds reconnect_after{0};  ///< wait this long before connecting() again
    };

    explicit pipeline(timing t) : timing_(t), backoff_(t.reconnect_min, t.reconnect_max) {}

    link_state state() const noexcept { return state_; }
    const std::string& last_error() const noexcept { return last_error_; }
    std::size_t queued() const noexcept { return queued_.size(); }
    std::size_t in_flight() const noexcept { return in_flight_.size(); }
    time_point connect_deadline() const noexcept { return connect_deadline_; }

    // ---- operations --------------------------------------------------------------

    /// A caller's operation. While a link is being opened it waits; while
    /// the link is down (between attempts) or closed it is refused at once.
    enqueue_action enqueue(pointer p, time_point now) {
        enqueue_action a;
        if (state_ == link_state::closed || state_ == link_state::down) {
            p->done = true;
            a.refused = failed_operation{std::move(p), error::backend_unavailable,
                                         state_ == link_state::closed ? "connection closed"
                                                                      : "not connected (" + last_error_ + ")"};
            return a;
        }
        a.wake_timer = p->deadline < timer_due_;
        queued_.push_back(std::move(p));
        a.write = prepare_write(now);
        return a;
    }

    /// Everything queued, unless a flush is under way (then it leaves with
    /// the next) or the link is not ready. An operation that timed out
    /// while queued is never sent.
    write_action prepare_write(time_point now) {
        write_action w;
        if (writing_ || state_ != link_state::ready) return w;
        for (auto& p : queued_) {
            if (p->done) continue;
            in_flight_.push_back(p);
            w.operations.push_back(std::move(p));
        }
        queued_.clear();
        if (w.operations.empty()) return w;
        writing_ = true;
        // Nothing was outstanding: idleness is counted from now.
        if (in_flight_.size() == w.operations.size()) last_activity_ = now;
        return w;
    }

    /// The flush is over. After a failure the link is being dropped
    /// (link_lost() follows); otherwise what queued meanwhile goes next.
    write_action write_done(bool ok, time_point now) {
        writing_ = false;
        if (!ok) return {};
        return prepare_write(now);
    }

    /// Bytes arrived: the link is alive.
    void received(time_point now) noexcept { last_activity_ = now; }

    /// A result taken from libpq (`error` with the server's fields).
    result_action on_result(result_kind kind, time_point now, statement_error info = {}) {
        result_action a;
        if (kind == result_kind::end && in_flight_.empty()) {
            a.idle = true;  // libpq has nothing in its queue either
            return a;
        }
        if (in_flight_.empty()) {
            a.out_of_step = true;
            return a;
        }
        exchange& front = *in_flight_.front();
        const bool expects_sync = front.answered == front.statements;
        switch (kind) {
        case result_kind::rows:
        case result_kind::command:
        case result_kind::error:
        case result_kind::aborted:
            if (expects_sync || front.has_result) {
                a.out_of_step = true;
                return a;
            }
            front.has_result = true;
            if (kind == result_kind::error || kind == result_kind::aborted) {
                if (!front.failure) {
                    info.statement = front.answered;
                    if (kind == result_kind::aborted && info.message.empty())
                        info.message = "not run: the pipeline was aborted";
                    front.failure = std::move(info);
                }
            } else if (!front.done && !front.failure) {
                a.keep_for = in_flight_.front();
                a.index = front.answered;
            }
            return a;
        case result_kind::end:
            if (expects_sync || !front.has_result) {
                a.out_of_step = true;
                return a;
            }
            front.has_result = false;
            ++front.answered;
            return a;
        case result_kind::sync: break;
        }
        if (!expects_sync) {
            a.out_of_step = true;
            return a;
        }
        pointer finished = std::move(in_flight_.front());
        in_flight_.pop_front();
        if (finished->what == exchange::kind::setup) {
            finished->done = true;
            if (finished->failure) {
                a.setup_failed = std::move(finished);
                return a;
            }
            if (state_ != link_state::setting_up) return a;  // dropped meanwhile
            state_ = link_state::ready;
            backoff_.reset();
            last_activity_ = now;
            a.link_ready = true;
            a.write = prepare_write(now);
            return a;
        }
        if (finished->done) return a;  // failed already (a deadline)
        finished->done = true;
        if (finished->failure) {
            a.code = error_for_sqlstate(finished->failure->sqlstate);
            a.failed = std::move(finished);
        } else {
            a.completed = std::move(finished);
        }
        return a;
    }

    // ---- time --------------------------------------------------------------------

    /// Deadlines and health checks, with one timer armed for the earliest
    /// thing due.
    tick_action tick(time_point now) {
        tick_action a;
        auto next = time_point::max();
        // Queued operations were never sent: each fails alone.
        for (auto& p : queued_) {
            if (p->done) continue;
            if (p->deadline <= now) {
                p->done = true;
                a.failed.push_back(
                    {p, error::timeout,
                     "not sent within " + std::to_string(p->timeout.count()) + " ms (" + waiting_for() + ")"});
            } else {
                next = std::min(next, p->deadline);
            }
        }
        std::erase_if(queued_, [](const pointer& p) { return p->done; });

        // In flight: one past its deadline drops the link.
        const exchange* late = nullptr;
        for (auto& p : in_flight_) {
            if (p->done) continue;
            if (p->deadline <= now) {
                if (!late) late = p.get();
            } else {
                next = std::min(next, p->deadline);
            }
        }
        if (late && !dropping_) {
            a.drop_link = true;
            dropping_ = true;
            if (late->what == exchange::kind::setup) {
                // Setting up is part of connecting: a failed attempt.
                drop_reason_ = "setting up the connection took longer than " +
                               std::to_string(timing_.connect_timeout.count()) + " ms";
            } else {
                drop_for_deadline_ = true;
                drop_reason_ =
                    late->what == exchange::kind::health_check
                        ? "the health check got no result within " + std::to_string(late->timeout.count()) + " ms"
                        : "an operation got no result within " + std::to_string(late->timeout.count()) + " ms";
                for (auto& p : in_flight_) {
                    if (p->done) continue;
                    p->done = true;
                    if (p->deadline <= now)
                        a.failed.push_back({p, error::timeout,
                                            "no result within " + std::to_string(p->timeout.count()) +
                                                " ms; the connection was dropped (libpq cannot cancel without "
                                                "blocking), the operation may have run"});
                    else
                        a.failed.push_back({p, error::timeout,
                                            "the connection was dropped because another operation on it got no "
                                            "result within its deadline; this one may have run"});
                }
            }
        }

        // Connecting (resolving, TCP, TLS, authentication) has its deadline too.
        if (state_ == link_state::connecting && !dropping_) {
            if (now >= connect_deadline_) {
                a.drop_link = true;
                dropping_ = true;
                drop_reason_ = "connecting took longer than " + std::to_string(timing_.connect_timeout.count()) + " ms";
            } else {
                next = std::min(next, connect_deadline_);
            }
        }

        if (state_ == link_state::ready && timing_.health_check_interval > milliseconds::zero()) {
            if (in_flight_.empty() && queued_.empty() && now - last_activity_ >= timing_.health_check_interval) {
                a.health_check = true;
                return a;
            }
            // Busy now, maybe idle by then: look again (nothing wakes the
            // timer when the last result comes).
            next = std::min(next, std::max(last_activity_ + timing_.health_check_interval, now + milliseconds{1}));
        }
        // Never asleep longer than a request timeout: an operation enqueued
        // meanwhile then has a later deadline and need not wake the timer.
        next = std::min(next, now + timing_.request_timeout);
        timer_due_ = next;
        a.wake_at = next;
        return a;
    }

    // ---- the link ----------------------------------------------------------------

    /// An attempt to open a link starts: operations wait for it, until the
    /// connect deadline.
    void connecting(time_point now) noexcept {
        if (state_ == link_state::closed) return;
        state_ = link_state::connecting;
        connect_deadline_ = now + timing_.connect_timeout;
    }

    /// libpq says the connection is made: send `setup` (its statements:
    /// SET statement_timeout and the PREPAREs) before anything else, under
    /// the connect deadline.
    write_action connected(pointer setup, time_point now) {
        if (state_ != link_state::connecting) return {};
        state_ = link_state::setting_up;
        setup->what = exchange::kind::setup;
        setup->deadline = connect_deadline_;
        setup->timeout = timing_.connect_timeout;
        last_activity_ = now;
        in_flight_.push_front(setup);
        writing_ = true;
        write_action w;
        w.operations.push_back(std::move(setup));
        return w;
    }

    /// The link failed, could not be opened or set up, or was dropped, for
    /// `reason` (in words). What was in flight fails: nothing is re-sent,
    /// it may have run. What was queued fails too and new operations are
    /// refused until the next attempt — unless the link was dropped for a
    /// deadline: then the server is not known to be down, queued operations
    /// wait, and the next attempt starts at once. `random` places the
    /// backoff wait within its range.
    lost_action link_lost(std::string reason, std::uint64_t random) {
        lost_action a;
        writing_ = false;
        dropping_ = false;
        if (state_ == link_state::closed) return a;
        const bool was_up = state_ == link_state::ready || state_ == link_state::setting_up;
        if (!drop_reason_.empty()) reason = std::move(drop_reason_);
        drop_reason_.clear();
        if (drop_for_deadline_) {
            drop_for_deadline_ = false;
            take(in_flight_, a.failed, error::timeout, "the connection was dropped (" + reason + ")");
            state_ = link_state::connecting;
            return a;
        }
        last_error_ = std::move(reason);
        state_ = link_state::down;
        take(in_flight_, a.failed, error::backend_unavailable,
             was_up ? "connection lost (" + last_error_ + ") before the result came; the operation may have run"
                    : "not connected (" + last_error_ + ")");
        take(queued_, a.failed, error::backend_unavailable, "not connected (" + last_error_ + ")");
        a.reconnect_after = backoff_.next_wait(random);
        return a;
    }

    /// For good: everything waiting fails, nothing is accepted any more.
    std::vector<failed_operation> close() {
        std::vector<failed_operation> out;
        if (state_ == link_state::closed) return out;
        state_ = link_state::closed;
        take(in_flight_, out, error::backend_unavailable, "connection closed");
        take(queued_, out, error::backend_unavailable, "connection closed");
        return out;
    }

private:
    std::string waiting_for() const {
        switch (state_) {
        case link_state::connecting: return "connecting";
        case link_state::setting_up: return "setting up the connection";
        case link_state::ready: return "behind a flush";
        case link_state::down: return "not connected: " + last_error_;
        case link_state::closed: return "closed";
        }
        return "waiting";
    }

    static void take(std::deque<pointer>& q, std::vector<failed_operation>& out, error code, const std::string& why) {
        for (auto& p : q)
            if (!p->done) {
                p->done = true;
                out.push_back({std::move(p), code, why});
            }
        q.clear();
    }

    timing timing_;
    sessionkit::detail::backoff backoff_;
    link_state state_ = link_state::connecting;
    std::string last_error_ = "connecting";
    std::string drop_reason_;         ///< why the link is being dropped (a deadline), for link_lost()
    bool drop_for_deadline_ = false;  ///< dropped for an operation's deadline, not a failure of the server
    bool dropping_ = false;           ///< a drop was asked for and link_lost() has not come yet
    std::deque<pointer> queued_;      ///< not yet sent
    std::deque<pointer> in_flight_;   ///< sent, results awaited, in order
    bool writing_ = false;
    time_point connect_deadline_ = time_point::max();  ///< set by connecting()
    time_point last_activity_{};
    time_point timer_due_ = time_point::min();  ///< when the connection's timer wakes
};

}  // namespace sessionkit::postgres::detail

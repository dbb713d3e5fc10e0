// sessionkit/redis/detail/multiplexer.hpp — the Redis connection's decisions
// about requests, without I/O: what to write next, which request a reply
// belongs to, and what has waited too long.
//
// The connection (redis/connection.hpp) feeds it events — a request to send,
// a write finished, a reply parsed, time passed, the link up, lost or closed
// — and performs the actions it returns: write these buffers, complete or
// fail these requests, close a stalled link, send a health PING, wake at T.
// Time is a parameter, so tests drive it by hand, and there is no executor,
// socket or timer here.
//
// Cost on the hot path is what the connection had before this split: a
// request is one deque push, a reply one deque pop, one write carries
// everything queued, and a request only asks for the timer to be re-armed
// when its deadline is earlier than the one the timer is armed for.
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/redis/resp.hpp>

#include <boost/asio/buffer.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace sessionkit::redis::detail {

using clock_type = std::chrono::steady_clock;

/// One request as the multiplexer sees it: bytes to send, how many replies
/// they ask for, when to give up, the replies so far. The connection derives
/// its awaited request (with the caller to resume) from this.
struct exchange {
    std::string_view payload;  ///< owned by the derived object, unchanged while queued or in flight
    std::size_t commands = 0;
    clock_type::time_point deadline{};
    std::vector<resp::value> replies;
    std::size_t answered = 0;  ///< replies received, kept or not
    bool done = false;         ///< completed or failed: no action names it again
};

enum class link_state : std::uint8_t { connecting, ready, down, closed };

class multiplexer {
public:
    using pointer = std::shared_ptr<exchange>;
    using time_point = clock_type::time_point;
    using milliseconds = std::chrono::milliseconds;

    struct timing {
        milliseconds request_timeout{2000};
        milliseconds stall_timeout{4000};          ///< the effective one, never 0
        milliseconds health_check_interval{5000};  ///< 0: never
    };

    /// Write these buffers in one write, then report write_done(). Empty:
    /// nothing to write now.
    struct write_action {
        std::span<const boost::asio::const_buffer> buffers;
        std::size_t requests = 0;
        explicit operator bool() const noexcept { return !buffers.empty(); }
    };

    /// Fail these requests with `code` and `why` (already marked done).
    struct failure_action {
        std::vector<pointer> requests;
        error code = error::backend_unavailable;
        std::string why;
    };

    struct enqueue_action {
        pointer refused;  ///< handed back when it cannot be queued: fail it with backend_unavailable, `why`
        std::string why;
        bool wake_timer = false;  ///< its deadline is earlier than the timer is armed for
        write_action write;
    };

    struct reply_action {
        pointer completed;        ///< all its replies are in: resume its caller
        bool unexpected = false;  ///< a reply nobody waits for: the stream is out of step, drop the link
    };

    struct tick_action {
        failure_action timed_out;
        bool close_link = false;  ///< stalled: close it; link_lost() then reports the stall
        bool send_ping = false;   ///< idle long enough: enqueue a PING, then tick again
        time_point wake_at{};     ///< tick again then (when not sending a ping)
    };

    explicit multiplexer(timing t) : timing_(t) {}

    link_state state() const noexcept { return state_; }
    const std::string& last_error() const noexcept { return last_error_; }
    std::size_t queued() const noexcept { return queued_.size(); }
    std::size_t in_flight() const noexcept { return in_flight_.size(); }

    // ---- requests ------------------------------------------------------------

    /// A caller's request. While a link is being opened it waits; while the
    /// link is down (between attempts) or closed it is refused at once.
    template <class Now>
    enqueue_action enqueue(pointer p, const Now& now) {
        enqueue_action a;
        if (state_ == link_state::closed || state_ == link_state::down) {
            a.why = state_ == link_state::closed ? "connection closed" : "not connected (" + last_error_ + ")";
            p->done = true;
            a.refused = std::move(p);
            return a;
        }
        // The timer never sleeps past now + request_timeout, so it only
        // needs waking for a deadline earlier than that (a shorter timeout).
        a.wake_timer = p->deadline < timer_due_;
        queued_.push_back(std::move(p));
        a.write = prepare_write(now);
        return a;
    }

    /// Everything queued, in one write, unless a write is under way (then it
    /// leaves with the next) or the link is not ready. A request that timed
    /// out while queued is never sent. The buffers stay valid until
    /// write_done().
    template <class Now>
    write_action prepare_write(const Now& now) {
        if (writing_ || state_ != link_state::ready) return {};
        write_batch_.clear();
        write_buffers_.clear();
        for (auto& p : queued_) {
            if (p->done) continue;
            write_buffers_.push_back(boost::asio::buffer(p->payload.data(), p->payload.size()));
            in_flight_.push_back(p);
            write_batch_.push_back(std::move(p));
        }
        queued_.clear();
        if (write_batch_.empty()) return {};
        // Nothing was outstanding: the stall clock starts now, not at the
        // last reply, which may be long ago.
        if (in_flight_.size() == write_batch_.size()) last_received_ = read(now);
        writing_ = true;
        return {write_buffers_, write_batch_.size()};
    }

    /// The write is over. After a failure the link is closing (link_lost()
    /// follows); otherwise, what queued meanwhile goes out next.
    template <class Now>
    write_action write_done(bool ok, const Now& now) {
        writing_ = false;
        write_batch_.clear();
        if (!ok) return {};
        return prepare_write(now);
    }

    /// Bytes arrived (any, even half a reply): the link is alive.
    void received(time_point now) noexcept { last_received_ = now; }

    /// A complete reply. Replies come in the order requests were written, so
    /// it is the next one the oldest request in flight is waiting for. A
    /// request that timed out keeps its place until its replies come, then
    /// is dropped, so later replies still meet their own request.
    reply_action reply_parsed(resp::value&& v) {
        reply_action a;
        if (v.kind == resp::type::push) return a;  // we never subscribe: out-of-band data
        if (in_flight_.empty()) {
            a.unexpected = true;
            return a;
        }
        exchange& front = *in_flight_.front();
        if (!front.done) front.replies.push_back(std::move(v));
        if (++front.answered < front.commands) return a;
        pointer finished = std::move(in_flight_.front());
        in_flight_.pop_front();
        if (!finished->done) {
            finished->done = true;
            a.completed = std::move(finished);
        }
        return a;
    }

    // ---- time ----------------------------------------------------------------

    /// Deadlines, stalls and health checks, with one timer armed for the
    /// earliest thing due.
    tick_action tick(time_point now) {
        tick_action a;
        auto next = time_point::max();
        for (auto* q : {&in_flight_, &queued_})
            for (auto& p : *q) {
                if (p->done) continue;
                if (p->deadline <= now) {
                    p->done = true;
                    a.timed_out.requests.push_back(p);
                } else {
                    next = std::min(next, p->deadline);
                }
            }
        if (!a.timed_out.requests.empty()) {
            a.timed_out.code = error::timeout;
            a.timed_out.why = "no reply within " + std::to_string(timing_.request_timeout.count()) + " ms";
        }
        // Timed-out requests leave the queue at once; in flight they keep
        // their place until their replies come, so later replies match.
        std::erase_if(queued_, [](const pointer& p) { return p->done; });
        if (!in_flight_.empty() && state_ == link_state::ready) {
            if (now - last_received_ >= timing_.stall_timeout) {
                // A peer gone without a FIN, or a server stuck: the link is
                // useless even though it is still open.
                stall_reason_ = "no reply for " + std::to_string(timing_.stall_timeout.count()) + " ms";
                a.close_link = true;
            } else {
                next = std::min(next, last_received_ + timing_.stall_timeout);
            }
        }
        if (state_ == link_state::ready && in_flight_.empty() && queued_.empty() &&
            timing_.health_check_interval > milliseconds::zero()) {
            if (now - last_received_ >= timing_.health_check_interval) {
                a.send_ping = true;
                return a;
            }
            next = std::min(next, last_received_ + timing_.health_check_interval);
        }
        // Never asleep longer than a request's timeout (or the stall limit):
        // a request enqueued meanwhile then has a later deadline and need not
        // wake the timer, so a request costs no timer update.
        next = std::min(next, now + std::min(timing_.request_timeout, timing_.stall_timeout));
        timer_due_ = next;
        a.wake_at = next;
        return a;
    }

    // ---- the link ------------------------------------------------------------

    /// An attempt to open a link starts: requests wait for it.
    void connecting() noexcept {
        if (state_ != link_state::closed) state_ = link_state::connecting;
    }

    /// The handshake is done: what waited goes out.
    write_action link_up(time_point now) {
        if (state_ == link_state::closed) return {};
        state_ = link_state::ready;
        last_received_ = now;
        return prepare_write(now);
    }

    /// The link failed or could not be opened, for `reason` (in words). What
    /// was in flight or queued fails: nothing is re-sent, it may have run.
    /// Until the next attempt, new requests are refused with the reason.
    failure_action link_lost(std::string reason) {
        failure_action a;
        if (state_ == link_state::closed) {
            stall_reason_.clear();
            return a;
        }
        const bool was_ready = state_ == link_state::ready;
        // A link closed for a stall fails with "operation aborted": the
        // stall is the reason.
        last_error_ = stall_reason_.empty() ? std::move(reason) : std::move(stall_reason_);
        stall_reason_.clear();
        state_ = link_state::down;
        a.why = was_ready ? "connection lost (" + last_error_ + ") before the reply came"
                          : "not connected (" + last_error_ + ")";
        take_all(a.requests);
        return a;
    }

    /// For good: everything waiting fails, nothing is accepted any more.
    failure_action close() {
        failure_action a;
        if (state_ == link_state::closed) return a;
        state_ = link_state::closed;
        a.why = "connection closed";
        take_all(a.requests);
        return a;
    }

private:
    /// `now` in the calls that may write is a time_point, or a function
    /// returning one, called only when a write starts the stall clock: a
    /// request joining a batch reads no clock.
    template <class Now>
    static time_point read(const Now& now) {
        if constexpr (std::is_invocable_r_v<time_point, const Now&>)
            return now();
        else
            return now;
    }

    void take_all(std::vector<pointer>& out) {
        for (auto* q : {&in_flight_, &queued_})
            for (auto& p : *q)
                if (!p->done) {
                    p->done = true;
                    out.push_back(std::move(p));
                }
        in_flight_.clear();
        queued_.clear();
    }

    timing timing_;
    link_state state_ = link_state::connecting;
    std::string last_error_ = "connecting";
    std::string stall_reason_;
    std::deque<pointer> queued_;     ///< not yet written
    std::deque<pointer> in_flight_;  ///< written, replies awaited, in order
    bool writing_ = false;
    std::vector<pointer> write_batch_;  ///< what the write under way sends: keeps its bytes alive
    std::vector<boost::asio::const_buffer> write_buffers_;
    time_point last_received_{};
    time_point timer_due_ = time_point::min();  ///< when the connection's timer wakes
};

}  // namespace sessionkit::redis::detail

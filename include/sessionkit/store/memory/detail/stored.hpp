// sessionkit/store/memory/detail/stored.hpp — a session as memory_store
// keeps it (compact), and where it sits on the expiry index.
//
// Private to memory_store (store/memory.hpp). The expiry class and due time
// are what the store's sweeps read: see the header comment there.
#pragma once

#include <sessionkit/session.hpp>
#include <sessionkit/status.hpp>
#include <sessionkit/store_types.hpp>

#include <boost/json/object.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace sessionkit::detail::memory {

/// A session as the store keeps it: the same fields as `session`, laid out
/// to waste nothing. The worker lives out of line (8 bytes when there is
/// none, where an inline std::optional<worker_ref> costs 104), and the two
/// optional times share one word of flags with the status. Reads build a
/// `session` from it, as they copied the stored one before. (Measured by
/// bench/run memory_store, bytes_per_session: doc/memory-store.md.)
struct stored {
    std::string id;
    std::string owner;
    time_point created_at{};
    time_point last_active{};
    time_point idle_deadline{};
    time_point absolute_deadline_at{};  ///< meaningful when has_absolute_deadline
    time_point ended_at_at{};           ///< meaningful when has_ended_at
    milliseconds idle_timeout{0};
    std::uint64_t version = 0;
    std::unique_ptr<worker_ref> worker;
    std::string end_reason;
    boost::json::object attributes;
    boost::json::object extra;
    session_status status = session_status::initializing;
    bool warning_sent = false;
    bool has_absolute_deadline = false;
    bool has_ended_at = false;

    explicit stored(session s)
        : id(std::move(s.id)), owner(std::move(s.owner)), created_at(s.created_at), last_active(s.last_active),
          idle_deadline(s.idle_deadline), absolute_deadline_at(s.absolute_deadline.value_or(time_point{})),
          ended_at_at(s.ended_at.value_or(time_point{})), idle_timeout(s.idle_timeout), version(s.version),
          worker(s.worker ? std::make_unique<worker_ref>(std::move(*s.worker)) : nullptr),
          end_reason(std::move(s.end_reason)), attributes(std::move(s.attributes)), extra(std::move(s.extra)),
          status(s.status), warning_sent(s.warning_sent), has_absolute_deadline(s.absolute_deadline.has_value()),
          has_ended_at(s.ended_at.has_value()) {}

    session to_session() const {
        session s;
        s.id = id;
        s.owner = owner;
        s.status = status;
        s.created_at = created_at;
        s.last_active = last_active;
        s.idle_timeout = idle_timeout;
        s.idle_deadline = idle_deadline;
        if (has_absolute_deadline) s.absolute_deadline = absolute_deadline_at;
        s.version = version;
        if (worker) s.worker = *worker;
        s.warning_sent = warning_sent;
        if (has_ended_at) s.ended_at = ended_at_at;
        s.end_reason = end_reason;
        s.attributes = attributes;
        s.extra = extra;
        return s;
    }

    // What session's helpers of the same names compute.
    bool lifetime_bound() const noexcept { return has_absolute_deadline && idle_deadline >= absolute_deadline_at; }
    time_point sliding_deadline(time_point now) const noexcept {
        const time_point d = now + idle_timeout;
        return has_absolute_deadline && d > absolute_deadline_at ? absolute_deadline_at : d;
    }
    touch_result touched() const {
        touch_result r{status, last_active, idle_deadline, std::nullopt, version};
        if (has_absolute_deadline) r.absolute_deadline = absolute_deadline_at;
        return r;
    }
};

/// Where a record sits on the expiry index. Live records that still owe a
/// warning come first (claim_warnings reads only them), then live records
/// already warned or being stopped, then finished ones by end time
/// (purge_ended reads only those).
enum class expiry_class : std::uint8_t { live_unwarned, live_other, ended };

inline expiry_class class_of(const stored& s) noexcept {
    if (is_final(s.status)) return expiry_class::ended;
    if (s.warning_sent || s.status == session_status::stopping) return expiry_class::live_other;
    return expiry_class::live_unwarned;
}

/// The time a record is filed under: its deadline, or for a finished one
/// its end time.
inline time_point due_time(const stored& s) noexcept {
    return is_final(s.status) && s.has_ended_at ? s.ended_at_at : s.idle_deadline;
}

}  // namespace sessionkit::detail::memory

// sessionkit/cache.hpp — session_cache: what write_through<Primary, Cache>
// keeps in front of its primary store.
//
// A cache is not a store. It holds copies of the primary's records under
// the primary's versions, so that a record read from it can be updated in
// the primary by compare-and-swap; and it absorbs touches without
// versioning them (a slide), since the primary sees only one touch in a
// while (write_through's touch_coalesce) and its version must stay the one
// the next compare-and-swap expects. doc/write_through.md has the whole
// contract; decisions.md says why a cache is not a second session_store.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/session.hpp>
#include <sessionkit/store_types.hpp>

#include <boost/asio/awaitable.hpp>

#include <concepts>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sessionkit {

/// A record as the cache holds it.
struct cached_session {
    /// The primary's record at `record.version`, with last_active,
    /// idle_deadline and warning_sent as the cache's slides left them.
    session record;
    /// last_active as the primary holds it (when the primary was last
    /// touched, as far as the cache knows).
    time_point primary_last_active{};
};

/// What a slide reads of a copy, before it slides it: the fields a touch
/// answers with and decides on (the whole record is not read on the hot
/// path).
struct cached_touch {
    session_status status = session_status::active;
    std::uint64_t version = 0;
    time_point last_active{};
    time_point idle_deadline{};
    std::optional<time_point> absolute_deadline;
    milliseconds idle_timeout{0};
    bool warning_sent = false;
    time_point primary_last_active{};

    /// These fields as a record (the rest left empty), to slide or answer with.
    session as_record() const {
        session s;
        s.status = status;
        s.version = version;
        s.last_active = last_active;
        s.idle_deadline = idle_deadline;
        s.absolute_deadline = absolute_deadline;
        s.idle_timeout = idle_timeout;
        s.warning_sent = warning_sent;
        return s;
    }
};

inline cached_touch cached_touch_of(const cached_session& c) {
    const auto& r = c.record;
    return {r.status,       r.version,      r.last_active,        r.idle_deadline, r.absolute_deadline,
            r.idle_timeout, r.warning_sent, c.primary_last_active};
}

/// session_cache: every operation is atomic per session.
///   - load(id): the cached record, or nullopt when not cached;
///   - put(rec): caches rec (the primary's record, its version included)
///     unless the cache holds that version or a newer one, so a late fill
///     never overwrites a newer write; true when it stored it. A live
///     copy's slides survive a put of a live record (merge_slides below):
///     time never goes backwards in the cache;
///   - slide(id, now): a touch of the cached copy without a new version
///     (slide_record below: last_active = max(last_active, now), the idle
///     deadline from it, capped at absolute_deadline, warning_sent =
///     false; a stopping or final copy is left as it is). Returns what the
///     copy held BEFORE this slide (cached_touch: the caller decides from it
///     whether the touch must reach the primary); nullopt when not cached;
///   - forget(id): drops the copy (no-op when there is none);
///   - clear(): drops every copy;
///   - ping(): returns when the cache answers, throws when it does not.
/// Failures are system_errors naming the cache, as for a store.
template <class C>
concept session_cache = requires(C& c, const session& rec, std::string_view id, time_point now) {
    { c.load(id) } -> std::same_as<boost::asio::awaitable<std::optional<cached_session>>>;
    { c.put(rec) } -> std::same_as<boost::asio::awaitable<bool>>;
    { c.slide(id, now) } -> std::same_as<boost::asio::awaitable<std::optional<cached_touch>>>;
    { c.forget(id) } -> std::same_as<boost::asio::awaitable<void>>;
    { c.clear() } -> std::same_as<boost::asio::awaitable<void>>;
    { c.ping() } -> std::same_as<boost::asio::awaitable<void>>;
};

/// What a slide does to a cached copy (every cache applies this).
inline void slide_record(session& s, time_point now) noexcept {
    if (is_final(s.status) || s.status == session_status::stopping) return;
    if (now > s.last_active) s.last_active = now;
    s.idle_deadline = sliding_deadline(s, s.last_active);
    s.warning_sent = false;
}

/// What put() keeps of the copy it replaces: when both are live and the
/// copy was slid past the new record's last_active, the new record takes
/// the copy's last_active (and the deadline from it). The primary keeps the
/// older time until the next touch reaches it.
inline void merge_slides(session& incoming, const session& cached) noexcept {
    const auto live = [](const session& s) { return !is_final(s.status) && s.status != session_status::stopping; };
    if (!live(incoming) || !live(cached) || cached.last_active <= incoming.last_active) return;
    incoming.last_active = cached.last_active;
    incoming.idle_deadline = sliding_deadline(incoming, incoming.last_active);
}

}  // namespace sessionkit

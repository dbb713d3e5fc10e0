// sessionkit/store/write_through/detail/health.hpp — when write_through
// uses its cache and when it bypasses it: a state machine without I/O,
// with time passed in (unit-tested in test/unit/write_through_test.cpp).
//
//   in_use ──(a cache operation fails, policy bypass)──▶ bypassing
//   bypassing ──(probe due; one caller takes it)──▶ probing
//   probing ──(ping and forgetting every id written meanwhile succeed,
//              and none was written during it)──▶ in_use
//   probing ──(fails)──▶ bypassing (next probe after `retry`)
//
// While not in_use, every session written to the primary is remembered
// (at most `dirty_limit` ids; past that, the whole cache is cleared on
// recovery), and its copy is forgotten before the cache is used again:
// the cache comes back cold for those, never staler than the primary.
#pragma once

#include <sessionkit/cache.hpp>
#include <sessionkit/clock.hpp>
#include <sessionkit/session.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace sessionkit::detail::write_through {

using steady_time = std::chrono::steady_clock::time_point;

enum class cache_state { in_use, bypassing, probing };

constexpr std::string_view to_string(cache_state s) noexcept {
    switch (s) {
    case cache_state::in_use: return "in_use";
    case cache_state::bypassing: return "bypassing";
    case cache_state::probing: return "probing";
    }
    return "unknown";
}

class cache_health {
public:
    cache_health(milliseconds retry, std::size_t dirty_limit) : retry_(retry), dirty_limit_(dirty_limit) {}

    cache_state state() const noexcept { return state_; }
    bool usable() const noexcept { return state_ == cache_state::in_use; }

    /// A cache operation failed: true when this switched the cache off.
    bool failed(steady_time now) {
        if (state_ == cache_state::bypassing) return false;
        const bool switched = state_ == cache_state::in_use;
        state_ = cache_state::bypassing;
        next_probe_ = now + retry_;
        return switched;
    }

    /// A session was written to the primary while the cache was not in use.
    void written(std::string_view id) {
        if (state_ == cache_state::in_use) return;
        if (overflowed_) return;
        if (dirty_.size() >= dirty_limit_) {
            overflowed_ = true;
            dirty_.clear();
            return;
        }
        dirty_.emplace(id);
    }

    /// Whether the caller should probe now (it then owns the probe).
    bool take_probe(steady_time now) {
        if (state_ != cache_state::bypassing || now < next_probe_) return false;
        state_ = cache_state::probing;
        return true;
    }

    /// What the prober must forget before the cache is used again; `clear`
    /// set: forget everything (more ids than dirty_limit were written).
    struct forget_list {
        std::vector<std::string> ids;
        bool clear = false;
    };
    forget_list take_dirty() {
        forget_list out{{dirty_.begin(), dirty_.end()}, overflowed_};
        dirty_.clear();
        overflowed_ = false;
        return out;
    }

    /// The probe's ping and forgetting succeeded. Returns true when the
    /// cache is in use again; false when more ids were written meanwhile
    /// (the prober forgets those too, then calls this again).
    bool probe_succeeded() {
        if (!dirty_.empty() || overflowed_) return false;
        state_ = cache_state::in_use;
        return true;
    }

    void probe_failed(steady_time now) {
        state_ = cache_state::bypassing;
        next_probe_ = now + retry_;
    }

private:
    milliseconds retry_;
    std::size_t dirty_limit_;
    cache_state state_ = cache_state::in_use;
    steady_time next_probe_{};
    std::unordered_set<std::string> dirty_;
    bool overflowed_ = false;
};

/// Whether a cached copy must be written through to the primary on this
/// touch: the primary last saw the session `coalesce` ago or more.
constexpr bool touch_reaches_primary(time_point primary_last_active, time_point now, milliseconds coalesce) noexcept {
    return now - primary_last_active >= coalesce;
}

/// The coalescing window of a session: `configured` when set, else a
/// quarter of its idle timeout (so the primary's deadline is never more
/// than a quarter of a timeout behind).
constexpr milliseconds coalesce_window(std::optional<milliseconds> configured, milliseconds idle_timeout) noexcept {
    if (configured) return *configured;
    return idle_timeout / 4;
}

/// Whether a touch the cache took must reach the primary too: the
/// coalescing window has passed since the primary last saw one, or the
/// touch changes what a sweep of the primary decides (it re-arms a
/// warning, or makes the lifetime the deadline). `was` is the copy before
/// the slide, `after` the slid record. A stopping or final copy is
/// answered from the cache.
inline bool touch_must_reach_primary(const cached_touch& was, const session& after, time_point now,
                                     std::optional<milliseconds> configured_window) {
    if (is_final(was.status) || was.status == session_status::stopping) return false;
    if (was.warning_sent) return true;
    if (after.lifetime_bound() && !was.as_record().lifetime_bound()) return true;
    return touch_reaches_primary(was.primary_last_active, now, coalesce_window(configured_window, was.idle_timeout));
}

/// Whether the primary's claim of a session (its record `claimed`) must be
/// undone: the cache's copy (`copy`, read after the claim) was live, its
/// deadline is still ahead, and it is the version just before the claim.
inline bool claim_must_be_undone(const session& copy, const session& claimed, time_point now) noexcept {
    return !is_final(copy.status) && copy.status != session_status::stopping && copy.idle_deadline > now &&
           copy.version + 1 == claimed.version;
}

}  // namespace sessionkit::detail::write_through

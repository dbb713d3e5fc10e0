// sessionkit/store_types.hpp — the values that session_store operations
// take and return. Expected outcomes are values; backend failures throw.
#pragma once

#include <sessionkit/session.hpp>
#include <sessionkit/status.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sessionkit {

/// What create() did: `created` is false when a live session with that id
/// already existed; `record` is then the existing one, else the new one.
struct create_result {
    bool created = false;
    session record;
};

/// What touch() reports: whether the session lives, and until when. Not the
/// whole record: touch is the hottest operation, and a few fixed-size fields
/// cost no allocation in memory and a handful of bytes on a network.
struct touch_result {
    session_status status = session_status::active;
    time_point last_active{};
    time_point idle_deadline{};
    std::optional<time_point> absolute_deadline;
    std::uint64_t version = 0;

    bool lifetime_bound() const noexcept { return absolute_deadline && idle_deadline >= *absolute_deadline; }
    /// Writes what a touch changed into a full record read before it.
    void apply_to(session& s) const {
        s.status = status;
        s.last_active = last_active;
        s.idle_deadline = idle_deadline;
        s.version = version;
        if (!is_final(status) && status != session_status::stopping) s.warning_sent = false;
    }
};

inline touch_result touch_result_of(const session& s) {
    return {s.status, s.last_active, s.idle_deadline, s.absolute_deadline, s.version};
}

/// What a compare-and-swap update() did.
enum class update_result {
    updated,           ///< written; the stored version is now expected + 1
    not_found,         ///< no record with that id
    version_conflict,  ///< the stored version is not the expected one
    final_state,       ///< the stored record is terminated or failed: it never changes
};

constexpr std::string_view to_string(update_result r) noexcept {
    switch (r) {
    case update_result::updated: return "updated";
    case update_result::not_found: return "not_found";
    case update_result::version_conflict: return "version_conflict";
    case update_result::final_state: return "final_state";
    }
    return "unknown";
}

inline constexpr std::size_t max_page_size = 1000;

/// A page request. Filters combine (owner AND status). `cursor` is the
/// opaque next_cursor of the previous page, empty for the first page.
struct list_query {
    std::optional<std::string> owner;
    std::optional<session_status> status;
    std::size_t limit = 100;  ///< 1..max_page_size; stores clamp larger values
    std::string cursor;
};

/// One page. Sessions come in id order; paging to the end returns every
/// session that existed throughout exactly once, even while others are
/// created and removed.
struct session_page {
    std::vector<session> sessions;
    std::optional<std::string> next_cursor;  ///< nullopt on the last page
};

struct store_stats {
    std::array<std::uint64_t, session_status_count> by_status{};  ///< records now, by status
    std::uint64_t sessions = 0;                                   ///< records now (history included)
    std::uint64_t created_total = 0;                              ///< creations since the store began
    std::uint64_t expired_total = 0;                              ///< first claims by a janitor
    std::uint64_t terminated_total = 0;                           ///< transitions into a final status

    std::uint64_t count(session_status s) const noexcept { return by_status[static_cast<std::size_t>(s)]; }
};

}  // namespace sessionkit

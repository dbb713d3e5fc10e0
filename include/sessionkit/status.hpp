// sessionkit/status.hpp — the session status and its transition table.
#pragma once

#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace sessionkit {

enum class session_status : std::uint8_t {
    initializing,   ///< created; its worker (if any) is being started
    active,         ///< in use
    idle,           ///< alive but reported idle by its owner
    waiting_input,  ///< its worker waits for the user's input
    stopping,       ///< ending: claimed by a janitor or being terminated (has a deadline)
    terminated,     ///< final: ended normally (expired, deleted, worker exited 0)
    failed,         ///< final: ended by an error (worker crashed or vanished)
};

inline constexpr std::size_t session_status_count = 7;

inline constexpr std::array<std::string_view, session_status_count> session_status_names = {
    "initializing", "active", "idle", "waiting_input", "stopping", "terminated", "failed"};

constexpr std::string_view to_string(session_status s) noexcept {
    auto i = static_cast<std::size_t>(s);
    return i < session_status_count ? session_status_names[i] : std::string_view{"invalid"};
}

inline std::ostream& operator<<(std::ostream& os, session_status s) { return os << to_string(s); }

constexpr std::optional<session_status> parse_status(std::string_view name) noexcept {
    for (std::size_t i = 0; i < session_status_count; ++i)
        if (session_status_names[i] == name) return static_cast<session_status>(i);
    return std::nullopt;
}

/// "unknown session status 'x' (expected one of ...)": the one wording of
/// this error, for the library and the HTTP API alike.
inline std::string unknown_status_message(std::string_view name) {
    return "unknown session status '" + detail::printable(name) +
           "' (expected one of initializing, active, idle, waiting_input, stopping, terminated, failed)";
}

/// Throws error::invalid_argument naming the unknown status.
inline session_status status_from_string(std::string_view name) {
    if (auto s = parse_status(name)) return *s;
    throw_error(error::invalid_argument, unknown_status_message(name));
}

constexpr bool is_final(session_status s) noexcept {
    return s == session_status::terminated || s == session_status::failed;
}

/// The transition table. A non-final status may stay what it is (an
/// idempotent re-statement); final statuses never change, so a late write
/// cannot resurrect a session; `stopping` only ends.
///
///   from \ to      init active idle wait stopping terminated failed
///   initializing    =     x     x    x      x         x        x
///   active                =     x    x      x         x        x
///   idle                  x     =    x      x         x        x
///   waiting_input         x     x    =      x         x        x
///   stopping                                =         x        x
///   terminated, failed: none
constexpr bool can_transition(session_status from, session_status to) noexcept {
    if (is_final(from)) return false;
    if (from == to) return true;
    if (to == session_status::initializing) return false;
    if (from == session_status::stopping) return is_final(to);
    return true;
}

/// Throws error::invalid_transition naming both states.
inline void check_transition(std::string_view id, session_status from, session_status to) {
    if (!can_transition(from, to))
        throw_error(error::invalid_transition, "session '" + std::string(id) + "': cannot change status from " +
                                                   std::string(to_string(from)) + " to " + std::string(to_string(to)));
}

}  // namespace sessionkit

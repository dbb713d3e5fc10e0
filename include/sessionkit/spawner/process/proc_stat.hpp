// sessionkit/spawner/process/proc_stat.hpp — reading one /proc/<pid>/stat
// text into the fields a process spawner judges a process by (pid,
// command name, state, parent, group, session, start time).
//
// A pure function of the text (no file is opened here), so that the odd
// cases are unit-tested: the command name is whatever the process set (up
// to 15 bytes, any of them ')' or ' '), so it runs from the first '(' to
// the LAST ')' of the text; the fields after it never contain ')'. Text
// cut short or not a stat line at all is an error naming the field that
// is missing or wrong, never a guess (proc(5), "/proc/pid/stat").
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace sessionkit::procfs {

/// The fields of /proc/<pid>/stat a spawner uses (numbered as in proc(5)).
struct pid_stat {
    long pid = 0;                  ///< 1
    std::string comm;              ///< 2, without its parentheses
    char state = 0;                ///< 3: R, S, D, Z (zombie), T, t, X, I, ...
    long ppid = 0;                 ///< 4: the parent's pid
    long pgrp = 0;                 ///< 5: the process group
    long session = 0;              ///< 6: the session id
    std::uint64_t start_time = 0;  ///< 22: clock ticks after boot when it started

    /// Ended, and waiting for its parent to reap it.
    bool zombie() const noexcept { return state == 'Z'; }
};

/// What parse_pid_stat made of a text: the fields, or what was wrong.
struct pid_stat_parse {
    std::optional<pid_stat> stat;
    std::string error;  ///< empty when stat is set

    explicit operator bool() const noexcept { return stat.has_value(); }
};

namespace detail {

/// The next space-separated field of `rest` (advancing it); empty at the end.
inline std::string_view next_field(std::string_view& rest) noexcept {
    const auto end = rest.find(' ');
    const std::string_view field = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    return field;
}

/// `text` as a whole number of type T, or nullopt.
template <class T>
std::optional<T> number(std::string_view text) noexcept {
    T v{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return v;
}

inline std::string shown(std::string_view text) {
    std::string out;
    for (char c : text.substr(0, 40)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    return text.size() > 40 ? out + "..." : out;
}

}  // namespace detail

/// Parses the text of /proc/<pid>/stat (one line; a final newline is
/// allowed). Every field up to start_time (22) must be there, and at least
/// the start of the next (the kernel writes 52).
inline pid_stat_parse parse_pid_stat(std::string_view text) {
    auto fail = [](std::string why) { return pid_stat_parse{std::nullopt, "/proc stat: " + std::move(why)}; };
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    if (text.empty()) return fail("empty");
    pid_stat out;

    const auto open = text.find(" (");
    if (open == std::string_view::npos)
        return fail("no ' (' opening the command name in '" + detail::shown(text) + "'");
    const auto pid = detail::number<long>(text.substr(0, open));
    if (!pid || *pid <= 0) return fail("field 1 (pid) is not a pid: '" + detail::shown(text.substr(0, open)) + "'");
    out.pid = *pid;
    const auto close = text.rfind(')');
    if (close == std::string_view::npos || close < open + 2)
        return fail("no ')' closing the command name (cut short?): '" + detail::shown(text) + "'");
    out.comm = std::string(text.substr(open + 2, close - open - 2));
    std::string_view rest = text.substr(close + 1);
    if (rest.empty()) return fail("nothing after the command name (cut short?)");
    if (rest.front() != ' ') return fail("no space after the command name");
    rest.remove_prefix(1);

    // Fields 3 to 22, in order; those we do not keep are only counted.
    // Field 23 must follow: without it, a text cut inside field 22 would
    // read as a smaller start time.
    for (int n = 3; n <= 23; ++n) {
        const std::string_view field = detail::next_field(rest);
        const std::string which = "field " + std::to_string(n);
        if (field.empty()) return fail(which + (rest.empty() ? " missing (cut short?)" : " is empty"));
        auto bad = [&](std::string_view name) {
            return fail(which + " (" + std::string(name) + ") is not a number: '" + detail::shown(field) + "'");
        };
        switch (n) {
        case 3:
            if (field.size() != 1) return fail(which + " (state) is not one character: '" + detail::shown(field) + "'");
            out.state = field.front();
            break;
        case 4:
            if (auto v = detail::number<long>(field))
                out.ppid = *v;
            else
                return bad("ppid");
            break;
        case 5:
            if (auto v = detail::number<long>(field))
                out.pgrp = *v;
            else
                return bad("pgrp");
            break;
        case 6:
            if (auto v = detail::number<long>(field))
                out.session = *v;
            else
                return bad("session");
            break;
        case 22:
            if (auto v = detail::number<std::uint64_t>(field))
                out.start_time = *v;
            else
                return bad("starttime");
            break;
        default: break;
        }
    }
    return {std::move(out), {}};
}

}  // namespace sessionkit::procfs

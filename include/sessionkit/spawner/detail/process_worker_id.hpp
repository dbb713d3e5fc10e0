// sessionkit/spawner/detail/process_worker_id.hpp — what a process
// worker's id ("<host>:<daemon pid>:<supervisor pid>") says, and whether
// a worker of another daemon still runs, judged from its /proc stat.
// Private to spawner/process.hpp; pure but for the one file read, which
// the caller passes in, so the judgement is unit-tested.
#pragma once

#include <sessionkit/spawner/process/proc_stat.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

namespace sessionkit::detail::process {

/// The parts of a process worker id. The host may itself hold ':'; the
/// two pids are the last two parts.
struct worker_id_parts {
    std::string host;
    std::string daemon_pid;
    std::string child_pid;
};

inline std::optional<worker_id_parts> parse_worker_id(std::string_view id) {
    const auto last = id.rfind(':');
    if (last == std::string_view::npos || last == 0) return std::nullopt;
    const auto mid = id.rfind(':', last - 1);
    if (mid == std::string_view::npos) return std::nullopt;
    return worker_id_parts{std::string(id.substr(0, mid)), std::string(id.substr(mid + 1, last - mid - 1)),
                           std::string(id.substr(last + 1))};
}

/// Whether worker `id` of another spawner runs, seen from the spawner
/// whose instance is `our_instance` ("<host>:<daemon pid>"): true for
/// another host's (only that host can judge it); for this host's, whether
/// its pid runs (not a zombie) and is still that daemon's child.
/// `read_stat(pid)` gives the text of /proc/<pid>/stat, or nullopt.
template <class ReadStat>
bool foreign_worker_runs(std::string_view id, std::string_view our_instance, ReadStat&& read_stat) {
    const auto parts = parse_worker_id(id);
    if (!parts) return false;
    const std::string_view our_host = our_instance.substr(0, our_instance.rfind(':'));
    if (parts->host != our_host) return true;
    if (parts->child_pid.empty() || parts->child_pid.find_first_not_of("0123456789") != std::string::npos) return false;
    const std::optional<std::string> text = read_stat(parts->child_pid);
    if (!text) return false;
    const auto parsed = procfs::parse_pid_stat(*text);
    return parsed && !parsed.stat->zombie() && std::to_string(parsed.stat->ppid) == parts->daemon_pid;
}

/// The text of /proc/<pid>/stat; nullopt when there is no such process.
inline std::optional<std::string> read_proc_stat(const std::string& pid) {
    std::FILE* f = std::fopen(("/proc/" + pid + "/stat").c_str(), "r");
    if (!f) return std::nullopt;
    std::string text;
    char chunk[512];
    for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, f)) > 0;) text.append(chunk, n);
    std::fclose(f);
    if (text.empty()) return std::nullopt;
    return text;
}

}  // namespace sessionkit::detail::process

// sessionkit/sink/nats/detail/dead_letter.hpp — the file where nats_sink
// keeps the events JetStream refused for good: one JSON line each,
//   {"time":<ms>,"reason":"…","stream":"SESSIONS","subject":"sessions.created.a","event":{…}}
// where "event" is the event's wire form (the payload that was refused).
// Appended with one write(2) per line and fdatasync'ed, so a dead letter
// that made its batch confirm is on disk. Several threads may write: one
// mutex. Written on nats.c's and the sink's threads, never an executor's.
#pragma once

#include <sessionkit/clock.hpp>
#include <sessionkit/error.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>

namespace sessionkit::detail::nats {

/// The line for one dead letter, without its '\n'. `payload` is the
/// event's JSON text as it was published.
inline std::string dead_letter_line(std::int64_t time_ms, std::string_view reason, std::string_view stream,
                                    std::string_view subject, std::string_view payload) {
    auto text = [](std::string_view s) { return boost::json::serialize(boost::json::string(s)); };
    std::string line = "{\"time\":" + std::to_string(time_ms) + ",\"reason\":" + text(reason) +
                       ",\"stream\":" + text(stream) + ",\"subject\":" + text(subject) + ",\"event\":";
    line += payload;
    line += '}';
    return line;
}

class dead_letter_file {
public:
    dead_letter_file() = default;
    dead_letter_file(const dead_letter_file&) = delete;
    dead_letter_file& operator=(const dead_letter_file&) = delete;
    ~dead_letter_file() {
        if (fd_ >= 0) ::close(fd_);
    }

    /// Opens `path` for appending (created if missing). Throws
    /// error::invalid_argument naming the option and the path.
    void open(const std::string& path) {
        fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0)
            throw_error(error::invalid_argument,
                        "nats_sink option dead_letter_file = '" + path +
                            "': cannot open it for appending: " + std::system_category().message(errno));
        path_ = path;
    }
    bool is_open() const noexcept { return fd_ >= 0; }
    const std::string& path() const noexcept { return path_; }

    /// Appends `line` and a newline and syncs; the error text when it fails.
    std::string write(std::string line) {
        line += '\n';
        std::lock_guard lock(mutex_);
        std::size_t at = 0;
        while (at < line.size()) {
            const ssize_t n = ::write(fd_, line.data() + at, line.size() - at);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return "writing '" + path_ + "': " + std::system_category().message(errno);
            at += static_cast<std::size_t>(n);
        }
        if (::fdatasync(fd_) != 0) return "syncing '" + path_ + "': " + std::system_category().message(errno);
        return {};
    }

private:
    std::mutex mutex_;
    int fd_ = -1;
    std::string path_;
};

}  // namespace sessionkit::detail::nats

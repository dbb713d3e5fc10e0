// sessionkit/redis/request.hpp — what a caller hands a Redis connection
// (one or more commands sent together, named for errors) and the counters
// a connection keeps.
#pragma once

#include <sessionkit/detail/text.hpp>
#include <sessionkit/redis/resp.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace sessionkit::redis {

/// One or more commands sent together; their replies come back together,
/// in order. `label` names the request in errors ("EVALSHA touch"), with
/// an optional subject: ("touch", id) reads "touch 'abc'". The two parts
/// are joined only when an error needs them, not on every request.
class request {
public:
    request() = default;
    explicit request(std::string label, std::string subject = {})
        : label_(std::move(label)), subject_(std::move(subject)) {}

    request& push(const resp::command& cmd) {
        cmd.append_to(payload_);
        if (label_.empty()) label_ = cmd.name();
        ++commands_;
        return *this;
    }
    template <class... Args>
    request& push(std::string_view name, Args&&... args) {
        resp::command cmd(name);
        (cmd.arg(std::forward<Args>(args)), ...);
        return push(cmd);
    }

    std::size_t size() const noexcept { return commands_; }
    const std::string& payload() const noexcept { return payload_; }
    std::string label() const {
        if (subject_.empty()) return label_;
        return label_ + " '" + sessionkit::detail::printable(subject_) + "'";
    }
    const std::string& operation() const noexcept { return label_; }
    const std::string& subject() const noexcept { return subject_; }

private:
    std::string label_;
    std::string subject_;
    std::string payload_;
    std::size_t commands_ = 0;
};

/// Counters, for tests, metrics and benchmarks.
struct connection_stats {
    std::uint64_t connects = 0;  ///< successful (re)connects
    std::uint64_t writes = 0;    ///< write system calls' worth of batches
    std::uint64_t requests = 0;  ///< requests sent
    std::uint64_t timeouts = 0;
    std::uint64_t failed = 0;  ///< requests failed by a lost or absent link
};

}  // namespace sessionkit::redis

// sessionkit/store/memory_cache.hpp — a session_cache in this process's
// memory: for tests, and for one process in front of a remote primary.
//
// A hash map under one mutex (never held across a suspension). It can be
// told to fail (`fail_with`), so that write_through's degradation is
// tested without a network: a fake for logic tests only; the real faults
// are tested with Redis killed under load.
#pragma once

#include <sessionkit/cache.hpp>
#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sessionkit {

class memory_cache {
public:
    awaitable<std::optional<cached_session>> load(std::string_view id) {
        std::lock_guard lock(mutex_);
        check("load", id);
        auto it = entries_.find(std::string(id));
        if (it == entries_.end()) co_return std::nullopt;
        co_return it->second;
    }

    awaitable<bool> put(const session& rec) {
        std::lock_guard lock(mutex_);
        check("put", rec.id);
        auto [it, inserted] = entries_.try_emplace(rec.id);
        if (!inserted && it->second.record.version >= rec.version) co_return false;
        session next = rec;
        if (!inserted) merge_slides(next, it->second.record);
        it->second = cached_session{std::move(next), rec.last_active};
        co_return true;
    }

    awaitable<std::optional<cached_touch>> slide(std::string_view id, time_point now) {
        std::lock_guard lock(mutex_);
        check("slide", id);
        auto it = entries_.find(std::string(id));
        if (it == entries_.end()) co_return std::nullopt;
        const cached_touch before = cached_touch_of(it->second);
        slide_record(it->second.record, now);
        co_return before;
    }

    awaitable<void> forget(std::string_view id) {
        std::lock_guard lock(mutex_);
        check("forget", id);
        entries_.erase(std::string(id));
        co_return;
    }

    awaitable<void> clear() {
        std::lock_guard lock(mutex_);
        check("clear", {});
        entries_.clear();
        co_return;
    }

    awaitable<void> ping() {
        std::lock_guard lock(mutex_);
        check("ping", {});
        co_return;
    }

    /// From now on every operation fails with `code` (nullopt: works again).
    void fail_with(std::optional<error> code) {
        std::lock_guard lock(mutex_);
        failing_ = code;
    }
    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return entries_.size();
    }

private:
    void check(std::string_view operation, std::string_view id) const {
        if (failing_)
            throw_error(*failing_, "memory_cache " + std::string(operation) +
                                       (id.empty() ? std::string() : " '" + std::string(id) + "'") +
                                       ": failing (test)");
    }

    mutable std::mutex mutex_;
    std::unordered_map<std::string, cached_session> entries_;
    std::optional<error> failing_;
};

static_assert(session_cache<memory_cache>);

}  // namespace sessionkit

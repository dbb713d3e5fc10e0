// sessionkit/store/memory.hpp — the embedded, in-process session store.
//
// One Boost.MultiIndex container holds each record once, with five
// indexes over it: hashed by id (get, touch), ordered by id (paging), by
// (owner, id) and (status, id) (filtered paging), and an expiry index
// (see expiry_key) that lets claim_expired, claim_warnings and
// purge_ended visit only the records they act on: O(k log n), never a
// scan. A single mutex makes each operation atomic; it is never held
// across a suspension point, so the store is safe on a multi-threaded
// io_context. Nothing survives the process: this is the default for
// single-instance daemons and the reference model in tests.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>

#include <boost/multi_index/hashed_index.hpp>
#include <boost/multi_index/member.hpp>
#include <boost/multi_index/ordered_index.hpp>
#include <boost/multi_index/tag.hpp>
#include <boost/multi_index_container.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace sessionkit {

namespace detail::memory {

namespace mi = boost::multi_index;

/// Where a record sits on the expiry index. Live records that still owe a
/// warning come first (claim_warnings reads only them), then live records
/// already warned or being stopped, then finished ones by end time
/// (purge_ended reads only those).
enum class expiry_class : std::uint8_t { live_unwarned, live_other, ended };

struct expiry_key_of {
    using result_type = std::pair<expiry_class, time_point>;
    result_type operator()(const session& s) const noexcept {
        if (is_final(s.status)) return {expiry_class::ended, s.ended_at.value_or(s.idle_deadline)};
        if (s.warning_sent || s.status == session_status::stopping)
            return {expiry_class::live_other, s.idle_deadline};
        return {expiry_class::live_unwarned, s.idle_deadline};
    }
};

struct owner_key_of {
    using result_type = std::pair<std::string_view, std::string_view>;
    result_type operator()(const session& s) const noexcept { return {s.owner, s.id}; }
};

struct status_key_of {
    using result_type = std::pair<session_status, std::string_view>;
    result_type operator()(const session& s) const noexcept { return {s.status, s.id}; }
};

// std::hash<std::string> and std::hash<std::string_view> agree, so lookups
// by string_view need no temporary string.
struct id_hash {
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};
struct id_equal {
    bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
};

struct by_id_hash {};
struct by_id {};
struct by_owner {};
struct by_status {};
struct by_expiry {};

using table = mi::multi_index_container<
    session,
    mi::indexed_by<
        mi::hashed_unique<mi::tag<by_id_hash>, mi::member<session, std::string, &session::id>,
                          id_hash, id_equal>,
        mi::ordered_unique<mi::tag<by_id>, mi::member<session, std::string, &session::id>,
                           std::less<>>,
        mi::ordered_unique<mi::tag<by_owner>, owner_key_of>,
        mi::ordered_unique<mi::tag<by_status>, status_key_of>,
        mi::ordered_non_unique<mi::tag<by_expiry>, expiry_key_of>>>;

struct lock_entry {
    std::string token;
    time_point expires;
};

} // namespace detail::memory

class memory_store {
public:
    memory_store() = default;
    memory_store(const memory_store&) = delete;
    memory_store& operator=(const memory_store&) = delete;

    awaitable<create_result> create(const session& rec) { co_return create_now(rec); }
    awaitable<std::optional<session>> get(std::string_view id) { co_return get_now(id); }
    awaitable<std::optional<session>> touch(std::string_view id, time_point now) {
        co_return touch_now(id, now);
    }
    awaitable<update_result> update(const session& rec, std::uint64_t expected_version) {
        co_return update_now(rec, expected_version);
    }
    awaitable<bool> erase(std::string_view id) { co_return erase_now(id); }
    awaitable<std::vector<session>> claim_expired(time_point now, std::size_t limit,
                                                  milliseconds lease) {
        co_return claim_expired_now(now, limit, lease);
    }
    awaitable<std::vector<session>> claim_warnings(time_point now, time_point horizon,
                                                   std::size_t limit) {
        co_return claim_warnings_now(now, horizon, limit);
    }
    awaitable<std::size_t> purge_ended(time_point before, std::size_t limit) {
        co_return purge_ended_now(before, limit);
    }
    awaitable<session_page> list(const list_query& q) { co_return list_now(q); }
    awaitable<store_stats> stats() { co_return stats_now(); }
    awaitable<void> ping() { co_return; }
    awaitable<std::optional<std::string>> try_lock(std::string_view name, milliseconds ttl,
                                                   time_point now) {
        co_return try_lock_now(name, ttl, now);
    }
    awaitable<bool> unlock(std::string_view name, std::string_view token) {
        co_return unlock_now(name, token);
    }

    // ---- synchronous bodies (public: benchmarks and tests call them too) ----

    create_result create_now(const session& rec) {
        check_id(rec.id);
        std::lock_guard lock(mutex_);
        auto& by_hash = table_.get<detail::memory::by_id_hash>();
        auto it = by_hash.find(std::string_view{rec.id}, detail::memory::id_hash{},
                               detail::memory::id_equal{});
        session fresh = rec;
        if (it != by_hash.end()) {
            if (!is_final(it->status)) return {false, *it};
            // A finished session's id is reused by a new one: continue the
            // version sequence so a stale CAS on the old one cannot land.
            fresh.version = it->version + 1;
            count(it->status, -1);
            by_hash.replace(it, fresh);
        } else {
            fresh.version = 1;
            by_hash.insert(fresh);
        }
        count(fresh.status, +1);
        ++created_total_;
        return {true, std::move(fresh)};
    }

    std::optional<session> get_now(std::string_view id) {
        std::lock_guard lock(mutex_);
        auto it = find(id);
        if (it == table_.end()) return std::nullopt;
        return *it;
    }

    std::optional<session> touch_now(std::string_view id, time_point now) {
        std::lock_guard lock(mutex_);
        auto it = find(id);
        if (it == table_.end()) return std::nullopt;
        if (is_final(it->status) || it->status == session_status::stopping) return *it;
        table_.modify(it, [now](session& s) {
            s.last_active = now;
            s.idle_deadline = sliding_deadline(s, now);
            s.warning_sent = false;
            ++s.version;
        });
        return *it;
    }

    update_result update_now(const session& rec, std::uint64_t expected_version) {
        std::lock_guard lock(mutex_);
        auto it = find(rec.id);
        if (it == table_.end()) return update_result::not_found;
        if (is_final(it->status)) return update_result::final_state;
        if (it->version != expected_version) return update_result::version_conflict;
        session next = rec;
        next.version = expected_version + 1;
        count(it->status, -1);
        count(next.status, +1);
        if (is_final(next.status)) ++terminated_total_;
        table_.replace(it, std::move(next));
        return update_result::updated;
    }

    bool erase_now(std::string_view id) {
        std::lock_guard lock(mutex_);
        auto it = find(id);
        if (it == table_.end()) return false;
        count(it->status, -1);
        table_.erase(it);
        return true;
    }

    std::vector<session> claim_expired_now(time_point now, std::size_t limit, milliseconds lease) {
        using detail::memory::expiry_class;
        std::lock_guard lock(mutex_);
        auto& idx = table_.get<detail::memory::by_expiry>();
        // Two runs of the index hold due live records (unwarned, and warned or
        // stopping); merge them so the earliest deadlines go first.
        auto a = idx.lower_bound(std::pair{expiry_class::live_unwarned, time_point::min()});
        auto a_end = idx.upper_bound(std::pair{expiry_class::live_unwarned, now});
        auto b = idx.lower_bound(std::pair{expiry_class::live_other, time_point::min()});
        auto b_end = idx.upper_bound(std::pair{expiry_class::live_other, now});
        std::vector<decltype(a)> due;
        while (due.size() < limit && (a != a_end || b != b_end)) {
            if (b == b_end || (a != a_end && a->idle_deadline <= b->idle_deadline)) due.push_back(a++);
            else due.push_back(b++);
        }
        std::vector<session> claimed;
        claimed.reserve(due.size());
        for (auto it : due) {
            bool first_claim = it->status != session_status::stopping;
            if (first_claim) {
                ++expired_total_;
                count(it->status, -1);
                count(session_status::stopping, +1);
            }
            idx.modify(it, [&](session& s) {
                if (s.end_reason.empty()) s.end_reason = s.lifetime_bound() ? "lifetime" : "idle";
                s.status = session_status::stopping;
                s.idle_deadline = now + lease;
                ++s.version;
            });
            claimed.push_back(*it);
        }
        return claimed;
    }

    std::vector<session> claim_warnings_now(time_point now, time_point horizon, std::size_t limit) {
        using detail::memory::expiry_class;
        std::lock_guard lock(mutex_);
        auto& idx = table_.get<detail::memory::by_expiry>();
        auto it = idx.upper_bound(std::pair{expiry_class::live_unwarned, now});
        auto end = idx.upper_bound(std::pair{expiry_class::live_unwarned, horizon});
        std::vector<decltype(it)> due;
        for (; it != end && due.size() < limit; ++it) due.push_back(it);
        std::vector<session> warned;
        warned.reserve(due.size());
        for (auto d : due) {
            idx.modify(d, [](session& s) {
                s.warning_sent = true;
                ++s.version;
            });
            warned.push_back(*d);
        }
        return warned;
    }

    std::size_t purge_ended_now(time_point before, std::size_t limit) {
        using detail::memory::expiry_class;
        std::lock_guard lock(mutex_);
        auto& idx = table_.get<detail::memory::by_expiry>();
        auto it = idx.lower_bound(std::pair{expiry_class::ended, time_point::min()});
        auto end = idx.upper_bound(std::pair{expiry_class::ended, before});
        std::size_t n = 0;
        while (it != end && n < limit) {
            count(it->status, -1);
            it = idx.erase(it);
            ++n;
        }
        return n;
    }

    session_page list_now(const list_query& q) {
        if (!q.cursor.empty() && !is_valid_id(q.cursor))
            throw_error(error::invalid_argument,
                        "memory_store.list: cursor '" + detail::printable(q.cursor) +
                            "' is not one this store returned");
        const std::size_t limit = std::clamp<std::size_t>(q.limit, 1, max_page_size);
        std::lock_guard lock(mutex_);
        session_page page;
        auto take = [&](auto it, auto end, auto&& matches) {
            for (; it != end && page.sessions.size() < limit; ++it)
                if (matches(*it)) page.sessions.push_back(*it);
            if (it != end && page.sessions.size() == limit) page.next_cursor = page.sessions.back().id;
        };
        // A cursor is the last id returned: the next page starts strictly
        // after it, so concurrent inserts and erases never repeat or skip a
        // session that exists throughout.
        std::string_view after = q.cursor;
        if (q.owner) {
            auto& idx = table_.get<detail::memory::by_owner>();
            std::string_view owner = *q.owner;
            auto first = after.empty() ? idx.lower_bound(std::pair{owner, std::string_view{}})
                                       : idx.upper_bound(std::pair{owner, after});
            auto last = idx.lower_bound(std::pair{owner, std::string_view{"\x7f"}});
            take(first, last, [&](const session& s) { return !q.status || s.status == *q.status; });
        } else if (q.status) {
            auto& idx = table_.get<detail::memory::by_status>();
            auto first = after.empty() ? idx.lower_bound(std::pair{*q.status, std::string_view{}})
                                       : idx.upper_bound(std::pair{*q.status, after});
            auto last = idx.lower_bound(std::pair{*q.status, std::string_view{"\x7f"}});
            take(first, last, [](const session&) { return true; });
        } else {
            auto& idx = table_.get<detail::memory::by_id>();
            auto first = after.empty() ? idx.begin() : idx.upper_bound(after);
            take(first, idx.end(), [](const session&) { return true; });
        }
        return page;
    }

    store_stats stats_now() {
        std::lock_guard lock(mutex_);
        store_stats st;
        st.by_status = by_status_;
        st.sessions = table_.size();
        st.created_total = created_total_;
        st.expired_total = expired_total_;
        st.terminated_total = terminated_total_;
        return st;
    }

    std::optional<std::string> try_lock_now(std::string_view name, milliseconds ttl, time_point now) {
        std::lock_guard lock(mutex_);
        if (++locks_since_sweep_ >= 1024) {
            std::erase_if(locks_, [now](const auto& kv) { return kv.second.expires <= now; });
            locks_since_sweep_ = 0;
        }
        auto [it, inserted] = locks_.try_emplace(std::string(name));
        if (!inserted && it->second.expires > now) return std::nullopt;
        it->second = {generate_id(), now + ttl};
        return it->second.token;
    }

    bool unlock_now(std::string_view name, std::string_view token) {
        std::lock_guard lock(mutex_);
        auto it = locks_.find(std::string(name));
        if (it == locks_.end() || it->second.token != token) return false;
        locks_.erase(it);
        return true;
    }

private:
    detail::memory::table::iterator find(std::string_view id) {
        auto& by_hash = table_.get<detail::memory::by_id_hash>();
        return table_.project<0>(
            by_hash.find(id, detail::memory::id_hash{}, detail::memory::id_equal{}));
    }
    void count(session_status s, int delta) noexcept {
        by_status_[static_cast<std::size_t>(s)] += static_cast<std::uint64_t>(delta);
    }

    std::mutex mutex_;
    detail::memory::table table_;
    std::array<std::uint64_t, session_status_count> by_status_{};
    std::uint64_t created_total_ = 0;
    std::uint64_t expired_total_ = 0;
    std::uint64_t terminated_total_ = 0;
    std::unordered_map<std::string, detail::memory::lock_entry> locks_;
    std::size_t locks_since_sweep_ = 0;
};

static_assert(session_store<memory_store>);

} // namespace sessionkit

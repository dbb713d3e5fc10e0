// toy_store.hpp — a store an out-of-tree author might write first: one map,
// one mutex, every operation a scan. Nothing of sessionkit's own stores is
// used; it exists to show that sessionkit's conformance suite, installed,
// runs against a store it has never seen.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace toy {

using namespace sessionkit;

class toy_store {
public:
    awaitable<create_result> create(const session& rec) {
        std::lock_guard lock(mutex_);
        session fresh = rec;
        fresh.version = 1;
        if (auto it = records_.find(rec.id); it != records_.end()) {
            if (!is_final(it->second.status)) co_return create_result{false, it->second};
            fresh.version = it->second.version + 1;  // a stale write to the old one cannot land
        }
        records_[rec.id] = fresh;
        ++created_total_;
        co_return create_result{true, fresh};
    }

    awaitable<std::optional<session>> get(std::string_view id) {
        std::lock_guard lock(mutex_);
        co_return find(id);
    }

    awaitable<std::optional<touch_result>> touch(std::string_view id, time_point now) {
        std::lock_guard lock(mutex_);
        auto it = records_.find(std::string(id));
        if (it == records_.end()) co_return std::nullopt;
        session& s = it->second;
        if (live(s)) {
            s.last_active = now;
            s.idle_deadline = sliding_deadline(s, now);
            s.warning_sent = false;
            ++s.version;
        }
        co_return touch_result_of(s);
    }

    awaitable<update_result> update(const session& rec, std::uint64_t expected) {
        std::lock_guard lock(mutex_);
        auto it = records_.find(rec.id);
        if (it == records_.end()) co_return update_result::not_found;
        if (is_final(it->second.status)) co_return update_result::final_state;
        if (it->second.version != expected) co_return update_result::version_conflict;
        it->second = rec;
        it->second.version = expected + 1;
        if (is_final(rec.status)) ++terminated_total_;
        co_return update_result::updated;
    }

    awaitable<bool> erase(std::string_view id) {
        std::lock_guard lock(mutex_);
        co_return records_.erase(std::string(id)) > 0;
    }

    awaitable<std::vector<session>> claim_expired(time_point now, std::size_t limit, milliseconds lease) {
        std::lock_guard lock(mutex_);
        auto due = select([&](const session& s) { return !is_final(s.status) && s.idle_deadline <= now; });
        std::vector<session> claimed;
        for (session* s : due) {
            if (claimed.size() == limit) break;
            if (s->status != session_status::stopping) ++expired_total_;
            if (s->end_reason.empty()) s->end_reason = s->lifetime_bound() ? "lifetime" : "idle";
            s->status = session_status::stopping;
            s->idle_deadline = now + lease;  // another janitor may take it over after the lease
            ++s->version;
            claimed.push_back(*s);
        }
        co_return claimed;
    }

    awaitable<std::vector<session>> claim_warnings(time_point now, time_point horizon, std::size_t limit) {
        std::lock_guard lock(mutex_);
        auto near = select([&](const session& s) {
            return live(s) && !s.warning_sent && s.idle_deadline > now && s.idle_deadline <= horizon;
        });
        std::vector<session> warned;
        for (session* s : near) {
            if (warned.size() == limit) break;
            s->warning_sent = true;
            ++s->version;
            warned.push_back(*s);
        }
        co_return warned;
    }

    awaitable<std::size_t> purge_ended(time_point before, std::size_t limit) {
        std::lock_guard lock(mutex_);
        std::size_t purged = 0;
        for (auto it = records_.begin(); it != records_.end() && purged < limit;) {
            const session& s = it->second;
            if (is_final(s.status) && s.ended_at && *s.ended_at <= before) {
                it = records_.erase(it);
                ++purged;
            } else {
                ++it;
            }
        }
        co_return purged;
    }

    awaitable<session_page> list(const list_query& q) {
        const std::string after = q.cursor.empty() ? std::string() : id_of(q.cursor);
        const std::size_t limit = std::clamp<std::size_t>(q.limit, 1, max_page_size);
        std::lock_guard lock(mutex_);
        session_page page;
        // Ids in order, starting strictly after the cursor's: sessions that
        // come and go meanwhile never make a page repeat or skip another.
        auto it = after.empty() ? records_.begin() : records_.upper_bound(after);
        for (; it != records_.end(); ++it) {
            const session& s = it->second;
            if ((q.owner && s.owner != *q.owner) || (q.status && s.status != *q.status)) continue;
            if (page.sessions.size() == limit) {
                page.next_cursor = cursor_after(page.sessions.back().id);
                break;
            }
            page.sessions.push_back(s);
        }
        co_return page;
    }

    awaitable<store_stats> stats() {
        std::lock_guard lock(mutex_);
        store_stats st;
        for (const auto& [id, s] : records_) ++st.by_status[static_cast<std::size_t>(s.status)];
        st.sessions = records_.size();
        st.created_total = created_total_;
        st.expired_total = expired_total_;
        st.terminated_total = terminated_total_;
        co_return st;
    }

    awaitable<void> ping() { co_return; }

    awaitable<std::optional<std::string>> try_lock(std::string_view name, milliseconds ttl, time_point now) {
        std::lock_guard lock(mutex_);
        auto& held = locks_[std::string(name)];
        if (!held.token.empty() && held.expires > now) co_return std::nullopt;
        held = {generate_id(), now + ttl};
        co_return held.token;
    }

    awaitable<bool> unlock(std::string_view name, std::string_view token) {
        std::lock_guard lock(mutex_);
        auto it = locks_.find(std::string(name));
        if (it == locks_.end() || it->second.token.empty() || it->second.token != token) co_return false;
        locks_.erase(it);
        co_return true;
    }

private:
    struct held_lock {
        std::string token;
        time_point expires;
    };

    static bool live(const session& s) { return !is_final(s.status) && s.status != session_status::stopping; }

    std::optional<session> find(std::string_view id) const {
        auto it = records_.find(std::string(id));
        if (it == records_.end()) return std::nullopt;
        return it->second;
    }

    /// The records that match, earliest idle deadline first.
    std::vector<session*> select(const std::function<bool(const session&)>& matches) {
        std::vector<session*> out;
        for (auto& [id, s] : records_)
            if (matches(s)) out.push_back(&s);
        std::stable_sort(out.begin(), out.end(),
                         [](const session* a, const session* b) { return a->idle_deadline < b->idle_deadline; });
        return out;
    }

    // A cursor is "after:<id>:<check>": the check makes a bare id, or an
    // edited cursor, a mistake the caller hears about.
    static std::string check_of(std::string_view id) {
        return std::to_string(std::hash<std::string_view>{}(id) % 1'000'003);
    }
    static std::string cursor_after(std::string_view id) { return "after:" + std::string(id) + ":" + check_of(id); }
    static std::string id_of(const std::string& cursor) {
        constexpr std::string_view prefix = "after:";
        const auto colon = cursor.rfind(':');
        if (cursor.starts_with(prefix) && colon >= prefix.size()) {
            std::string id = cursor.substr(prefix.size(), colon - prefix.size());
            if (cursor.substr(colon + 1) == check_of(id)) return id;
        }
        throw_error(error::invalid_argument, "toy_store.list: '" + cursor + "' is not a cursor of ours");
    }

    std::mutex mutex_;
    std::map<std::string, session, std::less<>> records_;
    std::map<std::string, held_lock> locks_;
    std::uint64_t created_total_ = 0, expired_total_ = 0, terminated_total_ = 0;
};

static_assert(session_store<toy_store>);

}  // namespace toy

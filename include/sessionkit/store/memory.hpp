// sessionkit/store/memory.hpp — the embedded, in-process session store.
//
// One Boost.MultiIndex container holds each record once, with five
// indexes over it: hashed by id (get, touch), ordered by id (paging), by
// (owner, id) and (status, id) (filtered paging), and an expiry index
// (store/memory/detail/table.hpp) that lets claim_expired, claim_warnings and
// purge_ended visit only the records they act on: O(k log n), never a
// scan. A single mutex makes each operation atomic; it is never held
// across a suspension point, so the store is safe on a multi-threaded
// io_context. Nothing survives the process: this is the default for
// single-instance daemons and the reference model in tests.
//
// Touch is the hot path, and it changes no index key: the expiry index is
// ordered by `check_at`, a time at or before the real deadline. A touch
// moves the deadline later and leaves check_at where it was; a claim that
// reaches an entry whose deadline has moved re-files it at the new
// deadline instead of claiming it. That keeps touch O(1) after the hash
// lookup (no tree is rebalanced) and costs one re-file per idle period of
// a busy session (doc/decisions.md, "lazy expiry index").
//
// With `options.outbox` set, the store keeps an outbox (sessionkit/outbox.hpp):
// create/update take the events their write implies and append them under
// the same lock, only when the write lands; claim_warnings appends a
// timeout_warning per record it claims. One partition (0): a single process
// needs no more, and it keeps every event in write order.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/detail/cursor.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/outbox.hpp>
#include <sessionkit/output.hpp>
#include <sessionkit/store/memory/detail/outbox.hpp>
#include <sessionkit/store/memory/detail/table.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace sessionkit {

struct memory_store_options {
    /// Bytes of worker output kept per session (the oldest are dropped).
    std::size_t output_limit = 1 << 20;
    /// Keep an outbox of the events each write implies (off by default).
    std::optional<outbox_options> outbox;
};

class memory_store {
public:
    memory_store() = default;
    explicit memory_store(memory_store_options options) : options_(options) {
        if (options_.output_limit == 0)
            throw_error(error::invalid_argument, "memory_store_options.output_limit must be at least 1 byte");
        if (options_.outbox) outbox_.emplace(*options_.outbox);
    }
    memory_store(const memory_store&) = delete;
    memory_store& operator=(const memory_store&) = delete;

    awaitable<create_result> create(const session& rec) { co_return create_now(rec); }
    awaitable<create_result> create(const session& rec, const std::vector<event>& events) {
        co_return create_now(rec, events);
    }
    awaitable<std::optional<session>> get(std::string_view id) { co_return get_now(id); }
    awaitable<std::optional<touch_result>> touch(std::string_view id, time_point now) { co_return touch_now(id, now); }
    awaitable<update_result> update(const session& rec, std::uint64_t expected_version) {
        co_return update_now(rec, expected_version);
    }
    awaitable<update_result> update(const session& rec, std::uint64_t expected_version,
                                    const std::vector<event>& events) {
        co_return update_now(rec, expected_version, events);
    }
    awaitable<bool> erase(std::string_view id) { co_return erase_now(id); }
    awaitable<std::vector<session>> claim_expired(time_point now, std::size_t limit, milliseconds lease) {
        co_return claim_expired_now(now, limit, lease);
    }
    awaitable<std::vector<session>> claim_warnings(time_point now, time_point horizon, std::size_t limit) {
        co_return claim_warnings_now(now, horizon, limit);
    }
    awaitable<std::size_t> purge_ended(time_point before, std::size_t limit) {
        co_return purge_ended_now(before, limit);
    }
    awaitable<session_page> list(const list_query& q) { co_return list_now(q); }
    awaitable<store_stats> stats() { co_return stats_now(); }
    awaitable<void> ping() { co_return; }
    awaitable<std::optional<std::string>> try_lock(std::string_view name, milliseconds ttl, time_point now) {
        co_return try_lock_now(name, ttl, now);
    }
    awaitable<bool> unlock(std::string_view name, std::string_view token) { co_return unlock_now(name, token); }
    awaitable<bool> extend_lock(std::string_view name, std::string_view token, milliseconds ttl, time_point now) {
        co_return extend_lock_now(name, token, ttl, now);
    }
    awaitable<bool> append_output(std::string_view id, std::string_view bytes) {
        co_return append_output_now(id, bytes);
    }
    awaitable<std::optional<output_chunk>> read_output(std::string_view id, std::uint64_t offset, std::size_t max) {
        co_return read_output_now(id, offset, max);
    }

    // ---- the outbox (outbox_store; only with options.outbox) ----

    bool has_outbox() const noexcept { return outbox_.has_value(); }
    unsigned outbox_partitions() const noexcept { return 1; }
    awaitable<std::vector<outbox_entry>> read_outbox(unsigned partition, std::string_view after, std::size_t limit) {
        co_return read_outbox_now(partition, after, limit);
    }
    awaitable<std::size_t> trim_outbox(unsigned partition, std::string_view upto) {
        co_return trim_outbox_now(partition, upto);
    }
    awaitable<sessionkit::outbox_stats> outbox_stats() { co_return outbox_stats_now(); }
    awaitable<std::vector<dropped_event>> take_dropped(std::size_t limit) { co_return take_dropped_now(limit); }
    sessionkit::outbox_signal& outbox_signal() noexcept { return signal_; }

    // ---- synchronous bodies (public: benchmarks and tests call them too) ----

    create_result create_now(const session& rec, const std::vector<event>& events = {}) {
        check_id(rec.id);
        std::unique_lock lock(mutex_);
        auto it = find(rec.id);
        session fresh = rec;
        if (it != table_.end() && !is_final(it->record.status)) return {false, it->record.to_session()};
        stage_events(events);
        if (it != table_.end()) {
            const auto& old = it->record;
            // A finished session's id is reused by a new one: continue the
            // version sequence so a stale CAS on the old one cannot land.
            fresh.version = old.version + 1;
            count(old.status, -1);
            outputs_.erase(old.id);  // the new session's log starts empty
            table_.replace(it, detail::memory::node(fresh));
        } else {
            fresh.version = 1;
            table_.insert(detail::memory::node(fresh));
        }
        count(fresh.status, +1);
        ++created_total_;
        append_events(events, lock);
        return {true, std::move(fresh)};
    }

    std::optional<session> get_now(std::string_view id) {
        std::lock_guard lock(mutex_);
        auto it = find(id);
        if (it == table_.end()) return std::nullopt;
        return it->record.to_session();
    }

    std::optional<touch_result> touch_now(std::string_view id, time_point now) {
        std::lock_guard lock(mutex_);
        auto it = find(id);
        if (it == table_.end()) return std::nullopt;
        auto& s = it->record;
        if (is_final(s.status) || s.status == session_status::stopping) return s.touched();
        const time_point deadline = s.sliding_deadline(now);
        if (!s.warning_sent && deadline >= it->check_at) {
            // No index key changes: update in place (see the header comment).
            s.last_active = now;
            s.idle_deadline = deadline;
            ++s.version;
            return s.touched();
        }
        table_.modify(it, [&](detail::memory::node& n) {
            n.record.last_active = now;
            n.record.idle_deadline = deadline;
            n.record.warning_sent = false;
            ++n.record.version;
            n.check_at = deadline;
        });
        return it->record.touched();
    }

    update_result update_now(const session& rec, std::uint64_t expected_version,
                             const std::vector<event>& events = {}) {
        std::unique_lock lock(mutex_);
        auto it = find(rec.id);
        if (it == table_.end()) return update_result::not_found;
        const auto& old = it->record;
        if (is_final(old.status)) return update_result::final_state;
        if (old.version != expected_version) return update_result::version_conflict;
        stage_events(events);
        session next = rec;
        next.version = expected_version + 1;
        count(old.status, -1);
        count(next.status, +1);
        if (is_final(next.status)) ++terminated_total_;
        table_.replace(it, detail::memory::node(std::move(next)));
        append_events(events, lock);
        return update_result::updated;
    }

    bool erase_now(std::string_view id) {
        std::lock_guard lock(mutex_);
        auto it = find(id);
        if (it == table_.end()) return false;
        count(it->record.status, -1);
        outputs_.erase(it->record.id);
        table_.erase(it);
        return true;
    }

    std::vector<session> claim_expired_now(time_point now, std::size_t limit, milliseconds lease) {
        using detail::memory::expiry_class;
        // A claim must move its session past `now`, or the same call (or the
        // next) would hand it out again.
        if (lease <= milliseconds::zero())
            throw_error(error::invalid_argument, "memory_store.claim_expired: lease must be positive");
        std::lock_guard lock(mutex_);
        auto& idx = table_.get<detail::memory::by_expiry>();
        std::vector<session> claimed;
        // Both live classes are visited (unwarned, then warned or stopping),
        // each in check_at order. Entries whose session was touched since
        // they were filed are re-filed at the real deadline, not claimed.
        for (auto cls : {expiry_class::live_unwarned, expiry_class::live_other}) {
            auto it = idx.lower_bound(std::pair{cls, time_point::min()});
            auto end = idx.upper_bound(std::pair{cls, now});
            std::vector<decltype(it)> due, refile;
            for (; it != end && due.size() + claimed.size() < limit; ++it, ++sweep_visits_)
                (it->record.idle_deadline <= now ? due : refile).push_back(it);
            for (auto r : refile) idx.modify(r, [](detail::memory::node& n) { n.check_at = n.record.idle_deadline; });
            for (auto d : due) {
                const bool first_claim = d->record.status != session_status::stopping;
                if (first_claim) {
                    ++expired_total_;
                    count(d->record.status, -1);
                    count(session_status::stopping, +1);
                }
                idx.modify(d, [&](detail::memory::node& n) {
                    auto& s = n.record;
                    if (s.end_reason.empty()) s.end_reason = s.lifetime_bound() ? "lifetime" : "idle";
                    s.status = session_status::stopping;
                    s.idle_deadline = now + lease;
                    ++s.version;
                    n.check_at = s.idle_deadline;
                });
                claimed.push_back(d->record.to_session());
            }
        }
        return claimed;
    }

    std::vector<session> claim_warnings_now(time_point now, time_point horizon, std::size_t limit) {
        using detail::memory::expiry_class;
        std::unique_lock lock(mutex_);
        auto& idx = table_.get<detail::memory::by_expiry>();
        // Entries filed at or before `now` are due (claim_expired takes them,
        // with no warning) or touched since (claim_expired re-files them, and
        // a later sweep warns): skipping them keeps a backlog from being
        // walked twice per sweep.
        auto it = idx.upper_bound(std::pair{expiry_class::live_unwarned, now});
        auto end = idx.upper_bound(std::pair{expiry_class::live_unwarned, horizon});
        std::vector<decltype(it)> due, refile;
        for (; it != end && due.size() < limit; ++it, ++sweep_visits_) {
            if (it->record.idle_deadline > horizon)
                refile.push_back(it);  // touched: not near its end
            else
                due.push_back(it);
        }
        for (auto r : refile) idx.modify(r, [](detail::memory::node& n) { n.check_at = n.record.idle_deadline; });
        std::vector<session> warned;
        warned.reserve(due.size());
        for (auto d : due) {
            idx.modify(d, [](detail::memory::node& n) {
                n.record.warning_sent = true;
                ++n.record.version;
                n.check_at = n.record.idle_deadline;
            });
            warned.push_back(d->record.to_session());
        }
        if (outbox_ && !warned.empty()) {
            std::vector<event> warnings;
            warnings.reserve(warned.size());
            for (const auto& s : warned) warnings.push_back(make_timeout_warning(s, now, generate_id()));
            // Never refused: a warning is not worth failing the sweep over.
            // Under refuse_writes one that does not fit is dropped, counted
            // and logged by the relay like any other.
            append_events(warnings, lock);
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
            count(it->record.status, -1);
            outputs_.erase(it->record.id);
            it = idx.erase(it);
            ++n;
            ++sweep_visits_;
        }
        return n;
    }

    session_page list_now(const list_query& q) {
        const std::string after_id =
            q.cursor.empty() ? std::string{} : detail::id_of_cursor("memory_store.list", q.cursor);
        const std::size_t limit = std::clamp<std::size_t>(q.limit, 1, max_page_size);
        std::lock_guard lock(mutex_);
        session_page page;
        auto take = [&](auto it, auto end, auto&& matches) {
            for (; it != end && page.sessions.size() < limit; ++it)
                if (matches(it->record)) page.sessions.push_back(it->record.to_session());
            if (it != end && page.sessions.size() == limit)
                page.next_cursor = detail::cursor_after(page.sessions.back().id);
        };
        // A cursor is the last id returned: the next page starts strictly
        // after it, so concurrent inserts and erases never repeat or skip a
        // session that exists throughout. "\x7f" sorts after every id byte.
        std::string_view after = after_id;
        constexpr std::string_view past_every_id{"\x7f"};
        if (q.owner) {
            auto& idx = table_.get<detail::memory::by_owner>();
            std::string_view owner = *q.owner;
            auto first = after.empty() ? idx.lower_bound(std::pair{owner, std::string_view{}})
                                       : idx.upper_bound(std::pair{owner, after});
            auto last = idx.lower_bound(std::pair{owner, past_every_id});
            take(first, last, [&](const auto& s) { return !q.status || s.status == *q.status; });
        } else if (q.status) {
            auto& idx = table_.get<detail::memory::by_status>();
            auto first = after.empty() ? idx.lower_bound(std::pair{*q.status, std::string_view{}})
                                       : idx.upper_bound(std::pair{*q.status, after});
            auto last = idx.lower_bound(std::pair{*q.status, past_every_id});
            take(first, last, [](const auto&) { return true; });
        } else {
            auto& idx = table_.get<detail::memory::by_id>();
            auto first = after.empty() ? idx.begin() : idx.upper_bound(after);
            take(first, idx.end(), [](const auto&) { return true; });
        }
        return page;
    }

    /// Index entries that claim_expired, claim_warnings and purge_ended
    /// have visited so far: what proves (in tests and benchmarks) that a
    /// sweep walks the due entries, not the whole table.
    std::uint64_t sweep_visits() {
        std::lock_guard lock(mutex_);
        return sweep_visits_;
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

    std::vector<outbox_entry> read_outbox_now(unsigned partition, std::string_view after, std::size_t limit) {
        std::lock_guard lock(mutex_);
        return the_outbox("read_outbox", partition).read(after, limit);
    }
    std::size_t trim_outbox_now(unsigned partition, std::string_view upto) {
        std::lock_guard lock(mutex_);
        return the_outbox("trim_outbox", partition).trim(upto);
    }
    sessionkit::outbox_stats outbox_stats_now() {
        std::lock_guard lock(mutex_);
        return the_outbox("outbox_stats", 0).stats();
    }
    std::vector<dropped_event> take_dropped_now(std::size_t limit) {
        std::lock_guard lock(mutex_);
        return the_outbox("take_dropped", 0).take_dropped(limit);
    }

    bool extend_lock_now(std::string_view name, std::string_view token, milliseconds ttl, time_point now) {
        std::lock_guard lock(mutex_);
        auto it = locks_.find(std::string(name));
        if (it == locks_.end() || it->second.token != token || it->second.expires <= now) return false;
        it->second.expires = now + ttl;
        return true;
    }

    bool unlock_now(std::string_view name, std::string_view token) {
        std::lock_guard lock(mutex_);
        auto it = locks_.find(std::string(name));
        if (it == locks_.end() || it->second.token != token) return false;
        locks_.erase(it);
        return true;
    }

private:
    bool append_output_now(std::string_view id, std::string_view bytes) {
        std::lock_guard lock(mutex_);
        auto it = find(id);
        if (it == table_.end()) return false;
        auto log = outputs_.find(it->record.id);
        if (log == outputs_.end())
            log = outputs_.emplace(it->record.id, detail::bounded_output(options_.output_limit)).first;
        log->second.append(bytes);
        return true;
    }

    std::optional<output_chunk> read_output_now(std::string_view id, std::uint64_t offset, std::size_t max) {
        std::lock_guard lock(mutex_);
        auto it = find(id);
        if (it == table_.end()) return std::nullopt;
        const std::string what = "memory_store.read_output: session '" + it->record.id + "'";
        auto log = outputs_.find(it->record.id);
        if (log == outputs_.end()) return detail::bounded_output(1).read(offset, max, what);
        return log->second.read(offset, max, what);
    }

    detail::memory::outbox& the_outbox(std::string_view operation, unsigned partition) {
        if (!outbox_)
            throw_error(error::invalid_argument,
                        "memory_store." + std::string(operation) + ": the outbox is off (memory_store_options.outbox)");
        if (partition != 0)
            throw_error(error::invalid_argument, "memory_store." + std::string(operation) + ": partition " +
                                                     std::to_string(partition) + " does not exist (it has 1)");
        return *outbox_;
    }

    // Before a write changes anything: events need an outbox, and a full
    // one that refuses writes refuses this one.
    void stage_events(const std::vector<event>& events) const {
        if (events.empty()) return;
        if (!outbox_)
            throw_error(error::invalid_argument,
                        "memory_store: a write carried events but the outbox is off (memory_store_options.outbox)");
        outbox_->check_room(events.size());
    }

    // After the write landed: append, release the lock, wake the relay.
    void append_events(const std::vector<event>& events, std::unique_lock<std::mutex>& lock) {
        if (events.empty()) return;
        outbox_->append(events);
        lock.unlock();
        signal_.notify(0);
    }

    detail::memory::table::iterator find(std::string_view id) {
        auto& by_hash = table_.get<detail::memory::by_id_hash>();
        return table_.project<0>(by_hash.find(id, detail::memory::id_hash{}, detail::memory::id_equal{}));
    }
    void count(session_status s, int delta) noexcept {
        by_status_[static_cast<std::size_t>(s)] += static_cast<std::uint64_t>(delta);
    }

    memory_store_options options_;
    std::mutex mutex_;
    detail::memory::table table_;
    std::unordered_map<std::string, detail::bounded_output> outputs_;  ///< by session id
    std::array<std::uint64_t, session_status_count> by_status_{};
    std::uint64_t created_total_ = 0;
    std::uint64_t expired_total_ = 0;
    std::uint64_t sweep_visits_ = 0;
    std::uint64_t terminated_total_ = 0;
    std::unordered_map<std::string, detail::memory::lock_entry> locks_;
    std::size_t locks_since_sweep_ = 0;
    std::optional<detail::memory::outbox> outbox_;
    sessionkit::outbox_signal signal_;
};

static_assert(session_store<memory_store>);
static_assert(output_log<memory_store>);
static_assert(outbox_store<memory_store>);

}  // namespace sessionkit

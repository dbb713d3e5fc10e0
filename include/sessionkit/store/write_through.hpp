// sessionkit/store/write_through.hpp — write_through<Primary, Cache>: a
// session_store over a primary store (the truth: postgres_store) and a
// session_cache in front of it (redis_cache), with explicit degradation.
//
//   - Reads come from the cache; a miss (or a cache error) reads the
//     primary and fills the cache version-guarded (a late fill never
//     overwrites a newer write).
//   - Writes go to the primary first: its answer is the answer. Then the
//     new record goes to the cache version-guarded; when that fails the
//     copy is forgotten, and when forgetting fails too the cache is
//     switched off (bypassed) until it answers again. An erase, or a write
//     that ends the session, is not reported done until the cache forgot
//     the session or is bypassed: no session comes back from a stale copy.
//   - Touches slide the cached copy every time and reach the primary at
//     most once per touch_coalesce (default: a quarter of the session's
//     idle timeout). A janitor's claim of a session the cache knows to be
//     fresh is undone before the janitor sees it.
//   - Cache down: bypass it (default; every operation goes to the primary)
//     or fail. It is probed every cache_retry and comes back by itself,
//     cold for every session written meanwhile. Primary down: writes fail;
//     reads fail (default) or are served from the cache marked stale
//     (`"stale": true` among the record's unknown fields).
// Every switch is logged through options.log, told to options.on_switch
// (sessiond makes it an event) and counted in stats().
// The output log, the outbox and the locks are the primary's.
// doc/write_through.md has the contract and the failure behaviour.
#pragma once

#include <sessionkit/cache.hpp>
#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/outbox.hpp>
#include <sessionkit/output.hpp>
#include <sessionkit/store/write_through/detail/health.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace sessionkit {

/// What write_through does when its cache fails.
enum class on_cache_down : std::uint8_t {
    bypass,  ///< go to the primary alone until the cache answers again (default)
    fail,    ///< fail the operation (error::backend_unavailable naming the cache)
};

/// What write_through's reads do while its primary is down.
enum class on_primary_down : std::uint8_t {
    fail,   ///< fail them (default): nothing is served that the primary might contradict
    stale,  ///< serve what the cache holds, marked "stale": true
};

/// A switch of write_through's degradation: which part went down or came
/// back.
struct store_switch {
    std::string part;    ///< "cache" or "primary"
    bool up = false;     ///< true: back in use (the cache) or answering again (the primary)
    std::string policy;  ///< what write_through does meanwhile: "bypass", "fail", "stale" (empty when up)
    std::string reason;  ///< what failed (empty when up)
};

struct write_through_options {
    /// How long a touch may stay in the cache alone before it reaches the
    /// primary; nullopt: a quarter of each session's idle timeout.
    std::optional<milliseconds> touch_coalesce;
    on_cache_down cache_down = on_cache_down::bypass;
    on_primary_down primary_down = on_primary_down::fail;
    /// How often a bypassed cache (or a primary seen down) is probed.
    milliseconds retry{1000};
    /// Sessions remembered while the cache is bypassed, to forget when it
    /// returns; past this the whole cache is cleared instead.
    std::size_t dirty_limit = 100'000;
    /// Told about every switch and recovery (a log line).
    std::function<void(const std::string&)> log;
    /// Told about every switch and recovery too, as data (sessiond makes
    /// each a store_degraded or store_recovered event). Called on the
    /// thread of the operation that noticed; must not block or throw.
    std::function<void(const store_switch&)> on_switch;
};

/// Counters (stats() of write_through adds these to the primary's).
struct write_through_stats {
    std::uint64_t hits = 0;             ///< reads answered by the cache
    std::uint64_t misses = 0;           ///< reads that went to the primary
    std::uint64_t cache_errors = 0;     ///< cache operations that failed
    std::uint64_t primary_touches = 0;  ///< touches written through to the primary
    std::uint64_t cached_touches = 0;   ///< touches the cache absorbed
    std::uint64_t claims_undone = 0;    ///< janitor claims of sessions the cache knew to be fresh
    std::uint64_t stale_reads = 0;      ///< reads served from the cache while the primary was down
    std::uint64_t cache_switched_off = 0;
    std::uint64_t cache_restored = 0;
    bool cache_in_use = true;
    bool primary_down = false;
};

template <session_store Primary, session_cache Cache>
class write_through {
public:
    write_through(Primary& primary, Cache& cache, write_through_options options = {})
        : primary_(primary), cache_(cache), options_(std::move(options)),
          health_(options_.retry, options_.dirty_limit) {
        if (options_.retry <= milliseconds::zero())
            throw_error(error::invalid_argument, "write_through: retry must be positive");
        if (options_.touch_coalesce && *options_.touch_coalesce < milliseconds::zero())
            throw_error(error::invalid_argument, "write_through: touch_coalesce must not be negative");
    }
    write_through(const write_through&) = delete;
    write_through& operator=(const write_through&) = delete;

    Primary& primary() noexcept { return primary_; }
    Cache& cache() noexcept { return cache_; }
    const write_through_options& options() const noexcept { return options_; }

    // ---- session_store --------------------------------------------------

    awaitable<create_result> create(const session& rec) {
        auto made = co_await on_primary(primary_.create(rec));
        co_await remember(made.record);
        co_return made;
    }

    awaitable<std::optional<session>> get(std::string_view id_view) {
        std::string id(id_view);
        std::optional<cached_session> hit;
        if (co_await cache_ready()) hit = co_await from_cache([&] { return cache_.load(id); }, id);
        if (hit) {
            if (!primary_down_.load()) {
                ++stats_.hits;
                co_return std::move(hit->record);
            }
            if (options_.primary_down == on_primary_down::stale && !co_await primary_back()) {
                ++stats_.stale_reads;
                hit->record.extra["stale"] = true;
                co_return std::move(hit->record);
            }
        }
        ++stats_.misses;
        auto found = co_await on_primary(primary_.get(id));
        if (found) co_await fill(*found);
        co_return found;
    }

    awaitable<std::optional<touch_result>> touch(std::string_view id_view, time_point now) {
        std::string id(id_view);
        std::optional<cached_touch> before;
        if (co_await cache_ready()) before = co_await from_cache([&] { return cache_.slide(id, now); }, id);
        if (before) {
            session slid = before->as_record();
            slide_record(slid, now);
            if (!detail::write_through::touch_must_reach_primary(*before, slid, now, options_.touch_coalesce)) {
                ++stats_.cached_touches;
                co_return touch_result_of(slid);
            }
        }
        ++stats_.primary_touches;
        auto touched = co_await on_primary(primary_.touch(id, now));
        if (!touched) {
            co_await drop(id);  // gone from the primary: nothing may be served from a copy
            co_return touched;
        }
        if (before && touched->version == before->version + 1 && touched->status == before->status) {
            // The copy was the primary's record: it moves to the new version
            // (read whole here, once per window, not on every touch).
            auto copy = co_await from_cache([&] { return cache_.load(id); }, id);
            if (copy && copy->record.version == before->version) {
                touched->apply_to(copy->record);
                co_await remember(copy->record);
                co_return touched;
            }
        }
        co_await drop(id);  // someone else wrote it: read it afresh next time
        co_return touched;
    }

    awaitable<update_result> update(const session& rec, std::uint64_t expected_version) {
        auto r = co_await on_primary(primary_.update(rec, expected_version));
        co_await after_update(rec, expected_version, r);
        co_return r;
    }

    awaitable<bool> erase(std::string_view id_view) {
        std::string id(id_view);
        const bool erased = co_await on_primary(primary_.erase(id));
        co_await drop(id);
        co_return erased;
    }

    awaitable<std::vector<session>> claim_expired(time_point now, std::size_t limit, milliseconds lease) {
        auto claimed = co_await on_primary(primary_.claim_expired(now, limit, lease));
        std::vector<session> out;
        out.reserve(claimed.size());
        for (auto& s : claimed)
            if (!co_await undo_if_fresh(s, now)) out.push_back(std::move(s));
        co_return out;
    }

    awaitable<std::vector<session>> claim_warnings(time_point now, time_point horizon, std::size_t limit) {
        // A warning may come up to touch_coalesce early (the primary's
        // deadline lags the cache's); the warned records go to the cache.
        auto warned = co_await on_primary(primary_.claim_warnings(now, horizon, limit));
        for (const auto& s : warned) co_await remember(s);
        co_return warned;
    }

    awaitable<std::size_t> purge_ended(time_point before, std::size_t limit) {
        co_return co_await on_primary(primary_.purge_ended(before, limit));
    }
    awaitable<session_page> list(const list_query& q) { co_return co_await on_primary(primary_.list(q)); }
    awaitable<store_stats> stats() { co_return co_await on_primary(primary_.stats()); }
    awaitable<void> ping() { co_await on_primary(primary_.ping()); }
    awaitable<std::optional<std::string>> try_lock(std::string_view name, milliseconds ttl, time_point now) {
        co_return co_await on_primary(primary_.try_lock(name, ttl, now));
    }
    awaitable<bool> unlock(std::string_view name, std::string_view token) {
        co_return co_await on_primary(primary_.unlock(name, token));
    }

    // ---- the primary's output log and outbox ----------------------------

    awaitable<bool> append_output(std::string_view id, std::string_view bytes) requires output_log<Primary> {
        co_return co_await on_primary(primary_.append_output(id, bytes));
    }
    awaitable<std::optional<output_chunk>> read_output(std::string_view id, std::uint64_t offset,
                                                       std::size_t max) requires output_log<Primary> {
        co_return co_await on_primary(primary_.read_output(id, offset, max));
    }

    bool has_outbox() const noexcept requires outbox_store<Primary> { return primary_.has_outbox(); }
    awaitable<create_result> create(const session& rec,
                                    const std::vector<event>& events) requires outbox_store<Primary> {
        auto made = co_await on_primary(primary_.create(rec, events));
        co_await remember(made.record);
        co_return made;
    }
    awaitable<update_result> update(const session& rec, std::uint64_t expected_version,
                                    const std::vector<event>& events) requires outbox_store<Primary> {
        auto r = co_await on_primary(primary_.update(rec, expected_version, events));
        co_await after_update(rec, expected_version, r);
        co_return r;
    }
    unsigned outbox_partitions() const noexcept requires outbox_store<Primary> { return primary_.outbox_partitions(); }
    awaitable<std::vector<outbox_entry>> read_outbox(unsigned partition, std::string_view after,
                                                     std::size_t limit) requires outbox_store<Primary> {
        co_return co_await on_primary(primary_.read_outbox(partition, after, limit));
    }
    awaitable<std::size_t> trim_outbox(unsigned partition, std::string_view upto) requires outbox_store<Primary> {
        co_return co_await on_primary(primary_.trim_outbox(partition, upto));
    }
    awaitable<sessionkit::outbox_stats> outbox_stats() requires outbox_store<Primary> {
        co_return co_await on_primary(primary_.outbox_stats());
    }
    awaitable<std::vector<dropped_event>> take_dropped(std::size_t limit) requires outbox_store<Primary> {
        co_return co_await on_primary(primary_.take_dropped(limit));
    }
    sessionkit::outbox_signal& outbox_signal() noexcept requires outbox_store<Primary> {
        return primary_.outbox_signal();
    }
    awaitable<bool> extend_lock(std::string_view name, std::string_view token, milliseconds ttl,
                                time_point now) requires outbox_store<Primary> {
        co_return co_await on_primary(primary_.extend_lock(name, token, ttl, now));
    }

    // ---- state ------------------------------------------------------------

    write_through_stats cache_stats() const {
        write_through_stats s;
        s.hits = stats_.hits.load();
        s.misses = stats_.misses.load();
        s.cache_errors = stats_.cache_errors.load();
        s.primary_touches = stats_.primary_touches.load();
        s.cached_touches = stats_.cached_touches.load();
        s.claims_undone = stats_.claims_undone.load();
        s.stale_reads = stats_.stale_reads.load();
        s.cache_switched_off = stats_.switched_off.load();
        s.cache_restored = stats_.restored.load();
        {
            std::lock_guard lock(mutex_);
            s.cache_in_use = health_.usable();
        }
        s.primary_down = primary_down_.load();
        return s;
    }

private:
    using steady = std::chrono::steady_clock;

    struct counters {
        std::atomic<std::uint64_t> hits{0}, misses{0}, cache_errors{0}, primary_touches{0}, cached_touches{0},
            claims_undone{0}, stale_reads{0}, switched_off{0}, restored{0};
    };

    void say(const std::string& line) const {
        if (options_.log) options_.log(line);
    }
    // A switch: its log line, and on_switch.
    void switched(const std::string& line, store_switch what) const {
        say(line);
        if (options_.on_switch) options_.on_switch(what);
    }

    // Runs a primary operation, noting whether the primary is reachable.
    template <class T>
    awaitable<T> on_primary(awaitable<T> op) {
        std::exception_ptr failure;
        bool unreachable = false;
        try {
            if constexpr (std::is_void_v<T>) {
                co_await std::move(op);
                primary_ok();
                co_return;
            } else {
                T out = co_await std::move(op);
                primary_ok();
                co_return out;
            }
        } catch (const boost::system::system_error& e) {
            unreachable = e.code() == condition::unavailable;
            failure = std::current_exception();
        }
        if (unreachable && !primary_down_.exchange(true)) {
            std::string reason;
            try {
                std::rethrow_exception(failure);
            } catch (const std::exception& e) {
                reason = e.what();
            }
            const bool stale = options_.primary_down == on_primary_down::stale;
            switched(std::string("write_through: the primary is down; writes fail, reads ") +
                         (stale ? "are served from the cache marked stale" : "fail"),
                     {"primary", false, stale ? "stale" : "fail", std::move(reason)});
        }
        std::rethrow_exception(failure);
    }
    void primary_ok() {
        if (primary_down_.exchange(false))
            switched("write_through: the primary answers again", {"primary", true, {}, {}});
    }
    // With the primary marked down, whether it answers now (probed at most
    // every `retry`).
    awaitable<bool> primary_back() {
        {
            std::lock_guard lock(mutex_);
            if (steady::now() < next_primary_probe_) co_return false;
            next_primary_probe_ = steady::now() + options_.retry;
        }
        bool ok = true;
        try {
            co_await primary_.ping();
        } catch (const std::exception&) {
            ok = false;
        }
        if (ok) primary_ok();
        co_return ok;
    }

    // Whether the cache may be used for this operation; probes it (and
    // brings it back, forgetting what was written meanwhile) when due.
    awaitable<bool> cache_ready() {
        {
            std::lock_guard lock(mutex_);
            if (health_.usable()) co_return true;
            if (!health_.take_probe(steady::now())) co_return false;
        }
        bool ok = true;
        try {
            co_await cache_.ping();
            for (int round = 0; ok; ++round) {
                decltype(health_.take_dirty()) dirty;
                {
                    std::lock_guard lock(mutex_);
                    dirty = health_.take_dirty();
                    if (dirty.ids.empty() && !dirty.clear && health_.probe_succeeded()) break;
                }
                if (dirty.clear || round > 5)
                    co_await cache_.clear();
                else
                    for (const auto& id : dirty.ids) co_await cache_.forget(id);
            }
        } catch (const std::exception& e) {
            ok = false;
            say(std::string("write_through: the cache is still down: ") + e.what());
        }
        std::lock_guard lock(mutex_);
        if (!ok) {
            health_.probe_failed(steady::now());
            co_return false;
        }
        ++stats_.restored;
        switched("write_through: the cache is back in use (cold for the sessions written while it was bypassed)",
                 {"cache", true, {}, {}});
        co_return true;
    }

    // A cache operation; its failure switches the cache off (or, under
    // on_cache_down::fail, fails the caller). A copy that cannot be read
    // (corrupt) is forgotten and reads as a miss.
    template <class F, class Result = typename std::invoke_result_t<F&>::value_type>
    awaitable<Result> from_cache(F&& call, const std::string& id) {
        std::optional<std::string> failed;
        bool corrupt = false;
        try {
            co_return co_await call();
        } catch (const boost::system::system_error& e) {
            corrupt = e.code() == error::corrupt_record;
            failed = e.what();
        }
        if (corrupt) {
            ++stats_.cache_errors;
            say("write_through: cached copy of '" + id + "' unreadable, forgotten: " + *failed);
            co_await drop(id);
            co_return std::nullopt;
        }
        co_await cache_failed(*failed);
        co_return std::nullopt;
    }

    awaitable<void> cache_failed(const std::string& what) {
        ++stats_.cache_errors;
        if (options_.cache_down == on_cache_down::fail)
            throw_error(error::backend_unavailable, "write_through: the cache failed: " + what);
        bool switched_off = false;
        {
            std::lock_guard lock(mutex_);
            switched_off = health_.failed(steady::now());
        }
        if (switched_off) {
            ++stats_.switched_off;
            switched("write_through: the cache failed (" + what + "); bypassing it, probing every " +
                         std::to_string(options_.retry.count()) + " ms",
                     {"cache", false, "bypass", what});
        }
        co_return;
    }

    // After a primary write: the cache gets the new record, or forgets the
    // session. A final record is forgotten rather than cached.
    awaitable<void> remember(const session& rec) {
        if (is_final(rec.status)) {
            co_await drop(rec.id);
            co_return;
        }
        if (!co_await note_write(rec.id)) co_return;
        std::optional<std::string> failed;
        try {
            co_await cache_.put(rec);
        } catch (const boost::system::system_error& e) {
            failed = e.what();
        }
        if (failed) co_await drop(rec.id);
    }

    // A fill after a primary read (guarded by version in the cache).
    awaitable<void> fill(const session& rec) {
        {
            std::lock_guard lock(mutex_);
            if (!health_.usable()) co_return;
        }
        std::optional<std::string> failed;
        try {
            co_await cache_.put(rec);
        } catch (const boost::system::system_error& e) {
            failed = e.what();
        }
        if (failed) co_await cache_failed(*failed);
    }

    // The cache must not serve `id` again: forget it, or switch the cache
    // off (then it is forgotten before the cache comes back).
    awaitable<void> drop(const std::string& id) {
        if (!co_await note_write(id)) co_return;
        std::optional<std::string> failed;
        try {
            co_await cache_.forget(id);
        } catch (const boost::system::system_error& e) {
            failed = e.what();
        }
        if (!failed) co_return;
        bool switched_off = false;
        {
            // Whatever the policy, a copy we could not forget must not be
            // read: the cache is switched off (and this id remembered).
            std::lock_guard lock(mutex_);
            switched_off = health_.failed(steady::now());
            if (switched_off) ++stats_.switched_off;
            health_.written(id);
        }
        ++stats_.cache_errors;
        const std::string line =
            "write_through: could not forget '" + id + "' in the cache (" + *failed + "); bypassing it";
        if (switched_off)
            switched(line, {"cache", false, "bypass", *failed});
        else
            say(line);
    }

    // Notes a write of `id`; false when the cache is not in use (the id is
    // remembered, to be forgotten when the cache returns).
    // (A write also probes a bypassed cache when the probe is due, so a
    // write-only load brings it back too.)
    awaitable<bool> note_write(const std::string& id) {
        if (co_await cache_ready()) co_return true;
        std::lock_guard lock(mutex_);
        if (health_.usable()) co_return true;  // another caller's probe just brought it back
        health_.written(id);
        co_return false;
    }

    awaitable<void> after_update(const session& rec, std::uint64_t expected_version, update_result r) {
        if (r == update_result::updated) {
            session stored = rec;
            stored.version = expected_version + 1;
            co_await remember(stored);
        } else if (r != update_result::not_found) {
            co_await drop(rec.id);  // the copy may be older than what refused the write
        }
    }

    // A session the primary just handed to a janitor, but which the cache
    // knows was touched since: put back as it was, with the cache's deadline.
    awaitable<bool> undo_if_fresh(const session& claimed, time_point now) {
        std::optional<cached_session> copy;
        if (co_await cache_ready()) copy = co_await from_cache([&] { return cache_.load(claimed.id); }, claimed.id);
        if (!copy) co_return false;
        const auto& was = copy->record;
        if (!detail::write_through::claim_must_be_undone(was, claimed, now)) {
            co_await remember(claimed);
            co_return false;
        }
        session revived = was;
        revived.last_active = std::max(was.last_active, claimed.last_active);
        auto r = co_await on_primary(primary_.update(revived, claimed.version));
        if (r != update_result::updated) {
            co_await drop(claimed.id);
            co_return false;
        }
        revived.version = claimed.version + 1;
        co_await remember(revived);
        ++stats_.claims_undone;
        co_return true;
    }

    Primary& primary_;
    Cache& cache_;
    write_through_options options_;
    mutable std::mutex mutex_;
    detail::write_through::cache_health health_;
    std::atomic<bool> primary_down_{false};
    steady::time_point next_primary_probe_{};
    counters stats_;
};

}  // namespace sessionkit

// sessionkit/store/postgres.hpp — session_store, output_log and the event
// outbox on PostgreSQL (component sessionkit::postgres).
//
// Each operation is one round trip over a pool of pipelined connections
// (sessionkit/postgres/pool.hpp): one or two prepared statements sent with
// one Sync, so they run as one implicit transaction
// (store/postgres/statements.hpp has the SQL). The schema is created and
// migrated by open() before the pool starts (store/postgres/schema.hpp);
// rows are decoded by pure functions (store/postgres/codec.hpp).
//
//   - create is INSERT ... ON CONFLICT: a live record under the id is left
//     alone, a final one replaced with its version continued;
//   - update is compare-and-swap on version and never touches a final row;
//   - touch keeps time from going backwards (GREATEST of last_active);
//   - the sweeps take batches with FOR UPDATE SKIP LOCKED, so janitors in
//     several processes get disjoint batches, and a claim never waits for
//     a row another janitor holds;
//   - stats counts by status at most once per stats_max_age (a scan of one
//     index); lifetime counters are rows a counting write inserts in its
//     own transaction (no hot row, nothing counted for a write rolled
//     back), summed up by stats().
//
// The outbox is the session_events table, partitioned by a number the
// record keeps. Why positions are transaction ids: a sequence number is
// taken when a row is inserted, but rows become visible when their
// transaction commits, and commits do not come in sequence order. A relay
// reading "after seq 42" could pass over seq 41 whose transaction commits
// a moment later. So a relay reads only events whose transaction ended
// before every transaction still running (xid below the snapshot's xmin,
// the way PgQ builds its batches), in (xid, seq) order: no event can
// appear later below a position already read. The cost: a transaction
// left open anywhere in the cluster holds events back until it ends
// (doc/postgres.md, "Outbox").
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/detail/cursor.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/event.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/outbox.hpp>
#include <sessionkit/output.hpp>
#include <sessionkit/postgres/pool.hpp>
#include <sessionkit/postgres/script.hpp>
#include <sessionkit/store/postgres/codec.hpp>
#include <sessionkit/store/postgres/schema.hpp>
#include <sessionkit/store/postgres/statements.hpp>

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sessionkit {

struct postgres_store_options {
    /// The PostgreSQL schema holding every table (created if absent). Lower
    /// case letters, digits and _; several deployments may share a
    /// database under different schemas.
    std::string schema = "sessionkit";
    /// Bytes of worker output kept per session (the oldest are dropped).
    std::size_t output_limit = 1 << 20;
    /// Keep an event outbox (off by default): see sessionkit/outbox.hpp.
    std::optional<outbox_options> outbox;
    /// Outbox partitions (1..256): how many relays can publish at once.
    /// Recorded in the schema by the first instance; every later one must
    /// use the same number (open() refuses a different one).
    unsigned outbox_partitions = 4;
    /// How old the counts by status that stats() returns may be: they come
    /// from one index scan at most this often (0: every call).
    milliseconds stats_max_age{1000};
    /// Relayed events are kept as an activity log until purge_ended() runs
    /// with a `before` past their relay time.
    bool purge_relayed_events = true;
};

class postgres_store {
public:
    static constexpr unsigned max_outbox_partitions = 256;

    /// A store over `cfg` whose schema already exists (see open()). The
    /// pool starts connecting at once.
    postgres_store(boost::asio::any_io_executor ex, postgres::connection_options cfg,
                   postgres_store_options options = {})
        : options_(check(std::move(options))),
          pool_(std::make_unique<postgres::pool>(std::move(ex), std::move(cfg),
                                                 postgres_store_sql::statements(options_.schema))) {}

    /// Creates or migrates the schema (several instances may call it at
    /// once), then opens the store and checks that the schema's recorded
    /// outbox partition count is this one's.
    static awaitable<std::unique_ptr<postgres_store>>
    open(boost::asio::any_io_executor ex, postgres::connection_options cfg, postgres_store_options options = {}) {
        check(options);
        co_await migrate(ex, cfg, options.schema);
        auto store = std::make_unique<postgres_store>(ex, std::move(cfg), std::move(options));
        co_await store->check_partitions();
        co_return store;
    }

    /// Creates the schema or brings it to postgres_schema::latest_version,
    /// on a connection of its own, under an advisory lock. Idempotent.
    static awaitable<void> migrate(boost::asio::any_io_executor ex, postgres::connection_options cfg,
                                   std::string schema) {
        postgres_schema::check_schema_name(schema);
        const auto timeout = std::max(cfg.request_timeout, milliseconds{60'000});
        co_await postgres::execute_script(std::move(ex), std::move(cfg),
                                          "migrate schema '" + schema + "' to version " +
                                              std::to_string(postgres_schema::latest_version),
                                          postgres_schema::migration_script(schema), timeout);
    }

    postgres::pool& pool() noexcept { return *pool_; }
    const postgres_store_options& options() const noexcept { return options_; }

    /// The outbox partition of session `id`.
    unsigned partition_of(std::string_view id) const noexcept {
        return sessionkit::detail::fnv1a_32(id) % options_.outbox_partitions;
    }

    // ---- session_store --------------------------------------------------

    awaitable<create_result> create(const session& rec) { return create_carrying(rec, {}); }
    awaitable<create_result> create(const session& rec, const std::vector<event>& events) {
        return create_carrying(rec, events);
    }

    awaitable<std::optional<session>> get(std::string_view id_view) {
        std::string id(id_view);
        if (!is_valid_id(id)) co_return std::nullopt;
        auto rs = co_await run(postgres::operation("get", id).call("get", id));
        if (rs[0].empty()) co_return std::nullopt;
        co_return decode(rs[0], 0, id);
    }

    awaitable<std::optional<touch_result>> touch(std::string_view id_view, time_point now) {
        std::string id(id_view);
        if (!is_valid_id(id)) co_return std::nullopt;
        auto rs = co_await run(postgres::operation("touch", id).call("touch", id, to_unix_ms(now)));
        if (rs[0].empty()) co_return std::nullopt;
        std::array<std::optional<std::string_view>, 5> row;
        for (std::size_t c = 0; c < row.size(); ++c) row[c] = rs[0].get(0, c);
        co_return postgres_store_codec::decode_touch(row, id);
    }

    awaitable<update_result> update(const session& rec, std::uint64_t expected_version) {
        return update_carrying(rec, expected_version, {});
    }
    awaitable<update_result> update(const session& rec, std::uint64_t expected_version,
                                    const std::vector<event>& events) {
        return update_carrying(rec, expected_version, events);
    }

    awaitable<bool> erase(std::string_view id_view) {
        std::string id(id_view);
        if (!is_valid_id(id)) co_return false;
        auto rs = co_await run(postgres::operation("erase", id).call("erase", id));
        co_return rs[0].affected() > 0;
    }

    awaitable<std::vector<session>> claim_expired(time_point now, std::size_t limit, milliseconds lease) {
        // A claim must move its session past `now`, or the next sweep would
        // hand it out again.
        if (lease <= milliseconds::zero())
            throw_error(error::invalid_argument, "postgres_store.claim_expired: lease must be positive");
        std::vector<session> claimed;
        if (limit == 0) co_return claimed;
        auto rs = co_await run(
            postgres::operation("claim_expired").call("claim_expired", to_unix_ms(now), limit, lease.count()));
        std::vector<std::pair<std::int64_t, session>> rows;
        for (std::size_t r = 0; r < rs[0].rows(); ++r) {
            auto s = decode(rs[0], r, "claim_expired");
            rows.emplace_back(integer(rs[0], r, postgres_store_codec::record_column_count, s.id), std::move(s));
        }
        // RETURNING comes in no particular order: earliest deadline first.
        std::stable_sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.first < b.first; });
        claimed.reserve(rows.size());
        for (auto& [due, s] : rows) claimed.push_back(std::move(s));
        co_return claimed;
    }

    awaitable<std::vector<session>> claim_warnings(time_point now, time_point horizon, std::size_t limit) {
        std::vector<session> warned;
        if (limit == 0) co_return warned;
        // One event id per possible warning, made here so that they look
        // like every other event id.
        std::string ids = "{";
        if (outbox_on())
            for (std::size_t i = 0; i < limit; ++i) ids += (i ? "," : "") + generate_id();
        ids += "}";
        auto rs = co_await run(postgres::operation("claim_warnings")
                                   .call("claim_warnings", to_unix_ms(now), to_unix_ms(horizon), limit, std::move(ids),
                                         max_events(), ids_kept()));
        warned.reserve(rs[0].rows());
        std::vector<unsigned> partitions;
        for (std::size_t r = 0; r < rs[0].rows(); ++r) {
            warned.push_back(decode(rs[0], r, "claim_warnings"));
            partitions.push_back(partition_of(warned.back().id));
        }
        if (outbox_on())
            for (auto p : partitions) signal_.notify(p);
        co_return warned;
    }

    awaitable<std::size_t> purge_ended(time_point before, std::size_t limit) {
        if (limit == 0) co_return 0;
        postgres::operation op("purge_ended");
        op.call("purge_ended", to_unix_ms(before), limit);
        if (options_.purge_relayed_events) op.call("purge_relayed", to_unix_ms(before), limit);
        auto rs = co_await run(std::move(op));
        co_return static_cast<std::size_t>(rs[0].affected());
    }

    awaitable<session_page> list(const list_query& q) {
        const std::string after =
            q.cursor.empty() ? std::string{} : sessionkit::detail::id_of_cursor("postgres_store.list", q.cursor);
        const std::size_t limit = std::clamp<std::size_t>(q.limit, 1, max_page_size);
        postgres::operation op("list");
        if (q.owner && q.status)
            op.call("list_owner_status", *q.owner, std::string(to_string(*q.status)), after, limit + 1);
        else if (q.owner)
            op.call("list_owner", *q.owner, after, limit + 1);
        else if (q.status)
            op.call("list_status", std::string(to_string(*q.status)), after, limit + 1);
        else
            op.call("list_all", after, limit + 1);
        auto rs = co_await run(std::move(op));
        session_page page;
        const std::size_t n = std::min(rs[0].rows(), limit);
        page.sessions.reserve(n);
        for (std::size_t r = 0; r < n; ++r) page.sessions.push_back(decode(rs[0], r, "list"));
        if (rs[0].rows() > limit) page.next_cursor = sessionkit::detail::cursor_after(page.sessions.back().id);
        co_return page;
    }

    awaitable<store_stats> stats() {
        {
            std::lock_guard lock(stats_mutex_);
            if (stats_ && options_.stats_max_age > milliseconds::zero() &&
                std::chrono::steady_clock::now() - stats_at_ < options_.stats_max_age)
                co_return *stats_;
        }
        auto rs = co_await run(postgres::operation("stats").call("count_by_status").call("counters"));
        store_stats st;
        for (std::size_t r = 0; r < rs[0].rows(); ++r) {
            const auto n = static_cast<std::uint64_t>(integer(rs[0], r, 1, "stats"));
            st.sessions += n;
            if (auto status = parse_status(rs[0].value(r, 0))) st.by_status[static_cast<std::size_t>(*status)] += n;
        }
        for (std::size_t r = 0; r < rs[1].rows(); ++r) {
            const auto n = static_cast<std::uint64_t>(integer(rs[1], r, 1, "stats"));
            const auto name = rs[1].value(r, 0);
            if (name == "created") st.created_total = n;
            if (name == "expired") st.expired_total = n;
            if (name == "terminated") st.terminated_total = n;
        }
        std::lock_guard lock(stats_mutex_);
        stats_ = st;
        stats_at_ = std::chrono::steady_clock::now();
        co_return st;
    }

    awaitable<void> ping() { co_await pool_->ping(); }

    awaitable<std::optional<std::string>> try_lock(std::string_view name, milliseconds ttl, time_point now) {
        std::string token = generate_id();
        auto rs = co_await run(postgres::operation("try_lock", std::string(name))
                                   .call("try_lock", std::string(name), token, to_unix_ms(now + ttl), to_unix_ms(now)));
        if (rs[0].empty()) co_return std::nullopt;
        co_return token;
    }

    awaitable<bool> unlock(std::string_view name, std::string_view token) {
        auto rs = co_await run(
            postgres::operation("unlock", std::string(name)).call("unlock", std::string(name), std::string(token)));
        co_return rs[0].affected() > 0;
    }

    awaitable<bool> extend_lock(std::string_view name, std::string_view token, milliseconds ttl, time_point now) {
        auto rs = co_await run(
            postgres::operation("extend_lock", std::string(name))
                .call("extend_lock", std::string(name), std::string(token), to_unix_ms(now + ttl), to_unix_ms(now)));
        co_return rs[0].affected() > 0;
    }

    // ---- output_log -----------------------------------------------------

    awaitable<bool> append_output(std::string_view id_view, std::string_view bytes) {
        std::string id(id_view);
        if (!is_valid_id(id)) co_return false;
        // Only the last output_limit bytes of one write can survive it.
        const std::string_view kept =
            bytes.size() > options_.output_limit ? bytes.substr(bytes.size() - options_.output_limit) : bytes;
        auto rs = co_await run(
            postgres::operation("append_output", id)
                .call("append_output", id, postgres_store_codec::to_hex(kept), bytes.size(), options_.output_limit));
        co_return !rs[0].empty();
    }

    awaitable<std::optional<output_chunk>> read_output(std::string_view id_view, std::uint64_t offset,
                                                       std::size_t max) {
        std::string id(id_view);
        if (!is_valid_id(id)) co_return std::nullopt;
        const std::size_t n = std::min(max, max_output_read);
        auto rs = co_await run(postgres::operation("read_output", id)
                                   .call("output_bounds", id)
                                   .call("output_chunks", id, offset, offset + n));
        if (rs[0].empty()) co_return std::nullopt;
        const auto end = static_cast<std::uint64_t>(integer(rs[0], 0, 0, id));
        const auto oldest = rs[0].is_null(0, 1) ? end : static_cast<std::uint64_t>(integer(rs[0], 0, 1, id));
        const std::uint64_t first =
            std::max(oldest, end > options_.output_limit ? end - options_.output_limit : std::uint64_t{0});
        if (offset > end)
            throw_error(error::invalid_argument, "postgres_store.read_output: session '" + id + "': offset " +
                                                     std::to_string(offset) + " is past the end of the output (" +
                                                     std::to_string(end) + " bytes so far)");
        output_chunk out;
        out.dropped = offset < first;
        out.offset = std::max(offset, first);
        auto chunks = std::move(rs[1]);
        if (out.offset != offset) {
            // Some of what was asked for is gone: read from the oldest kept.
            auto again = co_await run(
                postgres::operation("read_output", id).call("output_chunks", id, out.offset, out.offset + n));
            chunks = std::move(again[0]);
        }
        const std::uint64_t stop = std::min<std::uint64_t>(end, out.offset + n);
        for (std::size_t r = 0; r < chunks.rows(); ++r) {
            const auto at = static_cast<std::uint64_t>(integer(chunks, r, 0, id));
            const std::string data = postgres_store_codec::from_bytea_text(chunks.value(r, 1), id);
            const std::uint64_t from = std::max(at, out.offset), to = std::min<std::uint64_t>(at + data.size(), stop);
            if (from >= to || from != out.offset + out.data.size()) continue;
            out.data.append(data, static_cast<std::size_t>(from - at), static_cast<std::size_t>(to - from));
        }
        out.next_offset = out.offset + out.data.size();
        co_return out;
    }

    // ---- the outbox (outbox_store; only with options.outbox) ----

    bool has_outbox() const noexcept { return outbox_on(); }
    unsigned outbox_partitions() const noexcept { return options_.outbox_partitions; }

    awaitable<std::vector<outbox_entry>> read_outbox(unsigned partition, std::string_view after, std::size_t limit) {
        check_partition("read_outbox", partition);
        const auto pos = postgres_store_codec::parse_position("postgres_store.read_outbox", after);
        std::vector<outbox_entry> out;
        if (limit == 0) co_return out;
        auto rs = co_await run(postgres::operation("read_outbox", "partition " + std::to_string(partition))
                                   .call("read_outbox", partition, pos.xid, pos.seq, limit));
        const auto& r = rs[0];
        out.reserve(r.rows());
        for (std::size_t i = 0; i < r.rows(); ++i) {
            outbox_entry e;
            e.position = std::string(r.value(i, 0)) + ":" + std::string(r.value(i, 1));
            const std::string where = "outbox partition " + std::to_string(partition) + " at " + e.position;
            e.ev.id = std::string(r.value(i, 2));
            e.ev.session_id = std::string(r.value(i, 3));
            auto type = event_type_of(r.value(i, 4));
            if (!type)
                throw_error(error::corrupt_record,
                            "event in " + where + ": unknown type '" + detail::printable(r.value(i, 4)) + "'");
            e.ev.type = *type;
            e.ev.time = from_unix_ms(integer(r, i, 5, where));
            boost::system::error_code ec;
            auto data = boost::json::parse(r.value(i, 6), ec);
            if (ec || !data.is_object())
                throw_error(error::corrupt_record, "event in " + where + ": data is not an object");
            e.ev.data = std::move(data.get_object());
            out.push_back(std::move(e));
        }
        co_return out;
    }

    awaitable<std::size_t> trim_outbox(unsigned partition, std::string_view upto) {
        check_partition("trim_outbox", partition);
        if (upto.empty()) co_return 0;
        const auto pos = postgres_store_codec::parse_position("postgres_store.trim_outbox", upto);
        auto rs = co_await run(postgres::operation("trim_outbox", "partition " + std::to_string(partition))
                                   .call("trim_outbox", partition, pos.xid, pos.seq));
        co_return static_cast<std::size_t>(rs[0].affected());
    }

    awaitable<sessionkit::outbox_stats> outbox_stats() {
        check_outbox("outbox_stats");
        auto rs = co_await run(postgres::operation("outbox_stats").call("outbox_depth").call("outbox_dropped_total"));
        sessionkit::outbox_stats st;
        st.depth = static_cast<std::uint64_t>(integer(rs[0], 0, 0, "outbox_stats"));
        if (!rs[0].is_null(0, 1)) st.oldest = from_unix_ms(integer(rs[0], 0, 1, "outbox_stats"));
        st.dropped = static_cast<std::uint64_t>(integer(rs[1], 0, 0, "outbox_stats"));
        co_return st;
    }

    awaitable<std::vector<dropped_event>> take_dropped(std::size_t limit) {
        check_outbox("take_dropped");
        std::vector<dropped_event> out;
        if (limit == 0) co_return out;
        auto rs = co_await run(postgres::operation("take_dropped").call("take_dropped", limit));
        std::vector<std::pair<std::int64_t, dropped_event>> rows;
        for (std::size_t r = 0; r < rs[0].rows(); ++r)
            rows.emplace_back(integer(rs[0], r, 0, "take_dropped"),
                              dropped_event{static_cast<unsigned>(integer(rs[0], r, 1, "take_dropped")),
                                            std::string(rs[0].value(r, 2)), std::string(rs[0].value(r, 3)),
                                            std::string(rs[0].value(r, 4))});
        std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.first < b.first; });
        for (auto& [seq, d] : rows) out.push_back(std::move(d));
        co_return out;
    }

    sessionkit::outbox_signal& outbox_signal() noexcept { return signal_; }

private:
    static postgres_store_options check(postgres_store_options o) {
        postgres_schema::check_schema_name(o.schema);
        if (o.output_limit == 0 || o.output_limit > (std::size_t{256} << 20))
            throw_error(error::invalid_argument,
                        "postgres_store: output_limit must be 1 byte..256 MiB, got " + std::to_string(o.output_limit));
        if (o.outbox_partitions < 1 || o.outbox_partitions > max_outbox_partitions)
            throw_error(error::invalid_argument,
                        "postgres_store: outbox_partitions must be 1..256, got " + std::to_string(o.outbox_partitions));
        if (o.outbox && (o.outbox->max_events == 0 || o.outbox->max_events > 100'000'000))
            throw_error(error::invalid_argument, "postgres_store: outbox max_events must be 1..100000000, got " +
                                                     std::to_string(o.outbox->max_events));
        if (o.stats_max_age < milliseconds::zero())
            throw_error(error::invalid_argument, "postgres_store: stats_max_age must not be negative");
        return o;
    }

    awaitable<void> check_partitions() {
        const std::string mine = std::to_string(options_.outbox_partitions);
        auto rs = co_await run(
            postgres::operation("check settings", "outbox_partitions").call("setting", "outbox_partitions", mine));
        if (!rs[0].empty() && rs[0].value(0, 0) != mine)
            throw_error(error::invalid_argument, "postgres_store: schema '" + options_.schema + "' was set up with " +
                                                     std::string(rs[0].value(0, 0)) +
                                                     " outbox partitions; this store has " + mine +
                                                     " (every instance must use the same number)");
    }

    bool outbox_on() const noexcept { return options_.outbox.has_value(); }
    std::int64_t max_events() const noexcept {
        return outbox_on() ? static_cast<std::int64_t>(options_.outbox->max_events) : 0;
    }
    std::int64_t ids_kept() const noexcept {
        return outbox_on() ? static_cast<std::int64_t>(options_.outbox->dropped_ids_kept) : 0;
    }
    bool refuses() const noexcept { return outbox_on() && options_.outbox->overflow == outbox_overflow::refuse_writes; }

    void check_outbox(std::string_view operation) const {
        if (!outbox_on())
            throw_error(error::invalid_argument, "postgres_store." + std::string(operation) +
                                                     ": the outbox is off (postgres_store_options.outbox)");
    }
    void check_partition(std::string_view operation, unsigned partition) const {
        check_outbox(operation);
        if (partition >= options_.outbox_partitions)
            throw_error(error::invalid_argument, "postgres_store." + std::string(operation) + ": partition " +
                                                     std::to_string(partition) + " does not exist (it has " +
                                                     std::to_string(options_.outbox_partitions) + ")");
    }

    // The events as the JSON array outbox_append reads; "[]" for none.
    std::string events_json(const std::vector<event>& events) const {
        if (events.empty()) return "[]";
        check_outbox("a write carrying events");
        boost::json::array a;
        a.reserve(events.size());
        for (const auto& e : events) a.push_back(to_json(e));
        return boost::json::serialize(a);
    }

    awaitable<create_result> create_carrying(const session& rec, std::vector<event> events) {
        check_id(rec.id);
        const std::string json = events_json(events);
        const unsigned partition = partition_of(rec.id);
        // A live record erased between the two statements leaves neither a
        // new row nor an old one: try again (each try is one round trip).
        for (int attempt = 0;; ++attempt) {
            auto params = postgres_store_codec::record_parameters(rec);
            params.insert(params.begin(), rec.id);
            params.emplace_back(std::to_string(partition));
            params.emplace_back(json);
            params.emplace_back(std::to_string(max_events()));
            params.emplace_back(refuses() ? "true" : "false");
            params.emplace_back(std::to_string(ids_kept()));
            postgres::operation op("create", rec.id);
            op.call_with("create", std::move(params)).call("get", rec.id);
            auto rs = co_await run(std::move(op));
            if (!rs[0].empty()) {
                create_result made{true, rec};
                made.record.version = static_cast<std::uint64_t>(integer(rs[0], 0, 0, rec.id));
                if (!events.empty()) signal_.notify(partition);
                co_return made;
            }
            if (!rs[1].empty()) co_return create_result{false, decode(rs[1], 0, rec.id)};
            if (attempt == 3)
                throw_error(error::contention, "postgres_store: create '" + rec.id +
                                                   "': the session kept being erased and recreated meanwhile");
        }
    }

    // (The events by value: update(rec, v) passes a temporary that would
    // not outlive the coroutine.)
    awaitable<update_result> update_carrying(const session& rec, std::uint64_t expected_version,
                                             std::vector<event> events) {
        check_id(rec.id);
        const std::string json = events_json(events);
        auto params = postgres_store_codec::record_parameters(rec);
        params.insert(params.begin(), std::to_string(expected_version));
        params.insert(params.begin(), rec.id);
        params.emplace_back(json);
        params.emplace_back(std::to_string(max_events()));
        params.emplace_back(refuses() ? "true" : "false");
        params.emplace_back(std::to_string(ids_kept()));
        auto rs = co_await run(postgres::operation("update", rec.id).call_with("update", std::move(params)));
        const auto& r = rs[0];
        if (!r.is_null(0, 2)) {
            if (!events.empty()) signal_.notify(partition_of(rec.id));
            co_return update_result::updated;
        }
        if (r.is_null(0, 0)) co_return update_result::not_found;
        auto status = parse_status(r.value(0, 0));
        if (status && is_final(*status)) co_return update_result::final_state;
        co_return update_result::version_conflict;
    }

    // Runs an operation; a full outbox (SQLSTATE SK001, raised by
    // outbox_append) becomes error::backend_unavailable naming it.
    awaitable<postgres::result_set> run(postgres::operation op) {
        std::optional<sessionkit::system_error> full;
        try {
            co_return co_await pool_->execute(std::move(op));
        } catch (const postgres::server_error& e) {
            if (e.sqlstate() != "SK001") throw;
            full.emplace(error::backend_unavailable, e.message(), e.diagnostics());
        }
        throw *full;
    }

    session decode(const postgres::result& r, std::size_t row, std::string_view id_hint) const {
        postgres_store_codec::row_values values;
        for (std::size_t c = 0; c < values.size(); ++c) values[c] = r.get(row, c);
        return postgres_store_codec::decode_record(values, id_hint);
    }

    static std::int64_t integer(const postgres::result& r, std::size_t row, std::size_t column, std::string_view what) {
        const auto text = r.value(row, column);
        std::int64_t v = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc{} || end != text.data() + text.size())
            throw_error(error::protocol_error, "postgres_store: " + std::string(what) + ": column " +
                                                   std::string(r.column_name(column)) + " is not an integer: '" +
                                                   detail::printable(text) + "'");
        return v;
    }

    postgres_store_options options_;
    std::unique_ptr<postgres::pool> pool_;
    sessionkit::outbox_signal signal_;
    std::mutex stats_mutex_;
    std::optional<store_stats> stats_;
    std::chrono::steady_clock::time_point stats_at_{};
};

static_assert(session_store<postgres_store>);
static_assert(output_log<postgres_store>);
static_assert(outbox_store<postgres_store>);

}  // namespace sessionkit

// sessionkit/store/redis.hpp — session_store and output_log on Redis
// (component sessionkit::redis): the operations, each a round trip or two
// over a shared connection.
//
// Each operation on one session is one Lua script (store/redis/scripts.hpp),
// run by EVALSHA over a shared, auto-pipelining connection: atomic and one
// round trip. Sessions are spread over `partitions` hash-tagged partitions
// (store/redis/keys.hpp names every key): each partition holds its records
// and their indexes in one Redis Cluster slot. Operations that span
// partitions (list, stats, the janitor's sweeps) send one command per
// partition in a single pipelined write. What comes back is decoded by pure
// functions (store/redis/codec.hpp, store/redis/detail/replies.hpp); this
// class sends, decodes, and names the session, key and server in errors.
//
// The janitor's sweeps read candidates from every partition's index first,
// pick the earliest `limit`, then claim them with one script per partition
// that re-checks each candidate: two round trips, so that a claim returns
// at most `limit` sessions, earliest first, each to exactly one janitor.
//
// With `options.outbox` set, the store keeps an event outbox per partition
// (sessionkit/outbox.hpp): create/update take the events their write
// implies and the same script XADDs them to the partition's stream, only
// when the write lands; claim_warnings appends a timeout_warning per record
// it claims. A relay reads, then trims, each partition's stream.
// doc/redis.md has the key layout, the scripts and the failure behaviour.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/detail/cursor.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/event.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/outbox.hpp>
#include <sessionkit/output.hpp>
#include <sessionkit/redis/connection.hpp>
#include <sessionkit/store/redis/codec.hpp>
#include <sessionkit/store/redis/detail/replies.hpp>
#include <sessionkit/store/redis/detail/script_client.hpp>
#include <sessionkit/store/redis/keys.hpp>
#include <sessionkit/store/redis/scripts.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sessionkit {

struct redis_store_options {
    /// Every key starts with this (the seeds use "ghost:session:",
    /// "sentinel:session:", "mcp:session:").
    std::string prefix = "session:";
    /// Partitions of the keyspace (1..1024). More partitions spread a Redis
    /// Cluster better; each sweep and list sends one command per partition.
    /// Every instance sharing a prefix must use the same number.
    unsigned partitions = 16;
    /// Safety-net TTL: every key lives this long past its session's
    /// deadline (or end), so nothing leaks when no janitor runs. Keep it
    /// longer than the janitor's claim lease and history retention.
    milliseconds ttl_margin = std::chrono::hours{24 * 7};
    /// Bytes of worker output kept per session (the oldest are dropped);
    /// Redis holds up to twice this between cuts. Every instance sharing
    /// a prefix should use the same limit.
    std::size_t output_limit = 1 << 20;
    /// Told about a record that cannot be read (a key overwritten by
    /// someone else) when a sweep or list meets it. It has been moved out
    /// of the sweep indexes into "<prefix>{<n>}:corrupt".
    std::function<void(const std::string& key, const std::string& what)> on_corrupt;
    /// Keep an event outbox per partition (off by default): see
    /// sessionkit/outbox.hpp and doc/redis.md, "Outbox". Needs Redis 6.2
    /// or later. Every instance sharing a prefix should use the same.
    std::optional<outbox_options> outbox;
};

class redis_store {
public:
    redis_store(std::shared_ptr<redis::connection> conn, redis_store_options options = {})
        : client_(std::move(conn), options.prefix, options.partitions), options_(std::move(options)) {
        if (!client_.connected()) throw_error(error::invalid_argument, "redis_store: no connection");
        if (options_.partitions < 1 || options_.partitions > redis_store_keys::max_partitions)
            throw_error(error::invalid_argument,
                        "redis_store: partitions must be 1..1024, got " + std::to_string(options_.partitions));
        if (options_.prefix.find_first_of("{}") != std::string::npos)
            throw_error(error::invalid_argument, "redis_store: prefix '" +
                                                     sessionkit::detail::printable(options_.prefix) +
                                                     "' must not contain '{' or '}' (they would change the hash slot)");
        if (options_.ttl_margin <= milliseconds::zero())
            throw_error(error::invalid_argument, "redis_store: ttl_margin must be positive");
        // Redis strings stop at 512 MB; the log may hold twice the limit.
        if (options_.output_limit == 0 || options_.output_limit > (std::size_t{128} << 20))
            throw_error(error::invalid_argument, "redis_store: output_limit must be 1 byte..128 MiB, got " +
                                                     std::to_string(options_.output_limit));
        if (options_.outbox && (options_.outbox->max_events == 0 || options_.outbox->max_events > 100'000'000))
            throw_error(error::invalid_argument, "redis_store: outbox max_events must be 1..100000000, got " +
                                                     std::to_string(options_.outbox->max_events));
    }
    /// Opens its own connection.
    redis_store(boost::asio::any_io_executor ex, redis::connection_options cfg, redis_store_options options = {})
        : redis_store(std::make_shared<redis::connection>(std::move(ex), std::move(cfg)), std::move(options)) {}

    redis::connection& connection() noexcept { return client_.conn(); }
    const redis_store_options& options() const noexcept { return options_; }

    /// "<prefix>{<n>}:" of the partition holding `id`.
    std::string partition_base(std::string_view id) const { return base_of(client_.partition_of(id)); }
    /// The key of a session's record.
    std::string key_of(std::string_view id) const { return client_.key_of(id); }

    // ---- session_store --------------------------------------------------

    awaitable<create_result> create(const session& rec) { return create_carrying(rec, nullptr); }

    awaitable<std::optional<session>> get(std::string_view id_view) {
        std::string id(id_view);
        if (!is_valid_id(id)) co_return std::nullopt;
        redis::resp::command cmd("HMGET");
        cmd.arg(key_of(id));
        for (auto f : redis_store_codec::record_fields) cmd.arg(f);
        auto reply = co_await client_.run_one(std::move(cmd), "get", id);
        if (reply.is_error()) client_.fail_reply(reply, "get", id);
        co_return client_.decoded("get", id, [&] { return redis_store_codec::decode_get(id, reply); });
    }

    awaitable<std::optional<touch_result>> touch(std::string_view id_view, time_point now) {
        std::string id(id_view);
        if (!is_valid_id(id)) co_return std::nullopt;
        auto cmd = client_.eval(scripts().touch, partition_base(id));
        cmd.arg(id).arg(to_unix_ms(now)).arg(margin_ms());
        auto reply = co_await client_.run_one(std::move(cmd), "touch", id);
        if (reply.is_error()) client_.fail_reply(reply, "touch", id);
        co_return client_.decoded("touch", id, [&] { return detail::redis_store::decode_touch(reply); });
    }

    awaitable<update_result> update(const session& rec, std::uint64_t expected_version) {
        return update_carrying(rec, expected_version, nullptr);
    }

    awaitable<bool> erase(std::string_view id_view) {
        std::string id(id_view);
        if (!is_valid_id(id)) co_return false;
        auto cmd = client_.eval(scripts().erase, partition_base(id));
        cmd.arg(id);
        auto reply = co_await client_.run_one(std::move(cmd), "erase", id);
        if (reply.is_error()) client_.fail_reply(reply, "erase", id);
        co_return client_.decoded("erase", id, [&] { return detail::redis_store::decode_done(reply); });
    }

    awaitable<std::vector<session>> claim_expired(time_point now, std::size_t limit, milliseconds lease) {
        if (lease <= milliseconds::zero())
            throw_error(error::invalid_argument, "redis_store.claim_expired: lease must be positive");
        // Arguments named before co_await (GCC 12, doc/decisions.md).
        const std::string min = "-inf", max = std::to_string(to_unix_ms(now));
        const std::vector<std::string> head = {max, std::to_string(lease.count()), std::to_string(margin_ms())};
        co_return co_await sweep(scripts().claim_expired, redis_store_keys::live_index, min, max, head, limit,
                                 "claim_expired");
    }

    /// With the outbox on, each record claimed gets a timeout_warning event
    /// (make_timeout_warning: time `now`, a fresh id) in its partition's
    /// outbox, in the same script as the claim.
    awaitable<std::vector<session>> claim_warnings(time_point now, time_point horizon, std::size_t limit) {
        if (horizon <= now) co_return std::vector<session>{};
        const std::string min = "(" + std::to_string(to_unix_ms(now)), max = std::to_string(to_unix_ms(horizon));
        std::vector<std::string> head = {std::to_string(to_unix_ms(now)), max};
        if (options_.outbox) {
            const auto& o = *options_.outbox;
            head.insert(head.end(), {"1", std::to_string(o.max_events), std::string(to_string(o.overflow)),
                                     std::to_string(dropped_kept()), std::to_string(margin_ms())});
        } else {
            head.emplace_back("0");
        }
        auto warned = co_await sweep(scripts().claim_warnings, redis_store_keys::warn_index, min, max, head, limit,
                                     "claim_warnings", options_.outbox.has_value());
        if (options_.outbox)
            for (const auto& s : warned) signal_.notify(client_.partition_of(s.id));
        co_return warned;
    }

    awaitable<std::size_t> purge_ended(time_point before, std::size_t limit) {
        std::string min = "-inf", max = std::to_string(to_unix_ms(before));
        auto picked = co_await candidates(redis_store_keys::ended_index, min, max, limit, "purge_ended");
        if (picked.empty()) co_return 0;
        redis::request req("EVALSHA purge_ended");
        std::vector<unsigned> order;
        for (auto& [p, ids] : picked) {
            auto cmd = client_.eval(scripts().purge_ended, base_of(p));
            cmd.arg(to_unix_ms(before));
            for (auto& id : ids) cmd.arg(id);
            req.push(cmd);
            order.push_back(p);
        }
        auto replies = co_await client_.run(std::move(req), scripts().purge_ended, "purge_ended");
        std::size_t n = 0;
        for (std::size_t i = 0; i < replies.size(); ++i) {
            if (replies[i].is_error()) client_.fail_reply(replies[i], "purge_ended", base_of(order[i]));
            n += client_.decoded_at("purge_ended", base_of(order[i]),
                                    [&] { return detail::redis_store::decode_count(replies[i]); });
        }
        co_return n;
    }

    awaitable<session_page> list(const list_query& q) {
        const std::string after =
            q.cursor.empty() ? std::string{} : sessionkit::detail::id_of_cursor("redis_store.list", q.cursor);
        const std::size_t limit = std::clamp<std::size_t>(q.limit, 1, max_page_size);
        const auto source = redis_store_keys::list_source_of(q);
        redis::request req("EVALSHA list");
        for (unsigned p = 0; p < options_.partitions; ++p) {
            auto cmd = client_.eval(scripts().list, base_of(p));
            cmd.arg(source.index).arg(after).arg(static_cast<std::int64_t>(limit)).arg(source.status_filter);
            req.push(cmd);
        }
        auto replies = co_await client_.run(std::move(req), scripts().list, "list");
        // Each partition's page is in id order; merge them and keep `limit`.
        std::vector<session> all;
        bool full = false;
        for (unsigned p = 0; p < replies.size(); ++p) {
            if (replies[p].is_error()) client_.fail_reply(replies[p], "list", base_of(p));
            if (replies[p].elements.size() >= limit) full = true;
            for (auto& entry : replies[p].elements)
                if (auto s = decode_entry(entry, "list", p)) all.push_back(std::move(*s));
        }
        co_return detail::redis_store::merge_pages(std::move(all), full, limit);
    }

    awaitable<store_stats> stats() {
        redis::request req("HGETALL stats");
        for (unsigned p = 0; p < options_.partitions; ++p)
            req.push("HGETALL", base_of(p) + std::string(redis_store_keys::stats_hash));
        auto replies = co_await client_.conn().exec(std::move(req));
        store_stats st;
        for (unsigned p = 0; p < replies.size(); ++p) {
            const std::string key = base_of(p) + std::string(redis_store_keys::stats_hash);
            if (replies[p].is_error()) client_.fail_reply(replies[p], "stats", key);
            client_.decoded_at("stats", key, [&] { redis_store_codec::add_stats(st, replies[p]); });
        }
        redis_store_codec::finish_stats(st);
        co_return st;
    }

    // ---- output_log (output.hpp) ----------------------------------------

    awaitable<bool> append_output(std::string_view id_view, std::string_view bytes) {
        std::string id(id_view);
        if (!is_valid_id(id)) co_return false;
        auto cmd = client_.eval(scripts().append_output, partition_base(id));
        cmd.arg(id).arg(static_cast<std::int64_t>(options_.output_limit)).arg(bytes);
        auto reply = co_await client_.run_one(std::move(cmd), "append_output", id);
        if (reply.is_error()) client_.fail_reply(reply, "append_output", id);
        co_return client_.decoded("append_output", id, [&] { return detail::redis_store::decode_done(reply); });
    }

    awaitable<std::optional<output_chunk>> read_output(std::string_view id_view, std::uint64_t offset,
                                                       std::size_t max) {
        std::string id(id_view);
        if (!is_valid_id(id)) co_return std::nullopt;
        max = std::min(max, max_output_read);
        auto cmd = client_.eval(scripts().read_output, partition_base(id));
        cmd.arg(id)
            .arg(std::to_string(offset))
            .arg(static_cast<std::int64_t>(max))
            .arg(static_cast<std::int64_t>(options_.output_limit));
        auto reply = co_await client_.run_one(std::move(cmd), "read_output", id);
        if (reply.is_error()) client_.fail_reply(reply, "read_output", id);
        co_return client_.decoded("read_output", id, [&] { return detail::redis_store::decode_output(reply, offset); });
    }

    awaitable<void> ping() { co_await client_.conn().ping(); }

    awaitable<std::optional<std::string>> try_lock(std::string_view name, milliseconds ttl, time_point now) {
        if (ttl <= milliseconds::zero())
            throw_error(error::invalid_argument, "redis_store.try_lock: ttl must be positive");
        std::string token = generate_id();
        const std::string key = client_.lock_key(name);
        redis::resp::command cmd("EVALSHA");
        cmd.arg(scripts().try_lock.sha).arg(std::int64_t{1}).arg(key);
        cmd.arg(to_unix_ms(now)).arg(ttl.count()).arg(token);
        std::string label(name);
        auto reply = co_await client_.run_one(std::move(cmd), "try_lock", label);
        if (reply.is_error()) client_.fail_reply(reply, "try_lock", key);
        if (!detail::redis_store::decode_locked(reply)) co_return std::nullopt;
        co_return token;
    }

    awaitable<bool> unlock(std::string_view name, std::string_view token) {
        const std::string key = client_.lock_key(name);
        redis::resp::command cmd("EVALSHA");
        cmd.arg(scripts().unlock.sha).arg(std::int64_t{1}).arg(key).arg(token);
        std::string label(name);
        auto reply = co_await client_.run_one(std::move(cmd), "unlock", label);
        if (reply.is_error()) client_.fail_reply(reply, "unlock", key);
        co_return client_.decoded_at("unlock", key, [&] { return detail::redis_store::decode_done(reply); });
    }

    /// Keeps the lock `name` held by `token` for `ttl` more (on the
    /// caller's clock, as try_lock); false when the token does not hold it
    /// (released, expired, or taken by another). One script: compare, then
    /// rewrite the value and its PX.
    awaitable<bool> extend_lock(std::string_view name, std::string_view token, milliseconds ttl, time_point now) {
        if (ttl <= milliseconds::zero())
            throw_error(error::invalid_argument, "redis_store.extend_lock: ttl must be positive");
        const std::string key = client_.lock_key(name);
        redis::resp::command cmd("EVALSHA");
        cmd.arg(scripts().extend_lock.sha).arg(std::int64_t{1}).arg(key);
        cmd.arg(to_unix_ms(now)).arg(ttl.count()).arg(token);
        std::string label(name);
        auto reply = co_await client_.run_one(std::move(cmd), "extend_lock", label);
        if (reply.is_error()) client_.fail_reply(reply, "extend_lock", key);
        co_return client_.decoded_at("extend_lock", key, [&] { return detail::redis_store::decode_done(reply); });
    }

    // ---- the outbox (outbox_store; only with options.outbox) ------------

    awaitable<create_result> create(const session& rec, const std::vector<event>& events) {
        return create_carrying(rec, &events);
    }

    awaitable<update_result> update(const session& rec, std::uint64_t expected_version,
                                    const std::vector<event>& events) {
        return update_carrying(rec, expected_version, &events);
    }

    bool has_outbox() const noexcept { return options_.outbox.has_value(); }
    /// One outbox per partition of the keyspace.
    unsigned outbox_partitions() const noexcept { return options_.partitions; }

    /// Up to `limit` entries of partition `p` after position `after` ("":
    /// from the oldest), oldest first: XRANGE from the next possible entry
    /// id. An entry someone else wrote that is not an event is reported to
    /// on_corrupt, counted in corrupt_records() and removed (XDEL), never
    /// handed out; the read goes on past it.
    awaitable<std::vector<outbox_entry>> read_outbox(unsigned p, std::string_view after, std::size_t limit) {
        check_partition("read_outbox", p);
        std::vector<outbox_entry> out;
        if (limit == 0) co_return out;
        const std::string key = outbox_key(p);
        std::string from = after.empty() ? std::string("-") : position_after("read_outbox", key, after);
        const auto count = static_cast<std::int64_t>(std::min<std::size_t>(limit, 10'000));
        for (int round = 0; round < 100 && out.empty(); ++round) {
            redis::request req("XRANGE read_outbox", key);
            req.push("XRANGE", key, from, "+", "COUNT", count);
            auto replies = co_await client_.conn().exec(std::move(req));
            if (replies[0].is_error()) client_.fail_reply(replies[0], "read_outbox", key);
            auto got = client_.decoded_at("read_outbox", key,
                                          [&] { return detail::redis_store::decode_outbox(replies[0], key); });
            out = std::move(got.entries);
            if (!got.skipped.empty()) co_await remove_unreadable(key, got.skipped);
            // Only unreadable entries in a full chunk: read on past them.
            if (got.count < static_cast<std::size_t>(count) || got.last_position.empty()) break;
            from = detail::redis_store::next_position(got.last_position);
        }
        co_return out;
    }

    /// Removes partition `p`'s entries at or before `upto`; how many. XTRIM
    /// MINID (the position after `upto`) in a script that gives an emptied
    /// stream a TTL (doc/redis.md, "Outbox").
    awaitable<std::size_t> trim_outbox(unsigned p, std::string_view upto) {
        check_partition("trim_outbox", p);
        const std::string base = base_of(p), key = outbox_key(p);
        const std::string min_id = position_after("trim_outbox", key, upto);
        auto cmd = client_.eval(scripts().trim_outbox, base);
        cmd.arg(min_id).arg(margin_ms());
        auto reply = co_await client_.run_one(std::move(cmd), "trim_outbox", key);
        if (reply.is_error()) client_.fail_reply(reply, "trim_outbox", key);
        co_return client_.decoded_at("trim_outbox", key, [&] { return detail::redis_store::decode_count(reply); });
    }

    /// Depth (XLEN), oldest (the time field of each stream's first entry)
    /// and dropped (the partitions' counters) over every partition: one
    /// pipelined write of three commands per partition.
    awaitable<sessionkit::outbox_stats> outbox_stats() {
        check_outbox("outbox_stats");
        redis::request req("outbox_stats");
        for (unsigned p = 0; p < options_.partitions; ++p) {
            const std::string key = outbox_key(p);
            req.push("XLEN", key);
            req.push("XRANGE", key, "-", "+", "COUNT", "1");
            req.push("HGET", base_of(p) + std::string(redis_store_keys::stats_hash),
                     redis_store_keys::outbox_dropped_counter);
        }
        auto replies = co_await client_.conn().exec(std::move(req));
        sessionkit::outbox_stats st;
        for (unsigned p = 0; p < options_.partitions; ++p) {
            const std::string key = outbox_key(p);
            for (unsigned k = 0; k < 3; ++k)
                if (replies[3 * p + k].is_error()) client_.fail_reply(replies[3 * p + k], "outbox_stats", key);
            client_.decoded_at("outbox_stats", key, [&] {
                st.depth += detail::redis_store::decode_count(replies[3 * p]);
                if (auto t = detail::redis_store::first_entry_time(replies[3 * p + 1]))
                    if (!st.oldest || from_unix_ms(*t) < *st.oldest) st.oldest = from_unix_ms(*t);
                st.dropped += detail::redis_store::decode_counter(replies[3 * p + 2]);
            });
        }
        co_return st;
    }

    /// Takes (removes) up to `limit` records of dropped events, oldest
    /// first across partitions: reads the head of every partition's list,
    /// picks the oldest `limit`, then pops that many from each (LPOP
    /// count). Two relays taking at once each get different records.
    awaitable<std::vector<dropped_event>> take_dropped(std::size_t limit) {
        check_outbox("take_dropped");
        std::vector<dropped_event> out;
        if (limit == 0) co_return out;
        const auto n = static_cast<std::int64_t>(std::min<std::size_t>(limit, 100'000));
        redis::request peek("LRANGE take_dropped");
        for (unsigned p = 0; p < options_.partitions; ++p) peek.push("LRANGE", dropped_key(p), "0", n - 1);
        auto heads = co_await client_.conn().exec(std::move(peek));
        std::vector<std::vector<detail::redis_store::dropped_line>> lists(options_.partitions);
        for (unsigned p = 0; p < options_.partitions; ++p) {
            if (heads[p].is_error()) client_.fail_reply(heads[p], "take_dropped", dropped_key(p));
            lists[p] = client_.decoded_at("take_dropped", dropped_key(p),
                                          [&] { return detail::redis_store::decode_dropped_list(heads[p], p); });
        }
        std::vector<std::int64_t> take(options_.partitions, 0);
        for (auto& d : detail::redis_store::merge_dropped(lists, static_cast<std::size_t>(n)))
            ++take[d.event.partition];
        redis::request pop("LPOP take_dropped");
        std::vector<unsigned> order;
        for (unsigned p = 0; p < options_.partitions; ++p)
            if (take[p] > 0) {
                pop.push("LPOP", dropped_key(p), take[p]);
                order.push_back(p);
            }
        if (order.empty()) co_return out;
        auto popped = co_await client_.conn().exec(std::move(pop));
        std::vector<std::vector<detail::redis_store::dropped_line>> got(options_.partitions);
        for (std::size_t i = 0; i < order.size(); ++i) {
            const unsigned p = order[i];
            if (popped[i].is_error()) client_.fail_reply(popped[i], "take_dropped", dropped_key(p));
            got[p] = client_.decoded_at("take_dropped", dropped_key(p),
                                        [&] { return detail::redis_store::decode_dropped_list(popped[i], p); });
        }
        for (auto& d : detail::redis_store::merge_dropped(std::move(got), static_cast<std::size_t>(n)))
            out.push_back(std::move(d.event));
        co_return out;
    }

    /// Notified (with the partition) after a write of this process appended events.
    sessionkit::outbox_signal& outbox_signal() noexcept { return signal_; }

    /// The stream of partition `p`'s outbox: "<prefix>{<p>}:outbox".
    std::string outbox_key(unsigned p) const { return base_of(p) + std::string(redis_store_keys::outbox_stream); }

    /// Records met by sweeps or list that could not be read (and outbox
    /// entries read_outbox could not read).
    std::uint64_t corrupt_records() const noexcept { return corrupt_seen_; }

private:
    using script = redis_store_scripts::script;
    using resp_value = redis::resp::value;

    static const redis_store_scripts::script_set& scripts() { return redis_store_scripts::all(); }
    std::string base_of(unsigned p) const { return client_.base_of(p); }
    std::int64_t margin_ms() const noexcept { return options_.ttl_margin.count(); }
    std::string dropped_key(unsigned p) const { return base_of(p) + std::string(redis_store_keys::outbox_dropped); }

    awaitable<create_result> create_carrying(const session& rec, const std::vector<event>* events) {
        check_id(rec.id);
        check_events("create", events);
        std::string id = rec.id;
        auto cmd = client_.eval(scripts().create, partition_base(id));
        cmd.arg(id).arg(to_unix_ms(rec.last_active)).arg(margin_ms());
        add_events(cmd, events);
        for (auto& f : redis_store_codec::encode_record(rec)) cmd.arg(f.name).arg(f.value);
        auto reply = co_await client_.run_one(std::move(cmd), "create", id);
        if (reply.is_error()) client_.fail_reply(reply, "create", id);
        if (auto length = detail::redis_store::outbox_refusal(reply, 2)) refused("create", id, *length, events);
        auto made = client_.decoded("create", id, [&] { return detail::redis_store::decode_create(reply, rec); });
        if (made.created && events && !events->empty()) signal_.notify(client_.partition_of(id));
        co_return made;
    }

    awaitable<update_result> update_carrying(const session& rec, std::uint64_t expected_version,
                                             const std::vector<event>* events) {
        check_id(rec.id);
        check_events("update", events);
        std::string id = rec.id;
        auto cmd = client_.eval(scripts().update, partition_base(id));
        cmd.arg(id).arg(std::to_string(expected_version)).arg(to_unix_ms(rec.last_active)).arg(margin_ms());
        add_events(cmd, events);
        for (auto& f : redis_store_codec::encode_record(rec)) cmd.arg(f.name).arg(f.value);
        auto reply = co_await client_.run_one(std::move(cmd), "update", id);
        if (reply.is_error()) client_.fail_reply(reply, "update", id);
        if (auto length = detail::redis_store::outbox_refusal(reply, 4)) refused("update", id, *length, events);
        auto r = client_.decoded("update", id, [&] { return detail::redis_store::decode_update(reply); });
        if (r == update_result::updated && events && !events->empty()) signal_.notify(client_.partition_of(id));
        co_return r;
    }

    /// A write's events as its script reads them (lua_outbox.hpp): their
    /// count, then the outbox's settings and each event's text, id,
    /// session, type and time.
    void add_events(redis::resp::command& cmd, const std::vector<event>* events) const {
        if (!events || events->empty()) {
            cmd.arg(std::int64_t{0});
            return;
        }
        const auto& o = *options_.outbox;
        cmd.arg(static_cast<std::int64_t>(events->size()))
            .arg(static_cast<std::int64_t>(o.max_events))
            .arg(to_string(o.overflow))
            .arg(dropped_kept());
        for (const auto& e : *events)
            cmd.arg(to_text(e)).arg(e.id).arg(e.session_id).arg(to_string(e.type)).arg(to_unix_ms(e.time));
    }

    /// dropped_ids_kept as the scripts get it: Lua numbers are doubles,
    /// and LTRIM wants an integer, so at most 10^9 (more than memory allows).
    std::int64_t dropped_kept() const noexcept {
        return static_cast<std::int64_t>(std::min<std::size_t>(options_.outbox->dropped_ids_kept, 1'000'000'000));
    }

    void check_events(std::string_view op, const std::vector<event>* events) const {
        if (events && !events->empty() && !options_.outbox)
            throw_error(error::invalid_argument, "redis_store." + std::string(op) +
                                                     ": a write carried events but the outbox is off "
                                                     "(redis_store_options.outbox)");
    }

    void check_outbox(std::string_view op) const {
        if (!options_.outbox)
            throw_error(error::invalid_argument,
                        "redis_store." + std::string(op) + ": the outbox is off (redis_store_options.outbox)");
    }

    void check_partition(std::string_view op, unsigned p) const {
        check_outbox(op);
        if (p >= options_.partitions)
            throw_error(error::invalid_argument, "redis_store." + std::string(op) + ": partition " + std::to_string(p) +
                                                     " does not exist (it has " + std::to_string(options_.partitions) +
                                                     ")");
    }

    /// The first position after `pos`, or invalid_argument naming the stream.
    static std::string position_after(std::string_view op, const std::string& key, std::string_view pos) {
        try {
            return detail::redis_store::next_position(pos);
        } catch (const boost::system::system_error& e) {
            throw_error(error::invalid_argument,
                        "redis_store." + std::string(op) + ": key '" + key + "': " + what_without_code(e));
        }
    }

    /// refuse_writes and a full outbox: the write changed nothing.
    [[noreturn]] void refused(std::string_view op, const std::string& id, std::uint64_t length,
                              const std::vector<event>* events) const {
        const unsigned p = client_.partition_of(id);
        throw sessionkit::system_error(
            error::backend_unavailable,
            "redis " + client_.conn().name() + ": redis_store." + std::string(op) + ": session '" + id +
                "': outbox partition " + std::to_string(p) + " (key '" + outbox_key(p) + "') is full (" +
                std::to_string(length) + " events, " + std::to_string(events ? events->size() : 0) +
                " more would pass max_events " + std::to_string(options_.outbox->max_events) +
                ", overflow refuse_writes): the write was refused, nothing changed",
            {"redis " + client_.conn().name(), "redis_store." + std::string(op), outbox_key(p), {}});
    }

    /// Entries of an outbox that are not events (someone else wrote them):
    /// reported, counted, and removed so that they block nothing.
    awaitable<void> remove_unreadable(const std::string& key,
                                      const std::vector<detail::redis_store::outbox_read::unreadable>& bad) {
        redis::request req("XDEL read_outbox", key);
        redis::resp::command cmd("XDEL");
        cmd.arg(key);
        for (const auto& b : bad) {
            ++corrupt_seen_;
            if (options_.on_corrupt)
                options_.on_corrupt(key, "redis_store.read_outbox: entry " + b.position + " of '" + key +
                                             "' is not an event (" + b.problem + "); removed");
            cmd.arg(b.position);
        }
        req.push(cmd);
        auto replies = co_await client_.conn().exec(std::move(req));
        if (replies[0].is_error()) client_.fail_reply(replies[0], "read_outbox", key);
    }

    /// Every partition's earliest `limit` entries of `index` with a score
    /// in [min, max], merged; the earliest `limit` overall, by partition.
    awaitable<std::map<unsigned, std::vector<std::string>>> candidates(std::string_view index, const std::string& min,
                                                                       const std::string& max, std::size_t limit,
                                                                       std::string_view op) {
        if (limit == 0) co_return std::map<unsigned, std::vector<std::string>>{};
        redis::request req("ZRANGEBYSCORE " + std::string(op));
        for (unsigned p = 0; p < options_.partitions; ++p)
            req.push("ZRANGEBYSCORE", base_of(p) + std::string(index), min, max, "WITHSCORES", "LIMIT", "0",
                     static_cast<std::int64_t>(limit));
        auto replies = co_await client_.conn().exec(std::move(req));
        std::vector<detail::redis_store::candidate> all;
        for (unsigned p = 0; p < replies.size(); ++p) {
            const std::string key = base_of(p) + std::string(index);
            if (replies[p].is_error()) client_.fail_reply(replies[p], op, key);
            client_.decoded_at(op, key, [&] { detail::redis_store::add_candidates(all, replies[p], p); });
        }
        co_return detail::redis_store::pick_earliest(std::move(all), limit);
    }

    /// Candidates, then the script that claims them; again while entries
    /// re-filed by a touch (see the touch script) took places in the batch,
    /// so a sweep hands out `limit` sessions whenever that many are due.
    /// With `event_ids`, each candidate id is followed by a fresh event id
    /// (claim_warnings with the outbox).
    awaitable<std::vector<session>> sweep(const script& s, std::string_view index, const std::string& min,
                                          const std::string& max, const std::vector<std::string>& head,
                                          std::size_t limit, std::string_view op, bool event_ids = false) {
        std::vector<session> out;
        for (int round = 0; round < 16 && out.size() < limit; ++round) {
            const std::size_t want = limit - out.size();
            auto picked = co_await candidates(index, min, max, want, op);
            std::size_t n = 0;
            std::vector<std::vector<std::string>> args(options_.partitions);
            for (auto& [p, ids] : picked) {
                n += ids.size();
                args[p] = head;
                for (auto& id : ids) {
                    args[p].push_back(id);
                    if (event_ids) args[p].push_back(generate_id());
                }
            }
            auto got = co_await act_on(s, std::move(args), op);
            for (auto& rec : got) out.push_back(std::move(rec));
            if (n < want) break;  // every candidate was seen
        }
        co_return out;
    }

    /// Runs a sweep script on each partition that has candidates (one
    /// pipelined write) and decodes the records it returns.
    awaitable<std::vector<session>> act_on(const script& s, std::vector<std::vector<std::string>> args,
                                           std::string_view op) {
        std::vector<session> out;
        redis::request req("EVALSHA " + std::string(op));
        std::vector<unsigned> order;
        for (unsigned p = 0; p < args.size(); ++p) {
            if (args[p].empty()) continue;
            auto cmd = client_.eval(s, base_of(p));
            for (auto& a : args[p]) cmd.arg(a);
            req.push(cmd);
            order.push_back(p);
        }
        if (order.empty()) co_return out;
        auto replies = co_await client_.run(std::move(req), s, op);
        for (std::size_t i = 0; i < replies.size(); ++i) {
            if (replies[i].is_error()) client_.fail_reply(replies[i], op, base_of(order[i]));
            for (auto& entry : replies[i].elements)
                if (auto rec = decode_entry(entry, op, order[i])) out.push_back(std::move(*rec));
        }
        // Earliest first across partitions, as the candidates were picked.
        std::stable_sort(out.begin(), out.end(),
                         [](const session& a, const session& b) { return a.idle_deadline < b.idle_deadline; });
        co_return out;
    }

    /// One entry of a sweep or list: the record, or nothing when it cannot
    /// be read (reported to on_corrupt, counted, and skipped).
    std::optional<session> decode_entry(const resp_value& reply, std::string_view op, unsigned p) {
        auto e = client_.decoded_at(op, base_of(p), [&] { return detail::redis_store::decode_entry(reply); });
        if (e.record) return std::move(e.record);
        ++corrupt_seen_;
        const std::string key = redis_store_keys::record_key(base_of(p), e.id);
        if (options_.on_corrupt)
            options_.on_corrupt(key, e.script_found_it ? e.problem : client_.corrupt_message(op, e.id, e.problem));
        return std::nullopt;
    }

    detail::redis_store::script_client client_;
    redis_store_options options_;
    std::atomic<std::uint64_t> corrupt_seen_{0};
    sessionkit::outbox_signal signal_;
};

static_assert(session_store<redis_store>);
static_assert(output_log<redis_store>);
static_assert(outbox_store<redis_store>);

}  // namespace sessionkit

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
// doc/redis.md has the key layout, the scripts and the failure behaviour.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/detail/cursor.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
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

    awaitable<create_result> create(const session& rec) {
        check_id(rec.id);
        std::string id = rec.id;
        auto cmd = client_.eval(scripts().create, partition_base(id));
        cmd.arg(id).arg(to_unix_ms(rec.last_active)).arg(margin_ms());
        for (auto& f : redis_store_codec::encode_record(rec)) cmd.arg(f.name).arg(f.value);
        auto reply = co_await client_.run_one(std::move(cmd), "create", id);
        if (reply.is_error()) client_.fail_reply(reply, "create", id);
        co_return client_.decoded("create", id, [&] { return detail::redis_store::decode_create(reply, rec); });
    }

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
        check_id(rec.id);
        std::string id = rec.id;
        auto cmd = client_.eval(scripts().update, partition_base(id));
        cmd.arg(id).arg(std::to_string(expected_version)).arg(to_unix_ms(rec.last_active)).arg(margin_ms());
        for (auto& f : redis_store_codec::encode_record(rec)) cmd.arg(f.name).arg(f.value);
        auto reply = co_await client_.run_one(std::move(cmd), "update", id);
        if (reply.is_error()) client_.fail_reply(reply, "update", id);
        co_return client_.decoded("update", id, [&] { return detail::redis_store::decode_update(reply); });
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

    awaitable<std::vector<session>> claim_warnings(time_point now, time_point horizon, std::size_t limit) {
        if (horizon <= now) co_return std::vector<session>{};
        const std::string min = "(" + std::to_string(to_unix_ms(now)), max = std::to_string(to_unix_ms(horizon));
        const std::vector<std::string> head = {std::to_string(to_unix_ms(now)), max};
        co_return co_await sweep(scripts().claim_warnings, redis_store_keys::warn_index, min, max, head, limit,
                                 "claim_warnings");
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

    /// Records met by sweeps or list that could not be read.
    std::uint64_t corrupt_records() const noexcept { return corrupt_seen_; }

private:
    using script = redis_store_scripts::script;
    using resp_value = redis::resp::value;

    static const redis_store_scripts::script_set& scripts() { return redis_store_scripts::all(); }
    std::string base_of(unsigned p) const { return client_.base_of(p); }
    std::int64_t margin_ms() const noexcept { return options_.ttl_margin.count(); }

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
    awaitable<std::vector<session>> sweep(const script& s, std::string_view index, const std::string& min,
                                          const std::string& max, const std::vector<std::string>& head,
                                          std::size_t limit, std::string_view op) {
        std::vector<session> out;
        for (int round = 0; round < 16 && out.size() < limit; ++round) {
            const std::size_t want = limit - out.size();
            auto picked = co_await candidates(index, min, max, want, op);
            std::size_t n = 0;
            std::vector<std::vector<std::string>> args(options_.partitions);
            for (auto& [p, ids] : picked) {
                n += ids.size();
                args[p] = head;
                args[p].insert(args[p].end(), ids.begin(), ids.end());
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
};

static_assert(session_store<redis_store>);
static_assert(output_log<redis_store>);

}  // namespace sessionkit

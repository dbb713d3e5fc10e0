// sessionkit/store/redis.hpp — session_store on Redis (component
// sessionkit::redis).
//
// Each operation on one session is one Lua script (redis/scripts.hpp), run
// by EVALSHA over a shared, auto-pipelining connection: atomic and one
// round trip. Sessions are spread over `partitions` hash-tagged partitions
// "<prefix>{<n>}:" (n = FNV-1a(id) mod partitions): each partition holds
// its records and their indexes in one Redis Cluster slot. Operations that
// span partitions (list, stats, the janitor's sweeps) send one command per
// partition in a single pipelined write.
//
// The janitor's sweeps read candidates from every partition's index first,
// pick the earliest `limit`, then claim them with one script per partition
// that re-checks each candidate: two round trips, so that a claim returns
// at most `limit` sessions, earliest first, each to exactly one janitor.
// doc/redis.md has the key layout, the scripts and the failure behaviour.
#pragma once

#include <sessionkit/concepts.hpp>
#include <sessionkit/detail/cursor.hpp>
#include <sessionkit/detail/fnv.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/id.hpp>
#include <sessionkit/output.hpp>
#include <sessionkit/redis/connection.hpp>
#include <sessionkit/redis/scripts.hpp>

#include <openssl/sha.h>

#include <algorithm>
#include <charconv>
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

namespace detail::redis_store {

namespace resp = sessionkit::detail::resp;

inline constexpr std::string_view field_names[] = {"doc", "status", "version", "last_active",
                                                   "idle_deadline", "warning_sent", "end_reason", "ended_at"};

/// A script and its SHA1, which EVALSHA names it by.
struct script {
    std::string text;
    std::string sha;

    explicit script(std::string body) : text(std::move(body)) {
        unsigned char digest[SHA_DIGEST_LENGTH];
        SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
        static constexpr char hex[] = "0123456789abcdef";
        for (unsigned char b : digest) {
            sha.push_back(hex[b >> 4]);
            sha.push_back(hex[b & 15]);
        }
    }
    static script with_prelude(std::string_view body) {
        return script(std::string(redis::scripts::prelude) + std::string(body));
    }
};

struct scripts {
    script create = script::with_prelude(redis::scripts::create);
    script update = script::with_prelude(redis::scripts::update);
    script touch{std::string(redis::scripts::touch)};  // the hot path: no prelude
    script erase = script::with_prelude(redis::scripts::erase);
    script claim_expired = script::with_prelude(redis::scripts::claim_expired);
    script claim_warnings = script::with_prelude(redis::scripts::claim_warnings);
    script purge_ended = script::with_prelude(redis::scripts::purge_ended);
    script list = script::with_prelude(redis::scripts::list);
    script append_output = script::with_prelude(redis::scripts::append_output);
    script read_output = script::with_prelude(redis::scripts::read_output);
    script try_lock{std::string(redis::scripts::try_lock)};
    script unlock{std::string(redis::scripts::unlock)};
};

inline const scripts& all_scripts() {
    static const scripts s;
    return s;
}

/// FNV-1a, 32 bit: stable across processes, languages and versions, so
/// every instance (and every tool) agrees where an id lives.
constexpr std::uint32_t fnv1a(std::string_view s) noexcept { return sessionkit::detail::fnv1a_32(s); }

inline std::string ms_text(time_point t) { return std::to_string(to_unix_ms(t)); }

} // namespace detail::redis_store

class redis_store {
public:
    redis_store(std::shared_ptr<redis::connection> conn, redis_store_options options = {})
        : conn_(std::move(conn)), options_(std::move(options)) {
        if (!conn_) throw_error(error::invalid_argument, "redis_store: no connection");
        if (options_.partitions < 1 || options_.partitions > 1024)
            throw_error(error::invalid_argument, "redis_store: partitions must be 1..1024, got " +
                                                     std::to_string(options_.partitions));
        if (options_.prefix.find_first_of("{}") != std::string::npos)
            throw_error(error::invalid_argument, "redis_store: prefix '" + sessionkit::detail::printable(options_.prefix) +
                                                     "' must not contain '{' or '}' (they would change the hash slot)");
        if (options_.ttl_margin <= milliseconds::zero())
            throw_error(error::invalid_argument, "redis_store: ttl_margin must be positive");
        // Redis strings stop at 512 MB; the log may hold twice the limit.
        if (options_.output_limit == 0 || options_.output_limit > (std::size_t{128} << 20))
            throw_error(error::invalid_argument, "redis_store: output_limit must be 1 byte..128 MiB, got " +
                                                     std::to_string(options_.output_limit));
    }
    /// Opens its own connection.
    redis_store(boost::asio::any_io_executor ex, redis::config cfg, redis_store_options options = {})
        : redis_store(std::make_shared<redis::connection>(std::move(ex), std::move(cfg)), std::move(options)) {}

    redis::connection& connection() noexcept { return *conn_; }
    const redis_store_options& options() const noexcept { return options_; }

    /// "<prefix>{<n>}:" of the partition holding `id`.
    std::string partition_base(std::string_view id) const { return base_of(partition_of(id)); }
    /// The key of a session's record.
    std::string key_of(std::string_view id) const { return partition_base(id) + "s:" + std::string(id); }

    // ---- session_store --------------------------------------------------

    awaitable<create_result> create(const session& rec) {
        check_id(rec.id);
        const auto now_ms = to_unix_ms(rec.last_active);
        std::string id = rec.id;
        auto cmd = eval(scripts().create, partition_base(id));
        cmd.arg(id).arg(now_ms).arg(margin_ms());
        add_fields(cmd, rec);
        auto reply = co_await run_one(std::move(cmd), "create", id);
        auto& r = expect_array(reply, "create", id, 2);
        if (r.elements[0].as_integer() == 1) {
            session made = rec;
            made.version = static_cast<std::uint64_t>(r.elements[1].as_integer());
            co_return create_result{true, std::move(made)};
        }
        co_return create_result{false, decode(id, r.elements[1], "create")};
    }

    awaitable<std::optional<session>> get(std::string_view id_view) {
        std::string id(id_view);
        if (!is_valid_id(id)) co_return std::nullopt;
        detail::resp::command cmd("HMGET");
        cmd.arg(key_of(id));
        for (auto f : detail::redis_store::field_names) cmd.arg(f);
        auto reply = co_await run_one(std::move(cmd), "get", id);
        if (reply.is_error()) fail_reply(reply, "get", id);
        if (reply.kind != detail::resp::type::array || reply.elements.empty() || reply.elements[0].is_null() ||
            reply.elements[1].is_null())
            co_return std::nullopt;
        co_return decode(id, reply, "get");
    }

    awaitable<std::optional<touch_result>> touch(std::string_view id_view, time_point now) {
        std::string id(id_view);
        if (!is_valid_id(id)) co_return std::nullopt;
        auto cmd = eval(scripts().touch, partition_base(id));
        cmd.arg(id).arg(to_unix_ms(now)).arg(margin_ms());
        auto reply = co_await run_one(std::move(cmd), "touch", id);
        if (reply.is_null()) co_return std::nullopt;
        auto& r = expect_array(reply, "touch", id, 5);
        try {
            touch_result t;
            t.status = status_of(r.elements[0].as_string());
            t.last_active = from_unix_ms(r.elements[1].as_integer());
            t.idle_deadline = from_unix_ms(r.elements[2].as_integer());
            if (!r.elements[3].as_string().empty()) t.absolute_deadline = from_unix_ms(r.elements[3].as_integer());
            t.version = static_cast<std::uint64_t>(r.elements[4].as_integer());
            co_return t;
        } catch (const boost::system::system_error& e) {
            corrupt("touch", id, what_without_code(e));
        }
    }

    awaitable<update_result> update(const session& rec, std::uint64_t expected_version) {
        check_id(rec.id);
        std::string id = rec.id;
        auto cmd = eval(scripts().update, partition_base(id));
        cmd.arg(id).arg(std::to_string(expected_version)).arg(to_unix_ms(rec.last_active)).arg(margin_ms());
        add_fields(cmd, rec);
        auto reply = co_await run_one(std::move(cmd), "update", id);
        if (reply.is_error()) fail_reply(reply, "update", id);
        switch (reply.as_integer()) {
        case 0: co_return update_result::updated;
        case 1: co_return update_result::not_found;
        case 2: co_return update_result::version_conflict;
        case 3: co_return update_result::final_state;
        }
        throw_error(error::protocol_error, "redis_store.update: session '" + id + "': unexpected script reply");
    }

    awaitable<bool> erase(std::string_view id_view) {
        std::string id(id_view);
        if (!is_valid_id(id)) co_return false;
        auto cmd = eval(scripts().erase, partition_base(id));
        cmd.arg(id);
        auto reply = co_await run_one(std::move(cmd), "erase", id);
        if (reply.is_error()) fail_reply(reply, "erase", id);
        co_return reply.as_integer() == 1;
    }

    awaitable<std::vector<session>> claim_expired(time_point now, std::size_t limit, milliseconds lease) {
        if (lease <= milliseconds::zero())
            throw_error(error::invalid_argument, "redis_store.claim_expired: lease must be positive");
        // Arguments named before co_await (GCC 12, doc/decisions.md).
        const std::string min = "-inf", max = std::to_string(to_unix_ms(now));
        const std::vector<std::string> head = {max, std::to_string(lease.count()), std::to_string(margin_ms())};
        co_return co_await sweep(scripts().claim_expired, "live", min, max, head, limit, "claim_expired");
    }

    awaitable<std::vector<session>> claim_warnings(time_point now, time_point horizon, std::size_t limit) {
        if (horizon <= now) co_return std::vector<session>{};
        const std::string min = "(" + std::to_string(to_unix_ms(now)), max = std::to_string(to_unix_ms(horizon));
        const std::vector<std::string> head = {std::to_string(to_unix_ms(now)), max};
        co_return co_await sweep(scripts().claim_warnings, "warn", min, max, head, limit, "claim_warnings");
    }

    awaitable<std::size_t> purge_ended(time_point before, std::size_t limit) {
        std::string min = "-inf", max = std::to_string(to_unix_ms(before));
        auto picked = co_await candidates("ended", min, max, limit, "purge_ended");
        if (picked.empty()) co_return 0;
        redis::request req("EVALSHA purge_ended");
        std::vector<unsigned> order;
        for (auto& [p, ids] : picked) {
            auto cmd = eval(scripts().purge_ended, base_of(p));
            cmd.arg(to_unix_ms(before));
            for (auto& id : ids) cmd.arg(id);
            req.push(cmd);
            order.push_back(p);
        }
        auto replies = co_await run(std::move(req), scripts().purge_ended, "purge_ended");
        std::size_t n = 0;
        for (std::size_t i = 0; i < replies.size(); ++i) {
            if (replies[i].is_error()) fail_reply(replies[i], "purge_ended", base_of(order[i]));
            n += static_cast<std::size_t>(replies[i].as_integer());
        }
        co_return n;
    }

    awaitable<session_page> list(const list_query& q) {
        const std::string after =
            q.cursor.empty() ? std::string{} : sessionkit::detail::id_of_cursor("redis_store.list", q.cursor);
        const std::size_t limit = std::clamp<std::size_t>(q.limit, 1, max_page_size);
        std::string index = "ids";
        std::string want;
        if (q.owner) {
            index = "owner:" + *q.owner;
            if (q.status) want = std::string(to_string(*q.status));
        } else if (q.status) {
            index = "status:" + std::string(to_string(*q.status));
        }
        redis::request req("EVALSHA list");
        for (unsigned p = 0; p < options_.partitions; ++p) {
            auto cmd = eval(scripts().list, base_of(p));
            cmd.arg(index).arg(after).arg(static_cast<std::int64_t>(limit)).arg(want);
            req.push(cmd);
        }
        auto replies = co_await run(std::move(req), scripts().list, "list");
        // Each partition's page is in id order; merge them and keep `limit`.
        std::vector<session> all;
        bool more = false;
        for (unsigned p = 0; p < replies.size(); ++p) {
            if (replies[p].is_error()) fail_reply(replies[p], "list", base_of(p));
            if (replies[p].elements.size() >= limit) more = true;
            for (auto& entry : replies[p].elements)
                if (auto s = decode_entry(entry, "list", p)) all.push_back(std::move(*s));
        }
        std::sort(all.begin(), all.end(), [](const session& a, const session& b) { return a.id < b.id; });
        session_page page;
        if (all.size() > limit) {
            all.resize(limit);
            more = true;
        }
        page.sessions = std::move(all);
        if (more && !page.sessions.empty()) page.next_cursor = sessionkit::detail::cursor_after(page.sessions.back().id);
        co_return page;
    }

    awaitable<store_stats> stats() {
        redis::request req("HGETALL stats");
        for (unsigned p = 0; p < options_.partitions; ++p) req.push("HGETALL", base_of(p) + "stats");
        auto replies = co_await conn_->exec(std::move(req));
        store_stats st;
        for (unsigned p = 0; p < replies.size(); ++p) {
            auto& r = replies[p];
            if (r.is_error()) fail_reply(r, "stats", base_of(p) + "stats");
            // RESP3 answers a map, RESP2 an array: both are key, value, ...
            for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2) {
                std::string_view k = r.elements[i].as_string();
                auto v = static_cast<std::uint64_t>(std::max<std::int64_t>(0, r.elements[i + 1].as_integer()));
                if (k.starts_with("st:")) {
                    if (auto s = parse_status(k.substr(3))) st.by_status[static_cast<std::size_t>(*s)] += v;
                } else if (k == "created_total") st.created_total += v;
                else if (k == "expired_total") st.expired_total += v;
                else if (k == "terminated_total") st.terminated_total += v;
            }
        }
        for (auto n : st.by_status) st.sessions += n;
        co_return st;
    }

    // ---- output_log (output.hpp) ----------------------------------------

    awaitable<bool> append_output(std::string_view id_view, std::string_view bytes) {
        std::string id(id_view);
        if (!is_valid_id(id)) co_return false;
        auto cmd = eval(scripts().append_output, partition_base(id));
        cmd.arg(id).arg(static_cast<std::int64_t>(options_.output_limit)).arg(bytes);
        auto reply = co_await run_one(std::move(cmd), "append_output", id);
        if (reply.is_error()) fail_reply(reply, "append_output", id);
        co_return reply.as_integer() == 1;
    }

    awaitable<std::optional<output_chunk>> read_output(std::string_view id_view, std::uint64_t offset,
                                                       std::size_t max) {
        std::string id(id_view);
        if (!is_valid_id(id)) co_return std::nullopt;
        max = std::min(max, max_output_read);
        auto cmd = eval(scripts().read_output, partition_base(id));
        cmd.arg(id).arg(std::to_string(offset)).arg(static_cast<std::int64_t>(max))
            .arg(static_cast<std::int64_t>(options_.output_limit));
        auto reply = co_await run_one(std::move(cmd), "read_output", id);
        if (reply.is_null()) co_return std::nullopt;
        auto& r = expect_array(reply, "read_output", id, 3);
        output_chunk out;
        out.offset = static_cast<std::uint64_t>(r.elements[0].as_integer());
        const auto end = static_cast<std::uint64_t>(r.elements[1].as_integer());
        if (offset > end)
            throw_error(error::invalid_argument,
                        "redis_store.read_output: session '" + id + "': offset " + std::to_string(offset) +
                            " is past the end of the output (" + std::to_string(end) + " bytes so far)");
        out.data = std::string(r.elements[2].as_string());
        out.dropped = offset < out.offset;
        out.next_offset = out.offset + out.data.size();
        co_return out;
    }

    awaitable<void> ping() { co_await conn_->ping(); }

    awaitable<std::optional<std::string>> try_lock(std::string_view name, milliseconds ttl, time_point now) {
        if (ttl <= milliseconds::zero())
            throw_error(error::invalid_argument, "redis_store.try_lock: ttl must be positive");
        std::string token = generate_id();
        detail::resp::command cmd("EVALSHA");
        cmd.arg(scripts().try_lock.sha).arg(std::int64_t{1}).arg(lock_key(name));
        cmd.arg(to_unix_ms(now)).arg(ttl.count()).arg(token);
        std::string label(name);
        auto reply = co_await run_one(std::move(cmd), "try_lock", label);
        if (reply.is_error()) fail_reply(reply, "try_lock", lock_key(label));
        if (reply.is_null()) co_return std::nullopt;
        co_return token;
    }

    awaitable<bool> unlock(std::string_view name, std::string_view token) {
        detail::resp::command cmd("EVALSHA");
        cmd.arg(scripts().unlock.sha).arg(std::int64_t{1}).arg(lock_key(name)).arg(token);
        std::string label(name);
        auto reply = co_await run_one(std::move(cmd), "unlock", label);
        if (reply.is_error()) fail_reply(reply, "unlock", lock_key(label));
        co_return reply.as_integer() == 1;
    }

    /// Records met by sweeps or list that could not be read.
    std::uint64_t corrupt_records() const noexcept { return corrupt_seen_; }

private:
    using script = detail::redis_store::script;
    using resp_value = detail::resp::value;
    using resp_command = detail::resp::command;

    static const detail::redis_store::scripts& scripts() { return detail::redis_store::all_scripts(); }

    unsigned partition_of(std::string_view id) const noexcept {
        return detail::redis_store::fnv1a(id) % options_.partitions;
    }
    std::string base_of(unsigned p) const { return options_.prefix + "{" + std::to_string(p) + "}:"; }
    std::string lock_key(std::string_view name) const { return options_.prefix + "lock:" + std::string(name); }
    std::int64_t margin_ms() const noexcept { return options_.ttl_margin.count(); }

    static resp_command eval(const script& s, const std::string& base) {
        resp_command cmd("EVALSHA");
        cmd.arg(s.sha).arg(std::int64_t{1}).arg(base);
        return cmd;
    }

    static void add_fields(resp_command& cmd, const session& rec) {
        cmd.arg("doc").arg(serialize(rec));
        cmd.arg("status").arg(to_string(rec.status));
        cmd.arg("owner").arg(rec.owner);
        cmd.arg("last_active").arg(to_unix_ms(rec.last_active));
        cmd.arg("idle_deadline").arg(to_unix_ms(rec.idle_deadline));
        cmd.arg("idle_timeout").arg(rec.idle_timeout.count());
        cmd.arg("absolute_deadline").arg(rec.absolute_deadline ? detail::redis_store::ms_text(*rec.absolute_deadline) : std::string());
        cmd.arg("warning_sent").arg(rec.warning_sent ? "1" : "0");
        cmd.arg("end_reason").arg(rec.end_reason);
        cmd.arg("ended_at").arg(rec.ended_at ? detail::redis_store::ms_text(*rec.ended_at) : std::string());
    }

    /// Sends commands; a script the server does not know (it restarted or
    /// was flushed) is sent again as EVAL, which also caches it.
    awaitable<std::vector<resp_value>> run(redis::request req, const script& s, std::string_view op) {
        auto replies = co_await conn_->exec(req);
        bool missing = false;
        for (auto& r : replies) missing = missing || (r.is_error() && r.text.starts_with("NOSCRIPT"));
        if (!missing) co_return replies;
        co_await load(s, op);
        co_return co_await conn_->exec(std::move(req));
    }

    /// SCRIPT LOAD, for a server that restarted or was flushed.
    awaitable<void> load(const script& s, std::string_view op) {
        redis::request req("SCRIPT LOAD " + std::string(op));
        req.push("SCRIPT", "LOAD", s.text);
        auto loaded = co_await conn_->exec(std::move(req));
        if (loaded[0].is_error())
            throw_error(error::backend_unavailable, "redis_store." + std::string(op) + ": SCRIPT LOAD: " + loaded[0].text);
    }

    /// One command on one session: the hot path (touch, get), so the
    /// request is moved, not copied; it is built again from `cmd` in the
    /// rare case that the script must be loaded first.
    awaitable<resp_value> run_one(resp_command cmd, std::string_view op, const std::string& id) {
        // Errors name the operation and the session: "touch 'abc'".
        redis::request req(std::string(op), id);
        req.push(cmd);
        auto replies = co_await conn_->exec(std::move(req));
        const script* s = nullptr;
        if (replies.front().is_error() && replies.front().text.starts_with("NOSCRIPT") && cmd.name() == "EVALSHA")
            s = script_named(op);
        if (!s) co_return std::move(replies.front());
        co_await load(*s, op);
        redis::request again(std::string(op), id);
        again.push(cmd);
        replies = co_await conn_->exec(std::move(again));
        co_return std::move(replies.front());
    }

    static const script* script_named(std::string_view op) {
        auto& s = scripts();
        if (op == "create") return &s.create;
        if (op == "update") return &s.update;
        if (op == "touch") return &s.touch;
        if (op == "erase") return &s.erase;
        if (op == "append_output") return &s.append_output;
        if (op == "read_output") return &s.read_output;
        if (op == "try_lock") return &s.try_lock;
        if (op == "unlock") return &s.unlock;
        return nullptr;
    }

    /// Every partition's earliest `limit` entries of `index` with a score
    /// in [min, max], merged; the earliest `limit` overall, by partition.
    awaitable<std::map<unsigned, std::vector<std::string>>> candidates(std::string_view index, const std::string& min,
                                                                         const std::string& max, std::size_t limit,
                                                                         std::string_view op) {
        std::map<unsigned, std::vector<std::string>> picked;
        if (limit == 0) co_return picked;
        redis::request req("ZRANGEBYSCORE " + std::string(op));
        for (unsigned p = 0; p < options_.partitions; ++p)
            req.push("ZRANGEBYSCORE", base_of(p) + std::string(index), min, max, "WITHSCORES", "LIMIT", "0",
                     static_cast<std::int64_t>(limit));
        auto replies = co_await conn_->exec(std::move(req));
        struct entry { double score; unsigned partition; std::string id; };
        // RESP3 sends scores as doubles, RESP2 (servers before 6) as strings.
        auto score_of = [](const resp_value& v) {
            if (!v.is_string()) return v.as_double();
            const std::string_view t = v.as_string();
            double d = 0;
            std::from_chars(t.data(), t.data() + t.size(), d);
            return d;
        };
        std::vector<entry> all;
        for (unsigned p = 0; p < replies.size(); ++p) {
            auto& r = replies[p];
            if (r.is_error()) fail_reply(r, op, base_of(p) + std::string(index));
            // RESP2: id, score, id, score...; RESP3: [id, score] pairs.
            if (!r.elements.empty() && r.elements[0].kind == detail::resp::type::array) {
                for (auto& pair : r.elements)
                    if (pair.elements.size() == 2)
                        all.push_back({score_of(pair.elements[1]), p, std::string(pair.elements[0].as_string())});
            } else {
                for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2)
                    all.push_back({score_of(r.elements[i + 1]), p, std::string(r.elements[i].as_string())});
            }
        }
        const std::size_t n = std::min(limit, all.size());
        std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
                          [](const entry& a, const entry& b) { return a.score < b.score || (a.score == b.score && a.id < b.id); });
        for (std::size_t i = 0; i < n; ++i) picked[all[i].partition].push_back(std::move(all[i].id));
        co_return picked;
    }

    /// Candidates, then the script that claims them; again while entries
    /// re-filed by a touch (see scripts::touch) took places in the batch,
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
            auto cmd = eval(s, base_of(p));
            for (auto& a : args[p]) cmd.arg(a);
            req.push(cmd);
            order.push_back(p);
        }
        if (order.empty()) co_return out;
        auto replies = co_await run(std::move(req), s, op);
        for (std::size_t i = 0; i < replies.size(); ++i) {
            if (replies[i].is_error()) fail_reply(replies[i], op, base_of(order[i]));
            for (auto& entry : replies[i].elements)
                if (auto rec = decode_entry(entry, op, order[i])) out.push_back(std::move(*rec));
        }
        // Earliest first across partitions, as the candidates were picked.
        std::stable_sort(out.begin(), out.end(), [](const session& a, const session& b) {
            return a.idle_deadline < b.idle_deadline;
        });
        co_return out;
    }

    /// One {id, fields} or {id, false, error} entry of a sweep or list.
    std::optional<session> decode_entry(const resp_value& entry, std::string_view op, unsigned p) {
        if (entry.elements.size() < 2) throw_error(error::protocol_error, "redis_store." + std::string(op) + ": malformed script reply");
        std::string id(entry.elements[0].as_string());
        const std::string key = base_of(p) + "s:" + id;
        if (entry.elements[1].is_null() || entry.elements[1].kind == detail::resp::type::boolean) {
            report_corrupt(key, entry.elements.size() > 2 ? std::string(entry.elements[2].as_string()) : "unreadable");
            return std::nullopt;
        }
        try {
            return decode(id, entry.elements[1], op);
        } catch (const boost::system::system_error& e) {
            report_corrupt(key, what_without_code(e));
            return std::nullopt;
        }
    }

    void report_corrupt(const std::string& key, const std::string& what) {
        ++corrupt_seen_;
        if (options_.on_corrupt) options_.on_corrupt(key, what);
    }

    /// A record from its hash fields (field_names order). Throws
    /// corrupt_record naming the key and the field.
    session decode(const std::string& id, const resp_value& fields, std::string_view op) const {
        const std::string key = key_of(id);
        if (fields.kind != detail::resp::type::array || fields.elements.size() != std::size(detail::redis_store::field_names))
            corrupt(op, id, "the record is not a hash with the expected fields");
        auto text = [&](std::size_t i) -> std::string_view {
            auto& v = fields.elements[i];
            if (v.is_null()) corrupt(op, id, "field '" + std::string(detail::redis_store::field_names[i]) + "' is missing");
            return v.as_string();
        };
        auto integer = [&](std::size_t i) -> std::int64_t {
            std::string_view t = text(i);
            std::int64_t n = 0;
            auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
            if (t.empty() || ec != std::errc{} || end != t.data() + t.size() || n < 0 || n > max_unix_ms)
                corrupt(op, id, "field '" + std::string(detail::redis_store::field_names[i]) + "' is '" +
                                    sessionkit::detail::printable(t.substr(0, 40)) + "', not a number");
            return n;
        };
        session s;
        try {
            s = parse_session(text(0), id);
        } catch (const boost::system::system_error& e) {
            corrupt(op, id, "field 'doc': " + what_without_code(e));
        }
        auto st = parse_status(text(1));
        if (!st) corrupt(op, id, "field 'status': " + unknown_status_message(text(1)));
        s.status = *st;
        s.version = static_cast<std::uint64_t>(integer(2));
        s.last_active = from_unix_ms(integer(3));
        s.idle_deadline = from_unix_ms(integer(4));
        s.warning_sent = text(5) == "1";
        s.end_reason = std::string(text(6));
        if (text(7).empty()) s.ended_at.reset();
        else s.ended_at = from_unix_ms(integer(7));
        if (s.id != id) corrupt(op, id, "field 'doc' holds session '" + sessionkit::detail::printable(s.id) + "'");
        return s;
    }

    static session_status status_of(std::string_view name) {
        auto st = parse_status(name);
        if (!st) throw_error(error::corrupt_record, unknown_status_message(name));
        return *st;
    }

    [[noreturn]] void corrupt(std::string_view op, const std::string& id, const std::string& what) const {
        throw_error(error::corrupt_record, "redis_store." + std::string(op) + ": session '" + id + "' (key '" +
                                               sessionkit::detail::printable(key_of(id)) + "'): " + what);
    }

    /// A Redis error reply: a wrong-typed key is a corrupt record, anything
    /// else the backend failing. Both name the key.
    [[noreturn]] void fail_reply(const resp_value& reply, std::string_view op, const std::string& id_or_key) const {
        const std::string key = id_or_key.find('{') == std::string::npos && is_valid_id(id_or_key) ? key_of(id_or_key) : id_or_key;
        const std::string text = sessionkit::detail::printable(std::string_view(reply.text).substr(0, 300));
        const bool wrong_type = reply.text.find("WRONGTYPE") != std::string::npos ||
                                reply.text.starts_with("CORRUPT");
        throw_error(wrong_type ? error::corrupt_record : error::backend_unavailable,
                    "redis " + conn_->name() + ": redis_store." + std::string(op) + ": key '" +
                        sessionkit::detail::printable(key) + "': " + text);
    }

    const resp_value& expect_array(const resp_value& reply, std::string_view op, const std::string& id,
                                   std::size_t n) const {
        if (reply.is_error()) fail_reply(reply, op, id);
        if (reply.kind != detail::resp::type::array || reply.elements.size() < n)
            throw_error(error::protocol_error, "redis " + conn_->name() + ": redis_store." + std::string(op) +
                                                   ": session '" + id + "': unexpected reply type " +
                                                   std::string(detail::resp::to_string(reply.kind)));
        return reply;
    }

    std::shared_ptr<redis::connection> conn_;
    redis_store_options options_;
    std::atomic<std::uint64_t> corrupt_seen_{0};
};

static_assert(session_store<redis_store>);
static_assert(output_log<redis_store>);

} // namespace sessionkit

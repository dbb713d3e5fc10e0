// sessionkit/store/redis_cache.hpp — a session_cache on Redis (component
// sessionkit::redis): what write_through keeps in front of PostgreSQL.
//
// One hash per session, `<prefix>{<id>}` (its own cluster slot):
//   v st  the primary's version of the copy, and its status
//   doc   the record as the primary wrote it (the JSON form)
//   pla   last_active as the primary holds it
//   la dl ws   last_active, idle_deadline and warning_sent as slides left them
//   live to abs   whether slides apply, the idle timeout, the absolute deadline
// put and slide are Lua scripts (atomic, one round trip, EVALSHA with a
// reload when the server lost them); a slide reads and returns the small
// fields only, never `doc`; load is one HMGET, forget one DEL.
// A copy lives idle_timeout + margin past its last put or slide, so a
// forgotten write_through leaves nothing behind for long.
// doc/write_through.md has the layout and the scripts' arguments.
#pragma once

#include <sessionkit/cache.hpp>
#include <sessionkit/concepts.hpp>
#include <sessionkit/error.hpp>
#include <sessionkit/redis/connection.hpp>
#include <sessionkit/session.hpp>
#include <sessionkit/store/redis/codec.hpp>
#include <sessionkit/store/redis/detail/sha1_hex.hpp>

#include <boost/json/parse.hpp>

#include <charconv>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace sessionkit {

struct redis_cache_options {
    /// Every key starts with this; the session id follows in braces.
    std::string prefix = "sessioncache:";
    /// How long past its idle timeout a copy outlives its last write.
    milliseconds margin = std::chrono::hours{1};
};

namespace detail::redis_cache {

/// put: KEYS[1] the copy; ARGV version, doc, last_active, idle_deadline,
/// warning_sent (0/1), live (0/1), idle_timeout, absolute ('' none), ttl,
/// status.
/// Returns 1 when stored, 0 when the copy holds that version or a newer.
inline constexpr std::string_view put = R"lua(
local k = KEYS[1]
local v = redis.call('HGET', k, 'v')
if v and tonumber(v) >= tonumber(ARGV[1]) then return 0 end
local la, dl = tonumber(ARGV[3]), tonumber(ARGV[4])
if v and ARGV[6] == '1' and redis.call('HGET', k, 'live') == '1' then
  local cla = tonumber(redis.call('HGET', k, 'la'))
  if cla and cla > la then
    la = cla
    dl = la + tonumber(ARGV[7])
    if ARGV[8] ~= '' and dl > tonumber(ARGV[8]) then dl = tonumber(ARGV[8]) end
  end
end
redis.call('DEL', k)
redis.call('HSET', k, 'v', ARGV[1], 'doc', ARGV[2], 'pla', ARGV[3], 'la', la, 'dl', dl, 'ws', ARGV[5],
           'live', ARGV[6], 'to', ARGV[7], 'abs', ARGV[8], 'st', ARGV[10])
redis.call('PEXPIRE', k, ARGV[9])
return 1
)lua";

/// slide: KEYS[1] the copy; ARGV now, margin (the copy then lives its idle
/// timeout plus the margin). Returns what the copy held before the slide
/// as {v, st, pla, la, dl, ws, to, abs}, or nil when there is none.
inline constexpr std::string_view slide = R"lua(
local f = redis.call('HMGET', KEYS[1], 'v', 'st', 'pla', 'la', 'dl', 'ws', 'live', 'to', 'abs')
if not f[1] then return false end
if f[7] == '1' then
  local now = tonumber(ARGV[1])
  local la = tonumber(f[4])
  if now > la then la = now end
  local dl = la + tonumber(f[8])
  if f[9] ~= '' and dl > tonumber(f[9]) then dl = tonumber(f[9]) end
  redis.call('HSET', KEYS[1], 'la', la, 'dl', dl, 'ws', '0')
  redis.call('PEXPIRE', KEYS[1], tonumber(f[8]) + tonumber(ARGV[2]))
end
return {f[1], f[2], f[3], f[4], f[5], f[6], f[8], f[9]}
)lua";

}  // namespace detail::redis_cache

class redis_cache {
public:
    redis_cache(std::shared_ptr<redis::connection> conn, redis_cache_options options = {})
        : conn_(std::move(conn)), options_(std::move(options)), put_sha_(sha(detail::redis_cache::put)),
          slide_sha_(sha(detail::redis_cache::slide)) {
        if (!conn_) throw_error(error::invalid_argument, "redis_cache: no connection");
        if (options_.prefix.find_first_of("{}") != std::string::npos)
            throw_error(error::invalid_argument, "redis_cache: prefix '" + options_.prefix +
                                                     "' must not contain '{' or '}' (they would change the hash slot)");
        if (options_.margin <= milliseconds::zero())
            throw_error(error::invalid_argument, "redis_cache: margin must be positive");
    }

    /// The key of a session's copy.
    std::string key_of(std::string_view id) const { return options_.prefix + "{" + std::string(id) + "}"; }
    redis::connection& connection() noexcept { return *conn_; }

    awaitable<std::optional<cached_session>> load(std::string_view id_view) {
        std::string id(id_view);
        redis::request req("redis_cache.load", id);
        req.push("HMGET", key_of(id), "v", "doc", "pla", "la", "dl", "ws");
        auto replies = co_await conn_->exec(std::move(req));
        co_return decode("load", id, replies.front());
    }

    awaitable<bool> put(const session& rec) {
        const bool live = !is_final(rec.status) && rec.status != session_status::stopping;
        redis::resp::command cmd("EVALSHA");
        cmd.arg(put_sha_).arg(std::int64_t{1}).arg(key_of(rec.id));
        cmd.arg(static_cast<std::int64_t>(rec.version)).arg(serialize(rec)).arg(to_unix_ms(rec.last_active));
        cmd.arg(to_unix_ms(rec.idle_deadline)).arg(std::string(rec.warning_sent ? "1" : "0"));
        cmd.arg(std::string(live ? "1" : "0")).arg(static_cast<std::int64_t>(rec.idle_timeout.count()));
        cmd.arg(rec.absolute_deadline ? std::to_string(to_unix_ms(*rec.absolute_deadline)) : std::string());
        cmd.arg(ttl(rec.idle_timeout)).arg(std::string(to_string(rec.status)));
        auto reply = co_await script("put", rec.id, std::move(cmd), detail::redis_cache::put);
        co_return reply.integer == 1;
    }

    awaitable<std::optional<cached_touch>> slide(std::string_view id_view, time_point now) {
        std::string id(id_view);
        redis::resp::command cmd("EVALSHA");
        cmd.arg(slide_sha_).arg(std::int64_t{1}).arg(key_of(id));
        cmd.arg(to_unix_ms(now)).arg(static_cast<std::int64_t>(options_.margin.count()));
        auto reply = co_await script("slide", id, std::move(cmd), detail::redis_cache::slide);
        co_return decode_touch(id, reply);
    }

    awaitable<void> forget(std::string_view id_view) {
        std::string id(id_view);
        redis::request req("redis_cache.forget", id);
        req.push("DEL", key_of(id));
        auto replies = co_await conn_->exec(std::move(req));
        if (replies.front().is_error()) fail("forget", id, replies.front().text);
    }

    /// Drops every copy under the prefix (SCAN + UNLINK, in batches).
    awaitable<void> clear() {
        std::string cursor = "0";
        do {
            redis::request req("redis_cache.clear");
            req.push("SCAN", cursor, "MATCH", options_.prefix + "{*", "COUNT", "1000");
            auto replies = co_await conn_->exec(std::move(req));
            const auto& r = replies.front();
            if (r.is_error() || r.elements.size() != 2) fail("clear", {}, r.is_error() ? r.text : "bad SCAN reply");
            cursor = r.elements[0].text;
            if (!r.elements[1].elements.empty()) {
                redis::resp::command unlink("UNLINK");
                for (const auto& k : r.elements[1].elements) unlink.arg(k.text);
                redis::request del("redis_cache.clear");
                del.push(unlink);
                co_await conn_->exec(std::move(del));
            }
        } while (cursor != "0");
    }

    awaitable<void> ping() {
        redis::request req("redis_cache.ping");
        req.push("PING");
        auto replies = co_await conn_->exec(std::move(req));
        if (replies.front().is_error()) fail("ping", {}, replies.front().text);
    }

private:
    static std::string sha(std::string_view text) { return sessionkit::detail::redis_store::sha1_hex(text); }

    std::int64_t ttl(milliseconds idle_timeout) const {
        return static_cast<std::int64_t>((idle_timeout + options_.margin).count());
    }

    [[noreturn]] void fail(std::string_view op, std::string_view id, std::string_view what) const {
        const std::string subject = id.empty() ? std::string() : " '" + std::string(id) + "'";
        throw_error(what.find("WRONGTYPE") != std::string_view::npos ? error::corrupt_record
                                                                     : error::backend_unavailable,
                    "redis " + conn_->name() + ": redis_cache." + std::string(op) + subject + ": " +
                        sessionkit::detail::printable(what.substr(0, 300)));
    }

    // EVALSHA; a script the server lost (restart, flush) is loaded again.
    awaitable<redis::resp::value> script(std::string_view op, const std::string& id, redis::resp::command cmd,
                                         std::string_view text) {
        redis::request req("redis_cache." + std::string(op), id);
        req.push(cmd);
        auto replies = co_await conn_->exec(std::move(req));
        if (replies.front().is_error() && replies.front().text.starts_with("NOSCRIPT")) {
            redis::request load("SCRIPT LOAD redis_cache." + std::string(op));
            load.push("SCRIPT", "LOAD", std::string(text));
            auto loaded = co_await conn_->exec(std::move(load));
            if (loaded.front().is_error()) fail(op, id, loaded.front().text);
            redis::request again("redis_cache." + std::string(op), id);
            again.push(cmd);
            replies = co_await conn_->exec(std::move(again));
        }
        if (replies.front().is_error()) fail(op, id, replies.front().text);
        co_return std::move(replies.front());
    }

    // Reads a copy's reply: `fields` values, each checked, every complaint
    // naming the operation, the session and the field.
    struct reply_reader {
        const redis_cache& cache;
        std::string_view op;
        const std::string& id;
        const redis::resp::value& r;

        /// False for "no copy"; throws unless the reply has `fields` values.
        bool present(std::size_t fields) const {
            if (r.is_error()) cache.fail(op, id, r.text);
            if (r.is_null() || r.elements.empty() || r.elements[0].is_null()) return false;
            if (r.elements.size() != fields)
                corrupt("the copy has " + std::to_string(r.elements.size()) + " fields, not " + std::to_string(fields));
            return true;
        }
        [[noreturn]] void corrupt(const std::string& what) const {
            throw_error(error::corrupt_record,
                        "redis " + cache.conn_->name() + ": redis_cache." + std::string(op) + " '" + id + "': " + what);
        }
        /// A time in ms, a version or a timeout: a whole number 0..max_unix_ms.
        std::int64_t number(std::size_t i, const char* field) const {
            const auto& t = r.elements[i].text;
            std::int64_t n = 0;
            auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
            if (ec != std::errc{} || end != t.data() + t.size() || n < 0 || n > max_unix_ms)
                corrupt(std::string("field '") + field + "' is not a number: '" + sessionkit::detail::printable(t) +
                        "'");
            return n;
        }
    };

    // What slide returned: {v, st, pla, la, dl, ws, to, abs}.
    std::optional<cached_touch> decode_touch(const std::string& id, const redis::resp::value& r) const {
        const reply_reader read{*this, "slide", id, r};
        if (!read.present(8)) return std::nullopt;
        auto corrupt = [&](const std::string& what) { read.corrupt(what); };
        auto number = [&](std::size_t i, const char* field) { return read.number(i, field); };
        cached_touch t;
        t.version = static_cast<std::uint64_t>(number(0, "v"));
        auto status = parse_status(r.elements[1].text);
        if (!status) corrupt("field 'st' is not a status: '" + sessionkit::detail::printable(r.elements[1].text) + "'");
        t.status = *status;
        t.primary_last_active = from_unix_ms(number(2, "pla"));
        t.last_active = from_unix_ms(number(3, "la"));
        t.idle_deadline = from_unix_ms(number(4, "dl"));
        t.warning_sent = r.elements[5].text == "1";
        t.idle_timeout = milliseconds{number(6, "to")};
        if (!r.elements[7].text.empty()) t.absolute_deadline = from_unix_ms(number(7, "abs"));
        return t;
    }

    std::optional<cached_session> decode(std::string_view op, const std::string& id,
                                         const redis::resp::value& r) const {
        const reply_reader read{*this, op, id, r};
        if (!read.present(6)) return std::nullopt;
        auto corrupt = [&](const std::string& what) { read.corrupt(what); };
        auto number = [&](std::size_t i, const char* field) { return read.number(i, field); };
        cached_session c;
        boost::system::error_code ec;
        auto doc = boost::json::parse(r.elements[1].text, ec);
        if (ec) corrupt("field 'doc' is not JSON");
        try {
            c.record = session_from_json(doc, id);
        } catch (const boost::system::system_error& e) {
            corrupt(e.what());
        }
        c.record.version = static_cast<std::uint64_t>(number(0, "v"));
        c.primary_last_active = from_unix_ms(number(2, "pla"));
        c.record.last_active = from_unix_ms(number(3, "la"));
        c.record.idle_deadline = from_unix_ms(number(4, "dl"));
        c.record.warning_sent = r.elements[5].text == "1";
        return c;
    }

    std::shared_ptr<redis::connection> conn_;
    redis_cache_options options_;
    std::string put_sha_;
    std::string slide_sha_;
};

static_assert(session_cache<redis_cache>);

}  // namespace sessionkit

// sessionkit/store/redis/detail/lua_records.hpp — the Lua of redis_store's
// operations on one session (create, update, touch, erase, its output log)
// and of its locks, with the prelude every script but touch and the locks
// starts with. Each store operation on a session is one script, so it is
// atomic and one round trip; scripts.hpp names them and computes their SHA.
// The sweeps and list are in lua_sweeps.hpp. doc/redis.md describes the
// key layout they maintain (keys.hpp names the keys on the C++ side).
//
// Every script gets one declared key, KEYS[1] = the partition's base
// "<prefix>{<partition>}:", and derives the keys it touches from it. They
// all share the hash tag, so they live in one slot (Redis Cluster runs the
// script on the node owning that slot).
//
// Times are milliseconds since the epoch, passed in by the caller's clock
// (scripts never read the server's clock). A record is a hash:
//   doc               the whole record as JSON (session-record.md); the
//                     fields below are authoritative where they differ
//   status version last_active idle_deadline warning_sent end_reason
//   ended_at          the fields scripts change ("" when absent)
//   owner idle_timeout absolute_deadline    what scripts read
//   out_end           bytes of worker output ever appended (absent: none);
//                     the newest of them are the string "<base>o:<id>"
// FIELDS below must list redis_store_codec::record_fields (codec.hpp), in
// order: test/unit/redis_codec_test.cpp checks it.
#pragma once

#include <string_view>

namespace sessionkit::detail::redis_store::lua {

/// Shared helpers, prepended to every script.
inline constexpr std::string_view prelude = R"lua(
local base = KEYS[1]
local function is_final(st) return st == 'terminated' or st == 'failed' end
-- Record fields returned to the client, in this order (redis_store decodes them).
local FIELDS = {'doc', 'status', 'version', 'last_active', 'idle_deadline', 'warning_sent', 'end_reason', 'ended_at'}
local function fields_of(skey) return redis.call('HMGET', skey, unpack(FIELDS)) end
-- Safety-net TTL: a key lives at least `ms` more; never shortened.
local function extend(key, ms)
  local t = redis.call('PTTL', key)
  if t >= 0 and t >= ms then return end
  redis.call('PEXPIRE', key, ms)
end
local function ttl_after(due, now, margin)
  local ms = due - now
  if ms < 0 then ms = 0 end
  return ms + margin
end
-- A number field, or a CORRUPT error naming it (someone wrote over it).
-- Finite only: Lua reads "1e999" as inf and " 5" as 5, which a later
-- ZADD of the text would refuse after the record was already changed.
local function num(v, field, id)
  local n = tonumber(v)
  if n == nil or n ~= n or n == math.huge or n == -math.huge then
    error({err = 'CORRUPT field ' .. field .. ' of session ' .. id .. ' is not a number'})
  end
  return n
end
local function errtext(e) if type(e) == 'table' then return tostring(e.err) end return tostring(e) end
-- A record that cannot be read leaves the sweep indexes (see below).
local function quarantine(id, now, e)
  redis.call('ZREM', base .. 'live', id)
  redis.call('ZREM', base .. 'warn', id)
  redis.call('ZREM', base .. 'ended', id)
  redis.call('ZADD', base .. 'corrupt', now, id)
  return {id, false, errtext(e)}
end
-- Sweeps: fn(id, i) for each id in ARGV from `first` on (every `step`th
-- argument, default 1; i is its index), each in its own pcall, so that a
-- record that cannot be read is quarantined (its error reported in its
-- place) and never stops the others. The non-nil results.
local function each_guarded(first, now, fn, step)
  local out = {}
  for i = first, #ARGV, step or 1 do
    local ok, r = pcall(fn, ARGV[i], i)
    if not ok then r = quarantine(ARGV[i], now, r) end
    if r then out[#out + 1] = r end
  end
  return out
end
-- The key of a session's output log, or a CORRUPT error naming it when
-- someone wrote something other than a string there.
local function output_key(id)
  local okey = base .. 'o:' .. id
  local t = redis.call('TYPE', okey).ok
  if t ~= 'string' and t ~= 'none' then
    error({err = 'CORRUPT output log ' .. okey .. ' is a ' .. t .. ', not a string'})
  end
  return okey
end
local function stat(field, delta) redis.call('HINCRBY', base .. 'stats', field, delta) end
-- One command over many members (`values` a flat list: ids, or score/id
-- pairs), 1000 values a call: one key lookup and one call per chunk rather
-- than per member, well inside Lua's unpack limit.
local function batched(cmd, key, values)
  for i = 1, #values, 1000 do
    redis.call(cmd, key, unpack(values, i, math.min(i + 999, #values)))
  end
end
-- Index entries of a record (see doc/redis.md, "Key layout").
local function unindex(id, st, owner)
  redis.call('ZREM', base .. 'ids', id)
  redis.call('ZREM', base .. 'owner:' .. owner, id)
  redis.call('ZREM', base .. 'status:' .. st, id)
  redis.call('ZREM', base .. 'live', id)
  redis.call('ZREM', base .. 'warn', id)
  redis.call('ZREM', base .. 'ended', id)
end
local function index(id, st, owner, deadline, warned, ended_at, ttl)
  local keys = {base .. 'ids', base .. 'owner:' .. owner, base .. 'status:' .. st}
  for _, k in ipairs(keys) do redis.call('ZADD', k, 0, id) end
  if is_final(st) then
    local at = ended_at ~= '' and ended_at or deadline
    redis.call('ZADD', base .. 'ended', at, id)
    keys[#keys + 1] = base .. 'ended'
  else
    redis.call('ZADD', base .. 'live', deadline, id)
    keys[#keys + 1] = base .. 'live'
    if warned == '0' and st ~= 'stopping' then
      redis.call('ZADD', base .. 'warn', deadline, id)
      keys[#keys + 1] = base .. 'warn'
    end
  end
  for _, k in ipairs(keys) do extend(k, ttl) end
end
-- The (name, value) pairs in ARGV from `first` on, as a record.
local function record_from_args(first)
  local rec = {}
  for i = first, #ARGV, 2 do rec[ARGV[i]] = ARGV[i + 1] end
  return rec
end
-- Writes a whole record over an empty key, files it in every index and
-- gives both its safety TTL, which it returns.
local function write_record(id, skey, rec, now, margin)
  local args = {}
  for k, v in pairs(rec) do args[#args + 1] = k; args[#args + 1] = v end
  redis.call('HSET', skey, unpack(args))
  local due = tonumber(rec.ended_at ~= '' and rec.ended_at or rec.idle_deadline)
  local ttl = ttl_after(due, now, margin)
  redis.call('PEXPIRE', skey, ttl)
  index(id, rec.status, rec.owner, rec.idle_deadline, rec.warning_sent, rec.ended_at, ttl)
  return ttl
end
)lua";

/// create: ARGV = id, now, margin, the write's events (lua_outbox.hpp:
/// "0" for none), then the record's fields as (name, value) pairs. Returns
/// {1, version} when created, {0, fields...} of the live session that
/// already has this id, {2, length} when the outbox refuses the events
/// (refuse_writes, full: nothing was written).
inline constexpr std::string_view create = R"lua(
local id, now, margin = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ev, fields_at = write_events(4)
local skey = base .. 's:' .. id
local old = redis.call('HMGET', skey, 'status', 'version', 'owner')
if old[1] and not is_final(old[1]) then return {0, fields_of(skey)} end
-- The write lands: its events must fit before anything changes.
local ob = ev and outbox_open(ev.max, ev.overflow, ev.kept, margin)
local full = ob and outbox_full(ob, ev.n)
if full then return {2, full} end
local version = 1
if old[1] then
  version = num(old[2], 'version', id) + 1
  unindex(id, old[1], old[3])
  stat('st:' .. old[1], -1)
  redis.call('DEL', skey)
end
local rec = record_from_args(fields_at)
rec.version = version
redis.call('DEL', base .. 'o:' .. id)  -- a new session's output log starts empty
local ttl = write_record(id, skey, rec, now, margin)
stat('st:' .. rec.status, 1)
stat('created_total', 1)
if is_final(rec.status) then stat('terminated_total', 1) end
extend(base .. 'stats', ttl)
if ob then outbox_append(ob, ev) end
return {1, version}
)lua";

/// update: ARGV = id, expected_version, now, margin, the write's events
/// (lua_outbox.hpp: "0" for none), then (name, value) pairs. Returns 0
/// updated, 1 not found, 2 version conflict, 3 final, {4, length} when the
/// outbox refuses the events (refuse_writes, full: nothing was written).
inline constexpr std::string_view update = R"lua(
local id, expected, now, margin = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local ev, fields_at = write_events(5)
local skey = base .. 's:' .. id
local old = redis.call('HMGET', skey, 'status', 'version', 'owner', 'out_end')
if not old[1] then return 1 end
if is_final(old[1]) then return 3 end
if old[2] ~= expected then return 2 end
-- The write lands: its events must fit before anything changes.
local ob = ev and outbox_open(ev.max, ev.overflow, ev.kept, margin)
local full = ob and outbox_full(ob, ev.n)
if full then return {4, full} end
local rec = record_from_args(fields_at)
rec.version = num(expected, 'expected version', id) + 1
-- The output log is the session's, not the caller's: it is carried over,
-- and lives as long as the record now does.
if old[4] then rec.out_end = old[4] end  -- (HMGET gives false for an absent field)
unindex(id, old[1], old[3])
redis.call('DEL', skey)
local ttl = write_record(id, skey, rec, now, margin)
if old[4] then redis.call('PEXPIRE', base .. 'o:' .. id, ttl) end
stat('st:' .. old[1], -1)
stat('st:' .. rec.status, 1)
if is_final(rec.status) then stat('terminated_total', 1) end
extend(base .. 'stats', ttl)
if ob then outbox_append(ob, ev) end
return 0
)lua";

/// touch: ARGV = id, now, margin. Returns nil when absent, else
/// {status, last_active, idle_deadline, absolute_deadline, version}.
///
/// The hot path, so it stands alone (no prelude) and moves no index entry:
/// `live` and `warn` keep the earlier deadline the session was filed
/// under, and a sweep that meets an entry whose session was touched since
/// re-files it at the real deadline instead of claiming it (the "lazy
/// expiry index" of doc/decisions.md). Only a session that was already
/// warned goes back on `warn`, and a deadline that moved earlier (a caller
/// whose clock is behind) is re-filed at once.
///
/// Every key that indexes the session must outlive its record, or a
/// session kept alive by touches alone would drop out of the sweep, the
/// lists and the stats ("Nothing leaks, nothing live expires" in
/// doc/redis.md). A touch moves the record's TTL, so it extends those keys
/// too, but a margin further than needed, and notes in the record until
/// when (`aux_until`, caller's clock): of a run of touches only one per
/// `margin` pays for the extension. A write that rewrites the record drops
/// the note, so the next touch extends again.
inline constexpr std::string_view touch = R"lua(
local base = KEYS[1]
local id, now, margin = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local skey = base .. 's:' .. id
local f = redis.call('HMGET', skey, 'status', 'idle_timeout', 'absolute_deadline', 'version', 'last_active',
                     'idle_deadline', 'warning_sent', 'owner', 'aux_until', 'out_end')
if not f[1] then return false end
if f[1] == 'stopping' or f[1] == 'terminated' or f[1] == 'failed' then return {f[1], f[5], f[6], f[3], f[4]} end
local timeout, version, filed = tonumber(f[2]), tonumber(f[4]), tonumber(f[6])
if not timeout or not version or not filed then
  return redis.error_reply('CORRUPT a time or version field of session ' .. id .. ' is not a number')
end
local deadline = now + timeout
if f[3] ~= '' then
  local abs = tonumber(f[3])
  if not abs then return redis.error_reply('CORRUPT field absolute_deadline of session ' .. id .. ' is not a number') end
  if deadline > abs then deadline = abs end
end
-- At least `ms` more to live; never shortened (a missing key stays missing).
local function extend(key, ms)
  local t = redis.call('PTTL', key)
  if t >= 0 and t < ms then redis.call('PEXPIRE', key, ms) end
end
version = version + 1
local ttl = deadline - now
if ttl < 0 then ttl = 0 end
ttl = ttl + margin
local aux = tonumber(f[9])
if aux == nil or aux < now + ttl then
  aux = now + ttl + margin
  local ms = ttl + margin
  for _, k in ipairs({'ids', 'owner:' .. (f[8] or ''), 'status:' .. f[1], 'live', 'warn', 'stats'}) do
    extend(base .. k, ms)
  end
  redis.call('HSET', skey, 'last_active', ARGV[2], 'idle_deadline', deadline, 'warning_sent', '0', 'version', version,
             'aux_until', string.format('%.17g', aux))
else
  redis.call('HSET', skey, 'last_active', ARGV[2], 'idle_deadline', deadline, 'warning_sent', '0', 'version', version)
end
redis.call('PEXPIRE', skey, ttl)
-- The output log lives as long as its record.
if f[10] then redis.call('PEXPIRE', base .. 'o:' .. id, ttl) end
if deadline < filed then redis.call('ZADD', base .. 'live', deadline, id) end
if f[7] == '1' or deadline < filed then
  -- warn may have emptied (and gone) since: a new key gets its TTL here.
  if redis.call('ZADD', base .. 'warn', deadline, id) == 1 then extend(base .. 'warn', aux - now) end
end
return {f[1], ARGV[2], deadline, f[3], version}
)lua";

/// erase: ARGV = id. Returns 1 when removed, 0 when absent.
inline constexpr std::string_view erase = R"lua(
local id = ARGV[1]
local skey = base .. 's:' .. id
local old = redis.call('HMGET', skey, 'status', 'owner')
if not old[1] then return 0 end
unindex(id, old[1], old[2])
redis.call('DEL', skey, base .. 'o:' .. id)
stat('st:' .. old[1], -1)
return 1
)lua";

// The output log (doc/redis.md, "Worker output"). The record's `out_end`
// counts every byte ever appended; "<base>o:<id>" holds the newest of them,
// so the offset of its first byte is out_end - STRLEN. Appends are APPEND
// (amortised O(bytes)); once the string passes twice the limit it is cut
// to the newest `limit` bytes, so a cut costs O(limit) once per `limit`
// bytes written. Reads show only the newest `limit` bytes.

/// append_output: ARGV = id, limit, bytes. Returns 1 when appended, 0 when
/// there is no record.
inline constexpr std::string_view append_output = R"lua(
local id, limit, bytes = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local skey = base .. 's:' .. id
-- Every check before the first write (a script's writes are not undone
-- by a later error): the record is a hash, out_end a number, the log a string.
local f = redis.call('HMGET', skey, 'status', 'out_end')
if not f[1] then return 0 end
local had = 0
if f[2] then had = num(f[2], 'out_end', id) end
local okey = output_key(id)
local len = redis.call('APPEND', okey, bytes)
redis.call('HSET', skey, 'out_end', string.format('%.17g', had + #bytes))
if len > 2 * limit then redis.call('SET', okey, redis.call('GETRANGE', okey, len - limit, -1)) end
-- The log lives as long as its record (SET above also cleared its TTL).
local ttl = redis.call('PTTL', skey)
if ttl > 0 then redis.call('PEXPIRE', okey, ttl) end
return 1
)lua";

/// read_output: ARGV = id, offset, max, limit. Returns false when there is
/// no record, else {first, end, data}: `first` the offset of the oldest
/// byte kept (or of `data`, when later), `end` one past the newest byte,
/// `data` up to `max` bytes from max(offset, first). An offset past `end`
/// returns no data (the client names the error).
inline constexpr std::string_view read_output = R"lua(
local id, offset, max, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local skey = base .. 's:' .. id
local f = redis.call('HMGET', skey, 'status', 'out_end')
if not f[1] then return false end
local last = 0
if f[2] then last = num(f[2], 'out_end', id) end
local okey = output_key(id)
local size = redis.call('STRLEN', okey)
if size > last then
  error({err = 'CORRUPT output log ' .. okey .. ' holds ' .. size .. ' bytes, more than the ' .. last .. ' ever written'})
end
local kept = size
if kept > limit then kept = limit end
local first = last - kept
if offset > last then return {first, last, ''} end
local from = offset
if from < first then from = first end
local n = last - from
if n > max then n = max end
local data = ''
if n > 0 then
  local at = size - (last - from)
  data = redis.call('GETRANGE', okey, at, at + n - 1)
end
return {from, last, data}
)lua";

/// try_lock: KEYS[1] = the lock key; ARGV = now, ttl_ms, token. The value
/// is "<expires_ms>:<token>": expiry follows the caller's clock like every
/// deadline, and PX lets Redis drop it when nobody releases it.
inline constexpr std::string_view try_lock = R"lua(
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('GET', KEYS[1])
if v then
  local expires = tonumber(string.match(v, '^(%d+):'))
  if expires and expires > now then return false end
end
redis.call('SET', KEYS[1], (now + ttl) .. ':' .. ARGV[3], 'PX', ttl)
return 1
)lua";

/// extend_lock: KEYS[1] = the lock key; ARGV = now, ttl_ms, token. 1 when
/// the token holds the lock (not expired on the caller's clock) and it now
/// lasts `ttl` more. The value is rewritten, not just PEXPIREd: try_lock
/// reads the expiry in it, and a stale one would let another take the lock.
inline constexpr std::string_view extend_lock = R"lua(
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local expires, token = string.match(v, '^(%d+):(.*)$')
if token ~= ARGV[3] or tonumber(expires) <= now then return 0 end
redis.call('SET', KEYS[1], (now + ttl) .. ':' .. token, 'PX', ttl)
return 1
)lua";

/// unlock: KEYS[1] = the lock key; ARGV = token. 1 when released.
inline constexpr std::string_view unlock = R"lua(
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local token = string.match(v, '^%d+:(.*)$')
if token ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
)lua";

}  // namespace sessionkit::detail::redis_store::lua

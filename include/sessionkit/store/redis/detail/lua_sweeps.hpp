// sessionkit/store/redis/detail/lua_sweeps.hpp — the Lua of redis_store's
// operations across sessions: the janitor's three sweeps and list. They
// run after the prelude of lua_records.hpp (its helpers and FIELDS);
// scripts.hpp names them and computes their SHA.
#pragma once

#include <string_view>

namespace sessionkit::detail::redis_store::lua {

// The three sweeps below take candidate ids that the client picked from
// every partition's index (earliest first, up to the caller's limit) and
// re-check each one here, atomically: a candidate that was touched, ended
// or erased since it was read is left alone. A record that cannot be read
// (not a hash) leaves the indexes for `<base>corrupt`, so that one bad key
// never blocks a sweep; its id is returned as {id, false, error}.

/// claim_expired: ARGV = now, lease_ms, margin, ids... Returns, per claimed
/// record, {id, fields...}.
inline constexpr std::string_view claim_expired = R"lua(
local now, lease, margin = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
-- A sweep claims up to a thousand records. What their claims share is
-- worked out once, and the index entries they change are collected and
-- written at the end with one command per index: a command per record and
-- index cost a call and a key lookup each, which was most of a sweep's
-- time (doc/redis.md, "Sweep cost").
local until_text = string.format('%.17g', now + lease)
local ttl = ttl_after(now + lease, now, margin)
local ttl_text = string.format('%.17g', ttl)
local tallies = {}
local leased, unwarned, refile_live, refile_warn, vanished, left = {}, {}, {}, {}, {}, {}
local owners = {}  -- of the claimed records: their owner index must outlive the lease
local function tally(field, delta) tallies[field] = (tallies[field] or 0) + delta end
local function add(list, a, b) list[#list + 1] = a; if b then list[#list + 1] = b end end
local function claim(id)
  local skey = base .. 's:' .. id
  -- FIELDS (what the client gets back), then absolute_deadline.
  local f = redis.call('HMGET', skey, 'doc', 'status', 'version', 'last_active', 'idle_deadline', 'warning_sent',
                       'end_reason', 'ended_at', 'absolute_deadline', 'owner')
  local st = f[2]
  if not st or is_final(st) then
    -- Erased or ended by someone else meanwhile; no live entry may stay.
    if not st then add(vanished, id) end
    return nil
  end
  local deadline = num(f[5], 'idle_deadline', id)
  if deadline > now then
    -- Touched since it was filed: re-file it (and its warning) at the real deadline.
    -- The parsed number, written back as text ZADD accepts (not f[5] as stored).
    local at = string.format('%.17g', deadline)
    add(refile_live, at, id)
    if f[6] == '0' and st ~= 'stopping' then add(refile_warn, at, id) end
    return nil
  end
  local version = string.format('%.17g', num(f[3], 'version', id) + 1)
  local reason = f[7]
  if reason == '' then
    if f[9] ~= '' and deadline >= num(f[9], 'absolute_deadline', id) then reason = 'lifetime' else reason = 'idle' end
  end
  redis.call('HSET', skey, 'status', 'stopping', 'end_reason', reason, 'idle_deadline', until_text, 'version', version)
  redis.call('PEXPIRE', skey, ttl_text)
  -- Index changes only once the record is written: a record that fails
  -- above is quarantined by each_guarded and appears in no list.
  add(leased, until_text, id)
  add(unwarned, id)
  owners[f[10] or ''] = true
  if st ~= 'stopping' then
    left[st] = left[st] or {}
    add(left[st], id)
    tally('st:' .. st, -1)
    tally('st:stopping', 1)
    tally('expired_total', 1)
  end
  -- The record as written, without a second read.
  f[2], f[3], f[5], f[7], f[9], f[10] = 'stopping', version, until_text, reason, nil, nil
  return {id, f}
end
local out = each_guarded(4, now, claim)
batched('ZADD', base .. 'live', leased)
batched('ZADD', base .. 'live', refile_live)
batched('ZADD', base .. 'warn', refile_warn)
batched('ZREM', base .. 'warn', unwarned)
batched('ZREM', base .. 'live', vanished)
batched('ZREM', base .. 'warn', vanished)
local stopping = {}
for st, ids in pairs(left) do
  batched('ZREM', base .. 'status:' .. st, ids)
  for _, id in ipairs(ids) do add(stopping, '0', id) end
end
if #stopping > 0 then
  batched('ZADD', base .. 'status:stopping', stopping)
  extend(base .. 'status:stopping', ttl)
end
-- A claimed record now lives until its lease ends, and so must every
-- index that files it.
if #leased > 0 then
  extend(base .. 'live', ttl)
  extend(base .. 'ids', ttl)
  for owner in pairs(owners) do extend(base .. 'owner:' .. owner, ttl) end
end
for field, delta in pairs(tallies) do
  if delta ~= 0 then stat(field, delta) end
end
return out
)lua";

/// claim_warnings: ARGV = now, horizon, outbox ("0" off, "1" on), then
/// with the outbox off the candidate ids; with it on max_events, overflow,
/// dropped_ids_kept, margin, then (id, event id) pairs: each record warned
/// gets a timeout_warning event with that id in the partition's outbox, the
/// JSON that make_timeout_warning (event.hpp) builds. Returns {id,
/// fields...} per record marked warned.
inline constexpr std::string_view claim_warnings = R"lua(
local now, horizon = tonumber(ARGV[1]), tonumber(ARGV[2])
local ob, first, step = nil, 4, 1
if ARGV[3] == '1' then
  ob = outbox_open(ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]))
  first, step = 8, 2
end
local function number_text(n) return string.format('%.17g', n) end
local function warn(id, i)
  local skey = base .. 's:' .. id
  local f = redis.call('HMGET', skey, 'status', 'idle_deadline', 'warning_sent', 'version', 'absolute_deadline')
  if not f[1] or is_final(f[1]) or f[1] == 'stopping' or f[3] ~= '0' then
    redis.call('ZREM', base .. 'warn', id)
    return nil
  end
  local d = num(f[2], 'idle_deadline', id)
  if d > horizon then
    -- Touched since it was filed: re-file it at the real deadline.
    redis.call('ZADD', base .. 'warn', d, id)
    return nil
  end
  if d <= now then return nil end
  local reason = 'idle'
  if ob and f[5] and f[5] ~= '' and d >= num(f[5], 'absolute_deadline', id) then reason = 'lifetime' end
  redis.call('HSET', skey, 'warning_sent', '1', 'version', num(f[4], 'version', id) + 1)
  redis.call('ZREM', base .. 'warn', id)
  local fields = fields_of(skey)
  if ob then
    local eid = ARGV[i + 1]
    local text = '{"v":1,"id":' .. cjson.encode(eid) .. ',"type":"timeout_warning","session_id":' ..
                 cjson.encode(id) .. ',"time":' .. ARGV[1] .. ',"data":{"deadline":' .. number_text(d) ..
                 ',"reason":"' .. reason .. '","remaining_ms":' .. number_text(d - now) .. '}}'
    outbox_add(ob, text, eid, id, 'timeout_warning', ARGV[1])
  end
  return {id, fields}
end
local out = each_guarded(first, now, warn, step)
if ob then outbox_bound(ob) end
return out
)lua";

/// purge_ended: ARGV = before, ids... Returns how many were removed.
inline constexpr std::string_view purge_ended = R"lua(
local before = tonumber(ARGV[1])
local function purge(id)
  local skey = base .. 's:' .. id
  local f = redis.call('HMGET', skey, 'status', 'owner', 'ended_at', 'idle_deadline')
  if not f[1] then
    redis.call('ZREM', base .. 'ended', id)
    return 0
  end
  if not is_final(f[1]) then return 0 end
  local at = num(f[3] ~= '' and f[3] or f[4], 'ended_at', id)
  if at > before then return 0 end
  unindex(id, f[1], f[2] or '')
  redis.call('DEL', skey, base .. 'o:' .. id)
  stat('st:' .. f[1], -1)
  return 1
end
local n = 0
for i = 2, #ARGV do
  local ok, r = pcall(purge, ARGV[i])
  if ok then n = n + r else quarantine(ARGV[i], before, r) end
end
return n
)lua";

/// list: ARGV = index ("ids", "owner:<o>" or "status:<s>"), after (cursor,
/// "" for the first page), limit, status filter ("" for none). Returns
/// {id, fields...} for up to `limit` records in id order. Index entries
/// whose record is gone (its safety TTL passed) are dropped on the way.
inline constexpr std::string_view list = R"lua(
local key = base .. ARGV[1]
local start = ARGV[2] == '' and '-' or '(' .. ARGV[2]
local limit, want = tonumber(ARGV[3]), ARGV[4]
local out = {}
while #out < limit do
  local chunk = limit - #out
  if chunk < 16 then chunk = 16 end
  local ids = redis.call('ZRANGEBYLEX', key, start, '+', 'LIMIT', 0, chunk)
  for _, id in ipairs(ids) do
    local skey = base .. 's:' .. id
    local ok, f = pcall(fields_of, skey)
    if not ok then
      out[#out + 1] = {id, false, tostring(f.err or f)}
    elseif not f[2] then
      redis.call('ZREM', key, id)
    elseif want == '' or f[2] == want then
      out[#out + 1] = {id, f}
    end
    if #out >= limit then break end
  end
  if #ids < chunk then break end
  start = '(' .. ids[#ids]
end
return out
)lua";

}  // namespace sessionkit::detail::redis_store::lua

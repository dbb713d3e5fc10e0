// sessionkit/store/redis/detail/lua_outbox.hpp — the Lua of redis_store's
// event outbox (sessionkit/outbox.hpp): the helpers that create, update and
// claim_warnings use to append a write's events in the same script as the
// write, and the script that trims what a relay has published. scripts.hpp
// composes them; doc/redis.md, "Outbox", describes the keys and the bound.
//
// A partition's outbox lives beside its records, under the same hash tag:
//   <base>outbox           a stream; one entry per event, fields
//                          event (the JSON text, to_text), id, session,
//                          type, time (ms since the epoch)
//   <base>outbox:dropped   a list: "<time> <type> <event id> <session id>"
//                          of each event the overflow policy dropped, oldest
//                          first, the newest dropped_ids_kept of them
//   <base>stats            field outbox_dropped: events ever dropped
// Entry ids are the stream's own (XADD *): they only grow within a
// partition, which is what a relay's position needs.
#pragma once

#include <string_view>

namespace sessionkit::detail::redis_store::lua {

/// Helpers for the scripts that append events; they run after the prelude
/// of lua_records.hpp (base, stat, batched, extend).
///
/// A write's events in ARGV, from `first`: n (0 = none), then when n > 0
/// max_events, overflow ("drop_oldest" | "refuse_writes"),
/// dropped_ids_kept, and n × (text, event id, session id, type, time).
inline constexpr std::string_view outbox = R"lua(
-- The events a write carries (see above): nil when none, and the index of
-- the argument after them.
local function write_events(first)
  local n = tonumber(ARGV[first])
  if not n or n == 0 then return nil, first + 1 end
  return {n = n, max = ARGV[first + 1], overflow = ARGV[first + 2], kept = ARGV[first + 3], at = first + 4},
         first + 4 + 5 * n
end
-- The partition's outbox as a script appends to it.
local function outbox_open(max, overflow, kept, margin)
  local key = base .. 'outbox'
  return {key = key, max = tonumber(max), refuse = overflow == 'refuse_writes', kept = tonumber(kept),
          margin = margin, len = redis.call('XLEN', key)}
end
-- Records events the overflow policy dropped ("<time> <type> <id> <session>"
-- each): counted, and the newest `kept` of them listed for the relay.
local function outbox_note_dropped(ob, lines)
  if #lines == 0 then return end
  stat('outbox_dropped', #lines)
  extend(base .. 'stats', ob.margin)
  if ob.kept <= 0 then return end
  local dkey = base .. 'outbox:dropped'
  batched('RPUSH', dkey, lines)
  redis.call('LTRIM', dkey, -ob.kept, -1)
  redis.call('PEXPIRE', dkey, ob.margin)
end
-- Appends one event. Under refuse_writes an event that does not fit is
-- dropped (and recorded): writes check first (outbox_full), so only a
-- sweep's warnings get here.
local function outbox_add(ob, text, eid, sid, etype, time)
  if ob.refuse and ob.len >= ob.max then
    outbox_note_dropped(ob, {time .. ' ' .. etype .. ' ' .. eid .. ' ' .. sid})
    return
  end
  -- An emptied stream was given a TTL (trim_outbox); one that holds events has none.
  if ob.len == 0 then redis.call('PERSIST', ob.key) end
  redis.call('XADD', ob.key, '*', 'event', text, 'id', eid, 'session', sid, 'type', etype, 'time', time)
  ob.len = ob.len + 1
end
-- drop_oldest: the oldest entries beyond the bound go, each recorded.
local function outbox_bound(ob)
  if ob.refuse or ob.len <= ob.max then return end
  local gone = redis.call('XRANGE', ob.key, '-', '+', 'COUNT', ob.len - ob.max)
  local lines = {}
  for _, entry in ipairs(gone) do
    local f, m = entry[2], {}
    for i = 1, #f, 2 do m[f[i]] = f[i + 1] end
    lines[#lines + 1] = (m.time or '0') .. ' ' .. (m.type or '?') .. ' ' .. (m.id or '?') .. ' ' .. (m.session or '')
  end
  redis.call('XTRIM', ob.key, 'MAXLEN', ob.max)
  ob.len = ob.max
  outbox_note_dropped(ob, lines)
end
-- refuse_writes: the outbox's length when the write's events do not fit
-- (the write must then change nothing), else nil.
local function outbox_full(ob, n)
  if ob.refuse and ob.len + n > ob.max then return ob.len end
  return nil
end
-- Appends a write's events (write_events) once the write has landed.
local function outbox_append(ob, ev)
  for i = ev.at, ev.at + 5 * (ev.n - 1), 5 do
    outbox_add(ob, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
  end
  outbox_bound(ob)
end
)lua";

/// trim_outbox: KEYS[1] = the partition's base; ARGV = the first position
/// to keep (the one after the relay's `upto`), margin. XTRIM MINID removes
/// every entry before it: O(entries removed), whole stream nodes freed at
/// once, exact, and nothing to do when they are gone already. Returns how
/// many were removed. An emptied stream is not deleted (it keeps its last
/// id, so positions keep growing) but given a TTL of `margin`: an outbox
/// that nobody writes to again goes away (the next append removes the TTL).
inline constexpr std::string_view trim_outbox = R"lua(
local key = KEYS[1] .. 'outbox'
local n = redis.call('XTRIM', key, 'MINID', ARGV[1])
if n > 0 and redis.call('XLEN', key) == 0 then redis.call('PEXPIRE', key, ARGV[2]) end
return n
)lua";

}  // namespace sessionkit::detail::redis_store::lua

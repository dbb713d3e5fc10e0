// sessionkit/store/postgres/statements.hpp — every SQL statement
// postgres_store runs, prepared once per connection.
//
// Each store operation is one round trip: one or two of these statements
// sent together with one Sync, so they run as one implicit transaction.
// Writes that must be atomic with their events (create, update, the
// warning sweep) are one statement each: data-modifying CTEs, the events
// appended by {S}.outbox_append only when the write's CTE returned a row.
// doc/postgres.md ("The SQL of every operation") explains each.
//
// The only text ever substituted is the schema name (an identifier, see
// schema.hpp) and the fixed column list; every value is a parameter. The
// test `statements_hold_no_values` checks that nothing else varies.
#pragma once

#include <sessionkit/postgres/operation.hpp>
#include <sessionkit/store/postgres/codec.hpp>
#include <sessionkit/store/postgres/schema.hpp>

#include <string>
#include <string_view>

namespace sessionkit::postgres_store_sql {

/// The record columns, each prefixed with `alias` ("s.").
inline std::string columns(std::string_view alias = {}) {
    std::string out;
    for (auto c : postgres_store_codec::detail::column_names) {
        if (!out.empty()) out += ", ";
        out += alias;
        out += c;
    }
    return out;
}

// The expressions both sweeps and the touch use.
inline constexpr std::string_view live = "status NOT IN ('terminated', 'failed')";
inline constexpr std::string_view lifetime_bound =
    "(absolute_deadline IS NOT NULL AND idle_deadline >= absolute_deadline)";

/// The statements, named as the store calls them, in `schema`.
inline postgres::statement_set statements(std::string_view schema) {
    using postgres::statement;
    const std::string cols = columns(), s_cols = columns("s.");
    const std::string live_s = std::string(live);
    auto in = [&](std::string sql) { return postgres_schema::in_schema(sql, schema); };
    postgres::statement_set set;
    auto add = [&](std::string name, std::string sql) { set.push_back(statement{std::move(name), in(sql), {}}); };

    // ---- records ----------------------------------------------------------

    // $1 id, $2..$14 record_parameters, $15 outbox partition, $16 events
    // (JSON array), $17 outbox bound, $18 refuse when full, $19 dropped ids
    // kept. A final record under the id is replaced, its version continued
    // and its output cleared; a live one is left alone (no row back).
    add("create",
        "WITH up AS ("
        " INSERT INTO {S}.sessions AS s (id, owner, status, created_at, last_active, idle_timeout_ms,"
        "  idle_deadline, absolute_deadline, ended_at, end_reason, worker, warning_sent, attributes, extra,"
        "  outbox_partition, version, output_end)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::integer, 1, 0)"
        " ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, status = excluded.status,"
        "  created_at = excluded.created_at, last_active = excluded.last_active,"
        "  idle_timeout_ms = excluded.idle_timeout_ms, idle_deadline = excluded.idle_deadline,"
        "  absolute_deadline = excluded.absolute_deadline, ended_at = excluded.ended_at,"
        "  end_reason = excluded.end_reason, worker = excluded.worker, warning_sent = excluded.warning_sent,"
        "  attributes = excluded.attributes, extra = excluded.extra, outbox_partition = excluded.outbox_partition,"
        "  version = s.version + 1, output_end = 0"
        "  WHERE s.status IN ('terminated', 'failed')"
        " RETURNING s.version),"
        " cleared AS (DELETE FROM {S}.session_output o USING up WHERE o.session_id = $1 AND up.version > 1),"
        " appended AS (SELECT {S}.outbox_append($15::integer, $16::jsonb, $17::bigint, $18::boolean,"
        "  $19::integer) AS n FROM up WHERE jsonb_array_length($16::jsonb) > 0),"
        " counted AS (INSERT INTO {S}.counter_log (name) SELECT 'created' FROM up)"
        " SELECT up.version, (SELECT count(*) FROM appended) FROM up");
    add("get", "SELECT " + cols + " FROM {S}.sessions WHERE id = $1");

    // $1 id, $2 now. Time never goes backwards (a late touch with an older
    // `now` moves nothing back): last_active is the later of the two, and
    // the deadline follows from it. A stopping or final record is returned
    // unchanged by the second half.
    add("touch", "WITH t AS ("
                 " UPDATE {S}.sessions SET last_active = GREATEST(last_active, $2::bigint),"
                 "  idle_deadline = CASE WHEN absolute_deadline IS NOT NULL"
                 "   AND GREATEST(last_active, $2::bigint) + idle_timeout_ms > absolute_deadline THEN absolute_deadline"
                 "   ELSE GREATEST(last_active, $2::bigint) + idle_timeout_ms END,"
                 "  warning_sent = false, version = version + 1"
                 " WHERE id = $1 AND status NOT IN ('stopping', 'terminated', 'failed')"
                 " RETURNING status, last_active, idle_deadline, absolute_deadline, version)"
                 " SELECT status, last_active, idle_deadline, absolute_deadline, version FROM t"
                 " UNION ALL SELECT status, last_active, idle_deadline, absolute_deadline, version FROM {S}.sessions"
                 " WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM t)");

    // $1 id, $2 expected version, $3..$15 record_parameters, $16 events,
    // $17 bound, $18 refuse, $19 ids kept. Returns the stored status and
    // version before (NULL: absent), the new version (NULL: not written).
    add("update",
        "WITH cur AS (SELECT status, version FROM {S}.sessions WHERE id = $1 FOR UPDATE),"
        " up AS ("
        " UPDATE {S}.sessions s SET owner = $3, status = $4, created_at = $5, last_active = $6,"
        "  idle_timeout_ms = $7, idle_deadline = $8, absolute_deadline = $9, ended_at = $10, end_reason = $11,"
        "  worker = $12, warning_sent = $13, attributes = $14, extra = $15, version = s.version + 1"
        " WHERE s.id = $1 AND s.version = $2::bigint AND s." +
            live_s +
            " RETURNING s.version, s.status, s.outbox_partition),"
            " appended AS (SELECT {S}.outbox_append(up.outbox_partition, $16::jsonb, $17::bigint, $18::boolean,"
            "  $19::integer) AS n FROM up WHERE jsonb_array_length($16::jsonb) > 0),"
            " counted AS (INSERT INTO {S}.counter_log (name) SELECT 'terminated' FROM up"
            "  WHERE up.status IN ('terminated', 'failed'))"
            " SELECT (SELECT status FROM cur), (SELECT version FROM cur), (SELECT version FROM up),"
            " (SELECT count(*) FROM appended)");
    add("erase", "DELETE FROM {S}.sessions WHERE id = $1");

    // ---- sweeps -----------------------------------------------------------

    // $1 now, $2 limit, $3 lease ms. SKIP LOCKED: janitors sweeping at once
    // get disjoint batches, and a claim never waits for a row another holds.
    add("claim_expired",
        "WITH due AS ("
        " SELECT id, status AS was, idle_deadline AS due_at FROM {S}.sessions"
        " WHERE " +
            live_s +
            " AND idle_deadline <= $1::bigint"
            " ORDER BY idle_deadline LIMIT $2::bigint FOR UPDATE SKIP LOCKED),"
            " claimed AS ("
            " UPDATE {S}.sessions s SET"
            "  end_reason = CASE WHEN coalesce(s.end_reason, '') <> '' THEN s.end_reason"
            "   WHEN s.absolute_deadline IS NOT NULL AND s.idle_deadline >= s.absolute_deadline THEN 'lifetime'"
            "   ELSE 'idle' END,"
            "  status = 'stopping', idle_deadline = $1::bigint + $3::bigint, version = s.version + 1"
            " FROM due WHERE s.id = due.id"
            " RETURNING " +
            s_cols +
            ", due.due_at, due.was),"
            " counted AS (INSERT INTO {S}.counter_log (name) SELECT 'expired' FROM claimed WHERE was <> 'stopping')"
            " SELECT " +
            cols + ", due_at FROM claimed");

    // $1 now, $2 horizon, $3 limit, $4 event ids (text[]: one per warning
    // when the outbox is on, else empty), $5 bound, $6 ids kept. The
    // timeout_warning events are made here, in the sweep's own statement,
    // with the data make_timeout_warning() gives; under refuse_writes a
    // warning that does not fit drops the oldest instead of failing the
    // sweep.
    add("claim_warnings",
        "WITH due AS ("
        " SELECT id FROM {S}.sessions"
        " WHERE " +
            live_s +
            " AND status <> 'stopping' AND NOT warning_sent"
            " AND idle_deadline > $1::bigint AND idle_deadline <= $2::bigint"
            " ORDER BY idle_deadline LIMIT $3::bigint FOR UPDATE SKIP LOCKED),"
            " warned AS ("
            " UPDATE {S}.sessions s SET warning_sent = true, version = s.version + 1 FROM due WHERE s.id = due.id"
            " RETURNING " +
            s_cols +
            ", s.outbox_partition),"
            " numbered AS (SELECT w.*, row_number() OVER (ORDER BY w.idle_deadline, w.id) AS n FROM warned w),"
            " appended AS ("
            " SELECT {S}.outbox_append(g.p, g.evs, $5::bigint, false, $6::integer) AS n FROM ("
            "  SELECT outbox_partition AS p, jsonb_agg(jsonb_build_object('id', ($4::text[])[n],"
            "   'type', 'timeout_warning', 'session_id', id, 'time', $1::bigint,"
            "   'data', jsonb_build_object('deadline', idle_deadline,"
            "    'reason', CASE WHEN " +
            std::string(lifetime_bound) +
            " THEN 'lifetime' ELSE 'idle' END,"
            "    'remaining_ms', idle_deadline - $1::bigint)) ORDER BY n) AS evs"
            "  FROM numbered WHERE cardinality($4::text[]) > 0 GROUP BY outbox_partition) g)"
            " SELECT " +
            cols + ", (SELECT count(*) FROM appended) FROM numbered ORDER BY n");

    // $1 before, $2 limit.
    add("purge_ended", "WITH gone AS (SELECT id FROM {S}.sessions WHERE status IN ('terminated', 'failed')"
                       " AND ended_at <= $1::bigint ORDER BY ended_at LIMIT $2::bigint FOR UPDATE SKIP LOCKED)"
                       " DELETE FROM {S}.sessions s USING gone WHERE s.id = gone.id");
    // $1 before, $2 limit: relayed events older than the retention.
    add("purge_relayed",
        "DELETE FROM {S}.session_events WHERE seq IN (SELECT seq FROM {S}.session_events"
        " WHERE relayed_at IS NOT NULL AND relayed_at <= $1::bigint ORDER BY relayed_at LIMIT $2::bigint"
        " FOR UPDATE SKIP LOCKED)");

    // ---- listing and counting -------------------------------------------

    // Keyset paging in id order: $n after-id ('' = from the start), then
    // limit + 1 rows (the extra one says whether there is a next page).
    add("list_all", "SELECT " + cols + " FROM {S}.sessions WHERE id > $1 ORDER BY id LIMIT $2::bigint");
    add("list_owner",
        "SELECT " + cols + " FROM {S}.sessions WHERE owner = $1 AND id > $2 ORDER BY owner, id LIMIT $3::bigint");
    add("list_status",
        "SELECT " + cols + " FROM {S}.sessions WHERE status = $1 AND id > $2 ORDER BY status, id LIMIT $3::bigint");
    add("list_owner_status", "SELECT " + cols +
                                 " FROM {S}.sessions WHERE owner = $1 AND status = $2 AND id > $3"
                                 " ORDER BY owner, id LIMIT $4::bigint");
    add("count_by_status", "SELECT status, count(*) FROM {S}.sessions GROUP BY status");
    // Moves the counter log into the totals and returns them (name, n).
    add("counters", "WITH moved AS (DELETE FROM {S}.counter_log RETURNING name),"
                    " summed AS (SELECT name, count(*) AS n FROM moved GROUP BY name),"
                    " added AS (INSERT INTO {S}.counter_totals AS t (name, n) SELECT name, n FROM summed"
                    "  ON CONFLICT (name) DO UPDATE SET n = t.n + excluded.n RETURNING name, n)"
                    " SELECT name, n FROM added UNION ALL"
                    " SELECT name, n FROM {S}.counter_totals WHERE name NOT IN (SELECT name FROM added)");

    // ---- locks ------------------------------------------------------------

    // $1 name, $2 token, $3 expires, $4 now.
    add("try_lock", "INSERT INTO {S}.session_locks AS l (name, token, expires_at) VALUES ($1, $2, $3::bigint)"
                    " ON CONFLICT (name) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at"
                    " WHERE l.expires_at <= $4::bigint RETURNING token");
    add("unlock", "DELETE FROM {S}.session_locks WHERE name = $1 AND token = $2");
    add("extend_lock", "UPDATE {S}.session_locks SET expires_at = $3::bigint"
                       " WHERE name = $1 AND token = $2 AND expires_at > $4::bigint");

    // ---- output -----------------------------------------------------------

    // $1 id, $2 the bytes kept (hex), $3 bytes written (may exceed what is
    // kept), $4 output limit. The record's row lock orders appends.
    add("append_output", "WITH s AS (UPDATE {S}.sessions SET output_end = output_end + $3::bigint WHERE id = $1"
                         " RETURNING output_end),"
                         " ins AS (INSERT INTO {S}.session_output (session_id, \"offset\", data)"
                         "  SELECT $1, s.output_end - length(decode($2, 'hex')), decode($2, 'hex') FROM s"
                         "  WHERE length($2) > 0),"
                         " cut AS (DELETE FROM {S}.session_output o USING s"
                         "  WHERE o.session_id = $1 AND o.\"offset\" + length(o.data) <= s.output_end - $4::bigint)"
                         " SELECT output_end FROM s");
    // $1 id: the end, and the oldest offset still kept.
    add("output_bounds",
        "SELECT s.output_end, (SELECT min(o.\"offset\") FROM {S}.session_output o WHERE o.session_id = $1)"
        " FROM {S}.sessions s WHERE s.id = $1");
    // $1 id, $2 from, $3 to: the chunks overlapping [from, to).
    add("output_chunks", "SELECT \"offset\", data FROM {S}.session_output WHERE session_id = $1"
                         " AND \"offset\" + length(data) > $2::bigint AND \"offset\" < $3::bigint ORDER BY \"offset\"");

    // ---- the outbox -------------------------------------------------------

    // $1 partition, $2 after-xid, $3 after-seq, $4 limit. Only events whose
    // transaction ended before every transaction still running: see
    // postgres.hpp on why positions are (xid, seq).
    add("read_outbox", "SELECT xid::text, seq, event_id, session_id, type, at, data FROM {S}.session_events"
                       " WHERE partition = $1::integer AND relayed_at IS NULL"
                       " AND xid < pg_snapshot_xmin(pg_current_snapshot())"
                       " AND (xid, seq) > ($2::xid8, $3::bigint) ORDER BY xid, seq LIMIT $4::bigint");
    // $1 partition, $2 xid, $3 seq: marks them relayed (the server's clock:
    // the retention purge removes them later).
    add("trim_outbox",
        "UPDATE {S}.session_events SET relayed_at = (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
        " WHERE partition = $1::integer AND relayed_at IS NULL AND (xid, seq) <= ($2::xid8, $3::bigint)");
    add("outbox_depth", "SELECT count(*), min(at) FROM {S}.session_events WHERE relayed_at IS NULL");
    add("outbox_dropped_total", "SELECT coalesce(sum(dropped), 0)::bigint FROM {S}.outbox_partitions");
    // $1 limit.
    add("take_dropped",
        "DELETE FROM {S}.outbox_dropped WHERE seq IN (SELECT seq FROM {S}.outbox_dropped ORDER BY seq"
        " LIMIT $1::bigint FOR UPDATE SKIP LOCKED) RETURNING seq, partition, event_id, session_id, type");

    // ---- settings ---------------------------------------------------------

    // $1 name, $2 value: the value stored first wins; returns it.
    add("setting", "WITH ins AS (INSERT INTO {S}.settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING"
                   " RETURNING value) SELECT value FROM ins UNION ALL SELECT value FROM {S}.settings WHERE name = $1"
                   " AND NOT EXISTS (SELECT 1 FROM ins)");
    return set;
}

}  // namespace sessionkit::postgres_store_sql

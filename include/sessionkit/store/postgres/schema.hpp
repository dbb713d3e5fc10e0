// sessionkit/store/postgres/schema.hpp — the tables postgres_store keeps,
// and the versioned, idempotent migration that makes them.
//
// Everything lives in one PostgreSQL schema (default "sessionkit"), so
// several deployments can share a database under different names. The
// migration is one script run on a connection of its own before the pool
// enters pipeline mode (pipeline mode refuses multi-statement strings):
// it takes a transaction-scoped advisory lock keyed by the schema name, so
// instances starting at once run it one after the other, and each step is
// applied once, recorded in <schema>.schema_migrations. A schema newer
// than this library knows is refused, never downgraded. doc/postgres.md
// ("Schema") shows every table and index and says why each exists.
//
// The schema name is the only thing substituted into SQL text: it is an
// identifier, checked against [a-z_][a-z0-9_]{0,62} and quoted, never a
// value. Values always travel as parameters of prepared statements.
#pragma once

#include <sessionkit/detail/fnv.hpp>
#include <sessionkit/detail/text.hpp>
#include <sessionkit/error.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace sessionkit::postgres_schema {

/// The schema version this library writes and reads.
inline constexpr int latest_version = 1;

/// Throws error::invalid_argument unless `name` is a plain lower-case SQL
/// identifier (what we are willing to put in SQL text).
inline void check_schema_name(std::string_view name) {
    const bool ok = !name.empty() && name.size() <= 63 && (name[0] == '_' || (name[0] >= 'a' && name[0] <= 'z')) &&
                    name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string_view::npos;
    if (!ok)
        throw_error(error::invalid_argument, "postgres_store: schema name '" + sessionkit::detail::printable(name) +
                                                 "' must be 1-63 characters of a-z, 0-9 and _, not starting with a "
                                                 "digit");
}

/// `sql` with every "{S}" replaced by the quoted schema name.
inline std::string in_schema(std::string_view sql, std::string_view schema) {
    check_schema_name(schema);
    const std::string quoted = "\"" + std::string(schema) + "\"";
    std::string out;
    out.reserve(sql.size() + 16);
    for (std::size_t i = 0; i < sql.size();) {
        if (sql.compare(i, 3, "{S}") == 0) {
            out += quoted;
            i += 3;
        } else {
            out += sql[i++];
        }
    }
    return out;
}

/// The advisory lock key that serialises migrations of `schema` (64 bits
/// of FNV-1a of "sessionkit:" + schema, as PostgreSQL's signed bigint).
inline std::int64_t migration_lock_key(std::string_view schema) {
    return static_cast<std::int64_t>(sessionkit::detail::fnv1a_64(schema, sessionkit::detail::fnv1a_64("sessionkit:")));
}

/// Step 1: sessions, their output, their events (outbox and activity log),
/// named locks, the outbox's bookkeeping and the lifetime counters.
///
/// Times are bigint milliseconds since the Unix epoch, as the caller's
/// session_clock gave them (the store never reads a clock for a session):
/// exact, and the same numbers the other stores and the JSON form hold.
inline constexpr std::string_view step_1 = R"sql(
    CREATE TABLE {S}.sessions (
      id                text COLLATE "C" PRIMARY KEY,
      owner             text COLLATE "C" NOT NULL,
      status            text NOT NULL,
      created_at        bigint NOT NULL,
      last_active       bigint NOT NULL,
      idle_timeout_ms   bigint NOT NULL,
      idle_deadline     bigint NOT NULL,
      absolute_deadline bigint,
      ended_at          bigint,
      end_reason        text,
      version           bigint NOT NULL,
      worker            jsonb,
      warning_sent      boolean NOT NULL DEFAULT false,
      attributes        jsonb NOT NULL DEFAULT '{}',
      extra             jsonb NOT NULL DEFAULT '{}',
      outbox_partition  integer NOT NULL DEFAULT 0,
      output_end        bigint NOT NULL DEFAULT 0);
    CREATE INDEX sessions_owner_id ON {S}.sessions (owner, id);
    CREATE INDEX sessions_status_id ON {S}.sessions (status, id);
    CREATE INDEX sessions_due ON {S}.sessions (idle_deadline) WHERE status NOT IN ('terminated', 'failed');
    CREATE INDEX sessions_ended ON {S}.sessions (ended_at) WHERE status IN ('terminated', 'failed');

    CREATE TABLE {S}.session_output (
      session_id text COLLATE "C" NOT NULL REFERENCES {S}.sessions (id) ON DELETE CASCADE,
      "offset"   bigint NOT NULL,
      data       bytea NOT NULL,
      PRIMARY KEY (session_id, "offset"));

    CREATE SEQUENCE {S}.session_events_seq;
    CREATE TABLE {S}.session_events (
      seq        bigint PRIMARY KEY DEFAULT nextval('{S}.session_events_seq'),
      partition  integer NOT NULL,
      xid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
      event_id   text NOT NULL,
      session_id text COLLATE "C" NOT NULL,
      type       text NOT NULL,
      at         bigint NOT NULL,
      data       jsonb NOT NULL,
      relayed_at bigint);
    ALTER SEQUENCE {S}.session_events_seq OWNED BY {S}.session_events.seq;
    CREATE INDEX session_events_pending ON {S}.session_events (partition, xid, seq) WHERE relayed_at IS NULL;
    CREATE INDEX session_events_relayed ON {S}.session_events (relayed_at) WHERE relayed_at IS NOT NULL;
    CREATE INDEX session_events_by_session ON {S}.session_events (session_id, seq);

    CREATE TABLE {S}.outbox_partitions (
      partition integer PRIMARY KEY,
      dropped   bigint NOT NULL DEFAULT 0);
    CREATE TABLE {S}.outbox_dropped (
      seq        bigserial PRIMARY KEY,
      partition  integer NOT NULL,
      event_id   text NOT NULL,
      session_id text NOT NULL,
      type       text NOT NULL);

    CREATE TABLE {S}.session_locks (
      name       text COLLATE "C" PRIMARY KEY,
      token      text NOT NULL,
      expires_at bigint NOT NULL);

    CREATE TABLE {S}.settings (
      name  text PRIMARY KEY,
      value text NOT NULL);

    -- Lifetime counters: a write that counts inserts a row into
    -- counter_log in its own transaction (so a write that rolls back
    -- counts nothing, and inserts never wait for each other, where a
    -- counter row would be a lock every writer queues on); stats() moves
    -- the log into counter_totals.
    CREATE TABLE {S}.counter_log (
      name text NOT NULL);
    CREATE TABLE {S}.counter_totals (
      name text PRIMARY KEY,
      n    bigint NOT NULL);

    -- Appends `events` (a JSON array of event objects) to outbox partition
    -- p within the caller's transaction, keeping the partition under
    -- max_events: refuse (SQLSTATE SK001, the whole write rolls back) or
    -- drop the oldest waiting events, counted and their ids kept.
    CREATE FUNCTION {S}.outbox_append(p integer, events jsonb, max_events bigint, refuse boolean,
                                      ids_kept integer) RETURNS integer
    LANGUAGE plpgsql AS $fn$
    DECLARE
      incoming integer := jsonb_array_length(events);
      oldest bigint;
      depth bigint := 0;
      over bigint := 0;
    BEGIN
      IF incoming = 0 THEN
        RETURN 0;
      END IF;
      -- Cheap first: the partition's waiting events all have sequence
      -- numbers between its oldest waiting one and the sequence's last
      -- value, so while that span is under the bound nothing is counted.
      SELECT min(e.seq) INTO oldest FROM {S}.session_events e WHERE e.partition = p AND e.relayed_at IS NULL;
      IF oldest IS NOT NULL AND
         (SELECT s.last_value FROM {S}.session_events_seq s) - oldest + 1 + incoming > max_events THEN
        SELECT count(*) INTO depth FROM (
          SELECT 1 FROM {S}.session_events e WHERE e.partition = p AND e.relayed_at IS NULL LIMIT max_events + 1) w;
        over := depth + incoming - max_events;
      END IF;
      IF over > 0 AND refuse THEN
        RAISE EXCEPTION USING ERRCODE = 'SK001',
          MESSAGE = format('outbox partition %s is full (%s events waiting, the bound is %s)', p, depth, max_events);
      END IF;
      INSERT INTO {S}.session_events (partition, event_id, session_id, type, at, data)
        SELECT p, x.e->>'id', x.e->>'session_id', x.e->>'type', (x.e->>'time')::bigint, coalesce(x.e->'data', '{}')
        FROM jsonb_array_elements(events) WITH ORDINALITY AS x(e, n) ORDER BY x.n;
      IF over > 0 THEN
        WITH gone AS (
          DELETE FROM {S}.session_events d WHERE d.seq IN (
            SELECT e.seq FROM {S}.session_events e WHERE e.partition = p AND e.relayed_at IS NULL
            ORDER BY e.xid, e.seq LIMIT over FOR UPDATE SKIP LOCKED)
          RETURNING d.xid, d.seq, d.event_id, d.session_id, d.type)
        INSERT INTO {S}.outbox_dropped (partition, event_id, session_id, type)
          SELECT p, g.event_id, g.session_id, g.type FROM gone g ORDER BY g.xid, g.seq;
        GET DIAGNOSTICS over = ROW_COUNT;
        INSERT INTO {S}.outbox_partitions AS o (partition, dropped) VALUES (p, over)
          ON CONFLICT (partition) DO UPDATE SET dropped = o.dropped + excluded.dropped;
        DELETE FROM {S}.outbox_dropped d WHERE d.seq <= (SELECT max(k.seq) FROM {S}.outbox_dropped k) - ids_kept;
      END IF;
      RETURN incoming;
    END
    $fn$;
)sql";

/// The whole migration script for `schema`: lock, bookkeeping, then every
/// step not yet applied, in one transaction.
inline std::string migration_script(std::string_view schema) {
    check_schema_name(schema);
    std::string sql = "SELECT pg_advisory_xact_lock(" + std::to_string(migration_lock_key(schema)) + ");\n";
    sql += in_schema(R"sql(
CREATE SCHEMA IF NOT EXISTS {S};
CREATE TABLE IF NOT EXISTS {S}.schema_migrations (
  version     integer PRIMARY KEY,
  description text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now());
DO $migrate$
DECLARE
  current integer;
BEGIN
  SELECT coalesce(max(version), 0) INTO current FROM {S}.schema_migrations;
  IF current > )sql",
                     schema);
    sql += std::to_string(latest_version);
    sql += in_schema(R"sql( THEN
    RAISE EXCEPTION USING ERRCODE = 'SK002',
      MESSAGE = format('schema %s is at version %s, newer than this sessionkit knows (%s): upgrade sessionkit',
                       '{S}', current, )sql",
                     schema);
    sql += std::to_string(latest_version) + ");\n  END IF;\n  IF current < 1 THEN\n";
    sql += in_schema(step_1, schema);
    sql += in_schema(R"sql(
    INSERT INTO {S}.schema_migrations (version, description)
      VALUES (1, 'sessions, session_output, session_events, locks, counters');
  END IF;
END
$migrate$;
)sql",
                     schema);
    return sql;
}

}  // namespace sessionkit::postgres_schema

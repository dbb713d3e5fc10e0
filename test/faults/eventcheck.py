#!/usr/bin/env python3
"""Checks a stream of session events against the history of the operations
that caused them (issue 14's fault tests, test/faults).

Inputs (both JSON lines):

* the history, written by the load generator (harness.py), one line per
  operation::

    {"session": "f-3-17", "key": 4, "op": "patch", "outcome": "acked",
     "events": [{"type": "status_changed", "data": {"from": "active", "to": "idle"}}]}

  ``outcome`` is ``acked`` (a 2xx answer: the change happened, its events
  must be in the stream exactly once), ``ambiguous`` (no answer: the
  connection broke or timed out; its events may be there, once, or not at
  all), ``rejected`` (a definite non-2xx answer) or ``refused`` (never
  sent): the last two changed nothing and imply no event. ``key`` orders the
  operations of one session as their state changes happened: operations
  with the same key are alternatives for one state change (at most one of
  them happened; an acked one certainly did). ``events`` lists what the
  operation implies, in order; each expected event gives its ``type`` and
  the ``data`` fields that must match (others are not compared).

* the stream, as ``stream_tool dump`` prints it (a state line, then one line
  per message: ``seq``, ``subject``, ``msg_id``, ``data`` = the payload
  text), or a JSON-lines file of events (``--jsonl``: the payloads alone).

What is checked:

* every message is an event of the wire format (``v`` 1, ``id``, ``type``,
  ``session_id``, ``time``, ``data``), its subject is
  ``<prefix>.<type>.<encoded session id>`` and its ``Nats-Msg-Id`` header is
  the event's id (format errors); no sequence number is missing;
* no event id appears twice (duplicates; a JSON-lines file may repeat a
  line, at least once delivery, so ``--jsonl`` only reports them);
* per session, the stream's events are exactly the concatenation, in key
  order, of the acked operations' events and of any subset of the ambiguous
  ones' -- so an acked change whose event is missing is *lost*, an event no
  operation explains (a republished event under a new id, say) is
  *unexpected*, and the right events in the wrong order make the session
  *misordered*; independently of the history, each session's status chain
  must hold (every ``status_changed``/``terminated`` starts from the status
  the previous event left).

Exit status 0 when nothing was found, 1 otherwise; the last line is a
summary. ``check()`` is the same as a function (eventcheck_test.py feeds it
synthetic histories).
"""
import argparse
import collections
import json
import sys

PLAIN = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_:-")
FIELDS = ("v", "id", "type", "session_id", "time", "data")


def encode_token(session_id):
    """The subject token of a session id: bytes outside [A-Za-z0-9_:-] as %XX."""
    return "".join(chr(b) if b in PLAIN else "%%%02X" % b for b in session_id.encode())


def matches(expected, event):
    if expected.get("type") != event.get("type"):
        return False
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    return all(data.get(k) == v for k, v in expected.get("data", {}).items())


def pattern(expected):
    return (expected.get("type"), tuple(sorted((k, json.dumps(v)) for k, v in expected.get("data", {}).items())))


def describe(e):
    d = e.get("data") or {}
    if e.get("type") == "status_changed":
        return "status_changed %s->%s" % (d.get("from"), d.get("to"))
    if e.get("type") == "terminated":
        return "terminated from %s" % d.get("from")
    return str(e.get("type"))


class Result:
    def __init__(self):
        self.ops = collections.Counter()
        self.expected = 0  # events implied by acked operations
        self.found = 0  # distinct event ids in the stream
        self.ambiguous_landed = 0  # ambiguous operations whose events are there
        self.lost = 0
        self.duplicates = 0
        self.unexpected = 0
        self.misordered = 0  # sessions
        self.format_errors = 0
        self.gaps = 0
        self.conflicts = 0  # two acked operations claiming one state change
        self.problems = []  # human-readable, the first few of each kind
        self.allow_duplicates = False

    def note(self, kind, text, limit=8):
        if sum(1 for k, _ in self.problems if k == kind) < limit:
            self.problems.append((kind, text))

    def failed(self):
        dup = 0 if self.allow_duplicates else self.duplicates
        return any((self.lost, dup, self.unexpected, self.misordered, self.format_errors, self.gaps, self.conflicts))

    def summary(self, name="events"):
        return (
            "%s: ops acked %d ambiguous %d (read back: %d landed, %d not; unresolved with events: %d) "
            "rejected %d refused %d; "
            "events expected %d found %d; lost %d, duplicates %d%s, unexpected %d, misordered sessions %d, "
            "format errors %d, gaps %d, conflicts %d: %s"
            % (
                name,
                self.ops["acked"],
                self.ops["ambiguous"],
                self.ops["ambiguous landed"],
                self.ops["ambiguous not landed"],
                self.ambiguous_landed,
                self.ops["rejected"],
                self.ops["refused"],
                self.expected,
                self.found,
                self.lost,
                self.duplicates,
                " (allowed: at least once)" if self.allow_duplicates and self.duplicates else "",
                self.unexpected,
                self.misordered,
                self.format_errors,
                self.gaps,
                self.conflicts,
                "FAIL" if self.failed() else "ok",
            )
        )


def parse_stream(lines, result, jsonl=False, prefix="sessions"):
    """The events of the stream, in stream order, each {"seq", "event"}."""
    out = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            result.format_errors += 1
            result.note("format", "line %d is not JSON: %s" % (n, e))
            continue
        if jsonl:
            rec = {"seq": n, "subject": None, "msg_id": None, "data": line}
        if "stream" in rec and "seq" not in rec:
            first, last = rec.get("first_seq", 0), rec.get("last_seq", 0)
            if last and first != 1:
                result.gaps += first - 1
                result.note("gap", "the stream begins at sequence %d: messages 1..%d are gone" % (first, first - 1))
            continue
        if rec.get("missing"):
            result.gaps += 1
            result.note("gap", "sequence %s holds no message" % rec.get("seq"))
            continue
        try:
            ev = json.loads(rec["data"])
        except (ValueError, KeyError, TypeError) as e:
            result.format_errors += 1
            result.note("format", "message %s: payload is not JSON: %s" % (rec.get("seq"), e))
            continue
        bad = []
        if not isinstance(ev, dict):
            bad.append("not an object")
            ev = {}
        else:
            bad += ["no %s" % f for f in FIELDS if f not in ev]
            if ev.get("v") != 1:
                bad.append("v is %r" % ev.get("v"))
            if not isinstance(ev.get("data"), dict):
                bad.append("data is not an object")
            for f in ("id", "type", "session_id"):
                if f in ev and not isinstance(ev[f], str):
                    bad.append("%s is not a string" % f)
        if not jsonl and not bad:
            want = "%s.%s.%s" % (prefix, ev["type"], encode_token(ev["session_id"]))
            if rec.get("subject") != want:
                bad.append("subject %r, expected %r" % (rec.get("subject"), want))
            if rec.get("msg_id") != ev["id"]:
                bad.append("Nats-Msg-Id %r is not the event id %r" % (rec.get("msg_id"), ev["id"]))
        if bad:
            result.format_errors += 1
            result.note("format", "message %s: %s: %s" % (rec.get("seq"), "; ".join(bad), rec.get("data")))
            if not all(isinstance(ev.get(f), str) for f in ("id", "type", "session_id")):
                continue
        out.append({"seq": rec.get("seq"), "event": ev})
    return out


def match_session(slots, events):
    """Can `events` be read as the slots' events in order? Each slot is a
    (required, [event lists]) pair: a required slot contributes exactly its
    one list, an optional one nothing or one of its lists. Returns the
    choice made per slot (an index, or None) or None when impossible."""
    n, m = len(slots), len(events)
    # reach[i] = {j: (previous j, choice)}: after i slots, j events consumed.
    reach = [dict() for _ in range(n + 1)]
    reach[0][0] = None
    for i, (required, options) in enumerate(slots):
        for j in reach[i]:
            if not required and j not in reach[i + 1]:
                reach[i + 1][j] = (j, None)
            for c, evs in enumerate(options):
                k = j + len(evs)
                if k <= m and k not in reach[i + 1] and all(matches(e, events[j + x]) for x, e in enumerate(evs)):
                    reach[i + 1][k] = (j, c)
    if m not in reach[n]:
        return None
    choices, j = [], m
    for i in range(n, 0, -1):
        pj, c = reach[i][j]
        choices.append(c)
        j = pj
    return choices[::-1]


def status_chain_breaks(events, initial):
    """Model-free order check: each change starts where the previous one left."""
    breaks, cur = [], None
    for e in events:
        t, d = e.get("type"), e.get("data") or {}
        if t == "created":
            cur = initial
        elif t == "status_changed":
            if cur is not None and d.get("from") != cur:
                breaks.append("%s while the session was %s" % (describe(e), cur))
            cur = d.get("to")
        elif t == "terminated":
            if cur is not None and d.get("from") != cur:
                breaks.append("%s while the session was %s" % (describe(e), cur))
            cur = d.get("status")
        elif t == "expired":
            cur = "terminated"
    return breaks


def check(history_lines, stream_lines, jsonl=False, prefix="sessions", initial_status="active"):
    r = Result()
    r.allow_duplicates = jsonl
    ops = collections.defaultdict(list)
    history, resolved = [], {}
    for n, line in enumerate(history_lines, 1):
        line = line.strip()
        if not line:
            continue
        op = json.loads(line)
        if "resolved" in op:
            resolved[(op["session"], op["key"])] = op["resolved"]
            continue
        history.append(op)
    for op in history:
        r.ops[op["outcome"]] += 1
        if op["outcome"] == "ambiguous" and (op["session"], op["key"]) in resolved:
            # A read after it showed whether it landed: no longer optional.
            landed = resolved[(op["session"], op["key"])] == "landed"
            r.ops["ambiguous " + ("landed" if landed else "not landed")] += 1
            op = dict(op, outcome="acked" if landed else "rejected")
        if op["outcome"] in ("acked", "ambiguous"):
            ops[op["session"]].append(op)
            if op["outcome"] == "acked":
                r.expected += len(op.get("events", []))

    messages = parse_stream(stream_lines, r, jsonl=jsonl, prefix=prefix)
    seen = collections.Counter()
    per_session = collections.defaultdict(list)
    for m in messages:
        ev = m["event"]
        seen[ev["id"]] += 1
        if seen[ev["id"]] > 1:
            r.duplicates += 1
            r.note("duplicate", "event %s (%s of %s) again at sequence %s" % (ev["id"], describe(ev), ev["session_id"], m["seq"]))
            continue
        per_session[ev["session_id"]].append(m)
    r.found = len(seen)

    for session in sorted(set(ops) | set(per_session)):
        stream = per_session.get(session, [])
        events = [m["event"] for m in stream]
        by_key = collections.defaultdict(list)
        for op in ops.get(session, []):
            by_key[op["key"]].append(op)
        slots, slot_ops = [], []
        for key in sorted(by_key):
            acked = [op for op in by_key[key] if op["outcome"] == "acked"]
            if len(acked) > 1:
                r.conflicts += 1
                r.note("conflict", "%s: %d acked operations claim state change %s: %s"
                       % (session, len(acked), key, ", ".join(op["op"] for op in acked)))
            chosen = acked[:1] or [op for op in by_key[key] if op["outcome"] == "ambiguous"]
            slots.append((bool(acked), [op.get("events", []) for op in chosen]))
            slot_ops.append(chosen)
        choices = match_session(slots, events)
        breaks = status_chain_breaks(events, initial_status)
        if choices is not None and not breaks:
            r.ambiguous_landed += sum(1 for (req, _), c in zip(slots, choices) if not req and c is not None)
            continue
        # Which kind of failure: count each expected pattern.
        required, optional = collections.Counter(), collections.Counter()
        for (req, options) in slots:
            for evs in options[:1] if req else options:
                for e in evs:
                    (required if req else optional)[pattern(e)] += 1
        patterns = {p: e for (_, options) in slots for evs in options for e in evs for p in [pattern(e)]}
        present = collections.Counter()
        unexplained = []
        for m in stream:
            hit = [p for p, e in patterns.items() if matches(e, m["event"])]
            if hit:
                present[hit[0]] += 1
            else:
                unexplained.append(m)
        lost = sum(max(0, required[p] - present[p]) for p in required)
        extra = len(unexplained) + sum(max(0, present[p] - required[p] - optional[p]) for p in present)
        r.lost += lost
        r.unexpected += extra
        expected_text = "; ".join(
            "%s%s" % ("" if req else "maybe ", " | ".join(", ".join(describe(e) for e in evs) or "-" for evs in options))
            for req, options in slots)
        found_text = "; ".join("%s@%s" % (describe(m["event"]), m["seq"]) for m in stream)
        if lost:
            r.note("lost", "%s: %d event(s) of acknowledged changes missing. expected: %s. stream: %s"
                   % (session, lost, expected_text, found_text))
        if extra:
            r.note("unexpected", "%s: %d event(s) no operation explains: %s. expected: %s. stream: %s"
                   % (session, extra, ", ".join("%s@%s" % (describe(m["event"]), m["seq"]) for m in unexplained) or "surplus",
                      expected_text, found_text))
        if not lost and not extra:
            r.misordered += 1
            r.note("order", "%s: events out of order%s. expected: %s. stream: %s"
                   % (session, " (" + "; ".join(breaks[:3]) + (", ..." if len(breaks) > 3 else "") + ")" if breaks else "",
                      expected_text, found_text))
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("history", help="JSON lines, one per operation")
    ap.add_argument("stream", help="stream_tool dump output, or a JSON-lines event file with --jsonl")
    ap.add_argument("--jsonl", action="store_true", help="the stream is a JSON-lines file (duplicates allowed)")
    ap.add_argument("--prefix", default="sessions", help="subject prefix (default sessions)")
    ap.add_argument("--name", default="events", help="name in the summary line")
    args = ap.parse_args(argv)
    with open(args.history) as h, open(args.stream) as s:
        r = check(h, s, jsonl=args.jsonl, prefix=args.prefix)
    for kind, text in r.problems:
        print("%s: %s" % (kind, text))
    print(r.summary(args.name))
    return 1 if r.failed() else 0


if __name__ == "__main__":
    sys.exit(main())

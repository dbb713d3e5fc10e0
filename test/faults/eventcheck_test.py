#!/usr/bin/env python3
"""eventcheck.py catches what the fault tests are there to catch: fed
synthetic histories and streams, it passes a correct one (with ambiguous
operations that did and did not land) and names a lost event, a duplicate,
a reordering, an unexplained event, a wrong subject or Nats-Msg-Id, a gap,
and two acknowledged writes of one state change."""
import itertools
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eventcheck  # noqa: E402

_ids = itertools.count(1)


def created():
    return {"type": "created", "data": {"owner": ""}}


def changed(a, b):
    return {"type": "status_changed", "data": {"from": a, "to": b}}


def terminated(a):
    return {"type": "terminated", "data": {"reason": "deleted", "from": a, "status": "terminated"}}


def op(session, key, expected, outcome="acked", name="op"):
    return json.dumps({"session": session, "key": key, "op": name, "outcome": outcome, "events": expected})


def event(session, e, eid=None):
    return {"v": 1, "id": eid or "ev%05d" % next(_ids), "type": e["type"], "session_id": session,
            "time": 1893456000000, "data": dict(e["data"])}


def dump(events, subject=None, msg_id=None, first_seq=1, missing=()):
    lines = [json.dumps({"stream": "SESSIONS", "first_seq": first_seq, "last_seq": first_seq + len(events) - 1,
                         "messages": len(events), "deleted": 0})]
    for seq, ev in enumerate(events, first_seq):
        if seq in missing:
            lines.append(json.dumps({"seq": seq, "missing": True}))
            continue
        lines.append(json.dumps({
            "seq": seq,
            "subject": subject(ev) if subject else "sessions.%s.%s" % (ev["type"], eventcheck.encode_token(ev["session_id"])),
            "msg_id": msg_id(ev) if msg_id else ev["id"],
            "data": json.dumps(ev)}))
    return lines


class Scenario:
    """Two sessions' histories (one with a dot in its id) and a correct stream."""

    def __init__(self):
        self.history = [
            op("a.1", 0, [created()]),
            op("b-2", 0, [created()]),
            op("a.1", 1, [changed("active", "idle")]),
            op("b-2", 1, [changed("active", "waiting_input")]),
            op("a.1", 2, [changed("idle", "active")]),
            op("b-2", 2, [], outcome="rejected"),
            op("a.1", 3, [terminated("active")]),
            op("b-2", 3, [terminated("waiting_input")]),
        ]
        s = [event("a.1", created()), event("b-2", created()), event("a.1", changed("active", "idle")),
             event("b-2", changed("active", "waiting_input")), event("a.1", changed("idle", "active")),
             event("a.1", terminated("active")), event("b-2", terminated("waiting_input"))]
        self.events = s

    def check(self, events=None, history=None, **kw):
        return eventcheck.check(history or self.history, dump(self.events if events is None else events), **kw)


class CheckerTest(unittest.TestCase):
    def assertClean(self, r):
        self.assertFalse(r.failed(), r.summary() + "\n" + "\n".join(t for _, t in r.problems))

    def test_a_correct_stream_passes(self):
        r = Scenario().check()
        self.assertClean(r)
        self.assertEqual((r.expected, r.found, r.ops["acked"], r.ops["rejected"]), (7, 7, 7, 1))

    def test_a_lost_event_is_caught(self):
        sc = Scenario()
        del sc.events[2]  # a.1 active->idle
        r = sc.check()
        self.assertTrue(r.failed())
        self.assertEqual((r.lost, r.duplicates, r.unexpected, r.misordered), (1, 0, 0, 0))
        self.assertIn("a.1", r.problems[0][1])

    def test_a_duplicate_event_id_is_caught(self):
        sc = Scenario()
        r = sc.check(sc.events[:4] + [sc.events[2]] + sc.events[4:])
        self.assertTrue(r.failed())
        self.assertEqual((r.lost, r.duplicates, r.unexpected, r.misordered), (0, 1, 0, 0))

    def test_a_duplicate_is_only_reported_for_a_jsonl_file(self):
        sc = Scenario()
        lines = [json.dumps(e) for e in sc.events[:3] + [sc.events[2]] + sc.events[3:]]
        r = eventcheck.check(sc.history, lines, jsonl=True)
        self.assertClean(r)
        self.assertEqual(r.duplicates, 1)

    def test_a_republished_event_under_a_new_id_is_unexpected(self):
        sc = Scenario()
        again = dict(sc.events[2], id="fresh-id")
        r = sc.check(sc.events[:3] + [again] + sc.events[3:])
        self.assertTrue(r.failed())
        self.assertEqual((r.lost, r.duplicates, r.unexpected), (0, 0, 1))

    def test_a_reordering_within_a_session_is_caught(self):
        sc = Scenario()
        e = sc.events
        # a.1's idle->active before its active->idle: every event there, wrong order.
        r = sc.check([e[0], e[1], e[4], e[3], e[2], e[5], e[6]])
        self.assertTrue(r.failed())
        self.assertEqual((r.lost, r.duplicates, r.unexpected, r.misordered), (0, 0, 0, 1))
        self.assertIn("a.1", r.problems[0][1])

    def test_a_terminated_before_a_status_change_is_caught(self):
        sc = Scenario()
        e = sc.events
        r = sc.check([e[0], e[1], e[2], e[3], e[5], e[4], e[6]])
        self.assertEqual(r.misordered, 1)

    def test_interleaving_of_different_sessions_is_not_an_error(self):
        sc = Scenario()
        e = sc.events
        self.assertClean(sc.check([e[1], e[3], e[6], e[0], e[2], e[4], e[5]]))

    def test_ambiguous_operations_may_or_may_not_have_landed(self):
        sc = Scenario()
        sc.history.append(op("a.1", 1.5, [changed("idle", "waiting_input")], outcome="ambiguous"))
        r = sc.check()
        self.assertClean(r)
        self.assertEqual(r.ambiguous_landed, 0)
        # ...but an ambiguous op whose event landed fits only where it happened.
        hist = [op("c", 0, [created()]), op("c", 1, [changed("active", "idle")], outcome="ambiguous"),
                op("c", 2, [changed("idle", "active")])]
        ok = [event("c", created()), event("c", changed("active", "idle")), event("c", changed("idle", "active"))]
        r = eventcheck.check(hist, dump(ok))
        self.assertClean(r)
        self.assertEqual(r.ambiguous_landed, 1)
        r = eventcheck.check(hist, dump([ok[0], ok[2], ok[1]]))
        self.assertEqual(r.misordered, 1)

    def test_an_ambiguous_operation_read_back_is_no_longer_optional(self):
        hist = [op("c", 0, [created()]), op("c", 1, [changed("active", "idle")], outcome="ambiguous"),
                op("c", 2, [changed("idle", "active")])]
        evs = [event("c", created()), event("c", changed("active", "idle")), event("c", changed("idle", "active"))]
        landed = json.dumps({"session": "c", "key": 1, "resolved": "landed"})
        not_landed = json.dumps({"session": "c", "key": 1, "resolved": "not_landed"})
        self.assertClean(eventcheck.check(hist + [landed], dump(evs)))
        # It landed (the session's version moved) and its event is not there: lost.
        r = eventcheck.check(hist + [landed], dump([evs[0], evs[2]]))
        self.assertEqual((r.lost, r.unexpected, r.ops["ambiguous landed"]), (1, 0, 1))
        # It did not land, and there is an event for it: unexpected.
        r = eventcheck.check(hist + [not_landed], dump(evs))
        self.assertEqual((r.lost, r.unexpected), (0, 1))

    def test_alternatives_for_one_state_change(self):
        # Compare-and-swap from two clients at version 2: one acked, one refused;
        # a third ambiguous at version 3 that did land.
        hist = [op("d", 1, [created()]),
                op("d", 2, [changed("active", "idle")]),
                op("d", 2, [changed("active", "waiting_input")], outcome="ambiguous"),
                op("d", 2, [], outcome="rejected"),
                op("d", 3, [changed("idle", "active")], outcome="ambiguous"),
                op("d", 3, [changed("idle", "waiting_input")], outcome="ambiguous")]
        evs = [event("d", created()), event("d", changed("active", "idle")), event("d", changed("idle", "waiting_input"))]
        r = eventcheck.check(hist, dump(evs))
        self.assertClean(r)
        # The ambiguous alternative of the acked change cannot have landed too.
        r = eventcheck.check(hist, dump(evs[:2] + [event("d", changed("active", "waiting_input"))]))
        self.assertTrue(r.failed())
        # Two acked writes of one version: the store let two compare-and-swaps win.
        r = eventcheck.check(hist + [op("d", 2, [changed("active", "waiting_input")])], dump(evs))
        self.assertEqual(r.conflicts, 1)

    def test_a_status_chain_break_is_caught_without_a_history(self):
        evs = [event("e", created()), event("e", changed("active", "idle")), event("e", changed("active", "idle"))]
        hist = [op("e", 0, [created()]), op("e", 1, [changed("active", "idle")]),
                op("e", 2, [changed("active", "idle")], outcome="ambiguous")]
        r = eventcheck.check(hist, dump(evs))
        self.assertEqual(r.misordered, 1)

    def test_an_event_of_an_unknown_session_is_unexpected(self):
        sc = Scenario()
        r = sc.check(sc.events + [event("stranger", created())])
        self.assertEqual(r.unexpected, 1)

    def test_a_wrong_subject_or_message_id_is_a_format_error(self):
        sc = Scenario()
        # The id's '.' not encoded: a subject with one token too many.
        r = eventcheck.check(sc.history, dump(sc.events, subject=lambda e: "sessions.%s.%s" % (e["type"], e["session_id"])))
        self.assertEqual(r.format_errors, 4)  # a.1's four events
        self.assertTrue(r.failed())
        r = eventcheck.check(sc.history, dump(sc.events, msg_id=lambda e: None))
        self.assertEqual(r.format_errors, 7)
        r = eventcheck.check(sc.history, dump(sc.events, subject=lambda e: "sessions.created.%s" % e["session_id"].replace(".", "%2E")))
        self.assertEqual(r.format_errors, 5)  # every event that is not `created`

    def test_a_gap_in_the_stream_is_caught(self):
        sc = Scenario()
        r = eventcheck.check(sc.history, dump(sc.events, missing={3}))
        self.assertGreaterEqual(r.gaps, 1)
        self.assertTrue(r.failed())
        r = eventcheck.check(sc.history, dump(sc.events, first_seq=5))
        self.assertEqual(r.gaps, 4)

    def test_encoding_of_ids(self):
        self.assertEqual(eventcheck.encode_token("alice-1"), "alice-1")
        self.assertEqual(eventcheck.encode_token("a.b"), "a%2Eb")
        self.assertEqual(eventcheck.encode_token("x:y_z"), "x:y_z")
        self.assertEqual(eventcheck.encode_token("p%q"), "p%25q")

    def test_the_command_line_fails_on_a_lost_event(self):
        import tempfile
        sc = Scenario()
        with tempfile.TemporaryDirectory() as d:
            h, s = os.path.join(d, "h"), os.path.join(d, "s")
            with open(h, "w") as f:
                f.write("\n".join(sc.history) + "\n")
            with open(s, "w") as f:
                f.write("\n".join(dump(sc.events[1:])) + "\n")
            self.assertEqual(eventcheck.main([h, s, "--name", "cli"]), 1)
            with open(s, "w") as f:
                f.write("\n".join(dump(sc.events)) + "\n")
            self.assertEqual(eventcheck.main([h, s]), 0)


if __name__ == "__main__":
    unittest.main()

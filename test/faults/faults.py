#!/usr/bin/env python3
"""Fault tests of durable events (issue 14): sessiond under HTTP load while a
server is killed, then the whole JetStream stream checked against the
history of acknowledged operations (eventcheck.py).

    faults.py SCENARIO --sessiond PATH --stream-tool PATH [--sink nats|jsonl] [--keep]

Scenarios (doc/events.md, "Tested failures"):

  nats-kill      nats-server SIGKILLed mid-load and restarted on the same
                 JetStream store: 0 lost, 0 duplicates, order kept.
  sessiond-kill  sessiond (--store redis --events nats) SIGKILLed mid-load,
                 twice, and restarted: its outbox in Redis is republished
                 by the new process, same ids: 0 lost, 0 duplicates.
  takeover       three sessiond on one Redis (--relay-lease 1); one is
                 SIGKILLed mid-load and stays dead: the survivors take its
                 partitions over and the outbox drains: 0 lost, 0 duplicates.
  nats-outage    NATS down for --outage seconds (default 60) under load:
                 every operation succeeds, the outbox depth grows while it
                 is down and drains to 0 once it is back; 0 lost, 0 dup.
  order          three sessiond on one Redis, a few hot sessions changed
                 concurrently through all of them (compare-and-swap), one
                 sessiond paused past its lease (SIGSTOP/SIGCONT) and one
                 SIGKILLed: every session's events in the stream follow the
                 order of its versions.
  stream-tool    the consumer itself: events published to a private
                 JetStream (with a repeated Nats-Msg-Id) read back whole,
                 the checker clean; a repeat under a new id is caught.

Every scenario prints one summary line: ops acked/ambiguous, events
expected/found, lost, duplicates. Exit 0 pass, 1 fail, 77 skip (a server
program missing; 1 under CI=true).

--sink jsonl runs the same load against `--events jsonl:PATH` instead of
NATS (a file repeats lines after a retry: duplicates are only reported), to
try the machinery on a sessiond without NATS support.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eventcheck  # noqa: E402
from harness import (Env, Failure, History, Load, Nats, Redis, Sessiond, depth, dump_stream,  # noqa: E402
                     log, main_wrapper, need_program, wait_drained)

STREAM = "SESSIONS"


class Run:
    """One scenario's servers, load and final check."""

    def __init__(self, args, name):
        self.args, self.name = args, name
        self.env = Env(name)
        self.tag = "f%x" % (int(time.time() * 1000) % 0xFFFFFF)
        self.nats = None
        self.redis = None
        self.daemons = []
        self.events_file = os.path.join(self.env.dir, "events.jsonl")
        self.history = History(os.path.join(self.env.dir, "history.jsonl"))
        self.facts = []
        self.drain_failure = None

    def start_nats(self):
        if self.args.sink == "nats" or self.name == "stream-tool":
            self.nats = self.env.add(Nats(self.env)).start()
            log("nats-server on %s (JetStream store %s)" % (self.nats.url, self.nats.store))

    def start_redis(self):
        self.redis = self.env.add(Redis(self.env)).start()
        log("redis-server on %s" % self.redis.url)

    def add_daemon(self, store="memory", lease=1.0, extra=()):
        args = ["--store", store, "--relay-lease", str(lease), "--relay-poll", "0.05", "--janitor-interval", "5"]
        if store == "redis":
            args += ["--redis-url", self.redis.url, "--redis-prefix", "faults:"]
        if self.args.sink == "nats":
            args += ["--events", "nats", "--nats-url", self.nats.url, "--nats-stream", STREAM]
        else:
            args += ["--events", "jsonl:" + self.events_file]
        d = Sessiond(self.env, "sessiond-%d" % (len(self.daemons) + 1), self.args.sessiond, list(args) + list(extra))
        self.env.add(d).start()
        self.daemons.append(d)
        log("%s on port %d" % (d.name, d.addr[1]))
        return d

    def check(self, drain_timeout=60):
        try:
            took = wait_drained([d for d in self.daemons if d.addr], drain_timeout)
            self.facts.append("drained in %.1f s" % took)
        except Failure as e:  # still compare what did arrive
            self.drain_failure = str(e)
        self.history.close()
        if self.args.sink == "nats":
            path = os.path.join(self.env.dir, "stream.jsonl")
            head = dump_stream(self.args.stream_tool, self.nats.url, STREAM, path)
            jsonl = False
            self.facts.append("stream %s holds %d messages" % (STREAM, head["messages"]))
        else:
            path, jsonl = self.events_file, True
        with open(self.history.path) as h, open(path) as s:
            r = eventcheck.check(h, s, jsonl=jsonl)
        for kind, text in r.problems:
            print("%s: %s" % (kind, text))
        return r

    def finish(self, r, extra_failures=()):
        for f in self.facts:
            log(f)
        failures = list(extra_failures)
        if self.drain_failure:
            failures.insert(0, self.drain_failure)
        if r.failed():
            failures.append("the stream does not match the acknowledged history")
        print(r.summary("faults." + self.name))
        if failures:
            raise Failure("; ".join(failures))
        return 0

    def close(self, ok):
        if not ok:
            print(self.env.logs())
        self.env.close(keep=self.args.keep or (not ok and bool(os.environ.get("FAULTS_KEEP"))))


def publish_errors(d):
    return int(d.metrics().get("sessionkit_events_publish_errors_total", 0))


# ---- scenarios -----------------------------------------------------------------

def nats_kill(run):
    run.start_nats()
    d = run.add_daemon("memory")
    load = Load(run.daemons, run.history, run.tag, threads=4, rate=run.args.rate).start()
    time.sleep(run.args.warmup)
    for cycle in range(2):
        before = run.history.counts.get("acked", 0)
        log("SIGKILL nats-server (cycle %d)" % (cycle + 1))
        if run.nats:  # (--sink jsonl: no NATS, the load alone)
            run.nats.kill(signal.SIGKILL)
        time.sleep(2)
        if run.nats:
            run.nats.start()
        log("nats-server back; %d ops acked while it was down" % (run.history.counts.get("acked", 0) - before))
        time.sleep(run.args.warmup)
    load.stop()
    errs = publish_errors(d) if run.args.sink == "nats" else 0
    run.facts.append("relay publish errors while NATS was down: %d" % errs)
    r = run.check()
    fails = []
    if run.args.sink == "nats" and errs == 0:
        fails.append("the relay never failed a publish: the kills missed the stream")
    if run.history.counts.get("ambiguous", 0) or run.history.counts.get("refused", 0):
        fails.append("session operations failed while NATS was down (they must not)")
    return run.finish(r, fails)


def sessiond_kill(run):
    """Two kills: one in plain running (the outbox nearly empty), one with a
    backlog and a batch in flight: nats-server is paused (SIGSTOP) so the
    relay's publish hangs and the outbox fills, sessiond is killed, NATS
    resumes (and stores the batch the dead process sent), and the new
    sessiond republishes everything untrimmed: JetStream must drop what it
    already holds, by id."""
    run.start_nats()
    run.start_redis()
    d = run.add_daemon("redis", lease=1.0)
    load = Load(run.daemons, run.history, run.tag, threads=4, rate=run.args.rate).start()
    time.sleep(run.args.warmup)
    fails = []
    for cycle in (1, 2):
        if cycle == 2 and run.nats:
            run.nats.send_signal(signal.SIGSTOP)
            time.sleep(2)
        backlog = depth(run.daemons)
        log("SIGKILL %s (cycle %d%s; outbox depth %s)"
            % (d.name, cycle, ", nats-server paused for 2 s" if cycle == 2 and run.nats else "", backlog))
        d.kill(signal.SIGKILL)
        if cycle == 2 and run.nats:
            run.nats.send_signal(signal.SIGCONT)
            if backlog is None or backlog < 100:
                fails.append("the outbox held only %s events at the second kill" % backlog)
        time.sleep(0.5)
        d.start()
        run.facts.append("kill %d: outbox depth %s at the kill" % (cycle, backlog))
        log("%s back on port %d" % (d.name, d.addr[1]))
        time.sleep(run.args.warmup)
    load.stop()
    r = run.check()
    run.facts.append("ambiguous operations (in flight at a kill): %d" % run.history.counts.get("ambiguous", 0))
    return run.finish(r, fails)


def published(d):
    return int(d.metrics().get("sessionkit_events_published_total", 0))


def takeover(run):
    run.start_nats()
    run.start_redis()
    for _ in range(3):
        run.add_daemon("redis", lease=1.0)
    load = Load(run.daemons, run.history, run.tag, threads=6, rate=run.args.rate).start()
    time.sleep(run.args.warmup)
    # The victim is the sessiond relaying the most: the first one started
    # leases every partition, and the others wait for a lease to run out.
    before = {d.name: published(d) for d in run.daemons}
    victim = max(run.daemons, key=lambda d: before[d.name])
    calm = [depth(run.daemons) for _ in range(4) if time.sleep(0.25) is None]
    log("SIGKILL %s, which stays dead (events published so far: %s; outbox depth %s)" % (victim.name, before, calm))
    victim.kill(signal.SIGKILL)
    t0 = time.monotonic()
    survivors = [d for d in run.daemons if d is not victim]
    samples = []
    while time.monotonic() - t0 < run.args.warmup + 1:
        samples.append((time.monotonic() - t0, depth(survivors)))
        time.sleep(0.25)
    load.stop()
    peak = max(samples, key=lambda s: s[1])
    settled = max(20, 2 * max(calm))
    back = next((t for t, dp in samples if t > peak[0] and dp <= settled), None)
    log("outbox depth after the kill (s: depth): %s" % ", ".join("%.1f: %d" % s for s in samples))
    r = run.check(drain_timeout=30)
    after = {d.name: published(d) for d in survivors}
    run.facts.append("victim %s had published %d events; survivors %s -> %s; depth peaked at %d %.1f s after the kill, "
                     "back to <= %d after %s s (relay lease 1 s), load still running"
                     % (victim.name, before[victim.name], {d.name: before[d.name] for d in survivors}, after, peak[1],
                        peak[0], settled, "%.1f" % back if back is not None else "never"))
    fails = []
    if before[victim.name] == 0:
        fails.append("no sessiond had published anything before the kill")
    if back is None or back > 5:
        fails.append("the survivors did not take the victim's partitions over within 5 s of the kill")
    if sum(after.values()) <= sum(before[d.name] for d in survivors):
        fails.append("the survivors published nothing after the kill")
    return run.finish(r, fails)


def nats_outage(run):
    run.start_nats()
    run.start_redis()
    run.add_daemon("redis", lease=1.0)
    load = Load(run.daemons, run.history, run.tag, threads=4, rate=run.args.outage_rate).start()
    time.sleep(run.args.warmup)
    fails = []
    log("stopping nats-server for %d s" % run.args.outage)
    if run.nats:
        run.nats.kill(signal.SIGTERM)
    t0 = time.monotonic()
    samples = [depth(run.daemons)]
    while time.monotonic() - t0 < run.args.outage:
        time.sleep(1)
        samples.append(depth(run.daemons))
    t1 = time.monotonic()
    appended = run.history.acked_events_between(t0, t1)
    log("outbox depth while NATS was down (every s): %s" % samples)
    run.facts.append("outage %.0f s: depth %d -> %d, events of acked operations in it %d"
                     % (t1 - t0, samples[0], samples[-1], appended))
    # (From the first second on: a batch NATS acknowledged as it shut down
    # may still be trimmed just after the first sample.)
    if any(b < a for a, b in zip(samples[1:], samples[2:])):
        fails.append("the outbox shrank while NATS was down: %s" % samples)
    if run.args.sink == "nats" and samples[-1] - samples[0] < 0.9 * appended:
        fails.append("the outbox grew by %d while %d events were written" % (samples[-1] - samples[0], appended))
    if appended == 0:
        fails.append("no operation was acknowledged while NATS was down")
    if run.nats:
        run.nats.start()
    t2 = time.monotonic()
    log("nats-server back")
    time.sleep(2)
    load.stop()
    wait_drained(run.daemons, 60)
    run.facts.append("outbox drained %.1f s after NATS came back (load stopped 2 s after it)" % (time.monotonic() - t2))
    bad = {k: v for k, v in run.history.counts.items() if k != "acked"}
    if bad:
        fails.append("operations failed during the outage: %s" % bad)
    r = run.check()
    return run.finish(r, fails)


def order(run):
    run.start_nats()
    run.start_redis()
    for _ in range(3):
        run.add_daemon("redis", lease=1.0)
    load = Load(run.daemons, run.history, run.tag, threads=6, mode="contended", sessions=run.args.hot,
                rate=run.args.rate).start()
    time.sleep(run.args.warmup)
    # Pause the relay holding the partitions past its lease: the others take
    # them over while it still holds a batch; then kill the new main holder.
    paused = max(run.daemons, key=published)
    log("SIGSTOP %s for 3 s (3 leases)" % paused.name)
    paused.send_signal(signal.SIGSTOP)
    time.sleep(3)
    paused.send_signal(signal.SIGCONT)
    log("SIGCONT %s" % paused.name)
    time.sleep(run.args.warmup)
    victim = max((d for d in run.daemons if d is not paused), key=published)
    log("SIGKILL %s" % victim.name)
    victim.kill(signal.SIGKILL)
    time.sleep(run.args.warmup)
    load.stop()
    r = run.check(drain_timeout=30)
    with open(paused.log_path, errors="replace") as f:
        lost_leases = f.read().count("lost the lease")
    run.facts.append("%d hot sessions, %d changes acked, %d lost their compare-and-swap; %s found %d leases taken "
                     "over when it woke" % (run.args.hot, run.history.counts.get("acked", 0),
                                            run.history.counts.get("rejected", 0), paused.name, lost_leases))
    fails = []
    if run.args.sink == "nats" and lost_leases == 0:
        fails.append("the paused sessiond lost no lease: nobody took its partitions over")
    return run.finish(r, fails)


def stream_tool_selftest(run):
    """The consumer reads every message, and JetStream drops a repeated
    Nats-Msg-Id: publish events of a synthetic history (one of them twice,
    same id), dump, check: clean. Then the same event under a new id: the
    checker must call it unexpected."""
    run.start_nats()
    hist = []
    lines = []
    n = 0
    for s in range(20):
        sid = "st-%d%s" % (s, ".y" if s % 2 else "")
        evs = [{"type": "created", "data": {"owner": ""}},
               {"type": "status_changed", "data": {"from": "active", "to": "idle"}},
               {"type": "terminated", "data": {"reason": "deleted", "from": "idle", "status": "terminated"}}]
        for k, e in enumerate(evs):
            n += 1
            ev = {"v": 1, "id": "selftest%018d" % n, "type": e["type"], "session_id": sid, "time": 1893456000000 + n,
                  "data": e["data"]}
            hist.append(json.dumps({"session": sid, "key": k, "op": e["type"], "outcome": "acked", "events": [e]}))
            subject = "sessions.%s.%s" % (ev["type"], eventcheck.encode_token(sid))
            lines.append("%s\t%s\t%s" % (subject, ev["id"], json.dumps(ev)))
    repeated = lines[:5] + [lines[4]] + lines[5:]  # a retried publish: same id

    def publish(text):
        r = subprocess.run([run.args.stream_tool, "publish", run.nats.url, STREAM], input=text.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if r.returncode:
            raise Failure("stream_tool publish: %s" % r.stderr.decode())
        return r.stdout.decode().strip()

    out = publish("\n".join(repeated) + "\n")
    if out != "published %d duplicates 1" % len(repeated):
        raise Failure("JetStream did not drop the repeated Nats-Msg-Id: %s" % out)
    path = os.path.join(run.env.dir, "stream.jsonl")
    head = dump_stream(run.args.stream_tool, run.nats.url, STREAM, path)
    with open(path) as s:
        r = eventcheck.check(hist, s)
    print(r.summary("faults.stream-tool (whole stream)"))
    if r.failed() or head["messages"] != len(lines) or r.found != len(lines):
        raise Failure("the dump did not give back the %d events published (%s)" % (len(lines), head))
    # The same event again under a new id (a relay that re-minted ids).
    again = json.loads(lines[7].split("\t")[2])
    again["id"] = "selftest-reminted"
    subject = lines[7].split("\t")[0]
    publish("%s\t%s\t%s\n" % (subject, again["id"], json.dumps(again)))
    dump_stream(run.args.stream_tool, run.nats.url, STREAM, path)
    with open(path) as s:
        r = eventcheck.check(hist, s)
    print(r.summary("faults.stream-tool (a re-minted id: must be caught)"))
    if r.unexpected != 1 or r.lost or r.duplicates:
        raise Failure("a republished event under a new id was not caught as unexpected")
    print("faults.stream-tool: ok")
    return 0


SCENARIOS = {
    "nats-kill": nats_kill,
    "sessiond-kill": sessiond_kill,
    "takeover": takeover,
    "nats-outage": nats_outage,
    "order": order,
    "stream-tool": stream_tool_selftest,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--sessiond", help="the sessiond binary")
    ap.add_argument("--stream-tool", required=True, help="the stream_tool binary (dump/publish)")
    ap.add_argument("--sink", choices=("nats", "jsonl"), default="nats")
    ap.add_argument("--warmup", type=float, default=4.0, help="seconds of load before and after each fault")
    ap.add_argument("--outage", type=float, default=60.0, help="nats-outage: seconds NATS stays down")
    ap.add_argument("--rate", type=float, default=400.0, help="operations per second, all load threads together")
    ap.add_argument("--outage-rate", type=float, default=150.0, help="nats-outage: operations per second")
    ap.add_argument("--hot", type=int, default=12, help="order: sessions changed concurrently")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, history, stream dump)")
    args = ap.parse_args()

    def go():
        need_program(args.stream_tool)
        if args.scenario != "stream-tool" and not args.sessiond:
            raise Failure("--sessiond is required")
        run = Run(args, args.scenario)
        ok = False
        try:
            status = SCENARIOS[args.scenario](run)
            ok = status == 0
            return status
        finally:
            run.close(ok)

    return main_wrapper(go)


if __name__ == "__main__":
    sys.exit(main())

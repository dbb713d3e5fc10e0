"""Servers, sessiond processes and HTTP load for the event fault tests
(faults.py). Python 3 standard library only.

Every server is private to one test: a nats-server with JetStream on a file
store under the test's temp dir (killing it hurts nobody else), a
redis-server without persistence, and sessiond processes, each on a free
127.0.0.1 port. The load records every operation it sends in a history
(eventcheck.py's input): acked (2xx), ambiguous (sent, no answer: the
process died or the connection broke), rejected (a 4xx) or refused (never
sent: nothing listened).
"""
import http.client
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


class Skip(Exception):
    """Something the test needs is not installed here."""


class Failure(Exception):
    """The test failed; the message says how."""


def need_program(name, *fallbacks):
    path = shutil.which(name)
    for f in fallbacks:
        if not path and os.access(f, os.X_OK):
            path = f
    if not path:
        raise Skip("%s not found" % name)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def wait_for(what, predicate, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except (OSError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            raise Failure("%s: not within %.0f s" % (what, timeout))
        time.sleep(interval)


def tail(path, n=25):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no %s)\n" % path


class Env:
    """A temp dir and every process started in it; close() stops them all."""

    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="faults-%s-" % name)
        self.servers = []

    def add(self, server):
        self.servers.append(server)
        return server

    def logs(self):
        return "".join("----- %s (%s)\n%s" % (s.name, s.log_path, tail(s.log_path)) for s in self.servers)

    def close(self, keep=False):
        for s in reversed(self.servers):
            s.stop()
        if keep:
            log("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


class Process:
    """One server process that can be killed, paused and started again."""

    def __init__(self, env, name):
        self.env, self.name = env, name
        self.proc = None
        self.log_path = os.path.join(env.dir, name + ".log")

    def _spawn(self, argv, env=None):
        with open(self.log_path, "ab") as out:
            out.write(("==== %s: %s\n" % (time.strftime("%H:%M:%S"), " ".join(argv))).encode())
            out.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
                                         env=env)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def kill(self, sig=signal.SIGKILL):
        """Sends sig and waits for the process to end."""
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.down()

    def down(self):
        pass

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
            self.kill(signal.SIGTERM)


class Nats(Process):
    """nats-server with JetStream; keeps its port and store across restarts."""

    def __init__(self, env):
        super().__init__(env, "nats-server")
        self.binary = need_program("nats-server", "/usr/sbin/nats-server", "/usr/local/bin/nats-server")
        self.port, self.mport = free_port(), free_port()
        self.store = os.path.join(env.dir, "jetstream")
        self.conf = os.path.join(env.dir, "nats.conf")
        with open(self.conf, "w") as f:
            f.write('host: 127.0.0.1\nport: %d\nhttp: "127.0.0.1:%d"\nserver_name: faults\n'
                    'jetstream {\n  store_dir: "%s"\n  max_memory_store: 64MB\n  max_file_store: 1GB\n}\n'
                    % (self.port, self.mport, self.store))
        self.url = "nats://127.0.0.1:%d" % self.port

    def ready(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz?js-enabled-only=true" % self.mport, timeout=2) as r:
            if r.status != 200:
                return False
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            info = s.recv(4096)
        return info.startswith(b"INFO") and b'"jetstream":true' in info

    def start(self):
        self._spawn([self.binary, "-c", self.conf])
        wait_for("nats-server on port %d" % self.port, lambda: self.alive() and self.ready(), 30)
        return self


class Redis(Process):
    def __init__(self, env):
        super().__init__(env, "redis-server")
        self.binary = need_program("redis-server")
        self.port = free_port()
        self.url = "redis://127.0.0.1:%d/0" % self.port

    def ping(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")

    def start(self):
        self._spawn([self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.env.dir,
                     "--save", "", "--appendonly", "no", "--daemonize", "no"])
        wait_for("redis-server on port %d" % self.port, lambda: self.alive() and self.ping(), 30)
        return self

    def stop(self):
        if self.alive():
            self.kill(signal.SIGKILL)  # test data only


class Sessiond(Process):
    """sessiond on --listen 127.0.0.1:0; addr is None while it is down."""

    def __init__(self, env, name, binary, args):
        super().__init__(env, name)
        self.binary, self.args = binary, list(args)
        self.addr = None

    def start(self):
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        # Only our flags: a SESSIOND_TOKEN or USE_REDIS of the caller's
        # environment would change what the test talks to.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("SESSIOND_") and k not in ("SESSIONKIT_TOKEN", "USE_REDIS", "REDIS_URL", "NATS_URL")}
        self._spawn([self.binary, "--listen", "127.0.0.1:0", "--keepalive-timeout", "600"] + self.args, env)
        port = []

        def started():
            if not self.alive():
                raise Failure("%s exited at start (status %s):\n%s" % (self.name, self.proc.returncode, tail(self.log_path)))
            with open(self.log_path, errors="replace") as f:
                f.seek(offset)
                m = re.search(r'"port":(\d+)', f.read())
            if m:
                port.append(int(m.group(1)))
            return bool(port)

        wait_for("%s start" % self.name, started, 20)
        self.addr = ("127.0.0.1", port[0])
        return self

    def down(self):
        self.addr = None

    def get(self, path, timeout=5):
        if not self.addr:
            raise Failure("%s is down" % self.name)
        with urllib.request.urlopen("http://%s:%d%s" % (self.addr + (path,)), timeout=timeout) as r:
            return r.read().decode()

    def metrics(self):
        """The unlabelled samples of /metrics, name -> float."""
        out = {}
        for line in self.get("/metrics").splitlines():
            m = re.match(r"^([a-z_]+) ([0-9.eE+-]+)$", line)
            if m:
                out[m.group(1)] = float(m.group(2))
        return out


# ---- HTTP load ------------------------------------------------------------------

class Refused(Exception):
    """Nothing was sent: the daemon is down or did not accept the connection."""


class Ambiguous(Exception):
    """Sent, and no answer: the operation may or may not have happened."""


class Client:
    """Keep-alive connections of one load thread, one per daemon address."""

    def __init__(self, timeout=10):
        self.timeout = timeout
        self.conns = {}

    def request(self, daemon, method, path, body=None, headers=None):
        addr = daemon.addr
        if addr is None:
            raise Refused()
        conn = self.conns.get(addr)
        if conn is None:
            conn = http.client.HTTPConnection(addr[0], addr[1], timeout=self.timeout)
            try:
                conn.connect()
            except OSError as e:
                conn.close()
                raise Refused() from e
            self.conns[addr] = conn
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            self.conns.pop(addr, None)
            raise Ambiguous(repr(e)) from e
        if resp.will_close:
            conn.close()
            self.conns.pop(addr, None)
        try:
            doc = json.loads(payload) if payload else None
        except ValueError:
            doc = None
        return resp.status, doc

    def close(self):
        for c in self.conns.values():
            c.close()


class History:
    """The operations sent, one JSON line each (eventcheck.py's history)."""

    def __init__(self, path):
        self.path = path
        self.file = open(path, "w")
        self.lock = threading.Lock()
        self.counts = {}
        self.ops = []  # (t, outcome, number of events) for time-window counts

    def record(self, session, key, op, outcome, events, status=None, daemon=None, t0=None):
        rec = {"session": session, "key": key, "op": op, "outcome": outcome, "events": events,
               "status": status, "daemon": daemon, "t": round(time.time(), 3)}
        with self.lock:
            self.file.write(json.dumps(rec) + "\n")
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
            self.ops.append((time.monotonic(), outcome, len(events) if outcome == "acked" else 0))

    def resolve(self, session, key, landed):
        """What a read after an ambiguous operation showed: it landed or not."""
        with self.lock:
            self.file.write(json.dumps({"session": session, "key": key, "resolved": "landed" if landed else "not_landed"}) + "\n")
            self.counts["resolved"] = self.counts.get("resolved", 0) + 1

    def acked_events_between(self, t0, t1):
        with self.lock:
            return sum(n for t, o, n in self.ops if t0 <= t <= t1 and o == "acked")

    def close(self):
        with self.lock:
            self.file.close()


def created_event():
    return {"type": "created", "data": {"owner": ""}}


def changed_event(a, b):
    return {"type": "status_changed", "data": {"from": a, "to": b}}


def terminated_event(a):
    return {"type": "terminated", "data": {"reason": "deleted", "from": a, "status": "terminated"}}


API = "/api/v1/sessions"
LIVE = ("active", "idle", "waiting_input")


class Load:
    """Threads driving sessions over HTTP until stop().

    mode "sequential": each thread owns its sessions and runs each through
    create, a few status changes (active/idle/waiting_input, each PATCH a
    compare-and-swap on the version it knows) and DELETE; the order of one
    session's changes is the order the thread sent them in (key = a counter).
    After an ambiguous operation the thread reads the session again (any
    daemon) and carries on from what it finds.

    mode "contended": `sessions` sessions are created first; then every
    thread picks one at random, reads it through one daemon and PATCHes it
    through another with If-Match on the version read: the change that
    lands makes version v+1, so key = v+1 orders them, and the losers (412)
    changed nothing. stop() then deletes each session.
    """

    def __init__(self, daemons, history, tag, threads=4, rate=None, mode="sequential", sessions=8, seed=None):
        self.daemons, self.history, self.tag = daemons, history, tag
        self.nthreads, self.rate, self.mode, self.nsessions = threads, rate, mode, sessions
        self.stopping = threading.Event()
        self.threads = []
        self.errors = []
        self.rng = random.Random(seed)
        self.hot = []
        self.sent = 0

    # -- helpers shared by the modes
    def pick(self, client_state):
        n = len(self.daemons)
        for _ in range(n):
            d = self.daemons[client_state["rr"] % n]
            client_state["rr"] += 1
            if d.addr:
                return d
        return self.daemons[client_state["rr"] % n]

    def send(self, client, cs, session, key, op, method, path, body, headers, events_if_landed):
        """One operation, recorded; returns (outcome, status, doc)."""
        d = self.pick(cs)
        status, doc = None, None
        try:
            status, doc = client.request(d, method, path, body, headers)
        except Refused:
            outcome = "refused"
        except Ambiguous:
            outcome = "ambiguous"
        else:
            if 200 <= status < 300:
                outcome = "acked"
            elif status >= 500:
                outcome = "ambiguous"  # the store may have taken the write before it failed to answer
            else:
                outcome = "rejected"
        events = events_if_landed
        if outcome == "acked" and op == "create" and status != 201:
            events = []  # an existing session: no creation
        self.history.record(session, key, op, outcome, events if outcome in ("acked", "ambiguous") else [],
                            status, d.name)
        self.sent += 1
        return outcome, status, doc

    def read(self, client, cs, session):
        """GET until some daemon answers: (status, doc)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, doc = client.request(self.pick(cs), "GET", "%s/%s" % (API, session))
                if status in (200, 404):
                    return status, doc
            except (Refused, Ambiguous):
                pass
            time.sleep(0.1)
        raise Failure("no daemon answered a GET of %s for 60 s" % session)

    def pace(self, cs):
        if self.rate:
            cs["next"] += self.nthreads / self.rate
            delay = cs["next"] - time.monotonic()
            if delay > 0:
                self.stopping.wait(delay)
            else:
                cs["next"] = time.monotonic()

    # -- sequential mode
    def run_sequential(self, i):
        client = Client()
        cs = {"rr": i, "next": time.monotonic()}
        rng = random.Random(self.rng.random())
        for n in itertools.count():
            if self.stopping.is_set():
                break
            sid = "%s-%d-%d" % (self.tag, i, n)
            if n % 7 == 3:
                sid += ".x"  # some ids hold a '.' (%2E in the subject)
            plan = ["create"]
            for _ in range(rng.randint(1, 3)):
                plan += ["idle", "active"]
            if rng.random() < 0.5:
                plan.append("waiting_input")
            plan.append("delete")
            state = {"exists": False, "status": None, "version": 0, "key": 0}
            step = 0
            while step < len(plan) and not self.stopping.is_set():
                what = plan[step]
                self.pace(cs)
                key = state["key"]
                state["key"] += 1
                if what == "create":
                    outcome, status, doc = self.send(client, cs, sid, key, "create", "POST", API, {"id": sid}, None,
                                                     [created_event()])
                elif what == "delete":
                    outcome, status, doc = self.send(client, cs, sid, key, "delete", "DELETE", "%s/%s" % (API, sid),
                                                     None, None, [terminated_event(state["status"])])
                else:
                    if what == state["status"]:
                        step += 1
                        continue
                    outcome, status, doc = self.send(
                        client, cs, sid, key, "patch", "PATCH", "%s/%s" % (API, sid), {"status": what},
                        {"If-Match": '"%d"' % state["version"]}, [changed_event(state["status"], what)])
                if outcome == "acked":
                    state.update(exists=True, status=doc["status"], version=doc["version"])
                    step += 1
                elif outcome == "refused":
                    time.sleep(0.05)  # the same step again, through the next daemon
                elif outcome == "rejected" and what == "create":
                    self.errors.append("create %s answered %s: %s" % (sid, status, doc))
                    break
                else:  # ambiguous, or a refusal that says our view is stale: read it again
                    code, doc = self.read(client, cs, sid)
                    if outcome == "ambiguous":
                        # Only this thread writes this session: the version
                        # says whether the operation landed.
                        v = doc["version"] if code == 200 else 0
                        if code == 404 or v == state["version"]:
                            self.history.resolve(sid, key, False)
                        elif v == state["version"] + 1:
                            self.history.resolve(sid, key, True)
                    if code == 404:
                        state.update(exists=False, status=None, version=0)
                        step = 0
                    elif doc["status"] in ("terminated", "failed"):
                        break
                    else:
                        state.update(exists=True, status=doc["status"], version=doc["version"])
                        if step == 0:
                            step = 1
                        elif outcome == "ambiguous" and what != "delete" and doc["status"] == what:
                            step += 1  # it landed
        client.close()

    # -- contended mode
    def setup_contended(self):
        client = Client()
        cs = {"rr": 0}
        for n in range(self.nsessions):
            sid = "%s-hot-%d%s" % (self.tag, n, ".x" if n % 3 == 1 else "")
            outcome, status, doc = self.send(client, cs, sid, 1, "create", "POST", API, {"id": sid}, None,
                                             [created_event()])
            if outcome != "acked" or status != 201:
                raise Failure("creating %s: %s %s" % (sid, outcome, status))
            self.hot.append(sid)
        client.close()

    def run_contended(self, i):
        client = Client()
        cs = {"rr": i, "next": time.monotonic()}
        rng = random.Random(self.rng.random())
        while not self.stopping.is_set():
            self.pace(cs)
            sid = rng.choice(self.hot)
            cs["rr"] += rng.randint(0, 2)
            code, doc = self.read(client, cs, sid)
            if code != 200:
                self.errors.append("%s vanished: %s" % (sid, doc))
                break
            cur, v = doc["status"], doc["version"]
            to = rng.choice([s for s in LIVE if s != cur])
            cs["rr"] += rng.randint(0, 2)
            self.send(client, cs, sid, v + 1, "patch", "PATCH", "%s/%s" % (API, sid), {"status": to},
                      {"If-Match": '"%d"' % v}, [changed_event(cur, to)])
        client.close()

    def finish_contended(self):
        client = Client()
        cs = {"rr": 0}
        for sid in self.hot:
            for _ in range(100):
                code, doc = self.read(client, cs, sid)
                if doc["status"] in ("terminated", "failed"):
                    break
                outcome, _, _ = self.send(client, cs, sid, doc["version"] + 1, "delete", "DELETE",
                                          "%s/%s" % (API, sid), None, None, [terminated_event(doc["status"])])
                if outcome == "acked":
                    break
                time.sleep(0.1)
        client.close()

    # -- control
    def start(self):
        if self.mode == "contended":
            self.setup_contended()
        target = self.run_contended if self.mode == "contended" else self.run_sequential
        for i in range(self.nthreads):
            t = threading.Thread(target=self._guard, args=(target, i), name="load-%d" % i, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def _guard(self, target, i):
        try:
            target(i)
        except Exception as e:  # a load thread must not die silently
            self.errors.append("load thread %d: %r" % (i, e))

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(90)
            if t.is_alive():
                self.errors.append("%s did not stop" % t.name)
        if self.mode == "contended":
            self.finish_contended()
        if self.errors:
            raise Failure("load: " + "; ".join(self.errors[:5]))


def depth(daemons):
    """sessionkit_outbox_depth from the first daemon that answers; None when
    it has no outbox (a store without one: events go out directly)."""
    for d in daemons:
        if d.addr:
            try:
                m = d.metrics()
            except (OSError, http.client.HTTPException):
                continue
            return int(m["sessionkit_outbox_depth"]) if "sessionkit_outbox_depth" in m else None
    raise Failure("no daemon answers /metrics")


def wait_drained(daemons, timeout):
    """Until the outbox is empty (twice in a row); returns the seconds it took."""
    t0 = time.monotonic()
    last = None
    zeros = 0
    while time.monotonic() - t0 < timeout:
        last = depth(daemons)
        if last is None:
            log("no outbox (sessionkit_outbox_depth absent): waiting 2 s for the direct path")
            time.sleep(2)
            return time.monotonic() - t0
        zeros = zeros + 1 if last == 0 else 0
        if zeros >= 2:
            return time.monotonic() - t0
        time.sleep(0.25)
    raise Failure("the outbox did not drain within %.0f s: sessionkit_outbox_depth is still %s" % (timeout, last))


def dump_stream(tool, url, stream, path):
    with open(path, "w") as out:
        r = subprocess.run([tool, "dump", url, stream], stdout=out, stderr=subprocess.PIPE, timeout=300)
    if r.returncode != 0:
        raise Failure("stream_tool dump failed: %s" % r.stderr.decode(errors="replace"))
    with open(path) as f:
        head = json.loads(f.readline())
    return head


def in_ci():
    return bool(os.environ.get("CI"))


def main_wrapper(run):
    """Runs run() -> exit status; Skip is 77 (1 under CI), Failure is 1."""
    try:
        return run()
    except Skip as e:
        if in_ci():
            print("FAIL: %s (CI is set, so a missing program is fatal)" % e)
            return 1
        print("SKIP: %s" % e)
        return 77
    except Failure as e:
        print("FAIL: %s" % e)
        return 1


if __name__ == "__main__":
    sys.exit("harness.py is a library: run faults.py")

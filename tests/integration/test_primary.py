"""The primary process, against the real binary: worker count, respawn in the
same slot (and the socket each slot keeps), graceful and fast stops, reload
with and without load, log reopening, more and fewer workers, the watchdog,
max_requests recycling, the crash-loop backoff, the pidfile and forkd -s.

What the primary does is read from its error log ("worker P (slot i) ready",
"... exited: ...") and from /proc (its children); the pid that served a
request comes from GET /health. Loads are bounded Python threads on
loopback. Nothing asserts how fast something happened: the crash-loop
backoff is checked by the delays it logs and by each respawn coming no sooner
than its delay said (in the log's own timestamps), never by an upper bound.
Tests that kill workers on purpose declare it (Server.expect_worker_signals);
any other worker death by a signal fails the test.
"""
import datetime
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import unittest

import harness
from harness import BIN, Server, read_all, wait_for

READY = re.compile(r"worker (\d+) \(slot (\d+)\) ready")
LINE = re.compile(r"^(\S+Z) \[(\w+)\] (\d+)#(\S+): (.*)$")


def nobody_server(workers=2):
    """A forkd whose workers drop to nobody. Its folder is open to them (they
    reopen their logs there), and so is the app module, copied into it:
    nobody cannot reach a build in a checkout under a private folder such as
    /root or a mktemp -d."""
    s = Server({"server": {"user": "nobody"}}, workers=workers)
    os.chmod(s.dir, 0o755)
    module = os.path.join(s.dir, "app.so")
    shutil.copyfile(harness.APP, module)
    os.chmod(module, 0o644)
    s.sections["app"]["module"] = module
    s.write_conf()
    return s


def log_lines(server, pattern):
    """[(time, match)] for every error-log line whose message matches pattern."""
    out = []
    for line in server.log().splitlines():
        m = LINE.match(line)
        if not m:
            continue
        found = re.search(pattern, m.group(5))
        if found:
            when = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
            out.append((when, found))
    return out


def slots(server):
    """{slot: pid} of the workers that said ready and are alive now."""
    alive = set(server.workers())
    out = {}
    for _, m in log_lines(server, READY.pattern):
        pid, slot = int(m.group(1)), int(m.group(2))
        if pid in alive:
            out[slot] = pid
    return out


def wait_slots(server, n, timeout=30):
    """Waits until exactly slots 0..n-1 have a live ready worker and forkd has
    n children; returns {slot: pid}."""
    def check():
        s = slots(server)
        return s if sorted(s) == list(range(n)) and len(server.workers()) == n else None
    found = wait_for(check, timeout)
    if not found:
        raise AssertionError("expected %d workers, have %s; log:\n%s" % (
            n, slots(server), server.log()))
    return found


def health_pid(server, timeout=10):
    status, _, body = server.json("GET", "/health")
    assert status == 200, (status, body)
    return body["pid"]


def wait_in_flight(server, n, timeout=20):
    """Waits until n requests (not counting /metrics) are in flight."""
    server.wait_in_flight(n, timeout)


def state(pid):
    """The process state letter of pid (R, S, T, Z...), or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2]


def process_gone(pid):
    return state(pid) in (None, "Z")


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


class Load:
    """threads clients, each doing at most limit GET requests in a loop until
    stopped. fresh: one connection per request (Connection: close), and any
    error is a failure. Otherwise keep-alive, retrying once, on a new
    connection, a request that failed on a reused connection before any byte
    of its answer came: a server may close an idle keep-alive connection at
    any moment and clients retry idempotent requests then (RFC 9112, 9.3.1),
    as browsers and curl do. A failure on a new connection is never retried."""

    def __init__(self, server, path="/hello", threads=8, limit=20000, fresh=True):
        self.server, self.path, self.limit, self.fresh = server, path, limit, fresh
        self.ok = 0
        self.retried = 0
        self.failures = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.client) for _ in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(120)

    def one(self, conn):
        headers = {"Connection": "close"} if self.fresh else {}
        conn.request("GET", self.path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise AssertionError("status %d: %r" % (r.status, body))
        return r.getheader("connection") == "close"

    def client(self):
        conn, reused = None, False
        for _ in range(self.limit):
            if self.done.is_set():
                break
            for attempt in (1, 2):
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
                    reused = False
                try:
                    closing = self.one(conn)
                    with self.lock:
                        self.ok += 1
                    reused = True
                    if closing or self.fresh:
                        conn.close()
                        conn = None
                    break
                except (http.client.RemoteDisconnected, ConnectionResetError,
                        BrokenPipeError) as e:
                    conn.close()
                    conn = None
                    if reused and attempt == 1:
                        with self.lock:
                            self.retried += 1
                        continue
                    with self.lock:
                        self.failures.append(repr(e))
                    break
                except Exception as e:  # noqa: BLE001 - every other error is a failure
                    conn.close()
                    conn = None
                    with self.lock:
                        self.failures.append(repr(e))
                    break
        if conn:
            conn.close()


class PrimaryCase(unittest.TestCase):
    def start(self, sections=None, workers=1, args=None, wait=True):
        s = Server(sections, workers=workers, args=args)
        self.addCleanup(s.stop)
        return s.start(wait=wait)

    def reload(self, server):
        """Sends SIGHUP and waits for the reload to complete."""
        before = server.log().count("reload complete")
        server.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: server.log().count("reload complete") > before, 60),
                        server.log())


class WorkerCount(PrimaryCase):
    def test_auto_is_one_worker_per_cpu(self):
        s = self.start(workers="auto")
        # forkd inherits this process's affinity mask: the CPUs it may use
        cpus = min(len(os.sched_getaffinity(0)), 256)
        self.assertEqual(len(wait_slots(s, cpus)), cpus)
        self.assertIn(": %d worker(s)," % cpus, s.log())

    def test_auto_follows_the_cpus_it_may_run_on(self):
        """Narrowed to one CPU (taskset, as a cpuset would), auto gives one
        worker with one pool thread, not one per online CPU: two pool
        threads on one CPU would take turns at each scheduler tick."""
        usable = sorted(os.sched_getaffinity(0))
        if len(usable) < 2:
            self.skipTest("needs two usable CPUs to tell the mask from the machine")
        s = Server(workers="auto", wrapper=[harness.need_tool("taskset", "util-linux"), "-c", str(usable[-1])])
        self.addCleanup(s.stop)
        s.start()
        self.assertEqual(sorted(wait_slots(s, 1)), [0])
        self.assertIn(": 1 worker(s), 1 pool thread(s) each,", s.log())
        self.assertEqual(s.request("GET", "/hello")[0], 200)

    def test_workers_option_sets_the_count(self):
        s = self.start(workers="auto", args=["--workers", "3"])
        self.assertEqual(sorted(wait_slots(s, 3)), [0, 1, 2])
        self.assertEqual(s.request("GET", "/hello")[0], 200)


class Respawn(PrimaryCase):
    def test_sigkill_replaces_the_worker_in_its_slot(self):
        """Keep-alive clients request /health (which names the pid that
        answered) while slot 0's worker is killed. A request may fail only on
        a connection that was on the killed worker, or one opened before its
        death (the killed worker may have accepted it); at most one per client."""
        s = self.start(workers=2)
        s.expect_worker_signals(signal.SIGKILL)
        victim = wait_slots(s, 2)[0]
        failures, allowed, after_death = [], [], [0]
        lock = threading.Lock()
        done = threading.Event()
        dead_at = [None]
        served_by = set()

        def client():
            conn, last_pid = None, None
            for _ in range(20000):
                if done.is_set():
                    break
                started = time.monotonic()
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
                    last_pid = None
                try:
                    conn.request("GET", "/health")
                    r = conn.getresponse()
                    last_pid = json.loads(r.read())["pid"]
                    with lock:
                        served_by.add(last_pid)
                        if dead_at[0] and started > dead_at[0]:
                            after_death[0] += 1
                except Exception as e:  # noqa: BLE001
                    conn.close()
                    conn = None
                    # Allowed: the connection was on the killed worker, or it
                    # was opened before the kill and may have been accepted by it.
                    on_victim = last_pid == victim or (
                        last_pid is None and (dead_at[0] is None or started < dead_at[0]))
                    with lock:
                        (allowed if on_victim else failures).append((repr(e), last_pid))
            if conn:
                conn.close()

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        # The clients have spread over both workers once both answered.
        self.assertTrue(wait_for(lambda: victim in served_by and len(served_by) >= 2, 20),
                        served_by)
        os.kill(victim, signal.SIGKILL)
        self.assertTrue(wait_for(lambda: process_gone(victim), 10))
        dead_at[0] = time.monotonic()
        new = wait_for(lambda: slots(s).get(0) not in (None, victim) and slots(s)[0], 10)
        self.assertTrue(new, s.log())
        wait_for(lambda: after_death[0] > 200, 20)
        done.set()
        for t in threads:
            t.join(60)
        self.assertEqual(failures, [])
        self.assertLessEqual(len(allowed), 4, allowed)  # at most one per client
        self.assertGreater(after_death[0], 0)
        self.assertRegex(s.log(), r"worker %d \(slot 0\) exited: signal 9 \(Killed\)" % victim)
        self.assertEqual(sorted(wait_slots(s, 2)), [0, 1])

    def test_connections_queued_on_a_dead_workers_socket_are_served(self):
        # A stopped worker accepts nothing, so connections the kernel hashes to
        # its slot's socket wait in that socket's queue. Killing the worker
        # must not reset them: its replacement inherits the socket and serves them.
        s = self.start(workers=2)
        s.expect_worker_signals(signal.SIGKILL)
        before = wait_slots(s, 2)
        victim, other = before[0], before[1]
        os.kill(victim, signal.SIGSTOP)
        self.assertTrue(wait_for(lambda: state(victim) == "T", 10))
        results = [None] * 24
        connected = threading.Semaphore(0)

        def fetch(i):
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=30)
            try:
                conn.connect()
                connected.release()
                conn.request("GET", "/health")
                results[i] = json.loads(conn.getresponse().read())["pid"]
            except Exception as e:  # noqa: BLE001
                results[i] = repr(e)
            finally:
                conn.close()

        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(len(results))]
        for t in threads:
            t.start()
        for _ in threads:  # every connection is made before the kill
            self.assertTrue(connected.acquire(timeout=20))
        # The other worker answers its share; the rest wait on the stopped one.
        self.assertTrue(wait_for(lambda: any(r == other for r in results), 20))
        os.kill(victim, signal.SIGKILL)
        for t in threads:
            t.join(30)
        new = slots(s)[0]
        self.assertNotEqual(new, victim)
        # Every request answered, and those the stopped worker's socket held
        # by its replacement (24 connections all hashed to one socket is 2^-23).
        self.assertEqual(sorted(set(results)), sorted({other, new}), results)

    def test_crash_loop_backs_off(self):
        s = self.start({"log": {"level": "debug"}}, workers=1)
        s.expect_worker_signals(signal.SIGKILL)
        first = wait_slots(s, 1)[0]
        # Older than QUICK_DEATH (1 s) when it dies: no backoff for it. This
        # sleep sets an age the design defines, it waits for no event.
        time.sleep(1.2)
        killed, deadline = [first], time.monotonic() + 60
        os.kill(first, signal.SIGKILL)
        # Kill every new worker the moment it appears: each dies young.
        while len(killed) < 6 and time.monotonic() < deadline:
            for pid in s.workers():
                if pid not in killed:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.002)
        self.assertEqual(len(killed), 6)
        survivor = wait_for(lambda: [p for p in s.workers() if p not in killed], 30)
        self.assertTrue(survivor)
        delays = [float(m.group(1)) for _, m in log_lines(s, r"respawning in ([\d.]+) s")]
        self.assertEqual(delays, [0.1, 0.2, 0.4, 0.8, 1.6], s.log())
        # The gaps between each death and the next fork, in the log's timestamps.
        exits = [t for t, _ in log_lines(s, r"worker \d+ \(slot 0\) exited: .*respawning in")]
        forks = [t for t, _ in log_lines(s, r"worker \d+ \(slot 0\) forked")]
        gaps = []
        for t in exits:
            later = [f for f in forks if f >= t]
            self.assertTrue(later, s.log())
            gaps.append((later[0] - t).total_seconds())
        self.assertEqual(len(gaps), 5)
        # What the design guarantees: no respawn before its delay is over
        # (the log's timestamps have millisecond resolution). How much later
        # it comes depends on the machine's load, so gaps are not compared.
        for gap, delay in zip(gaps, delays):
            self.assertGreaterEqual(gap, delay - 0.002, (gaps, delays))
        wait_slots(s, 1)
        self.assertEqual(s.request("GET", "/hello")[0], 200)

    def test_configuration_error_in_a_worker_stops_forkd(self):
        s = Server({"log": {"access_log": "/nonexistent-forkd-dir/access.log"}}, workers=2)
        self.addCleanup(s.stop)
        s.start(wait=False)
        self.assertEqual(s.proc.wait(60), 1)
        self.assertIn("a configuration error; stopping forkd", s.log())
        # Stopped instead of looping: no worker was respawned.
        self.assertNotIn("respawning", s.log())


class Stop(PrimaryCase):
    def test_sigterm_finishes_the_request_in_flight(self):
        s = self.start(workers=2)
        wait_slots(s, 2)
        idle = s.connect()
        idle.sendall(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertTrue(idle.recv(4096).startswith(b"HTTP/1.1 200"))
        busy = s.connect(timeout=30)
        busy.sendall(b"GET /delay?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_in_flight(s, 1)  # the worker has read the request
        s.send_signal(signal.SIGTERM)
        data, closed = read_all(idle, timeout=20)
        self.assertEqual((data, closed), (b"", True))  # the idle keep-alive one is closed
        data, closed = read_all(busy, timeout=30)
        responses = harness.parse_responses(data)
        self.assertEqual([r[0] for r in responses], [200], data)
        self.assertEqual(responses[0][2], b'{"delayed_ms":1500}')
        self.assertEqual(s.proc.wait(60), 0)
        self.assertTrue(refused(s.port))
        self.assertFalse(os.path.exists(s.pidfile))
        idle.close()
        busy.close()

    def test_sigquit_stops_at_once(self):
        s = self.start(workers=2)
        wait_slots(s, 2)
        busy = s.connect(timeout=30)
        busy.sendall(b"GET /delay?ms=10000 HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_in_flight(s, 1)
        s.send_signal(signal.SIGQUIT)
        data, closed = read_all(busy, timeout=30)
        self.assertEqual((data, closed), (b"", True))  # closed without an answer
        self.assertEqual(s.proc.wait(30), 0)
        self.assertTrue(refused(s.port))
        busy.close()

    def test_workers_exit_when_the_primary_dies(self):
        s = self.start(workers=2)
        pids = list(wait_slots(s, 2).values())
        s.proc.kill()
        s.proc.wait(10)
        self.assertTrue(wait_for(lambda: all(process_gone(p) for p in pids), 30), pids)
        self.assertTrue(wait_for(lambda: refused(s.port), 10))


class Reload(PrimaryCase):
    def test_changed_configuration_takes_effect(self):
        s = self.start(workers=2)
        old = set(wait_slots(s, 2).values())
        status, headers, _ = s.request("GET", "/hello")
        self.assertNotEqual(headers.get("connection"), "close")
        s.sections["http"] = {"keepalive_timeout": "0"}  # 0 turns keep-alive off
        s.write_conf()
        self.reload(s)
        new = set(wait_slots(s, 2).values())
        self.assertFalse(old & new, (old, new))
        status, headers, _ = s.request("GET", "/hello")
        self.assertEqual((status, headers.get("connection")), (200, "close"))
        self.assertTrue(wait_for(lambda: all(process_gone(p) for p in old), 30))

    def test_broken_configuration_keeps_the_old_workers(self):
        s = self.start(workers=2)
        old = wait_slots(s, 2)
        s.write_conf(raw="[server]\nlisten = 127.0.0.1:%d\nworkers = lots\n" % s.port)
        s.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "reload failed" in s.log(), 20))
        self.assertRegex(s.log(), r"reload failed: %s:3: .*workers" % re.escape(s.conf))
        self.assertIn(health_pid(s), old.values())
        self.assertEqual(slots(s), old)
        self.assertEqual(s.workers(), sorted(old.values()))

    def test_new_workers_that_cannot_start_roll_the_reload_back(self):
        s = self.start(workers=2)
        old = wait_slots(s, 2)
        s.sections["log"]["access_log"] = "/nonexistent-forkd-dir/access.log"
        s.write_conf()
        s.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "reload failed: new worker" in s.log(), 30), s.log())
        self.assertIn("configuration error", s.log())
        self.assertIn(health_pid(s), old.values())
        self.assertEqual(slots(s), old)
        del s.sections["log"]["access_log"]
        s.write_conf()
        self.reload(s)
        self.assertFalse(set(wait_slots(s, 2).values()) & set(old.values()))

    def test_worker_count_change(self):
        s = self.start(workers=2)
        wait_slots(s, 2)
        s.sections["server"]["workers"] = "3"
        s.write_conf()
        self.reload(s)
        self.assertEqual(sorted(wait_slots(s, 3)), [0, 1, 2])
        s.sections["server"]["workers"] = "1"
        s.write_conf()
        self.reload(s)
        self.assertEqual(sorted(wait_slots(s, 1)), [0])
        self.assertEqual(s.request("GET", "/hello")[0], 200)

    def test_listen_change_moves_the_port(self):
        s = self.start(workers=2)
        wait_slots(s, 2)
        old_port, new_port = s.port, harness.free_port()
        s.sections["server"]["listen"] = "127.0.0.1:%d" % new_port
        s.write_conf()
        self.reload(s)
        s.port = new_port
        self.assertEqual(s.request("GET", "/hello")[0], 200)
        self.assertTrue(wait_for(lambda: refused(old_port), 30))

    def test_no_failed_request_during_reloads_new_connections(self):
        s = self.start({"server": {"graceful_timeout": "10"}}, workers=2)
        wait_slots(s, 2)
        load = Load(s, threads=8, fresh=True).start()
        try:
            wait_for(lambda: load.ok > 200, 20)
            for _ in range(3):
                self.reload(s)
            done = load.ok
            wait_for(lambda: load.ok > done + 200, 20)
        finally:
            load.stop()
        self.assertEqual(load.failures, [])
        self.assertGreater(load.ok, 400)

    def test_no_failed_request_during_reloads_keep_alive(self):
        s = self.start({"server": {"graceful_timeout": "10"}}, workers=2)
        wait_slots(s, 2)
        load = Load(s, threads=8, fresh=False).start()
        try:
            wait_for(lambda: load.ok > 200, 20)
            for _ in range(3):
                self.reload(s)
            done = load.ok
            wait_for(lambda: load.ok > done + 200, 20)
        finally:
            load.stop()
        self.assertEqual(load.failures, [])
        self.assertGreater(load.ok, 400)


class Control(PrimaryCase):
    def test_ttin_and_ttou_change_the_worker_count(self):
        s = self.start(workers=2)
        wait_slots(s, 2)
        s.send_signal(signal.SIGTTIN)
        self.assertEqual(sorted(wait_slots(s, 3)), [0, 1, 2])
        self.assertEqual(s.request("GET", "/hello")[0], 200)
        s.send_signal(signal.SIGTTOU)
        wait_slots(s, 2)
        s.send_signal(signal.SIGTTOU)
        self.assertEqual(sorted(wait_slots(s, 1)), [0])
        s.send_signal(signal.SIGTTOU)
        self.assertTrue(wait_for(lambda: "one worker is the fewest" in s.log(), 10))
        self.assertEqual(len(s.workers()), 1)
        self.assertEqual(s.request("GET", "/hello")[0], 200)

    def test_usr1_reopens_the_logs_in_every_process(self):
        s = Server(workers=2)
        s.sections["log"]["access_log"] = s.access_log
        s.write_conf()
        self.addCleanup(s.stop)
        s.start()
        pids = [s.proc.pid] + list(wait_slots(s, 2).values())
        os.rename(s.error_log, s.error_log + ".1")
        os.rename(s.access_log, s.access_log + ".1")

        def holding_moved():
            held = []
            for pid in pids:
                for fd in os.listdir("/proc/%d/fd" % pid):
                    try:
                        target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                    except OSError:
                        continue
                    if target.endswith(".log.1"):
                        held.append((pid, target))
            return held

        self.assertTrue(holding_moved())
        s.send_signal(signal.SIGUSR1)
        self.assertTrue(wait_for(lambda: not holding_moved(), 20), holding_moved())
        self.assertTrue(os.path.exists(s.error_log))
        self.assertTrue(os.path.exists(s.access_log))
        self.assertIn("reopened the log files", s.log())

    def test_signal_option(self):
        s = self.start(workers=1)
        wait_slots(s, 1)

        def ctl(action):
            return subprocess.run([BIN, "-c", s.conf, "-s", action], capture_output=True,
                                  text=True, timeout=30)

        with open(s.pidfile) as f:
            self.assertEqual(int(f.read()), s.proc.pid)
        self.assertEqual(ctl("reload").returncode, 0)
        self.assertTrue(wait_for(lambda: "reload complete" in s.log(), 30))
        self.assertEqual(ctl("reopen").returncode, 0)
        self.assertTrue(wait_for(lambda: "reopened the log files" in s.log(), 30))
        self.assertEqual(ctl("nonsense").returncode, 2)
        self.assertEqual(ctl("stop").returncode, 0)
        self.assertEqual(s.proc.wait(60), 0)
        self.assertFalse(os.path.exists(s.pidfile))
        r = ctl("stop")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no forkd running", r.stderr)

    def test_second_forkd_with_the_same_pidfile_refuses_to_start(self):
        s = self.start(workers=1)
        wait_slots(s, 1)
        other = Server(workers=1)
        other.sections["server"]["pidfile"] = s.pidfile
        other.write_conf()
        self.addCleanup(other.stop)
        other.start(wait=False)
        self.assertEqual(other.proc.wait(30), 1)
        self.assertIn("forkd already runs with pid %d" % s.proc.pid, other.log())
        with open(s.pidfile) as f:
            self.assertEqual(int(f.read()), s.proc.pid)

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_workers_drop_to_the_configured_user(self):
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no user nobody")
        s = nobody_server()
        self.addCleanup(s.stop)
        s.start()
        pids = wait_slots(s, 2).values()

        def uids(pid):
            with open("/proc/%d/status" % pid) as f:
                line = [l for l in f if l.startswith("Uid:")][0]
            return [int(x) for x in line.split()[1:]]

        self.assertEqual(set(uids(s.proc.pid)), {0})
        for pid in pids:
            self.assertEqual(set(uids(pid)), {nobody.pw_uid})
        self.assertEqual(s.request("GET", "/hello")[0], 200)


class DroppedUser(PrimaryCase):
    @unittest.skipUnless(os.geteuid() == 0, "needs root (scripts/test runs as root in CI)")
    def test_workers_as_nobody_reopen_their_logs_on_usr1(self):
        """Workers that dropped to nobody cannot create files in a folder
        root owns; on USR1 the primary makes the new files and hands them to
        nobody, so the workers reopen them and log into them."""
        nobody = pwd.getpwnam("nobody")
        s = nobody_server()  # nobody may read the folder, not write it
        s.sections["log"]["access_log"] = s.access_log
        s.write_conf()
        self.addCleanup(s.stop)
        s.start()
        workers = list(wait_slots(s, 2).values())
        for pid in workers:
            self.assertEqual(os.stat("/proc/%d" % pid).st_uid, nobody.pw_uid)
        os.rename(s.error_log, s.error_log + ".1")
        os.rename(s.access_log, s.access_log + ".1")
        s.send_signal(signal.SIGUSR1)

        def holding_moved():
            return [(pid, t) for pid in [s.proc.pid] + workers
                    for t in harness.fd_links(pid) if t.endswith(".log.1")]
        self.assertTrue(wait_for(lambda: not holding_moved(), 20), holding_moved())
        for path in (s.error_log, s.access_log):
            self.assertEqual(os.stat(path).st_uid, nobody.pw_uid, path)
        self.assertNotIn("cannot reopen", s.log() + open(s.error_log + ".1").read())
        # Requests on both workers land in the new access log.
        for _ in range(20):
            self.assertEqual(s.request("GET", "/hello")[0], 200)
        self.assertTrue(wait_for(lambda: len(open(s.access_log).read().splitlines()) >= 20, 20))
        self.assertEqual(s.workers(), sorted(workers))  # nobody had to be replaced


class Watchdog(PrimaryCase):
    def test_blocked_worker_is_killed_and_replaced(self):
        s = self.start({"server": {"worker_timeout": "2"}, "example": {"debug_routes": "on"}})
        s.expect_worker_signals(signal.SIGKILL)  # the watchdog's
        victim = wait_slots(s, 1)[0]
        with s.connect(timeout=60) as c:
            c.sendall(b"GET /debug/block?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n")
            data, closed = read_all(c, timeout=60)
        self.assertEqual((data, closed), (b"", True))  # killed while serving it
        self.assertRegex(s.log(), r"worker %d \(slot 0\) sent no heartbeat .* "
                         r"It was serving GET /debug/block" % victim)
        new = wait_for(lambda: slots(s).get(0) not in (None, victim) and slots(s)[0], 20)
        self.assertTrue(new, s.log())
        self.assertEqual(health_pid(s), new)

    def test_blocking_route_is_off_by_default(self):
        s = self.start()
        self.assertEqual(s.request("GET", "/debug/block?ms=1")[0], 404)


class MaxRequests(PrimaryCase):
    def test_worker_is_recycled_after_max_requests(self):
        s = self.start({"server": {"max_requests": "5"}})
        wait_slots(s, 1)
        pids = [health_pid(s) for _ in range(12)]
        self.assertEqual(len(set(pids[:5])), 1, pids)
        self.assertEqual(len(set(pids[5:10])), 1, pids)
        self.assertNotEqual(pids[4], pids[5])
        self.assertNotEqual(pids[9], pids[10])
        self.assertIn("served 5 requests (max_requests 5", s.log())
        self.assertTrue(wait_for(lambda: process_gone(pids[0]), 30))
        self.assertNotIn("respawning", s.log())  # a recycle is not a crash


def metric_samples(server):
    """{(name, labels): value} of every sample GET /metrics gives now."""
    status, _, body = server.request("GET", "/metrics")
    assert status == 200, status
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


class StopTimeouts(PrimaryCase):
    """graceful_timeout is the most a graceful stop waits for requests in
    flight; a second TERM hurries a graceful stop into a fast one."""

    def test_graceful_timeout_closes_what_is_left(self):
        """A request still in flight when graceful_timeout (1 s) ends is cut:
        the worker closes its connection and exits on its own."""
        s = self.start({"server": {"graceful_timeout": "1"}}, workers=1)
        wait_slots(s, 1)
        with s.connect(timeout=60) as busy:
            busy.sendall(b"GET /delay?ms=10000 HTTP/1.1\r\nHost: t\r\n\r\n")
            wait_in_flight(s, 1)
            s.send_signal(signal.SIGTERM)
            data, closed = read_all(busy, timeout=60)
        # Closed unanswered: a drain would have answered it after its 10 s.
        self.assertEqual((data, closed), (b"", True))
        self.assertEqual(s.proc.wait(60), 0)
        self.assertIn("graceful stop timed out with 1 connection(s) open", s.log())
        self.assertRegex(s.log(), r"worker \d+ \(slot 0\) exited: status 0")

    def test_graceful_timeout_expires_into_sigkill(self):
        """A worker whose loop is blocked cannot even hear the stop: once
        graceful_timeout (1 s, plus forkd's margin) is over, the primary
        SIGKILLs it and still exits 0. worker_timeout is far away, so the
        watchdog is not what kills it."""
        s = self.start({"server": {"graceful_timeout": "1", "worker_timeout": "300"},
                        "example": {"debug_routes": "on"}}, workers=2)
        s.expect_worker_signals(signal.SIGKILL)  # forkd's own, at the timeout
        wait_slots(s, 2)
        with s.connect(timeout=60) as busy:
            busy.sendall(b"GET /debug/block?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n")
            # The other worker answers /metrics while this one is blocked.
            wait_in_flight(s, 1)
            s.send_signal(signal.SIGTERM)
            data, closed = read_all(busy, timeout=60)
        self.assertEqual((data, closed), (b"", True))
        self.assertEqual(s.proc.wait(60), 0)
        killed = re.findall(r"worker (\d+) \(slot \d\) still runs 1\.0 s after it was told "
                            r"to stop; killing it", s.log())
        self.assertEqual(len(killed), 1, s.log())
        victim = int(killed[0])
        self.assertRegex(s.log(), r"worker %d \(slot \d\) still runs 1\.0 s after it was told "
                         r"to stop; killing it" % victim)
        self.assertRegex(s.log(), r"worker %d \(slot \d\) exited: signal 9 " % victim)
        self.assertNotIn("sent no heartbeat", s.log())

    def test_second_term_turns_the_stop_fast(self):
        s = self.start({"server": {"graceful_timeout": "120"}}, workers=1)
        wait_slots(s, 1)
        with s.connect(timeout=60) as busy:
            busy.sendall(b"GET /delay?ms=10000 HTTP/1.1\r\nHost: t\r\n\r\n")
            wait_in_flight(s, 1)
            s.send_signal(signal.SIGTERM)
            self.assertTrue(wait_for(lambda: "graceful stop: waiting" in s.log(), 20), s.log())
            s.send_signal(signal.SIGTERM)
            data, closed = read_all(busy, timeout=60)
        # The graceful stop (up to 120 s) would have answered after 10 s; the
        # fast one drops the request.
        self.assertEqual((data, closed), (b"", True))
        self.assertEqual(s.proc.wait(60), 0)
        self.assertIn("fast stop: waiting", s.log())
        self.assertNotIn("killing", s.log())  # the worker left on its own


class Counters(PrimaryCase):
    """The counters of /metrics live in the scoreboard, not in a worker: they
    never go backwards when workers are killed, recycled or reloaded, and the
    restart and reload counters count exactly those events."""

    def assert_not_backwards(self, before, after, what):
        for key, value in before.items():
            name = key.partition("{")[0]
            if not (name.endswith("_total") or name.endswith("_count") or
                    name.endswith("_bucket") or name.endswith("_sum")):
                continue
            if key in after:
                self.assertGreaterEqual(after[key], value, "%s went backwards after %s" % (
                    key, what))

    def test_counters_survive_restarts_and_reloads(self):
        s = self.start(workers=2)
        s.expect_worker_signals(signal.SIGKILL)
        old = wait_slots(s, 2)
        for _ in range(20):
            self.assertEqual(s.request("GET", "/hello")[0], 200)
        first = metric_samples(s)
        restarts = 'forkd_worker_restarts_total{slot="%d"}'
        self.assertEqual(first[restarts % 0], 0)
        self.assertEqual(first[restarts % 1], 0)
        self.assertEqual(first['forkd_reloads_total{result="ok"}'], 0)
        self.assertEqual(first['forkd_reloads_total{result="failed"}'], 0)

        os.kill(old[0], signal.SIGKILL)
        self.assertTrue(wait_for(lambda: slots(s).get(0) not in (None, old[0]), 30), s.log())
        wait_slots(s, 2)
        after_kill = metric_samples(s)
        self.assert_not_backwards(first, after_kill, "a worker was killed")
        self.assertEqual(after_kill[restarts % 0], 1)
        self.assertEqual(after_kill[restarts % 1], 0)

        self.reload(s)
        wait_slots(s, 2)
        after_reload = metric_samples(s)
        self.assert_not_backwards(after_kill, after_reload, "a reload")
        self.assertEqual(after_reload['forkd_reloads_total{result="ok"}'], 1)
        self.assertEqual(after_reload['forkd_reloads_total{result="failed"}'], 0)
        # A reload replaces workers on purpose: that is no restart.
        self.assertEqual(after_reload[restarts % 0], 1)
        self.assertEqual(after_reload[restarts % 1], 0)

        s.write_conf(raw="[server]\nlisten = 127.0.0.1:%d\nworkers = lots\n" % s.port)
        s.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "reload failed" in s.log(), 20))
        s.write_conf()
        after_failed = metric_samples(s)
        self.assert_not_backwards(after_reload, after_failed, "a failed reload")
        self.assertEqual(after_failed['forkd_reloads_total{result="ok"}'], 1)
        self.assertEqual(after_failed['forkd_reloads_total{result="failed"}'], 1)
        requests = sum(v for k, v in after_failed.items() if k.startswith("forkd_requests_total"))
        self.assertGreaterEqual(requests, 20 + 3)  # /hello and the /metrics before this one

    def test_recycling_is_no_restart(self):
        s = self.start({"server": {"max_requests": "3"}}, workers=1)
        first = wait_slots(s, 1)[0]
        pids = [health_pid(s) for _ in range(7)]
        self.assertNotEqual(pids[0], pids[-1])
        self.assertTrue(wait_for(lambda: process_gone(first), 30))
        samples = metric_samples(s)
        self.assertEqual(samples['forkd_worker_restarts_total{slot="0"}'], 0)
        requests = sum(v for k, v in samples.items() if k.startswith("forkd_requests_total"))
        self.assertGreaterEqual(requests, 7)


class ReloadBind(PrimaryCase):
    def test_new_address_that_cannot_be_bound_keeps_the_old_workers(self):
        """The new listen address is taken (a socket without SO_REUSEPORT
        holds it): the reload fails before any slot is switched, the old
        workers keep serving on the old port, and the failure is counted."""
        s = self.start(workers=2)
        old = wait_slots(s, 2)
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        taken = blocker.getsockname()[1]
        s.sections["server"]["listen"] = "127.0.0.1:%d" % taken
        s.write_conf()
        s.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: "reload failed" in s.log(), 20), s.log())
        self.assertRegex(s.log(), r"reload failed: listen 127\.0\.0\.1:%d: .*in use" % taken)
        self.assertEqual(slots(s), old)
        self.assertEqual(s.workers(), sorted(old.values()))
        for _ in range(10):
            self.assertIn(health_pid(s), old.values())
        samples = metric_samples(s)
        self.assertEqual(samples['forkd_reloads_total{result="failed"}'], 1)
        self.assertEqual(samples['forkd_reloads_total{result="ok"}'], 0)
        # The old configuration is still the one a later reload builds on.
        s.sections["server"]["listen"] = "127.0.0.1:%d" % s.port
        s.write_conf()
        self.reload(s)
        self.assertFalse(set(wait_slots(s, 2).values()) & set(old.values()))


class Backoff(PrimaryCase):
    def test_thirty_seconds_of_health_forget_the_backoff(self):
        """Two quick deaths raise slot 0's delay to 0.2 s. A worker that then
        lives 30 s (HEALTHY) resets it: the next quick death waits 0.1 s
        again, where one that lived less would double it to 0.4 s."""
        s = self.start({"log": {"level": "debug"}}, workers=1)
        s.expect_worker_signals(signal.SIGKILL)
        killed = []

        def kill_next():
            # Killed as soon as it is forked (not ready), so that it dies young.
            pid = wait_for(lambda: [p for p in s.workers() if p not in killed], 30)
            self.assertTrue(pid, s.log())
            os.kill(pid[0], signal.SIGKILL)
            killed.append(pid[0])
            self.assertTrue(wait_for(lambda: process_gone(pid[0]), 10))

        def delays():
            return [float(m.group(1)) for _, m in log_lines(s, r"respawning in ([\d.]+) s")]

        wait_slots(s, 1)
        time.sleep(1.2)  # older than QUICK_DEATH: its death sets no delay
        kill_next()
        kill_next()
        kill_next()
        self.assertTrue(wait_for(lambda: len(delays()) >= 2, 30), s.log())
        self.assertEqual(delays()[:2], [0.1, 0.2], s.log())
        # The ages below are the design's own (HEALTHY = 30 s), not waits
        # for an event: the worker must be this old when it dies.
        wait_slots(s, 1)
        time.sleep(31)
        kill_next()   # lived 31 s: no delay, and the backoff is forgotten
        kill_next()   # dies young: the first delay again
        self.assertTrue(wait_for(lambda: len(delays()) >= 3, 30), s.log())
        self.assertEqual(delays(), [0.1, 0.2, 0.1], s.log())
        wait_slots(s, 1)
        self.assertEqual(s.request("GET", "/hello")[0], 200)


class Jitter(PrimaryCase):
    def test_max_requests_jitter_spreads_the_recycling(self):
        """With max_requests 3 and jitter 4 each worker serves 3 to 7
        requests before it is replaced, not always the same number."""
        s = self.start({"server": {"max_requests": "3", "max_requests_jitter": "4"}}, workers=1)
        wait_slots(s, 1)
        pids = [health_pid(s) for _ in range(80)]
        runs = []
        for pid in pids:
            if runs and runs[-1][0] == pid:
                runs[-1][1] += 1
            else:
                runs.append([pid, 1])
        lengths = [n for _, n in runs[:-1]]  # the last worker may not be done
        self.assertGreaterEqual(len(lengths), 8, runs)
        self.assertTrue(all(3 <= n <= 7 for n in lengths), lengths)
        # Ten equal lengths from five choices happen once in 5^9 runs.
        self.assertGreater(len(set(lengths)), 1, lengths)
        self.assertEqual(len({pid for pid, _ in runs}), len(runs), "a pid served twice")


if __name__ == "__main__":
    harness.main()

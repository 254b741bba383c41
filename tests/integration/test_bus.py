"""The Redis bus against a real redis-server: shared events heard once by
every worker, the shared stock under concurrent orders from wrk, and what
losing Redis does (503 for what needs it, nothing else) and how the bus comes
back.

Each test starts its own redis-server on a free loopback port, in a temporary
folder of its own, without persistence (--save "" --appendonly no), and stops
it at the end. Without the redis-server binary (Debian package redis-server,
in scripts/deps) the file fails at once and says which package is missing.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import Server, wait_for

REDIS_SERVER = harness.need_tool("redis-server", "redis-server")
WRK = harness.need_tool("wrk", "wrk")

CATALOGUE = {"widget": 1000, "gadget": 500, "gizmo": 100, "P001": 100, "P002": 100}
STOCK_KEY = "forkd:stock"
# "<time> [info] <pid>#<slot>: message", as log.c writes it.
LINE = re.compile(r"^\S+ \[(\w+)\] (\d+)#(\w+): (.*)$")


class RedisError(Exception):
    pass


def resp_encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def resp_read(f):
    """One reply from a RESP stream (a file object)."""
    line = f.readline()
    if not line:
        raise ConnectionError("redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode()
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [resp_read(f) for _ in range(n)]
    raise RedisError("bad reply %r" % line)


class Redis:
    """A redis-server of the test's own: loopback, free port, temp folder."""

    def __init__(self, port=None, bind="127.0.0.1"):
        self.dir = tempfile.mkdtemp(prefix="forkd-redis-")
        self.host = bind
        self.port = port or harness.free_port()
        self.proc = None

    def argv(self):
        return [REDIS_SERVER, "--port", str(self.port), "--bind", self.host,
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--logfile", os.path.join(self.dir, "redis.log"), "--daemonize", "no",
                "--protected-mode", "no"]

    def start(self, prefix=()):
        self.proc = subprocess.Popen(list(prefix) + self.argv(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        if not prefix and not wait_for(self.ping):
            self.stop()
            raise RuntimeError("redis-server did not start")
        return self

    def ping(self):
        try:
            return self.command("PING") == "PONG"
        except (OSError, RedisError):
            return False

    def command(self, *args):
        with socket.create_connection((self.host, self.port), timeout=10) as s:
            s.sendall(resp_encode(args))
            return resp_read(s.makefile("rb"))

    def kill(self):
        """SIGKILL: Redis vanishes at once, as in a crash."""
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def log_lines(server):
    """(level, pid, slot, message) for every line of the error log."""
    out = []
    for line in server.log().splitlines():
        m = LINE.match(line)
        if m:
            out.append((m.group(1), int(m.group(2)), m.group(3), m.group(4)))
    return out


def bus_pids(server, what="subscribed to"):
    """Pids of the workers whose bus logged what ("subscribed to", "commands ... up")."""
    return {pid for _, pid, _, msg in log_lines(server) if msg.startswith("bus: ") and what in msg}


def heard(server, order_id):
    """{pid: [listener, ...]} of the email and analytics lines for order_id."""
    out = {}
    pat = re.compile(r"^(email|analytics): order (\S+?)[ ,]")
    for _, pid, _, msg in log_lines(server):
        m = pat.match(msg)
        if m and m.group(2) == order_id:
            out.setdefault(pid, []).append(m.group(1))
    return out


def order(product="gizmo", quantity=1, user="u1"):
    return {"userId": user, "items": [{"productId": product, "quantity": quantity}]}


class BusCase(unittest.TestCase):
    """A fresh Redis and a forkd with [bus] pointing at it, for each test."""

    WORKERS = 1

    def setUp(self):
        self.redis = Redis().start()
        self.addCleanup(self.redis.cleanup)
        self.server = Server({"bus": {"redis": "127.0.0.1:%d" % self.redis.port}},
                             workers=self.WORKERS)
        self.server.start()
        self.addCleanup(self.stop_server)
        self.wait_bus_up()

    def stop_server(self):
        self.server.stop()
        shutil.rmtree(self.server.dir, ignore_errors=True)

    def workers(self):
        """The pids of the workers whose bus subscribed."""
        return bus_pids(self.server)

    def expected_workers(self):
        """WORKERS, or 1 while forkd runs its one worker inside the primary
        process (its log lines then show the primary's pid as a worker's)."""
        lines = log_lines(self.server)
        primary = {pid for _, pid, slot, _ in lines if slot == "primary"}
        worker = {pid for _, pid, slot, _ in lines if slot != "primary"}
        return 1 if primary & worker else self.WORKERS

    def wait_bus_up(self):
        """Waits until every worker has subscribed and /health says up."""
        ok = wait_for(lambda: len(bus_pids(self.server)) >= self.expected_workers()
                      and self.health()["bus"] == "up", timeout=30)
        self.assertTrue(ok, "the bus did not come up; log:\n" + self.server.log())

    def health(self):
        status, _, body = self.server.json("GET", "/health")
        self.assertEqual(status, 200)
        return body

    def stock(self, product):
        v = self.redis.command("HGET", STOCK_KEY, product)
        return None if v is None else int(v)

    def fence(self, workers):
        """Publishes a marker event from outside forkd and waits until every
        worker heard it: pub/sub keeps the order of one channel, so whatever
        was published on it before has been delivered too."""
        marker = "fence-%d" % time.monotonic_ns()
        msg = {"origin": "test:0", "event": "orderPlaced",
               "data": {"id": marker, "userId": "fence", "items": []}}
        self.redis.command("PUBLISH", "forkd:event:orderPlaced", json.dumps(msg))
        ok = wait_for(lambda: set(heard(self.server, marker)) >= set(workers), timeout=30)
        self.assertTrue(ok, "the marker event did not reach every worker; log:\n" +
                        self.server.log())


class SharedEventsTest(BusCase):
    WORKERS = 4

    def test_health_and_shared_inventory(self):
        self.assertEqual(self.health()["bus"], "up")
        status, _, body = self.server.json("GET", "/inventory")
        self.assertEqual(status, 200)
        self.assertEqual(body["scope"], "shared")
        self.assertEqual(body["stock"], CATALOGUE)
        # Seeded with HSETNX: the workers did not overwrite each other.
        self.assertEqual({k: int(v) for k, v in zip(*[iter(
            self.redis.command("HGETALL", STOCK_KEY))] * 2)}, CATALOGUE)

    def test_order_is_heard_once_by_every_worker(self):
        workers = self.workers()
        self.assertEqual(len(workers), self.expected_workers(), "every worker has its bus")
        status, _, body = self.server.json("POST", "/orders", order("gizmo", 3))
        self.assertEqual(status, 201, body)
        self.assertEqual(body["status"], "placed")
        oid = body["id"]
        self.fence(workers)
        got = heard(self.server, oid)
        self.assertEqual(set(got), workers, "every worker's listeners heard the order")
        for pid, listeners in got.items():
            self.assertEqual(sorted(listeners), ["analytics", "email"],
                             "worker %d heard the order exactly once" % pid)
        self.assertEqual(self.stock("gizmo"), 97)

    def test_remote_event_reaches_listeners_but_answers_nothing(self):
        """An event published by another host is emitted to the listeners of
        every worker (the local-only stock listener is off with the bus) and
        changes nothing else."""
        workers = self.workers()
        msg = {"origin": "elsewhere:1", "event": "orderPlaced",
               "data": {"id": "remote-1", "userId": "u7",
                        "items": [{"productId": "gizmo", "quantity": 5}]}}
        self.assertEqual(self.redis.command("PUBLISH", "forkd:event:orderPlaced",
                                            json.dumps(msg)), self.expected_workers())
        self.fence(workers)
        got = heard(self.server, "remote-1")
        self.assertEqual(set(got), workers)
        for listeners in got.values():
            self.assertEqual(sorted(listeners), ["analytics", "email"])
        self.assertEqual(self.stock("gizmo"), 100, "a remote event reserves nothing")
        status, _, _ = self.server.request("GET", "/hello")
        self.assertEqual(status, 200)

    def test_unreadable_and_unshared_messages_are_ignored(self):
        workers = self.workers()
        self.redis.command("PUBLISH", "forkd:event:orderPlaced", "not json")
        self.redis.command("PUBLISH", "forkd:event:secret",
                           json.dumps({"origin": "x:1", "event": "secret", "data": {}}))
        self.fence(workers)
        warned = {pid for level, pid, _, msg in log_lines(self.server)
                  if level == "warn" and "unreadable message" in msg}
        self.assertEqual(warned, workers)
        self.assertEqual(self.health()["bus"], "up")


class StockTest(BusCase):
    def test_refusals_take_nothing(self):
        status, _, body = self.server.json("POST", "/orders", {
            "userId": "u1", "items": [{"productId": "gizmo", "quantity": 60},
                                      {"productId": "gizmo", "quantity": 60}]})
        self.assertEqual((status, body), (409, {"error": "not enough stock for gizmo"}))
        status, _, body = self.server.json("POST", "/orders", {
            "userId": "u1", "items": [{"productId": "widget", "quantity": 1},
                                      {"productId": "nope", "quantity": 1}]})
        self.assertEqual((status, body), (400, {"error": "items[1].productId: unknown product"}))
        status, _, body = self.server.json("POST", "/orders", {
            "userId": "u1", "items": [{"productId": "widget", "quantity": 2},
                                      {"productId": "gadget", "quantity": 999}]})
        self.assertEqual((status, body), (409, {"error": "not enough stock for gadget"}))
        self.assertEqual({p: self.stock(p) for p in CATALOGUE}, CATALOGUE)
        status, _, body = self.server.json("POST", "/orders", {
            "userId": "u1", "items": [{"productId": "widget", "quantity": 2},
                                      {"productId": "gadget", "quantity": 500}]})
        self.assertEqual(status, 201, body)
        self.assertEqual((self.stock("widget"), self.stock("gadget")), (998, 0))
        status, _, body = self.server.json("GET", "/inventory")
        self.assertEqual(body["stock"], dict(CATALOGUE, widget=998, gadget=0))

    def test_script_reloaded_after_flush(self):
        """Redis forgetting the script (SCRIPT FLUSH, a restart) costs one EVAL."""
        self.assertEqual(self.server.json("POST", "/orders", order())[0], 201)
        self.redis.command("SCRIPT", "FLUSH")
        self.assertEqual(self.server.json("POST", "/orders", order())[0], 201)
        self.assertEqual(self.server.json("POST", "/orders", order())[0], 201)
        self.assertEqual(self.stock("gizmo"), 97)

    def test_bad_orders_never_reach_redis(self):
        status, _, _ = self.server.json("POST", "/orders", {"userId": "u1", "items": []})
        self.assertEqual(status, 400)
        self.assertEqual(self.redis.command("HGET", STOCK_KEY, "gizmo"), "100")


WRK_SCRIPT = r"""
-- Each thread posts `quota` orders for one unit of `product`, then asks for
-- GET /hello (status 200) until its own orders are all answered, and stops.
local quota, product, order, filler
local sent, answered = 0, 0
c201, c409, cother = 0, 0, 0
-- wrk calls request() once on its first thread before the run, to see
-- whether the script pipelines; that call sends nothing, so it is not counted.
unsent = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  if #threads == 1 then thread:set("unsent", 1) end
end

function init(args)
  quota = tonumber(args[1])
  product = args[2]
  order = wrk.format("POST", "/orders", {["Content-Type"] = "application/json"},
    '{"userId":"wrk","items":[{"productId":"' .. product .. '","quantity":1}]}')
  filler = wrk.format("GET", "/hello")
end

function request()
  if sent < quota + unsent then
    sent = sent + 1
    return order
  end
  return filler
end

function response(status, headers, body)
  if status == 200 then return end
  answered = answered + 1
  if status == 201 then c201 = c201 + 1
  elseif status == 409 then c409 = c409 + 1
  else cother = cother + 1 end
  if answered == quota then
    io.write("QUOTA DONE\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("c201"); b = b + t:get("c409"); c = c + t:get("cother")
  end
  io.write(string.format("ORDERS 201=%d 409=%d other=%d\n", a, b, c))
end
"""


class ConcurrentOrdersTest(BusCase):
    WORKERS = 2
    THREADS = 4
    ORDERS = 2000   # in all, 500 per wrk thread
    STOCK = 1500

    def run_wrk(self, script):
        """Runs wrk until every thread answered its quota (or a generous bound
        passes), then ends it with SIGINT so it prints its summary."""
        proc = subprocess.Popen(
            [WRK, "-t%d" % self.THREADS, "-c64", "-d120s", "--timeout", "30s", "-s", script,
             "http://127.0.0.1:%d/" % self.server.port, "--",
             str(self.ORDERS // self.THREADS), "widget"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines, finished = [], [0]

        def read():
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("QUOTA DONE"):
                    finished[0] += 1
        reader = threading.Thread(target=read)
        reader.start()
        wait_for(lambda: finished[0] >= self.THREADS or proc.poll() is not None, timeout=110,
                 interval=0.1)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(60)
        reader.join(10)
        proc.stdout.close()
        return "".join(lines)

    def test_no_oversell_under_2000_concurrent_orders(self):
        self.redis.command("HSET", STOCK_KEY, "widget", self.STOCK)
        script = os.path.join(self.server.dir, "orders.lua")
        with open(script, "w") as f:
            f.write(WRK_SCRIPT)
        out = self.run_wrk(script)
        m = re.search(r"ORDERS 201=(\d+) 409=(\d+) other=(\d+)", out)
        self.assertTrue(m, out)
        c201, c409, other = (int(g) for g in m.groups())
        final = self.stock("widget")
        # What was sold, counted independently of Redis: the distinct orders
        # the email listeners confirmed (each worker logs every order once).
        self.fence(self.workers())
        sold = {m2.group(1) for _, _, _, msg in log_lines(self.server)
                for m2 in [re.match(r"email: order (\d+-\d+) confirmed to user wrk$", msg)] if m2}
        self.assertGreaterEqual(final, 0, "never below zero")
        self.assertEqual(final + len(sold), self.STOCK, "final stock + sold = initial")
        self.assertEqual((c201, c409, other), (self.STOCK, self.ORDERS - self.STOCK, 0), out)
        self.assertEqual(len(sold), c201)
        self.assertEqual(final, 0)
        served = {int(oid.split("-")[0]) for oid in sold}
        self.assertLessEqual(served, self.workers())


def post_loop(server, stop, statuses):
    """Posts orders one after another until stop is set; records statuses."""
    while not stop.is_set():
        try:
            status, hdrs, body = server.json("POST", "/orders", order("widget"))
            statuses.append((status, hdrs.get("retry-after"), body))
        except (OSError, ValueError) as e:
            statuses.append((None, None, repr(e)))


class RedisLossTest(BusCase):
    WORKERS = 2

    def assert_unavailable(self):
        status, hdrs, body = self.server.json("POST", "/orders", order())
        self.assertEqual(status, 503, body)
        self.assertEqual(hdrs.get("retry-after"), "1")
        self.assertEqual(hdrs.get("content-type"), "application/json")
        self.assertIn("unreachable", body["error"])
        status, hdrs, body = self.server.json("GET", "/inventory")
        self.assertEqual(status, 503, body)
        self.assertEqual(hdrs.get("retry-after"), "1")

    def test_killed_mid_run_then_restarted(self):
        workers = self.workers()
        stop, statuses = threading.Event(), []
        poster = threading.Thread(target=post_loop, args=(self.server, stop, statuses))
        poster.start()
        try:
            self.assertTrue(wait_for(lambda: len(statuses) >= 20, timeout=30))
            self.redis.kill()
            self.assertTrue(wait_for(lambda: self.health()["bus"] == "down", timeout=30))
            n = len(statuses)
            self.assertTrue(wait_for(lambda: len(statuses) >= n + 20, timeout=30))
            self.assert_unavailable()
            for _ in range(10):
                status, _, body = self.server.request("GET", "/hello")
                self.assertEqual((status, body), (200, b"Hello World!"))
                health = self.health()
                self.assertEqual((health["status"], health["bus"]), ("ok", "down"))
            self.redis.start()
            up_again = wait_for(lambda: sum(1 for _, _, _, msg in log_lines(self.server)
                                            if msg.startswith("bus: subscribed"))
                                >= 2 * len(workers), timeout=30)
            self.assertTrue(up_again, self.server.log())
            self.assertTrue(wait_for(lambda: self.health()["bus"] == "up", timeout=30))
            n = len(statuses)
            self.assertTrue(wait_for(lambda: any(s == 201 for s, _, _ in statuses[n:]),
                                     timeout=30))
        finally:
            stop.set()
            poster.join(30)
        self.assertTrue(statuses)
        for status, retry, body in statuses:
            self.assertIn(status, (201, 503), body)
            if status == 503:
                self.assertEqual(retry, "1")
        self.assertIn(503, [s for s, _, _ in statuses])
        # Every worker is the one it was: nothing crashed or restarted.
        self.assertEqual(self.workers(), workers)
        # The restarted Redis was empty: the bus seeded it again.
        self.assertIsNotNone(self.stock("gizmo"))
        self.assertEqual(self.server.json("POST", "/orders", order())[0], 201)

    def test_paused_redis_answers_503_after_the_watchdog(self):
        """A Redis that stops answering (SIGSTOP) without closing anything:
        the waiting order gets 503 from the command watchdog, not a hang."""
        self.redis.proc.send_signal(signal.SIGSTOP)
        try:
            status, hdrs, body = self.server.request(
                "POST", "/orders", json.dumps(order()).encode(),
                {"Content-Type": "application/json"}, timeout=60)
            self.assertEqual(status, 503, body)
            self.assertEqual(hdrs.get("retry-after"), "1")
            self.assertEqual(self.server.request("GET", "/hello")[0], 200)
        finally:
            self.redis.proc.send_signal(signal.SIGCONT)
        self.assertTrue(wait_for(lambda: self.health()["bus"] == "up", timeout=30))
        self.assertTrue(wait_for(
            lambda: self.server.json("POST", "/orders", order())[0] == 201, timeout=30))

    def test_client_gone_before_the_reservation_answered(self):
        """The client leaves while its order waits for Redis: the order is
        still placed (the stock was taken) and the late reply touches no
        freed response (a sanitizer build would report it at stop)."""
        self.redis.proc.send_signal(signal.SIGSTOP)
        try:
            body = json.dumps(order("gizmo", 4, user="gone")).encode()
            with self.server.connect() as s:
                s.sendall(b"POST /orders HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                          b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                # forkd has read it and asked Redis once it is in flight.
                self.server.wait_in_flight(1)
        finally:
            self.redis.proc.send_signal(signal.SIGCONT)
        self.assertTrue(wait_for(lambda: self.stock("gizmo") == 96, timeout=30))
        self.assertTrue(wait_for(lambda: any(
            msg.endswith("confirmed to user gone") for _, _, _, msg in log_lines(self.server)),
            timeout=30))
        self.assertEqual(self.server.request("GET", "/hello")[0], 200)


class RedisAbsentAtStartTest(unittest.TestCase):
    def test_serves_without_redis_then_connects(self):
        redis = Redis()
        self.addCleanup(redis.cleanup)
        server = Server({"bus": {"redis": "127.0.0.1:%d" % redis.port}}).start()
        self.addCleanup(server.stop)
        self.assertEqual(server.request("GET", "/hello")[0], 200)
        self.assertEqual(server.json("GET", "/health")[2]["bus"], "down")
        status, hdrs, body = server.json("POST", "/orders", order())
        self.assertEqual((status, hdrs.get("retry-after")), (503, "1"), body)
        redis.start()
        self.assertTrue(wait_for(lambda: server.json("GET", "/health")[2]["bus"] == "up",
                                 timeout=30), server.log())
        self.assertEqual(server.json("POST", "/orders", order())[0], 201)
        self.assertEqual(redis.command("HGET", STOCK_KEY, "gizmo"), "99")
        warns = [msg for level, _, _, msg in log_lines(server)
                 if level == "warn" and msg.startswith("bus: ")]
        self.assertEqual(len(warns), 2, "one warning per connection for the whole outage")


class HostNameTest(unittest.TestCase):
    """[bus] redis given as a name: resolved off the loop, on the pool."""

    def test_name_resolves_and_connects(self):
        redis = Redis().start()
        self.addCleanup(redis.cleanup)
        server = Server({"bus": {"redis": "localhost:%d" % redis.port}}).start()
        self.addCleanup(server.stop)
        self.assertTrue(wait_for(lambda: server.json("GET", "/health")[2]["bus"] == "up",
                                 timeout=30), server.log())
        self.assertEqual(server.json("POST", "/orders", order())[0], 201)

    def test_unknown_name_keeps_serving(self):
        server = Server({"bus": {"redis": "no-such-host.invalid:6379"}}).start()
        self.addCleanup(server.stop)
        self.assertTrue(wait_for(lambda: "bus: " in server.log(), timeout=30))
        self.assertEqual(server.json("GET", "/health")[2]["bus"], "down")
        self.assertEqual(server.request("GET", "/hello")[0], 200)
        self.assertEqual(server.json("POST", "/orders", order())[0], 503)


class NoBusTest(harness.ServerCase):
    def test_off_by_default(self):
        status, _, body = self.server.json("GET", "/health")
        self.assertEqual((status, body["bus"]), (200, "off"))
        status, _, body = self.server.json("GET", "/inventory")
        self.assertEqual(body["scope"], "worker")
        status, _, body = self.server.json("POST", "/orders", order("gizmo", 2))
        self.assertEqual(status, 201, body)
        status, _, body = self.server.json("POST", "/orders", {
            "userId": "u1", "items": [{"productId": "gizmo", "quantity": 60},
                                      {"productId": "gizmo", "quantity": 60}]})
        self.assertEqual((status, body), (409, {"error": "not enough stock for gizmo"}))


if __name__ == "__main__":
    harness.main()

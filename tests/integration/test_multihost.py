"""Several forkd hosts behind one nginx, sharing one Redis.

Two forkd "hosts" run in network namespaces of their own; a third namespace,
the hub, holds a bridge they both plug into (a veth pair each), the Redis
server, nginx with one upstream over both hosts, and the client. Every
address (10.200.0.0/24) lives inside the namespaces this test creates, and
all traffic stays there; the namespaces are deleted in the cleanup, whatever
happened.

Orders sent through nginx must be placed on both hosts, be heard by the
listeners of every worker of both hosts, and take exactly the shared stock.

Creating namespaces needs privileges (root, CAP_NET_ADMIN and CAP_SYS_ADMIN);
where they cannot be made the test says so and skips. Run this file with
--client ... to act as the client inside a namespace (the test does that).
"""
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness
from harness import wait_for
from test_bus import REDIS_SERVER, STOCK_KEY, Redis, log_lines

NGINX = harness.need_tool("nginx", "nginx-light")
IP = harness.need_tool("ip", "iproute2")
SUBNET = "10.200.0"
HUB = SUBNET + ".1"
PORT = 8080
REDIS_PORT = 6379
WORKERS = 2
INITIAL = 30    # the shared stock of gizmo
ORDERS = 40     # orders for one gizmo each, sent through nginx


def run(*argv, check=True):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          check=check, timeout=60)


class Host:
    """A forkd in namespace ns, listening on addr:PORT, its logs in a temp dir."""

    def __init__(self, ns, addr):
        self.ns = ns
        self.addr = addr
        self.dir = tempfile.mkdtemp(prefix="forkd-host-")
        self.error_log = os.path.join(self.dir, "error.log")
        self.conf = os.path.join(self.dir, "forkd.conf")
        with open(self.conf, "w") as f:
            f.write("[server]\nlisten = %s:%d\nworkers = %d\npidfile = %s\n"
                    "[log]\nerror_log = %s\nlevel = info\n"
                    "[proxy]\ntrusted = %s\n"
                    "[bus]\nredis = %s:%d\n"
                    "[app]\nmodule = %s\n" % (
                        addr, PORT, WORKERS, os.path.join(self.dir, "forkd.pid"),
                        self.error_log, HUB, HUB, REDIS_PORT, harness.APP))
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([IP, "netns", "exec", self.ns, harness.BIN, "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     cwd=self.dir)
        return self

    def log(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def lines(self):
        return log_lines(self)

    def worker_pids(self):
        return {pid for _, pid, _, msg in self.lines() if msg.startswith("bus: subscribed")}

    def expected_workers(self):
        """WORKERS, or 1 while forkd runs its one worker inside the primary."""
        lines = self.lines()
        primary = {pid for _, pid, slot, _ in lines if slot == "primary"}
        worker = {pid for _, pid, slot, _ in lines if slot != "primary"}
        return 1 if primary & worker else WORKERS

    def stop(self):
        """Stops forkd with TERM; returns what went wrong as text (empty when
        nothing did): a stop that hung or ended with a status other than 0,
        a worker that died by a signal, a sanitizer report on stderr."""
        if not self.proc:
            return ""
        problems = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30 + harness.STOP_WAIT)  # graceful_timeout + slack
            except subprocess.TimeoutExpired:
                problems.append("the graceful stop hung; forkd was killed")
                self.proc.kill()
                self.proc.wait()
        if self.proc.returncode != 0:
            problems.append("forkd exited with %s" % self.proc.returncode)
        err = harness.drain(self.proc.stderr)
        self.proc.stderr.close()
        self.proc = None
        if harness.SANITIZER_REPORT.search(err):
            problems.append("a sanitizer report:\n" + err.decode(errors="replace")[-20000:])
        for m in harness.WORKER_SIGNALLED.finditer(self.log()):
            problems.append("worker %s died by signal %s" % (m.group(1), m.group(3)))
        return "\n".join(problems)


class MultiHostTest(unittest.TestCase):
    def setUp(self):
        tag = "fk%d" % os.getpid()
        self.hub, self.ns_a, self.ns_b = tag + "-hub", tag + "-a", tag + "-b"
        self.namespaces = []
        for ns in (self.hub, self.ns_a, self.ns_b):
            r = run(IP, "netns", "add", ns, check=False)
            if r.returncode:
                self.delete_namespaces()
                self.skipTest("cannot create network namespaces here (%s): this test needs "
                              "root with CAP_NET_ADMIN and CAP_SYS_ADMIN" % r.stderr.strip())
            self.namespaces.append(ns)
        self.addCleanup(self.delete_namespaces)
        self.wire()
        self.dir = tempfile.mkdtemp(prefix="forkd-multihost-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.redis = Redis(port=REDIS_PORT, bind=HUB)
        self.redis.start(prefix=[IP, "netns", "exec", self.hub])
        self.addCleanup(self.redis.cleanup)
        self.hosts = [Host(self.ns_a, SUBNET + ".2"), Host(self.ns_b, SUBNET + ".3")]
        for h in self.hosts:
            self.addCleanup(shutil.rmtree, h.dir, True)
            self.addCleanup(self.stop_host, h)
        self.nginx = None
        self.addCleanup(self.stop_nginx)

    def delete_namespaces(self):
        """Deleting a namespace removes its veth ends and bridge with it."""
        for ns in self.namespaces:
            run(IP, "netns", "delete", ns, check=False)
        self.namespaces = []

    def ip(self, ns, *args):
        run(IP, "-n", ns, *args)

    def wire(self):
        """The hub's bridge at .1, and each host's veth at .2 and .3 plugged into it."""
        self.ip(self.hub, "link", "set", "lo", "up")
        self.ip(self.hub, "link", "add", "br0", "type", "bridge")
        self.ip(self.hub, "addr", "add", HUB + "/24", "dev", "br0")
        self.ip(self.hub, "link", "set", "br0", "up")
        for i, ns in enumerate((self.ns_a, self.ns_b)):
            port = "v%d" % i
            self.ip(self.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0",
                    "netns", ns)
            self.ip(self.hub, "link", "set", port, "master", "br0")
            self.ip(self.hub, "link", "set", port, "up")
            self.ip(ns, "link", "set", "lo", "up")
            self.ip(ns, "addr", "add", "%s.%d/24" % (SUBNET, i + 2), "dev", "eth0")
            self.ip(ns, "link", "set", "eth0", "up")

    def stop_host(self, host):
        problems = host.stop()
        self.assertEqual(problems, "", host.log()[-5000:])

    def start_nginx(self):
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""
worker_processes 1;
pid %(d)s/nginx.pid;
error_log %(d)s/nginx-error.log notice;
events { worker_connections 256; }
http {
    access_log %(d)s/nginx-access.log;
    client_body_temp_path %(d)s/client_body;
    proxy_temp_path %(d)s/proxy;
    fastcgi_temp_path %(d)s/fastcgi;
    uwsgi_temp_path %(d)s/uwsgi;
    scgi_temp_path %(d)s/scgi;
    upstream forkd {
        server %(a)s:%(port)d;
        server %(b)s:%(port)d;
        keepalive 16;
    }
    server {
        listen %(hub)s:%(port)d;
        location / {
            proxy_pass http://forkd;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}
""" % {"d": self.dir, "a": self.hosts[0].addr, "b": self.hosts[1].addr, "port": PORT,
       "hub": HUB})
        self.nginx = subprocess.Popen(
            [IP, "netns", "exec", self.hub, NGINX, "-p", self.dir, "-c", conf,
             "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop_nginx(self):
        if self.nginx and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)
            try:
                self.nginx.wait(15)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        if self.nginx:
            self.nginx.stderr.close()

    def run_client(self, *args):
        """Runs this file as the client inside the hub."""
        return subprocess.run([IP, "netns", "exec", self.hub, sys.executable,
                               os.path.abspath(__file__), "--client"] + [str(a) for a in args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=120)

    def client(self, *args):
        """The client's JSON answer; a failure of the client fails the test."""
        r = self.run_client(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def try_client(self, *args):
        """The client's JSON answer, or None when it failed (a server not
        listening yet): what waiting for a server polls."""
        r = self.run_client(*args)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def wait_until_answered(self, what, *args, want):
        """Polls the client with args until its answer satisfies want."""
        last = []

        def probe():
            last[:] = [self.try_client(*args)]
            return last[0] is not None and want(last[0])
        self.assertTrue(wait_for(probe, timeout=30), "%s never answered: %r" % (what, last))

    def redis_cmd(self, *args):
        return self.client("redis", HUB, REDIS_PORT, *args)

    def test_orders_through_nginx_land_on_both_hosts(self):
        self.wait_until_answered("redis", "redis", HUB, REDIS_PORT, "PING",
                                 want=lambda v: v == "PONG")
        for h in self.hosts:
            h.start()
        for h in self.hosts:
            self.assertTrue(wait_for(lambda: len(h.worker_pids()) >= h.expected_workers(),
                                     timeout=30), h.log())
        self.start_nginx()
        url = "http://%s:%d" % (HUB, PORT)
        self.wait_until_answered("nginx", "get", url + "/hello", want=lambda v: v[0] == 200)
        # Each host is reached directly too, and its bus is up.
        for h in self.hosts:
            status, body = self.client("get", "http://%s:%d/health" % (h.addr, PORT))
            self.assertEqual((status, json.loads(body)["bus"]), (200, "up"))
        self.assertEqual(self.redis_cmd("HGET", STOCK_KEY, "gizmo"), "100")
        self.redis_cmd("HSET", STOCK_KEY, "gizmo", INITIAL)

        results = self.client("orders", url, ORDERS, "gizmo")
        statuses = [s for s, _ in results]
        self.assertEqual(statuses.count(201), INITIAL, results)
        self.assertEqual(statuses.count(409), ORDERS - INITIAL, results)
        self.assertEqual(self.redis_cmd("HGET", STOCK_KEY, "gizmo"), "0", "the stock is exact")

        placed = [json.loads(b)["id"] for s, b in results if s == 201]
        by_host = []
        for h in self.hosts:
            pids = h.worker_pids()
            by_host.append({oid for oid in placed if int(oid.split("-")[0]) in pids})
        self.assertTrue(by_host[0] and by_host[1], "orders were placed on both hosts: %r" % (
            by_host,))
        self.assertEqual(by_host[0] | by_host[1], set(placed))
        self.assertFalse(by_host[0] & by_host[1])

        # Every worker of both hosts heard every order once, wherever it was placed.
        pat = re.compile(r"^email: order (\S+) confirmed")
        workers = {(i, pid) for i, h in enumerate(self.hosts) for pid in h.worker_pids()}

        def confirmations():
            seen = {}
            for i, h in enumerate(self.hosts):
                for _, pid, _, msg in h.lines():
                    m = pat.match(msg)
                    if m and m.group(1) in placed:
                        seen.setdefault((i, pid), []).append(m.group(1))
            return seen
        self.assertTrue(wait_for(lambda: set(confirmations()) == workers and all(
            len(v) >= len(placed) for v in confirmations().values()), timeout=30),
            confirmations())
        for key, ids in confirmations().items():
            self.assertEqual(sorted(ids), sorted(placed), "worker %r heard each order once" %
                             (key,))

        # What went through nginx: both upstreams answered.
        status, body = self.client("get", url + "/inventory")
        self.assertEqual((status, json.loads(body)["scope"]), (200, "shared"))


def client_main(args):
    """The client side, run inside the hub namespace; prints JSON."""
    from urllib.parse import urlsplit

    import socket

    import test_bus

    def fetch(url, method="GET", body=None):
        u = urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        try:
            conn.request(method, u.path, body=body,
                         headers={"Content-Type": "application/json"} if body else {})
            r = conn.getresponse()
            return r.status, r.read().decode()
        finally:
            conn.close()

    cmd = args[0]
    if cmd == "get":
        out = fetch(args[1])
    elif cmd == "redis":
        with socket.create_connection((args[1], int(args[2])), timeout=10) as s:
            s.sendall(test_bus.resp_encode(args[3:]))
            out = test_bus.resp_read(s.makefile("rb"))
    elif cmd == "orders":
        url, n, product = args[1], int(args[2]), args[3]
        body = json.dumps({"userId": "multi", "items": [{"productId": product,
                                                           "quantity": 1}]})
        out, lock = [], threading.Lock()

        def worker(count):
            for _ in range(count):
                r = fetch(url + "/orders", "POST", body)
                with lock:
                    out.append(r)
        threads = [threading.Thread(target=worker, args=(n // 8 + (i < n % 8),))
                   for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        raise SystemExit("unknown client command %r" % cmd)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client"]:
        client_main(sys.argv[2:])
    else:
        harness.main()

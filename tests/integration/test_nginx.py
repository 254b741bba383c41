"""forkd behind a real nginx, started by scripts/nginx with conf/nginx/forkd.conf.

Thousands of requests pass through nginx without an error; nginx reuses its
connections to forkd (checked from the kernel's own counters of the sockets
forkd holds, read with `ss`); a worker killed under nginx costs at most the
requests that were in flight on it.
"""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import harness
from harness import ROOT, Server, free_port, read_all, wait_for

SCRIPT = os.path.join(ROOT, "scripts", "nginx")
SITE = os.path.join(ROOT, "conf", "nginx", "forkd.conf")

REQUESTS = 3000        # through nginx, in THREADS keep-alive connections
THREADS = 4
# A request as nginx forwards it to forkd (request line, Host, X-Real-IP,
# X-Forwarded-For, X-Forwarded-Proto and the client's few headers) is well
# under this many bytes; a forkd connection that received REUSED times as
# much carried at least REUSED requests.
REQUEST_MAX_BYTES = 1024
REUSED = 20


class Nginx:
    """An nginx started by scripts/nginx in a prefix of its own."""

    def __init__(self, forkd_port, workers=1):
        self.prefix = tempfile.mkdtemp(prefix="forkd-nginx-test-")
        self.port = free_port()
        self.forkd_port = forkd_port
        self.workers = workers
        self.pid = None

    def start(self):
        out = subprocess.run(
            [SCRIPT, "start", "--forkd", "127.0.0.1:%d" % self.forkd_port,
             "--listen", str(self.port), "--workers", str(self.workers),
             "--prefix", self.prefix],
            capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise RuntimeError("scripts/nginx start failed:\n" + out.stdout + out.stderr)
        fields = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
        self.url = fields["url"]
        self.pid = int(fields["pid"])
        return self

    def stop(self):
        if self.pid is not None:
            subprocess.run([SCRIPT, "stop", "--prefix", self.prefix],
                           capture_output=True, timeout=60)
        shutil.rmtree(self.prefix, ignore_errors=True)

    def http(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)


def forkd_sockets(port):
    """{peer port: bytes received} of the established connections forkd holds
    on port, from the kernel's TCP counters (ss -ti)."""
    out = subprocess.run(["ss", "-tinH", "state", "established", "( sport = :%d )" % port],
                         capture_output=True, text=True, timeout=10).stdout
    conns = {}
    peer = None
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):
            fields = line.split()
            peer = int(fields[-1].rpartition(":")[2]) if fields else None
            continue
        m = re.search(r"\bbytes_received:(\d+)", line)
        if peer is not None:
            conns[peer] = int(m.group(1)) if m else 0
    return conns


class Load:
    """THREADS threads sending GET /hello through nginx, each on one
    keep-alive connection (a new one after an error), until told to stop or
    until each has sent per_thread requests. Counts successes and failures."""

    def __init__(self, nginx, per_thread=None):
        self.nginx = nginx
        self.per_thread = per_thread
        self.ok = 0
        self.failed = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(THREADS)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def wait(self, timeout=120):
        """Waits for the threads to finish their requests."""
        for t in self.threads:
            t.join(timeout)

    def stop(self, timeout=120):
        self.done.set()
        self.wait(timeout)

    def run(self):
        conn = self.nginx.http()
        sent = 0
        while not self.done.is_set() and (self.per_thread is None or sent < self.per_thread):
            sent += 1
            try:
                conn.request("GET", "/hello")
                r = conn.getresponse()
                body = r.read()
                good = r.status == 200 and body == b"Hello World!"
                outcome = None if good else "%d %r" % (r.status, body[:80])
            except (OSError, http.client.HTTPException) as e:
                outcome = repr(e)
            with self.lock:
                if outcome is None:
                    self.ok += 1
                else:
                    self.failed.append(outcome)
            if outcome is not None:
                conn.close()
                conn = self.nginx.http()
        conn.close()


class NginxCase(harness.unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        harness.need_tool("nginx", "nginx-light")
        harness.need_tool("ss", "iproute2")

    def start(self, workers=2):
        forkd = Server(workers=workers).start()
        self.addCleanup(forkd.stop)
        nginx = Nginx(forkd.port).start()
        self.addCleanup(nginx.stop)
        return forkd, nginx

    def test_site_file_loads_as_a_site(self):
        """conf/nginx/forkd.conf, unchanged, is a valid site for a stock nginx.conf."""
        prefix = tempfile.mkdtemp(prefix="forkd-nginx-site-")
        self.addCleanup(shutil.rmtree, prefix, True)
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write("pid %s/nginx.pid;\nevents {}\nhttp {\n\tinclude %s;\n}\n" % (prefix, SITE))
        out = subprocess.run(["nginx", "-t", "-p", prefix, "-c", conf,
                              "-e", os.path.join(prefix, "error.log")],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_headers_and_answer_through_nginx(self):
        forkd, nginx = self.start()
        conn = nginx.http()
        self.addCleanup(conn.close)
        conn.request("GET", "/hello", headers={"Connection": "close"})
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, b"Hello World!"))
        self.assertEqual(r.getheader("Content-Type"), "text/plain")
        # A JSON body reaches the route and comes back.
        conn = nginx.http()
        self.addCleanup(conn.close)
        conn.request("POST", "/echo", body=b'{"a":[1,2]}',
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        self.assertEqual((r.status, r.read()), (200, b'{"a":[1,2]}'))
        # A body over forkd's max_body_size (1m) is refused by nginx already,
        # from its Content-Length, before a byte of it is read.
        with socket.create_connection(("127.0.0.1", nginx.port), timeout=10) as s:
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      b"Content-Length: %d\r\n\r\n" % (1024 * 1024 + 1))
            data, _ = read_all(s, timeout=10)
        self.assertRegex(data, rb"^HTTP/1\.1 413 ")
        self.assertIn(b"\r\nServer: nginx", data)

    def test_thousands_of_requests_reuse_upstream_connections(self):
        forkd, nginx = self.start()
        seen = {}
        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                for peer, received in forkd_sockets(forkd.port).items():
                    seen[peer] = max(received, seen.get(peer, 0))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        load = Load(nginx, per_thread=REQUESTS // THREADS).start()
        load.wait()
        # nginx keeps the connections open in its pool: one last look at the
        # counters of those still open, now that every request has been answered.
        sampling.set()
        sampler.join(30)
        for peer, received in forkd_sockets(forkd.port).items():
            seen[peer] = max(received, seen.get(peer, 0))

        self.assertEqual(load.failed, [])
        self.assertEqual(load.ok, REQUESTS)
        self.assertTrue(seen, "no connection from nginx to forkd was seen")
        # Fewer connections than requests: nginx never needed more than its pool.
        self.assertLess(len(seen), REQUESTS)
        self.assertLessEqual(len(seen), 64, seen)
        # And a connection was reused for many requests, not opened per request.
        self.assertGreaterEqual(max(seen.values()), REUSED * REQUEST_MAX_BYTES, seen)

    def test_killed_worker_costs_only_its_requests_in_flight(self):
        forkd, nginx = self.start(workers=2)
        workers = wait_for(lambda: len(harness.children(forkd.proc.pid)) >= 2 and
                           harness.children(forkd.proc.pid), timeout=10)
        self.assertTrue(workers, "forkd did not start two worker processes")
        forkd.expect_worker_signals(signal.SIGKILL)
        load = Load(nginx).start()
        self.addCleanup(load.stop)
        self.assertTrue(wait_for(lambda: load.ok >= 300, timeout=60), "no load got through")
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        ok_at_kill = load.ok
        replaced = wait_for(lambda: (lambda c: len(c) >= 2 and victim not in c)(
            harness.children(forkd.proc.pid)), timeout=30)
        self.assertTrue(replaced, "the killed worker was not replaced")
        self.assertTrue(wait_for(lambda: load.ok >= ok_at_kill + 1000, timeout=60),
                        "requests stopped getting through after the kill")
        load.stop()
        # Each thread has at most one request in flight at any moment, so the
        # kill can cost at most THREADS requests; nginx retries the rest.
        self.assertLessEqual(len(load.failed), THREADS, load.failed)
        status, _, body = forkd.request("GET", "/hello")
        self.assertEqual((status, body), (200, b"Hello World!"))


if __name__ == "__main__":
    harness.main()

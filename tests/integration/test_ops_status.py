"""forkd -s status, process titles and pidfile = auto, against the real binary.

status is a separate process: it finds the server through [server] pidfile
of the configuration it reads, maps the scoreboard file beside the pid file
and prints a line per worker and one for the primary; its counts must match
the traffic sent.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import wait_for  # noqa: E402


def status(server, *args, config=None):
    r = subprocess.run([harness.BIN, "-c", config or server.conf, "-s", "status"] + list(args),
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


class Status(harness.ServerCase):
    WORKERS = 2

    def test_table_counts_the_traffic(self):
        before = json.loads(status(self.server, "--json")[1])
        # Each request on a new connection; the counts must add up whichever
        # worker took each.
        for _ in range(40):
            self.server.request("GET", "/hello")
        code, out, err = status(self.server)
        self.assertEqual((code, err), (0, ""))
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["SLOT", "PID", "GEN", "STATE", "UPTIME", "REQUESTS",
                                            "REQ/S", "INFLIGHT", "CONNS", "RSS", "RESTARTS"])
        rows = [l.split() for l in lines[1:]]
        self.assertEqual([r[0] for r in rows], ["primary", "0", "1"])
        self.assertEqual(int(rows[0][1]), self.server.proc.pid)
        self.assertEqual(sorted(int(r[1]) for r in rows[1:]), self.server.workers())
        self.assertEqual([r[3] for r in rows], ["running", "ready", "ready"])
        total = sum(int(r[5]) for r in rows[1:])
        self.assertEqual(int(rows[0][5]), total)
        self.assertEqual(total - before["primary"]["requests"], 40)
        for r in rows:
            self.assertRegex(r[9], r"^\d+(\.\d)?[BKMG]$")

    def test_json(self):
        code, out, _ = status(self.server, "--json")
        self.assertEqual(code, 0)
        doc = json.loads(out)
        self.assertEqual(doc["primary"]["pid"], self.server.proc.pid)
        self.assertEqual([w["slot"] for w in doc["workers"]], [0, 1])
        for w in doc["workers"]:
            self.assertEqual(set(w), {"slot", "pid", "generation", "state", "uptime_seconds",
                                      "requests", "requests_per_second", "in_flight",
                                      "connections", "resident_memory_bytes", "restarts"})
            self.assertEqual((w["state"], w["generation"], w["restarts"]), ("ready", 1, 0))
            self.assertGreater(w["resident_memory_bytes"], 1 << 20)

    def test_rate_and_connections(self):
        # A client that keeps one connection open and busy: its worker shows
        # the connection and a rate above zero once heartbeats have passed.
        c = self.server.http()
        try:
            def busy():
                for _ in range(50):
                    c.request("GET", "/hello")
                    c.getresponse().read()
                doc = json.loads(status(self.server, "--json")[1])
                return [w for w in doc["workers"]
                        if w["connections"] >= 1 and w["requests_per_second"] > 0]
            self.assertTrue(wait_for(busy, 20, 0.1))
        finally:
            c.close()

    def test_process_titles(self):
        def cmdline(pid):
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                return f.read().rstrip(b"\0").decode()

        def comm(pid):
            with open("/proc/%d/comm" % pid) as f:
                return f.read().strip()
        self.assertEqual(cmdline(self.server.proc.pid), "forkd: primary")
        self.assertEqual(comm(self.server.proc.pid), "forkd primary")
        titles = sorted(cmdline(p) for p in self.server.workers())
        self.assertEqual(titles, ["forkd: worker 0 (gen 1)", "forkd: worker 1 (gen 1)"])


class StatusRestarts(unittest.TestCase):
    def test_restart_counted_and_reload_generation(self):
        s = harness.Server({}, workers=1).start()
        self.addCleanup(s.stop)
        s.expect_worker_signals(signal.SIGKILL)  # the test kills a worker
        old = s.workers()
        os.kill(old[0], signal.SIGKILL)
        self.assertTrue(wait_for(lambda: len(s.workers()) == 1 and s.workers() != old))

        def ready():
            doc = json.loads(status(s, "--json")[1])
            return doc if [w["state"] for w in doc["workers"]] == ["ready"] else None
        doc = wait_for(ready)
        self.assertEqual(doc["workers"][0]["restarts"], 1)
        self.assertEqual(doc["primary"]["restarts"], 1)
        s.send_signal(signal.SIGHUP)
        doc = wait_for(lambda: (lambda d: d if [w["generation"] for w in d["workers"]] == [2]
                                and d["workers"][0]["state"] == "ready" else None)(
                                    json.loads(status(s, "--json")[1])))
        self.assertTrue(doc)
        self.assertEqual(doc["reloads"], 1)
        with open("/proc/%d/cmdline" % s.workers()[0], "rb") as f:
            self.assertEqual(f.read().rstrip(b"\0"), b"forkd: worker 0 (gen 2)")


class StatusErrors(unittest.TestCase):
    def test_no_server(self):
        s = harness.Server({})
        code, out, err = status(s)
        self.assertEqual(code, 1)
        self.assertEqual(err, "forkd: no forkd running: cannot read pidfile %s: "
                              "No such file or directory\n" % s.pidfile)

    def test_no_pidfile(self):
        s = harness.Server({})
        s.sections["server"]["pidfile"] = ""
        s.write_conf()
        code, _, err = status(s)
        self.assertEqual(code, 1)
        self.assertIn("-s status needs [server] pidfile", err)

    def test_scoreboard_file_removed_at_exit(self):
        s = harness.Server({}).start()
        board = s.pidfile[:-4] + ".scoreboard"
        self.assertTrue(os.path.exists(board))
        s.stop()
        self.assertFalse(os.path.exists(board))


class PidfileAuto(unittest.TestCase):
    def test_auto_follows_xdg_runtime_dir_for_a_user(self):
        if os.geteuid() == 0:
            # root always gets /run/forkd/forkd.pid; shown through forkd -T
            s = harness.Server({"server": {"pidfile": "auto"}})
            out = subprocess.run([harness.BIN, "-T", "-c", s.conf], capture_output=True,
                                 text=True).stdout
            self.assertIn("pidfile = /run/forkd/forkd.pid\n", out)
            return
        s = harness.Server({"server": {"pidfile": "auto"}}, env={"XDG_RUNTIME_DIR": "/x"})
        out = subprocess.run([harness.BIN, "-T", "-c", s.conf], capture_output=True, text=True,
                             env=dict(os.environ, XDG_RUNTIME_DIR=s.dir)).stdout
        self.assertIn("pidfile = %s/forkd.pid\n" % s.dir, out)


if __name__ == "__main__":
    harness.main()

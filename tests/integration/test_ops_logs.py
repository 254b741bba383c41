"""Request ids, the json access log, journald priorities and failed log writes.

A request id travels from the request (a trusted proxy's X-Request-ID, or one
forkd makes) to the response, the access log and every error-log line about
the request. The json access log is read back with Python's json module,
whatever bytes the client sent. With stderr on the journal (JOURNAL_STREAM
names it), error-log lines carry syslog priorities. An access log that cannot
be written (/dev/full) is reported once, not once per flush; an error log that
cannot be written is reported once per process on stderr, and the lines it
lost are counted in the first line it takes again.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Server, wait_for  # noqa: E402

ORDER = {"userId": "u-ops", "items": [{"productId": "widget", "quantity": 1}]}
GENERATED = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{12}$")


def json_lines(path, count, timeout=10):
    def lines():
        try:
            with open(path, "rb") as f:
                got = f.read().splitlines()
        except FileNotFoundError:
            return None
        return got if len(got) >= count else None
    return [json.loads(line) for line in (wait_for(lines, timeout) or [])]


class RequestIds(unittest.TestCase):
    def start(self, sections):
        s = Server(sections)
        s.sections["log"]["access_log"] = s.access_log
        s.sections["log"]["access_log_format"] = "json"
        s.write_conf()
        self.addCleanup(s.stop)
        return s.start()

    def test_generated_id_in_response_access_and_error_logs(self):
        s = self.start({})
        status, headers, _ = s.json("POST", "/orders", ORDER)
        self.assertEqual(status, 201)
        rid = headers["x-request-id"]
        self.assertRegex(rid, GENERATED)
        entry = json_lines(s.access_log, 1)[0]
        self.assertEqual(entry["request_id"], rid)
        # The example app logs the order from inside the request: that line
        # names the request.
        lines = [l for l in s.log().splitlines() if "analytics: order" in l]
        self.assertEqual(len(lines), 1, s.log())
        self.assertTrue(lines[0].endswith(", request_id: " + rid), lines[0])

    def test_ids_differ_per_request(self):
        s = self.start({})
        ids = {s.request("GET", "/hello")[1]["x-request-id"] for _ in range(20)}
        self.assertEqual(len(ids), 20)

    def test_trusted_proxy_id_is_kept(self):
        s = self.start({"proxy": {"trusted": "127.0.0.1"}})
        _, headers, _ = s.request("GET", "/hello", headers={"X-Request-ID": "abc-123_XYZ"})
        self.assertEqual(headers["x-request-id"], "abc-123_XYZ")
        self.assertEqual(json_lines(s.access_log, 1)[0]["request_id"], "abc-123_XYZ")

    def test_untrusted_peer_id_is_replaced(self):
        s = self.start({"proxy": {"trusted": "10.0.0.1"}})
        _, headers, _ = s.request("GET", "/hello", headers={"X-Request-ID": "spoofed"})
        self.assertRegex(headers["x-request-id"], GENERATED)

    def test_invalid_ids_are_replaced(self):
        s = self.start({"proxy": {"trusted": "127.0.0.1"}})
        for bad in ("a" * 129, "has space", "caf\xe9"):
            with self.subTest(bad=bad[:20]):
                data, _ = s.raw(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Request-ID: " +
                                bad.encode("latin-1") + b"\r\nConnection: close\r\n\r\n")
                h = dict(harness.parse_responses(data)[0][1])
                self.assertRegex(h["x-request-id"], GENERATED)
        _, headers, _ = s.request("GET", "/hello", headers={"X-Request-ID": "b" * 128})
        self.assertEqual(headers["x-request-id"], "b" * 128)

    def test_bad_request_gets_an_id(self):
        s = self.start({})
        data, _ = s.raw(b"GET /hello RTSP/1.0\r\n\r\n")
        status, headers, _ = harness.parse_responses(data)[0]
        self.assertEqual(status, 400)
        self.assertRegex(dict(headers)["x-request-id"], GENERATED)


class CombinedAccessLog(unittest.TestCase):
    def test_id_ends_combined_and_common_lines(self):
        for fmt in ("combined", "common"):
            with self.subTest(format=fmt):
                s = Server({})
                s.sections["log"].update(access_log=s.access_log, access_log_format=fmt)
                s.write_conf()
                s.start()
                try:
                    rid = s.request("GET", "/hello")[1]["x-request-id"]
                    line = wait_for(lambda: open(s.access_log).read().splitlines())
                finally:
                    s.stop()
                self.assertTrue(line[0].endswith(' "%s"' % rid), line)


class JsonAccessLog(unittest.TestCase):
    def test_every_line_is_json_whatever_the_bytes(self):
        s = Server({})
        s.sections["log"].update(access_log=s.access_log, access_log_format="json")
        s.write_conf()
        self.addCleanup(s.stop)
        s.start()
        s.request("GET", "/hello?q=1", headers={"User-Agent": 't"\\x', "Referer": "r"})
        raw = (b"GET /h%00llo HTTP/1.1\r\nHost: x\r\nUser-Agent: \xff\xfe\x80 \"q\" \\\r\n"
               b"Connection: close\r\n\r\n")
        s.raw(raw)
        s.raw(b"GARBAGE\r\n\r\n")
        s.request("GET", "/" + "a" * 3000)
        entries = json_lines(s.access_log, 4)
        self.assertEqual(len(entries), 4)
        first = entries[0]
        self.assertEqual(set(first), {"time", "remote_addr", "method", "target", "protocol",
                                      "status", "bytes", "referer", "user_agent", "duration",
                                      "request_id", "slot"})
        self.assertEqual((first["method"], first["target"], first["protocol"]),
                         ("GET", "/hello?q=1", "HTTP/1.1"))
        self.assertEqual((first["status"], first["bytes"]), (200, 12))
        self.assertEqual((first["user_agent"], first["referer"]), ('t"\\x', "r"))
        self.assertEqual(first["remote_addr"], "127.0.0.1")
        self.assertRegex(first["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(first["slot"], 0)
        # Bytes outside printable ASCII come back as the same byte values.
        self.assertEqual(entries[1]["user_agent"], '\xff\xfe\x80 "q" \\')
        self.assertEqual(entries[2]["method"], None)
        self.assertEqual(entries[2]["status"], 400)
        self.assertEqual(len(entries[3]["target"]), 512)  # cut, still valid JSON


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


class Journal(unittest.TestCase):
    def test_priorities_when_stderr_is_the_journal(self):
        s = Server({})
        s.sections["log"]["error_log"] = "stderr"
        s.write_conf()
        out = os.path.join(s.dir, "journal")
        for journal in (True, False):
            with self.subTest(journal=journal), open(out, "wb") as f:
                st = os.fstat(f.fileno())
                env = dict(os.environ)
                env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino + (0 if journal else 1))
                p = subprocess.Popen([harness.BIN, "-c", s.conf], stderr=f, env=env,
                                     stdout=subprocess.DEVNULL)
                try:
                    self.assertTrue(wait_for(lambda: "forkd ready" in read(out)))
                finally:
                    p.terminate()
                    p.wait(60)
            text = read(out)
            info = [l for l in text.splitlines() if "[info]" in l]
            self.assertTrue(info)
            if journal:
                self.assertTrue(all(l.startswith("<6>") for l in info), info)
            else:
                self.assertFalse(any(l.startswith("<") for l in text.splitlines()), text)


class FullDisk(unittest.TestCase):
    def test_failed_access_log_reported_once(self):
        s = Server({"log": {"access_log": "/dev/full"}}, workers=2)
        self.addCleanup(s.stop)
        s.start()
        # Enough requests over more than two flush periods (one a second):
        # before, every failed flush wrote an error line.
        deadline = time.monotonic() + 3.5
        sent = 0
        c = s.http()
        try:
            while time.monotonic() < deadline or sent < 200:
                c.request("GET", "/hello")
                c.getresponse().read()
                sent += 1
        finally:
            c.close()
        wait_for(lambda: s.log().count("access log /dev/full") >= 1, 5)
        time.sleep(1.5)  # another flush of every worker: still no second line
        lines = [l for l in s.log().splitlines() if "access log /dev/full" in l]
        # One report per worker at most (the idle one may have had nothing to drop).
        self.assertGreaterEqual(len(lines), 1, s.log())
        self.assertLessEqual(len(lines), 2, "\n".join(lines))
        self.assertEqual(len({l.split("#")[0].split()[-1] for l in lines}), len(lines))
        m = re.search(r"No space left on device; (\d+) lines \((\d+) bytes\) dropped", lines[0])
        self.assertTrue(m, lines[0])
        self.assertGreater(int(m.group(1)), 0)

    def test_failed_error_log_reported_on_stderr_then_counted_on_recovery(self):
        s = Server({}, workers=2)
        self.addCleanup(s.stop)
        link = os.path.join(s.dir, "err.log")
        real = os.path.join(s.dir, "err-real.log")
        os.symlink("/dev/full", link)
        s.sections["log"].update(error_log=link, level="debug")
        s.write_conf()
        s.start()
        sent = 0

        def not_found(n):
            nonlocal sent
            c = s.http()  # a new connection each time: both workers get some
            try:
                for _ in range(n):
                    c.request("GET", "/missing")
                    r = c.getresponse()
                    r.read()
                    self.assertEqual(r.status, 404)
                    sent += 1
            finally:
                c.close()

        # Every 404 is a debug line the full disk refuses, for over two seconds.
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline or sent < 400:
            not_found(20)
        s.problems()  # reads what forkd wrote on stderr so far
        prefix = "error log %s: No space left on device; " % link
        reports = [l for l in s.stderr_text.decode().splitlines() if prefix in l]
        pids = [l.split("#")[0].split()[-1] for l in reports]
        self.assertGreaterEqual(len(reports), 2, s.stderr_text)  # the primary and a worker
        self.assertEqual(len(pids), len(set(pids)), "\n".join(reports))  # once a minute
        self.assertTrue(all("the next report in 60 s at the earliest" in l for l in reports))
        dropped = sum(int(re.search(r"; (\d+) lines \(\d+ bytes\) dropped", l).group(1))
                      for l in reports)

        refused = sent
        # The disk has room again: the log moves to a file and reopens.
        os.symlink(real, link + ".new")
        os.replace(link + ".new", link)
        s.send_signal(signal.SIGUSR1)
        again = re.compile(r"\[warn\] \d+#(\w+): error log %s: writing again after No space "
                           r"left on device; (\d+) lines \((\d+) bytes\) dropped since the "
                           r"last report$" % re.escape(link), re.M)

        def recovered():
            not_found(10)
            try:
                with open(real) as f:
                    found = {who: (int(n), int(b)) for who, n, b in again.findall(f.read())}
            except FileNotFoundError:
                return None
            return found if {"0", "1"} <= set(found) else None  # both workers
        found = wait_for(recovered, 10)
        self.assertTrue(found, "no 'writing again' line from each worker")
        dropped += sum(n for n, _ in found.values())
        # Every refused 404 line is counted in a report or a recovery line
        # (the primary's and lines written after the swap add to it: at least).
        self.assertGreaterEqual(dropped, refused, found)
        self.assertTrue(all(b > n * 40 for n, b in found.values()), found)
        s.error_log = real  # the stop's checks read the log forkd writes now


if __name__ == "__main__":
    harness.main()

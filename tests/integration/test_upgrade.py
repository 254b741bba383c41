"""Binary upgrade (SIGUSR2, forkd -s upgrade), against the real binary.

forkd runs from a copy of the build's binary in the test's folder. An
upgrade installs another file at that path the way an operator does (a new
file renamed over the old one), and the test tells binaries apart by the
file each process runs: /proc/PID/exe's inode against the inode of the file
that was installed. The primary in charge is the pid in the pidfile.

What forkd did is read from its error log; requests go over loopback, the
load is wrk for a bounded time. Nothing asserts how fast anything happened.
"""
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

import harness
from harness import Server, children, wait_for

WRK = harness.need_tool("wrk", "wrk")
REAL_BIN = harness.BIN


def read_text(path):
    with open(path) as f:
        return f.read()


def exe_id(pid):
    """(device, inode) of the file process pid runs, or None when it is gone."""
    try:
        st = os.stat("/proc/%d/exe" % pid)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Binaries:
    """The file forkd is started from, and what the test installs there."""

    def __init__(self, folder):
        self.folder = folder
        self.path = os.path.join(folder, "forkd")
        self.count = 0

    def install_bytes(self, data, mode=0o755):
        """Puts data at self.path through a rename (a new inode); returns the
        (device, inode) of the installed file."""
        self.count += 1
        tmp = "%s.new%d" % (self.path, self.count)
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.rename(tmp, self.path)
        st = os.stat(self.path)
        return (st.st_dev, st.st_ino)

    def install_forkd(self):
        """A copy of the build's binary made byte-different by a trailer
        (the loader ignores bytes past the ELF's sections)."""
        with open(REAL_BIN, "rb") as f:
            data = f.read()
        return self.install_bytes(data + b"\0forkd-upgrade-test-%d\0" % (self.count + 1))

    def install_script(self, body, shell="/bin/sh"):
        """A shell script at the path; the real binary is at self.real."""
        return self.install_bytes(("#!%s\n%s\n" % (shell, body)).encode())

    def keep_real(self):
        """A copy of the build's binary next to the path, for scripts to exec."""
        self.real = os.path.join(self.folder, "forkd-real")
        shutil.copyfile(REAL_BIN, self.real)
        os.chmod(self.real, 0o755)
        return self.real


class UpgradeCase(unittest.TestCase):
    def start(self, sections=None, workers=2):
        s = Server(sections, workers=workers)
        self.bins = Binaries(s.dir)
        self.first = self.bins.install_forkd()
        s.bin = self.bins.path
        self.addCleanup(self.stop_all, s)
        s.start()
        self.server = s
        return s

    def stop_all(self, s):
        """Stops whichever primary is in charge now, then the one the test
        started (already gone after an upgrade), and checks forkd's stderr,
        which every primary shares, for sanitizer reports."""
        pid = self.pidfile_pid(s)
        if pid and pid != s.proc.pid and alive(pid):
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not alive(pid), harness.STOP_WAIT)
        s.stop()

    def pidfile_pid(self, s):
        try:
            with open(s.pidfile) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def primary(self):
        pid = self.pidfile_pid(self.server)
        self.assertIsNotNone(pid)
        return pid

    def count(self, text):
        return self.server.log().count(text)

    def upgrade(self, with_cli=False):
        """Asks the primary in charge to upgrade; returns its pid."""
        pid = self.primary()
        if with_cli:
            r = subprocess.run([REAL_BIN, "-c", self.server.conf, "-s", "upgrade"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
        else:
            os.kill(pid, signal.SIGUSR2)
        return pid

    def assert_upgraded(self, old, installed):
        """Waits for the hand-over from old to a primary running installed:
        the pidfile names it, old is gone, and every worker answering runs
        installed too."""
        def done():
            new = self.pidfile_pid(self.server)
            return new if new != old and not alive(old) and exe_id(new) == installed else None
        new = wait_for(done, 60)
        self.assertTrue(new, "no hand-over from %d; log:\n%s" % (old, self.server.log()))
        self.assert_served_by(new, installed)
        return new

    def assert_served_by(self, primary, installed):
        """Twenty answers, each from a worker of primary running installed."""
        workers = set(children(primary))
        self.assertTrue(workers)
        for _ in range(20):
            status, _, body = self.server.json("GET", "/health")
            self.assertEqual(status, 200)
            self.assertIn(body["pid"], workers)
            self.assertEqual(exe_id(body["pid"]), installed)

    def assert_failed(self, old, before, pattern):
        """Waits for one more "binary upgrade failed" line, matching pattern;
        old still runs, the pidfile names it, and it still serves."""
        self.assertTrue(wait_for(lambda: self.count("binary upgrade failed") > before, 60),
                        self.server.log())
        self.assertRegex(self.server.log(), pattern)
        self.assertIn("primary %d serves on" % old, self.server.log())
        # The new primary, if one was forked, is gone before the next try:
        # every child left runs old's binary (its workers).
        self.assertTrue(wait_for(lambda: all(exe_id(c) == exe_id(old) for c in children(old)),
                                 60), self.server.log())
        self.assertTrue(alive(old))
        self.assertEqual(self.pidfile_pid(self.server), old)
        self.assert_served_by(old, exe_id(old))


class UnderLoad(UpgradeCase):
    def test_three_upgrades_under_wrk_fail_no_request(self):
        """wrk -c32 runs through an upgrade, one to a binary that exits at
        once, and another upgrade (asked with forkd -s upgrade): not one
        request fails, and after each step every answer comes from the
        binary expected."""
        self.start()
        wrk = subprocess.Popen([WRK, "-t2", "-c32", "-d300s",
                                "http://127.0.0.1:%d/hello" % self.server.port],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(lambda: wrk.poll() is None and wrk.kill())
        time.sleep(1)  # let the load build up before the first upgrade

        second = self.bins.install_forkd()
        p1 = self.upgrade()
        p2 = self.assert_upgraded(p1, second)

        failures = self.count("binary upgrade failed")
        self.bins.install_script("exit 1")
        self.upgrade()
        self.assert_failed(p2, failures, r"new primary \d+ exited \(status 1\) before its "
                                         r"workers were ready")

        third = self.bins.install_forkd()
        self.upgrade(with_cli=True)
        p3 = self.assert_upgraded(p2, third)

        self.assertIsNone(wrk.poll(), "wrk ended before the upgrades were done")
        wrk.send_signal(signal.SIGINT)  # wrk stops and prints its totals
        out = wrk.communicate(timeout=60)[0]
        print(out)
        m = re.search(r"(\d+) requests in", out)
        self.assertTrue(m and int(m.group(1)) > 0, out)
        self.assertNotIn("Non-2xx", out)
        self.assertNotIn("Socket errors", out)
        self.assertEqual(len(children(p3)), 2)
        status, _, body = self.server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn(b"forkd_workers 2", body)


class Refusals(UpgradeCase):
    """Upgrades that cannot work: a clear line in the log, and the running
    primary serves on, named by the pidfile."""

    def test_binary_missing(self):
        self.start(workers=1)
        old = self.primary()
        before = self.count("binary upgrade failed")
        os.unlink(self.bins.path)
        self.upgrade()
        self.assert_failed(old, before, r"binary upgrade failed: cannot execute %s: No such "
                                        r"file or directory; primary %d serves on" %
                           (re.escape(self.bins.path), old))

    def test_binary_not_executable(self):
        self.start(workers=1)
        old = self.primary()
        before = self.count("binary upgrade failed")
        os.chmod(self.bins.path, stat.S_IRUSR | stat.S_IWUSR)
        self.upgrade()
        self.assert_failed(old, before, r"cannot execute %s: Permission denied" %
                           re.escape(self.bins.path))

    def test_config_that_fails_on_the_new_binary(self):
        s = self.start(workers=1)
        old = self.primary()
        before = self.count("binary upgrade failed")
        self.bins.install_forkd()
        good = read_text(s.conf)
        s.write_conf(raw=good + "[server]\nworkers = 9999\n")
        self.upgrade()
        self.assert_failed(old, before, r"binary upgrade failed: new primary \d+: %s:\d+: "
                                        r".*workers = '9999'" % re.escape(s.conf))
        # Fixed, the same upgrade goes through.
        s.write_conf(raw=good)
        installed = self.bins.install_forkd()
        self.assert_upgraded(self.upgrade(), installed)

    def test_inherited_descriptor_that_is_not_a_listening_socket(self):
        self.start(workers=1)
        old = self.primary()
        real = self.bins.keep_real()
        before = self.count("binary upgrade failed")
        # bash, for a descriptor number far above any forkd holds.
        self.bins.install_script(
            'exec 250<"$0"\nFORKD_LISTEN_FDS="250:0:127.0.0.1:1" exec %s "$@"' % real,
            shell="/bin/bash")
        self.upgrade()
        self.assert_failed(old, before, r"new primary \d+: descriptor 250 \(127\.0\.0\.1:1\): "
                                        r"not a socket")
        before = self.count("binary upgrade failed")
        self.bins.install_script('FORKD_LISTEN_FDS="99:0:x" exec %s "$@"' % real)
        self.upgrade()
        self.assert_failed(old, before, r"descriptor 99 \(x\): no such open descriptor")

    def test_not_ready_within_upgrade_timeout(self):
        self.start({"server": {"upgrade_timeout": "1"}}, workers=1)
        old = self.primary()
        before = self.count("binary upgrade failed")
        self.bins.install_script("exec sleep 600")
        self.upgrade()
        self.assert_failed(old, before, r"new primary \d+ was not ready within "
                                        r"upgrade_timeout \(1 s\)")

    def test_second_upgrade_while_one_runs_is_refused(self):
        """The new binary waits for a file the test creates, so the second
        USR2 (and a reload) surely come while the first upgrade runs."""
        s = self.start(workers=1)
        old = self.primary()
        real = self.bins.keep_real()
        go = os.path.join(s.dir, "go")
        self.bins.install_script('while [ ! -e %s ]; do sleep 0.05; done\nexec %s "$@"' %
                                 (go, real))
        self.upgrade()
        self.assertTrue(wait_for(lambda: "binary upgrade: started" in s.log()), s.log())
        self.upgrade()
        self.assertTrue(wait_for(lambda: "binary upgrade refused: an upgrade is already in "
                                         "progress" in s.log()), s.log())
        # A reload meanwhile is refused too, and forkd -s reload says so.
        r = subprocess.run([REAL_BIN, "-c", s.conf, "-s", "reload"], capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("forkd: reload failed; forkd %d goes on" % old, r.stderr)
        self.assertIn("SIGHUP: reload refused: a binary upgrade is in progress", s.log())
        open(go, "w").close()
        st = os.stat(real)
        self.assert_upgraded(old, (st.st_dev, st.st_ino))


class Notify(UpgradeCase):
    def test_service_manager_follows_the_new_primary(self):
        """Playing systemd (NOTIFY_SOCKET): the old primary names the new one
        with MAINPID= once it is ready, and never says STOPPING=1 while it
        drains, since the service goes on."""
        folder = tempfile.mkdtemp(prefix="forkd-notify-")
        path = os.path.join(folder, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(path)
        s = Server(workers=1, env={"NOTIFY_SOCKET": path})
        self.bins = Binaries(s.dir)
        s.bin = self.bins.path
        self.bins.install_forkd()
        self.addCleanup(self.stop_all, s)
        self.server = s.start()
        installed = self.bins.install_forkd()
        old = self.upgrade()
        new = self.assert_upgraded(old, installed)
        sock.settimeout(0.2)
        got = []
        while True:
            try:
                got.append(sock.recv(4096).decode())
            except socket.timeout:
                break
        self.assertIn("MAINPID=%d\nREADY=1" % new, got)
        self.assertFalse([m for m in got if "STOPPING=1" in m], got)


class Signals(UpgradeCase):
    UNUSED = (signal.SIGWINCH, signal.SIGVTALRM, signal.SIGPROF, signal.SIGPWR,
              signal.SIGXCPU, signal.SIGXFSZ, signal.SIGRTMIN, signal.SIGRTMIN + 5)

    def test_unused_signals_end_no_process(self):
        s = self.start(workers=2)
        primary = self.primary()
        workers = children(primary)
        for sig in self.UNUSED:
            os.kill(primary, sig)
            for w in workers:
                os.kill(w, sig)
        # Signals of the primary's own that a worker has no use for.
        for w in workers:
            for sig in (signal.SIGUSR2, signal.SIGALRM, signal.SIGIO, signal.SIGTTIN,
                        signal.SIGTTOU, signal.SIGPIPE):
                os.kill(w, sig)
        self.assertTrue(wait_for(lambda: "signal %d (%s) ignored" % (
            signal.SIGWINCH, signal.strsignal(signal.SIGWINCH)) in s.log()), s.log())
        for _ in range(10):
            self.assertEqual(s.request("GET", "/hello")[0], 200)
        self.assertEqual(children(primary), workers)
        for pid in [primary] + workers:
            with open("/proc/%d/stat" % pid) as f:
                self.assertNotIn(f.read().rsplit(")", 1)[1].split()[0], ("T", "Z"))
        self.assertEqual(self.count("exited"), 0, s.log())


if __name__ == "__main__":
    harness.main()

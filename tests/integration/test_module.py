"""Apps as modules: [app] module loaded by each worker, its config section,
forkd -t and -T, every way a module can be wrong, and new app code going
live on SIGHUP with no failed request under wrk.

The modules are small C files compiled here with the system compiler
against include/ alone, the way an app's own repository would build one.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import harness
from harness import BIN, ROOT, Server, wait_for

CC = harness.need_tool("cc", "gcc")
WRK = harness.need_tool("wrk", "wrk")
INCLUDE = os.path.join(ROOT, "include")

# A module whose GET /hello answers TEXT, with one key of its own in [greet].
HELLO_APP = r"""
#include <stdio.h>
#include <string.h>
#include <forkd.h>

static const struct app_key keys[] = {
	{ "times", APP_KEY_INT, 1, 5, "1", "how many times to say it" },
	{ "greeting", APP_KEY_STRING, 0, 0, TEXT, "what to say" },
};

static int hello(struct request *req, struct response *res, void *udata)
{
	struct app *app = udata;
	char body[256] = "";
	(void)req;
	for (long long i = 0; i < app_config_int(app, "times"); i++)
		strcat(body, app_config_string(app, "greeting"));
	return response_send(res, 200, "text/plain", body, strlen(body));
}

/* What the request says of its client: "SCHEME ADDRESS". */
static int who(struct request *req, struct response *res, void *udata)
{
	char addr[64], body[80];
	(void)udata;
	request_client_addr(req, addr, sizeof addr);
	int n = snprintf(body, sizeof body, "%s %s", request_scheme(req), addr);
	return response_send(res, 200, "text/plain", body, (size_t)n);
}

int forkd_app_init(struct app *app)
{
	int rc = app_config_declare(app, "greet", keys, 2);
	if (!rc)
		rc = app_get(app, "/who", who, NULL);
	return rc ? rc : app_get(app, "/hello", hello, app);
}
"""

NO_ENTRY = r"""
#include <forkd.h>
int forkd_app_start(struct app *app) { (void)app; return 0; }
"""

NO_HEADER = r"""
struct app;
int forkd_app_init(struct app *app) { (void)app; return 0; }
"""

OTHER_VERSION = r"""
struct app;
const int forkd_app_api_version = 999;
int forkd_app_init(struct app *app) { (void)app; return 0; }
"""

INIT_FAILS = r"""
#include <errno.h>
#include <forkd.h>
int forkd_app_init(struct app *app) { (void)app; return -ENOENT; }
"""

MISSING_SYMBOL = r"""
#include <forkd.h>
int forkd_no_such_function(void);
int forkd_app_init(struct app *app) { (void)app; return forkd_no_such_function(); }
"""

# A module whose init takes [slow] init_ms, as an app that connects to its
# database first would: a reload ends only once its new workers are ready.
SLOW_INIT = r"""
#include <time.h>
#include <forkd.h>

static const struct app_key keys[] = {
	{ "init_ms", APP_KEY_INT, 0, 10000, "0", "how long init takes" },
};

static int hello(struct request *req, struct response *res, void *udata)
{
	(void)req;
	(void)udata;
	return response_send(res, 200, "text/plain", TEXT, sizeof TEXT - 1);
}

int forkd_app_init(struct app *app)
{
	int rc = app_config_declare(app, "slow", keys, 1);
	if (rc)
		return rc;
	long long ms = app_config_int(app, "init_ms");
	struct timespec t = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
	nanosleep(&t, NULL);
	return app_get(app, "/hello", hello, NULL);
}
"""


def build(src, out, text="hello"):
    """Compiles src into the shared object out (TEXT defined as the C string text)."""
    c = out + ".c"
    with open(c, "w") as f:
        f.write(src)
    subprocess.run([CC, "-shared", "-fPIC", "-Wall", "-Werror", "-I", INCLUDE,
                    '-DTEXT="%s"' % text, "-o", out, c], check=True)
    return out


def forkd_t(conf, *args):
    """forkd -t (or another flag) on conf: (exit code, stdout + stderr)."""
    r = subprocess.run([BIN, "-c", conf] + list(args or ["-t"]), capture_output=True,
                       text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


class ModuleCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="forkd-module-")
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def server(self, module, sections=None, workers=1):
        secs = {"app": {"module": module}}
        for k, v in (sections or {}).items():
            secs.setdefault(k, {}).update(v)
        s = Server(secs, workers=workers)
        self.servers.append(s)
        return s

    def expect_refused(self, module, sections, message, s=None):
        """forkd -t and a start both refuse, with message in one line."""
        s = s or self.server(module, sections)
        code, out = forkd_t(s.conf)
        self.assertEqual(code, 1, out)
        self.assertIn(message, out)
        self.assertNotIn("test is successful", out)
        s.proc = subprocess.Popen([BIN, "-c", s.conf], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=s.dir)
        self.assertEqual(s.proc.wait(60), 1, s.log())
        self.assertIn(message, s.log())
        self.assertIn("a configuration error; stopping forkd", s.log())
        s.stop()


class LoadTest(ModuleCase):
    def test_module_serves_and_reads_its_section(self):
        so = build(HELLO_APP, self.path("hello.so"), "hi ")
        s = self.server(so, {"greet": {"times": "3"}}, workers=2).start()
        self.assertEqual(s.request("GET", "/hello")[::2], (200, b"hi hi hi "))
        # The server's own routes stay, the example app's are gone.
        self.assertEqual(s.request("GET", "/health")[0], 200)
        self.assertEqual(s.request("GET", "/json")[0], 404)

    def test_relative_path_is_taken_from_the_config_folder(self):
        build(HELLO_APP, self.path("hello.so"))
        s = self.server("")
        s.sections["app"]["module"] = os.path.relpath(self.path("hello.so"), s.dir)
        s.write_conf()
        s.start()
        self.assertEqual(s.request("GET", "/hello")[::2], (200, b"hello"))

    def test_no_module_serves_only_health_and_metrics(self):
        s = self.server("").start()
        self.assertEqual(s.request("GET", "/health")[0], 200)
        self.assertEqual(s.request("GET", "/metrics")[0], 200)
        self.assertEqual(s.request("GET", "/hello")[0], 404)

    def test_app_routes_take_precedence_over_the_builtin_health(self):
        src = HELLO_APP.replace('app_get(app, "/hello", hello, app)',
                                'app_get(app, "/health", hello, app)')
        s = self.server(build(src, self.path("h.so"), "mine")).start()
        self.assertEqual(s.request("GET", "/health")[::2], (200, b"mine"))

    def test_dump_shows_the_app_section(self):
        so = build(HELLO_APP, self.path("hello.so"))
        s = self.server(so, {"greet": {"times": "2"}})
        code, out = forkd_t(s.conf, "-T")
        self.assertEqual(code, 0, out)
        self.assertIn("[greet]\n# how many times to say it; default 1; allowed: 1..5\n"
                      "times = 2\n", out)
        self.assertIn("# what to say; default hello; allowed: at most 255 characters\n"
                      "greeting = hello\n", out)
        self.assertIn("[app]\n", out)

    def test_client_scheme_and_address_behind_a_trusted_proxy(self):
        so = build(HELLO_APP, self.path("hello.so"))
        fwd = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        s = self.server(so).start()  # [proxy] trusted defaults to 127.0.0.1, ::1
        self.assertEqual(s.request("GET", "/who", headers=fwd)[::2], (200, b"https 203.0.113.9"))
        self.assertEqual(s.request("GET", "/who")[::2], (200, b"http 127.0.0.1"))
        s.stop()
        # The same headers from a peer that is not trusted count for nothing.
        s = self.server(so, {"proxy": {"trusted": "10.0.0.0/8"}}).start()
        self.assertEqual(s.request("GET", "/who", headers=fwd)[::2], (200, b"http 127.0.0.1"))

    def test_app_option_overrides_the_config(self):
        so = build(HELLO_APP, self.path("hello.so"), "from --app")
        s = Server(args=["--app", so])
        self.servers.append(s)
        s.start()
        self.assertEqual(s.request("GET", "/hello")[::2], (200, b"from --app"))


class BadModuleTest(ModuleCase):
    def test_missing_file(self):
        self.expect_refused(self.path("nope.so"), None,
                            "app module %s: No such file or directory" % self.path("nope.so"))

    def test_not_a_shared_object(self):
        p = self.path("text.so")
        with open(p, "w") as f:
            f.write("not an ELF file\n")
        self.expect_refused(p, None, "app module %s: cannot load: " % p)

    def test_no_entry_point(self):
        so = build(NO_ENTRY, self.path("noentry.so"))
        self.expect_refused(so, None, "app module %s: no entry point forkd_app_init" % so)

    def test_built_without_the_header(self):
        so = build(NO_HEADER, self.path("noheader.so"))
        self.expect_refused(so, None, "app module %s: no forkd_app_api_version: not built "
                            "with forkd.h" % so)

    def test_other_api_version(self):
        so = build(OTHER_VERSION, self.path("v999.so"))
        self.expect_refused(so, None, "app module %s: built for forkd API version 999; this "
                            "forkd has version 1" % so)

    def test_init_fails(self):
        so = build(INIT_FAILS, self.path("fails.so"))
        self.expect_refused(so, None, "the app's forkd_app_init failed: No such file or "
                            "directory")

    def test_symbol_forkd_lacks(self):
        so = self.path("missing.so")
        with open(so + ".c", "w") as f:
            f.write(MISSING_SYMBOL)
        subprocess.run([CC, "-shared", "-fPIC", "-I", INCLUDE, "-o", so, so + ".c"], check=True)
        self.expect_refused(so, None, "undefined symbol: forkd_no_such_function")

    def test_bad_app_value_names_file_and_line(self):
        so = build(HELLO_APP, self.path("hello.so"))
        s = self.server(so, {"greet": {"times": "9"}})
        line = open(s.conf).read().splitlines().index("times = 9") + 1
        self.expect_refused(so, None, "%s:%d: [greet] times = '9': out of range; allowed: 1..5"
                            % (s.conf, line), s)

    def test_unknown_app_key(self):
        so = build(HELLO_APP, self.path("hello.so"))
        self.expect_refused(so, {"greet": {"colour": "red"}},
                            "[greet] colour = 'red': unknown key in [greet]; "
                            "allowed: times, greeting")

    def test_section_nobody_declared(self):
        so = build(HELLO_APP, self.path("hello.so"))
        self.expect_refused(so, {"gret": {"times": "2"}},
                            "[gret]: unknown section (the app declared another one)")

    def test_section_without_a_module(self):
        self.expect_refused("", {"greet": {"times": "2"}},
                            "[greet]: unknown section (no [app] module is loaded)")


class ReloadTest(ModuleCase):
    def reload(self, s, line):
        before = s.log().count(line)
        s.send_signal(signal.SIGHUP)
        self.assertTrue(wait_for(lambda: s.log().count(line) > before, 60), s.log()[-3000:])

    def test_bad_module_on_reload_keeps_the_old_workers(self):
        app = self.path("app.so")
        build(HELLO_APP, app, "old")
        s = self.server(app, workers=2).start()
        pids = s.workers()
        with open(self.path("broken.so"), "w") as f:
            f.write("garbage")
        os.rename(self.path("broken.so"), app)
        self.reload(s, "reload failed")
        self.assertIn("app module %s: cannot load" % app, s.log())
        self.assertEqual(s.request("GET", "/hello")[::2], (200, b"old"))
        self.assertTrue(wait_for(lambda: s.workers() == pids, 10), (s.workers(), pids))

    def test_bad_app_value_on_reload_keeps_the_old_workers(self):
        app = build(HELLO_APP, self.path("app.so"), "old")
        s = self.server(app, {"greet": {"times": "2"}}).start()
        s.sections["greet"]["times"] = "0"
        s.write_conf()
        self.reload(s, "reload failed")
        self.assertRegex(s.log(), r"%s:\d+: \[greet\] times = '0': out of range; allowed: 1..5"
                         % re.escape(s.conf))
        self.assertEqual(s.request("GET", "/hello")[::2], (200, b"oldold"))

    def test_signal_reload_returns_when_the_reload_has_ended(self):
        """forkd -s reload waits for the end of its reload and says how it
        went: complete (exit 0) once every new worker is ready, which here
        takes each one's 1.5 s init; failed (exit 1) when the new module
        cannot start, while the old workers go on serving."""
        app = build(SLOW_INIT, self.path("app.so"), "old")
        s = self.server(app, workers=2).start()

        def ctl():
            return subprocess.run([BIN, "-c", s.conf, "-s", "reload"], capture_output=True,
                                  text=True, timeout=120)
        build(SLOW_INIT, self.path("v2.so"), "new")
        os.rename(self.path("v2.so"), app)
        s.sections["slow"] = {"init_ms": "1500"}
        s.write_conf()
        r = ctl()
        # Read at once: the command returned only after the reload ended.
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("reload complete", s.log())
        self.assertEqual(r.stdout, "forkd: reload complete: 2 worker(s) run the new "
                         "configuration\n")
        self.assertEqual(s.request("GET", "/hello")[::2], (200, b"new"))

        build(INIT_FAILS, self.path("broken.so"))
        os.rename(self.path("broken.so"), app)
        del s.sections["slow"]  # the broken module declares no [slow]
        s.write_conf()
        r = ctl()
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("the app's forkd_app_init failed", s.log())
        self.assertRegex(s.log(), r"reload failed: new worker \d+ \(slot 0\) exited")
        self.assertIn("forkd: reload failed; forkd %d goes on with the previous configuration"
                      % s.proc.pid, r.stderr)
        self.assertIn(s.error_log, r.stderr)
        self.assertEqual(s.request("GET", "/hello")[::2], (200, b"new"))

    def test_replaced_module_goes_live_with_no_failed_request(self):
        app = self.path("app.so")
        build(HELLO_APP, app, "version 1")
        build(HELLO_APP, self.path("v2.so"), "version 2")
        s = self.server(app, workers=2).start()
        self.assertEqual(s.request("GET", "/hello")[::2], (200, b"version 1"))
        wrk = subprocess.Popen([WRK, "-t1", "-c32", "-d6s", "http://127.0.0.1:%d/hello" % s.port],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            # Under load: the new file replaces the old one by rename, then HUP.
            self.assertTrue(wait_for(lambda: self.requests_seen(s) > 1000, 10))
            os.rename(self.path("v2.so"), app)
            self.reload(s, "reload complete")
            self.assertEqual(s.request("GET", "/hello")[::2], (200, b"version 2"))
        finally:
            out = wrk.communicate(timeout=60)[0]
        self.assertEqual(wrk.returncode, 0, out)
        self.assertRegex(out, r"\d+ requests in")
        print("wrk during the module reload:\n" + out, file=sys.stderr)
        self.assertNotIn("Non-2xx", out)
        self.assertNotIn("Socket errors", out)
        # Every worker now runs version 2.
        for _ in range(20):
            self.assertEqual(s.request("GET", "/hello")[::2], (200, b"version 2"))

    @staticmethod
    def requests_seen(s):
        status, _, body = s.request("GET", "/metrics")
        return sum(float(v) for v in re.findall(
            r'^forkd_requests_total\{[^}]*\} (\S+)$', body.decode(), re.M))


if __name__ == "__main__":
    harness.main()

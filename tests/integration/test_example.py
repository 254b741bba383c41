"""The out-of-tree flow, against an *installed* forkd: forkd installed into
a temporary prefix (scripts/test does `meson install` into FORKD_PREFIX),
examples/notes built from its own folder against that prefix's forkd.pc
alone, and the installed forkd running it, tested over HTTP. Also a single
binary: an app with its own main() linked against the installed libforkd.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

import harness
from harness import ROOT, Server

PREFIX = os.environ.get("FORKD_PREFIX")


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    if r.returncode:
        raise AssertionError("%s failed (%d):\n%s%s" % (" ".join(cmd), r.returncode,
                                                        r.stdout[-3000:], r.stderr[-3000:]))
    return r.stdout


class InstalledCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not PREFIX:
            raise unittest.SkipTest("FORKD_PREFIX not set: scripts/test installs forkd there")
        pcs = glob.glob(os.path.join(PREFIX, "lib*", "**", "forkd.pc"), recursive=True)
        assert len(pcs) == 1, pcs
        cls.pcdir = os.path.dirname(pcs[0])
        cls.libdir = os.path.dirname(cls.pcdir)
        cls.env = dict(os.environ, PKG_CONFIG_PATH=cls.pcdir)
        cls.bin = os.path.join(PREFIX, "bin", "forkd")
        cls.tmp = tempfile.mkdtemp(prefix="forkd-installed-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def server(self, module, sections=None):
        secs = {"app": {"module": module}}
        secs.update(sections or {})
        s = Server(secs)
        s.bin = self.bin
        self.addCleanup(s.stop)
        return s


class LayoutTest(InstalledCase):
    def test_installed_files(self):
        for path in ("bin/forkd", "include/forkd.h", "etc/forkd/forkd.conf",
                     "lib/systemd/system/forkd.service"):
            self.assertTrue(os.path.exists(os.path.join(PREFIX, path)), path)
        for name in ("libforkd.so", "libforkd.a", "forkd/example.so"):
            self.assertTrue(os.path.exists(os.path.join(self.libdir, name)), name)
        cflags = run(["pkg-config", "--cflags", "forkd"], env=self.env)
        self.assertIn("-I%s/include" % PREFIX, cflags)

    def test_installed_config_loads_the_installed_example(self):
        conf = os.path.join(PREFIX, "etc", "forkd", "forkd.conf")
        self.assertIn("module = %s/forkd/example.so\n" % self.libdir, open(conf).read())
        out = run([self.bin, "-c", conf, "-t"])
        self.assertIn("test is successful", out)


class NotesTest(InstalledCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A copy of the example, as if in its own repository.
        cls.src = os.path.join(cls.tmp, "notes")
        shutil.copytree(os.path.join(ROOT, "examples", "notes"), cls.src)
        cls.build = os.path.join(cls.src, "build")
        run(["meson", "setup", cls.build, cls.src], env=cls.env)
        run(["ninja", "-C", cls.build], env=cls.env)
        cls.module = os.path.join(cls.build, "notes.so")

    def test_built_against_the_installed_header_only(self):
        with open(os.path.join(self.build, "compile_commands.json")) as f:
            command = json.load(f)[0]["command"]
        self.assertIn("-I%s/include" % PREFIX, command)
        # Nothing from the source tree; the prefix may lie inside it (scripts/test
        # installs into build-install/prefix), so its own paths are left out.
        self.assertNotIn(ROOT, command.replace(PREFIX, ""))

    def test_notes_api(self):
        s = self.server(self.module, {"notes": {"max_notes": "2"}})
        s.start()
        status, _, body = s.json("POST", "/notes", {"title": "shopping", "body": "milk and eggs"})
        self.assertEqual(status, 201, body)
        self.assertEqual(body, {"id": "1", "title": "shopping", "body": "milk and eggs"})
        self.assertEqual(s.json("GET", "/notes/1")[::2], (200, body))
        # Counted on the pool, answered on the loop.
        self.assertEqual(s.json("GET", "/notes/1/words")[::2], (200, {"id": "1", "words": 3}))
        # The shared event's listener ran.
        self.assertEqual(s.json("GET", "/notes/stats")[::2],
                         (200, {"notes": 1, "created_heard": 1}))
        self.assertEqual(s.json("POST", "/notes", {"title": "b", "body": "x"})[0], 201)
        self.assertEqual(s.json("POST", "/notes", {"title": "c", "body": "y"})[::2],
                         (507, {"error": "too many notes"}))
        self.assertEqual([n["id"] for n in s.json("GET", "/notes")[2]["notes"]], ["2", "1"])
        self.assertEqual(s.request("DELETE", "/notes/1")[::2], (204, b""))
        self.assertEqual(s.json("GET", "/notes/1")[::2], (404, {"error": "no such note"}))

    def test_bad_input(self):
        s = self.server(self.module)
        s.start()
        self.assertEqual(s.json("POST", "/notes", {"body": "x"})[::2],
                         (400, {"error": "title must be a string"}))
        self.assertEqual(s.json("POST", "/notes", {"title": "t", "body": ""})[::2],
                         (400, {"error": "body must be 1 to 10240 bytes"}))
        status, _, body = s.request("POST", "/notes", b"{not json",
                                    {"Content-Type": "application/json"})
        self.assertEqual(status, 400)
        self.assertRegex(json.loads(body)["error"], r"^invalid JSON at line 1 column \d+: ")
        self.assertEqual(s.json("GET", "/notes/99/words")[::2], (404, {"error": "no such note"}))

    def test_bad_config_value(self):
        s = self.server(self.module, {"notes": {"max_body": "2m"}})
        r = subprocess.run([self.bin, "-c", s.conf, "-t"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"%s:\d+: \[notes\] max_body = '2m': out of range; "
                         r"allowed: 1\.\.1m bytes" % s.conf)


SINGLE = r"""
#include <string.h>
#include <forkd.h>

static int hello(struct request *req, struct response *res, void *udata)
{
	(void)req; (void)udata;
	return response_send(res, 200, "text/plain", "one binary", 10);
}

static int init(struct app *app)
{
	return app_get(app, "/hello", hello, NULL);
}

int main(int argc, char **argv)
{
	return forkd_main(argc, argv, init);
}
"""


class SingleBinaryTest(InstalledCase):
    def test_app_with_its_own_main(self):
        src = os.path.join(self.tmp, "single.c")
        exe = os.path.join(self.tmp, "single")
        with open(src, "w") as f:
            f.write(SINGLE)
        flags = run(["pkg-config", "--cflags", "--libs", "forkd"], env=self.env).split()
        run(["cc", "-Wall", "-Werror", "-o", exe, src] + flags)
        s = self.server("")
        s.env = dict(os.environ, LD_LIBRARY_PATH=self.libdir)
        s.bin = exe
        s.start()
        self.assertEqual(s.request("GET", "/hello")[::2], (200, b"one binary"))
        self.assertEqual(s.request("GET", "/health")[0], 200)


def readme_first_app():
    """The README's "Write your first app" section."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    return text.split("## Write your first app", 1)[1].split("\n## ", 1)[0]


class ReadmeTest(InstalledCase):
    def test_write_your_first_app_as_the_readme_says(self):
        """The README's "Write your first app" commands, pasted into a shell
        in an empty folder with the installed forkd first on PATH (only the
        port is changed, to a free one): the app answers, and after the
        rebuild and forkd -s reload the new text is served."""
        blocks = re.findall(r"```sh\n(.*?)```", readme_first_app(), re.S)
        self.assertEqual(len(blocks), 2, "expected the build block and the reload block")
        port = harness.free_port()
        script = "set -e\n" + "".join(blocks).replace("127.0.0.1:8081", "127.0.0.1:%d" % port)
        folder = tempfile.mkdtemp(dir=self.tmp)
        env = dict(self.env, PATH=os.path.join(PREFIX, "bin") + ":" + os.environ["PATH"])
        pidfile = os.path.join(folder, "hello", "forkd.pid")
        try:
            r = subprocess.run(["bash", "-c", script], cwd=folder, env=env, capture_output=True,
                               text=True, timeout=300)
        finally:
            # The script's last line stops forkd; if it did not get there, stop it.
            if not harness.wait_for(lambda: not os.path.exists(pidfile), 30):
                with open(pidfile) as f:
                    os.kill(int(f.read()), signal.SIGQUIT)
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-3000:])
        answers = [l for l in r.stdout.splitlines() if l.startswith(("Hello", "forkd:"))]
        self.assertEqual(len(answers), 3, r.stdout + r.stderr[-3000:])
        self.assertEqual(answers[0], "Hello from my app")
        self.assertRegex(answers[1], r"^forkd: reload complete: \d+ worker\(s\) run the new "
                                     r"configuration$")
        self.assertEqual(answers[2], "Hello again")

    def test_the_readmes_second_app(self):
        """The README's C block (middleware, a route group, the error
        handler, cookies, a form, a redirect), built against the installed
        forkd.h, answers as the README says, with curl's cookie jar too."""
        blocks = re.findall(r"```c\n(.*?)```", readme_first_app(), re.S)
        self.assertEqual(len(blocks), 1)
        src = os.path.join(self.tmp, "second.c")
        mod = os.path.join(self.tmp, "second.so")
        with open(src, "w") as f:
            f.write(blocks[0])
        flags = run(["pkg-config", "--cflags", "forkd"], env=self.env).split()
        run(["cc", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", "-o", mod, src] + flags)
        s = self.server(mod).start()
        form = {"Content-Type": "application/x-www-form-urlencoded"}

        status, head, body = s.request("POST", "/login", b"user=ada", form)
        self.assertEqual((status, head["location"]), (303, "/account/me"))
        self.assertEqual(head["set-cookie"], "user=ada; Path=/; HttpOnly")
        self.assertEqual(s.request("GET", "/account/me", headers={"Cookie": "user=ada"})[::2],
                         (200, b'{"user":"ada"}'))
        self.assertEqual(s.request("GET", "/account/me")[::2],
                         (401, b'{"error":"log in first"}'))
        for bad in (b"", b"user=", b"user=a%20b", b"user=%zz"):  # none, empty, a space, bad escape
            self.assertEqual(s.request("POST", "/login", bad, form)[::2],
                             (400, b'{"error":"a user name is needed"}'), bad)
        self.assertEqual(s.request("GET", "/nowhere")[0], 404)

        jar = os.path.join(self.tmp, "jar")
        out = run([harness.need_tool("curl", "curl"), "-sS", "-L", "-c", jar, "-b", jar,
                   "http://127.0.0.1:%d/login" % s.port, "-d", "user=ada"])
        self.assertEqual(out, '{"user":"ada"}')


if __name__ == "__main__":
    harness.main()

"""The documents written from the binary are current and real.

conf/forkd.conf, docs/configuration.md and the man pages are written by
scripts/gendocs from the binary's key table and --help: the committed files
must be what the binary under test writes. Every error message
docs/configuration.md quotes must be what the binary prints for the quoted
file, and the man pages must render without a warning.
"""
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

EXAMPLE = re.compile(r"```ini\n((?:(?!```).)*)```\n\n```console\n\$ forkd -t -c forkd\.conf\n"
                     r"((?:(?!```).)*)\n```", re.S)
INI = re.compile(r"```ini\n((?:(?!```).)*)```\n(?!\n```console)", re.S)


class Docs(unittest.TestCase):
    def test_generated_files_are_current(self):
        r = subprocess.run([sys.executable, os.path.join(harness.ROOT, "scripts", "gendocs"),
                            "--check", "--forkd", harness.BIN], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout[-5000:] + r.stderr)

    def test_quoted_errors_are_the_binarys(self):
        with open(os.path.join(harness.ROOT, "docs", "configuration.md")) as f:
            text = f.read()
        examples = EXAMPLE.findall(text)
        self.assertGreaterEqual(len(examples), 5)
        env = dict(os.environ)
        env.pop("REDIS_ADDR", None)
        for conf, message in examples:
            with self.subTest(conf=conf), tempfile.TemporaryDirectory() as d:
                with open(os.path.join(d, "forkd.conf"), "w") as f:
                    f.write(conf)
                r = subprocess.run([harness.BIN, "-t", "-c", "forkd.conf"], cwd=d, env=env,
                                   capture_output=True, text=True)
                self.assertEqual(r.returncode, 1)
                self.assertEqual((r.stdout + r.stderr).rstrip("\n"), message)

    def test_syntax_examples_are_accepted(self):
        with open(os.path.join(harness.ROOT, "docs", "configuration.md")) as f:
            blocks = INI.findall(f.read())
        self.assertTrue(blocks)
        env = dict(os.environ)
        env.pop("LISTEN", None)
        for conf in blocks:
            with self.subTest(conf=conf), tempfile.TemporaryDirectory() as d:
                with open(os.path.join(d, "forkd.conf"), "w") as f:
                    f.write(conf)
                r = subprocess.run([harness.BIN, "-T", "-c", "forkd.conf"], cwd=d, env=env,
                                   capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("user = www data\n", r.stdout)
                self.assertIn("listen = 127.0.0.1:8080\n", r.stdout)

    def test_man_pages_render_without_warnings(self):
        man = harness.need_tool("man", "man-db")
        groff = harness.need_tool("groff", "groff-base")
        for page in ("forkd.8", "forkd.conf.5"):
            path = os.path.join(harness.ROOT, "docs", "man", page)
            with self.subTest(page=page):
                r = subprocess.run([man, "--warnings", "-l", path], capture_output=True,
                                   text=True, env=dict(os.environ, MANWIDTH="80"))
                self.assertEqual((r.returncode, r.stderr), (0, ""))
                self.assertIn("forkd", r.stdout)
                r = subprocess.run([groff, "-man", "-ww", "-z", path], capture_output=True,
                                   text=True)
                self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_shipped_conf_checks(self):
        # with the example app of this build (the file names build-release's)
        args = ["--app", os.environ["FORKD_APP"]] if os.environ.get("FORKD_APP") else []
        r = subprocess.run([harness.BIN, "-t", "-c",
                            os.path.join(harness.ROOT, "conf", "forkd.conf")] + args,
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    harness.main()

#!/usr/bin/env python3
"""
The README's first command, scripts/demo.sh, as a newcomer runs it: it
starts, prints the ports and the users' passwords, and mail sent to the
printed SMTP port can be read back over the printed IMAPS port with the
printed password. Run with POSTERN_DEMO_DIR (a directory of its own, so a
demo someone runs in ./demo is left alone) and POSTERN_BUILDDIR (the build
under test, so nothing is rebuilt). Everything started is stopped by pid
(the script's process group).
"""

import imaplib
import os
import re
import shutil
import signal
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

SRC = os.environ.get("POSTERN_SRCDIR") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))


def setUpModule():
    H.require_binaries()


class Demo(unittest.TestCase):
    def setUp(self):
        # Reachable by the demo's system users when run as root: the
        # script would otherwise keep its mail in /var/spool/postern-demo.
        self.dir = tempfile.mkdtemp(prefix="postern-demo-")
        os.chmod(self.dir, 0o755)
        self.out_path = os.path.join(self.dir, "demo.out")
        env = dict(os.environ, POSTERN_DEMO_DIR=os.path.join(self.dir, "demo"),
                   POSTERN_BUILDDIR=H.BUILDDIR)
        self.out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(["bash", os.path.join(SRC, "scripts", "demo.sh")],
                                     stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        self.addCleanup(self.cleanup)

    def cleanup(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.out.close()
        if os.environ.get("POSTERN_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def output(self):
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def banner(self, timeout=300):
        """The printed ports and users, once the script printed them all."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.output()
            if "  stop:" in text:
                return text
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError("demo.sh did not print its banner (exit %s):\n%s"
                             % (self.proc.poll(), self.output()[-4000:]))

    def test_send_and_read(self):
        text = self.banner()
        smtp = int(re.search(r"SMTP: +127\.0\.0\.1:(\d+)", text).group(1))
        imaps = int(re.search(r"IMAPS: +127\.0\.0\.1:(\d+)", text).group(1))
        pw = re.search(r"user: +alice@example\.test +password: (\S+)", text).group(1)
        deadline = time.time() + 60
        while not H.port_accepts(smtp) or not H.port_accepts(imaps):
            if self.proc.poll() is not None or time.time() > deadline:
                self.fail("the demo's listeners did not come up:\n%s" % self.output()[-4000:])
            time.sleep(0.2)

        marker = "demo-%d" % os.getpid()
        msg = ("From: newcomer@client.example\r\nTo: alice@example.test\r\n"
               "Subject: %s\r\n\r\nhello from the README\r\n" % marker)
        with smtplib.SMTP("127.0.0.1", smtp, timeout=30) as s:
            self.assertEqual(s.sendmail("newcomer@client.example",
                                        ["alice@example.test"], msg), {})

        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE     # the demo's self-signed certificate
        found = None
        deadline = time.time() + 60
        while found is None and time.time() < deadline:
            with imaplib.IMAP4_SSL("127.0.0.1", imaps, ssl_context=ctx) as m:
                m.login("alice@example.test", pw)
                m.select("INBOX", readonly=True)
                typ, data = m.search(None, "SUBJECT", marker)
                self.assertEqual(typ, "OK")
                if data[0].split():
                    typ, body = m.fetch(data[0].split()[0], "(BODY.PEEK[])")
                    found = body[0][1]
            if found is None:
                time.sleep(0.5)
        self.assertIsNotNone(found, "not in alice's INBOX:\n%s" % self.output()[-4000:])
        self.assertIn(b"hello from the README", found)
        self.assertIn(b"Delivered-To: alice@example.test", found)
        self.assertIsNone(self.proc.poll(), "demo.sh exited:\n%s" % self.output()[-4000:])


if __name__ == "__main__":
    H.main()

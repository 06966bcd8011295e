#!/usr/bin/env python3
"""
ManageSieve end to end (RFC 5804): managesieve-login on a loopback port,
logins through auth, then the session in a managesieve worker running as
the mailbox owner.

Clients: sieve-connect (Debian's, the client Roundcube users script with)
for upload, list, download, activate, check, deactivate and delete over
STARTTLS; raw sockets for the protocol details (literals, SASL
continuations, response codes, bad names, quotas) and bad input. Asserted
is what a user would check: the script bytes in HOME/sieve/NAME.sieve, the
.dovecot.sieve link, the reply codes, the log lines, and that a script
activated here files the next delivery into its folder.
"""

import base64
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

ALICE = "alice@example.test"
PW = "alice sieve secret"

FILTER = (b'require ["fileinto", "mailbox"];\r\n'
          b'if header :contains "list-id" "lists.example" {\r\n'
          b'  fileinto :create "Lists";\r\n'
          b'}\r\n')


def setUpModule():
    H.require_binaries()
    for b in ("managesieve-login", "managesieve"):
        if not os.path.exists(os.path.join(H.BUILDDIR, b)):
            raise unittest.SkipTest("%s not built" % b)


def tls_ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


class Raw:
    """A ManageSieve client on a raw socket: lines and literals."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), 10)
        self.f = self.s.makefile("rb")

    def starttls(self):
        self.f.close()
        self.s = tls_ctx().wrap_socket(self.s)
        self.f = self.s.makefile("rb")

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def response(self):
        """Lines up to and including OK/NO/BYE; literals read whole."""
        out = []
        while True:
            ln = self.f.readline()
            if not ln:
                out.append(b"")
                return out
            m = re.search(rb"\{(\d+)\}\r\n$", ln)
            if m:
                ln += self.f.read(int(m.group(1)))
                ln += self.f.readline()
            out.append(ln)
            if re.match(rb"(OK|NO|BYE)\b", ln):
                return out

    def cmd(self, data):
        self.send(data)
        return self.response()

    def login(self):
        tok = base64.b64encode(b"\0" + ALICE.encode() + b"\0" + PW.encode())
        r = self.cmd(b'AUTHENTICATE "PLAIN" "' + tok + b'"\r\n')
        assert r[-1].startswith(b"OK"), r
        return r

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def lit(b):
    return b"{%d+}\r\n" % len(b) + b


class ManageSieve(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.port = H.free_port()
        services = [
            "127.0.0.1:%d inet n - n - - managesieve-login" % cls.port,
            "managesieve unix - n n - 1 managesieve",
        ]
        conf = {"local_sieve_max_script_size": "2000",
                "local_sieve_max_scripts": "3",
                "managesieve_hard_error_limit": "30"}
        inst = H.Instance(conf=conf, services=services)
        cls.inst = inst
        inst.make_cert("mx.example.test", level="may")
        inst.prepare()
        inst.add_user(ALICE, PW)
        inst.start(prepare=False)
        deadline = time.time() + 30
        while not H.port_accepts(cls.port):
            if time.time() > deadline:
                raise AssertionError("ManageSieve port not ready")
            time.sleep(0.2)
        cls.home = inst.vmaildir(ALICE).rstrip("/")

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()
        cls.inst.cleanup(keep=os.environ.get("POSTERN_KEEP") == "1")

    def setUp(self):
        # Each test starts with no scripts.
        shutil.rmtree(os.path.join(self.home, "sieve"), ignore_errors=True)
        try:
            os.unlink(os.path.join(self.home, ".dovecot.sieve"))
        except FileNotFoundError:
            pass

    def raw(self):
        c = Raw(self.port)
        greet = c.response()
        self.assertTrue(greet[-1].startswith(b"OK"), greet)
        return c

    def sieve_connect(self, *args, ok=True):
        if not shutil.which("sieve-connect"):
            self.skipTest("sieve-connect not installed")
        r, w = os.pipe()
        os.write(w, PW.encode() + b"\n")
        os.close(w)
        try:
            p = subprocess.run(
                ["sieve-connect", "--server", "127.0.0.1", "--port", str(self.port),
                 "--user", ALICE, "--passwordfd", str(r), "--notlsverify",
                 "--authmech", "PLAIN"] + list(args),
                pass_fds=(r,), capture_output=True, timeout=60,
                env=dict(os.environ, HOME=self.inst.dir))
        finally:
            os.close(r)
        out = (p.stdout + p.stderr).decode(errors="replace")
        if ok:
            self.assertEqual(p.returncode, 0, out)
        else:
            self.assertNotEqual(p.returncode, 0, out)
        return out

    # ----- sieve-connect ---------------------------------------------------

    def test_sieve_connect_lifecycle(self):
        src = self.inst.path("filter.sieve")
        with open(src, "wb") as f:
            f.write(FILTER)
        self.sieve_connect("--upload", "--localsieve", src, "--remotesieve", "lists")
        stored = os.path.join(self.home, "sieve", "lists.sieve")
        with open(stored, "rb") as f:
            self.assertEqual(f.read(), FILTER)
        self.assertEqual(os.stat(stored).st_mode & 0o777, 0o600)

        self.sieve_connect("--activate", "--remotesieve", "lists")
        link = os.path.join(self.home, ".dovecot.sieve")
        self.assertEqual(os.readlink(link), "sieve/lists.sieve")
        out = self.sieve_connect("--list")
        self.assertRegex(out, r"lists\s+<-\s+active|lists.*ACTIVE|lists\s*\*")

        back = self.inst.path("back.sieve")
        if os.path.exists(back):
            os.unlink(back)
        self.sieve_connect("--download", "--remotesieve", "lists", "--localsieve", back)
        with open(back, "rb") as f:
            self.assertEqual(f.read().replace(b"\r\n", b"\n"),
                             FILTER.replace(b"\r\n", b"\n"))

        # A broken script: refused by the same compiler local runs.
        bad = self.inst.path("bad.sieve")
        with open(bad, "wb") as f:
            f.write(b'require "fileinto";\nif true {\n  fileinto\n}\n')
        out = self.sieve_connect("--upload", "--localsieve", bad,
                                 "--remotesieve", "bad", ok=False)
        self.assertIn("line", out)
        self.assertFalse(os.path.exists(os.path.join(self.home, "sieve", "bad.sieve")))

        self.sieve_connect("--deactivate")
        self.assertFalse(os.path.lexists(link))
        self.sieve_connect("--delete", "--remotesieve", "lists")
        self.assertFalse(os.path.exists(stored))
        self.inst.wait_log(r"managesieve-login\[\d+\]: Login: user=<%s>, method=PLAIN, "
                           r"rip=127\.0\.0\.1, .*TLS" % re.escape(ALICE))

    def test_activated_script_files_delivery(self):
        """What ManageSieve activates is what local runs at delivery."""
        c = self.raw()
        c.login()
        self.assertTrue(c.cmd(b'PUTSCRIPT "lists" ' + lit(FILTER) + b"\r\n")[-1]
                        .startswith(b"OK"))
        self.assertTrue(c.cmd(b'SETACTIVE "lists"\r\n')[-1].startswith(b"OK"))
        c.cmd(b"LOGOUT\r\n")
        c.close()
        with smtplib.SMTP("127.0.0.1", self.inst.port, timeout=30) as s:
            s.sendmail("news@lists.example", [ALICE],
                       b"Subject: digest\r\nList-Id: <news.lists.example>\r\n\r\nhello\r\n")
        folder = os.path.join(self.home, ".Lists", "new")
        deadline = time.time() + 30
        while not (os.path.isdir(folder) and os.listdir(folder)):
            if time.time() > deadline:
                self.fail("the message did not reach the Lists folder:\n"
                          + self.inst.log()[-3000:])
            time.sleep(0.2)

    # ----- the protocol on a raw socket -----------------------------------

    def test_greeting_and_starttls(self):
        c = Raw(self.port)
        greet = b"".join(c.response())
        self.assertIn(b'"IMPLEMENTATION" "Postern"', greet)
        self.assertIn(b'"SIEVE" "fileinto', greet)
        self.assertIn(b'"STARTTLS"', greet)
        self.assertIn(b'"SASL" "PLAIN LOGIN"', greet)   # loopback
        # Bytes pipelined after STARTTLS are dropped, not run after TLS.
        r = c.cmd(b"STARTTLS\r\nLOGOUT\r\n")
        self.assertTrue(r[-1].startswith(b"OK"), r)
        c.starttls()
        # RFC 5804 2.2: the capabilities again, then OK; no STARTTLS now.
        caps = b"".join(c.response())
        self.assertIn(b'"IMPLEMENTATION"', caps)
        self.assertNotIn(b'"STARTTLS"', caps)
        c.login()
        r = c.cmd(b"CAPABILITY\r\n")
        self.assertNotIn(b'"SASL"', b"".join(r))
        self.assertTrue(r[-1].startswith(b"OK"))
        c.close()

    def test_commands_and_codes(self):
        c = self.raw()
        # Before login: nothing but login-state commands.
        self.assertTrue(c.cmd(b"LISTSCRIPTS\r\n")[-1].startswith(b"NO"))
        c.login()
        r = c.cmd(b"LISTSCRIPTS\r\n")
        self.assertEqual(r, [b'OK "Listscripts completed."\r\n'])
        # {n+} and {n} literals both carry the script.
        self.assertTrue(c.cmd(b'PUTSCRIPT "a" ' + lit(b"keep;\r\n") + b"\r\n")[-1]
                        .startswith(b"OK"))
        self.assertTrue(c.cmd(b'PUTSCRIPT "b" {8}\r\ndiscard;\r\n')[-1]
                        .startswith(b"OK"))
        self.assertTrue(c.cmd(b'SETACTIVE "a"\r\n')[-1].startswith(b"OK"))
        r = c.cmd(b"LISTSCRIPTS\r\n")
        self.assertEqual(r, [b'"a" ACTIVE\r\n', b'"b"\r\n',
                             b'OK "Listscripts completed."\r\n'])
        r = c.cmd(b'GETSCRIPT "a"\r\n')
        self.assertEqual(r[0], b"{7}\r\nkeep;\r\n\r\n")
        self.assertTrue(r[-1].startswith(b"OK"))
        self.assertTrue(c.cmd(b'GETSCRIPT "zz"\r\n')[-1].startswith(b"NO (NONEXISTENT)"))
        self.assertTrue(c.cmd(b'DELETESCRIPT "a"\r\n')[-1].startswith(b"NO (ACTIVE)"))
        self.assertTrue(c.cmd(b'RENAMESCRIPT "b" "a"\r\n')[-1]
                        .startswith(b"NO (ALREADYEXISTS)"))
        self.assertTrue(c.cmd(b'RENAMESCRIPT "a" "c"\r\n')[-1].startswith(b"OK"))
        self.assertEqual(os.readlink(os.path.join(self.home, ".dovecot.sieve")),
                         "sieve/c.sieve")
        # Names that would leave the directory never reach a path.
        for name in (b"../x", b".hidden", b"a/b"):
            r = c.cmd(b'PUTSCRIPT "' + name + b'" ' + lit(b"keep;") + b"\r\n")
            self.assertTrue(r[-1].startswith(b"NO"), (name, r))
        self.assertEqual(sorted(os.listdir(os.path.join(self.home, "sieve"))),
                         ["b.sieve", "c.sieve"])
        # Quotas (2000 bytes, 3 scripts).
        self.assertTrue(c.cmd(b'HAVESPACE "d" 2001\r\n')[-1]
                        .startswith(b"NO (QUOTA/MAXSIZE)"))
        self.assertTrue(c.cmd(b'HAVESPACE "d" 100\r\n')[-1].startswith(b"OK"))
        self.assertTrue(c.cmd(b'PUTSCRIPT "d" ' + lit(b"keep;") + b"\r\n")[-1]
                        .startswith(b"OK"))
        self.assertTrue(c.cmd(b'PUTSCRIPT "e" ' + lit(b"keep;") + b"\r\n")[-1]
                        .startswith(b"NO (QUOTA/MAXSCRIPTS)"))
        big = b"# " + b"x" * 2100 + b"\r\nkeep;\r\n"
        self.assertTrue(c.cmd(b'PUTSCRIPT "d" ' + lit(big) + b"\r\n")[-1]
                        .startswith(b"NO (QUOTA/MAXSIZE)"))
        # CHECKSCRIPT: errors carry the line.
        r = c.cmd(b"CHECKSCRIPT " + lit(b"keep;\r\nfrobnicate;\r\n") + b"\r\n")
        self.assertTrue(r[-1].startswith(b'NO "line 2'), r)
        self.assertTrue(c.cmd(b"CHECKSCRIPT " + lit(b"keep;") + b"\r\n")[-1]
                        .startswith(b"OK"))
        self.assertEqual(c.cmd(b'NOOP "t1"\r\n'), [b'OK (TAG "t1") "Done"\r\n'])
        # Garbage gets NO and the session goes on.
        self.assertTrue(c.cmd(b'"unterminated\r\n')[-1].startswith(b"NO"))
        self.assertTrue(c.cmd(b"FROB\r\n")[-1].startswith(b"NO"))
        self.assertTrue(c.cmd(b"LOGOUT\r\n")[-1].startswith(b"OK"))
        self.assertEqual(c.response(), [b""])      # closed
        c.close()
        self.inst.wait_log(r"managesieve\[\d+\]: Disconnected: Logged out put=\d+")

    def test_error_limit_counts_invalid_commands_only(self):
        # A Sieve editor checks the script as its user types: CHECKSCRIPT
        # after failing CHECKSCRIPT, names not found, is normal use. Only
        # commands not understood count towards the limit (30 here).
        c = self.raw()
        c.login()
        for i in range(35):
            r = c.cmd(b"CHECKSCRIPT " + lit(b"frobnicate %d;" % i) + b"\r\n")
            self.assertTrue(r[-1].startswith(b'NO "line 1'), r)
            self.assertTrue(c.cmd(b'GETSCRIPT "none"\r\n')[-1]
                            .startswith(b"NO (NONEXISTENT)"))
        self.assertTrue(c.cmd(b"LISTSCRIPTS\r\n")[-1].startswith(b"OK"))
        for i in range(29):
            self.assertEqual(c.cmd(b"FROB\r\n"), [b'NO "Unknown command."\r\n'])
        r = c.cmd(b"FROB\r\n")
        self.assertEqual(r, [b'NO "Unknown command."\r\n'])
        self.assertEqual(c.response(), [b'BYE "Too many invalid commands."\r\n'])
        c.close()

    def test_sasl_login_continuations(self):
        c = self.raw()
        # A challenge is a string on a line of its own (no OK yet).
        c.send(b'AUTHENTICATE "LOGIN"\r\n')
        ch = c.f.readline()
        self.assertEqual(base64.b64decode(ch.strip(b'"\r\n')), b"Username:")
        # One answer quoted, one as a literal (both are strings).
        c.send(b'"' + base64.b64encode(ALICE.encode()) + b'"\r\n')
        ch = c.f.readline()
        self.assertEqual(base64.b64decode(ch.strip(b'"\r\n')), b"Password:")
        pw = base64.b64encode(PW.encode())
        r = c.cmd(b"{%d+}\r\n" % len(pw) + pw + b"\r\n")
        self.assertTrue(r[-1].startswith(b"OK"), r)
        c.close()

    def test_failed_login_logged(self):
        c = self.raw()
        tok = base64.b64encode(b"\0" + ALICE.encode() + b"\0wrong")
        r = c.cmd(b'AUTHENTICATE "PLAIN" "' + tok + b'"\r\n')
        self.assertTrue(r[-1].startswith(b"NO"), r)
        c.close()
        self.inst.wait_log(r"managesieve-login\[\d+\]: Login failed: user=<%s>, "
                           r"method=PLAIN, rip=127\.0\.0\.1" % re.escape(ALICE))


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""
POP3 end to end: pop3-login (110 with STLS, 995 implicit TLS, a third
listener with pop3d_plaintext_auth=no), logins through the auth daemon,
then the session in a pop3d worker running as the mailbox owner.

Clients: Python poplib (plain, STLS, POP3_SSL), curl pop3:// and pop3s://,
fetchmail (keep and no-keep, with and without TLS), and raw sockets for
bad input and the STLS injection probe. What is asserted is what a user
would check: the bytes fetched equal the bytes delivered (Maildir file
with CRLF line ends), sizes in LIST equal what RETR sends, UIDLs are the
same in the next session, DELE only counts at QUIT, files gone from the
Maildir, and the log lines Login:, Login failed: and Disconnected:.

The tests that need a logged-in session skip when the pop3d program is
not built (it needs lib/store/index.c).
"""

import os
import poplib
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

ALICE = "alice@example.test"
VMAIL_USER = "ptvmail"
PW = "alice pop secret"


def setUpModule():
    H.require_binaries()
    if not os.path.exists(os.path.join(H.BUILDDIR, "pop3-login")):
        raise unittest.SkipTest("pop3-login not built")


def have_pop3d():
    return os.path.exists(os.path.join(H.BUILDDIR, "pop3d"))


def tls_ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


class Raw:
    """A line-oriented POP3 client on a raw socket (for bad input)."""

    def __init__(self, port, tls=False):
        s = socket.create_connection(("127.0.0.1", port), 10)
        if tls:
            s = tls_ctx().wrap_socket(s)
        self.s = s
        self.f = s.makefile("rb")

    def line(self):
        return self.f.readline().decode("utf-8", "replace").rstrip("\r\n")

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        return self.line()

    def multi(self):
        out = []
        while True:
            ln = self.line()
            if ln == ".":
                return out
            out.append(ln)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class Pop3(unittest.TestCase):
    privileged = False
    mbox = False        # system users' INBOX: the mbox spool, not ~/Maildir

    @classmethod
    def setUpClass(cls):
        cls.p110 = H.free_port()
        cls.p995 = H.free_port()
        cls.pnoplain = H.free_port()
        services = [
            "127.0.0.1:%d inet n - n - - pop3-login" % cls.p110,
            "127.0.0.1:%d inet n - n - - pop3-login -o pop3d_tls_wrappermode=yes"
            % cls.p995,
            "127.0.0.1:%d inet n - n - - pop3-login -o pop3d_plaintext_auth=no"
            % cls.pnoplain,
        ]
        if have_pop3d():
            services.append("pop3d unix - n n - 1 pop3d")
        conf = {"pop3d_hard_error_limit": "20"}
        if cls.privileged and not cls.mbox:
            conf["home_mailbox"] = "Maildir/"
        if cls.privileged:
            # Virtual mail owned by a user of its own: the worker must run
            # as that uid, pop3-login as login_user, neither as root.
            H.ensure_system_user(VMAIL_USER)
            vuid, vgid = H.user_ids(VMAIL_USER)
            conf.update({"virtual_uid_maps": "static:%d" % vuid,
                         "virtual_gid_maps": "static:%d" % vgid,
                         "virtual_minimum_uid": "1"})
        inst = H.Instance(conf=conf, services=services, privileged=cls.privileged)
        if cls.privileged:
            inst.vuid, inst.vgid = vuid, vgid
        cls.inst = inst
        inst.make_cert("mx.example.test", level="may")
        inst.prepare()
        inst.add_user(ALICE, PW)
        inst.start(prepare=False)
        for p in (cls.p110, cls.p995, cls.pnoplain):
            deadline = time.time() + 30
            while not H.port_accepts(p):
                if time.time() > deadline:
                    raise AssertionError("POP3 port %d not ready" % p)
                time.sleep(0.2)

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()
        cls.inst.cleanup(keep=os.environ.get("POSTERN_KEEP") == "1")

    # ----- helpers ---------------------------------------------------------

    def deliver(self, n, tag):
        """n messages to alice over SMTP; wait until they are in the
        Maildir. Returns the Maildir file contents added."""
        md = self.inst.vmaildir(ALICE)
        before = set(self.files(md))
        with smtplib.SMTP("127.0.0.1", self.inst.port, timeout=30) as s:
            for i in range(n):
                body = ("Subject: %s %d\r\n\r\nline one of %s %d\r\n"
                        ".dotted line\r\n..two dots\r\n.\r\nlast\r\n" % (tag, i, tag, i))
                s.sendmail("sender@example.test", [ALICE], body)
        deadline = time.time() + 30
        while True:
            now = set(self.files(md))
            if len(now - before) >= n:
                return [open(p, "rb").read() for p in sorted(now - before)]
            if time.time() > deadline:
                raise AssertionError("delivery of %d messages timed out\n%s"
                                     % (n, self.inst.log()[-3000:]))
            time.sleep(0.2)

    @staticmethod
    def files(md):
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(md, sub)
            if os.path.isdir(d):
                out += [os.path.join(d, f) for f in os.listdir(d)]
        return out

    @staticmethod
    def crlf(b):
        b = b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if not b.endswith(b"\r\n"):
            b += b"\r\n"
        return b

    def login(self, kind="plain"):
        if kind == "ssl":
            c = poplib.POP3_SSL("127.0.0.1", self.p995, context=tls_ctx(), timeout=30)
        else:
            c = poplib.POP3("127.0.0.1", self.p110, timeout=30)
            if kind == "stls":
                c.stls(context=tls_ctx())
        c.user(ALICE)
        c.pass_(PW)
        return c

    def need_pop3d(self):
        if not have_pop3d():
            self.skipTest("pop3d not built (needs lib/store/index.c)")

    def delete_all(self):
        c = self.login()
        n, _ = c.stat()
        for i in range(1, n + 1):
            c.dele(i)
        c.quit()

    # ----- pre-login: no pop3d needed --------------------------------------

    def test_capa_before_login(self):
        c = poplib.POP3("127.0.0.1", self.p110, timeout=30)
        caps = c.capa()
        for k in ("TOP", "UIDL", "RESP-CODES", "PIPELINING", "AUTH-RESP-CODE",
                  "USER", "STLS", "UTF8"):
            self.assertIn(k, caps)
        self.assertEqual(caps["SASL"], ["PLAIN", "LOGIN"])
        c.quit()

    def test_failed_login_logged_for_fail2ban(self):
        c = poplib.POP3("127.0.0.1", self.p110, timeout=30)
        c.user(ALICE)
        with self.assertRaises(poplib.error_proto) as e:
            c.pass_("wrong password")
        self.assertIn(b"[AUTH]", e.exception.args[0])
        # The session goes on after a failed login.
        self.assertIn("USER", c.capa())
        c.quit()
        self.inst.wait_log(r"postern/pop3-login\[\d+\]: Login failed: user=<%s>, "
                           r"method=PLAIN, rip=127\.0\.0\.1, " % re.escape(ALICE))

    def test_bad_input(self):
        r = Raw(self.p110)
        self.assertTrue(r.line().startswith("+OK"))
        self.assertTrue(r.cmd("STAT").startswith("-ERR"))          # wrong state
        self.assertTrue(r.cmd("XYZZY").startswith("-ERR"))         # unknown
        self.assertTrue(r.cmd("A" * 5000).startswith("-ERR"))      # too long
        self.assertTrue(r.cmd("USER").startswith("-ERR"))          # no argument
        self.assertTrue(r.cmd("PASS x").startswith("-ERR"))        # no USER
        self.assertTrue(r.cmd("AUTH PLAIN !!!notbase64").startswith("-ERR"))
        self.assertTrue(r.cmd("AUTH PLAIN").startswith("+ "))
        self.assertTrue(r.cmd("%%%%").startswith("-ERR"))          # garbage base64
        self.assertTrue(r.cmd("AUTH FOO").startswith("-ERR"))
        self.assertTrue(r.cmd("APOP a b").startswith("-ERR"))
        self.assertTrue(r.cmd("CAPA").startswith("+OK"))
        r.multi()
        self.assertTrue(r.cmd("QUIT").startswith("+OK"))
        r.close()

    def test_too_many_errors_end_session(self):
        r = Raw(self.p110)
        r.line()
        replies = [r.cmd("BOGUS") for _ in range(20)]
        self.assertTrue(all(x.startswith("-ERR") for x in replies))
        self.assertEqual(r.line(), "-ERR Too many bad commands.")
        self.assertEqual(r.line(), "")   # closed
        r.close()

    def test_plaintext_refused_until_tls(self):
        c = poplib.POP3("127.0.0.1", self.pnoplain, timeout=30)
        self.assertNotIn("USER", c.capa())
        with self.assertRaises(poplib.error_proto) as e:
            c.user(ALICE)
        self.assertIn(b"Plaintext authentication disallowed", e.exception.args[0])
        c.stls(context=tls_ctx())
        self.assertIn("USER", c.capa())
        c.user(ALICE)
        with self.assertRaises(poplib.error_proto) as e:
            c.pass_("wrong")
        self.assertIn(b"[AUTH] Authentication failed", e.exception.args[0])
        c.quit()

    def test_stls_discards_pipelined(self):
        s = socket.create_connection(("127.0.0.1", self.p110), 10)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"STLS\r\nCAPA\r\n")
        self.assertTrue(f.readline().startswith(b"+OK"))
        t = tls_ctx().wrap_socket(s)
        tf = t.makefile("rb")
        t.sendall(b"NOOP\r\n")
        # NOOP is not valid before login: its -ERR is the first line over
        # TLS; a CAPA answer (from the plaintext injection) would come first.
        self.assertTrue(tf.readline().startswith(b"-ERR"))
        t.close()
        self.inst.wait_log(r"discarding 6 bytes pipelined after STLS")

    # ----- logged in ---------------------------------------------------------

    def retr_all(self, c):
        n, size = c.stat()
        got = []
        for i in range(1, n + 1):
            resp, lines, octets = c.retr(i)
            got.append(b"".join(ln + b"\r\n" for ln in lines))
        return got

    def test_retr_bytes_sizes_uidl(self):
        self.need_pop3d()
        self.delete_all()
        files = self.deliver(3, "bytes")
        c = self.login()
        n, total = c.stat()
        self.assertEqual(n, 3)
        want = [self.crlf(b) for b in files]
        sizes = [int(x.split()[1]) for x in c.list()[1]]
        self.assertEqual(sizes, [len(w) for w in want])
        self.assertEqual(total, sum(sizes))
        got = self.retr_all(c)
        self.assertEqual(sorted(got), sorted(want))
        uidls = c.uidl()[1]
        top = c.top(1, 0)[1]
        self.assertIn(b"", top)
        c.quit()
        c = self.login("stls")
        self.assertEqual(c.uidl()[1], uidls)
        c.quit()
        self.inst.wait_log(r"postern/pop3-login\[\d+\]: Login: user=<%s>, "
                           r"method=PLAIN, rip=127\.0\.0\.1, lip=127\.0\.0\.1, TLS"
                           % re.escape(ALICE))
        self.inst.wait_log(r"postern/pop3d\[\d+\]: Disconnected: Logged out "
                           r"top=1/0, retr=3/%d, del=0/3, size=%d"
                           % (sum(sizes), sum(sizes)))

    def test_retr_larger_than_output_buffer(self):
        """A message many times pop3d's output high-water mark comes whole,
        in plain text and under TLS: a reader fast enough to take each
        chunk at once must not be left waiting for the rest."""
        self.need_pop3d()
        self.delete_all()
        body = "".join("line %06d of a big message, long enough......\r\n" % i
                       for i in range(40000))
        msg = "Subject: big\r\n\r\n" + body
        with smtplib.SMTP("127.0.0.1", self.inst.port, timeout=30) as s:
            s.sendmail("sender@example.test", [ALICE], msg)
        md = self.inst.vmaildir(ALICE)
        deadline = time.time() + 30
        while not self.files(md):
            self.assertLess(time.time(), deadline, "big message not delivered")
            time.sleep(0.2)
        with open(self.files(md)[0], "rb") as f:
            want = self.crlf(f.read())
        self.assertGreater(len(want), 1900000)
        for kind in ("plain", "stls"):
            c = self.login(kind)
            self.assertEqual(self.retr_all(c), [want], kind)
            c.quit()

    def test_dele_only_at_quit(self):
        self.need_pop3d()
        self.delete_all()
        self.deliver(2, "dele")
        md = self.inst.vmaildir(ALICE)
        c = self.login("ssl")
        c.dele(1)
        with self.assertRaises(poplib.error_proto):
            c.retr(1)
        c.rset()
        c.dele(2)
        c.sock.close()       # dropped: nothing deleted
        time.sleep(0.5)
        self.assertEqual(len(self.files(md)), 2)
        c = self.login()
        c.dele(1)
        c.dele(2)
        c.quit()
        self.assertEqual(len(self.files(md)), 0)

    def test_delivery_during_session_and_concurrent_delete(self):
        self.need_pop3d()
        self.delete_all()
        self.deliver(2, "before")
        a = self.login()
        self.assertEqual(a.stat()[0], 2)
        uid_a = a.uidl()[1]
        self.deliver(1, "during")
        self.assertEqual(a.stat()[0], 2)     # the snapshot does not grow
        b = self.login()
        self.assertEqual(b.stat()[0], 3)
        uid_b = b.uidl()[1]
        b.dele(1)
        b.quit()                              # deletes message 1
        # a still lists 2; the one b deleted answers -ERR, the other is whole.
        ok = errs = 0
        for i in (1, 2):
            try:
                a.retr(i)
                ok += 1
            except poplib.error_proto as e:
                self.assertIn(b"deleted", e.args[0])
                errs += 1
        self.assertEqual((ok, errs), (1, 1))
        a.quit()
        c = self.login()
        uids = [x.split()[1] for x in c.uidl()[1]]
        self.assertEqual(len(uids), len(set(uids)))
        self.assertEqual(len(uids), 2)
        self.assertEqual(set(x.split()[1] for x in uid_a) - set(uids),
                         {uid_b[0].split()[1]})
        c.quit()

    def test_curl(self):
        self.need_pop3d()
        if shutil.which("curl") is None:
            self.skipTest("curl not installed")
        self.delete_all()
        files = self.deliver(1, "curl")
        for url in ("pop3://127.0.0.1:%d/1" % self.p110,
                    "pop3s://127.0.0.1:%d/1" % self.p995):
            r = subprocess.run(["curl", "-s", "-k", "--user", "%s:%s" % (ALICE, PW),
                                url], capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, self.crlf(files[0]))

    def fetchmail(self, tls, keep):
        if shutil.which("fetchmail") is None:
            self.skipTest("fetchmail not installed")
        out = self.inst.path("fetched-%d-%d" % (tls, keep))
        rc = self.inst.path("fetchmailrc-%d-%d" % (tls, keep))
        with open(rc, "w") as f:
            f.write("poll 127.0.0.1 protocol pop3 port %d\n"
                    "  user \"%s\" password \"%s\" is x here\n"
                    "  %s %s\n  mda \"/bin/sh -c 'cat >> %s'\"\n"
                    % (self.p995 if tls else self.p110, ALICE, PW,
                       "ssl no sslcertck" if tls else "sslproto ''",
                       "keep" if keep else "nokeep", out))
        os.chmod(rc, 0o600)
        env = dict(os.environ, HOME=self.inst.dir)
        r = subprocess.run(["fetchmail", "-f", rc, "--nosyslog", "-N", "-a"],
                           capture_output=True, timeout=120, env=env)
        self.assertIn(r.returncode, (0, 1), r.stderr)
        return open(out, "rb").read() if os.path.exists(out) else b""

    def test_fetchmail(self):
        self.need_pop3d()
        md = self.inst.vmaildir(ALICE)
        for tls in (0, 1):
            self.delete_all()
            files = self.deliver(2, "fm%d" % tls)
            got = self.fetchmail(tls, keep=1)
            mark = b"Received: from [127.0.0.1] (localhost"
            for body in files:
                # fetchmail adds its own Received: line above ours; from
                # ours on, the message is byte for byte what was delivered.
                self.assertIn(mark + body.split(mark, 1)[1].replace(b"\r\n", b"\n"),
                              got.replace(b"\r\n", b"\n"))
            self.assertEqual(len(self.files(md)), 2)
            self.fetchmail(tls, keep=0)
            self.assertEqual(len(self.files(md)), 0)


class Pop3Privileged(Pop3):
    """The same as root: master keeps root, pop3-login drops to
    mail_owner, the broker keeps root, the worker runs as the mailbox
    owner."""
    privileged = True

    def test_process_owners(self):
        self.need_pop3d()
        c = self.login("stls")
        c.stat()
        table = H.proc_table()
        kids = H.descendants(self.inst.master_pid(), table)
        users = {}
        for pid in kids:
            comm = table[pid][1]
            users.setdefault(comm, set()).add(H.proc_user(pid))
        c.quit()
        self.assertEqual(users.get("pop3-login"), {H.LOGIN_USER})
        # the broker (root, reads no client byte) and one worker
        self.assertEqual(users.get("pop3d"), {"root", VMAIL_USER})

    def test_system_user_pam(self):
        """A system user logs in with the system password (PAM, through
        auth's root helper) and gets the Maildir under its home, served
        by a worker running as that user."""
        self.need_pop3d()
        name = "ptpopuser"
        home = self.inst.add_system_user(name)
        self.addCleanup(self.inst.remove_system_users)
        pw = "Sys-pw-4-pop"
        subprocess.run(["chpasswd"], input="%s:%s\n" % (name, pw), text=True,
                       check=True)
        with smtplib.SMTP("127.0.0.1", self.inst.port, timeout=30) as s:
            s.sendmail("sender@example.test", ["%s@localhost" % name],
                       "Subject: for a system user\r\n\r\nhello system\r\n")
        md = os.path.join(home, "Maildir")
        deadline = time.time() + 30
        while not self.files(md):
            self.assertLess(time.time(), deadline, self.inst.log()[-2000:])
            time.sleep(0.2)
        want = self.crlf(open(self.files(md)[0], "rb").read())
        c = poplib.POP3("127.0.0.1", self.p110, timeout=30)
        c.user(name)
        with self.assertRaises(poplib.error_proto):
            c.pass_("wrong")
        c.user(name)
        c.pass_(pw)
        table = H.proc_table()
        owners = {H.proc_user(p) for p in H.descendants(self.inst.master_pid(), table)
                  if table[p][1] == "pop3d"}
        self.assertIn(name, owners)
        _, lines, _ = c.retr(1)
        self.assertEqual(b"".join(x + b"\r\n" for x in lines), want)
        c.dele(1)
        c.quit()
        self.assertEqual(self.files(md), [])


class Pop3Mbox(Pop3Privileged):
    """As root, system users with their INBOX in the mbox spool."""
    mbox = True

    def test_system_user_pam(self):
        self.need_pop3d()
        name = "ptpopmbox"
        self.inst.add_system_user(name)
        self.addCleanup(self.inst.remove_system_users)
        pw = "Mbox-pw-4-pop"
        subprocess.run(["chpasswd"], input="%s:%s\n" % (name, pw), text=True,
                       check=True)
        with smtplib.SMTP("127.0.0.1", self.inst.port, timeout=30) as s:
            for i in range(2):
                s.sendmail("sender@example.test", ["%s@localhost" % name],
                           "Subject: mbox %d\r\n\r\nFrom here on\r\n.dot\r\n" % i)
        spool = os.path.join(self.inst.params.get("mail_spool_directory",
                                                  self.inst.path("spool")), name)
        deadline = time.time() + 30
        while not (os.path.exists(spool) and
                   open(spool, "rb").read().count(b"\nFrom ") >= 1):
            self.assertLess(time.time(), deadline, self.inst.log()[-2000:])
            time.sleep(0.2)
        c = poplib.POP3("127.0.0.1", self.p110, timeout=30)
        c.user(name)
        c.pass_(pw)
        self.assertEqual(c.stat()[0], 2)
        uidls = c.uidl()[1]
        sizes = [int(x.split()[1]) for x in c.list()[1]]
        _, lines, _ = c.retr(1)
        body = b"".join(x + b"\r\n" for x in lines)
        self.assertEqual(len(body), sizes[0])
        self.assertIn(b"\r\nFrom here on\r\n.dot\r\n", body)
        c.dele(1)
        c.quit()
        c = poplib.POP3("127.0.0.1", self.p110, timeout=30)
        c.user(name)
        c.pass_(pw)
        self.assertEqual(c.uidl()[1], [b"1 " + uidls[1].split()[1]])
        c.quit()


if __name__ == "__main__":
    unittest.main(verbosity=2)

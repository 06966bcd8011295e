#!/usr/bin/env python3
"""
IMAP end to end: imap-login (143 with STARTTLS, 993 implicit TLS, a third
listener with imapd_plaintext_auth=no), logins through the auth daemon,
then the session in an imapd worker running as the mailbox owner.

Clients: Python imaplib (plain, STARTTLS, IMAP4_SSL), curl imap://, and
raw sockets for bad input and the STARTTLS injection probe. Asserted is
what a user would check: FETCH BODY[] is byte-identical to the delivered
Maildir file in CRLF form, a flag stored in one session shows in another,
APPEND then FETCH gives the same bytes, COPY/MOVE land in the target
folder, an EXPUNGE and a new delivery reach another (idling) session, bad
mailbox names get NO, garbage gets BAD, and the log lines Login: and
Login failed:.

Tests that need a logged-in session skip when imapd is not built (it
needs the FETCH/SEARCH/LIST modules of lib/proto).
"""

import imaplib
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
PW = "alice imap secret"


def setUpModule():
    H.require_binaries()
    if not os.path.exists(os.path.join(H.BUILDDIR, "imap-login")):
        raise unittest.SkipTest("imap-login not built")


def have_imapd():
    return os.path.exists(os.path.join(H.BUILDDIR, "imapd"))


def tls_ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def crlf(b):
    b = b.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return b


class Raw:
    """A line-oriented IMAP client on a raw socket (for bad input)."""

    def __init__(self, port, tls=False):
        s = socket.create_connection(("127.0.0.1", port), 10)
        if tls:
            s = tls_ctx().wrap_socket(s)
        self.s = s
        self.f = s.makefile("rb")

    def line(self):
        return self.f.readline().decode("utf-8", "replace").rstrip("\r\n")

    def send(self, text):
        self.s.sendall(text.encode() + b"\r\n")

    def until_tag(self, tag):
        out = []
        while True:
            ln = self.line()
            out.append(ln)
            if ln.startswith(tag + " ") or ln == "":
                return out

    def cmd(self, tag, text):
        self.send("%s %s" % (tag, text))
        return self.until_tag(tag)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class Imap(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.p143 = H.free_port()
        cls.p993 = H.free_port()
        cls.pnoplain = H.free_port()
        services = [
            "127.0.0.1:%d inet n - n - - imap-login" % cls.p143,
            "127.0.0.1:%d inet n - n - - imap-login -o imapd_tls_wrappermode=yes"
            % cls.p993,
            "127.0.0.1:%d inet n - n - - imap-login -o imapd_plaintext_auth=no"
            % cls.pnoplain,
        ]
        if have_imapd():
            services.append("imapd unix - n n - 1 imapd")
        conf = {"imapd_hard_error_limit": "20",
                "imapd_client_connection_limit": "6",
                # 3 MB for alice: QUOTA and [OVERQUOTA]
                "virtual_mailbox_limit_maps": "static:3000000"}
        inst = H.Instance(conf=conf, services=services)
        cls.inst = inst
        inst.make_cert("mx.example.test", level="may")
        inst.prepare()
        inst.add_user(ALICE, PW)
        inst.start(prepare=False)
        for p in (cls.p143, cls.p993, cls.pnoplain):
            deadline = time.time() + 30
            while not H.port_accepts(p):
                if time.time() > deadline:
                    raise AssertionError("IMAP port %d not ready" % p)
                time.sleep(0.2)

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()
        cls.inst.cleanup(keep=os.environ.get("POSTERN_KEEP") == "1")

    # ----- helpers ---------------------------------------------------------

    def need_imapd(self):
        if not have_imapd():
            self.skipTest("imapd not built")

    def login(self, kind="plain"):
        if kind == "ssl":
            c = imaplib.IMAP4_SSL("127.0.0.1", self.p993, ssl_context=tls_ctx(),
                                  timeout=30)
        else:
            c = imaplib.IMAP4("127.0.0.1", self.p143, timeout=30)
            if kind == "starttls":
                c.starttls(ssl_context=tls_ctx())
        c.login(ALICE, PW)
        return c

    def clear_inbox(self):
        """alice's INBOX emptied, from a session of its own."""
        c = self.login()
        self.empty_inbox(c)
        c.logout()

    def raw_login(self):
        """A Raw session past the greeting and LOGIN as alice; the LOGIN
        reply with it."""
        r = Raw(self.p143)
        r.line()
        return r, r.cmd("a", 'LOGIN "%s" "%s"' % (ALICE, PW))

    def raw_with_mail(self, n, tag):
        """alice's INBOX emptied, n messages delivered to it, and a Raw
        session logged in as alice."""
        self.need_imapd()
        self.clear_inbox()
        self.deliver(n, tag)
        return self.raw_login()[0]

    @staticmethod
    def files(md):
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(md, sub)
            if os.path.isdir(d):
                out += [os.path.join(d, f) for f in os.listdir(d)]
        return out

    def deliver(self, n, tag):
        """n messages to alice over SMTP; returns the new Maildir files'
        contents, in delivery order."""
        md = self.inst.vmaildir(ALICE)
        before = set(self.files(md))
        with smtplib.SMTP("127.0.0.1", self.inst.port, timeout=30) as s:
            for i in range(n):
                body = ("Subject: %s %d\r\nMessage-ID: <%s.%d@t.test>\r\n\r\n"
                        "line one of %s %d\r\n.dotted\r\nlast\r\n" % (tag, i, tag, i, tag, i))
                s.sendmail("sender@example.test", [ALICE], body)
        deadline = time.time() + 30
        while True:
            new = set(self.files(md)) - before
            if len(new) >= n:
                out = {}
                for p in new:
                    with open(p, "rb") as f:
                        b = f.read()
                    out[int(re.search(rb"^Subject: \S+ (\d+)", b, re.M).group(1))] = b
                return [out[i] for i in range(n)]
            if time.time() > deadline:
                raise AssertionError("delivery timed out\n" + self.inst.log()[-3000:])
            time.sleep(0.2)

    def empty_inbox(self, c):
        c.select("INBOX")
        typ, data = c.search(None, "ALL")
        if data[0]:
            c.store("1:*", "+FLAGS", "(\\Deleted)")
            c.expunge()

    # ----- pre-login ---------------------------------------------------------

    def test_greeting_and_capability(self):
        r = Raw(self.p143)
        g = r.line()
        self.assertTrue(g.startswith("* OK [CAPABILITY IMAP4rev1"), g)
        for k in ("STARTTLS", "AUTH=PLAIN", "AUTH=LOGIN", "SASL-IR", "IMAP4rev2"):
            self.assertIn(k, g)
        out = r.cmd("a", "CAPABILITY")
        self.assertTrue(out[0].startswith("* CAPABILITY "))
        self.assertTrue(out[-1].startswith("a OK"))
        self.assertTrue(r.cmd("b", "NOOP")[-1].startswith("b OK"))
        out = r.cmd("c", "LOGOUT")
        self.assertTrue(out[0].startswith("* BYE"))
        self.assertTrue(out[1].startswith("c OK"))
        self.assertEqual(r.line(), "")
        r.close()

    def test_failed_login_logged_for_fail2ban(self):
        c = imaplib.IMAP4("127.0.0.1", self.p143, timeout=30)
        with self.assertRaises(imaplib.IMAP4.error) as e:
            c.login(ALICE, "wrong password")
        self.assertIn("AUTHENTICATIONFAILED", str(e.exception))
        # the session goes on
        self.assertEqual(c.noop()[0], "OK")
        c.logout()
        self.inst.wait_log(r"postern/imap-login\[\d+\]: Login failed: user=<%s>, "
                           r"method=PLAIN, rip=127\.0\.0\.1, " % re.escape(ALICE))
        # etc/fail2ban's filter matches the real line
        if shutil.which("fail2ban-regex"):
            import test_fail2ban
            line = [ln for ln in self.inst.log().splitlines()
                    if "imap-login" in ln and "Login failed:" in ln][0]
            matched, missed, out = test_fail2ban.fail2ban_regex(line)
            self.assertEqual(matched, 1, out)
            self.assertIn("127.0.0.1", out)

    def test_garbage_gets_bad_then_bye(self):
        r = Raw(self.p143)
        r.line()
        self.assertIn(" BAD ", r.cmd("a", "XYZZY")[-1])
        self.assertTrue(r.cmd("b", "SELECT INBOX")[-1].startswith("b BAD"))
        r.send("\x01\x02 garbage")
        self.assertIn("BAD", r.line())
        self.assertTrue(r.cmd("c", "LOGIN")[-1].startswith("c BAD"))
        self.assertTrue(r.cmd("d", "NOOP")[-1].startswith("d OK"))
        out = []
        r.s.sendall(b"".join(b"x%d BOGUS\r\n" % i for i in range(20)))
        while True:
            ln = r.line()
            if ln == "":
                break
            out.append(ln)
        self.assertTrue(any(x.startswith("* BYE") for x in out), out)
        r.close()

    def test_plaintext_refused_until_tls(self):
        r = Raw(self.pnoplain)
        g = r.line()
        self.assertIn("LOGINDISABLED", g)
        self.assertNotIn("AUTH=PLAIN", g)
        out = r.cmd("a", 'LOGIN "%s" "x"' % ALICE)
        self.assertIn("PRIVACYREQUIRED", out[-1])
        r.close()
        c = imaplib.IMAP4("127.0.0.1", self.pnoplain, timeout=30)
        c.starttls(ssl_context=tls_ctx())
        with self.assertRaises(imaplib.IMAP4.error) as e:
            c.login(ALICE, "wrong")
        self.assertIn("AUTHENTICATIONFAILED", str(e.exception))
        c.logout()

    def test_tls_session_resumed(self):
        """imaps: a client offering the ticket of its last session resumes
        it; imap-login took master's shared ticket keys (no warning that
        tickets stay with one process) and the key file is 0600."""
        ctx = tls_ctx()
        sess = None
        reused = []
        for _ in range(3):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.p993),
                                                         timeout=30), session=sess)
            try:
                self.assertTrue(s.recv(4096).startswith(b"* OK"))
                s.sendall(b"a LOGOUT\r\n")
                s.recv(4096)   # the ticket has come with the replies
                reused.append(s.session_reused)
                sess = s.session
            finally:
                s.close()
        self.assertEqual(reused, [False, True, True])
        self.assertNotIn("TLS session tickets resume only", self.inst.log())
        path = os.path.join(self.inst.params["data_directory"], "tls_ticket_keys")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)

    def test_starttls_discards_pipelined(self):
        s = socket.create_connection(("127.0.0.1", self.p143), 10)
        f = s.makefile("rb")
        f.readline()
        s.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
        self.assertTrue(f.readline().startswith(b"a OK"))
        t = tls_ctx().wrap_socket(s)
        tf = t.makefile("rb")
        t.sendall(b"c NOOP\r\n")
        # a "* CAPABILITY" from the plaintext injection would come first
        self.assertTrue(tf.readline().startswith(b"c OK"))
        t.close()
        self.inst.wait_log(r"discarding 14 bytes pipelined after STARTTLS")

    def test_authenticate_plain_sasl_ir_wrong(self):
        import base64
        r = Raw(self.p143)
        r.line()
        ir = base64.b64encode(b"\0%s\0nope" % ALICE.encode()).decode()
        out = r.cmd("a", "AUTHENTICATE PLAIN " + ir)
        self.assertIn("a NO [AUTHENTICATIONFAILED]", out[-1])
        r.send("b AUTHENTICATE PLAIN")
        self.assertTrue(r.line().startswith("+"))
        r.send("*")
        self.assertTrue(r.line().startswith("b BAD"))
        r.close()

    # ----- logged in ---------------------------------------------------------

    def test_login_kinds_and_log_line(self):
        self.need_imapd()
        for kind in ("plain", "starttls", "ssl"):
            c = self.login(kind)
            typ, data = c.select("INBOX")
            self.assertEqual(typ, "OK")
            c.logout()
        self.inst.wait_log(r"postern/imap-login\[\d+\]: Login: user=<%s>, "
                           r"method=PLAIN, rip=127\.0\.0\.1, lip=127\.0\.0\.1, TLS"
                           % re.escape(ALICE))
        self.inst.wait_log(r"postern/imapd\[\d+\]: Disconnected: Logged out ")

    def test_default_folders_and_list(self):
        self.need_imapd()
        c = self.login()
        typ, data = c.list()
        names = {ln.decode().rsplit(' "/" ', 1)[1].strip('"'): ln.decode() for ln in data}
        for n in ("INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive"):
            self.assertIn(n, names)
        self.assertIn("\\Sent", names["Sent"])
        self.assertIn("\\Trash", names["Trash"])
        # INBOX is subscribed with the others, for clients that show only
        # subscribed folders.
        typ, data = c.lsub()
        subs = {ln.decode().rsplit(' "/" ', 1)[1].strip('"') for ln in data}
        self.assertTrue({"INBOX", "Drafts", "Sent", "Trash"} <= subs, subs)
        c.logout()

    def test_fetch_byte_identical(self):
        self.need_imapd()
        c = self.login()
        self.empty_inbox(c)
        files = self.deliver(2, "fetch")
        c.noop()
        typ, data = c.select("INBOX")
        self.assertEqual(int(data[0]), 2)
        for i, want in enumerate(files, 1):
            typ, d = c.fetch(str(i), "(RFC822.SIZE BODY.PEEK[])")
            self.assertEqual(d[0][1], crlf(want))
            size = int(re.search(rb"RFC822.SIZE (\d+)", d[0][0]).group(1))
            self.assertEqual(size, len(crlf(want)))
        # PEEK left \Seen alone; BODY[] sets it
        typ, d = c.fetch("1", "(FLAGS)")
        self.assertNotIn(b"\\Seen", d[0])
        typ, d = c.fetch("1", "(BODY[HEADER])")
        typ, d = c.fetch("1", "(FLAGS)")
        self.assertIn(b"\\Seen", d[0])
        c.logout()

    def test_store_seen_by_other_session(self):
        self.need_imapd()
        a = self.login()
        self.empty_inbox(a)
        self.deliver(1, "store")
        a.noop()
        b = self.login()
        b.select("INBOX")
        a.store("1", "+FLAGS", "(\\Flagged $Important)")
        typ, d = a.fetch("1", "(FLAGS)")
        self.assertIn(b"\\Flagged", d[0])
        self.assertIn(b"$Important", d[0])
        # b hears of it on NOOP as an untagged FETCH FLAGS
        b.noop()
        typ, fl = b.response("FETCH")
        self.assertTrue(fl and fl[0] is not None and b"\\Flagged" in fl[0], fl)
        typ, d = b.fetch("1", "(FLAGS)")
        self.assertIn(b"$Important", d[0])
        a.store("1", "-FLAGS", "($Important)")
        typ, d = b.fetch("1", "(FLAGS)")
        self.assertNotIn(b"$Important", d[0])
        a.logout()
        b.logout()

    def test_new_keyword_flags_and_recent_after_expunge(self):
        # A keyword no FLAGS reply named yet is announced with a fresh
        # FLAGS before the FETCH that carries it (RFC 9051 7.3.5), for
        # the session's own STORE and another session's alike; an
        # EXPUNGE that takes \\Recent messages says the new RECENT count.
        a = self.raw_with_mail(3, "kw")
        out = a.cmd("s", "SELECT INBOX")
        self.assertIn("* 3 RECENT", out)
        flags = [x for x in out if x.startswith("* FLAGS ")]
        self.assertEqual(flags, ["* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)"])
        out = a.cmd("t", "STORE 1 +FLAGS ($Kw1)")
        self.assertEqual(out[0], "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Kw1)")
        self.assertRegex(out[1], r"^\* 1 FETCH \(FLAGS \(.*\$Kw1")
        # the same keyword again: no FLAGS
        out = a.cmd("u", "STORE 2 +FLAGS ($Kw1)")
        self.assertFalse([x for x in out if x.startswith("* FLAGS")], out)
        b = self.login()
        b.select("INBOX")
        b.store("3", "+FLAGS", "($Kw2)")
        out = a.cmd("v", "NOOP")
        self.assertEqual(out[0], "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Kw1 $Kw2)")
        self.assertRegex(out[1], r"^\* 3 FETCH \(UID \d+ FLAGS \(.*\$Kw2")
        b.logout()
        a.cmd("w", "STORE 1:2 +FLAGS.SILENT (\\Deleted)")
        out = a.cmd("x", "EXPUNGE")
        self.assertEqual(out[:3], ["* 2 EXPUNGE", "* 1 EXPUNGE", "* 1 RECENT"], out)
        self.assertTrue(out[-1].startswith("x OK"), out)
        a.cmd("y", "LOGOUT")
        a.close()

    def test_recent_after_vanished(self):
        # With QRESYNC, expunges are told as VANISHED, and the new
        # RECENT count follows as after EXPUNGE (RFC 3501 7.3.2): for
        # the session's own EXPUNGE and MOVE alike.
        a = self.raw_with_mail(4, "qr")
        a.cmd("e", "ENABLE QRESYNC")
        out = a.cmd("s", "SELECT INBOX")
        self.assertIn("* 4 RECENT", out)
        uids = [int(x.split("UID ")[1].split()[0].rstrip(")"))
                for x in a.cmd("f", "FETCH 1:* (UID)") if " FETCH " in x]
        a.cmd("w", "STORE 1 +FLAGS.SILENT (\\Deleted)")
        out = a.cmd("x", "EXPUNGE")
        self.assertEqual(out[:2], ["* VANISHED %d" % uids[0], "* 3 RECENT"], out)
        self.assertTrue(out[-1].startswith("x OK"), out)
        out = a.cmd("m", "MOVE 1:2 Trash")
        self.assertIn("* VANISHED %d:%d" % (uids[1], uids[2]), out)
        self.assertIn("* 1 RECENT", out)
        self.assertLess(out.index("* VANISHED %d:%d" % (uids[1], uids[2])),
                        out.index("* 1 RECENT"), out)
        a.cmd("y", "LOGOUT")
        a.close()

    def test_fetch_of_message_another_session_expunged(self):
        # What the view knows of a message expunged elsewhere but not
        # yet reported is still served; its text is NO [EXPUNGEISSUED]
        # (RFC 2180 4.1), and NOOP then reports the EXPUNGE.
        a = self.raw_with_mail(2, "gone")
        a.cmd("s", "SELECT INBOX")
        b = self.login()
        b.select("INBOX")
        b.store("1", "+FLAGS", "(\\Deleted)")
        b.expunge()
        b.logout()
        out = a.cmd("t", "FETCH 1:* (UID FLAGS)")
        self.assertEqual(len([x for x in out if " FETCH (UID " in x]), 2, out)
        self.assertTrue(out[-1].startswith("t OK"), out)
        out = a.cmd("u", "FETCH 1 BODY.PEEK[]")
        self.assertTrue(out[-1].startswith("u NO [EXPUNGEISSUED]"), out)
        out = a.cmd("v", "NOOP")
        self.assertIn("* 1 EXPUNGE", out)
        out = a.cmd("w", "FETCH 1:* UID")
        self.assertEqual(len([x for x in out if " FETCH (UID " in x]), 1, out)
        a.cmd("y", "LOGOUT")
        a.close()

    def test_status_recent(self):
        # The session that selected a folder holds its \\Recent messages:
        # its own STATUS counts them, another session's does not.
        self.need_imapd()
        a = self.login()
        self.empty_inbox(a)
        a.close()
        self.deliver(2, "recent")
        b = self.login()
        a.select("INBOX")
        self.assertEqual(a.response("RECENT")[1], [b"2"])

        def recent(c):
            typ, d = c.status("INBOX", "(MESSAGES RECENT)")
            self.assertEqual(typ, "OK", d)
            m = re.search(rb"MESSAGES (\d+) RECENT (\d+)", d[0])
            self.assertTrue(m, d)
            return int(m.group(1)), int(m.group(2))
        self.assertEqual(recent(a), (2, 2))
        self.assertEqual(recent(b), (2, 0))
        self.deliver(1, "recent-late")
        self.assertEqual(recent(b), (3, 1))
        self.assertEqual(recent(a), (3, 3))
        # Selecting another folder closes this one with [CLOSED] first.
        typ, d = a.select("Drafts")
        self.assertEqual(typ, "OK")
        self.assertIn(b"CLOSED", b" ".join(x for x in a.untagged_responses.get("OK", []) if x))
        a.logout()
        b.logout()

    def test_examine_keeps_recent(self):
        # EXAMINE shows the \\Recent messages but MUST NOT take the
        # flag away (RFC 3501 6.3.2): a later SELECT still gets them.
        a = self.raw_with_mail(2, "examine")
        out = a.cmd("e", "EXAMINE INBOX")
        self.assertIn("* 2 RECENT", out)
        out = a.cmd("f", "FETCH 1:* FLAGS")
        self.assertEqual(len([x for x in out if "\\Recent" in x]), 2, out)
        st = a.cmd("g", "STATUS INBOX (RECENT)")
        self.assertIn("* STATUS INBOX (RECENT 2)", st)
        b = self.login()
        typ, d = b.select("INBOX")
        self.assertEqual(b.response("RECENT")[1], [b"2"])
        b.logout()
        a.cmd("z", "LOGOUT")
        a.close()

    def test_append_then_fetch(self):
        self.need_imapd()
        c = self.login()
        msg = (b"From: a@example.test\r\nSubject: appended\r\n\r\nhello\r\n"
               b"second line\r\n")
        typ, data = c.append("Drafts", "(\\Draft \\Seen)", None, msg)
        self.assertEqual(typ, "OK")
        m = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
        self.assertTrue(m, data)
        c.select("Drafts")
        typ, d = c.uid("FETCH", m.group(2).decode(), "(FLAGS BODY.PEEK[])")
        self.assertEqual(d[0][1], msg)
        self.assertIn(b"\\Draft", d[0][0])
        # the file is in the Drafts folder's Maildir
        md = os.path.join(self.inst.vmaildir(ALICE), ".Drafts")
        got = []
        for p in self.files(md):
            with open(p, "rb") as f:
                got.append(f.read())
        self.assertIn(msg, got)
        # a date-time whose day lacks date-day-fixed's space is taken,
        # as Dovecot takes it: a BAD would lose the client's copy
        typ, data = c.append("Drafts", None, '"5-Dec-2026 10:06:40 +0000"', msg)
        self.assertEqual(typ, "OK", data)
        uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
        typ, d = c.uid("FETCH", uid, "(INTERNALDATE)")
        self.assertIn(b'INTERNALDATE "05-Dec-2026 10:06:40 +0000"', d[0])
        c.logout()

    def test_fetch_larger_than_output_buffer(self):
        """Responses many times imapd's output high-water mark come whole
        to a reader fast enough to take each chunk at once: one FETCH of
        three large messages (plain and TLS), then six such FETCHes
        pipelined in one write."""
        self.need_imapd()
        c = self.login()
        c.create("Big")
        msgs = []
        for i in range(3):
            m = ("Subject: big %d\r\n\r\n" % i).encode() + b"".join(
                b"line %06d of big message %d, long enough.....\r\n" % (k, i)
                for k in range(6000))
            typ, data = c.append("Big", None, None, m)
            self.assertEqual(typ, "OK", data)
            msgs.append(m)
        c.logout()
        try:
            for kind in ("plain", "ssl"):
                c = self.login(kind)
                c.select("Big", readonly=True)
                typ, data = c.fetch("1:3", "(BODY.PEEK[])")
                self.assertEqual(typ, "OK", kind)
                self.assertEqual([d[1] for d in data if isinstance(d, tuple)], msgs, kind)
                c.logout()
            r = self.raw_login()[0]
            r.cmd("s", "EXAMINE Big")
            r.s.sendall(b"".join(b"t%d FETCH 1:3 BODY.PEEK[]\r\n" % k for k in range(6)))
            got = b""
            while b"\r\nt5 " not in got:
                chunk = r.s.recv(1 << 20)
                self.assertNotEqual(chunk, b"", "connection closed")
                got += chunk
            self.assertEqual(got.count(msgs[2]), 6)
            self.assertRegex(got, rb"\r\nt5 OK")
            r.close()
        finally:
            c = self.login()
            c.delete("Big")
            c.logout()

    def test_fetch_unended_and_nul(self):
        # A message whose last line has no CRLF, with a NUL in it:
        # BODY[] is exactly RFC822.SIZE octets (the last line ended, as
        # POP3 sends it), and the NUL, which a literal may not carry,
        # comes as 0x80; BINARY (literal8) keeps it.
        self.need_imapd()
        c = self.login()
        msg = b"From: a@example.test\r\nSubject: unended\r\n\r\nbo\x00dy"
        typ, data = c.append("INBOX", None, None, msg)
        self.assertEqual(typ, "OK", data)
        uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1).decode()
        c.select("INBOX")
        typ, d = c.uid("FETCH", uid, "(RFC822.SIZE BODY.PEEK[])")
        size = int(re.search(rb"RFC822.SIZE (\d+)", d[0][0]).group(1))
        body = d[0][1]
        self.assertEqual(len(body), size)
        self.assertEqual(body, msg.replace(b"\x00", b"\x80") + b"\r\n")
        typ, d = c.uid("FETCH", uid, "(BINARY.PEEK[1])")
        self.assertIn(b"~{", d[0][0])
        self.assertEqual(d[0][1], b"bo\x00dy\r\n")
        c.logout()

    def test_imap4rev2_session(self):
        # After ENABLE IMAP4rev2 (RFC 9051): no RECENT, and SEARCH answers
        # with ESEARCH, as if RETURN (ALL) were given.
        self.need_imapd()
        self.clear_inbox()
        self.deliver(3, "rev2")
        r, _ = self.raw_login()
        self.assertIn("* ENABLED IMAP4rev2", r.cmd("b", "ENABLE IMAP4rev2"))
        out = r.cmd("c", "SELECT INBOX")
        self.assertIn("* 3 EXISTS", out)
        self.assertFalse([x for x in out if x.endswith(" RECENT")], out)
        out = r.cmd("d", "SEARCH ALL")
        self.assertIn('* ESEARCH (TAG "d") ALL 1:3', out)
        self.assertFalse([x for x in out if x.startswith("* SEARCH")], out)
        out = r.cmd("e", "UID SEARCH NOT ALL")
        self.assertIn('* ESEARCH (TAG "e") UID', out)
        out = r.cmd("f", "SEARCH RETURN (COUNT) ALL")
        self.assertIn('* ESEARCH (TAG "f") COUNT 3', out)
        # no \\Recent flag in rev2, though this session holds them
        out = r.cmd("g", "FETCH 1:3 FLAGS")
        self.assertEqual(len([x for x in out if " FETCH (" in x]), 3, out)
        self.assertFalse([x for x in out if "Recent" in x], out)
        r.cmd("h", "LOGOUT")
        r.close()

    def test_append_utf8(self):
        # RFC 6855: after ENABLE UTF8=ACCEPT, APPEND takes UTF8 (literal8);
        # the bytes land in the Maildir as sent.
        self.need_imapd()
        self.clear_inbox()
        msg = "Subject: h\u00e9llo\r\nFrom: J\u00f6rg <j@x.test>\r\n\r\nb\u00f6dy\r\n"
        n = len(msg.encode())
        r, _ = self.raw_login()
        out = r.cmd("u", "APPEND INBOX UTF8 (~{%d+}\r\n%s)" % (n, msg))
        self.assertTrue(out[-1].startswith("u BAD"), out)   # not enabled yet
        self.assertIn("* ENABLED UTF8=ACCEPT", r.cmd("b", "ENABLE UTF8=ACCEPT"))
        out = r.cmd("c", "APPEND INBOX (\\Seen) UTF8 (~{%d+}\r\n%s)" % (n, msg))
        self.assertTrue(out[-1].startswith("c OK [APPENDUID"), out)
        r.cmd("d", "SELECT INBOX")
        self.assertIn("* SEARCH 1", r.cmd("e", 'SEARCH SUBJECT "h\u00e9llo"'))
        r.cmd("f", "LOGOUT")
        r.close()
        got = []
        for p in self.files(self.inst.vmaildir(ALICE)):
            with open(p, "rb") as f:
                got.append(f.read())
        self.assertIn(msg.encode(), got)

    def test_copy_move(self):
        self.need_imapd()
        c = self.login()
        self.empty_inbox(c)
        files = self.deliver(2, "copy")
        c.noop()
        typ, data = c.copy("1", "Archive")
        self.assertEqual(typ, "OK")
        self.assertIn(b"COPYUID", data[0])
        typ, data = c.uid("MOVE", "1:*", "Trash")
        self.assertEqual(typ, "OK")
        typ, data = c.search(None, "ALL")
        self.assertEqual(data[0], b"")
        c.select("Archive")
        typ, d = c.fetch("*", "(BODY.PEEK[])")
        self.assertEqual(d[0][1], crlf(files[0]))
        c.select("Trash")
        typ, d = c.search(None, "ALL")
        self.assertGreaterEqual(len(d[0].split()), 2)
        typ, data = c.copy("1", "NoSuchFolder")
        self.assertEqual(typ, "NO")
        self.assertIn(b"TRYCREATE", c.response("TRYCREATE")[1][0] or b"TRYCREATE")
        c.logout()

    def test_expunge_seen_by_other_session(self):
        self.need_imapd()
        a = self.login()
        self.empty_inbox(a)
        self.deliver(3, "exp")
        a.noop()
        b = self.login()
        b.select("INBOX")
        a.store("2", "+FLAGS", "(\\Deleted)")
        a.expunge()
        b.noop()
        typ, ex = b.response("EXPUNGE")
        self.assertEqual(ex, [b"2"])
        typ, d = b.search(None, "ALL")
        self.assertEqual(d[0], b"1 2")
        a.logout()
        b.logout()

    def test_idle_wakes_on_delivery(self):
        self.need_imapd()
        c = self.login()
        self.empty_inbox(c)
        tag = c._new_tag().decode()
        c.send(("%s IDLE\r\n" % tag).encode())
        self.assertTrue(c.readline().startswith(b"+"))
        t0 = time.time()
        self.deliver(1, "idle")   # returns once the file is in the Maildir
        c.sock.settimeout(10)
        line = c.readline()
        elapsed = time.time() - t0
        self.assertRegex(line, rb"^\* 1 EXISTS")
        self.assertLess(elapsed, 5)
        c.send(b"DONE\r\n")
        while True:
            ln = c.readline()
            if ln.startswith(tag.encode()):
                self.assertIn(b"OK", ln)
                break
        c.logout()

    def test_idle_sees_other_sessions_changes(self):
        """A flag change and an expunge by another client (here a second
        connection, served by the same worker) reach an idling one."""
        self.need_imapd()
        a = self.login()
        self.empty_inbox(a)
        self.deliver(2, "idle2")
        a.noop()
        b = self.login()
        b.select("INBOX")
        tag = b._new_tag().decode()
        b.send(("%s IDLE\r\n" % tag).encode())
        self.assertTrue(b.readline().startswith(b"+"))
        b.sock.settimeout(10)
        a.store("1", "+FLAGS", "(\\Flagged)")
        line = b.readline()
        self.assertRegex(line, rb"^\* 1 FETCH \(.*\\Flagged")
        a.store("2", "+FLAGS", "(\\Deleted)")
        a.expunge()
        while True:
            line = b.readline()
            if b"EXPUNGE" in line:
                break
            self.assertRegex(line, rb"^\* \d+ FETCH")
        self.assertEqual(line, b"* 2 EXPUNGE\r\n")
        b.send(b"DONE\r\n")
        self.assertTrue(b.readline().startswith(tag.encode() + b" OK"))
        a.logout()
        b.logout()

    def test_search_sort_thread(self):
        self.need_imapd()
        c = self.login()
        c.create("SortTest")
        msgs = [b"Subject: b\r\nMessage-ID: <1@x>\r\nFrom: Zed <a@x>\r\n\r\nx\r\n",
                b"Subject: Re: b\r\nMessage-ID: <2@x>\r\nIn-Reply-To: <1@x>\r\n"
                b"From: =?UTF-8?Q?=C3=85sa?= <z@x>\r\n\r\ny\r\n",
                b"Subject: a\r\nMessage-ID: <3@x>\r\nFrom: m@x\r\n\r\nneedle\r\n"]
        for m in msgs:
            c.append("SortTest", None, None, m)
        c.select("SortTest")
        self.assertEqual(c.search(None, "BODY", "needle")[1], [b"3"])
        self.assertEqual(c.sort("(SUBJECT)", "UTF-8", "ALL")[1], [b"3 1 2"])
        # RFC 5957, advertised: the display name (decoded), else the address
        self.assertIn(b"SORT=DISPLAY", c.capability()[1][0].split())
        self.assertEqual(c.sort("(DISPLAYFROM)", "UTF-8", "ALL")[1], [b"3 1 2"])
        self.assertEqual(c.sort("(FROM)", "UTF-8", "ALL")[1], [b"1 3 2"])
        typ, d = c.thread("REFERENCES", "UTF-8", "ALL")
        self.assertEqual(d, [b"(1 2)(3)"])
        c.close()
        c.delete("SortTest")
        c.logout()

    def test_quota(self):
        self.need_imapd()
        c = self.login()
        typ, data = c.getquotaroot("INBOX")
        self.assertEqual(typ, "OK")
        flat = b" ".join(x if isinstance(x, bytes) else b" ".join(x) for x in data
                         if x)
        self.assertRegex(flat, rb'STORAGE \d+ 2929')
        big = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 3100
        typ, data = c.append("Archive", None, None, big)
        self.assertEqual(typ, "NO")
        self.assertIn(b"OVERQUOTA", data[0])
        typ, data = c.setquota('""', "(STORAGE 1)")
        self.assertEqual(typ, "NO")
        c.logout()

    def test_sessions_per_user_and_address(self):
        self.need_imapd()
        cs = [self.login() for _ in range(6)]
        with self.assertRaises(Exception):
            c = self.login()
            c.select("INBOX")
        for c in cs:
            c.logout()
        self.inst.wait_log(r"imapd_client_connection_limit")
        self.login().logout()

    def test_condstore_qresync(self):
        self.need_imapd()
        a = self.login()
        self.empty_inbox(a)
        self.deliver(3, "qr")
        a.noop()
        r, _ = self.raw_login()
        self.assertIn("* ENABLED QRESYNC", r.cmd("b", "ENABLE QRESYNC"))
        out = "\n".join(r.cmd("c", "SELECT INBOX"))
        v = int(re.search(r"UIDVALIDITY (\d+)", out).group(1))
        ms = int(re.search(r"HIGHESTMODSEQ (\d+)", out).group(1))
        typ, d = a.fetch("1:3", "(UID)")
        uids = [int(re.search(rb"UID (\d+)", x).group(1)) for x in d]
        self.assertIn("OK", r.cmd("d", "UNSELECT")[-1])
        # meanwhile: a flag on the first, the second expunged
        a.store("1", "+FLAGS", "(\\Answered)")
        a.store("2", "+FLAGS", "(\\Deleted)")
        a.expunge()
        out = r.cmd("e", "SELECT INBOX (QRESYNC (%d %d))" % (v, ms))
        self.assertIn("* VANISHED (EARLIER) %d" % uids[1], out)
        ch = [x for x in out if " FETCH " in x]
        self.assertEqual(len(ch), 1, out)
        self.assertIn("UID %d " % uids[0], ch[0])
        self.assertIn("\\Answered", ch[0])
        self.assertRegex(ch[0], r"MODSEQ \(\d+\)")
        # a conditional STORE on a message changed since
        out = r.cmd("f", "UID STORE %d (UNCHANGEDSINCE %d) +FLAGS (\\Seen)" % (uids[0], ms))
        self.assertIn("[MODIFIED %d]" % uids[0], out[-1])
        # .SILENT: no FLAGS, but the new MODSEQ (RFC 7162 3.1.3)
        out = r.cmd("g", "UID STORE %d (UNCHANGEDSINCE 99999999) +FLAGS.SILENT (\\Seen)"
                    % uids[2])
        self.assertTrue(out[-1].startswith("g OK"), out)
        self.assertRegex(out[0], r"^\* 2 FETCH \(UID %d MODSEQ \(\d+\)\)$" % uids[2])
        self.assertEqual(len(out), 2, out)
        # With CONDSTORE on, a STORE's FETCH carries the UID even for a
        # plain STORE (RFC 7162 3.1: a client matches it by UID).
        out = r.cmd("g2", "STORE 1 +FLAGS (\\Flagged)")
        self.assertRegex(out[0], r"^\* 1 FETCH \(UID %d FLAGS \(" % uids[0])
        # EXPUNGE's OK names the HIGHESTMODSEQ it left (QRESYNC).
        r.cmd("g3", "STORE 1 +FLAGS.SILENT (\\Deleted)")
        out = r.cmd("g4", "EXPUNGE")
        self.assertIn("* VANISHED %d" % uids[0], out)
        m = re.match(r"g4 OK \[HIGHESTMODSEQ (\d+)\]", out[-1])
        self.assertTrue(m, out)
        st = r.cmd("g5", "STATUS INBOX (HIGHESTMODSEQ)")
        self.assertIn("HIGHESTMODSEQ %s)" % m.group(1), st[0])
        r.cmd("h", "LOGOUT")
        r.close()
        a.logout()

    def test_condstore_enabled_while_selected(self):
        # RFC 7162 3.1: a CONDSTORE enabling command in the selected
        # state gets the mailbox's HIGHESTMODSEQ, once.
        r = self.raw_with_mail(1, "cs")
        ms = re.search(r"HIGHESTMODSEQ (\d+)", "\n".join(r.cmd("s", "SELECT INBOX"))).group(1)
        out = r.cmd("t", "FETCH 1 (FLAGS) (CHANGEDSINCE 0)")
        self.assertTrue(out[0].startswith("* OK [HIGHESTMODSEQ %s]" % ms), out)
        self.assertRegex(out[1], r"^\* 1 FETCH \(.*MODSEQ \(\d+\)")
        out = r.cmd("u", "FETCH 1 (FLAGS) (CHANGEDSINCE 0)")
        self.assertFalse([x for x in out if "HIGHESTMODSEQ" in x], out)
        r.cmd("z", "LOGOUT")
        r.close()
        r, _ = self.raw_login()
        r.cmd("s", "SELECT INBOX")
        out = r.cmd("t", "ENABLE CONDSTORE")
        self.assertEqual(out[0], "* ENABLED CONDSTORE")
        self.assertTrue(out[1].startswith("* OK [HIGHESTMODSEQ %s]" % ms), out)
        r.cmd("z", "LOGOUT")
        r.close()

    def test_compress_deflate(self):
        """RFC 4978: after the OK both directions are raw deflate; a
        FETCH through it is byte-identical to the Maildir file."""
        import zlib
        self.need_imapd()
        a = self.login()
        self.empty_inbox(a)
        files = self.deliver(1, "zip")
        a.logout()
        for port, tls in ((self.p143, False), (self.p993, True)):
            r = Raw(port, tls=tls)
            r.line()
            r.cmd("a", 'LOGIN "%s" "%s"' % (ALICE, PW))
            self.assertTrue(r.cmd("b", "COMPRESS DEFLATE")[-1].startswith("b OK"))
            comp = zlib.compressobj(wbits=-15)
            dec = zlib.decompressobj(wbits=-15)

            def send(text):
                r.s.sendall(comp.compress(text) + comp.flush(zlib.Z_SYNC_FLUSH))

            def until(tag):
                data = b""
                while not re.search(rb"(^|\r\n)" + tag + rb" [^\r\n]*\r\n$", data):
                    chunk = r.s.recv(65536)
                    self.assertTrue(chunk, data)
                    data += dec.decompress(chunk)
                return data

            send(b"c SELECT INBOX\r\n")
            self.assertIn(b"c OK", until(b"c"))
            send(b"d FETCH 1 BODY.PEEK[]\r\n")
            out = until(b"d")
            want = crlf(files[0])
            self.assertIn(b"{%d}\r\n" % len(want) + want, out)
            send(b"e COMPRESS DEFLATE\r\n")
            self.assertIn(b"COMPRESSIONACTIVE", until(b"e"))
            send(b"f LOGOUT\r\n")
            self.assertIn(b"f OK", until(b"f"))
            r.close()

    def test_create_rename_delete(self):
        self.need_imapd()
        c = self.login()
        self.assertEqual(c.create("Projects/2026")[0], "OK")
        self.assertEqual(c.rename("Projects/2026", "Projects/Done")[0], "OK")
        typ, data = c.list('""', "Projects*")
        names = [ln.decode().rsplit(' "/" ', 1)[1].strip('"') for ln in data if ln]
        self.assertIn("Projects/Done", names)
        self.assertNotIn("Projects/2026", names)
        md = self.inst.vmaildir(ALICE)
        self.assertTrue(os.path.isdir(os.path.join(md, ".Projects.Done", "cur")))
        # A folder with children is kept, with RFC 9051's code for it.
        self.assertEqual(c.create("Projects")[0], "OK")
        typ, d = c.delete("Projects")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[HASCHILDREN]", d[0])
        self.assertTrue(os.path.isdir(os.path.join(md, ".Projects", "cur")))
        self.assertEqual(c.delete("Projects/Done")[0], "OK")
        self.assertFalse(os.path.exists(os.path.join(md, ".Projects.Done")))
        self.assertEqual(c.delete("Projects")[0], "OK")
        self.assertFalse(os.path.exists(os.path.join(md, ".Projects")))
        # RFC 5530 codes a client can act on
        typ, d = c.delete("NoSuchFolder")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[NONEXISTENT]", d[0])
        typ, d = c.rename("NoSuchFolder", "Other")
        self.assertIn(b"[NONEXISTENT]", d[0])
        typ, d = c.rename("Drafts", "Sent")
        self.assertEqual(typ, "NO")
        self.assertIn(b"[ALREADYEXISTS]", d[0])
        c.logout()

    def test_rename_moves_subscriptions(self):
        # The subscriptions of a renamed folder and of every folder
        # below it follow it; a folder that was not subscribed is not
        # subscribed by the rename.
        self.need_imapd()
        c = self.login()
        for name in ("Team/Plans/2027", "Team/Notes", "Team2"):
            self.assertEqual(c.create(name)[0], "OK")
        c.unsubscribe("Team/Notes")

        def subs():
            typ, d = c.lsub('""', "*")
            return sorted(ln.decode().rsplit(' "/" ', 1)[1].strip('"') for ln in d if ln)
        self.assertEqual(c.rename("Team", "Crew")[0], "OK")
        s = subs()
        self.assertIn("Crew/Plans/2027", s)
        self.assertIn("Team2", s)
        self.assertFalse([x for x in s if x.startswith("Team/") or x == "Crew"], s)
        self.assertNotIn("Crew/Notes", s)
        lines = open(os.path.join(self.inst.vmaildir(ALICE), "subscriptions")).read().split()
        self.assertIn("Crew/Plans/2027", lines)
        for name in ("Crew/Plans/2027", "Crew/Notes", "Team2"):
            self.assertEqual(c.delete(name)[0], "OK", name)
        c.logout()

    def test_bad_names_refused(self):
        self.need_imapd()
        c = self.login()
        md = self.inst.vmaildir(ALICE)
        before = sorted(os.listdir(os.path.dirname(md)))
        for bad in ('"../x"', '"a/../../x"', '"x\\\\y/.."', '"/etc"', '"a..b"'):
            typ, data = c.create(bad)
            self.assertEqual(typ, "NO", bad)
            typ, data = c.select(bad)
            self.assertEqual(typ, "NO", bad)
        # a control character inside a literal name
        typ, data = c._simple_command("CREATE", "{3+}\r\na\x01b")
        self.assertEqual(typ, "NO")
        self.assertEqual(sorted(os.listdir(os.path.dirname(md))), before)
        c.logout()

    def test_garbage_after_login(self):
        self.need_imapd()
        c = self.login()
        r, out = self.raw_login()
        self.assertIn("OK", out[-1])
        for i, cmd in enumerate(("FROB", "FETCH 1 (FLAGS)", "SELECT", "UID FROB 1",
                                 "STORE x FLAGS (\\Seen)", "FETCH 1 (((((((((((((((((((((((((((((((((((((FLAGS))))))))))))))))))))))))))))))))))))",
                                 "\x01\x02")):
            out = r.cmd("t%d" % i, cmd)
            self.assertTrue(out[-1].startswith("t%d BAD" % i) or out[-1].startswith("* BAD"), (cmd, out))
        # An APPEND over APPENDLIMIT is refused before its bytes come,
        # with NO [TOOBIG] (RFC 7889), not as bad syntax.
        out = r.cmd("big", "APPEND INBOX {%d}" % (100 * 1024 * 1024))
        self.assertEqual(len(out), 1, out)
        self.assertTrue(out[0].startswith("big NO [TOOBIG]"), out)
        self.assertTrue(r.cmd("z", "NOOP")[-1].startswith("z OK"))
        r.close()
        c.logout()

    def test_curl_imap(self):
        self.need_imapd()
        if shutil.which("curl") is None:
            self.skipTest("curl not installed")
        c = self.login()
        self.empty_inbox(c)
        c.logout()
        files = self.deliver(1, "curl")
        r = subprocess.run(["curl", "-s", "--user", "%s:%s" % (ALICE, PW),
                            "imap://127.0.0.1:%d/INBOX;UID=*" % self.p143],
                           capture_output=True, timeout=60)
        if r.stdout == b"":
            r = subprocess.run(["curl", "-s", "--user", "%s:%s" % (ALICE, PW),
                                "imap://127.0.0.1:%d/INBOX;MAILINDEX=1" % self.p143],
                               capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(crlf(r.stdout), crlf(files[0]))

    def test_process_owners(self):
        self.need_imapd()
        c = self.login()
        c.select("INBOX")
        table = H.proc_table()
        kids = H.descendants(self.inst.master_pid(), table)
        comms = {table[p][1] for p in kids}
        c.logout()
        self.assertIn("imap-login", comms)
        self.assertIn("imapd", comms)


class ImapIdleNotify(H.InstanceTestCase):
    """imapd_idle_notify_interval: an idling client hears "* OK Still
    here" on time, and imapd_timeout still ends a session whose client
    sent nothing (the keepalives are not its input)."""

    def test_still_here_then_inactivity(self):
        if not have_imapd():
            self.skipTest("imapd not built")
        port = H.free_port()
        inst = self.make_instance(
            conf={"imapd_idle_notify_interval": "1s", "imapd_timeout": "4s"},
            services=["127.0.0.1:%d inet n - n - - imap-login" % port,
                      "imapd unix - n n - 1 imapd"])
        inst.prepare()
        inst.add_user(ALICE, PW)
        inst.start(prepare=False)
        deadline = time.time() + 30
        while not H.port_accepts(port):
            self.assertLess(time.time(), deadline, "IMAP port not ready")
            time.sleep(0.2)
        r = Raw(port)
        r.line()
        self.assertTrue(r.cmd("a", 'LOGIN "%s" "%s"' % (ALICE, PW))[-1].startswith("a OK"))
        r.cmd("b", "SELECT INBOX")
        r.send("c IDLE")
        self.assertTrue(r.line().startswith("+ "))
        self.assertEqual([r.line(), r.line()], ["* OK Still here"] * 2)
        r.send("DONE")
        self.assertTrue(r.until_tag("c")[-1].startswith("c OK"))
        # Idle again and stay silent: keepalives, then the BYE and EOF.
        r.send("d IDLE")
        lines = []
        while True:
            ln = r.line()
            lines.append(ln)
            if ln == "":
                break
        self.assertEqual(lines[0][:2], "+ ")
        self.assertIn("* OK Still here", lines)
        self.assertEqual(lines[-2:], ["* BYE Disconnected for inactivity.", ""])
        r.close()
        inst.wait_log(r"postern/imapd\[\d+\]: Disconnected: Inactivity")


if __name__ == "__main__":
    unittest.main(verbosity=2)

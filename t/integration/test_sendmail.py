#!/usr/bin/env python3
"""
sendmail(1), mailq(1), newaliases(1) and pickup end to end: an ordinary
user submits with "sendmail -t", "sendmail -bs" and plain "sendmail rcpt <
msg" (what mail(1) does); the copies in the mailboxes are checked for the
headers pickup adds and removes. With the daemons stopped, sendmail still
succeeds (maildrop/) and the mail is delivered after the next start.
Bad options and unreadable input give a sysexits code, one line on stderr
and nothing in the queue.

Privileged cases (master as root, daemons as "postern", the submitter a
different user) need root; the unprivileged cases run everywhere (the
submitter is the user the instance runs as).
"""

import os
import pwd
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

EX_USAGE, EX_DATAERR, EX_IOERR = 64, 65, 74


def setUpModule():
    H.require_binaries()
    for b in ("sendmail", "mailq", "newaliases"):
        if not os.access(os.path.join(H.BUILDDIR, b), os.X_OK):
            raise RuntimeError("not built in %s: %s" % (H.BUILDDIR, b))


class SMInstance(H.Instance):
    """An instance (pickup and showq included) whose users can run sendmail."""

    def __init__(self, **kw):
        super().__init__(**kw)
        # Who submits: a user other than the daemons' in privileged mode.
        if H.is_root():
            H.ensure_system_user(H.UNPRIV_USER)
            self.sub_uid, self.sub_gid = H.user_ids(H.UNPRIV_USER)
            self.sub_name = H.UNPRIV_USER
        else:
            self.sub_uid, self.sub_gid = os.getuid(), os.getgid()
            self.sub_name = pwd.getpwuid(os.getuid()).pw_name
        self.bindir = self._user_bindir()

    def _user_bindir(self):
        """The build dir if the submitter can run programs there, else a
        copy of sendmail (with its other names) and postern."""
        if not H.is_root():
            return self.builddir
        r = subprocess.run(["runuser", "-u", self.sub_name, "--", "test", "-x",
                            os.path.join(self.builddir, "sendmail")])
        if r.returncode == 0:
            return self.builddir
        d = self.path("ubin")
        os.makedirs(d, exist_ok=True)
        for b in ("sendmail", "postern"):
            shutil.copy2(os.path.join(self.builddir, b), d)
        for b in ("mailq", "newaliases"):
            os.symlink("sendmail", os.path.join(d, b))
        os.chmod(d, 0o755)
        return d

    def sendmail(self, *args, input=b"", prog="sendmail", stdin=None,
                 as_root=False, env_config=False, timeout=60):
        cmd = [os.path.join(self.bindir, prog)]
        env = dict(os.environ)
        env.pop("MAIL_CONFIG", None)
        if env_config:
            env["MAIL_CONFIG"] = self.dir
        else:
            cmd += ["-C", self.dir]
        cmd += list(args)
        kw = {}
        if H.is_root() and not as_root:
            kw.update(user=self.sub_uid, group=self.sub_gid, extra_groups=[])
            env["HOME"] = "/"
            env["USER"] = env["LOGNAME"] = self.sub_name
        H.vprint("run", " ".join(cmd))
        if stdin is not None:
            return subprocess.run(cmd, stdin=stdin, capture_output=True,
                                  timeout=timeout, env=env, cwd="/", **kw)
        return subprocess.run(cmd, input=input, capture_output=True,
                              timeout=timeout, env=env, cwd="/", **kw)

    def all_queue_files(self):
        return self.queue_files(dirs=H.QUEUE_DIRS + ("maildrop", "corrupt"),
                                include_tmp=True)


def header_of(msg):
    return msg.split(b"\n\n", 1)[0] + b"\n"


def body_of(msg):
    return msg.split(b"\n\n", 1)[1] if b"\n\n" in msg else b""


class SendmailCases:
    """The cases, run by a privileged and an unprivileged subclass."""

    privileged = False

    def setUp(self):
        if self.privileged and not H.is_root():
            self.skipTest("needs root")
        self.inst = SMInstance(privileged=self.privileged)
        self.addCleanup(self._cleanup_inst, self.inst)
        self.inst.start()
        self.inst.pid_of("pickup")

    def ok(self, r):
        self.assertEqual(r.returncode, 0, "exit %d, stderr: %r" % (r.returncode, r.stderr))

    def origin(self):
        return self.inst.params["myhostname"]

    # ----- submissions -------------------------------------------------------

    def test_t_extract_bcc_and_added_headers(self):
        inst = self.inst
        msg = (b"To: Alice <alice@example.test>\n"
               b"Cc: \"Carol, the tester\" <carol@example.test>\n"
               b"Bcc: bob@example.test\n"
               b"Subject: dash t\n"
               b"\n"
               b"line one\n"
               b".\n"
               b"after the dot\n")
        r = inst.sendmail("-t", "-i", "-F", "Test User", input=msg)
        self.ok(r)
        self.assertEqual(r.stderr, b"")
        msgs = {}
        for rc in ("alice@example.test", "bob@example.test", "carol@example.test"):
            got = H.wait_maildir(inst.vmaildir(rc), inst=inst)
            self.assertEqual(len(got), 1, rc)
            msgs[rc] = got[0]
        for rc, m in msgs.items():
            head = header_of(m)
            self.assertNotIn(b"Bcc", head, rc)
            self.assertNotIn(b"bob@example.test\n", head.replace(b"Delivered-To: bob@example.test\n", b""))
            self.assertIn(b"\nSubject: dash t\n", head)
            self.assertRegex(head, rb"\nDate: \w{3}, \d+ \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}")
            self.assertRegex(head, rb"\nMessage-ID: <\d{14}\.\w+@mx\.example\.test>\n")
            self.assertIn(b"\nFrom: Test User <%s@%s>\n"
                          % (inst.sub_name.encode(), self.origin().encode()), head)
            self.assertRegex(head, rb"Received: by mx\.example\.test \(Postern, from userid %d\)"
                             % inst.sub_uid)
            # -i: the lone dot is content
            self.assertEqual(body_of(m), b"line one\n.\nafter the dot\n")
        inst.wait_log(r"uid=%d from=<%s@%s>" % (inst.sub_uid, re.escape(inst.sub_name),
                                                re.escape(self.origin())))
        self.assertQueueEmpty()

    def test_mail_style_stdin(self):
        """What mail(1) does: recipients as arguments, the message on stdin
        with CRLF or LF, no -i: a lone "." ends the input."""
        inst = self.inst
        msg = b"Subject: plain\r\n\r\nhello\r\n.\r\nnot sent\r\n"
        r = inst.sendmail("alice@example.test", input=msg, env_config=True)
        self.ok(r)
        m = H.wait_maildir(inst.vmaildir("alice@example.test"), inst=inst)[0]
        self.assertEqual(body_of(m), b"hello\n")
        self.assertNotIn(b"\r", m)
        self.assertIn(b"\nFrom: ", header_of(m))
        self.assertIn(b"Return-Path: <%s@%s>" % (inst.sub_name.encode(),
                                                 self.origin().encode()), m)
        self.assertQueueEmpty()

    def test_no_header_at_all(self):
        inst = self.inst
        r = inst.sendmail("bob@example.test", input=b"just a body line\nand another\n")
        self.ok(r)
        m = H.wait_maildir(inst.vmaildir("bob@example.test"), inst=inst)[0]
        self.assertEqual(body_of(m), b"just a body line\nand another\n")
        self.assertIn(b"\nMessage-ID: <", header_of(m))

    def test_pickup_keeps_its_qmgr_connection(self):
        """pickup wakes qmgr per message over one kept connection
        (trigger_keep), as smtpd does."""
        if shutil.which("ss") is None:
            self.skipTest("ss (iproute2) is not installed")
        inst = self.inst
        for i in range(2):
            self.ok(inst.sendmail("bob@example.test",
                                  input=b"Subject: kept %d\n\nbody\n" % i))
        H.wait_maildir(inst.vmaildir("bob@example.test"), count=2, inst=inst)
        pickup = set(inst.pids().get("pickup", []))
        peers = H.qmgr_trigger_peers(inst.pid_of("qmgr"))
        self.assertTrue(peers & pickup, "qmgr keeps no connection from pickup "
                        "(peers %s, pickup %s)" % (peers, pickup))

    def test_large_message_through_pickup(self):
        """Several megabytes: many frames on public/pickup, read a piece at
        a time by pickup's event loop, delivered byte for byte."""
        inst = self.inst
        body = b"".join(b"%07d " % i + b"x" * 70 + b"\n" for i in range(40000))
        r = inst.sendmail("-i", "bob@example.test",
                          input=b"Subject: big\n\n" + body)
        self.ok(r)
        m = H.wait_maildir(inst.vmaildir("bob@example.test"), inst=inst)[0]
        self.assertEqual(body_of(m), body)
        self.assertQueueEmpty()

    def test_sender_f(self):
        inst = self.inst
        r = inst.sendmail("-f", "list-owner@lists.example.org", "-oi", "carol@example.test",
                          input=b"Subject: f\n\nbody\n")
        self.ok(r)
        m = H.wait_maildir(inst.vmaildir("carol@example.test"), inst=inst)[0]
        self.assertIn(b"Return-Path: <list-owner@lists.example.org>", m)
        self.assertIn(b"\nFrom: list-owner@lists.example.org\n", header_of(m))
        inst.wait_log(r"uid=%d from=<list-owner@lists\.example\.org>" % inst.sub_uid)

    def test_blind_copies(self):
        # always_bcc and sender_bcc_maps apply to local submission too
        inst = self.inst
        inst.stop()
        inst.params["always_bcc"] = "bob@example.test"
        inst.params["sender_bcc_maps"] = ("inline:{list-owner@lists.example.org="
                                          "alice@example.test}")
        inst.start()
        r = inst.sendmail("-f", "list-owner@lists.example.org", "-oi", "carol@example.test",
                          input=b"Subject: copied\n\nbody\n")
        self.ok(r)
        for rcpt in ("carol@example.test", "bob@example.test", "alice@example.test"):
            m = H.wait_maildir(inst.vmaildir(rcpt), inst=inst)[0]
            self.assertIn(b"\nSubject: copied\n", m)
            self.assertIn(b"\nDelivered-To: %s\n" % rcpt.encode(), m)
            # a blind copy: the header names only the real recipient
            self.assertNotIn(b"alice@example.test>", header_of(m).replace(
                b"Delivered-To: alice@example.test", b""))

    def test_content_checks(self):
        # header_checks and body_checks apply to local submission too:
        # rewritten as from smtpd, logged "from local"; a REJECT is
        # accepted by sendmail and bounced to the sender, as Postfix's
        # cleanup does for local mail
        inst = self.inst
        inst.stop()
        hc = inst.write("header_checks", "/^Subject: (.*)tagged(.*)/ REPLACE "
                        "Subject: $1[tagged]$2\n/^X-Mailer:/ IGNORE\n"
                        "/^Subject: .*\\[spam\\]/ REJECT 5.7.1 Spam subject\n"
                        "/^Subject: .*review/ REDIRECT alice@example.test\n")
        inst.params["header_checks"] = "regexp:" + hc
        inst.start()
        r = inst.sendmail("-f", "bob@example.test", "-oi", "carol@example.test",
                          input=b"Subject: a tagged note\nX-Mailer: cron\n\nbody\n")
        self.ok(r)
        m = H.wait_maildir(inst.vmaildir("carol@example.test"), inst=inst)[0]
        self.assertIn(b"\nSubject: a [tagged] note\n", m)
        self.assertNotIn(b"X-Mailer", m)
        inst.wait_log(r": replace: header Subject: a tagged note from local; "
                      r"from=<bob@example.test> to=<carol@example.test>: "
                      r"Subject: a \[tagged\] note")
        r = inst.sendmail("-f", "bob@example.test", "-oi", "carol@example.test",
                          input=b"Subject: [spam] local\n\nbody\n")
        self.ok(r)
        inst.wait_log(r": reject: header Subject: \[spam\] local from local; "
                      r"from=<bob@example.test> to=<carol@example.test>: "
                      r"5\.7\.1 Spam subject")
        bounce = H.wait_maildir(inst.vmaildir("bob@example.test"), inst=inst)[0]
        self.assertIn(b"Spam subject", bounce)
        # REDIRECT: to alice instead of carol
        self.ok(inst.sendmail("-f", "bob@example.test", "-oi", "carol@example.test",
                              input=b"Subject: for review\n\nbody\n"))
        m = H.wait_maildir(inst.vmaildir("alice@example.test"), inst=inst)[0]
        self.assertIn(b"\nSubject: for review\n", m)
        inst.wait_queue_empty()
        self.assertEqual(len(H.maildir_messages(inst.vmaildir("carol@example.test"))), 1)

    def test_bs(self):
        inst = self.inst
        script = (b"EHLO client\r\n"
                  b"MAIL FROM:<%s@%s>\r\n"
                  b"RCPT TO:<alice@example.test>\r\n"
                  b"RCPT TO:<bob@example.test>\r\n"
                  b"DATA\r\n"
                  b"Subject: bs\r\n"
                  b"\r\n"
                  b"..dot-stuffed\r\n"
                  b".\r\n"
                  b"QUIT\r\n") % (inst.sub_name.encode(), self.origin().encode())
        r = inst.sendmail("-bs", input=script)
        self.ok(r)
        out = r.stdout.decode()
        self.assertTrue(out.startswith("220 "), out)
        self.assertRegex(out, r"250 2\.0\.0 Ok: queued as \w+")
        self.assertIn("221 2.0.0", out)
        for rc in ("alice@example.test", "bob@example.test"):
            m = H.wait_maildir(inst.vmaildir(rc), inst=inst)[0]
            self.assertIn(b"Subject: bs\n", m)
            self.assertEqual(body_of(m), b".dot-stuffed\n")
            self.assertIn(b"\nDate: ", header_of(m))

    def test_bs_errors(self):
        r = self.inst.sendmail("-bs", input=b"RCPT TO:<a@example.test>\r\nDATA\r\nFOO\r\n"
                                              b"MAIL FROM:<bad address>\r\nQUIT\r\n")
        self.ok(r)
        lines = r.stdout.decode().splitlines()
        self.assertEqual([ln[:3] for ln in lines], ["220", "503", "503", "502", "501", "221"])
        self.assertEqual(self.inst.all_queue_files(), [])

    # ----- daemons down ------------------------------------------------------

    def test_maildrop_when_stopped(self):
        inst = self.inst
        inst.stop()
        r = inst.sendmail("-t", input=b"To: alice@example.test\nSubject: offline\n\nkept\n")
        self.ok(r)
        r2 = inst.sendmail("bob@example.test", input=b"Subject: offline 2\n\nkept too\n")
        self.ok(r2)
        drops = [f for f in inst.all_queue_files() if f.startswith("maildrop/")]
        self.assertEqual(len(drops), 2, inst.all_queue_files())
        self.assertFalse(any(os.path.basename(f).startswith(".") for f in drops))
        inst.start(prepare=False)
        for rc, subj in (("alice@example.test", b"offline"), ("bob@example.test", b"offline 2")):
            m = H.wait_maildir(inst.vmaildir(rc), inst=inst)[0]
            self.assertIn(b"Subject: %s\n" % subj, m)
            self.assertIn(b"from userid %d" % inst.sub_uid, m)
        self.assertQueueEmpty()
        self.assertEqual([f for f in inst.all_queue_files()
                          if f.startswith(("maildrop/", "corrupt/"))], [])

    # ----- newaliases, mailq, -bv, -q --------------------------------------------

    def test_newaliases(self):
        inst = self.inst
        r = inst.sendmail("-bv", "staff@localhost")
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn(b"undeliverable", r.stdout)
        inst.aliases["staff"] = "carol@example.test"
        p = inst.path("aliases")
        with open(p, "a") as f:
            f.write("staff: carol@example.test\n")
        # the table's owner (root in privileged mode, the instance user else)
        r = inst.sendmail(prog="newaliases", as_root=self.privileged)
        self.ok(r)
        self.assertEqual(r.stderr, b"")
        r = inst.sendmail("-bv", "staff@localhost")
        self.ok(r)
        self.assertIn(b"deliverable", r.stdout)
        r = inst.sendmail("staff@localhost", input=b"Subject: via alias\n\nhi\n")
        self.ok(r)
        m = H.wait_maildir(inst.vmaildir("carol@example.test"), inst=inst)[0]
        self.assertIn(b"Subject: via alias\n", m)

    def test_newaliases_not_owner(self):
        if not self.privileged:
            self.skipTest("the submitter owns the table in unprivileged mode")
        r = self.inst.sendmail(prog="newaliases")
        self.assertEqual(r.returncode, 77, r.stderr)
        self.assertEqual(len(r.stderr.decode().strip().splitlines()), 1, r.stderr)

    def test_mailq_and_flush(self):
        inst = self.inst
        r = inst.sendmail(prog="mailq")
        self.assertEqual(r.returncode, 0, r.stderr)
        r2 = inst.sendmail("-bp")
        self.assertEqual(r2.returncode, 0, r2.stderr)
        self.assertEqual(r.stdout, r2.stdout)
        r = inst.sendmail("-q")
        self.ok(r)

    # ----- errors ----------------------------------------------------------------

    def test_too_many_hops(self):
        # pickup counts its own Received: too, like smtpd and Postfix's
        # cleanup: 49 from the message reach hopcount_limit (50).
        hop = b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\n"
        r = self.inst.sendmail("alice@example.test", input=hop * 49 + b"Subject: loop\n\nx\n")
        self.assertEqual(r.returncode, EX_DATAERR, r.stderr)
        self.assertIn("too many hops", r.stderr.decode())
        self.assertEqual(self.inst.all_queue_files(), [])
        r = self.inst.sendmail("alice@example.test", input=hop * 48 + b"Subject: ok\n\nx\n")
        self.ok(r)

    def test_bad_option(self):
        r = self.inst.sendmail("-Z", "alice@example.test", input=b"x\n")
        self.assertEqual(r.returncode, EX_USAGE)
        lines = r.stderr.decode().strip().splitlines()
        self.assertEqual(lines, ["sendmail: unknown option -Z"])
        self.assertEqual(self.inst.all_queue_files(), [])

    def test_usage_errors(self):
        cases = [
            ((), b"Subject: x\n\n", EX_USAGE, "no recipients"),
            (("-t",), b"Subject: no rcpt\n\nx\n", EX_USAGE, "no recipient"),
            (("-f",), b"", EX_USAGE, "requires an argument"),
            (("-N", "sometimes", "a@example.test"), b"", EX_USAGE, "-N"),
            (("-bd",), b"", EX_USAGE, "postern start"),
            (("John Smith",), b"x\n", EX_DATAERR, "John Smith"),
            (("-t",), b"To: <broken\n\nx\n", EX_DATAERR, "To:"),
        ]
        for args, data, code, text in cases:
            r = self.inst.sendmail(*args, input=data)
            self.assertEqual(r.returncode, code, (args, r.stderr))
            lines = r.stderr.decode().strip().splitlines()
            self.assertEqual(len(lines), 1, (args, lines))
            self.assertIn(text, lines[0])
            self.assertTrue(lines[0].startswith("sendmail: "), lines)
        self.assertEqual(self.inst.all_queue_files(), [])

    def test_unreadable_input(self):
        d = os.open("/", os.O_RDONLY)   # read() on a directory: EISDIR
        try:
            r = self.inst.sendmail("alice@example.test", stdin=d)
        finally:
            os.close(d)
        self.assertEqual(r.returncode, EX_IOERR, r.stderr)
        self.assertEqual(len(r.stderr.decode().strip().splitlines()), 1, r.stderr)
        time.sleep(0.5)
        self.assertEqual(self.inst.all_queue_files(), [])
        self.assertEqual(H.maildir_messages(self.inst.vmaildir("alice@example.test")), [])

    def test_bad_config_dir(self):
        r = self.inst.sendmail("-C", "/nonexistent/dir", "a@example.test", input=b"x\n")
        self.assertEqual(r.returncode, 78, r.stderr)

    def test_hostile_maildrop_file(self):
        """A file that is not a submission goes to corrupt/, is not queued."""
        inst = self.inst
        r = inst.sendmail("-C", inst.dir, "alice@example.test", input=b"Subject: ok\n\nok\n")
        self.ok(r)
        H.wait_maildir(inst.vmaildir("alice@example.test"), inst=inst)
        junk = inst.path("queue", "maildrop", "junkfile")
        kw = {}
        if H.is_root():
            kw.update(user=inst.sub_uid, group=inst.sub_gid, extra_groups=[])
        subprocess.run(["sh", "-c", "printf 'garbage' > %s" % junk], check=True, **kw)
        subprocess.run([os.path.join(inst.bindir, "sendmail"), "-C", inst.dir, "-q"], **kw)
        # pickup wakes every 60 s at most; poke it the way sendmail does
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.connect(inst.path("queue", "public", "pickup"))
        s.sendall(b"W")
        s.close()
        deadline = time.time() + 20
        while os.path.exists(junk) and time.time() < deadline:
            time.sleep(0.2)
        self.assertFalse(os.path.exists(junk))
        self.assertTrue(os.path.exists(inst.path("queue", "corrupt", "maildrop.junkfile")))


class TestSendmailPrivileged(SendmailCases, H.InstanceTestCase):
    privileged = True


class TestSendmailUnprivileged(SendmailCases, H.InstanceTestCase):
    privileged = False


if __name__ == "__main__":
    H.main()

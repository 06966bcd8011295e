#!/usr/bin/env python3
"""
Delivery end to end: real SMTP clients (smtplib, swaks, raw sockets)
against a real instance, then the bytes in the mailboxes, the reply codes,
the Postfix-style log lines, and an empty queue at the end.

Unprivileged cases run everywhere (as the caller, or as "ptunpriv" when
the test runs as root). Privileged cases (system users, mbox, .forward)
need root and are skipped otherwise.
"""

import os
import re
import smtplib
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

SENDER = "sender@client.example"
BODY = ("Hello,\r\n"
        "this is line two.\r\n"
        ".hidden line starts with a dot\r\n"
        "..two dots\r\n"
        "\r\n"
        "-- \r\n"
        "end\r\n")


def setUpModule():
    H.require_binaries()


def lf(b):
    return b.replace(b"\r\n", b"\n")


def send(inst, rcpts, subject, body=BODY, sender=SENDER, source=None, port=None):
    """One message over smtplib; returns (data code, data text, message)."""
    msg = H.make_message(sender, rcpts, subject, body)
    s = H.smtp_client(inst, source=source, port=port)
    try:
        code, text = s.mail(sender)
        assert code == 250, (code, text)
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, (r, code, text)
        code, text = s.data(msg)
        s.quit()
    finally:
        s.close()
    return code, text.decode("utf-8", "replace"), msg


def queue_id_from(text):
    m = re.search(r"queued as ([0-9A-Za-z]+)", text)
    return m.group(1) if m else None


class Common:
    def assertDelivered(self, data, rcpt, subject, body=BODY, sender=SENDER):
        self.assertTrue(data.startswith(b"Return-Path: <%s>\n" % sender.encode()),
                        "Return-Path first: %r" % data[:200])
        head, sep, got_body = data.partition(b"\n\n")
        self.assertTrue(sep, "no header/body separator: %r" % data[:500])
        self.assertIn(b"\nDelivered-To: %s\n" % rcpt.encode(), head + b"\n")
        self.assertRegex(head, rb"\nReceived: from [^\n]*(\n[ \t][^\n]*)*by mx\.example\.test")
        self.assertIn(b"\nSubject: %s\n" % subject.encode(), head)
        # The body arrives unchanged but for LF line ends and dot-unstuffing.
        self.assertEqual(got_body, lf(body.encode()))
        self.assertNotIn(b"\r", data)

    def assertLogSent(self, rcpt, qid=None, count=1):
        rx = r"postern/\w+\[\d+\]: %s: to=<%s>,.*status=sent" % (
            re.escape(qid) if qid else r"[0-9A-Za-z]+", re.escape(rcpt))
        return self.inst.wait_log(rx, count=count)


class UnprivilegedDelivery(Common, H.InstanceTestCase):
    def setUp(self):
        self.inst = self.make_instance(privileged=False,
                                       conf=getattr(self, "CONF", None))
        self.inst.aliases.update({
            "team": "alice@example.test, bob@example.test",
            "pipe": "|" + self.inst.path("bin", "save-pipe"),
            "tofile": self.inst.path("out", "file.mbox"),
        })
        self.inst.write_script("save-pipe", "cat > %s\n" % self.inst.path("out", "pipe.txt"))
        self.inst.start()

    def test_smtplib_to_virtual_maildir(self):
        code, text, _ = send(self.inst, ["alice@example.test"], "smtplib one")
        self.assertEqual(code, 250, text)
        qid = queue_id_from(text)
        msgs = H.wait_maildir(self.inst.vmaildir("alice@example.test"), inst=self.inst)
        self.assertEqual(len(msgs), 1)
        self.assertDelivered(msgs[0], "alice@example.test", "smtplib one")
        self.assertLogSent("alice@example.test", qid)
        self.inst.wait_log(r"postern/smtpd\[\d+\]: [0-9A-Za-z]+: client=")
        self.assertQueueEmpty()
        self.assertEqual(H.maildir_messages(self.inst.vmaildir("bob@example.test")), [])

    def test_swaks_to_virtual_maildir(self):
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % self.inst.port,
                            "--helo", "client.example", "--from", SENDER,
                            "--to", "bob@example.test", "--header", "Subject: swaks one",
                            "--body", "hello from swaks"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"<-  250 2\.0\.0 .*queued as")
        msgs = H.wait_maildir(self.inst.vmaildir("bob@example.test"), inst=self.inst)
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"Subject: swaks one\n", msgs[0])
        self.assertIn(b"\n\nhello from swaks\n", msgs[0])
        self.assertIn(b"Delivered-To: bob@example.test\n", msgs[0])
        self.assertLogSent("bob@example.test")
        self.assertQueueEmpty()

    def test_swaks_pipelining(self):
        r = subprocess.run(["swaks", "--pipeline", "--server", "127.0.0.1:%d" % self.inst.port,
                            "--helo", "client.example", "--from", SENDER,
                            "--to", "carol@example.test", "--header", "Subject: swaks pipe",
                            "--body", "pipelined by swaks"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        msgs = H.wait_maildir(self.inst.vmaildir("carol@example.test"), inst=self.inst)
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"pipelined by swaks", msgs[0])
        self.assertQueueEmpty()

    def test_several_recipients_one_message(self):
        rcpts = ["alice@example.test", "bob@example.test", "carol@example.test"]
        code, text, _ = send(self.inst, rcpts, "three rcpts")
        self.assertEqual(code, 250, text)
        qid = queue_id_from(text)
        for r in rcpts:
            msgs = H.wait_maildir(self.inst.vmaildir(r), inst=self.inst)
            self.assertEqual(len(msgs), 1, r)
            self.assertDelivered(msgs[0], r, "three rcpts")
            self.assertLogSent(r, qid)
        self.assertQueueEmpty()
        if qid:
            self.inst.wait_log(r"%s: removed" % qid)

    def test_pipelined_raw(self):
        """RFC 2920: MAIL, RCPTs and DATA in one write, then the content
        and QUIT in one write; replies come back in order."""
        c = H.RawSMTP(self.inst.port)
        try:
            self.assertEqual(c.reply()[0], 220)
            code, lines = c.cmd("EHLO client.example")
            self.assertEqual(code, 250)
            self.assertIn("PIPELINING", [l.split()[0].upper() for l in lines[1:] if l])
            c.send("MAIL FROM:<%s>\r\nRCPT TO:<alice@example.test>\r\n"
                   "RCPT TO:<nosuch@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
                   "DATA\r\n" % SENDER)
            codes = [c.reply()[0] for _ in range(5)]
            self.assertEqual(codes, [250, 250, 550, 250, 354])
            msg = H.make_message(SENDER, ["alice@example.test"], "pipelined raw", BODY)
            c.send(H.dot_stuff(msg) + b".\r\nQUIT\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 250, lines)
            self.assertEqual(c.reply()[0], 221)
        finally:
            c.close()
        for r in ("alice@example.test", "bob@example.test"):
            msgs = H.wait_maildir(self.inst.vmaildir(r), inst=self.inst)
            self.assertEqual(len(msgs), 1)
            self.assertDelivered(msgs[0], r, "pipelined raw")
        self.assertQueueEmpty()

    def test_envelope_without_angle_brackets(self):
        """strict_rfc821_envelopes = no (the default, as in Postfix): old
        scripts and appliances that send MAIL FROM:addr and RCPT TO:addr
        get their mail delivered; the address must still be valid."""
        c = H.RawSMTP(self.inst.port)
        try:
            self.assertEqual(c.reply()[0], 220)
            self.assertEqual(c.cmd("EHLO client.example")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:u@@client.example")[0], 501)
            self.assertEqual(c.cmd("MAIL FROM:%s SIZE=100" % SENDER)[0], 250)
            self.assertEqual(c.cmd("RCPT TO:nosuch@example.test")[0], 550)
            self.assertEqual(c.cmd("RCPT TO: alice@example.test")[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            msg = H.make_message(SENDER, ["alice@example.test"], "bare envelope", BODY)
            c.send(H.dot_stuff(msg) + b".\r\n")
            self.assertEqual(c.reply()[0], 250)
            self.assertEqual(c.cmd("QUIT")[0], 221)
        finally:
            c.close()
        msgs = H.wait_maildir(self.inst.vmaildir("alice@example.test"), inst=self.inst)
        self.assertEqual(len(msgs), 1)
        self.assertDelivered(msgs[0], "alice@example.test", "bare envelope")

    def test_pipelined_ehlo_to_data_one_write(self):
        """EHLO through DATA in one write after the greeting (what many
        clients do; Postfix accepts it by default), then the content and
        QUIT in one write."""
        c = H.RawSMTP(self.inst.port)
        try:
            self.assertEqual(c.reply()[0], 220)
            c.send("EHLO client.example\r\nMAIL FROM:<%s>\r\n"
                   "RCPT TO:<carol@example.test>\r\nDATA\r\n" % SENDER)
            self.assertEqual([c.reply()[0] for _ in range(4)], [250, 250, 250, 354])
            msg = H.make_message(SENDER, ["carol@example.test"], "one write", BODY)
            c.send(H.dot_stuff(msg) + b".\r\nQUIT\r\n")
            self.assertEqual(c.reply()[0], 250)
            self.assertEqual(c.reply()[0], 221)
        finally:
            c.close()
        msgs = H.wait_maildir(self.inst.vmaildir("carol@example.test"), inst=self.inst)
        self.assertEqual(len(msgs), 1)
        self.assertDelivered(msgs[0], "carol@example.test", "one write")
        self.assertQueueEmpty()

    def test_unknown_users(self):
        s = H.smtp_client(self.inst)
        try:
            self.assertEqual(s.mail(SENDER)[0], 250)
            code, text = s.rcpt("nosuch@example.test")
            self.assertEqual(code, 550, text)
            self.assertTrue(text.startswith(b"5.1.1"), text)
            code, text = s.rcpt("nosuch-user-xyz@localhost")
            self.assertEqual(code, 550, text)
            self.assertTrue(text.startswith(b"5.1.1"), text)
            # the session goes on
            self.assertEqual(s.rcpt("alice@example.test")[0], 250)
            s.rset()
            s.quit()
        finally:
            s.close()
        self.inst.wait_log(r"reject: RCPT from [^:]*: 550 5\.1\.1 <nosuch@example\.test>")
        self.assertQueueEmpty()

    def test_relay_denied_outside_mynetworks(self):
        self.inst.stop()
        self.inst.params["mynetworks"] = "127.0.0.2/32"
        self.inst.start()
        # from 127.0.0.1: not in mynetworks
        s = H.smtp_client(self.inst, source="127.0.0.1")
        try:
            self.assertEqual(s.mail(SENDER)[0], 250)
            code, text = s.rcpt("someone@remote.example")
            # Postfix 3.x smtpd_relay_restrictions: defer_unauth_destination
            self.assertEqual(code, 454, text)
            self.assertTrue(text.startswith(b"4.7.1"), text)
            # local domains are still accepted from anywhere
            self.assertEqual(s.rcpt("alice@example.test")[0], 250)
            s.rset()
            s.quit()
        finally:
            s.close()
        self.inst.wait_log(r"reject: RCPT from [^:]*: 454 4\.7\.1 <someone@remote\.example>: "
                           r"Relay access denied")
        # from 127.0.0.2: a trusted network may relay
        s = H.smtp_client(self.inst, source="127.0.0.2")
        try:
            self.assertEqual(s.mail(SENDER)[0], 250)
            code, text = s.rcpt("someone@remote.example")
            self.assertEqual(code, 250, text)
            s.rset()
            s.quit()
        finally:
            s.close()
        self.assertQueueEmpty()

    def test_alias_list_to_virtual(self):
        code, text, _ = send(self.inst, ["team@localhost"], "alias list")
        self.assertEqual(code, 250, text)
        for r in ("alice@example.test", "bob@example.test"):
            msgs = H.wait_maildir(self.inst.vmaildir(r), inst=self.inst)
            self.assertEqual(len(msgs), 1)
            self.assertIn(b"Subject: alias list\n", msgs[0])
            self.assertIn(b"Delivered-To: %s\n" % r.encode(), msgs[0])
        self.assertQueueEmpty()

    def test_alias_command(self):
        code, text, _ = send(self.inst, ["pipe@localhost"], "pipe test")
        self.assertEqual(code, 250, text)
        out = self.inst.path("out", "pipe.txt")
        data = H.wait_file(out, lambda b: b.endswith(lf(BODY.encode())), inst=self.inst)
        head, _, body = data.partition(b"\n\n")
        self.assertEqual(body, lf(BODY.encode()))
        self.assertIn(b"Subject: pipe test\n", head)
        self.assertIn(b"Delivered-To: pipe@localhost\n", head)
        self.assertNotIn(b"\r", data)
        self.assertLogSent("pipe@localhost")
        self.assertQueueEmpty()

    def test_large_message_intact(self):
        """A message larger than one queue content record (1 MiB) comes
        out byte for byte, with 8-bit and long-ish lines."""
        lines = []
        for i in range(40000):
            lines.append("%06d %s caf\u00e9 \u00fcber %s\r\n" % (i, "x" * (i % 50), "y" * 20))
        body = "".join(lines)
        rcpt = "carol@example.test"
        msg = H.make_message(SENDER, [rcpt], "large", body)
        self.assertGreater(len(msg), 2 * 1024 * 1024)
        s = H.smtp_client(self.inst)
        try:
            self.assertEqual(s.sendmail(SENDER, [rcpt], msg, mail_options=["BODY=8BITMIME"]), {})
            s.quit()
        finally:
            s.close()
        msgs = H.wait_maildir(self.inst.vmaildir(rcpt), inst=self.inst)
        self.assertEqual(len(msgs), 1)
        head, _, got = msgs[0].partition(b"\n\n")
        self.assertEqual(got, lf(body.encode()))
        self.assertQueueEmpty()

    def test_bounce_to_sender(self):
        """An undeliverable recipient (an alias to a user that does not
        exist) bounces: the sender gets an RFC 3464 report."""
        self.inst.stop()
        self.inst.aliases["broken"] = "no-such-user-xyz"
        self.inst.start()
        sender = "alice@example.test"
        code, text, _ = send(self.inst, ["broken@localhost"], "will bounce", sender=sender)
        self.assertEqual(code, 250, text)
        msgs = H.wait_maildir(self.inst.vmaildir(sender), inst=self.inst)
        self.assertEqual(len(msgs), 1)
        dsn = msgs[0]
        self.assertTrue(dsn.startswith(b"Return-Path: <>\n"), dsn[:100])
        self.assertRegex(dsn, rb"(?i)content-type: multipart/report;\s*report-type=\"?delivery-status")
        self.assertRegex(dsn, rb"(?i)\nAction: failed\n")
        self.assertRegex(dsn, rb"(?i)\nStatus: 5\.\d\.\d+\n")
        self.assertIn(b"Subject: will bounce", dsn)
        self.inst.wait_log(r"status=bounced")
        self.assertQueueEmpty()

    def test_failed_bounce_goes_to_postmaster(self):
        """A notification that cannot be delivered (null sender) has
        nobody to go back to. By default (notify_classes = resource,
        software, as in Postfix) that is logged and the end of it; with
        2bounce the postmaster gets a copy, from double-bounce@$myorigin;
        should that copy fail too, it is dropped with a log line, not
        looped."""
        self.inst.stop()
        self.inst.aliases["broken"] = "no-such-user-xyz"
        self.inst.aliases["postmaster"] = "alice@example.test"
        self.inst.start()
        code, text, _ = send(self.inst, ["broken@localhost"], "dropped", sender="")
        self.assertEqual(code, 250, text)
        self.inst.wait_log(r"%s: undeliverable mail from the null sender, notification "
                           r"discarded" % queue_id_from(text))
        self.assertQueueEmpty()
        self.assertEqual(H.maildir_messages(self.inst.vmaildir("alice@example.test")), [])

        self.inst.stop()
        self.inst.params["notify_classes"] = "resource, software, 2bounce"
        self.inst.start()
        code, text, _ = send(self.inst, ["broken@localhost"], "a bounce that bounces",
                             sender="")
        self.assertEqual(code, 250, text)
        qid = queue_id_from(text)
        msgs = H.wait_maildir(self.inst.vmaildir("alice@example.test"), inst=self.inst)
        self.assertEqual(len(msgs), 1)
        pm = msgs[0]
        self.assertTrue(pm.startswith(b"Return-Path: <double-bounce@mx.example.test>\n"),
                        pm[:100])
        self.assertIn(b"\nSubject: Postmaster Copy: Undelivered Mail\n", pm)
        self.assertIn(b"\nFinal-Recipient: rfc822; broken@localhost\n", pm)
        self.assertIn(b"Subject: a bounce that bounces", pm)
        self.inst.wait_log(r"%s: postmaster non-delivery notification: " % qid)
        self.assertQueueEmpty()

        # The postmaster cannot be reached either: the end of the line.
        self.inst.stop()
        self.inst.aliases["postmaster"] = "no-such-user-pm"
        self.inst.start()
        mark = self.inst.log_mark()
        code, text, _ = send(self.inst, ["broken@localhost"], "nobody at all", sender="")
        self.assertEqual(code, 250, text)
        m = self.inst.wait_log(r"postmaster non-delivery notification: ([0-9A-Za-z]+)",
                               since=mark)[0]
        self.inst.wait_log(r"%s: undeliverable postmaster notification discarded"
                           % m.group(1), since=mark)
        self.assertQueueEmpty()
        self.assertEqual(len(H.maildir_messages(self.inst.vmaildir("alice@example.test"))), 1)

    def test_alias_file(self):
        code, text, _ = send(self.inst, ["tofile@localhost"], "file test")
        self.assertEqual(code, 250, text)
        out = self.inst.path("out", "file.mbox")
        data = H.wait_file(out, lambda b: b"file test" in b, inst=self.inst)
        self.assertTrue(data.startswith(b"From %s " % SENDER.encode()), data[:100])
        self.assertIn(b"Subject: file test\n", data)
        self.assertQueueEmpty()


class StrictEnvelopes(Common, H.InstanceTestCase):
    def setUp(self):
        self.inst = self.make_instance(conf={"strict_rfc821_envelopes": "yes"})
        self.inst.start()

    def test_brackets_required(self):
        c = H.RawSMTP(self.inst.port)
        try:
            self.assertEqual(c.reply()[0], 220)
            self.assertEqual(c.cmd("EHLO client.example")[0], 250)
            code, lines = c.cmd("MAIL FROM:%s" % SENDER)
            self.assertEqual(code, 501, lines)
            self.assertIn("5.1.7", lines[0])
            self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER)[0], 250)
            code, lines = c.cmd("RCPT TO:alice@example.test")
            self.assertEqual(code, 501, lines)
            self.assertEqual(c.cmd("RCPT TO:<alice@example.test>")[0], 250)
        finally:
            c.close()


class SoftBounce(Common, H.InstanceTestCase):
    """soft_bounce = yes (Postfix's safety net while a configuration is
    tried): smtpd's 5xx replies go out as 4xx, and what would bounce at
    delivery stays queued, deferred, with no notice to the sender."""

    def setUp(self):
        self.inst = self.make_instance(conf={"soft_bounce": "yes"})
        self.inst.aliases["broken"] = "no-such-user-xyz"
        self.inst.start()

    def test_nothing_is_refused_for_good(self):
        inst = self.inst
        c = H.RawSMTP(inst.port)
        try:
            self.assertEqual(c.reply()[0], 220)
            self.assertEqual(c.cmd("EHLO client.example")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER)[0], 250)
            code, lines = c.cmd("RCPT TO:<nosuch@example.test>")
            self.assertEqual(code, 450, lines)
            self.assertTrue(lines[0].startswith("4.1.1"), lines)
            self.assertEqual(c.cmd("BOGUS")[0], 402)
        finally:
            c.close()
        code, text, _ = send(inst, ["broken@localhost"], "kept", sender="alice@example.test")
        self.assertEqual(code, 250, text)
        qid = queue_id_from(text)
        inst.wait_log(r"%s: to=<broken@localhost>, .*dsn=4\.1\.1, status=deferred "
                      r"\(.*unknown user" % qid, count=2, timeout=30)
        self.assertNotRegex(inst.log(), r"status=bounced|non-delivery notification")
        self.assertTrue(any(qid in f for f in inst.queue_files()), inst.queue_files())
        self.assertEqual(H.maildir_messages(inst.vmaildir("alice@example.test")), [])


class BlindCopies(Common, H.InstanceTestCase):
    """always_bcc, sender_bcc_maps and recipient_bcc_maps as in Postfix:
    each message gets its copies as extra recipients, once each, not to a
    recipient it already has, through virtual_alias_maps, with
    NOTIFY=NEVER so a failed copy never reaches the sender."""

    def setUp(self):
        inst = self.make_instance(conf={
            "always_bcc": "archive",                      # @$myorigin added
            "sender_bcc_maps": "inline:{alice@example.test=sent@example.test}",
            "recipient_bcc_maps": "inline:{@example.test=inbound@example.test}",
            "virtual_alias_maps": "inline:{inbound@example.test=carol@example.test}",
            "myorigin": "example.test"})
        inst.vmailbox["archive@example.test"] = "example.test/archive/"
        inst.vmailbox["sent@example.test"] = "example.test/sent/"
        inst.start()

    def test_copies(self):
        inst = self.inst
        code, text, _ = send(inst, ["bob@example.test"], "copied",
                             sender="alice@example.test")
        self.assertEqual(code, 250, text)
        qid = queue_id_from(text)
        for rcpt in ("bob@example.test", "archive@example.test", "sent@example.test",
                     "carol@example.test"):
            self.assertDelivered(H.wait_maildir(inst.vmaildir(rcpt), 1, 30, inst)[0],
                                 rcpt, "copied", sender="alice@example.test")
        # the recipient_bcc_maps copy went through virtual_alias_maps
        inst.wait_log(r"%s: to=<carol@example.test>, orig_to=<inbound@example.test>, "
                      r".*status=sent" % qid)
        inst.wait_queue_empty()
        # no recipient twice: a second message to a copy's own address
        # (the archive) and from another sender gets no second archive copy
        code, text, _ = send(inst, ["archive@example.test"], "once")
        self.assertEqual(code, 250, text)
        qid = queue_id_from(text)
        self.assertLogSent("archive@example.test", qid)
        inst.wait_queue_empty()
        subjects = [m for m in H.maildir_messages(inst.vmaildir("archive@example.test"))
                    if b"\nSubject: once\n" in m]
        self.assertEqual(len(subjects), 1)
        self.assertEqual(len(H.maildir_messages(inst.vmaildir("sent@example.test"))), 1)

    def test_failed_copy_tells_nobody(self):
        inst = self.inst
        inst.params["always_bcc"] = "nobody-here@example.test"
        inst.stop()
        inst.start()
        code, text, _ = send(inst, ["bob@example.test"], "lost copy",
                             sender="alice@example.test")
        self.assertEqual(code, 250, text)
        qid = queue_id_from(text)
        inst.wait_log(r"%s: to=<nobody-here@example.test>, .*status=bounced" % qid)
        self.assertLogSent("bob@example.test", qid)
        inst.wait_queue_empty()
        self.assertNotRegex(inst.log(), r"%s: sender non-delivery notification" % qid)
        alice = [m for m in H.maildir_messages(inst.vmaildir("alice@example.test"))
                 if b"Undelivered" in m]
        self.assertEqual(alice, [])


class DelayWarning(Common, H.InstanceTestCase):
    """delay_warning_time: once a message has waited that long, its sender
    is told once which recipients are still being tried; a recipient that
    asked for NOTIFY=FAILURE only is left out."""

    def setUp(self):
        self.inst = self.make_instance(conf={"delay_warning_time": "2s"})
        self.inst.aliases["tempfail"] = "|" + self.inst.path("bin", "tempfail")
        self.inst.write_script("tempfail", "cat >/dev/null\nexit 75\n")
        self.inst.start()

    def test_sender_warned_once(self):
        inst, sender = self.inst, "alice@example.test"
        code, text, _ = send(inst, ["tempfail@localhost"], "still trying", sender=sender)
        self.assertEqual(code, 250, text)
        warned = queue_id_from(text)
        s = H.smtp_client(inst)
        try:
            s.mail(sender)
            self.assertEqual(s.rcpt("tempfail@localhost", ["NOTIFY=FAILURE"])[0], 250)
            code, text = s.data(H.make_message(sender, ["tempfail@localhost"],
                                               "no warning wanted", BODY))
            self.assertEqual(code, 250, text)
            s.quit()
        finally:
            s.close()
        quiet = queue_id_from(text.decode())
        msgs = H.wait_maildir(inst.vmaildir(sender), inst=inst, timeout=60)
        # Both go on being retried after the warning ...
        for qid in (warned, quiet):
            inst.wait_log(r"%s: to=<tempfail@localhost>.*dsn=4\.3\.0, status=deferred" % qid,
                          count=5, timeout=60)
        msgs = H.maildir_messages(inst.vmaildir(sender))
        # ... and there was one warning, for the first only.
        self.assertEqual(len(msgs), 1, msgs)
        w = msgs[0]
        self.assertTrue(w.startswith(b"Return-Path: <>\n"), w[:100])
        self.assertIn(b"\nSubject: Delayed Mail (still being retried)\n", w)
        self.assertIn(b"\nX-Postern-Queue-ID: %s\n" % warned.encode(), w)
        self.assertIn(b"\nFinal-Recipient: rfc822; tempfail@localhost\n", w)
        self.assertIn(b"\nAction: delayed\n", w)
        self.assertIn(b"\nStatus: 4.3.0\n", w)
        self.assertRegex(w, rb"\nWill-Retry-Until: \w{3}, ")
        self.assertIn(b"Subject: still trying", w)
        self.assertNotIn(BODY.encode().splitlines()[0], w.split(b"\nSubject: still trying")[1])
        log = inst.log()
        self.assertEqual(len(re.findall(r"%s: sender delay notification: " % warned, log)), 1)
        self.assertNotIn("%s: sender delay notification" % quiet, log)
        # The mark is in the queue file: a restart does not warn again.
        path = [os.path.join(inst.path("queue"), f) for f in inst.queue_files()
                if f.endswith(warned)][0]
        with open(path, "rb") as f:
            self.assertRegex(f.read(), rb"(?s)R.{4}Wtempfail@localhost\x00")
        mark = inst.log_mark()
        inst.stop()
        inst.start()
        inst.wait_log(r"%s: to=<tempfail@localhost>.*status=deferred" % warned,
                      since=mark, count=2, timeout=60)
        self.assertNotRegex(inst.log()[mark:], r"%s: sender delay notification" % warned)
        self.assertEqual(len(H.maildir_messages(inst.vmaildir(sender))), 1)


class SizeLimit(Common, H.InstanceTestCase):
    def setUp(self):
        self.inst = self.make_instance(conf={"message_size_limit": "20000"})
        self.inst.start()

    def test_size_limits(self):
        # Advertised, and enforced at MAIL FROM ... SIZE=
        s = H.smtp_client(self.inst)
        try:
            self.assertTrue(s.has_extn("size"))
            self.assertEqual(s.esmtp_features["size"].strip(), "20000")
            big = H.make_message(SENDER, ["alice@example.test"], "too big", "", size=40000)
            with self.assertRaises(smtplib.SMTPSenderRefused) as cm:
                s.sendmail(SENDER, ["alice@example.test"], big)
            self.assertEqual(cm.exception.smtp_code, 552)
            self.assertTrue(cm.exception.smtp_error.startswith(b"5.3.4"), cm.exception.smtp_error)
            s.quit()
        finally:
            s.close()
        # Without SIZE=, enforced on the content itself at end of DATA.
        c = H.RawSMTP(self.inst.port)
        try:
            c.reply()
            c.cmd("EHLO client.example")
            self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER)[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<alice@example.test>")[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(big + b".\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 552, lines)
            self.assertTrue(lines[0].startswith("5.3.4"), lines)
            # and the session is usable afterwards
            self.assertEqual(c.cmd("RSET")[0], 250)
            self.assertEqual(c.cmd("QUIT")[0], 221)
        finally:
            c.close()
        # Just under the limit goes through.
        code, text, _ = send(self.inst, ["alice@example.test"], "fits",
                             body="x" * 60 + "\r\n" * 1)
        self.assertEqual(code, 250, text)
        msgs = H.wait_maildir(self.inst.vmaildir("alice@example.test"), inst=self.inst)
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"Subject: fits\n", msgs[0])
        self.assertQueueEmpty()


class Smuggling(Common, H.InstanceTestCase):
    """End of data is only CRLF.CRLF: a bare-LF or bare-CR "dot line"
    followed by SMTP commands must not end the message and must not run
    the commands (CVE-2023-51764 class). Normalising the message or
    refusing it are both fine; a second transaction is not."""

    PROBES = [
        ("lf-dot-lf", b"\n.\n"),
        ("lf-dot-crlf", b"\n.\r\n"),
        ("crlf-dot-lf", b"\r\n.\n"),
        ("cr-dot-cr", b"\r.\r"),
        ("cr-dot-crlf", b"\r.\r\n"),
    ]

    def setUp(self):
        self.inst = self.make_instance()
        self.inst.start()

    def probe(self, name, seq):
        c = H.RawSMTP(self.inst.port)
        accepted = False
        try:
            c.reply()
            c.cmd("EHLO client.example")
            self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER)[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<alice@example.test>")[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            smuggled = (b"MAIL FROM:<evil@attacker.example>\r\n"
                        b"RCPT TO:<bob@example.test>\r\n"
                        b"DATA\r\n"
                        b"Subject: smuggled " + name.encode() + b"\r\n\r\nsmuggled body\r\n")
            msg = (b"Subject: probe " + name.encode() + b"\r\n\r\nfirst part" + seq
                   + smuggled + b".\r\n")
            c.send(msg)
            try:
                code, lines = c.reply()
            except EOFError:
                code, lines = None, ["connection closed"]
            if code is not None and code < 400:
                self.assertEqual(code, 250, lines)
                accepted = True
            # Nothing else may be pending: QUIT gets exactly 221.
            try:
                c.send(b"QUIT\r\n")
                code2, lines2 = c.reply()
                self.assertEqual(code2, 221, "reply after the message: %d %s "
                                 "(smuggled commands executed?)" % (code2, lines2))
            except (EOFError, OSError):
                self.assertFalse(accepted, "connection dropped after 250")
        finally:
            c.close()
        return accepted

    def test_smuggling_probes(self):
        accepted = 0
        results = {}
        for name, seq in self.PROBES:
            ok = self.probe(name, seq)
            results[name] = "accepted" if ok else "refused"
            accepted += ok
        sys.stderr.write("smuggling probes: %s\n" % results)
        if accepted:
            msgs = H.wait_maildir(self.inst.vmaildir("alice@example.test"),
                                  count=accepted, inst=self.inst)
        self.inst.wait_queue_empty(30)
        msgs = H.maildir_messages(self.inst.vmaildir("alice@example.test"))
        self.assertEqual(len(msgs), accepted)
        for m in msgs:
            # the would-be commands stayed inside the message
            self.assertIn(b"MAIL FROM:<evil@attacker.example>", m)
            self.assertIn(b"first part", m)
        self.assertEqual(H.maildir_messages(self.inst.vmaildir("bob@example.test")), [],
                         "a smuggled message was delivered")
        self.assertNotIn("evil@attacker.example>, size", self.inst.log())


class Robustness(Common, H.InstanceTestCase):
    def setUp(self):
        self.inst = self.make_instance()
        self.inst.start()

    def test_parallel_sessions_exactly_once(self):
        """20 sessions at once, 10 messages each: every message arrives
        once, none twice, and the queue drains."""
        import threading
        errors = []

        def worker(w):
            try:
                s = H.smtp_client(self.inst)
                for k in range(10):
                    msg = H.make_message(SENDER, ["bob@example.test"], "par-%02d-%02d" % (w, k),
                                         "x" * 3000 + "\r\n")
                    refused = s.sendmail(SENDER, ["bob@example.test"], msg)
                    if refused:
                        errors.append(refused)
                s.quit()
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        msgs = H.wait_maildir(self.inst.vmaildir("bob@example.test"), count=200,
                              timeout=60, inst=self.inst)
        self.inst.wait_queue_empty(30)
        msgs = H.maildir_messages(self.inst.vmaildir("bob@example.test"))
        subjects = sorted(re.search(rb"\nSubject: (par-\d+-\d+)\n", m).group(1) for m in msgs)
        self.assertEqual(len(subjects), 200)
        self.assertEqual(len(set(subjects)), 200, "duplicates delivered")

    def test_map_rebuilt_while_running(self):
        """A rebuilt virtual_mailbox_maps is seen without a reload."""
        s = H.smtp_client(self.inst)
        try:
            s.mail(SENDER)
            self.assertEqual(s.rcpt("dave@example.test")[0], 550)
            s.rset()
            self.inst.vmailbox["dave@example.test"] = "example.test/dave/"
            self.inst.write_maps()
            time.sleep(1.1)  # a new mtime, even on coarse clocks
            s.mail(SENDER)
            code, text = s.rcpt("dave@example.test")
            self.assertEqual(code, 250, text)
            self.assertEqual(s.data(H.make_message(SENDER, ["dave@example.test"], "new user",
                                                   "hi\r\n"))[0], 250)
            s.quit()
        finally:
            s.close()
        msgs = H.wait_maildir(self.inst.path("vmail", "example.test", "dave"), inst=self.inst)
        self.assertEqual(len(msgs), 1)
        self.assertQueueEmpty()

    def test_garbage_and_long_lines(self):
        """Bad input gets protocol errors, never a crash (the harness
        fails the test if a daemon died of a signal)."""
        c = H.RawSMTP(self.inst.port)
        try:
            self.assertEqual(c.reply()[0], 220)
            code, _ = c.cmd("EHLO client.example")
            self.assertEqual(code, 250)
            code, _ = c.cmd("NOSUCHVERB x")
            self.assertEqual(code // 100, 5)
            code, _ = c.cmd("MAIL FROM:<unterminated")
            self.assertEqual(code // 100, 5)
            code, _ = c.cmd("RCPT TO:<alice@example.test>")
            self.assertEqual(code, 503)   # no MAIL yet
            code, _ = c.cmd("MAIL FROM:<" + "a" * 5000 + "@x.example>")
            self.assertEqual(code // 100, 5)
            c.send(b"\x00\xff\xfe binary \x01\x02\r\n")
            code, _ = c.reply()
            self.assertEqual(code // 100, 5)
            # still a working session
            self.assertEqual(c.cmd("RSET")[0], 250)
            self.assertEqual(c.cmd("NOOP")[0], 250)
        finally:
            c.close()
        # an endless line without CRLF: the server must bound it
        c = H.RawSMTP(self.inst.port)
        try:
            c.reply()
            try:
                c.send(b"EHLO " + b"x" * (1024 * 1024))
                c.send(b"\r\n")
                code, _ = c.reply()
                self.assertEqual(code // 100, 5)
            except (EOFError, OSError):
                pass   # closing the connection is a fine answer too
        finally:
            c.close()
        self.inst.wait_smtp(self.inst.port, 10)


@H.skip_unless_root()
class LookupFailure(Common, H.InstanceTestCase):
    """A table that cannot be read is a temporary failure: the message
    stays queued (4.3.0) and is delivered once the table is back."""

    def setUp(self):
        # Postfix's default: the virtual domains are the domains of the
        # virtual_mailbox_maps keys, so a missing table hides them too.
        self.inst = self.make_instance(privileged=False, conf={
            "virtual_mailbox_domains": "$virtual_mailbox_maps"})
        self.inst.aliases["team"] = "alice@example.test, bob@example.test"
        self.inst.start()

    def test_missing_vmailbox_table_defers(self):
        os.unlink(self.inst.path("vmailbox") + ".lmdb")
        code, text, _ = send(self.inst, ["team@localhost"], "table gone")
        self.assertEqual(code, 250, text)
        qid = queue_id_from(text)
        self.inst.wait_log(r"%s: to=<team@localhost>, relay=local,.*dsn=4\.3\.0, "
                           r"status=deferred \(cannot resolve domain" % qid)
        log = self.inst.log()
        self.assertNotRegex(log, r"status=(bounced|sent)")
        self.assertNotIn("unknown user", log)
        self.assertTrue(any(qid in f for f in self.inst.queue_files()),
                        self.inst.queue_files())
        self.inst.write_maps()
        for r in ("alice@example.test", "bob@example.test"):
            msgs = H.wait_maildir(self.inst.vmaildir(r), inst=self.inst)
            self.assertEqual(len(msgs), 1)
            self.assertIn(b"Subject: table gone\n", msgs[0])
        self.assertQueueEmpty()


class PrivilegedDelivery(Common, H.InstanceTestCase):
    def setUp(self):
        inst = self.make_instance(privileged=True,
                                  conf={"home_mailbox": "Maildir/"})
        self.home1 = inst.add_system_user("ptuser1")
        self.home2 = inst.add_system_user("ptuser2")
        inst.aliases.update({
            "staff": "ptuser1, ptuser2",
            "cmd": "|" + inst.path("bin", "save-cmd"),
        })
        inst.write_script("save-cmd", "cat > %s\n" % inst.path("out", "cmd.txt"))

    def uid(self, user):
        return H.user_ids(user)[0]

    def test_system_user_maildir(self):
        self.inst.start()
        code, text, _ = send(self.inst, ["ptuser1@localhost"], "to maildir")
        self.assertEqual(code, 250, text)
        md = os.path.join(self.home1, "Maildir")
        msgs = H.wait_maildir(md, inst=self.inst)
        self.assertEqual(len(msgs), 1)
        self.assertDelivered(msgs[0], "ptuser1@localhost", "to maildir")
        for sub in ("new", "cur"):
            for n in os.listdir(os.path.join(md, sub)):
                self.assertEqual(os.stat(os.path.join(md, sub, n)).st_uid, self.uid("ptuser1"))
        self.assertLogSent("ptuser1@localhost")
        self.assertQueueEmpty()

    def test_system_user_mbox(self):
        self.inst.params["home_mailbox"] = ""
        self.inst.start()
        body = "first\r\nFrom the start of a line\r\nlast\r\n"
        code, text, _ = send(self.inst, ["ptuser2@localhost"], "to mbox", body=body)
        self.assertEqual(code, 250, text)
        mbox = self.inst.path("spool", "ptuser2")
        data = H.wait_file(mbox, lambda b: b"last\n" in b, inst=self.inst)
        self.assertTrue(data.startswith(b"From %s " % SENDER.encode()), data[:100])
        self.assertIn(b"\n>From the start of a line\n", data)
        self.assertIn(b"Delivered-To: ptuser2@localhost\n", data)
        self.assertTrue(data.endswith(b"last\n\n"), data[-50:])
        self.assertEqual(os.stat(mbox).st_uid, self.uid("ptuser2"))
        self.assertLogSent("ptuser2@localhost")
        self.assertQueueEmpty()

    def test_mailbox_command(self):
        """mailbox_command (the Postfix + dovecot-lda or procmail setup):
        a local user's mailbox copy goes to the command, run as that user
        with the message on stdin and SENDER/RECIPIENT in its environment;
        its exit status decides (67, EX_NOUSER, bounces with its output)."""
        script = self.inst.write_script("mbcmd", (
            'case "$USER" in ptuser2) echo "no mailbox for $RECIPIENT"; exit 67;; esac\n'
            'env > "$HOME/cmd-env.txt" && cat > "$HOME/cmd-mail.txt"\n'))
        self.inst.params["mailbox_command"] = script + ' -a "$RECIPIENT"'
        self.inst.start()
        code, text, _ = send(self.inst, ["ptuser1@localhost"], "via command")
        self.assertEqual(code, 250, text)
        out = os.path.join(self.home1, "cmd-mail.txt")
        data = H.wait_file(out, lambda b: b.endswith(lf(BODY.encode())), inst=self.inst)
        self.assertIn(b"Subject: via command\n", data)
        self.assertIn(b"Delivered-To: ptuser1@localhost\n", data)
        self.assertEqual(os.stat(out).st_uid, self.uid("ptuser1"))
        self.assertLogSent("ptuser1@localhost")
        env = H.wait_file(os.path.join(self.home1, "cmd-env.txt"), lambda b: b, inst=self.inst)
        self.assertIn(b"SENDER=%s\n" % SENDER.encode(), env)
        self.assertIn(b"RECIPIENT=ptuser1@localhost\n", env)
        self.assertIn(b"HOME=%s\n" % self.home1.encode(), env)
        # Not in the mailbox local would have used.
        self.assertEqual(H.maildir_messages(os.path.join(self.home1, "Maildir")), [])

        code, text, _ = send(self.inst, ["ptuser2@localhost"], "refused by command")
        self.assertEqual(code, 250, text)
        self.inst.wait_log(r"to=<ptuser2@localhost>,.*dsn=5\.1\.1, status=bounced "
                           r"\(.*no mailbox for ptuser2@localhost")
        self.assertEqual(H.maildir_messages(os.path.join(self.home2, "Maildir")), [])

    def test_mailbox_command_dovecot_lda(self):
        """The Postfix + Dovecot setup that uses mailbox_command: the real
        dovecot-lda delivers the user's copy into a Maildir Dovecot indexes."""
        lda = "/usr/lib/dovecot/dovecot-lda"
        if not os.access(lda, os.X_OK):
            self.skipTest("dovecot-lda not installed")
        conf = self.inst.write("dovecot-lda.conf", (
            "base_dir = %s\nstate_dir = %s\nlog_path = /dev/stderr\n"
            "mail_location = maildir:~/Maildir-lda\nfirst_valid_uid = 1\n"
            "protocols =\nssl = no\n") % (self.inst.path("lda-run"),
                                           self.inst.path("lda-state")), mode=0o644)
        self.inst.params["mailbox_command"] = (
            '%s -c %s -f "$SENDER" -a "$RECIPIENT"' % (lda, conf))
        self.inst.start()
        code, text, _ = send(self.inst, ["ptuser1@localhost"], "through dovecot-lda")
        self.assertEqual(code, 250, text)
        md = os.path.join(self.home1, "Maildir-lda")
        msgs = H.wait_maildir(md, inst=self.inst)
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"Subject: through dovecot-lda", msgs[0])
        self.assertIn(lf(BODY.encode()), msgs[0].replace(b"\r\n", b"\n"))
        self.assertTrue(os.path.exists(os.path.join(md, "dovecot-uidlist")))
        self.assertLogSent("ptuser1@localhost")
        self.assertQueueEmpty()

    def test_alias_list_to_system_users(self):
        self.inst.start()
        code, text, _ = send(self.inst, ["staff@localhost"], "staff list")
        self.assertEqual(code, 250, text)
        for home in (self.home1, self.home2):
            msgs = H.wait_maildir(os.path.join(home, "Maildir"), inst=self.inst)
            self.assertEqual(len(msgs), 1, home)
            self.assertIn(b"Subject: staff list\n", msgs[0])
        self.assertQueueEmpty()

    def test_forward_file(self):
        fwd = os.path.join(self.home1, ".forward")
        with open(fwd, "w") as f:
            f.write("ptuser2\n")
        uid, gid = H.user_ids("ptuser1")
        os.chown(fwd, uid, gid)
        os.chmod(fwd, 0o644)
        self.inst.start()
        code, text, _ = send(self.inst, ["ptuser1@localhost"], "forwarded")
        self.assertEqual(code, 250, text)
        msgs = H.wait_maildir(os.path.join(self.home2, "Maildir"), inst=self.inst)
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"Subject: forwarded\n", msgs[0])
        self.assertQueueEmpty()
        self.assertEqual(H.maildir_messages(os.path.join(self.home1, "Maildir")), [])

    def test_alias_command_privileged(self):
        self.inst.start()
        code, text, _ = send(self.inst, ["cmd@localhost"], "cmd test")
        self.assertEqual(code, 250, text)
        out = self.inst.path("out", "cmd.txt")
        data = H.wait_file(out, lambda b: b.endswith(lf(BODY.encode())), inst=self.inst)
        self.assertIn(b"Subject: cmd test\n", data)
        # never run as root
        self.assertNotEqual(os.stat(out).st_uid, 0)
        self.assertQueueEmpty()


if __name__ == "__main__":
    H.main()

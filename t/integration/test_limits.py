#!/usr/bin/env python3
"""
Limits Postfix has (issue 7): header_size_limit on a 2 MB header line and
on a million folded header lines, hopcount_limit, smtpd_forbid_bare_newline
= reject for commands and DATA, and CHUNKING/BINARYMIME (BDAT), including a
BDAT whose chunk must not run as commands when CHUNKING is switched off with
smtpd_discard_ehlo_keywords. The session limits: smtpd_timeout (421 then
close), the error limits (the soft one delays the replies, the hard one
closes), line_length_limit, and a pipelined group larger than smtpd's
output high-water mark. queue_minfree: a queue file system short of room
is a 452 at MAIL FROM. Checked the way a user would: the reply codes, the
bytes in the Maildir, the log.
"""

import os
import smtplib
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

SENDER = "sender@client.example"
RCPT = "alice@example.test"


def setUpModule():
    H.require_binaries()


def header_of(msg):
    return msg.partition(b"\n\n")[0]


def body_of(msg):
    return msg.partition(b"\n\n")[2]


def open_txn(inst, rcpt=RCPT, mail_args=""):
    c = H.RawSMTP(inst.port)
    assert c.reply()[0] == 220
    code, lines = c.cmd("EHLO client.example")
    assert code == 250, (code, lines)
    assert c.cmd("MAIL FROM:<%s>%s" % (SENDER, mail_args))[0] == 250
    assert c.cmd("RCPT TO:<%s>" % rcpt)[0] == 250
    return c, lines


class Limits(H.InstanceTestCase):
    CONF = {}

    def setUp(self):
        self.inst = self.make_instance(privileged=False, conf=self.CONF)
        self.inst.start()

    def send_data(self, msg):
        s = H.smtp_client(self.inst)
        try:
            s.mail(SENDER)
            s.rcpt(RCPT)
            try:
                code, text = s.data(msg)
            except smtplib.SMTPDataError as e:
                code, text = e.smtp_code, e.smtp_error
            s.quit()
        finally:
            s.close()
        return code, text.decode("utf-8", "replace")

    def delivered(self):
        return H.wait_maildir(self.inst.vmaildir(RCPT), inst=self.inst)[0]

    # --- header_size_limit, line_length_limit --------------------------------

    def test_two_megabyte_header_line_is_cut(self):
        msg = (b"Subject: big\r\nX-Big: " + b"a" * (2 * 1024 * 1024)
               + b"\r\nX-After: kept\r\n\r\nbody line\r\n")
        code, text = self.send_data(msg)
        self.assertEqual(code, 250, text)   # Postfix accepts, and truncates
        got = self.delivered()
        head = header_of(got)
        big = [l for l in head.split(b"\n") if l.startswith(b"X-Big: ")]
        self.assertEqual(len(big), 1)
        # Postfix: header_size_limit (102400) plus at most one record of
        # line_length_limit (2048).
        self.assertGreaterEqual(len(big[0]), 102400)
        self.assertLessEqual(len(big[0]), 102400 + 2048)
        self.assertIn(b"\nX-After: kept", head)
        self.assertEqual(body_of(got), b"body line\n")
        self.inst.wait_log(r"header\(s\) truncated at header_size_limit=102400")

    def test_million_folded_lines_are_one_bounded_header(self):
        msg = (b"Subject: folded\r\nX-Fold: start\r\n" + b" a\r\n" * 1000000
               + b"X-After: kept\r\n\r\nbody\r\n")
        code, text = self.send_data(msg)
        self.assertEqual(code, 250, text)
        got = self.delivered()
        head = header_of(got)
        self.assertLess(len(head), 102400 + 2048 + 4096)
        self.assertIn(b"\nX-After: kept", head)
        self.assertEqual(body_of(got), b"body\n")

    def test_long_body_line_passes_whole(self):
        line = b"b" * 100000
        code, text = self.send_data(b"Subject: long\r\n\r\n" + line + b"\r\nend\r\n")
        self.assertEqual(code, 250, text)
        self.assertEqual(body_of(self.delivered()), line + b"\nend\n")

    # --- hopcount_limit --------------------------------------------------------

    def test_51_received_headers_bounce_as_a_loop(self):
        hops = b"".join(b"Received: from hop%d.example by x; Mon, 1 Jan 2024 "
                        b"00:00:00 +0000\r\n" % i for i in range(51))
        code, text = self.send_data(hops + b"Subject: loop\r\n\r\nloop\r\n")
        self.assertEqual(code, 554, text)
        self.assertIn("5.4.0", text)
        self.assertIn("too many hops", text)
        self.assertEqual(H.maildir_messages(self.inst.vmaildir(RCPT)), [])

    def test_our_received_counts_as_a_hop(self):
        # Postfix's cleanup counts smtpd's own Received: too, and bounces
        # at hop_count >= hopcount_limit: 49 from the client is the limit.
        hop = b"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        code, text = self.send_data(hop * 49 + b"Subject: no\r\n\r\nno\r\n")
        self.assertEqual(code, 554, text)
        code, text = self.send_data(hop * 48 + b"Subject: ok\r\n\r\nok\r\n")
        self.assertEqual(code, 250, text)
        self.delivered()

    # --- CHUNKING / BINARYMIME ---------------------------------------------------

    def test_ehlo_offers_chunking_and_binarymime(self):
        c, lines = open_txn(self.inst)
        self.assertIn("CHUNKING", lines)
        self.assertIn("BINARYMIME", lines)
        c.close()

    def test_bdat_delivers_byte_exact(self):
        c, _ = open_txn(self.inst)
        part1 = b"Subject: chunks\r\n\r\n.leading dot\r\n"
        part2 = b"RSET\r\nQUIT\r\n.\r\nlast\r"
        part3 = b"\nend\r\n"
        # pipelined: three chunks in one write
        c.send(b"BDAT %d\r\n%sBDAT %d\r\n%sBDAT %d LAST\r\n%s"
               % (len(part1), part1, len(part2), part2, len(part3), part3))
        self.assertEqual(c.reply(), (250, ["2.0.0 Ok: %d bytes" % len(part1)]))
        self.assertEqual(c.reply(), (250, ["2.0.0 Ok: %d bytes" % len(part2)]))
        code, lines = c.reply()
        self.assertEqual(code, 250, lines)
        self.assertIn("queued as", lines[0])
        self.assertEqual(c.cmd("QUIT")[0], 221)
        c.close()
        got = self.delivered()
        self.assertEqual(body_of(got), b".leading dot\nRSET\nQUIT\n.\nlast\nend\n")

    def test_bdat_binarymime(self):
        c, _ = open_txn(self.inst, mail_args=" BODY=BINARYMIME")
        binary = bytes(b for b in range(256) if b not in (0x0d, 0x0a))
        chunk = b"Subject: bin\r\nContent-Type: application/octet-stream\r\n\r\n" \
            + binary + b"\r\n" + binary + b"\n\rX\r\n"
        self.assertEqual(c.cmd("DATA")[0], 503)   # BINARYMIME needs BDAT
        c.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        code, lines = c.reply()
        self.assertEqual(code, 250, lines)
        c.close()
        got = self.delivered()
        self.assertEqual(body_of(got), binary + b"\n" + binary + b"\n\rX\n")
        self.assertIn(b"with ESMTP", header_of(got))

    def test_bdat_zero_last_and_mixing(self):
        c, _ = open_txn(self.inst)
        chunk = b"Subject: zero\r\n\r\nz\r\n"
        c.send(b"BDAT %d\r\n" % len(chunk) + chunk)
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 503)   # no DATA after BDAT
        code, lines = c.cmd("BDAT 0 LAST")
        self.assertEqual(code, 250, lines)
        self.assertIn("queued as", lines[0])
        c.close()
        self.assertEqual(body_of(self.delivered()), b"z\n")

    def test_bdat_without_mail_discards_chunk(self):
        c = H.RawSMTP(self.inst.port)
        c.reply()
        c.cmd("EHLO client.example")
        payload = b"RSET\r\nMAIL FROM:<evil@x.example>\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(payload) + payload + b"NOOP\r\n")
        self.assertEqual(c.reply()[0], 503)
        # the next reply is NOOP's: nothing in the chunk ran
        self.assertEqual(c.reply(), (250, ["2.0.0 Ok"]))
        c.close()

    def test_bdat_over_size_limit(self):
        self.inst.stop()
        self.inst.params["message_size_limit"] = "1000"
        self.inst.start()
        c, _ = open_txn(self.inst)
        chunk = b"x" * 2000
        c.send(b"BDAT 2000\r\n" + chunk + b"BDAT 5 LAST\r\nabcde")
        self.assertEqual(c.reply()[0], 552)
        self.assertEqual(c.reply()[0], 503)   # the transaction is gone
        self.assertEqual(c.cmd("NOOP")[0], 250)
        c.close()


class ForbiddenCommands(H.InstanceTestCase):
    """smtpd_forbidden_commands (CONNECT GET POST, as in Postfix): an HTTP
    request ends the session at once, so SMTP commands in what follows (a
    form a web page made a browser post to port 25) are never run."""

    def setUp(self):
        self.inst = self.make_instance(privileged=False)
        self.inst.start()

    def test_http_post_ends_the_session(self):
        c = H.RawSMTP(self.inst.port)
        self.assertEqual(c.reply()[0], 220)
        c.send(b"POST / HTTP/1.1\r\nHost: mx\r\n\r\nHELO x\r\n"
               b"MAIL FROM:<other@client.example>\r\n")
        self.assertEqual(c.reply(), (221, ["2.7.0 Error: I can break rules, too. Goodbye."]))
        with self.assertRaises(EOFError):
            c.reply()
        c.close()
        self.inst.wait_log(r"warning: non-SMTP command from localhost\[127\.0\.0\.1\]: "
                           r"POST / HTTP/1\.1")
        self.assertNotRegex(self.inst.log(), r"from=<other@client\.example>")

    def test_other_unknown_commands_are_answered(self):
        c = H.RawSMTP(self.inst.port)
        try:
            self.assertEqual(c.reply()[0], 220)
            self.assertEqual(c.cmd("GETX /")[0], 502)     # a word, not the word
            self.assertEqual(c.cmd("NOOP")[0], 250)
        finally:
            c.close()


class QueueMinfree(H.InstanceTestCase):
    """queue_minfree as in Postfix: when the queue's file system is short
    of room, MAIL FROM gets 452 4.3.1 before the client sends anything,
    by default when less than 1.5 x message_size_limit is free; a declared
    SIZE must leave queue_minfree free and take under half of what is.
    The shortage is made by asking for more than the disk has (its free
    space, read here with statvfs, drifts by far less than the factors
    used)."""

    @staticmethod
    def avail():
        v = os.statvfs(tempfile.gettempdir())
        return v.f_bavail * v.f_frsize

    def session(self, conf):
        self.inst = self.make_instance(privileged=False, conf=conf)
        self.inst.start()
        c = H.RawSMTP(self.inst.port)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.example")[0], 250)
        return c

    def assert_refused(self, c, mail_args=""):
        self.assertEqual(c.cmd("MAIL FROM:<%s>%s" % (SENDER, mail_args)),
                         (452, ["4.3.1 Insufficient system storage"]))
        self.inst.wait_log(r"NOQUEUE: reject: MAIL from localhost\[127\.0\.0\.1\]: "
                           r"452 4\.3\.1 Insufficient system storage;")
        self.inst.wait_log(r"warning: not enough free space in the mail queue: "
                           r"\d+ bytes available")

    def test_queue_minfree_over_the_free_space(self):
        c = self.session({"queue_minfree": str(2 * self.avail())})
        try:
            self.assert_refused(c)
            # the session goes on: the client may try again later
            self.assertEqual(c.cmd("NOOP")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER)[0], 452)
            self.assertEqual(c.cmd("QUIT")[0], 221)
        finally:
            c.close()
        self.assertEqual(self.inst.queue_files(), [])

    def test_default_is_one_and_a_half_message_size_limits(self):
        # no queue_minfree: a message_size_limit of 80% of the free space
        # asks for 120% of it
        c = self.session({"message_size_limit": str(self.avail() * 4 // 5)})
        try:
            self.assert_refused(c)
        finally:
            c.close()

    def test_declared_size(self):
        c = self.session({"message_size_limit": "0"})
        try:
            self.assert_refused(c, " SIZE=%d" % (self.avail() * 3 // 4))
            self.assertEqual(c.cmd("RSET")[0], 250)
            self.assertEqual(c.cmd("MAIL FROM:<%s> SIZE=1000" % SENDER)[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<%s>" % RCPT)[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(b"Subject: room\r\n\r\nfits\r\n.\r\n")
            self.assertEqual(c.reply()[0], 250)
        finally:
            c.close()
        got = H.wait_maildir(self.inst.vmaildir(RCPT), inst=self.inst)
        self.assertEqual(len(got), 1)
        self.assertIn(b"Subject: room\n\nfits\n", got[0])


class BareNewlineReject(H.InstanceTestCase):
    # The test client is in mynetworks: exclusions must not cover it.
    CONF = {"smtpd_forbid_bare_newline": "reject",
            "smtpd_forbid_bare_newline_exclusions": ""}

    def setUp(self):
        self.inst = self.make_instance(privileged=False, conf=self.CONF)
        self.inst.start()

    def test_bare_lf_command_is_not_run(self):
        c, _ = open_txn(self.inst)
        c.send(b"RSET\nMAIL FROM:<other@client.example>\r\n")
        self.assertEqual(c.reply(), (550, ["5.5.2 Error: bare <LF> received"]))
        with self.assertRaises(EOFError):
            c.reply()                      # closed; MAIL never answered
        c.close()
        self.inst.wait_log(r"bare <LF> received from localhost\[127\.0\.0\.1\]")
        self.assertNotRegex(self.inst.log(), r"from=<other@client\.example>")
        self.assertNotRegex(self.inst.log(), r"disconnect from .* rset=")

    def test_bare_lf_in_data_rejects_message(self):
        c, _ = open_txn(self.inst)
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(b"Subject: x\r\n\r\nline\n.\nMAIL FROM:<x@y.example>\r\n.\r\n")
        self.assertEqual(c.reply()[0], 550)
        with self.assertRaises(EOFError):
            c.reply()
        c.close()
        self.assertEqual(H.maildir_messages(self.inst.vmaildir(RCPT)), [])

    def test_crlf_client_unaffected(self):
        s = H.smtp_client(self.inst)
        s.sendmail(SENDER, [RCPT], b"Subject: fine\r\n\r\nfine\r\n")
        s.quit()
        H.wait_maildir(self.inst.vmaildir(RCPT), inst=self.inst)


class BareNewlineNormalize(H.InstanceTestCase):
    def setUp(self):
        self.inst = self.make_instance(privileged=False)
        self.inst.start()

    def test_default_normalizes(self):
        c = H.RawSMTP(self.inst.port)
        c.reply()
        self.assertEqual(c.cmd("EHLO client.example")[0], 250)
        c.send(b"NOOP\n")
        self.assertEqual(c.reply()[0], 250)
        c.close()


class ChunkingDiscarded(H.InstanceTestCase):
    CONF = {"smtpd_discard_ehlo_keywords": "chunking, silly"}

    def setUp(self):
        self.inst = self.make_instance(privileged=False, conf=self.CONF)
        self.inst.start()

    def test_bdat_payload_not_executed(self):
        c, lines = open_txn(self.inst)
        self.assertNotIn("CHUNKING", lines)
        self.assertNotIn("BINARYMIME", lines)
        self.assertIn("PIPELINING", lines)
        payload = b"RSET\r\nQUIT\r\n"
        c.send(b"BDAT %d LAST\r\n" % len(payload) + payload)
        self.assertEqual(c.reply()[0], 502)
        # RSET and QUIT inside the chunk did not run: the session and its
        # transaction are still there, DATA works.
        self.assertEqual(c.cmd("DATA")[0], 354)
        c.send(b"Subject: after bdat\r\n\r\nstill here\r\n.\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        c.close()
        self.assertEqual(body_of(self.delivered()), b"still here\n")
        # smtpd logs the disconnect line after its 221.
        self.inst.wait_log(r"bdat=0/1")

    def test_binarymime_refused(self):
        c = H.RawSMTP(self.inst.port)
        c.reply()
        c.cmd("EHLO client.example")
        self.assertEqual(c.cmd("MAIL FROM:<%s> BODY=BINARYMIME" % SENDER)[0], 555)
        c.close()

    def delivered(self):
        return H.wait_maildir(self.inst.vmaildir(RCPT), inst=self.inst)[0]


class SessionLimits(H.InstanceTestCase):
    CONF = {"smtpd_timeout": "2s", "smtpd_soft_error_limit": "2",
            "smtpd_hard_error_limit": "4", "smtpd_error_sleep_time": "1s"}

    def setUp(self):
        self.inst = self.make_instance(privileged=False, conf=self.CONF)
        self.inst.start()

    def test_idle_timeout_says_421_and_closes(self):
        c = H.RawSMTP(self.inst.port)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.example")[0], 250)
        code, lines = c.reply()             # nothing sent: the server speaks
        self.assertEqual(code, 421)
        self.assertIn("4.4.2", lines[0])
        self.assertIn("timeout exceeded", lines[0])
        with self.assertRaises(EOFError):
            c.reply()
        c.close()
        self.inst.wait_log(r"timeout after EHLO from localhost\[127\.0\.0\.1\]")

    def test_error_sleep_then_hard_limit(self):
        c = H.RawSMTP(self.inst.port)
        c.reply()
        start = time.time()
        c.send(b"XYZZY\r\n" * 6)          # pipelined: one write, six errors
        for _ in range(4):
            self.assertEqual(c.reply()[0], 502)
        code, lines = c.reply()
        self.assertEqual(code, 421)
        self.assertIn("too many errors", lines[0])
        with self.assertRaises(EOFError):
            c.reply()                        # the sixth never ran
        # Errors 2 and 3 reached the soft limit: two sleeps of 1 s held
        # the replies back (a lower bound only: a busy machine is slower).
        self.assertGreaterEqual(time.time() - start, 1.5)
        c.close()
        self.inst.wait_log(r"too many errors after CONNECT from localhost")
        self.inst.wait_log(r"unknown=0/4 commands=0/4")

    def test_over_long_line_then_next_command(self):
        c = H.RawSMTP(self.inst.port)
        c.reply()
        # 5000 octets, sent in pieces so the line spans several reads.
        for part in (b"NOOP " + b"x" * 2000, b"y" * 2000, b"z" * 1000 + b"\r\n"):
            c.send(part)
            time.sleep(0.05)
        self.assertEqual(c.reply(), (500, ["5.5.0 Error: line too long"]))
        self.assertEqual(c.cmd("NOOP"), (250, ["2.0.0 Ok"]))
        c.close()

    def test_pipelined_group_over_high_water(self):
        # 20000 replies are ~320 KB: more than smtpd holds unsent (64 KiB),
        # so it must stop reading, write, and go on where it stopped.
        n = 20000
        c = H.RawSMTP(self.inst.port, timeout=60)
        c.reply()
        c.cmd("EHLO client.example")
        sender = threading.Thread(target=c.send,
                                  args=(b"NOOP\r\n" * n + b"QUIT\r\n",))
        sender.start()
        for i in range(n):
            self.assertEqual(c.reply()[0], 250, "reply %d" % i)
        self.assertEqual(c.reply()[0], 221)
        sender.join()
        c.close()
        self.inst.wait_log(r"noop=%d quit=1" % n)


if __name__ == "__main__":
    H.main()

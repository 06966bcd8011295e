#!/usr/bin/env python3
"""
header_checks, mime_header_checks, nested_header_checks and body_checks
(Postfix's header_checks(5)) on mail from smtplib and from sendmail: the
reply codes, the bytes in the Maildir, Postfix's cleanup log lines, the
hold queue, the bounce for local mail, and postern check refusing the
actions Postern does not carry out.
"""

import email.message
import os
import re
import smtplib
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

SENDER = "sender@client.example"
RCPT = "alice@example.test"

HEADER_CHECKS = r"""
# the submission-privacy rule of many setups: our own Received: goes
/^Received: from client\.example \(localhost \[127\.0\.0\.1\]\)/ IGNORE
/^Subject: (.*)\[spam\]/   REJECT 5.7.1 Spam subject: $1
/^Subject: .*later/        REJECT 4.7.1 try again later
/^Subject: .*quarantine/   HOLD held for review
/^Subject: .*drop me/      DISCARD
/^Subject: .*watched/      WARN watched subject
/^Subject: .*for review/   REDIRECT quarantine@example.test
/^X-Archive: yes/          BCC archive@example.test
/^Subject: (.*)tagged(.*)/ REPLACE Subject: $1[tagged]$2
/^X-Mailer:/               IGNORE
/^Organization:/           PREPEND X-Org-Seen: yes
# the classic attachment-name rule (mime_header_checks = $header_checks)
/^Content-(Disposition|Type):.*name\s*=\s*"?[^"]*\.(exe|scr)"?/ REJECT 5.7.1 Attachment type not allowed: .$2
"""

BODY_CHECKS = r"""
/^buy cheap pills/ REJECT body says no
/password: (\S+)/  REPLACE password: <removed>
"""


def setUpModule():
    H.require_binaries()


def plain(subject, body="hello\n", extra=None):
    m = email.message.EmailMessage()
    m["From"] = SENDER
    m["To"] = RCPT
    m["Subject"] = subject
    for k, v in (extra or {}).items():
        m[k] = v
    m.set_content(body)
    return m


def with_attachment(subject, filename, data=b"MZ\x90\x00"):
    m = plain(subject, "see the attachment\n")
    m.add_attachment(data, maintype="application", subtype="octet-stream",
                     filename=filename)
    return m


def with_message(subject, inner_subject):
    inner = plain(inner_subject, "inner body\n")
    m = plain(subject, "forwarded\n")
    m.add_attachment(inner)   # message/rfc822
    return m


class Checks(H.InstanceTestCase):
    def setUp(self):
        # a second port without header_checks, as a content filter's
        # re-injection port has in Postfix setups
        self.port2 = H.free_port()
        self.inst = self.make_instance(conf={"body_checks_size_limit": "2000"}, services=[
            "127.0.0.1:%d inet n - n - - smtpd -o header_checks=" % self.port2])
        hc = self.inst.write("header_checks", HEADER_CHECKS)
        bc = self.inst.write("body_checks", BODY_CHECKS)
        self.inst.params["header_checks"] = "regexp:" + hc
        self.inst.params["body_checks"] = "pcre:" + bc
        for box in ("quarantine", "archive"):
            self.inst.vmailbox[box + "@example.test"] = "example.test/%s/" % box
        self.inst.start()

    def send(self, msg, port=None):
        """(code, text) of the end of data."""
        s = H.smtp_client(self.inst, port=port)
        try:
            s.ehlo("client.example")
            s.mail(SENDER)
            s.rcpt(RCPT)
            code, text = s.data(msg.as_bytes())
            s.quit()
        finally:
            s.close()
        return code, text.decode()

    def delivered(self):
        return H.wait_maildir(self.inst.vmaildir(RCPT), 1, 30, self.inst)[-1]

    def test_rewrites(self):
        code, text = self.send(plain("a tagged message", extra={
            "X-Mailer": "Spammy 1.0", "Organization": "Example"}))
        self.assertEqual(code, 250, text)
        m = self.delivered()
        self.assertIn(b"\nSubject: a [tagged] message\n", m)
        self.assertNotIn(b"X-Mailer", m)
        self.assertIn(b"\nX-Org-Seen: yes\nOrganization: Example\n", m)
        # our Received: was removed by the IGNORE rule; qmgr's delivery adds
        # none, so no line names the client any more
        self.assertNotIn(b"localhost [127.0.0.1]", m)
        qid = re.search(r"queued as (\w+)", text).group(1)
        self.inst.wait_log(r"%s: replace: header Subject: a tagged message from "
                           r"localhost\[127\.0\.0\.1\]; from=<%s> to=<%s> "
                           r"proto=ESMTP helo=<client\.example>: Subject: a "
                           r"\[tagged\] message" % (qid, SENDER, RCPT))

    def test_reject(self):
        code, text = self.send(plain("cheap [spam] here"))
        self.assertEqual((code, text), (550, "5.7.1 Spam subject: cheap"))
        self.inst.wait_log(r": reject: header Subject: cheap \[spam\] here from "
                           r"localhost\[127\.0\.0\.1\]; from=<%s> to=<%s> "
                           r"proto=ESMTP helo=<client\.example>: 5\.7\.1 Spam "
                           r"subject: cheap " % (SENDER, RCPT))
        # not on the port with "-o header_checks=" (body_checks still apply)
        self.inst.wait_smtp(self.port2)
        code, text = self.send(plain("cheap [spam] here"), port=self.port2)
        self.assertEqual(code, 250, text)
        code, text = self.send(plain("x", "buy cheap pills\n"), port=self.port2)
        self.assertEqual(code, 550, text)
        code, text = self.send(plain("come back later"))
        self.assertEqual((code, text), (450, "4.7.1 try again later"))
        H.wait_maildir(self.inst.vmaildir(RCPT), 1, 30, self.inst)
        self.inst.wait_queue_empty()
        # only the message of the second port
        self.assertEqual(len(H.maildir_messages(self.inst.vmaildir(RCPT))), 1)

    def test_hold_discard_warn(self):
        code, text = self.send(plain("to quarantine"))
        self.assertEqual(code, 250, text)
        qid = re.search(r"queued as (\w+)", text).group(1)
        self.inst.wait_log(r"%s: hold: header Subject: to quarantine from .*: "
                           r"held for review" % qid)
        self.assertTrue(os.path.exists(self.inst.path("queue", "hold", qid)),
                        self.inst.queue_files())
        code, text = self.send(plain("please drop me"))
        self.assertEqual(code, 250, text)
        self.inst.wait_log(r": discard: header Subject: please drop me from ")
        code, text = self.send(plain("a watched one"))
        self.assertEqual(code, 250, text)
        self.inst.wait_log(r": warning: header Subject: a watched one from .*: "
                           r"watched subject")
        m = self.delivered()
        self.assertIn(b"\nSubject: a watched one\n", m)
        # neither the held nor the discarded message reached the Maildir
        self.assertEqual(len(H.maildir_messages(self.inst.vmaildir(RCPT))), 1)

    def test_redirect_and_bcc(self):
        inst = self.inst
        code, text = self.send(plain("one for review"))
        self.assertEqual(code, 250, text)
        qid = re.search(r"queued as (\w+)", text).group(1)
        m = H.wait_maildir(inst.vmaildir("quarantine@example.test"), 1, 30, inst)[0]
        self.assertIn(b"\nSubject: one for review\n", m)
        inst.wait_log(r"%s: redirect: header Subject: one for review from .*: "
                      r"quarantine@example\.test" % qid)
        inst.wait_queue_empty()
        # instead of the recipient, who gets nothing and is not logged
        self.assertEqual(H.maildir_messages(inst.vmaildir(RCPT)), [])
        self.assertNotRegex(inst.log(), r"%s: to=<%s>" % (qid, RCPT))
        code, text = self.send(plain("kept", extra={"X-Archive": "yes"}))
        self.assertEqual(code, 250, text)
        qid = re.search(r"queued as (\w+)", text).group(1)
        self.assertIn(b"\nSubject: kept\n", self.delivered())
        m = H.wait_maildir(inst.vmaildir("archive@example.test"), 1, 30, inst)[0]
        self.assertIn(b"\nSubject: kept\n", m)
        inst.wait_log(r"%s: to=<archive@example\.test>, .*status=sent" % qid)

    def test_body(self):
        code, text = self.send(plain("pills", "hi\nbuy cheap pills now\n"))
        self.assertEqual((code, text), (550, "5.7.1 body says no"))
        self.inst.wait_log(r": reject: body buy cheap pills now from localhost")
        code, text = self.send(plain("creds", "user: a\npassword: hunter2\n"))
        self.assertEqual(code, 250, text)
        m = self.delivered()
        self.assertIn(b"\npassword: <removed>\n", m)
        self.assertNotIn(b"hunter2", m)
        # past body_checks_size_limit (2000 bytes of this body) nothing is
        # looked at
        code, text = self.send(plain("long", "x" * 60 + "\n" * 0 + ("filler\n" * 400)
                                     + "buy cheap pills now\n"))
        self.assertEqual(code, 250, text)

    def test_mime_and_nested(self):
        code, text = self.send(with_attachment("invoice", "invoice.exe"))
        self.assertEqual((code, text), (550, "5.7.1 Attachment type not allowed: .exe"))
        # the same name in the text of the body is no MIME header
        code, text = self.send(plain("names", "do not open invoice.exe\n"))
        self.assertEqual(code, 250, text)
        # nested_header_checks = $header_checks: a forwarded message's Subject
        code, text = self.send(with_message("fwd", "cheap [spam] inside"))
        self.assertEqual(code, 550, text)
        self.inst.wait_log(r": reject: header Subject: cheap \[spam\] inside from ")

    def test_nested_off(self):
        self.inst.params["nested_header_checks"] = ""
        self.inst.stop()
        self.inst.start()
        code, text = self.send(with_message("fwd", "cheap [spam] inside"))
        self.assertEqual(code, 250, text)
        # the primary header is still checked, and MIME headers
        code, text = self.send(with_attachment("x", "a.scr"))
        self.assertEqual(code, 550, text)


class Check(H.InstanceTestCase):
    def test_actions_postern_does_not_do(self):
        inst = self.make_instance()
        inst.prepare()
        ok = inst.write("ok_checks", "/^Subject: x/ REJECT\n/^To:/ DUNNO\n")
        bad = inst.write("bad_checks", "/^Subject: x/ FILTER smtp:[127.0.0.1]:10025\n"
                         "/^Subject: y/ REDIRECT spam\n"
                         "/^From:/ FROBNICATE\n/^To:/ PREPEND\n")
        base = inst.conf_text()
        inst.write("postern.conf", base + "header_checks = regexp:%s\n"
                   "body_checks = pcre:%s\n" % (ok, ok))
        r = inst.postern("check")
        self.assertEqual(r.returncode, 0, r.stderr)
        inst.write("postern.conf", base + "body_checks = regexp:%s\n" % bad)
        r = inst.postern("check")
        self.assertEqual(r.returncode, 78, r.stderr)
        for needle in ('"FILTER smtp:[127.0.0.1]:10025": Postern does not implement',
                       '"REDIRECT spam": REDIRECT and BCC need one address',
                       '"FROBNICATE": not an action',
                       '"PREPEND": PREPEND and REPLACE need a text'):
            self.assertIn(needle, r.stderr)


if __name__ == "__main__":
    H.main()

#!/usr/bin/env python3
"""
smtpd_milters (issue 10): a tiny Python milter (milterlib.py, protocol
version 6) drives every verdict and edit; its behaviour is chosen by the
message (see milterlib's comment).

  - edits at end of message: header added, changed, inserted at the top
    and deleted, body replaced, sender changed, a recipient added and
    one deleted: the Maildir bytes show each, the deleted recipient gets
    nothing; the macros the milter saw (j, _, {daemon_addr}, i,
    {mail_addr}, {rcpt_addr}, {auth_authen} after AUTH)
  - verdicts: TEMPFAIL at MAIL (451), REJECT at RCPT (550, only that
    recipient), REPLYCODE at end of message (the milter's text), each
    with Postfix's "milter-reject:" log line; DISCARD (250, milter-discard,
    nothing delivered); QUARANTINE (250, milter-hold, the file is in hold/)
  - milter_default_action with a dead socket and with a milter that never
    answers (milter_command_timeout): tempfail (451, nothing queued),
    accept (delivered), reject (550), quarantine (held)
  - macros per step on submission over STARTTLS with AUTH: the TLS
    macros at HELO, {auth_*}, {mail_mailer}/{mail_host} at MAIL,
    {rcpt_*} at RCPT, i from then on, and a connect list the milter asked
    for in its OPTNEG answer ({client_port}, {daemon_port}, a name
    without braces)
  - milter_protocol = 2: OPTNEG says 2 with the version 2 steps, DATA and
    unknown commands are never sent; with 6 they are (an unknown command
    with milter_unknown_command_macros, the milter's reject replacing 502)
  - a milter with SMFIP_RCPT_REJ sees refused recipients with Postfix's
    macros, one without does not
  - a recipient the milter adds is virtual-alias expanded: the alias's
    targets get the message
  - postern check reports a malformed milter list, an unknown action and
    protocol 5
  - non_smtpd_milters for sendmail (pickup): the edits reach the Maildir;
    REJECT bounces to the sender (a DSN with the milter's text in the
    sender's Maildir, nothing for the recipient); TEMPFAIL leaves the
    message in maildrop/ for the next scan; while the milter holds one
    message, pickup queues and delivers another (its own event loop);
    files left in maildrop/ while Postern was down go through the milters
    one after the other at start
"""

import os
import re
import smtplib
import ssl
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import postern_harness as H  # noqa: E402
import milterlib  # noqa: E402
from test_sendmail import SMInstance  # noqa: E402


def setUpModule():
    H.require_binaries()


def dead_endpoint():
    # The discard port: nothing listens there, and unlike a just-freed
    # ephemeral port no parallel test can take it and no connect can
    # reach itself.
    return "inet:127.0.0.1:9"


class MilterTest(H.InstanceTestCase):

    def start(self, milters, **conf):
        inst = self.make_instance()
        inst.params.update({"smtpd_milters": milters,
                            "milter_command_timeout": "2s",
                            "milter_connect_timeout": "2s"})
        inst.params.update(conf)
        inst.vmailbox["new-sender@example.test"] = "example.test/newsender/"
        inst.vmailbox["reject-me@example.test"] = "example.test/rejectme/"
        inst.vmailbox["tempfail@example.test"] = "example.test/tempfail/"
        inst.start()
        return inst

    def milter(self, mode="normal"):
        m = milterlib.Milter(mode)
        self.addCleanup(m.stop)
        return m

    def message(self, subject, rcpts=("alice@example.test",), extra=""):
        return ("From: <alice@example.test>\r\nTo: <alice@example.test>\r\n"
                "Subject: %s\r\nX-Remove: goes away\r\n%s"
                "Message-ID: <%s@client.example>\r\n\r\noriginal body\r\n"
                % (subject, extra, subject)).encode()

    # ---- edits ------------------------------------------------------------

    def test_edits_reach_the_maildir(self):
        m = self.milter()
        inst = self.start(m.endpoint)
        s = H.smtp_client(inst)
        s.mail("alice@example.test")
        s.rcpt("alice@example.test")
        s.rcpt("bob@example.test")
        code, resp = s.data(self.message("EDITME"))
        self.assertEqual(code, 250, resp)
        qid = re.search(rb"queued as (\S+)", resp).group(1).decode()
        s.quit()
        for who in ("alice@example.test", "carol@example.test"):
            msg = H.wait_maildir(inst.vmaildir(who), 1, inst=inst)[0]
            head, _, body = msg.partition(b"\n\n")
            head += b"\n"
            self.assertTrue(head.startswith(b"Return-Path: <new-sender@example.test>\n")
                            or b"X-First: top\n" in head, head)
            self.assertIn(b"X-First: top\n", head)
            # inserted at index 0: above our own Received:
            self.assertLess(head.index(b"X-First: top"), head.index(b"Received: "))
            self.assertIn(b"\nX-Milter: added by the test milter\n", head)
            self.assertIn(b"\nSubject: edited\n", head)
            self.assertNotIn(b"Subject: EDITME", head)
            self.assertNotIn(b"X-Remove", head)
            self.assertEqual(body, b"replaced body\nsecond line\n")
        # bob was deleted by the milter: nothing for him, the queue empties
        self.assertQueueEmpty(inst)
        self.assertEqual(H.maildir_messages(inst.vmaildir("bob@example.test")), [])
        inst.wait_log(r"%s: milter changed the sender from <alice@example\.test> "
                      r"to <new-sender@example\.test>" % qid)
        inst.wait_log(r"%s: .*to=<carol@example\.test>.*status=sent" % qid)
        # macros Postern provides
        self.assertEqual(m.macros.get("j"), "mx.example.test")
        self.assertEqual(m.macros.get("_"), "localhost [127.0.0.1]")
        self.assertEqual(m.macros.get("{daemon_addr}"), "127.0.0.1")
        self.assertEqual(m.macros.get("{mail_addr}"), "alice@example.test")
        self.assertEqual(m.macros.get("{rcpt_addr}"), "bob@example.test",
                         (m.macros, m.seen[:20]))
        self.assertEqual(m.macros.get("i"), qid)
        cmds = [c for c, _ in m.seen]
        for c in ("C", "H", "M", "R", "T", "L", "N", "B", "E"):
            self.assertIn(c, cmds)
        self.assertIn(("H", "client.example"), m.seen)

    def test_added_recipient_is_alias_expanded(self):
        # SMFIR_ADDRCPT of an alias: the queue file gets its targets, as
        # for a RCPT TO of it (Postfix's cleanup expands it too); the
        # alias itself has no mailbox, so unexpanded it would bounce.
        m = self.milter()
        inst = self.make_instance()
        inst.params.update({"smtpd_milters": m.endpoint,
                            "virtual_alias_maps": "texthash:" + inst.path("valias")})
        inst.write("valias", "team@alias.test  carol@example.test, alice@example.test\n")
        inst.start()
        code, _ = self.send_one(inst, "ADDALIAS")
        self.assertEqual(code, 250)
        for who in ("bob@example.test", "carol@example.test", "alice@example.test"):
            msg = H.wait_maildir(inst.vmaildir(who), 1, inst=inst)
            self.assertEqual(len(msg), 1, who)
            self.assertIn(b"Subject: ADDALIAS", msg[0])
        self.assertQueueEmpty(inst)
        inst.wait_log(r"to=<carol@example\.test>, orig_to=<team@alias\.test>, "
                      r".*status=sent")

    def test_bdat_and_pipelining(self):
        # BDAT (two chunks) and a pipelined group: the session waits for
        # the milters at each step and the replies come in order.
        m = self.milter()
        inst = self.start(m.endpoint)
        c = H.RawSMTP(inst.port)
        self.addCleanup(c.close)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.example")[0], 250)
        c.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<reject-me@example.test>\r\n"
               "RCPT TO:<alice@example.test>\r\n")
        self.assertEqual([c.reply()[0] for _ in range(3)], [250, 550, 250])
        msg = self.message("EDITME").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        half = len(msg) // 2
        c.send(b"BDAT %d\r\n" % half + msg[:half])
        self.assertEqual(c.reply()[0], 250)
        c.send(b"BDAT %d LAST\r\n" % (len(msg) - half) + msg[half:] + b"QUIT\r\n")
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        self.assertIn("queued as", text[0])
        self.assertEqual(c.reply()[0], 221)
        got = H.wait_maildir(inst.vmaildir("alice@example.test"), 1, inst=inst)[0]
        self.assertIn(b"\nX-Milter: added by the test milter\n", got)
        self.assertIn(b"\nSubject: edited\n", got)
        # carol was added by the milter, reject-me was never a recipient
        H.wait_maildir(inst.vmaildir("carol@example.test"), 1, inst=inst)
        self.assertEqual(H.maildir_messages(inst.vmaildir("reject-me@example.test")), [])

    def test_auth_macro(self):
        m = self.milter()
        inst = self.make_instance()
        inst.params.update({"smtpd_milters": m.endpoint,
                            "smtpd_sasl_auth_enable": "yes",
                            "smtpd_tls_auth_only": "no"})
        inst.prepare()
        inst.add_user("alice", "pw")
        inst.start(prepare=False)
        s = H.smtp_client(inst)
        s.login("alice", "pw")
        s.sendmail("alice@example.test", ["bob@example.test"], self.message("auth"))
        s.quit()
        H.wait_maildir(inst.vmaildir("bob@example.test"), 1, inst=inst)
        self.assertEqual(m.macros.get("{auth_authen}"), "alice")
        self.assertEqual(m.macros.get("{auth_type}"), "PLAIN")

    def test_macros_tls_and_auth_on_submission(self):
        # Submission with STARTTLS and AUTH: the HELO step after STARTTLS
        # carries the TLS macros, MAIL the AUTH ones and the sender's
        # route, RCPT the recipient's; the connect list is the one the
        # milter asked for in its OPTNEG answer (SMFIM_CONNECT), names
        # with and without braces.
        m = milterlib.Milter(want_macros={
            0: "j {client_addr} {client_port} client_ptr {client_name} "
               "{daemon_addr} {daemon_port} _"})
        self.addCleanup(m.stop)
        sub = H.free_port()
        inst = self.make_instance(services=[
            "127.0.0.1:%d inet n - n - - smtpd"
            " -o smtpd_tls_security_level=encrypt"
            " -o smtpd_sasl_auth_enable=yes" % sub])
        inst.params.update({"smtpd_milters": m.endpoint,
                            "milter_macro_daemon_name": "mx-submission"})
        inst.make_cert("mx.example.test", level="may")
        inst.prepare()
        inst.add_user("alice", "pw")
        inst.start(prepare=False)
        inst.wait_smtp(sub)
        s = smtplib.SMTP("127.0.0.1", sub, timeout=30)
        s.ehlo("client.example")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo("client.example")
        cipher = s.sock.cipher()
        client_port = s.sock.getsockname()[1]
        s.login("alice", "pw")
        self.assertEqual(s.mail("alice@example.test",
                                ["AUTH=alice+2Blist@example.test"])[0], 250)
        s.rcpt("bob@example.test")
        code, resp = s.data(self.message("tls"))
        self.assertEqual(code, 250, resp)
        qid = re.search(rb"queued as (\S+)", resp).group(1).decode()
        s.quit()
        H.wait_maildir(inst.vmaildir("bob@example.test"), 1, inst=inst)
        conn = m.stage_macros["C"]
        self.assertEqual(conn, {
            "j": "mx.example.test", "{client_addr}": "127.0.0.1",
            "{client_port}": str(client_port), "client_ptr": "localhost",
            "{client_name}": "localhost", "{daemon_addr}": "127.0.0.1",
            "{daemon_port}": str(sub), "_": "localhost [127.0.0.1]"})
        helo = m.stage_macros["H"]
        self.assertEqual(helo["{tls_version}"], cipher[1])
        self.assertEqual(helo["{cipher}"], cipher[0])
        self.assertEqual(helo["{cipher_bits}"], str(cipher[2]))
        # no client certificate: no certificate macros
        self.assertNotIn("{cert_subject}", helo)
        self.assertNotIn("{cert_issuer}", helo)
        mail = m.stage_macros["M"]
        self.assertEqual(mail["{auth_type}"], "PLAIN")
        self.assertEqual(mail["{auth_authen}"], "alice")
        self.assertEqual(mail["{auth_author}"], "alice+list@example.test")
        self.assertEqual(mail["{mail_addr}"], "alice@example.test")
        self.assertEqual(mail["{mail_mailer}"], "virtual")
        self.assertEqual(mail["{mail_host}"], "example.test")
        rcpt = m.stage_macros["R"]
        self.assertEqual(rcpt["{rcpt_addr}"], "bob@example.test")
        self.assertEqual(rcpt["{rcpt_mailer}"], "virtual")
        self.assertEqual(rcpt["{rcpt_host}"], "example.test")
        self.assertEqual(rcpt["i"], qid)
        for stage in ("T", "N", "E"):
            self.assertEqual(m.stage_macros[stage], {"i": qid}, stage)
        # the HELO before STARTTLS had no TLS macros to send
        helos = [i for i, (c, _) in enumerate(m.seen) if c == "H"]
        self.assertEqual(len(helos), 2)
        self.assertNotEqual(m.seen[helos[0] - 1], ("D", "H"))
        self.assertEqual(m.seen[helos[1] - 1], ("D", "H"))
        # {daemon_name} is milter_macro_daemon_name, in the default
        # connect list (which this milter replaced): not sent here
        self.assertNotIn("{daemon_name}", m.macros)

    def test_protocol_2(self):
        # milter_protocol = 2: OPTNEG offers version 2 with the version 2
        # steps only; DATA (a version 4 step) is never sent, the rest is.
        m = self.milter()
        inst = self.start(m.endpoint, milter_protocol="2")
        self.assertEqual(self.send_one(inst, "EDITME")[0], 250)
        H.wait_maildir(inst.vmaildir("carol@example.test"), 1, inst=inst)
        self.assertEqual(m.optneg[0], 2)
        self.assertEqual(m.optneg[2], 0x7f)
        cmds = [c for c, _ in m.seen]
        self.assertNotIn("T", cmds)
        self.assertNotIn("U", cmds)
        for c in ("C", "H", "M", "R", "L", "N", "B", "E"):
            self.assertIn(c, cmds, m.seen)
        inst.stop()
        # the default, 6: DATA is sent
        m6 = self.milter()
        inst = self.start(m6.endpoint)
        self.assertEqual(self.send_one(inst, "plain")[0], 250)
        self.assertEqual(m6.optneg[0], 6)
        self.assertIn("T", [c for c, _ in m6.seen])

    def test_refused_recipients_for_rcpt_rej(self):
        # A milter that negotiated SMFIP_RCPT_REJ also sees the recipients
        # smtpd refused, with Postfix's macros (mailer "error", host the
        # status code, address the reply text); the refusal stands. One
        # that did not sees only the accepted ones.
        rej = milterlib.Milter(steps=0x800)
        self.addCleanup(rej.stop)
        plain = self.milter()
        inst = self.start("%s %s" % (rej.endpoint, plain.endpoint))
        s = H.smtp_client(inst)
        s.mail("alice@example.test")
        code, text = s.rcpt("nobody@example.test")
        self.assertEqual(code, 550, text)
        self.assertEqual(s.rcpt("bob@example.test")[0], 250)
        self.assertEqual(s.data(self.message("plain"))[0], 250)
        s.quit()
        H.wait_maildir(inst.vmaildir("bob@example.test"), 1, inst=inst)
        self.assertEqual([w for c, w in rej.seen if c == "R"],
                         [["<nobody@example.test>"], ["<bob@example.test>"]])
        self.assertEqual([w for c, w in plain.seen if c == "R"],
                         [["<bob@example.test>"]])
        # the macros sent with the refused one: the first RCPT's
        i = [n for n, (c, w) in enumerate(rej.seen) if c == "R"][0]
        self.assertEqual(rej.seen[i - 1], ("D", "R"))
        self.assertEqual(rej.rcpt_macros[0], {
            "{rcpt_mailer}": "error", "{rcpt_host}": "5.1.1",
            "{rcpt_addr}": text.decode()[len("5.1.1 "):]})
        self.assertEqual(rej.rcpt_macros[1]["{rcpt_addr}"], "bob@example.test")

    def test_unknown_command(self):
        # An unknown command goes to the milter (SMFIC_UNKNOWN) with the
        # milter_unknown_command_macros; its reject replaces the 502.
        # With milter_protocol = 2 (no UNKNOWN step) it is never sent.
        for proto in ("6", "2"):
            with self.subTest(protocol=proto):
                m = self.milter()
                inst = self.start(m.endpoint, milter_protocol=proto,
                                  milter_unknown_command_macros="{client_addr} j")
                s = H.smtp_client(inst)
                self.assertEqual(s.docmd("XFOO bar")[0], 502)
                code, text = s.docmd("XSPAM now")
                if proto == "6":
                    self.assertEqual((code, text), (550, b"5.7.1 No spam commands"))
                else:
                    self.assertEqual(code, 502)
                s.quit()
                unknown = [w for c, w in m.seen if c == "U"]
                if proto == "6":
                    self.assertEqual(unknown, ["XFOO bar", "XSPAM now"])
                    self.assertEqual(m.stage_macros["U"],
                                     {"{client_addr}": "127.0.0.1",
                                      "j": "mx.example.test"})
                    inst.wait_log(r"NOQUEUE: milter-reject: UNKNOWN from "
                                  r"localhost\[127\.0\.0\.1\]: 550 5\.7\.1 "
                                  r"No spam commands; proto=ESMTP helo=<client\.example>")
                else:
                    self.assertEqual(unknown, [])
                    self.assertNotIn("U", m.stage_macros)
                inst.stop()

    # ---- verdicts -----------------------------------------------------------

    def test_rejects_at_each_stage(self):
        m = self.milter()
        inst = self.start(m.endpoint)
        s = H.smtp_client(inst)
        code, resp = s.mail("tempfail@example.test")
        self.assertEqual((code, resp), (451, b"4.7.1 Service unavailable - try again later"))
        s.rset()
        self.assertEqual(s.mail("alice@example.test")[0], 250)
        code, resp = s.rcpt("reject-me@example.test")
        self.assertEqual((code, resp), (550, b"5.7.1 Command rejected"))
        self.assertEqual(s.rcpt("bob@example.test")[0], 250)
        code, resp = s.data(self.message("REJECTME"))
        self.assertEqual((code, resp), (550, b"5.7.1 Spam detected"))
        code, resp = s.mail("alice@example.test")
        s.rcpt("bob@example.test")
        code, resp = s.data(self.message("TEMPME"))
        self.assertEqual(code, 451, resp)
        # only rejected: a recipient refused by the milter leaves DATA 554
        s.mail("alice@example.test")
        s.rcpt("reject-me@example.test")
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            s.data(self.message("x"))
        self.assertEqual(cm.exception.smtp_code, 554)
        s.quit()
        inst.wait_log(r"NOQUEUE: milter-reject: MAIL from localhost\[127\.0\.0\.1\]: "
                      r"451 4\.7\.1 Service unavailable - try again later; "
                      r"from=<tempfail@example\.test> proto=ESMTP helo=<client\.example>")
        inst.wait_log(r"\S+: milter-reject: RCPT from localhost\[127\.0\.0\.1\]: "
                      r"550 5\.7\.1 Command rejected; from=<alice@example\.test> "
                      r"to=<reject-me@example\.test> proto=ESMTP helo=<client\.example>")
        inst.wait_log(r"[0-9B-Za-z]+: milter-reject: END-OF-MESSAGE from "
                      r"localhost\[127\.0\.0\.1\]: 5\.7\.1 Spam detected; "
                      r"from=<alice@example\.test> to=<bob@example\.test> proto=ESMTP "
                      r"helo=<client\.example>")
        self.assertEqual(inst.queue_files(include_tmp=True), [])
        self.assertEqual(H.maildir_messages(inst.vmaildir("bob@example.test")), [])

    def test_discard_and_quarantine(self):
        m = self.milter()
        inst = self.start(m.endpoint)
        s = H.smtp_client(inst)
        s.mail("alice@example.test")
        s.rcpt("bob@example.test")
        code, resp = s.data(self.message("DISCARDME"))
        self.assertEqual(code, 250, resp)
        s.mail("alice@example.test")
        s.rcpt("bob@example.test")
        code, resp = s.data(self.message("HOLDME"))
        self.assertEqual(code, 250, resp)
        hold_id = re.search(rb"queued as (\S+)", resp).group(1).decode()
        s.sendmail("alice@example.test", ["bob@example.test"], self.message("plain"))
        s.quit()
        msgs = H.wait_maildir(inst.vmaildir("bob@example.test"), 1, inst=inst)
        inst.wait_log(r"status=sent")
        inst.wait_log(r"\S+: milter-discard: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: "
                      r"milter triggers DISCARD action; from=<alice@example\.test> "
                      r"to=<bob@example\.test> proto=ESMTP helo=<client\.example>")
        inst.wait_log(r"%s: milter-hold: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: "
                      r"milter triggers HOLD action: held for review; "
                      r"from=<alice@example\.test> to=<bob@example\.test>" % hold_id)
        self.assertEqual(inst.queue_files(), [os.path.join("hold", hold_id)])
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"Subject: plain", msgs[0])

    # ---- milter_default_action -------------------------------------------------

    def send_one(self, inst, subject):
        s = H.smtp_client(inst)
        try:
            s.sendmail("alice@example.test", ["bob@example.test"], self.message(subject))
            return 250, None
        except smtplib.SMTPSenderRefused as e:
            return e.smtp_code, e.smtp_error
        except smtplib.SMTPRecipientsRefused as e:
            return list(e.recipients.values())[0]
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error
        finally:
            try:
                s.quit()
            except smtplib.SMTPException:
                pass

    def check_default(self, endpoint, action):
        inst = self.start(endpoint, milter_default_action=action)
        code, resp = self.send_one(inst, "default-" + action)
        if action == "tempfail":
            self.assertEqual((code, resp), (451, b"4.7.1 Service unavailable - try again later"))
            self.assertEqual(inst.queue_files(include_tmp=True), [])
            inst.wait_log(r"milter %s: .*; default_action=tempfail" % re.escape(endpoint))
        elif action == "reject":
            self.assertEqual((code, resp), (550, b"5.7.1 Command rejected"))
        elif action == "accept":
            self.assertEqual(code, 250)
            msg = H.wait_maildir(inst.vmaildir("bob@example.test"), 1, inst=inst)[0]
            self.assertIn(b"Subject: default-accept", msg)
        elif action == "quarantine":
            self.assertEqual(code, 250)
            inst.wait_log(r"milter-hold: END-OF-MESSAGE .*milter triggers HOLD action: "
                          r"milter %s unavailable" % re.escape(endpoint))
            self.assertEqual(len(inst.queue_files(dirs=("hold",))), 1)
        inst.stop()

    def test_dead_milter_default_actions(self):
        for action in ("tempfail", "accept", "reject", "quarantine"):
            with self.subTest(action=action):
                self.check_default(dead_endpoint(), action)

    def test_slow_milter_default_actions(self):
        for action in ("tempfail", "accept"):
            with self.subTest(action=action):
                m = self.milter("slow")
                self.check_default(m.endpoint, action)

    def test_per_milter_default_in_braces(self):
        # The braces override the global tempfail for the dead one only;
        # the live milter still rejects.
        m = self.milter()
        inst = self.start("{ %s, default_action=accept } %s"
                          % (dead_endpoint(), m.endpoint))
        code, _ = self.send_one(inst, "REJECTME")
        self.assertEqual(code, 550)
        code, _ = self.send_one(inst, "fine")
        self.assertEqual(code, 250)
        H.wait_maildir(inst.vmaildir("bob@example.test"), 1, inst=inst)

    # ---- postern check ---------------------------------------------------------

    def test_check_reports_bad_lists(self):
        inst = self.make_instance()
        inst.params.update({"smtpd_milters": "inet:127.0.0.1",
                            "non_smtpd_milters": "{ inet:127.0.0.1:8891, protocol=5 }",
                            "milter_default_action": "bounce",
                            "milter_protocol": "5"})
        inst.prepare()
        r = inst.postern("check")
        out = r.stdout + r.stderr
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("smtpd_milters = inet:127.0.0.1: milter inet: endpoint "
                      "without a port", out)
        self.assertIn("milter_default_action = bounce: unknown action", out)
        # Postfix has no protocol 5
        self.assertIn("milter_protocol = 5: not a milter protocol version", out)
        self.assertIn("non_smtpd_milters = { inet:127.0.0.1:8891, protocol=5 }: "
                      "not a milter protocol version", out)


class NonSmtpdMilterTest(H.InstanceTestCase):

    def start(self, milters):
        inst = SMInstance()
        self.inst = inst
        self.addCleanup(self._cleanup_inst, inst)
        inst.params.update({"non_smtpd_milters": milters,
                            "milter_command_timeout": "2s"})
        inst.vmailbox["new-sender@example.test"] = "example.test/newsender/"
        inst.start()
        return inst

    def milter(self):
        m = milterlib.Milter()
        self.addCleanup(m.stop)
        return m

    @staticmethod
    def message(subject):
        return ("From: <alice@example.test>\nTo: <bob@example.test>\n"
                "Subject: %s\nX-Remove: goes away\n\noriginal body\n" % subject).encode()

    def test_edits(self):
        m = self.milter()
        inst = self.start(m.endpoint)
        r = inst.sendmail("-f", "alice@example.test", "bob@example.test",
                          input=self.message("EDITME"))
        self.assertEqual(r.returncode, 0, r.stderr)
        msg = H.wait_maildir(inst.vmaildir("carol@example.test"), 1, inst=inst)[0]
        head, _, body = msg.partition(b"\n\n")
        self.assertIn(b"\nX-Milter: added by the test milter", head)
        self.assertIn(b"\nSubject: edited", head)
        self.assertNotIn(b"X-Remove", head)
        self.assertTrue(head.startswith(b"Return-Path: <new-sender@example.test>"), head)
        self.assertEqual(body, b"replaced body\nsecond line\n")
        self.assertQueueEmpty(inst)
        self.assertEqual(H.maildir_messages(inst.vmaildir("bob@example.test")), [])
        self.assertEqual(m.macros.get("{mail_addr}"), "alice@example.test")
        self.assertIn(("C", "localhost"), m.seen)

    def test_slow_milter_does_not_stop_pickup(self):
        # pickup waits for its milters on its own event loop: while the
        # milter holds one message at its end, another submission is
        # queued and delivered; then the first one goes through too.
        m = self.milter()
        inst = self.start(m.endpoint)
        first = []
        t = threading.Thread(target=lambda: first.append(inst.sendmail(
            "-f", "alice@example.test", "bob@example.test",
            input=self.message("WAITME"))), daemon=True)
        t.start()
        self.addCleanup(m.release.set)
        deadline = time.time() + 30
        while ("E", "") not in m.seen:
            self.assertLess(time.time(), deadline, m.seen)
            time.sleep(0.1)
        r = inst.sendmail("-f", "alice@example.test", "carol@example.test",
                          input=self.message("second"))
        self.assertEqual(r.returncode, 0, r.stderr)
        msg = H.wait_maildir(inst.vmaildir("carol@example.test"), 1, inst=inst)[0]
        self.assertIn(b"Subject: second", msg)
        self.assertEqual(first, [])          # still with the milter
        m.release.set()
        t.join(60)
        self.assertEqual(first[0].returncode, 0, first[0].stderr)
        msg = H.wait_maildir(inst.vmaildir("bob@example.test"), 1, inst=inst)[0]
        self.assertIn(b"Subject: WAITME", msg)
        self.assertQueueEmpty(inst)

    def test_maildrop_files_through_milters(self):
        # Written to maildrop/ while Postern was down: at start pickup's
        # pass gives each file to the milters on its loop, one at a time,
        # and goes on after each; the edits are in what is delivered.
        m = self.milter()
        inst = self.start(m.endpoint)
        inst.stop()
        for rcpt, subject in (("bob@example.test", "EDITME"),
                              ("alice@example.test", "second")):
            r = inst.sendmail("-f", "alice@example.test", rcpt,
                              input=self.message(subject))
            self.assertEqual(r.returncode, 0, r.stderr)
        drops = [f for f in inst.all_queue_files() if f.startswith("maildrop/")]
        self.assertEqual(len(drops), 2, inst.all_queue_files())
        inst.start(prepare=False)
        msg = H.wait_maildir(inst.vmaildir("carol@example.test"), 1, inst=inst)[0]
        self.assertIn(b"\nSubject: edited", msg)
        msg = H.wait_maildir(inst.vmaildir("alice@example.test"), 1, inst=inst)[0]
        self.assertIn(b"Subject: second", msg)
        self.assertQueueEmpty(inst)
        self.assertEqual([f for f in inst.all_queue_files()
                          if f.startswith(("maildrop/", "corrupt/"))], [])
        self.assertEqual(H.maildir_messages(inst.vmaildir("bob@example.test")), [])

    def test_reject_bounces_to_sender(self):
        m = self.milter()
        inst = self.start(m.endpoint)
        r = inst.sendmail("-f", "alice@example.test", "bob@example.test",
                          input=self.message("REJECTME"))
        self.assertEqual(r.returncode, 0, r.stderr)
        dsn = H.wait_maildir(inst.vmaildir("alice@example.test"), 1, inst=inst)[0]
        self.assertIn(b"Spam detected", dsn)
        self.assertIn(b"Final-Recipient: rfc822; bob@example.test", dsn)
        self.assertIn(b"Status: 5.7.1", dsn)
        inst.wait_log(r"\S+: milter-reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: "
                      r"5\.7\.1 Spam detected; from=<alice@example\.test> "
                      r"to=<bob@example\.test>")
        self.assertQueueEmpty(inst)
        self.assertEqual(H.maildir_messages(inst.vmaildir("bob@example.test")), [])

    def test_tempfail_stays_in_maildrop(self):
        m = self.milter()
        inst = self.start(m.endpoint)
        r = inst.sendmail("-f", "alice@example.test", "bob@example.test",
                          input=self.message("TEMPME"))
        self.assertEqual(r.returncode, 0, r.stderr)
        inst.wait_log(r"milter-reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: "
                      r"4\.7\.1 Service unavailable - try again later; "
                      r"from=<alice@example\.test> to=<bob@example\.test>")
        # sendmail leaves it in maildrop/ (its .tmp and pickup's aborted
        # .tmp file go away); nothing reaches the queue or bob
        deadline = time.time() + 20
        while True:
            files = inst.all_queue_files()
            if len(files) == 1 and files[0].startswith("maildrop/") \
                    and not os.path.basename(files[0]).startswith("."):
                break
            self.assertLess(time.time(), deadline, files)
            time.sleep(0.2)
        self.assertEqual(H.maildir_messages(inst.vmaildir("bob@example.test")), [])


if __name__ == "__main__":
    H.main()

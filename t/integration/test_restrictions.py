#!/usr/bin/env python3
"""
Restrictions, the Postfix way (issue 10): a real instance whose smtpd asks
a real dnsmasq (DNSBL, RHSBL and DNSWL records, A and TXT, on a loopback
port through smtpd_dns_servers), a tiny policy server written here (inet:)
and a real postgrey (unix:, its own db directory, --delay=2).

  - reject_rbl_client with a =127.0.0.[2..3] filter: a listed client gets
    554 with the list's TXT, logged exactly as Postfix logs it; an address
    listed with 127.0.0.9 (outside the filter) is accepted; a DNSWL permit
    skips the DNSBL
  - reject_rhsbl_sender: 554 "Sender address [domain] blocked using"
  - check_recipient_access (texthash): HOLD -> the hold queue, PREPEND ->
    the header in the Maildir, custom 5xx text, DISCARD -> 250 and nothing
    delivered, DEFER -> 450
  - warn_if_reject: logged as reject_warning, the mail is accepted
  - check_policy_service inet: the request carries Postfix's attributes, a
    REJECT answer is a 554, a policy server that is down applies
    smtpd_policy_service_default_action (451 4.3.5)
  - postgrey via unix:: the first attempt is greylisted (450), the retry
    after the delay is accepted and carries postgrey's X-Greylist header
  - the shipped fail2ban filter counts the RCPT rejects
  - smtpd_data_restrictions with CHUNKING offered: the first BDAT meets
    them (a refused BDAT drops its chunk and the next, never running them
    as commands); an EHLO client's chunked message is delivered
  - a PREPEND from smtpd_end_of_data_restrictions (the policy service at
    END-OF-MESSAGE) is on top of the delivered message
Client names are test_peername's subject: here smtpd_peername_lookup = no.
"""

import os
import pwd
import grp
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

DNSMASQ = H.DNSMASQ
POSTGREY = shutil.which("postgrey") or "/usr/sbin/postgrey"

LISTED = "127.0.0.2"      # zen.example: 127.0.0.2 + TXT
LISTED_OTHER = "127.0.0.3"  # zen.example: 127.0.0.9 (outside the filter)
WHITE = "127.0.0.4"       # zen.example lists it, wl.example permits it
CLEAN = "127.0.0.1"
ZEN_TXT = "Listed by zen, see http://zen.example/query/127.0.0.2"
# dnsmasq makes each comma-separated part a string of one TXT record;
# smtpd joins a record's strings (RFC 1035 3.3.14)
ZEN_TXT_REPLY = ZEN_TXT.replace(",", "")


def setUpModule():
    H.require_binaries()
    for b in (DNSMASQ, POSTGREY):
        if not os.path.exists(b):
            raise unittest.SkipTest("%s is not installed (scripts/deps.sh "
                                    "dnsmasq-base postgrey)" % b)


def rev(addr):
    return ".".join(reversed(addr.split(".")))


def dnsmasq(port):
    return H.Dnsmasq([
                "--local=/zen.example/", "--local=/dbl.example/",
                "--local=/wl.example/",
                "--host-record=%s.zen.example,127.0.0.2" % rev(LISTED),
                "--txt-record=%s.zen.example,%s" % (rev(LISTED), ZEN_TXT),
                "--host-record=%s.zen.example,127.0.0.9" % rev(LISTED_OTHER),
                "--host-record=%s.zen.example,127.0.0.2" % rev(WHITE),
                "--host-record=%s.wl.example,127.0.10.1" % rev(WHITE),
                "--host-record=spammer.example.dbl.example,127.0.1.2"], port)


class PolicyServer:
    """Postfix policy delegation protocol: name=value lines, an empty line;
    answers action=REJECT for sender policy-reject@..., else DUNNO."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.stopped = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                data = b""
                while b"\n\n" not in data:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                attrs = dict(l.split("=", 1) for l in
                             data.decode().split("\n\n")[0].split("\n") if "=" in l)
                self.requests.append(attrs)
                if (attrs.get("protocol_state") == "END-OF-MESSAGE"
                        and attrs.get("sender", "").startswith("eod-hold@")):
                    c.sendall(b"action=HOLD held at end of data\n\n")
                elif (attrs.get("protocol_state") == "END-OF-MESSAGE"
                        and attrs.get("sender", "").startswith("eod-tag@")):
                    c.sendall(b"action=PREPEND X-EOD-Policy: tagged at end of data\n\n")
                elif attrs.get("sender", "").startswith("policy-reject@"):
                    c.sendall(b"action=REJECT policy says no\n\n")
                else:
                    c.sendall(b"action=DUNNO\n\n")

    def stop(self):
        self.stopped = True
        H.close_listener(self.sock, self.thread)


class Postgrey:
    def __init__(self, top):
        self.dir = os.path.join(top, "postgrey")
        os.makedirs(os.path.join(self.dir, "db"))
        os.chmod(self.dir, 0o755)
        self.sock = os.path.join(self.dir, "postgrey.sock")
        empty = os.path.join(self.dir, "empty")
        open(empty, "w").close()
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        self.log = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(
            [POSTGREY, "--unix=" + self.sock, "--socketmode=0666",
             "--dbdir=" + os.path.join(self.dir, "db"), "--delay=2",
             "--user=" + user, "--group=" + group,
             "--whitelist-clients=" + empty, "--whitelist-recipients=" + empty,
             "--auto-whitelist-clients=0", "--pidfile=" + os.path.join(self.dir, "pid"),
             "--hostname=grey.test"],
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("postgrey did not start: %s" %
                                   open(os.path.join(self.dir, "log")).read())
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def rcpt_code(inst, source, sender, rcpt, port=None, helo="client.example.org"):
    s = H.smtp_client(inst, source=source, port=port)
    try:
        s.ehlo(helo)
        s.mail(sender)
        code, text = s.rcpt(rcpt)
        s.rset()
        s.quit()
    finally:
        s.close()
    return code, text.decode()


def send(inst, source, sender, rcpt, subject, port=None):
    """Whole message; (rcpt code, data code, data text)."""
    s = H.smtp_client(inst, source=source, port=port)
    try:
        s.ehlo("client.example.org")
        s.mail(sender)
        code, text = s.rcpt(rcpt)
        if code != 250:
            s.quit()
            return code, None, text.decode()
        dcode, dtext = s.data(("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\n"
                               "body of %s\r\n" % (sender, rcpt, subject, subject)).encode())
        s.quit()
    finally:
        s.close()
    return code, dcode, dtext.decode()


class Restrictions(H.InstanceTestCase):

    @classmethod
    def setUpClass(cls):
        cls.dns_port = H.free_port()
        cls.dns = dnsmasq(cls.dns_port)
        cls.policy = PolicyServer()

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.policy.stop()

    def setUp(self):
        self.grey_port = H.free_port()
        self.dead_port = H.free_port()
        self.early_port = H.free_port()
        self.data_port = H.free_port()
        inst = self.make_instance()
        self.grey = Postgrey(inst.dir)
        self.addCleanup(self.grey.stop)
        inst.params.update({
            # loopback clients are outsiders here
            "mynetworks": "192.0.2.0/24",
            "smtpd_dns_servers": "127.0.0.1:%d" % self.dns_port,
            # dnsmasq's host records would name the DNSBL test clients;
            # names are test_peername's subject
            "smtpd_peername_lookup": "no",
            "smtpd_client_restrictions":
                "permit_dnswl_client wl.example, "
                "reject_rbl_client zen.example=127.0.0.[2..3]",
            "smtpd_helo_restrictions":
                "warn_if_reject, reject_non_fqdn_helo_hostname",
            "smtpd_sender_restrictions": "reject_rhsbl_sender dbl.example",
            "smtpd_recipient_restrictions":
                "check_recipient_access texthash:%s, reject_unauth_destination, "
                "check_policy_service inet:127.0.0.1:%d"
                % (inst.path("rcpt_access"), self.policy.port),
        })
        # a restriction class as an access result
        inst.params["smtpd_restriction_classes"] = "fqdn_senders"
        inst.params["fqdn_senders"] = "reject_non_fqdn_sender"
        for u in ("hold", "tagged", "gone", "discard", "later", "down", "grey", "strict"):
            inst.vmailbox["%s@example.test" % u] = "example.test/%s/" % u
        inst.services += [
            # postgrey through unix:
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_client_restrictions= "
            "-o smtpd_recipient_restrictions=reject_unauth_destination,"
            "check_policy_service,unix:%s" % (self.grey_port, self.grey.sock),
            # a policy service that is not there
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_client_restrictions= "
            "-o smtpd_recipient_restrictions=reject_unauth_destination,"
            "check_policy_service,inet:127.0.0.1:%d,permit"
            % (self.dead_port, H.free_port()),
            # smtpd_delay_reject = no: the sender list runs at MAIL
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_delay_reject=no "
            "-o smtpd_client_restrictions= -o smtpd_recipient_restrictions="
            % self.early_port,
            # DATA and end-of-data lists
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_client_restrictions= "
            "-o smtpd_recipient_restrictions= "
            "-o smtpd_data_restrictions=reject_unauth_pipelining "
            "-o smtpd_end_of_data_restrictions=check_policy_service,"
            "inet:127.0.0.1:%d" % (self.data_port, self.policy.port),
        ]
        inst.prepare()
        inst.write("rcpt_access",
                   "hold@example.test HOLD\n"
                   "tagged@example.test PREPEND X-Postern-Tag: tagged by access\n"
                   "gone@example.test 550 5.1.1 this one left\n"
                   "discard@example.test DISCARD\n"
                   "later@example.test DEFER come back later\n"
                   "strict@example.test fqdn_senders\n")
        inst.start(prepare=False)
        self.inst = inst

    def test_dnsbl_rhsbl_dnswl(self):
        inst = self.inst
        code, text = rcpt_code(inst, LISTED, "a@sender.example", "alice@example.test")
        self.assertEqual(code, 554, text)
        self.assertEqual(text, "5.7.1 Service unavailable; Client host [%s] blocked "
                         "using zen.example; %s" % (LISTED, ZEN_TXT_REPLY))
        inst.wait_log(re.escape(
            "NOQUEUE: reject: RCPT from unknown[%s]: 554 5.7.1 Service "
            "unavailable; Client host [%s] blocked using zen.example; %s; "
            "from=<a@sender.example> to=<alice@example.test> proto=ESMTP "
            "helo=<client.example.org>" % (LISTED, LISTED, ZEN_TXT_REPLY)))
        # listed with 127.0.0.9: outside the filter
        self.assertEqual(rcpt_code(inst, LISTED_OTHER, "a@sender.example",
                                   "alice@example.test")[0], 250)
        # zen lists it, but the DNSWL permit ends the client list first
        self.assertEqual(rcpt_code(inst, WHITE, "a@sender.example",
                                   "alice@example.test")[0], 250)
        # the questions went to our dnsmasq
        q = self.dns.queries()
        self.assertIn("%s.zen.example" % rev(LISTED), q)
        self.assertIn("%s.wl.example" % rev(WHITE), q)
        # RHSBL on the sender domain
        code, text = rcpt_code(inst, CLEAN, "x@spammer.example", "alice@example.test")
        self.assertEqual(code, 554, text)
        self.assertEqual(text, "5.7.1 Service unavailable; Sender address "
                         "[spammer.example] blocked using dbl.example")
        inst.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 554 5\.7\.1 "
                      r"Service unavailable; Sender address \[spammer\.example\] blocked "
                      r"using dbl\.example; from=<x@spammer\.example> "
                      r"to=<alice@example\.test> proto=ESMTP helo=<client\.example\.org>")
        # a clean client sends
        rc, dc, dt = send(inst, CLEAN, "ok@sender.example", "alice@example.test", "clean")
        self.assertEqual((rc, dc), (250, 250), dt)

    def test_access_actions(self):
        inst = self.inst
        # HOLD: accepted, in the hold queue, not delivered
        rc, dc, dt = send(inst, CLEAN, "s@sender.example", "hold@example.test", "held")
        self.assertEqual((rc, dc), (250, 250), dt)
        qid = dt.split()[-1]
        self.assertIn("hold/" + qid, inst.queue_files(dirs=("hold",)))
        inst.wait_log(r"NOQUEUE: hold: RCPT from unknown\[127\.0\.0\.1\]: "
                      r"<hold@example\.test>: Recipient address triggers HOLD action; "
                      r"from=<s@sender\.example> to=<hold@example\.test> proto=ESMTP "
                      r"helo=<client\.example\.org>")
        r = inst.postern("queue", "list")
        self.assertIn(qid, r.stdout)
        # PREPEND: the header is in the delivered message, above Received:
        rc, dc, dt = send(inst, CLEAN, "s@sender.example", "tagged@example.test", "tag")
        self.assertEqual((rc, dc), (250, 250), dt)
        inst.wait_log(r"to=<tagged@example\.test>, .*status=sent")
        msgs = H.maildir_messages(inst.vmaildir("tagged@example.test"))
        self.assertEqual(len(msgs), 1)
        self.assertRegex(msgs[0], rb"^(?:Return-Path|Delivered-To)[^\n]*\n(?:[^\n]*\n)*?"
                         rb"X-Postern-Tag: tagged by access\nReceived: ")
        # custom reply text
        code, text = rcpt_code(inst, CLEAN, "s@sender.example", "gone@example.test")
        self.assertEqual((code, text), (550, "5.1.1 <gone@example.test>: Recipient "
                                        "address rejected: this one left"))
        # DEFER
        code, text = rcpt_code(inst, CLEAN, "s@sender.example", "later@example.test")
        self.assertEqual((code, text), (450, "4.7.1 <later@example.test>: Recipient "
                                        "address rejected: come back later"))
        # a restriction class: its list decides for that recipient only
        code, text = rcpt_code(inst, CLEAN, "root@localhost", "strict@example.test")
        self.assertEqual((code, text), (504, "5.5.2 <root@localhost>: Sender address "
                                        "rejected: need fully-qualified address"))
        self.assertEqual(rcpt_code(inst, CLEAN, "s@sender.example",
                                   "strict@example.test")[0], 250)
        self.assertEqual(rcpt_code(inst, CLEAN, "root@localhost",
                                   "tagged@example.test")[0], 250)
        # DISCARD: the client hears success, nothing is delivered or queued
        rc, dc, dt = send(inst, CLEAN, "s@sender.example", "discard@example.test", "gone")
        self.assertEqual((rc, dc), (250, 250), dt)
        inst.wait_log(r"discard: RCPT from unknown\[127\.0\.0\.1\]: "
                      r"<discard@example\.test>: Recipient address triggers DISCARD action")
        self.assertNotIn(dt.split()[-1], " ".join(inst.queue_files()))
        # a message sent after it is delivered; the discarded one never is
        rc, dc, dt = send(inst, CLEAN, "s@sender.example", "tagged@example.test", "2")
        self.assertEqual((rc, dc), (250, 250), dt)
        inst.wait_log(r"to=<tagged@example\.test>, .*status=sent", count=2)
        self.assertEqual(H.maildir_messages(inst.vmaildir("discard@example.test")), [])
        self.assertNotRegex(inst.log(), r"virtual\[\d+\]: \w+: to=<discard@")

    def test_warn_if_reject_and_relay(self):
        inst = self.inst
        # a non-FQDN HELO is only warned about
        code, _ = rcpt_code(inst, CLEAN, "s@sender.example", "alice@example.test",
                            helo="shortname")
        self.assertEqual(code, 250)
        inst.wait_log(r"NOQUEUE: reject_warning: RCPT from unknown\[127\.0\.0\.1\]: "
                      r"504 5\.5\.2 <shortname>: Helo command rejected: need "
                      r"fully-qualified hostname; from=<s@sender\.example> "
                      r"to=<alice@example\.test> proto=ESMTP helo=<shortname>")
        # reject_unauth_destination in the recipient list
        code, text = rcpt_code(inst, CLEAN, "s@sender.example", "x@remote.example")
        self.assertEqual(code, 454, text)   # smtpd_relay_restrictions comes first
        self.assertIn("Relay access denied", text)

    def test_policy_service(self):
        inst = self.inst
        n = len(self.policy.requests)
        code, text = rcpt_code(inst, CLEAN, "policy-reject@sender.example",
                               "alice@example.test")
        self.assertEqual((code, text), (554, "5.7.1 <alice@example.test>: Recipient "
                                        "address rejected: policy says no"))
        inst.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 554 5\.7\.1 "
                      r"<alice@example\.test>: Recipient address rejected: policy says "
                      r"no; from=<policy-reject@sender\.example>")
        req = self.policy.requests[n]
        self.assertEqual(req["request"], "smtpd_access_policy")
        self.assertEqual(req["protocol_state"], "RCPT")
        self.assertEqual(req["protocol_name"], "ESMTP")
        self.assertEqual(req["client_address"], "127.0.0.1")
        self.assertEqual(req["helo_name"], "client.example.org")
        self.assertEqual(req["sender"], "policy-reject@sender.example")
        self.assertEqual(req["recipient"], "alice@example.test")
        # DUNNO: accepted
        self.assertEqual(rcpt_code(inst, CLEAN, "fine@sender.example",
                                   "alice@example.test")[0], 250)
        # a policy service that is down: smtpd_policy_service_default_action
        code, text = rcpt_code(inst, CLEAN, "s@sender.example", "down@example.test",
                               port=self.dead_port)
        self.assertEqual((code, text), (451, "4.3.5 <down@example.test>: Recipient "
                                        "address rejected: Server configuration "
                                        "problem"))
        inst.wait_log(r"warning: NOQUEUE: check_policy_service inet:127\.0\.0\.1:\d+: ")

    def test_postgrey(self):
        inst = self.inst
        code, text = rcpt_code(inst, CLEAN, "grey@sender.example", "grey@example.test",
                               port=self.grey_port)
        self.assertEqual(code, 450, text)
        self.assertIn("Greylisted", text)
        inst.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 450 4\.\d\.\d "
                      r"<grey@example\.test>: Recipient address rejected: Greylisted")
        # the retry after postgrey's delay goes through
        deadline = time.time() + 60
        while True:
            time.sleep(1)
            rc, dc, dt = send(inst, CLEAN, "grey@sender.example", "grey@example.test",
                              "greylisted", port=self.grey_port)
            if rc == 250 or time.time() > deadline:
                break
            self.assertEqual(rc, 450, dt)
        self.assertEqual((rc, dc), (250, 250), dt)
        inst.wait_queue_empty()
        msgs = H.maildir_messages(inst.vmaildir("grey@example.test"))
        self.assertEqual(len(msgs), 1)
        self.assertRegex(msgs[0], rb"\nX-Greylist: delayed \d+ seconds by postgrey")

    def test_pipelined_commands_wait_for_answers(self):
        # every RCPT needs DNS and the policy service: the session pauses
        # for each answer and the replies still come in order
        inst = self.inst
        c = H.RawSMTP(inst.port, source=LISTED_OTHER)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.example.org")[0], 250)
        c.send(b"MAIL FROM:<p@sender.example>\r\nRCPT TO:<alice@example.test>\r\n"
               b"RCPT TO:<gone@example.test>\r\nRCPT TO:<bob@example.test>\r\n"
               b"DATA\r\n")
        codes = [c.reply()[0] for _ in range(5)]
        self.assertEqual(codes, [250, 250, 550, 250, 354])
        c.send(b"Subject: piped\r\n\r\npiped\r\n.\r\nQUIT\r\n")
        code, text = c.reply()
        self.assertEqual(code, 250, text)
        self.assertEqual(c.reply()[0], 221)
        c.close()
        inst.wait_log(r"to=<bob@example\.test>, .*status=sent")
        msgs = H.maildir_messages(inst.vmaildir("bob@example.test"))
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"Subject: piped", msgs[0])

    def test_delay_reject_no(self):
        inst = self.inst
        # default (delay_reject = yes): MAIL is accepted, RCPT rejected
        s = H.smtp_client(inst, source=CLEAN)
        self.assertEqual(s.mail("x@spammer.example")[0], 250)
        self.assertEqual(s.rcpt("alice@example.test")[0], 554)
        s.quit()
        # delay_reject = no: MAIL itself is refused
        s = H.smtp_client(inst, source=CLEAN, port=self.early_port)
        code, text = s.mail("x@spammer.example")
        s.quit()
        self.assertEqual((code, text.decode()), (554, "5.7.1 Service unavailable; "
                         "Sender address [spammer.example] blocked using dbl.example"))
        inst.wait_log(r"NOQUEUE: reject: MAIL from unknown\[127\.0\.0\.1\]: 554 5\.7\.1 "
                      r"Service unavailable; Sender address \[spammer\.example\]")

    def test_data_and_end_of_data(self):
        inst = self.inst
        # CHUNKING is offered with smtpd_data_restrictions: they run at
        # the first BDAT (Postfix)
        s = H.smtp_client(inst, source=CLEAN, port=self.data_port)
        self.assertTrue(s.has_extn("chunking"))
        s.quit()
        # a client that pipelines without EHLO: DATA is refused
        c = H.RawSMTP(self.data_port)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("HELO client.example.org")[0], 250)
        c.send(b"MAIL FROM:<s@sender.example>\r\nRCPT TO:<alice@example.test>\r\n"
               b"DATA\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 250)
        code, text = c.reply()
        self.assertEqual(code, 503, text)
        c.close()
        inst.wait_log(r": \w+: reject: DATA from unknown\[127\.0\.0\.1\]: 503 5\.5\.0 "
                      r"<DATA>: Data command rejected: Improper use of SMTP command pipelining; "
                      r"from=<s@sender\.example> proto=SMTP helo=<client\.example\.org>")
        # end of data: the policy service answers HOLD, asked with the queue ID
        rc, dc, dt = send(inst, CLEAN, "eod-hold@sender.example", "alice@example.test",
                          "eod", port=self.data_port)
        self.assertEqual((rc, dc), (250, 250), dt)
        qid = dt.split()[-1]
        self.assertIn("hold/" + qid, inst.queue_files(dirs=("hold",)))
        inst.wait_log(r"%s: hold: END-OF-MESSAGE from unknown\[127\.0\.0\.1\]: "
                      r"<END-OF-MESSAGE>: End-of-data held at end of data" % qid)
        eod = [r for r in self.policy.requests
               if r.get("protocol_state") == "END-OF-MESSAGE"]
        self.assertEqual(eod[-1]["queue_id"], qid)
        self.assertEqual(eod[-1]["recipient_count"], "1")
        # PREPEND at end of data: the header is in the delivered message,
        # on top, above Received:
        rc, dc, dt = send(inst, CLEAN, "eod-tag@sender.example", "carol@example.test",
                          "eod-tag", port=self.data_port)
        self.assertEqual((rc, dc), (250, 250), dt)
        inst.wait_log(r"to=<carol@example\.test>, .*status=sent")
        msgs = H.maildir_messages(inst.vmaildir("carol@example.test"))
        self.assertEqual(len(msgs), 1)
        self.assertRegex(msgs[0], rb"^(?:Return-Path|Delivered-To)[^\n]*\n(?:[^\n]*\n)*?"
                         rb"X-EOD-Policy: tagged at end of data\nReceived: from ")
        self.assertIn(b"\n\nbody of eod-tag\n", msgs[0])

    def test_bdat_and_data_restrictions(self):
        inst = self.inst
        # pipelined after HELO: the first BDAT meets smtpd_data_restrictions
        # (reject_unauth_pipelining) and is refused; its chunk is dropped,
        # never run as commands, and so is the next chunk
        chunk = b"Subject: x\r\n\r\nNOOP\r\n"
        c = H.RawSMTP(self.data_port)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("HELO client.example.org")[0], 250)
        c.send(b"MAIL FROM:<s@sender.example>\r\nRCPT TO:<alice@example.test>\r\n"
               b"BDAT %d\r\n" % len(chunk) + chunk +
               b"BDAT %d LAST\r\n" % len(chunk) + chunk + b"NOOP\r\n")
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.reply(), (503, ["5.5.0 <DATA>: Data command rejected: "
                                           "Improper use of SMTP command pipelining"]))
        self.assertEqual(c.reply()[0], 503)   # the transaction is gone
        self.assertEqual(c.reply(), (250, ["2.0.0 Ok"]))   # the one real NOOP
        self.assertEqual(c.cmd("QUIT")[0], 221)
        c.close()
        inst.wait_log(r": \w+: reject: BDAT from unknown\[127\.0\.0\.1\]: 503 5\.5\.0 "
                      r"<DATA>: Data command rejected: Improper use of SMTP command "
                      r"pipelining; from=<s@sender\.example> proto=SMTP "
                      r"helo=<client\.example\.org>")
        # an EHLO client's BDAT passes them and its message is delivered
        body = b"Subject: chunked\r\n\r\nsent in two chunks\r\n"
        c = H.RawSMTP(self.data_port)
        self.assertEqual(c.reply()[0], 220)
        code, lines = c.cmd("EHLO client.example.org")
        self.assertIn("CHUNKING", lines)
        self.assertEqual(c.cmd("MAIL FROM:<s@sender.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<bob@example.test>")[0], 250)
        c.send(b"BDAT 10\r\n" + body[:10])
        self.assertEqual(c.reply(), (250, ["2.0.0 Ok: 10 bytes"]))
        c.send(b"BDAT %d LAST\r\n" % (len(body) - 10) + body[10:])
        code, lines = c.reply()
        self.assertEqual(code, 250, lines)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        c.close()
        inst.wait_log(r"to=<bob@example\.test>, .*status=sent")
        msgs = H.maildir_messages(inst.vmaildir("bob@example.test"))
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"\n\nsent in two chunks\n", msgs[0])
        # "BDAT 0 LAST" as the first BDAT: the data restrictions, then at
        # once the end-of-data ones (the policy service), then the commit
        c = H.RawSMTP(self.data_port)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("EHLO client.example.org")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<s@sender.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<carol@example.test>")[0], 250)
        code, lines = c.cmd("BDAT 0 LAST")
        self.assertEqual(code, 250, lines)
        self.assertTrue(lines[0].startswith("2.0.0 Ok: queued as "), lines)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        c.close()
        inst.wait_log(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 "
                      r"rcpt=1 bdat=1 quit=1 commands=5")
        inst.wait_log(r"to=<carol@example\.test>, .*status=sent")

    def test_fail2ban_counts_rejects(self):
        try:
            import test_fail2ban as F
        except unittest.SkipTest:
            self.skipTest("fail2ban not installed")
        if shutil.which("fail2ban-regex") is None or not os.path.exists(F.COMMON):
            self.skipTest("fail2ban not installed")
        inst = self.inst
        rcpt_code(inst, LISTED, "a@sender.example", "alice@example.test")
        rcpt_code(inst, CLEAN, "x@spammer.example", "alice@example.test")
        rcpt_code(inst, CLEAN, "s@sender.example", "gone@example.test")
        inst.wait_log(r"reject: RCPT from .*gone@example", count=1)
        n = len(re.findall(r"\]: NOQUEUE: reject: RCPT from ", inst.log()))
        self.assertEqual(n, 3)
        matched, _, out = F.fail2ban_regex(inst.path("maillog"))
        self.assertEqual(matched, n, out)
        self.assertIn(LISTED, out)
        # greylisting is not an offence: the server will retry
        grey = ("Dec  6 10:00:00 mx postern/smtpd[1]: NOQUEUE: reject: RCPT from "
                "mx.example[192.0.2.9]: 450 4.2.0 <a@example.test>: Recipient "
                "address rejected: Greylisted, see http://postgrey.example/; "
                "from=<b@example.org> to=<a@example.test> proto=ESMTP helo=<mx>")
        self.assertEqual(F.fail2ban_regex(grey)[0], 0)
        self.assertEqual(F.fail2ban_regex(grey.replace("Greylisted", "Blocked"))[0], 1)


class UnlistedSender(H.InstanceTestCase):
    """reject_unlisted_sender and smtpd_reject_unlisted_sender: a sender
    address of our own domains must be one of our recipients."""

    def setUp(self):
        self.inst = self.make_instance(conf={
            "smtpd_reject_unlisted_sender": "yes",
            # the implicit check holds even after a permit
            "smtpd_recipient_restrictions": "permit_mynetworks, reject_unauth_destination"})
        self.inst.start()

    def test_unlisted_sender(self):
        inst = self.inst
        code, text = rcpt_code(inst, CLEAN, "nobody@example.test", "alice@example.test")
        self.assertEqual((code, text), (550, "5.1.0 <nobody@example.test>: Sender "
                                        "address rejected: User unknown in virtual "
                                        "mailbox table"))
        inst.wait_log(r"NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 550 "
                      r"5\.1\.0 <nobody@example\.test>: Sender address rejected")
        # a listed sender, another domain's, and the null sender pass
        for sender in ("bob@example.test", "x@elsewhere.example", ""):
            self.assertEqual(rcpt_code(inst, CLEAN, sender, "alice@example.test")[0],
                             250, sender)
        # the restriction itself, in a list
        inst.stop()
        inst.params["smtpd_reject_unlisted_sender"] = "no"
        inst.params["smtpd_sender_restrictions"] = "reject_unlisted_sender"
        inst.start()
        self.assertEqual(rcpt_code(inst, CLEAN, "nobody@example.test",
                                   "alice@example.test")[0], 550)
        self.assertEqual(rcpt_code(inst, CLEAN, "bob@example.test",
                                   "alice@example.test")[0], 250)


if __name__ == "__main__":
    H.main()

#!/usr/bin/env python3
"""
The client's name, the Postfix way (issue 10): smtpd looks up the PTR
record of each client and forward-confirms it (the name's A records must
hold the address) through c-ares, before the greeting. A real dnsmasq on a
loopback port (smtpd_dns_servers) serves the records:

  127.0.0.5  PTR good.example.test, whose A is 127.0.0.5: confirmed; the
             name is in the "connect from" log line, in Received: and in
             the reject logs
  127.0.0.6  PTR forged.example.test, whose A is 127.0.0.99: "unknown",
             Postfix's warning, reject_unknown_client_hostname answers
             unknown_client_reject_code (550 here)
  127.0.0.7  no PTR: "unknown", 550
  127.0.0.9  PTR mx1.bad.example.test (confirmed): check_client_access
             matches its parent domain bad.example.test
  - a DNS server that does not answer: "unknown" with a temporary status,
    so reject_unknown_client_hostname says 450 whatever the configured code
  - a DNS server that stays silent: the lookup ends at smtpd_dns_timeout
    (temporary, 450), and a client that talked before the greeting is
    logged as improper pipelining after CONNECT
  - the policy request carries client_name (the confirmed name) and
    reverse_client_name (the PTR name even when it was not confirmed)
  - smtpd_peername_lookup = no: every client is "unknown" and no PTR
    question is asked
  - smtpd_delay_reject = no: the client list runs at connect (its reject
    is the greeting, then every command but QUIT gets 503 5.7.0) and the
    HELO list at HELO (the reject is the HELO reply)
"""

import os
import re
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402
from test_restrictions import PolicyServer  # noqa: E402
from milterlib import Milter  # noqa: E402

DNSMASQ = H.DNSMASQ

GOOD, FORGED, NOPTR, BAD = "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.9"


def setUpModule():
    H.require_binaries()
    if not os.path.exists(DNSMASQ):
        raise unittest.SkipTest("dnsmasq is not installed (scripts/deps.sh "
                                "dnsmasq-base)")


def dnsmasq(port):
    # answered from these records only, NXDOMAIN otherwise
    return H.Dnsmasq([
        "--local=/example.test/", "--local=/0.0.127.in-addr.arpa/",
        "--host-record=good.example.test,%s" % GOOD,
        "--ptr-record=6.0.0.127.in-addr.arpa,forged.example.test",
        "--address=/forged.example.test/127.0.0.99",
        "--host-record=mx1.bad.example.test,%s" % BAD], port)


def rcpt(inst, source, port=None):
    s = H.smtp_client(inst, source=source, port=port)
    try:
        s.mail("s@sender.example")
        code, text = s.rcpt("alice@example.test")
        s.quit()
    finally:
        s.close()
    return code, text.decode()


class PeerName(H.InstanceTestCase):

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
        self.deaddns_port = H.free_port()
        self.nolookup_port = H.free_port()
        self.early_port = H.free_port()
        self.slow_port = H.free_port()
        self.policy_port = H.free_port()
        self.milter_port = H.free_port()
        # connect macros asked for in OPTNEG (stage 0)
        self.milter = Milter(want_macros={0: "{client_name} {client_ptr} _"})
        self.addCleanup(self.milter.stop)
        # a DNS "server" that reads nothing and answers nothing
        self.silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.silent.bind(("127.0.0.1", 0))
        self.addCleanup(self.silent.close)
        inst = self.make_instance()
        clients = ("check_client_access texthash:%s, reject_unknown_client_hostname"
                   % inst.path("client_access"))
        inst.params.update({
            "mynetworks": "192.0.2.0/24",   # loopback clients are outsiders
            "smtpd_dns_servers": "127.0.0.1:%d" % self.dns_port,
            "smtpd_client_restrictions": clients,
            "unknown_client_reject_code": "550",
        })
        inst.services += [
            # a DNS server that never answers (nothing listens there)
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_dns_servers=127.0.0.1:9"
            % self.deaddns_port,
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_peername_lookup=no"
            % self.nolookup_port,
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_dns_servers=127.0.0.1:%d "
            "-o smtpd_dns_timeout=2s" % (self.slow_port, self.silent.getsockname()[1]),
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_client_restrictions= "
            "-o smtpd_recipient_restrictions=reject_unauth_destination,"
            "check_policy_service,inet:127.0.0.1:%d"
            % (self.policy_port, self.policy.port),
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_delay_reject=no "
            "-o smtpd_helo_restrictions=reject_non_fqdn_helo_hostname"
            % self.early_port,
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_client_restrictions= "
            "-o smtpd_milters=%s" % (self.milter_port, self.milter.endpoint),
        ]
        inst.prepare()
        inst.write("client_access", "bad.example.test REJECT no mail from bad\n")
        inst.start(prepare=False)
        self.inst = inst

    def test_confirmed_name(self):
        inst = self.inst
        s = H.smtp_client(inst, source=GOOD)
        s.sendmail("s@sender.example", ["alice@example.test"],
                   b"Subject: named\r\n\r\nfrom a named host\r\n")
        s.quit()
        inst.wait_log(r"connect from good\.example\.test\[127\.0\.0\.5\]")
        inst.wait_log(r": client=good\.example\.test\[127\.0\.0\.5\]")
        inst.wait_log(r"to=<alice@example\.test>, .*status=sent")
        msgs = H.maildir_messages(inst.vmaildir("alice@example.test"))
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"Received: from client.example (good.example.test "
                      b"[127.0.0.5])\n", msgs[0])
        q = self.dns.queries()
        self.assertIn("5.0.0.127.in-addr.arpa", q)
        self.assertRegex(q, r"query\[A\] good\.example\.test")

    def test_forged_and_missing_ptr(self):
        inst = self.inst
        code, text = rcpt(inst, FORGED)
        self.assertEqual((code, text), (550, "5.7.25 Client host rejected: cannot "
                                        "find your hostname, [127.0.0.6]"))
        inst.wait_log(r"warning: hostname forged\.example\.test does not resolve "
                      r"to address 127\.0\.0\.6")
        inst.wait_log(r"connect from unknown\[127\.0\.0\.6\]")
        inst.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.6\]: 550 "
                      r"5\.7\.25 Client host rejected: cannot find your hostname, "
                      r"\[127\.0\.0\.6\]; from=<s@sender\.example> "
                      r"to=<alice@example\.test> proto=ESMTP helo=<client\.example>")
        code, text = rcpt(inst, NOPTR)
        self.assertEqual(code, 550, text)
        inst.wait_log(r"connect from unknown\[127\.0\.0\.7\]")
        # the confirmed client passes the same list
        self.assertEqual(rcpt(inst, GOOD)[0], 250)

    def milter_connect_macros(self, source):
        s = H.smtp_client(self.inst, source=source, port=self.milter_port)
        s.quit()
        deadline = time.time() + 10
        while "C" not in self.milter.stage_macros and time.time() < deadline:
            time.sleep(0.05)
        with self.milter.lock:
            got = dict(self.milter.stage_macros.get("C", {}))
            self.milter.stage_macros.clear()
        return got

    def test_milter_names(self):
        """Postfix's milter view of the names: {client_name} confirmed,
        {client_ptr} the PTR answer, "_" flagged when they differ."""
        got = self.milter_connect_macros(FORGED)
        self.assertEqual(got.get("{client_name}"), "unknown")
        self.assertEqual(got.get("{client_ptr}"), "forged.example.test")
        self.assertEqual(got.get("_"), "forged.example.test [127.0.0.6] (may be forged)")
        got = self.milter_connect_macros(GOOD)
        self.assertEqual(got.get("{client_name}"), "good.example.test")
        self.assertEqual(got.get("{client_ptr}"), "good.example.test")
        self.assertEqual(got.get("_"), "good.example.test [127.0.0.5]")

    def test_dns_failure_is_temporary(self):
        inst = self.inst
        code, text = rcpt(inst, GOOD, port=self.deaddns_port)
        self.assertEqual((code, text), (450, "4.7.25 Client host rejected: cannot "
                                        "find your hostname, [127.0.0.5]"))
        inst.wait_log(r"NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.5\]: 450 4\.7\.25")

    def test_policy_request_names(self):
        inst = self.inst
        n = len(self.policy.requests)
        self.assertEqual(rcpt(inst, FORGED, port=self.policy_port)[0], 250)
        self.assertEqual(rcpt(inst, GOOD, port=self.policy_port)[0], 250)
        forged, good = self.policy.requests[n:n + 2]
        self.assertEqual((forged["client_address"], forged["client_name"],
                          forged["reverse_client_name"]),
                         (FORGED, "unknown", "forged.example.test"))
        self.assertEqual((good["client_name"], good["reverse_client_name"]),
                         ("good.example.test", "good.example.test"))

    def test_lookup_timeout(self):
        inst = self.inst
        c = H.RawSMTP(self.slow_port, source=GOOD)
        c.send("EHLO client.example.org\r\n")   # before the greeting
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.reply()[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<s@sender.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<alice@example.test>"),
                         (450, ["4.7.25 Client host rejected: cannot find your "
                                "hostname, [127.0.0.5]"]))
        c.cmd("QUIT")
        c.close()
        inst.wait_log(r"improper command pipelining after CONNECT from "
                      r"unknown\[127\.0\.0\.5\]")
        inst.wait_log(r"connect from unknown\[127\.0\.0\.5\]")

    def test_check_client_access_by_name(self):
        inst = self.inst
        code, text = rcpt(inst, BAD)
        self.assertEqual((code, text), (554, "5.7.1 <mx1.bad.example.test[127.0.0.9]>: "
                                        "Client host rejected: no mail from bad"))
        inst.wait_log(r"NOQUEUE: reject: RCPT from mx1\.bad\.example\.test\[127\.0\.0\.9\]: "
                      r"554 5\.7\.1 <mx1\.bad\.example\.test\[127\.0\.0\.9\]>: Client host "
                      r"rejected: no mail from bad;")

    def test_peername_lookup_off(self):
        inst = self.inst
        before = self.dns.queries().count("5.0.0.127.in-addr.arpa")
        code, text = rcpt(inst, GOOD, port=self.nolookup_port)
        self.assertEqual(code, 550, text)   # unknown, and permanently so
        inst.wait_log(r"connect from unknown\[127\.0\.0\.5\]")
        self.assertEqual(self.dns.queries().count("5.0.0.127.in-addr.arpa"), before)

    def test_delay_reject_no(self):
        inst = self.inst
        # the client list at connect: its reject is the greeting
        c = H.RawSMTP(self.early_port, source=FORGED)
        self.assertEqual(c.reply(), (550, ["5.7.25 Client host rejected: cannot find "
                                           "your hostname, [127.0.0.6]"]))
        self.assertEqual(c.cmd("EHLO client.example.org"),
                         (503, ["5.7.0 Error: access denied for unknown[127.0.0.6]"]))
        self.assertEqual(c.cmd("MAIL FROM:<s@sender.example>")[0], 503)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        c.close()
        inst.wait_log(r"NOQUEUE: reject: CONNECT from unknown\[127\.0\.0\.6\]: 550 "
                      r"5\.7\.25 Client host rejected: cannot find your hostname, "
                      r"\[127\.0\.0\.6\]; proto=SMTP$")
        inst.wait_log(r"disconnect from unknown\[127\.0\.0\.6\] ehlo=0/1 mail=0/1 "
                      r"quit=1 commands=1/3")
        # the HELO list at HELO; a good name afterwards is accepted
        c = H.RawSMTP(self.early_port, source=GOOD)
        self.assertEqual(c.reply()[0], 220)
        self.assertEqual(c.cmd("HELO shortname"),
                         (504, ["5.5.2 <shortname>: Helo command rejected: need "
                                "fully-qualified hostname"]))
        inst.wait_log(r"NOQUEUE: reject: HELO from good\.example\.test\[127\.0\.0\.5\]: "
                      r"504 5\.5\.2 <shortname>: Helo command rejected: need "
                      r"fully-qualified hostname; proto=SMTP helo=<shortname>")
        self.assertEqual(c.cmd("EHLO client.example.org")[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<s@sender.example>")[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<alice@example.test>")[0], 250)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        c.close()


if __name__ == "__main__":
    H.main()

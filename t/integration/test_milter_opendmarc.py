#!/usr/bin/env python3
"""
smtpd_milters with real OpenDKIM and OpenDMARC (Debian opendmarc) in one
chain, and dnsmasq serving the _dmarc and SPF records of example.test on
a loopback address. OpenDMARC has no resolver setting of its own, so it
runs in a private mount namespace whose /etc/resolv.conf names that
dnsmasq (needs root; skipped otherwise).

  - a message signed for example.test (made by the signing instance of
    test_milter_opendkim's set-up) comes in unauthenticated: the
    verifier says dkim=pass and OpenDMARC, after it in smtpd_milters,
    adds Authentication-Results with dmarc=pass for header.from
    example.test
  - an unsigned message whose header From: is forged.test (DMARC policy
    p=reject) and whose envelope sender is another domain is refused at
    end of message with OpenDMARC's reply, logged as Postfix's
    milter-reject line, and nothing is queued
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import postern_harness as H  # noqa: E402
import test_milter_opendkim as dk  # noqa: E402

OPENDMARC = shutil.which("opendmarc") or "/usr/sbin/opendmarc"
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
DNS_ADDR = "127.83.77.1"    # a loopback address of our own for port 53


def setUpModule():
    H.require_binaries()
    for p in (OPENDMARC, DNSMASQ, shutil.which("unshare") or "/usr/bin/unshare"):
        if not os.access(p, os.X_OK):
            raise RuntimeError("%s missing: install opendmarc dnsmasq-base "
                               "(scripts/test.sh does)" % p)


class OpenDMARCTest(H.InstanceTestCase):

    header = staticmethod(dk.OpenDKIMTest.header)

    def setUp(self):
        """OpenDKIMTest's signer and verifier, then DNS and OpenDMARC."""
        if os.geteuid() != 0:
            raise unittest.SkipTest("a private resolv.conf for OpenDMARC needs root")
        dk.OpenDKIMTest.setUp(self)
        self.dns = subprocess.Popen(
            [DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts",
             "--bind-interfaces", "--listen-address=" + DNS_ADDR, "--port=53",
             "--pid-file=",
             "--txt-record=_dmarc.example.test,v=DMARC1; p=reject",
             "--txt-record=_dmarc.forged.test,v=DMARC1; p=reject",
             "--txt-record=example.test,v=spf1 -all"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        self.addCleanup(self.stop_proc, self.dns)
        deadline = time.time() + 10
        while not self.dns_up():
            if self.dns.poll() is not None or time.time() > deadline:
                raise AssertionError("dnsmasq did not start on %s:53" % DNS_ADDR)
            time.sleep(0.1)
        rc = os.path.join(self.work, "resolv.conf")
        with open(rc, "w") as f:
            f.write("nameserver %s\noptions timeout:2 attempts:1\n" % DNS_ADDR)
        self.dmarc_port = H.free_port()
        # The default IgnoreHosts is 127.0.0.1, where our clients are.
        ignore = os.path.join(self.work, "ignore-hosts")
        with open(ignore, "w") as f:
            f.write("192.0.2.1\n")
        conf = os.path.join(self.work, "opendmarc.conf")
        with open(conf, "w") as f:
            f.write("Socket inet:%d@127.0.0.1\nAuthservID mx.example.test\n"
                    "TrustedAuthservIDs mx.example.test\nRejectFailures true\n"
                    "SPFSelfValidate true\nSyslog false\nBackground false\n"
                    "IgnoreHosts %s\nPidFile %s\n" % (self.dmarc_port, ignore,
                                     os.path.join(self.work, "opendmarc.pid")))
        self.dmarc_log = open(os.path.join(self.work, "opendmarc.log"), "wb")
        self.addCleanup(self.dmarc_log.close)
        self.dmarc = subprocess.Popen(
            ["unshare", "-m", "sh", "-c",
             'mount --bind "$0" /etc/resolv.conf && exec "$1" -f -c "$2"',
             rc, OPENDMARC, conf],
            stdout=self.dmarc_log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_proc, self.dmarc)
        deadline = time.time() + 20
        while not H.port_accepts(self.dmarc_port):
            if self.dmarc.poll() is not None or time.time() > deadline:
                with open(self.dmarc_log.name) as f:
                    raise AssertionError("opendmarc did not start: %s" % f.read())
            time.sleep(0.1)

    @staticmethod
    def stop_proc(p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    @staticmethod
    def dns_up():
        """A TXT query for _dmarc.example.test answered with the record."""
        import socket
        q = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
             b"\x06_dmarc\x07example\x04test\x00\x00\x10\x00\x01")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(0.5)
            try:
                u.sendto(q, (DNS_ADDR, 53))
                return b"DMARC1" in u.recv(512)
            except OSError:
                return False

    def start(self):
        inst = self.make_instance()
        inst.params.update({
            "smtpd_milters": "%s, %s, inet:127.0.0.1:%d" % (
                self.signer.endpoint, self.verifier.endpoint, self.dmarc_port),
            "smtpd_sasl_auth_enable": "yes", "smtpd_tls_auth_only": "no"})
        inst.prepare()
        inst.add_user("alice", "pw")
        inst.start(prepare=False)
        return inst

    def test_pass_and_reject(self):
        inst = self.start()
        # signed by the signer (authenticated), delivered to bob
        msg = H.make_message("alice@example.test", ["bob@example.test"],
                             "dmarc aligned", "Signed.\r\n")
        s = H.smtp_client(inst)
        s.login("alice", "pw")
        s.sendmail("alice@example.test", ["bob@example.test"], msg)
        s.quit()
        signed = H.wait_maildir(inst.vmaildir("bob@example.test"), 1, inst=inst)[0]
        self.assertEqual(len(self.header(signed, b"DKIM-Signature")), 1, signed)

        # the signed bytes again, unauthenticated: DKIM passes, DMARC passes
        s = H.smtp_client(inst)
        s.sendmail("alice@example.test", ["carol@example.test"],
                   signed.replace(b"\n", b"\r\n"))
        s.quit()
        got = H.wait_maildir(inst.vmaildir("carol@example.test"), 1, inst=inst)[0]
        ar = b" ".join(self.header(got, b"Authentication-Results"))
        self.assertRegex(ar, rb"dkim=pass")
        self.assertRegex(ar, rb"mx\.example\.test;\s+dmarc=pass[^;]*header\.from=example\.test")

        # a header From: of forged.test (p=reject), unsigned, the envelope
        # from another domain: nothing aligns, OpenDMARC refuses it
        s = H.smtp_client(inst)
        s.mail("alice@example.test")
        s.rcpt("carol@example.test")
        code, resp = s.data(H.make_message("boss@forged.test", ["carol@example.test"],
                                           "forged", "Not signed.\r\n"))
        s.quit()
        self.assertEqual(code, 550, resp)
        self.assertIn(b"DMARC", resp)
        inst.wait_log(r"\S+: milter-reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: "
                      r"5\.7\.1 .*DMARC.*; from=<alice@example\.test> "
                      r"to=<carol@example\.test> proto=ESMTP helo=<client\.example>")
        self.assertEqual(len(H.maildir_messages(inst.vmaildir("carol@example.test"))), 1)
        self.assertQueueEmpty(inst)


if __name__ == "__main__":
    H.main()

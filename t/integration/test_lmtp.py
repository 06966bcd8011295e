#!/usr/bin/env python3
"""
LMTP out (issue 10): the lmtp delivery agent delivers into a real,
PRIVATE Dovecot LMTP server (bench/benchlib.py's Dovecot: own config,
base_dir and Maildirs in a temporary directory, a UNIX listener and a TCP
listener on a free loopback port).

  - virtual_transport = lmtp:unix:PATH, and transport_maps with
    lmtp:inet:127.0.0.1:PORT: the message bytes land in Dovecot's Maildir
  - two recipients, one unknown to Dovecot: that one bounces with
    Dovecot's reply quoted, the other is delivered, each with its own log
    line in Postfix's lmtp format
  - after DATA, Dovecot answers 250 for one recipient and 452 (quota) for
    the other: only that one is deferred, the other is not sent again
  - Dovecot stopped: connection refused defers, the message stays queued,
    and is delivered once Dovecot is back
  - mailbox_transport = lmtp:unix:PATH sends a local user's mail to LMTP
  - lmtp_tls_security_level / lmtp_sasl_auth_enable, not implemented,
    are refused by postern check
"""

import os
import re
import smtplib
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))

import postern_harness as H  # noqa: E402
import benchlib  # noqa: E402

LOCAL_USER = "ptlmtp1"
DOVECOT_USERS = ("alice@example.test", "bob@example.test", "dave@inet.test",
                 LOCAL_USER + "@mx.example.test")


def setUpModule():
    H.require_binaries()


class LMTPTest(H.InstanceTestCase):

    # A quota that an over-full Maildir exceeds; with quota_full_tempfail
    # Dovecot answers 452 for that recipient after DATA (RFC 2033 4.2).
    QUOTA_CONF = """
mail_plugins = $mail_plugins quota
plugin {
  quota = maildir:User quota
  quota_rule = *:storage=20K
}
quota_full_tempfail = yes
"""

    def setUp(self):
        self.dc = benchlib.Dovecot(None, "lmtp", 0, users=DOVECOT_USERS,
                                   extra_conf=self.QUOTA_CONF)
        self.addCleanup(self.dc.stop)

    def instance(self, **conf):
        params = {
            "virtual_mailbox_domains": "example.test, inet.test",
            "virtual_transport": "lmtp:unix:" + self.dc.lmtp_socket,
            "transport_maps": "lmdb:" + "{dir}/transport",
        }
        params.update(conf)
        inst = self.make_instance()
        params["transport_maps"] = params["transport_maps"].format(dir=inst.dir)
        inst.params.update(params)
        inst.vmailbox["dave@inet.test"] = "inet.test/dave/"
        inst.prepare()
        inst.write("transport", "inet.test lmtp:inet:127.0.0.1:%d\n" % self.dc.port)
        inst.postern("map", "build", "lmdb:" + inst.path("transport"), check=True)
        inst.start(prepare=False)
        return inst

    def send(self, inst, rcpts, subject, body):
        msg = H.make_message("sender@example.test", rcpts, subject, body)
        with H.smtp_client(inst) as s:
            s.sendmail("sender@example.test", rcpts, msg)
        return msg

    def assert_in_maildir(self, name, msg, count=1):
        msgs = H.wait_maildir(self.dc.maildir(name), count=count, inst=self.inst)
        want = msg.replace(b"\r\n", b"\n")
        head, body = want.split(b"\n\n", 1)
        got = [m for m in msgs if m.endswith(b"\n\n" + body)]
        self.assertTrue(got, "body not found in %s: %r" % (name, msgs))
        for line in head.split(b"\n"):
            self.assertIn(line + b"\n", got[0])
        return got[0]

    def test_unix_and_inet_delivery(self):
        inst = self.instance()
        body = "first line\r\n.a line that starts with a dot\r\n..two dots\r\nend\r\n"
        msg = self.send(inst, ["alice@example.test"], "over unix", body)
        self.assert_in_maildir("alice@example.test", msg)
        sock = re.escape(self.dc.lmtp_socket)
        inst.wait_log(r"postern/lmtp\[\d+\]: \w+: to=<alice@example\.test>, "
                      r"relay=mx\.example\.test\[%s\], delay=[\d.]+, "
                      r"delays=[\d.]+/[\d.]+/[\d.]+/[\d.]+, dsn=2\.0\.0, "
                      r"status=sent \(250 2\.0\.0 <alice@example\.test> \S+ Saved\)$"
                      % sock)
        msg2 = self.send(inst, ["dave@inet.test"], "over tcp", "via inet\r\n")
        self.assert_in_maildir("dave@inet.test", msg2)
        inst.wait_log(r"postern/lmtp\[\d+\]: \w+: to=<dave@inet\.test>, "
                      r"relay=127\.0\.0\.1\[127\.0\.0\.1\]:%d, .*dsn=2\.0\.0, "
                      r"status=sent \(250 2\.0\.0 <dave@inet\.test> \S+ Saved\)$"
                      % self.dc.port)
        self.assertQueueEmpty()

    def test_one_recipient_rejected(self):
        # carol exists for Postern (virtual_mailbox_maps) but not for Dovecot.
        inst = self.instance()
        msg = self.send(inst, ["bob@example.test", "carol@example.test"], "two rcpts",
                        "for bob and carol\r\n")
        self.assert_in_maildir("bob@example.test", msg)
        m = inst.wait_log(r"postern/lmtp\[\d+\]: (\w+): to=<carol@example\.test>, "
                          r"relay=mx\.example\.test\[[^]]+\], .*dsn=5\.1\.1, "
                          r"status=bounced \(host mx\.example\.test\[[^]]+\] said: "
                          r"550 5\.1\.1 <carol@example\.test> User doesn't exist"
                          r"[^)]*\(in reply to RCPT TO command\)\)$")[0]
        qid = m.group(1)
        inst.wait_log(r"postern/lmtp\[\d+\]: %s: to=<bob@example\.test>, .*"
                      r"status=sent \(250 2\.0\.0 <bob@example\.test> \S+ Saved\)" % qid)
        self.assertFalse(os.path.exists(self.dc.maildir("carol@example.test")))
        inst.wait_log(r"%s: sender non-delivery notification" % qid)

    def test_after_data_one_recipient_deferred(self):
        # bob's Maildir is over quota: after DATA Dovecot answers 250 for
        # alice and 452 for bob; only bob is deferred and stays queued.
        benchlib.fill(self.dc.maildir("bob@example.test"), 1, 40000,
                      self.dc.uid, self.dc.gid, 0)
        inst = self.instance()
        msg = self.send(inst, ["alice@example.test", "bob@example.test"], "quota",
                        "one of two is full\r\n")
        self.assert_in_maildir("alice@example.test", msg)
        m = inst.wait_log(r"postern/lmtp\[\d+\]: (\w+): to=<alice@example\.test>, .*"
                          r"status=sent \(250 2\.0\.0 <alice@example\.test> \S+ Saved\)$")[0]
        inst.wait_log(r"postern/lmtp\[\d+\]: %s: to=<bob@example\.test>, .*dsn=4\.2\.2, "
                      r"status=deferred \(host mx\.example\.test\[[^]]+\] said: 452 4\.2\.2 "
                      r"<bob@example\.test> Quota exceeded .*\(in reply to end of DATA "
                      r"command\)\)$" % m.group(1))
        self.assertTrue(inst.queue_files(), "bob's copy left the queue")
        # Retries deliver alice no second time.
        inst.wait_log(r"%s: to=<bob@example\.test>, .*status=deferred" % m.group(1),
                      count=2, timeout=30)
        self.assertEqual(len(H.maildir_messages(self.dc.maildir("alice@example.test"))), 1)

    def test_dovecot_down_defers_then_delivers(self):
        inst = self.instance()
        self.dc.stop(keep=True)
        msg = self.send(inst, ["alice@example.test", "dave@inet.test"], "while down",
                        "Dovecot is down\r\n")
        inst.wait_log(r"postern/lmtp\[\d+\]: \w+: to=<alice@example\.test>, "
                      r"relay=.*, dsn=4\.4\.1, status=deferred \(connect to "
                      r"mx\.example\.test\[%s\]: (Connection refused|No such file "
                      r"or directory)\)$" % re.escape(self.dc.lmtp_socket))
        inst.wait_log(r"postern/lmtp\[\d+\]: \w+: to=<dave@inet\.test>, .*dsn=4\.4\.1, "
                      r"status=deferred \(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:%d: "
                      r"Connection refused\)$" % self.dc.port)
        self.assertTrue(inst.queue_files(), "message left the queue while deferred")
        self.dc.start()
        self.assert_in_maildir("alice@example.test", msg)
        self.assert_in_maildir("dave@inet.test", msg)
        self.assertQueueEmpty()

    def test_mailbox_transport(self):
        # Privileged: local looks up the system user and its .forward as root.
        inst = self.make_instance(privileged=True)
        inst.params["mailbox_transport"] = "lmtp:unix:" + self.dc.lmtp_socket
        inst.aliases["team"] = LOCAL_USER
        inst.add_system_user(LOCAL_USER)
        inst.start()
        rcpt = LOCAL_USER + "@mx.example.test"
        msg = self.send(inst, [rcpt], "to the user", "mailbox via lmtp\r\n")
        self.assert_in_maildir(rcpt, msg)
        inst.wait_log(r"postern/lmtp\[\d+\]: \w+: to=<%s>, relay=mx\.example\.test\[%s\], "
                      r".*dsn=2\.0\.0, status=sent \(250 2\.0\.0 <%s> \S+ Saved\)$"
                      % (re.escape(rcpt), re.escape(self.dc.lmtp_socket), re.escape(rcpt)))
        # Aliases first, as Postfix: team -> the user -> LMTP.
        msg2 = self.send(inst, ["team@mx.example.test"], "to the alias", "via alias\r\n")
        self.assert_in_maildir(rcpt, msg2, count=2)
        inst.wait_log(r"postern/lmtp\[\d+\]: \w+: to=<%s>, orig_to=<team@mx\.example\.test>, "
                      r".*status=sent \(250 2\.0\.0 <%s> \S+ Saved\)$"
                      % (re.escape(rcpt), re.escape(rcpt)))
        self.assertQueueEmpty()
        # Nothing went to the spool, and local did not log a second line.
        self.assertFalse(os.path.exists(inst.path("spool", LOCAL_USER)))
        self.assertNotRegex(inst.log(), r"postern/local\[\d+\]: .*status=sent")

    def test_check_refuses_lmtp_tls_and_sasl(self):
        inst = self.make_instance()
        inst.prepare()
        for name, value in (("lmtp_tls_security_level", "may"),
                            ("lmtp_sasl_auth_enable", "yes")):
            inst.params[name] = value
            inst.write_config()
            for cmd in ("check", "start"):
                r = inst.postern(cmd)
                self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn(name, r.stdout + r.stderr)
            del inst.params[name]
        inst.params["lmtp_tls_security_level"] = "none"
        inst.params["lmtp_sasl_auth_enable"] = "no"
        inst.write_config()
        r = inst.postern("check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

if __name__ == "__main__":
    H.main()

#!/usr/bin/env python3
"""
Fitting in with fail2ban: the filter shipped in etc/fail2ban/filter.d
matches, in a real instance's log, each failed SMTP AUTH and each rejected
RCPT with the client's address, and nothing else; under a syslog_name of
the administrator's choosing too. The POP3/IMAP "Login failed: ...
rip=ADDR" form is checked on sample lines.
"""

import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

FILTER = os.path.join(H.SRCDIR, "etc", "fail2ban", "filter.d", "postern.conf")
COMMON = "/etc/fail2ban/filter.d/common.conf"


def setUpModule():
    H.require_binaries()
    if shutil.which("fail2ban-regex") is None or not os.path.exists(COMMON):
        raise unittest.SkipTest("fail2ban is not installed (scripts/deps.sh)")


def fail2ban_regex(log):
    """(matched, missed, hosts) of the shipped filter over log (a path or
    a line), run the way fail2ban reads filter.d (common.conf beside it)."""
    d = tempfile.mkdtemp(prefix="postern-f2b-")
    try:
        os.mkdir(os.path.join(d, "filter.d"))
        shutil.copy(COMMON, os.path.join(d, "filter.d"))
        shutil.copy(FILTER, os.path.join(d, "filter.d"))
        r = subprocess.run(["fail2ban-regex", "--print-all-matched", log,
                            os.path.join(d, "filter.d", "postern.conf")],
                           capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(d)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"^Lines: \d+ lines, \d+ ignored, (\d+) matched, (\d+) missed",
                  r.stdout, re.M)
    assert m, r.stdout
    return int(m.group(1)), int(m.group(2)), r.stdout


class Fail2ban(H.InstanceTestCase):
    def test_filter_on_a_real_log(self):
        inst = self.make_instance(conf={
            "syslog_name": "mx-mail",
            "smtpd_sasl_auth_enable": "yes", "smtpd_tls_auth_only": "no",
            # the tests' own address is an outside client
            "mynetworks": "192.0.2.0/24"})
        inst.prepare()
        inst.add_user("alice", "right password")
        inst.start(prepare=False)
        for pw in ("wrong", "also wrong"):
            s = H.smtp_client(inst)
            try:
                with self.assertRaises(smtplib.SMTPAuthenticationError):
                    s.login("alice", pw)
            finally:
                s.close()
        s = H.smtp_client(inst)
        try:
            s.mail("someone@client.example")
            self.assertEqual(s.rcpt("x@remote.invalid")[0], 454)   # relay
            self.assertEqual(s.rcpt("nobody@example.test")[0], 550)  # unknown
            self.assertEqual(s.rcpt("alice@example.test")[0], 250)
            s.quit()
        finally:
            s.close()
        inst.wait_log(r"mx-mail/smtpd\[\d+\]: warning: .*SASL \w+ authentication "
                      r"failed", count=2)
        inst.wait_log(r"mx-mail/smtpd\[\d+\]: NOQUEUE: reject: RCPT from ", count=2)
        log = inst.log()
        # syslog_name names every line
        self.assertNotRegex(log, r"\] postern/|\s postern/\w+\[")
        # smtplib tries PLAIN, then LOGIN: count what smtpd logged
        n_auth = len(re.findall(r"smtpd\[\d+\]: warning: localhost\[127\.0\.0\.1\]: "
                                r"SASL \w+ authentication failed", log))
        self.assertGreaterEqual(n_auth, 2)
        matched, missed, out = fail2ban_regex(inst.path("maillog"))
        self.assertEqual(matched, n_auth + 2, out)
        self.assertGreater(missed, 0)
        hosts = re.findall(r"^\|\s+.*", out, re.M)
        self.assertNotIn("192.0.2", "".join(hosts))

    def test_pop3_imap_login_failures(self):
        lines = (
            "Dec  5 10:00:00 mx postern/pop3d[123]: Login failed: user=<x>, "
            "method=PLAIN, rip=192.0.2.7, lip=127.0.0.1, TLS",
            "Dec  5 10:00:01 mx postern/imapd[124]: Login failed: user=<y>, "
            "method=LOGIN, rip=2001:db8::7, lip=::1",
        )
        for line in lines:
            matched, _, out = fail2ban_regex(line)
            self.assertEqual(matched, 1, out)
        matched, _, _ = fail2ban_regex(
            "Dec  5 10:00:02 mx postern/pop3d[125]: Login: user=<x>, "
            "method=PLAIN, rip=192.0.2.7, lip=127.0.0.1, TLS")
        self.assertEqual(matched, 0)


if __name__ == "__main__":
    H.main()

#!/usr/bin/env python3
"""
smtpd_milters with real OpenDKIM (Debian opendkim, opendkim-tools), two
private instances started by the test on loopback ports, with a key made
by opendkim-genkey:

  - a signer (Mode s) that signs only mail whose {auth_authen} macro is
    set (MacroList; InternalHosts excludes loopback): a message from an
    authenticated submission user arrives in the Maildir with a
    DKIM-Signature for d=example.test s=test; one from an unauthenticated
    client in mynetworks does not
  - a verifier (Mode v) after it in smtpd_milters, reading the public key
    from a TestPublicKeys file: it adds Authentication-Results with
    dkim=pass, because Postern applies the signer's edits before the next
    milter sees the message
  - the delivered bytes themselves verify: the signed message taken from
    the Maildir and sent in again unauthenticated gets dkim=pass again
  - OpenDKIM stopped: milter_default_action=tempfail answers 451 and
    nothing is queued
  - non_smtpd_milters: mail from sendmail (pickup, shown to milters as
    localhost [127.0.0.1], internal for a signer with the default
    InternalHosts) is signed, and the verifier after it says dkim=pass
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import postern_harness as H  # noqa: E402
from test_sendmail import SMInstance  # noqa: E402

OPENDKIM = shutil.which("opendkim") or "/usr/sbin/opendkim"
GENKEY = shutil.which("opendkim-genkey") or "/usr/sbin/opendkim-genkey"


def setUpModule():
    H.require_binaries()
    for p in (OPENDKIM, GENKEY):
        if not os.access(p, os.X_OK):
            raise RuntimeError("%s missing: install opendkim opendkim-tools "
                               "(scripts/test.sh does)" % p)


class OpenDKIM:
    """One private opendkim in the foreground on a loopback port."""

    def __init__(self, workdir, name, conf):
        self.port = H.free_port()
        self.dir = workdir
        self.conf = os.path.join(workdir, name + ".conf")
        self.log = open(os.path.join(workdir, name + ".log"), "wb")
        lines = ["Syslog no", "Background no", "LogWhy yes",
                 "Socket inet:%d@127.0.0.1" % self.port,
                 "PidFile %s" % os.path.join(workdir, name + ".pid"),
                 "Canonicalization relaxed/simple",
                 "AuthservID mx.example.test",
                 # the key lives under /tmp, which others may write
                 "RequireSafeKeys no"]
        if os.geteuid() == 0:
            lines.append("UserID %s" % H.UNPRIV_USER)
        lines += conf
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([OPENDKIM, "-f", "-x", self.conf],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while not H.port_accepts(self.port):
            if self.proc.poll() is not None or time.time() > deadline:
                self.log.close()
                with open(self.log.name) as f:
                    raise AssertionError("opendkim %s did not start: %s"
                                         % (name, f.read()))
            time.sleep(0.1)
        self.endpoint = "inet:127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class OpenDKIMTest(H.InstanceTestCase):

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="postern-dkim-")
        self.addCleanup(shutil.rmtree, self.work, True)
        subprocess.run([GENKEY, "-D", self.work, "-d", "example.test", "-s", "test"],
                       check=True)
        with open(os.path.join(self.work, "test.txt")) as f:
            txt = "".join(re.findall(r'"([^"]*)"', f.read()))
        self.assertIn("p=", txt)
        with open(os.path.join(self.work, "keys"), "w") as f:
            f.write("test._domainkey.example.test %s\n" % txt)
        if os.geteuid() == 0:
            uid, gid = H.user_ids(H.UNPRIV_USER)
            for n in os.listdir(self.work):
                os.chown(os.path.join(self.work, n), uid, gid)
            os.chown(self.work, uid, gid)
        key = os.path.join(self.work, "test.private")
        self.signer = OpenDKIM(self.work, "signer", [
            "Mode s", "Domain example.test", "Selector test", "KeyFile " + key,
            # loopback is not internal: only authenticated mail is signed
            "InternalHosts 192.0.2.1", "MacroList {auth_authen}"])
        self.addCleanup(self.signer.stop)
        self.verifier = OpenDKIM(self.work, "verifier", [
            "Mode v", "InternalHosts 192.0.2.1",
            "TestPublicKeys " + os.path.join(self.work, "keys")])
        self.addCleanup(self.verifier.stop)

    def start(self):
        inst = self.make_instance()
        inst.params.update({
            "smtpd_milters": "%s, %s" % (self.signer.endpoint, self.verifier.endpoint),
            "smtpd_sasl_auth_enable": "yes", "smtpd_tls_auth_only": "no"})
        inst.prepare()
        inst.add_user("alice", "pw")
        inst.start(prepare=False)
        return inst

    @staticmethod
    def header(msg, name):
        head = msg.partition(b"\n\n")[0]
        return re.findall(rb"^" + name + rb":[^\n]*(?:\n[ \t][^\n]*)*", head,
                          re.M | re.I)

    def test_sign_authenticated_and_verify(self):
        inst = self.start()
        msg = H.make_message("alice@example.test", ["bob@example.test"],
                             "signed please", "A body.\r\nTwo lines.\r\n")
        s = H.smtp_client(inst)
        s.login("alice", "pw")
        s.sendmail("alice@example.test", ["bob@example.test"], msg)
        s.quit()
        got = H.wait_maildir(inst.vmaildir("bob@example.test"), 1, inst=inst)[0]
        sig = self.header(got, b"DKIM-Signature")
        self.assertEqual(len(sig), 1, got)
        self.assertRegex(sig[0], rb"d=example\.test;")
        self.assertRegex(sig[0], rb"s=test;")
        ar = self.header(got, b"Authentication-Results")
        self.assertTrue(ar, got)
        self.assertRegex(b" ".join(ar), rb"mx\.example\.test;\s+dkim=pass")

        # unauthenticated (mynetworks): not signed
        s = H.smtp_client(inst)
        s.sendmail("alice@example.test", ["carol@example.test"],
                   H.make_message("alice@example.test", ["carol@example.test"],
                                  "not signed", "x\r\n"))
        s.quit()
        plain = H.wait_maildir(inst.vmaildir("carol@example.test"), 1, inst=inst)[0]
        self.assertEqual(self.header(plain, b"DKIM-Signature"), [])

        # the delivered bytes verify: send bob's copy in again
        again = got.replace(b"\n", b"\r\n")
        s = H.smtp_client(inst)
        s.sendmail("alice@example.test", ["carol@example.test"], again)
        s.quit()
        msgs = H.wait_maildir(inst.vmaildir("carol@example.test"), 2, inst=inst)
        second = [m for m in msgs if b"signed please" in m][0]
        ar = self.header(second, b"Authentication-Results")
        self.assertRegex(b" ".join(ar), rb"dkim=pass[^;]*header\.d=example\.test")

    def test_sendmail_is_signed(self):
        local = OpenDKIM(self.work, "local-signer", [
            "Mode s", "Domain example.test", "Selector test",
            "KeyFile " + os.path.join(self.work, "test.private")])
        self.addCleanup(local.stop)
        inst = SMInstance()
        self.inst = inst
        self.addCleanup(self._cleanup_inst, inst)
        inst.params["non_smtpd_milters"] = "%s %s" % (local.endpoint,
                                                      self.verifier.endpoint)
        inst.start()
        r = inst.sendmail("-f", "alice@example.test", "bob@example.test",
                          input=b"From: <alice@example.test>\nTo: <bob@example.test>\n"
                                b"Subject: from sendmail\n\nSigned locally.\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = H.wait_maildir(inst.vmaildir("bob@example.test"), 1, inst=inst)[0]
        sig = self.header(got, b"DKIM-Signature")
        self.assertEqual(len(sig), 1, got)
        self.assertRegex(sig[0], rb"d=example\.test;")
        ar = self.header(got, b"Authentication-Results")
        self.assertRegex(b" ".join(ar), rb"mx\.example\.test;\s+dkim=pass")

    def test_opendkim_down_tempfails(self):
        inst = self.start()
        self.signer.stop()
        s = H.smtp_client(inst)
        s.login("alice", "pw")
        code, resp = s.mail("alice@example.test")
        s.quit()
        self.assertEqual((code, resp), (451, b"4.7.1 Service unavailable - try again later"))
        inst.wait_log(r"milter %s: .*default_action=tempfail" % re.escape(self.signer.endpoint))
        self.assertEqual(inst.queue_files(include_tmp=True), [])


if __name__ == "__main__":
    H.main()

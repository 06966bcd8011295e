#!/usr/bin/env python3
"""
Submission with TLS and AUTH, end to end: STARTTLS on 25 and 587, implicit
TLS on 465, AUTH PLAIN/LOGIN through the auth daemon, the failure delay,
relay control, smtpd_sender_login_maps and the STARTTLS injection probe.
Clients: Python smtplib, swaks, and raw sockets wrapped in ssl.

One instance serves the whole class (a self-signed certificate made with
openssl req, users made with "postern user add"). Its mynetworks does not
contain 127.0.0.1, so the tests' own address is an outside client.
"""

import base64
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

USERS = {"alice": "alice secret", "bob": "b0b-pw:with:colons"}


def setUpModule():
    H.require_binaries()


def tls_ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def swaks_ok():
    return shutil.which("swaks") is not None


class Submission(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.sub_port = H.free_port()
        cls.smtps_port = H.free_port()
        cls.opts_port = H.free_port()
        cls.mismatch_port = H.free_port()
        inst = H.Instance(conf={
            "mynetworks": "192.0.2.0/24",
            "smtpd_sender_login_maps": "lmdb:$config_directory/senders",
        }, services=[
            "127.0.0.1:%d inet n - n - - smtpd"
            " -o smtpd_tls_security_level=encrypt"
            " -o smtpd_sasl_auth_enable=yes"
            " -o smtpd_client_restrictions=permit_sasl_authenticated,reject"
            % cls.sub_port,
            "127.0.0.1:%d inet n - n - - smtpd"
            " -o smtpd_tls_wrappermode=yes"
            " -o smtpd_sasl_auth_enable=yes"
            " -o smtpd_client_restrictions=permit_sasl_authenticated,reject"
            % cls.smtps_port,
            # Dovecot-SASL guides' lines: no plaintext mechanism unless TLS
            "127.0.0.1:%d inet n - n - - smtpd"
            " -o smtpd_sasl_auth_enable=yes -o smtpd_tls_auth_only=no"
            " -o smtpd_sasl_security_options=noanonymous,noplaintext"
            " -o smtpd_sasl_tls_security_options=noanonymous"
            % cls.opts_port,
            # the submission line of Postfix + Dovecot guides
            "127.0.0.1:%d inet n - n - - smtpd"
            " -o smtpd_sasl_auth_enable=yes -o smtpd_tls_auth_only=no"
            " -o smtpd_sender_restrictions=reject_sender_login_mismatch,"
            "permit_sasl_authenticated,permit"
            % cls.mismatch_port,
        ])
        cls.inst = inst
        inst.make_cert("mx.example.test", level="may")
        inst.prepare()
        inst.write("senders", "alice@example.test alice\n"
                              "bob@example.test bob\n"
                              "@alias.test alice, bob\n")
        inst.postern("map", "build", "lmdb:" + inst.path("senders"), check=True)
        for u, pw in USERS.items():
            inst.add_user(u, pw)
        inst.start(prepare=False)
        inst.wait_smtp(cls.sub_port)
        deadline = time.time() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", cls.smtps_port), 5) as so:
                    with tls_ctx().wrap_socket(so) as t:
                        t.settimeout(5)
                        if t.recv(4) == b"220 ":
                            break
            except OSError:
                pass
            if time.time() > deadline:
                raise AssertionError("port 465 (implicit TLS) not ready")
            time.sleep(0.2)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.inst.stop()
        finally:
            cls.inst.cleanup(keep=os.environ.get("POSTERN_KEEP") == "1")

    # ----- helpers ---------------------------------------------------------

    def submit(self, user, pw, sender, rcpt, subject, implicit=False):
        msg = H.make_message(sender, [rcpt], subject, "body\r\n")
        if implicit:
            s = smtplib.SMTP_SSL("127.0.0.1", self.smtps_port, context=tls_ctx(),
                                 timeout=30)
            s.ehlo("client.example")
        else:
            s = smtplib.SMTP("127.0.0.1", self.sub_port, timeout=30)
            s.ehlo("client.example")
            s.starttls(context=tls_ctx())
            s.ehlo("client.example")
        try:
            s.login(user, pw)
            s.sendmail(sender, [rcpt], msg)
            s.quit()
        finally:
            s.close()
        return msg

    def raw(self, port, implicit=False):
        c = H.RawSMTP(port)
        if implicit:
            c.sock = tls_ctx().wrap_socket(c.sock)
        return c

    def mailbox_with(self, addr, subject):
        for m in H.wait_maildir(self.inst.vmaildir(addr), 1, inst=self.inst):
            pass
        deadline = time.time() + 30
        while time.time() < deadline:
            for m in H.maildir_messages(self.inst.vmaildir(addr)):
                if subject.encode() in m:
                    return m
            time.sleep(0.2)
        self.fail("no message %r for %s\n%s" % (subject, addr, self.inst.log()[-3000:]))

    # ----- tests -----------------------------------------------------------

    def test_smtplib_587_starttls_auth(self):
        mark = self.inst.log_mark()
        self.submit("alice", USERS["alice"], "alice@example.test",
                    "bob@example.test", "smtplib 587")
        m = self.mailbox_with("bob@example.test", "smtplib 587")
        self.assertRegex(m, rb"\(using TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)\)")
        self.assertIn(b"with ESMTPSA id", m)
        self.inst.wait_log(r"Anonymous TLS connection established from "
                           r"localhost\[127\.0\.0\.1\]: TLSv1\.[23] with cipher",
                           since=mark)
        self.inst.wait_log(r": client=localhost\[127\.0\.0\.1\], sasl_method=PLAIN, "
                           r"sasl_username=alice$", since=mark)

    def test_smtplib_465_implicit_tls(self):
        self.submit("bob", USERS["bob"], "bob@example.test", "alice@example.test",
                    "smtplib 465", implicit=True)
        m = self.mailbox_with("alice@example.test", "smtplib 465")
        self.assertIn(b"with ESMTPSA id", m)

    def test_authenticated_may_relay(self):
        # accepted for a remote domain: delivery itself is not the point
        msg = H.make_message("alice@example.test", ["x@remote.invalid"], "relay", "b\r\n")
        s = smtplib.SMTP("127.0.0.1", self.sub_port, timeout=30)
        s.starttls(context=tls_ctx())
        s.login("alice", USERS["alice"])
        s.mail("alice@example.test")
        code, text = s.rcpt("x@remote.invalid")
        self.assertEqual(code, 250, text)
        code, _ = s.data(msg)
        self.assertEqual(code, 250)
        s.quit()

    @unittest.skipUnless(swaks_ok(), "swaks not installed")
    def test_swaks(self):
        base = ["swaks", "--server", "127.0.0.1", "--from", "alice@example.test",
                "--to", "bob@example.test", "--auth-user", "alice",
                "--auth-password", USERS["alice"], "--helo", "client.example",
                "--timeout", "30"]
        cases = [
            (["--port", str(self.sub_port), "--tls", "--auth", "PLAIN"], "swaks plain"),
            (["--port", str(self.sub_port), "--tls", "--auth", "LOGIN"], "swaks login"),
            (["--port", str(self.smtps_port), "--tlsc", "--auth", "PLAIN"], "swaks 465"),
        ]
        for extra, subj in cases:
            r = subprocess.run(base + extra + ["--header", "Subject: " + subj],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, "%s\n%s\n%s" % (subj, r.stdout, r.stderr))
            self.assertIn("235 2.7.0 Authentication successful", r.stdout)
            self.assertRegex(r.stdout, r"250 2\.0\.0 Ok: queued as")
        for _, subj in cases:
            self.mailbox_with("bob@example.test", subj)

    def test_sender_login_mismatch(self):
        def attempt(sender, user=None):
            s = smtplib.SMTP("127.0.0.1", self.mismatch_port, timeout=30)
            try:
                s.ehlo("client.example")
                if user:
                    s.login(user, USERS[user])
                code, text = s.mail(sender)
                if code == 250:
                    code, text = s.rcpt("carol@example.test")
                return code, text.decode()
            finally:
                s.close()
        # an address with an owner needs its login; others pass unlogged
        self.assertEqual(attempt("alice@example.test"), (
            553, "5.7.1 <alice@example.test>: Sender address rejected: not logged in"))
        self.assertEqual(attempt("someone@alias.test")[0], 553)
        self.assertEqual(attempt("stranger@elsewhere.test")[0], 250)
        self.assertEqual(attempt("bob@example.test", "alice"), (
            553, "5.7.1 <bob@example.test>: Sender address rejected: not owned "
            "by user alice"))
        self.assertEqual(attempt("alice@example.test", "alice")[0], 250)
        self.assertEqual(attempt("x@alias.test", "bob")[0], 250)
        self.inst.wait_log(r"NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: "
                           r"553 5\.7\.1 <alice@example\.test>: Sender address "
                           r"rejected: not logged in; from=<alice@example\.test> "
                           r"to=<carol@example\.test>")

    def test_sasl_security_options(self):
        plain = "AUTH PLAIN " + base64.b64encode(
            b"\0alice\0" + USERS["alice"].encode()).decode()
        s = smtplib.SMTP("127.0.0.1", self.opts_port, timeout=30)
        try:
            s.ehlo("client.example")
            self.assertFalse(s.has_extn("auth"), s.esmtp_features)
            self.assertEqual(s.docmd(plain)[0], 538)
            s.starttls(context=tls_ctx())
            s.ehlo("client.example")
            self.assertEqual(s.esmtp_features.get("auth", "").split(), ["PLAIN", "LOGIN"])
            self.assertEqual(s.docmd(plain)[0], 235)
        finally:
            s.close()

    def test_auth_before_starttls_refused(self):
        c = self.raw(self.sub_port)
        try:
            self.assertEqual(c.reply()[0], 220)
            code, lines = c.cmd("EHLO client.example")
            self.assertEqual(code, 250)
            text = "\n".join(lines) if isinstance(lines, list) else str(lines)
            self.assertIn("STARTTLS", text)
            self.assertNotIn("AUTH", text)
            code, _ = c.cmd("AUTH PLAIN AGFsaWNlAGFsaWNlIHNlY3JldA==")
            self.assertEqual(code, 530)
            code, _ = c.cmd("MAIL FROM:<alice@example.test>")
            self.assertEqual(code, 530)
        finally:
            c.close()
        # port 25 (no AUTH there at all)
        c = self.raw(self.inst.port)
        try:
            c.reply()
            c.cmd("EHLO client.example")
            code, _ = c.cmd("AUTH PLAIN AGFsaWNlAGFsaWNlIHNlY3JldA==")
            self.assertEqual(code, 503)
        finally:
            c.close()

    def login_time(self, pw):
        s = smtplib.SMTP("127.0.0.1", self.sub_port, timeout=60)
        try:
            s.starttls(context=tls_ctx())
            s.ehlo("client.example")
            # one attempt per login: smtplib would fall back to LOGIN
            s.esmtp_features["auth"] = "PLAIN"
            t = time.time()
            try:
                s.login("alice", pw)
                ok = True
            except smtplib.SMTPAuthenticationError as e:
                self.assertEqual(e.smtp_code, 535)
                ok = False
            return ok, time.time() - t
        finally:
            s.close()

    def test_wrong_password_fails_and_slows(self):
        mark = self.inst.log_mark()
        ok, t1 = self.login_time("wrong")
        self.assertFalse(ok)
        ok, t2 = self.login_time("wrong again")
        self.assertFalse(ok)
        ok, t3 = self.login_time(USERS["alice"])
        self.assertTrue(ok)
        ok, t4 = self.login_time(USERS["alice"])
        self.assertTrue(ok)
        # 0 s, then 1 s after one failure, 2 s after two; a success resets
        self.assertLess(t1, 1.0)
        self.assertGreaterEqual(t2, 0.9)
        self.assertGreaterEqual(t3, 1.9)
        self.assertLess(t4, 1.0)
        self.inst.wait_log(r"warning: localhost\[127\.0\.0\.1\]: SASL PLAIN "
                           r"authentication failed: authentication failure",
                           since=mark, count=2)

    def test_unauthenticated_cannot_relay(self):
        # port 25: not in mynetworks, not authenticated
        s = H.smtp_client(self.inst)
        s.mail("someone@client.example")
        code, text = s.rcpt("victim@remote.invalid")
        # Postfix 3.x smtpd_relay_restrictions: defer_unauth_destination
        self.assertEqual(code, 454)
        self.assertIn(b"4.7.1", text)
        s.quit()
        # 587 with TLS but no AUTH
        s = smtplib.SMTP("127.0.0.1", self.sub_port, timeout=30)
        s.starttls(context=tls_ctx())
        s.mail("alice@example.test")
        code, text = s.rcpt("bob@example.test")
        self.assertEqual(code, 554)
        self.assertIn(b"5.7.1", text)
        s.quit()

    def test_cannot_send_as_someone_else(self):
        s = smtplib.SMTP("127.0.0.1", self.sub_port, timeout=30)
        s.starttls(context=tls_ctx())
        s.login("alice", USERS["alice"])
        code, text = s.mail("bob@example.test")
        self.assertEqual(code, 553)
        self.assertIn(b"5.7.1 <bob@example.test>: Sender address rejected: "
                      b"not owned by user alice", text)
        code, text = s.mail("stranger@nowhere.test")
        self.assertEqual(code, 553)
        # the domain entry lists alice too
        code, text = s.mail("anything@alias.test")
        self.assertEqual(code, 250, text)
        s.rset()
        code, text = s.mail("alice@example.test")
        self.assertEqual(code, 250, text)
        s.quit()

    def test_starttls_injection(self):
        mark = self.inst.log_mark()
        sock = socket.create_connection(("127.0.0.1", self.inst.port), timeout=20)
        f = sock.makefile("rb")

        def replies():
            lines = []
            while True:
                ln = f.readline()
                self.assertTrue(ln, "connection closed")
                lines.append(ln)
                if ln[3:4] == b" ":
                    return lines

        self.assertTrue(replies()[0].startswith(b"220"))
        sock.sendall(b"EHLO client.example\r\n")
        replies()
        # both commands in one packet: RSET must not run inside TLS
        sock.sendall(b"STARTTLS\r\nRSET\r\n")
        r = replies()
        self.assertTrue(r[0].startswith(b"220 2.0.0"), r)
        tls = tls_ctx().wrap_socket(sock)
        tls.settimeout(20)
        tf = tls.makefile("rb")
        tls.sendall(b"NOOP\r\n")
        first = tf.readline()
        # a 250 for the RSET would come first if it had been kept
        self.assertTrue(first.startswith(b"250 2.0.0 Ok"), first)
        tls.sendall(b"QUIT\r\n")
        bye = tf.readline()
        self.assertTrue(bye.startswith(b"221"), bye)
        tls.close()
        self.inst.wait_log(r"discarding 6 bytes pipelined after STARTTLS", since=mark)
        self.inst.wait_log(r"disconnect from localhost\[127\.0\.0\.1\] ehlo=1 "
                           r"starttls=1 noop=1 quit=1 commands=4", since=mark)

    def test_user_command(self):
        r = self.inst.postern("user", "list", check=True)
        self.assertEqual(sorted(l.split()[0] for l in r.stdout.splitlines()),
                         ["alice", "bob"])
        self.inst.postern("user", "add", "carol", "--password-stdin",
                          "--scheme", "SHA512-CRYPT", input="c-pw\n", check=True)
        self.inst.postern("user", "passwd", "carol", "--password-stdin",
                          "--scheme", "BLF-CRYPT", input="c-pw2\n", check=True)
        r = self.inst.postern("user", "add", "carol", input="x\n")
        self.assertEqual(r.returncode, 1)
        st = os.stat(self.inst.path("passwd.lmdb"))
        self.assertEqual(st.st_mode & 0o077, 0, oct(st.st_mode))
        s = smtplib.SMTP("127.0.0.1", self.sub_port, timeout=30)
        s.starttls(context=tls_ctx())
        s.login("carol", "c-pw2")
        s.quit()
        # chpasswd(8)'s "user:password" lines; all or nothing
        r = self.inst.postern("user", "chpasswd", input="carol:c:pw3\nnobody:x\n")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.inst.postern("user", "chpasswd", input="carol:c:pw3\n", check=True)
        # --check-old (the webmail password plugin): "user:old:new", the old
        # password verified even when it holds a colon itself
        r = self.inst.postern("user", "chpasswd", "--check-old",
                              input="carol:c-pw2:c-pw4\n")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("old password is wrong", r.stderr)
        self.inst.postern("user", "chpasswd", "--check-old",
                          input="carol:c:pw3:c:pw4\n", check=True)
        s = smtplib.SMTP("127.0.0.1", self.sub_port, timeout=30)
        s.starttls(context=tls_ctx())
        s.login("carol", "c:pw4")
        s.quit()
        self.inst.postern("user", "del", "carol", check=True)
        s = smtplib.SMTP("127.0.0.1", self.sub_port, timeout=30)
        s.starttls(context=tls_ctx())
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            s.login("carol", "c-pw2")
        s.close()
        # one success from this address, so the penalty is reset for others
        self.assertTrue(self.login_time(USERS["alice"])[0])


class TlsVersionsCiphers(H.InstanceTestCase):
    """Postfix's smtpd_tls_protocols / smtpd_tls_mandatory_protocols and
    the cipher settings: port 25 (opportunistic, "may") and an implicit-TLS
    port (mandatory) of one instance take different ones; a client that
    offers only what a service refuses gets no TLS session there."""

    def setUp(self):
        self.tls_port = H.free_port()
        self.inst = self.make_instance(privileged=False, conf={
            # opportunistic: TLS 1.2 without AES-256
            "smtpd_tls_exclude_ciphers": "AES256, CHACHA20",
            # mandatory: TLS 1.3 only
            "smtpd_tls_mandatory_protocols": ">=TLSv1.3",
        }, services=["127.0.0.1:%d inet n - n - - smtpd -o smtpd_tls_wrappermode=yes"
                     % self.tls_port])
        self.inst.make_cert("mx.example.test", level="may")
        self.inst.start()
        deadline = time.time() + 30
        while not H.port_accepts(self.tls_port):
            self.assertLess(time.time(), deadline, "implicit TLS port not ready")
            time.sleep(0.2)

    @staticmethod
    def ctx(tls12_only=False, ciphers=None):
        c = tls_ctx()
        if tls12_only:
            c.maximum_version = ssl.TLSVersion.TLSv1_2
        if ciphers:
            c.set_ciphers(ciphers)
        return c

    def starttls(self, ctx):
        s = smtplib.SMTP("127.0.0.1", self.inst.port, timeout=30)
        try:
            s.ehlo("client.example")
            s.starttls(context=ctx)
            return s.sock.version(), s.sock.cipher()[0]
        finally:
            s.close()

    def implicit(self, ctx):
        with socket.create_connection(("127.0.0.1", self.tls_port), 30) as raw:
            with ctx.wrap_socket(raw) as t:
                return t.version(), t.recv(100)

    def test_opportunistic_settings_on_starttls(self):
        self.assertEqual(self.starttls(self.ctx())[0], "TLSv1.3")
        version, cipher = self.starttls(self.ctx(tls12_only=True))
        self.assertEqual(version, "TLSv1.2")
        self.assertNotIn("AES256", cipher)
        self.assertNotIn("CHACHA20", cipher)
        # a TLS 1.2 client that has only an excluded cipher gets nothing
        with self.assertRaises(ssl.SSLError):
            self.starttls(self.ctx(True, "ECDHE-RSA-AES256-GCM-SHA384"))
        self.assertEqual(self.starttls(self.ctx(True, "ECDHE-RSA-AES128-GCM-SHA256"))[1],
                         "ECDHE-RSA-AES128-GCM-SHA256")

    def test_mandatory_settings_on_implicit_tls(self):
        version, greeting = self.implicit(self.ctx())
        self.assertEqual(version, "TLSv1.3")
        self.assertTrue(greeting.startswith(b"220 "), greeting)
        with self.assertRaises(ssl.SSLError):
            self.implicit(self.ctx(tls12_only=True))
        # the mandatory setting is the implicit-TLS port's only: port 25
        # (opportunistic) still takes TLS 1.2
        self.assertEqual(self.starttls(self.ctx(tls12_only=True))[0], "TLSv1.2")


class DhParameters(H.InstanceTestCase):
    """DHE for TLS 1.2 clients: an RFC 7919 group sized by OpenSSL by
    default (without one OpenSSL offers no DHE cipher at all), or the
    group of smtpd_tls_dh1024_param_file, as Postfix."""

    def start(self, group=None):
        self.inst = self.make_instance(privileged=False)
        self.inst.make_cert("mx.example.test", level="may")
        if group:
            f = self.inst.path(group + ".pem")
            subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH",
                            "-pkeyopt", "group:" + group, "-out", f], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.inst.params["smtpd_tls_dh1024_param_file"] = f
        self.inst.start()

    def server_temp_key(self):
        """openssl s_client offering only a DHE cipher over TLS 1.2: the
        group the server chose, and the cipher."""
        r = subprocess.run(["openssl", "s_client", "-starttls", "smtp", "-connect",
                            "127.0.0.1:%d" % self.inst.port, "-tls1_2", "-cipher",
                            "DHE-RSA-AES128-GCM-SHA256"], input="QUIT\n",
                           capture_output=True, text=True, timeout=60)
        key = re.search(r"Server Temp Key: ([^\n]*)", r.stdout)
        cipher = re.search(r"Cipher is (\S+)", r.stdout)
        return key and key.group(1), cipher and cipher.group(1)

    def test_dhe_by_default(self):
        self.start()
        self.assertEqual(self.server_temp_key(),
                         ("DH, 2048 bits", "DHE-RSA-AES128-GCM-SHA256"))

    def test_dh_param_file(self):
        self.start("ffdhe3072")
        self.assertEqual(self.server_temp_key(),
                         ("DH, 3072 bits", "DHE-RSA-AES128-GCM-SHA256"))


class PrivilegedAuth(H.InstanceTestCase):
    """As root: auth runs as auth_owner, the only user that can read the
    password table; smtpd (mail_owner) cannot."""

    def test_auth_owner(self):
        if not H.is_root():
            self.skipTest("needs root")
        inst = self.make_instance(privileged=True, conf={
            "smtpd_sasl_auth_enable": "yes", "smtpd_tls_auth_only": "no",
            "mynetworks": "192.0.2.0/24"})
        inst.prepare()
        inst.add_user("alice", "pw")
        st = os.stat(inst.path("passwd.lmdb"))
        import grp
        self.assertEqual(st.st_mode & 0o777, 0o640)
        self.assertEqual(st.st_uid, 0)
        self.assertEqual(grp.getgrgid(st.st_gid).gr_name, "postern-auth")
        self.assertEqual(os.stat(inst.path("passwd")).st_mode & 0o777, 0o600)
        inst.start(prepare=False)
        s = H.smtp_client(inst)
        s.login("alice", "pw")
        s.mail("alice@example.test")
        code, _ = s.rcpt("x@remote.invalid")   # authenticated: may relay
        self.assertEqual(code, 250)
        s.quit()
        self.assertEqual(H.proc_user(inst.pid_of("auth")), "postern-auth")
        self.assertNotEqual(H.proc_user(inst.pid_of("smtpd")), "root")


if __name__ == "__main__":
    H.main()

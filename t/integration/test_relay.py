"""
test_relay - the outbound SMTP client (smtp/) between real instances.

Instance A listens on 127.0.0.2, instance B on 127.0.0.3, both on the same
port P; A delivers to MX hosts on port P (smtp_tcp_port). A dnsmasq we
start (and stop by pid) on a loopback port serves the test zone:

  b.test      MX 10 mx1.b.test (127.0.0.3 = B)
  down.test   MX 10 mx1.down.test (127.0.0.9, nothing listens)
              MX 20 mx2.down.test (127.0.0.3 = B)
  null.test   MX 0 "."  (RFC 7505)
  amx.test    no MX, A 127.0.0.3 (implicit MX)
  stub.test   MX 10 mx.stub.test (127.0.0.6, a Python SMTP stub)
  tls.test    MX 10 mx.tls.test (127.0.0.7, a stub with STARTTLS)
  *.nx.test   NXDOMAIN;  nowhere.test: REFUSED (does not resolve)

The stubs stand in for B where a real instance cannot produce the case
(scripted 4xx, STARTTLS, AUTH).
"""

import base64
import os
import re
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

A_ADDR, B_ADDR = "127.0.0.2", "127.0.0.3"
DEAD_ADDR, STUB_ADDR, TLS_ADDR = "127.0.0.9", "127.0.0.6", "127.0.0.7"


def free_port_all(addrs):
    for _ in range(50):
        p = H.free_port(addrs[0])
        ok = True
        for a in addrs[1:]:
            try:
                with socket.socket() as s:
                    s.bind((a, p))
            except OSError:
                ok = False
                break
        if ok:
            return p
    raise RuntimeError("no common free port")


def Dnsmasq(port):
    """The MX and A records of the relay tests' domains."""
    return H.Dnsmasq([
                "--local=/nx.test/", "--local=/amx.test/",
                "--mx-host=b.test,mx1.b.test,10",
                "--host-record=mx1.b.test,%s" % B_ADDR,
                "--mx-host=down.test,mx1.down.test,10",
                "--mx-host=down.test,mx2.down.test,20",
                "--host-record=mx1.down.test,%s" % DEAD_ADDR,
                "--host-record=mx2.down.test,%s" % B_ADDR,
                "--dns-rr=null.test,15,000000",
                "--host-record=amx.test,%s" % B_ADDR,
                "--mx-host=stub.test,mx.stub.test,10",
                "--host-record=mx.stub.test,%s" % STUB_ADDR,
                "--mx-host=tls.test,mx.tls.test,10",
                "--host-record=mx.tls.test,%s" % TLS_ADDR], port)


class StubSMTP:
    """A scripted SMTP server on addr:port. rcpt_reply(addr, n) returns the
    reply line for the n-th RCPT of that address (0-based)."""

    def __init__(self, addr, port, cert=None, auth=False, rcpt_reply=None,
                 greeting="220 stub ESMTP", smtputf8=True, tls12=False):
        self.addr, self.port = addr, port
        self.messages = []      # (mail_from_line, [rcpt lines], data bytes, tls, auth)
        self.auths = []
        self.sessions = []      # list of dicts per session
        self.rcpt_counts = {}
        self.rcpt_reply = rcpt_reply or (lambda a, n: "250 2.1.5 Ok")
        self.cert = cert
        self.auth = auth
        self.greeting = greeting
        self._socks = []
        self.smtputf8 = smtputf8
        self.tls12 = tls12      # a server with nothing above TLS 1.2
        stub = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                stub._session(self)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((addr, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _session(self, h):
        try:
            self._converse(h)
        finally:
            for s in self._socks:
                try:
                    s.close()
                except OSError:
                    pass

    def _converse(self, h):
        sock = h.connection
        rf = sock.makefile("rb")
        info = {"tls": None, "ehlo": 0, "auth": None, "cmds": []}
        self.sessions.append(info)

        def send(line):
            sock.sendall((line + "\r\n").encode())

        send(self.greeting)
        if not self.greeting.startswith("2"):
            return
        mail, rcpts, tls = None, [], False
        while True:
            line = rf.readline(4096)
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            info["cmds"].append(cmd)
            up = cmd.upper()
            if up.startswith("EHLO"):
                info["ehlo"] += 1
                ext = ["PIPELINING", "SIZE 10240000", "8BITMIME", "DSN"]
                if self.smtputf8:
                    ext.append("SMTPUTF8")
                if self.cert and not tls:
                    ext.append("STARTTLS")
                if self.auth:
                    ext.append("AUTH PLAIN LOGIN")
                send("250-stub")
                for e in ext[:-1]:
                    send("250-" + e)
                send("250 " + ext[-1])
            elif up == "STARTTLS" and self.cert and not tls:
                send("220 2.0.0 Ready to start TLS")
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(*self.cert)
                if self.tls12:
                    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
                sock = ctx.wrap_socket(sock, server_side=True)
                self._socks.append(sock)
                rf = sock.makefile("rb")
                tls = True
                info["tls"] = sock.version()
                info["cipher"] = sock.cipher()[0]
            elif up.startswith("AUTH PLAIN "):
                raw = base64.b64decode(cmd[11:])
                info["auth"] = (raw, tls)
                self.auths.append((raw, tls))
                send("235 2.7.0 Authentication successful")
            elif up.startswith("MAIL FROM:"):
                mail, rcpts = cmd, []
                send("250 2.1.0 Ok")
            elif up.startswith("RCPT TO:"):
                a = cmd[8:].split(">")[0].lstrip("<")
                n = self.rcpt_counts.get(a, 0)
                self.rcpt_counts[a] = n + 1
                r = self.rcpt_reply(a, n)
                if r.startswith("2"):
                    rcpts.append(cmd)
                send(r)
            elif up == "DATA":
                if not rcpts:
                    send("554 5.5.1 No valid recipients")
                    continue
                send("354 End data with <CR><LF>.<CR><LF>")
                data = b""
                while True:
                    l = rf.readline(100000)
                    if not l or l == b".\r\n":
                        break
                    data += l
                self.messages.append((mail, rcpts, data, tls, info["auth"]))
                send("250 2.0.0 Ok: queued as STUB%d" % len(self.messages))
            elif up == "QUIT":
                send("221 2.0.0 Bye")
                return
            elif up == "RSET" or up == "NOOP":
                send("250 2.0.0 Ok")
            else:
                send("502 5.5.2 Error: command not recognized")

    def wait_messages(self, n=1, timeout=30):
        deadline = time.time() + timeout
        while len(self.messages) < n:
            if time.time() > deadline:
                raise AssertionError("stub %s: %d/%d messages; sessions %r"
                                     % (self.addr, len(self.messages), n, self.sessions))
            time.sleep(0.2)
        return self.messages

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Node(H.Instance):
    """An instance on its own loopback address."""

    def __init__(self, addr, port, dns_port, domains, conf=None, **kw):
        c = {
            "smtp_tcp_port": str(port),
            "smtp_dns_servers": "127.0.0.1:%d" % dns_port,
            "smtp_connect_timeout": "5s",
            "smtp_helo_name": "node-%s.test" % addr.split(".")[-1],
            "myhostname": "mx-%s.test" % addr.split(".")[-1],
            "virtual_mailbox_domains": ", ".join(domains),
            "inet_protocols": "ipv4",
            "smtp_bind_address": addr,
        }
        c.update(conf or {})
        super().__init__(conf=c, smtp_port=port, listen_addr=addr, **kw)
        self.addr = addr
        self.vmailbox = {}
        for d in domains:
            for u in ("alice", "bob"):
                self.vmailbox["%s@%s" % (u, d)] = "%s/%s/" % (d, u)

    def send(self, sender, rcpts, subject, body="hello\r\n.leading dot\r\n"):
        msg = H.make_message(sender, rcpts, subject, body)
        s = H.smtplib.SMTP(self.addr, self.port, timeout=30)
        s.ehlo("client.test")
        s.sendmail(sender, rcpts, msg)
        s.quit()
        return msg


def make_cert(d, cn):
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "crt.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + cn],
                   check=True, capture_output=True)
    return crt, key


DNS = None
PORT = None


def setUpModule():
    global DNS, PORT
    H.require_binaries()
    if not os.access(os.path.join(H.BUILDDIR, "smtp"), os.X_OK):
        raise RuntimeError("smtp not built in %s" % H.BUILDDIR)
    if shutil.which("dnsmasq") is None and not os.path.exists("/usr/sbin/dnsmasq"):
        raise unittest.SkipTest("dnsmasq not installed")
    DNS = Dnsmasq(H.free_port())
    PORT = free_port_all([A_ADDR, B_ADDR, DEAD_ADDR, STUB_ADDR, TLS_ADDR])


def tearDownModule():
    if DNS is not None:
        DNS.stop()


class RelayTest(H.InstanceTestCase):

    def node(self, addr, domains, conf=None, start=True, cert=False):
        n = Node(addr, PORT, DNS.port, domains, conf=conf)
        self.addCleanup(self._cleanup_inst, n)
        if cert:        # smtpd offers STARTTLS (smtpd_tls_security_level=may)
            n.make_cert(n.params["myhostname"], level="may")
        if start:
            n.start()
        return n

    def stub(self, addr, **kw):
        s = StubSMTP(addr, PORT, **kw)
        self.addCleanup(s.stop)
        return s

    def tls_stub(self, cn="mx.tls.test", **kw):
        """A stub with STARTTLS on TLS_ADDR, a self-signed certificate for cn."""
        d = tempfile.mkdtemp(prefix="relay-cert-")
        self.addCleanup(shutil.rmtree, d, True)
        return self.stub(TLS_ADDR, cert=make_cert(d, cn), **kw)

    def bounce_text(self, a, timeout=40):
        msgs = H.wait_maildir(a.vmaildir("alice@a.test"), 1, timeout, a)
        return msgs[0].decode("utf-8", "replace")

    # --- routing and delivery between real instances -----------------

    def test_a_to_b_mx(self):
        b = self.node(B_ADDR, ["b.test", "down.test", "amx.test"])
        a = self.node(A_ADDR, ["a.test"])
        a.send("alice@a.test", ["bob@b.test", "alice@b.test"], "a to b")
        for r in ("bob@b.test", "alice@b.test"):
            got = H.wait_maildir(b.vmaildir(r), 1, 40, a)[0]
            self.assertIn(b"Subject: a to b", got)
            self.assertIn(b"\n.leading dot", got)     # dot-stuffing undone by B
        ms = a.wait_log(r"to=<bob@b.test>, relay=mx1\.b\.test\[127\.0\.0\.3\]:%d, "
                        r"delay=[^,]+, delays=[^,]+, dsn=2\.0\.0, status=sent \(250 " % PORT)
        self.assertTrue(ms)
        # One session carried both recipients.
        b.wait_log(r"client=\S*\[127\.0\.0\.2\]")
        self.assertEqual(len(re.findall(r"client=\S*\[127\.0\.0\.2\]", b.log())), 1)
        a.wait_queue_empty(20)

    def test_first_mx_down(self):
        b = self.node(B_ADDR, ["b.test", "down.test", "amx.test"])
        a = self.node(A_ADDR, ["a.test"])
        a.send("alice@a.test", ["bob@down.test"], "backup mx")
        H.wait_maildir(b.vmaildir("bob@down.test"), 1, 40, a)
        a.wait_log(r"connect to mx1\.down\.test\[127\.0\.0\.9\]:%d: Connection refused" % PORT)
        a.wait_log(r"to=<bob@down.test>, relay=mx2\.down\.test\[127\.0\.0\.3\]:%d, .*"
                   r"status=sent" % PORT)

    def test_implicit_mx(self):
        b = self.node(B_ADDR, ["b.test", "down.test", "amx.test"])
        a = self.node(A_ADDR, ["a.test"])
        a.send("alice@a.test", ["bob@amx.test"], "no mx record")
        H.wait_maildir(b.vmaildir("bob@amx.test"), 1, 40, a)
        a.wait_log(r"to=<bob@amx.test>, relay=amx\.test\[127\.0\.0\.3\]:%d, .*status=sent"
                   % PORT)

    def test_5xx_bounces_with_report(self):
        self.node(B_ADDR, ["b.test", "down.test", "amx.test"])
        a = self.node(A_ADDR, ["a.test"])
        a.send("alice@a.test", ["nobody@b.test"], "to an unknown user")
        a.wait_log(r"to=<nobody@b.test>, relay=mx1\.b\.test\[127\.0\.0\.3\]:%d, .*"
                   r"dsn=5\.1\.1, status=bounced \(host mx1\.b\.test\[127\.0\.0\.3\] said: "
                   r"550" % PORT, timeout=40)
        text = self.bounce_text(a)
        self.assertIn("multipart/report", text)
        self.assertIn("report-type=delivery-status", text)
        self.assertIn("nobody@b.test", text)
        self.assertIn("550", text)                        # the remote reply, quoted
        flat = re.sub(r"\s+", " ", text)
        self.assertIn("host mx1.b.test[127.0.0.3] said: 550 5.1.1", flat)
        self.assertIn("(in reply to RCPT TO command)", flat)
        self.assertRegex(text, r"(?i)Status: 5\.1\.1")
        a.wait_queue_empty(20)

    def test_b_down_defers_then_delivers(self):
        b = self.node(B_ADDR, ["b.test", "down.test", "amx.test"], start=False)
        a = self.node(A_ADDR, ["a.test"])
        a.send("alice@a.test", ["alice@b.test"], "while b is down")
        a.wait_log(r"to=<alice@b.test>, .*dsn=4\.4\.1, status=deferred \(connect to "
                   r"mx1\.b\.test\[127\.0\.0\.3\]:%d: Connection refused\)" % PORT, timeout=40)
        self.assertTrue(a.queue_files(("deferred", "active", "incoming")))
        b.start()
        H.wait_maildir(b.vmaildir("alice@b.test"), 1, 60, a)
        a.wait_log(r"to=<alice@b.test>, .*status=sent", timeout=30)

    def test_relayhost(self):
        self.node(B_ADDR, ["b.test", "down.test", "amx.test"])
        stub = self.stub(STUB_ADDR)
        # Every remote domain goes to the relayhost, no MX lookup.
        a = self.node(A_ADDR, ["a.test"],
                      conf={"relayhost": "[%s]:%d" % (STUB_ADDR, PORT)})
        a.send("alice@a.test", ["bob@b.test"], "via relayhost")
        m = stub.wait_messages(1)[0]
        self.assertIn("<bob@b.test>", m[1][0])
        a.wait_log(r"to=<bob@b.test>, relay=127\.0\.0\.6\[127\.0\.0\.6\]:%d, .*"
                   r"status=sent \(250 2\.0\.0 Ok: queued as STUB1\)" % PORT)

    def test_transport_maps(self):
        b = self.node(B_ADDR, ["b.test", "down.test", "amx.test", "t.test"])
        stub = self.stub(STUB_ADDR)
        a = self.node(A_ADDR, ["a.test"], start=False)
        tm = a.path("transport")
        a.params["transport_maps"] = "lmdb:" + tm
        a.write("transport", "t.test smtp:[%s]:%d\nb.test smtp:[%s]:%d\n"
                % (B_ADDR, PORT, STUB_ADDR, PORT))
        a.prepare()
        a.postern("map", "build", "lmdb:" + tm, check=True)
        a.start(prepare=False)
        a.send("alice@a.test", ["bob@t.test"], "transport to b")
        a.send("alice@a.test", ["alice@b.test"], "transport to stub")
        H.wait_maildir(b.vmaildir("bob@t.test"), 1, 40, a)
        stub.wait_messages(1)
        a.wait_log(r"to=<bob@t.test>, relay=127\.0\.0\.3\[127\.0\.0\.3\]:%d" % PORT)
        a.wait_log(r"to=<alice@b.test>, relay=127\.0\.0\.6\[127\.0\.0\.6\]:%d" % PORT)

    # --- DNS outcomes ---------------------------------------------------

    def test_null_mx_bounces(self):
        a = self.node(A_ADDR, ["a.test"])
        a.send("alice@a.test", ["x@null.test"], "to null mx")
        a.wait_log(r"to=<x@null.test>, relay=none, .*dsn=5\.1\.10, status=bounced "
                   r"\(Domain null\.test does not accept mail \(nullMX\)\)")
        self.assertIn("nullMX", self.bounce_text(a))

    def test_unresolvable_defers(self):
        a = self.node(A_ADDR, ["a.test"])
        a.send("alice@a.test", ["x@nowhere.test"], "to nowhere")
        a.wait_log(r"to=<x@nowhere.test>, relay=none, .*dsn=4\.4\.3, status=deferred "
                   r"\(Host or domain name not found")
        self.assertTrue(a.queue_files(("deferred", "active", "incoming")))

    def test_nxdomain_bounces(self):
        a = self.node(A_ADDR, ["a.test"])
        a.send("alice@a.test", ["x@gone.nx.test"], "to nxdomain")
        a.wait_log(r"to=<x@gone.nx.test>, relay=none, .*dsn=5\.4\.4, status=bounced")

    # --- stubs: 4xx, TLS, AUTH -----------------------------------------

    def test_4xx_defers_then_delivers(self):
        stub = self.stub(STUB_ADDR, rcpt_reply=lambda a, n:
                         "451 4.3.0 try later" if n < 1 else "250 2.1.5 Ok")
        a = self.node(A_ADDR, ["a.test"])
        a.send("alice@a.test", ["bob@stub.test"], "soft fail first")
        a.wait_log(r"to=<bob@stub.test>, relay=mx\.stub\.test\[127\.0\.0\.6\]:%d, .*"
                   r"dsn=4\.3\.0, status=deferred \(host mx\.stub\.test\[127\.0\.0\.6\] "
                   r"said: 451 4\.3\.0 try later \(in reply to RCPT TO command\)\)" % PORT)
        stub.wait_messages(1, timeout=40)
        a.wait_log(r"to=<bob@stub.test>, .*status=sent")
        a.wait_queue_empty(20)

    def test_starttls_to_stub(self):
        stub = self.tls_stub()
        a = self.node(A_ADDR, ["a.test"])
        a.send("alice@a.test", ["bob@tls.test"], "encrypted hop")
        m = stub.wait_messages(1)[0]
        self.assertTrue(m[3], "message was not sent over TLS")
        a.wait_log(r"Untrusted TLS connection established to mx\.tls\.test\[127\.0\.0\.7\]"
                   r":%d: TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)" % PORT)
        # EHLO again after STARTTLS.
        self.assertEqual(stub.sessions[-1]["ehlo"], 2)

    def test_tls_encrypt_required_not_offered(self):
        self.stub(STUB_ADDR)     # no STARTTLS
        a = self.node(A_ADDR, ["a.test"], conf={"smtp_tls_security_level": "encrypt"})
        a.send("alice@a.test", ["bob@stub.test"], "must be encrypted")
        a.wait_log(r"to=<bob@stub.test>, .*dsn=4\.7\.4, status=deferred \(TLS is required, "
                   r"but was not offered")

    def test_tls_verify_fails_on_self_signed(self):
        stub = self.tls_stub()
        a = self.policy_node("verify")
        a.send("alice@a.test", ["bob@tls.test"], "verify me")
        a.wait_log(r"to=<bob@tls.test>, .*dsn=4\.7\.5, status=deferred \(Server certificate "
                   r"not verified")
        self.assertEqual(stub.messages, [])

    def test_tls_mandatory_protocols(self):
        # smtp_tls_mandatory_protocols: a server with nothing above TLS 1.2
        # is refused when TLS is required, and nothing is sent in clear
        stub = self.tls_stub(tls12=True)
        a = self.node(A_ADDR, ["a.test"], conf={
            "smtp_tls_security_level": "encrypt",
            "smtp_tls_mandatory_protocols": ">=TLSv1.3"})
        a.send("alice@a.test", ["bob@tls.test"], "tls 1.3 or nothing")
        a.wait_log(r"to=<bob@tls.test>, .*dsn=4\.7\.5, status=deferred \(Cannot start "
                   r"TLS: handshake failure with mx\.tls\.test\[127\.0\.0\.7\]")
        self.assertEqual(stub.messages, [])

    def test_tls_opportunistic_protocols_and_ciphers(self):
        # "may" takes smtp_tls_protocols and smtp_tls_exclude_ciphers, not
        # the mandatory settings
        stub = self.tls_stub(tls12=True)
        a = self.node(A_ADDR, ["a.test"], conf={
            "smtp_tls_mandatory_protocols": ">=TLSv1.3",
            "smtp_tls_exclude_ciphers": "AES256, CHACHA20"})
        a.send("alice@a.test", ["bob@tls.test"], "tls 1.2 without aes256")
        m = stub.wait_messages(1)[0]
        self.assertTrue(m[3], "message was not sent over TLS")
        info = stub.sessions[-1]
        self.assertEqual(info["tls"], "TLSv1.2")
        self.assertNotIn("AES256", info["cipher"])
        self.assertNotIn("CHACHA20", info["cipher"])
        a.wait_log(r"TLS connection established to mx\.tls\.test\[127\.0\.0\.7\]:%d: "
                   r"TLSv1\.2 with cipher %s" % (PORT, re.escape(info["cipher"])))

    def test_tls_verify_with_capath(self):
        # smtp_tls_CApath: a hashed directory holding the server's
        # (self-signed) certificate makes "verify" pass
        stub = self.tls_stub()
        capath = os.path.join(os.path.dirname(stub.cert[0]), "certs")
        os.makedirs(capath)
        shutil.copy(stub.cert[0], os.path.join(capath, "stub.pem"))
        subprocess.run(["openssl", "rehash", capath], check=True, capture_output=True)
        os.chmod(os.path.dirname(capath), 0o755)
        a = self.policy_node("verify", conf={"smtp_tls_CApath": capath})
        a.send("alice@a.test", ["bob@tls.test"], "verified by capath")
        stub.wait_messages(1)
        a.wait_log(r"Verified TLS connection established to mx\.tls\.test"
                   r"\[127\.0\.0\.7\]:%d" % PORT)

    def policy_node(self, entry, conf=None):
        """Node A with an smtp_tls_policy_maps entry for tls.test."""
        a = self.node(A_ADDR, ["a.test"], start=False, conf=conf)
        a.write("tls_policy", "tls.test %s\n" % entry)
        a.params["smtp_tls_policy_maps"] = "lmdb:" + a.path("tls_policy")
        a.prepare()
        a.postern("map", "build", "lmdb:" + a.path("tls_policy"), check=True)
        a.start(prepare=False)
        return a

    def test_tls_policy_table_protocols(self):
        # the protocols= of a policy entry, over smtp_tls_mandatory_protocols
        stub = self.tls_stub(tls12=True)
        a = self.policy_node("encrypt protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1:!TLSv1.2")
        a.send("alice@a.test", ["bob@tls.test"], "policy says tls 1.3")
        a.wait_log(r"to=<bob@tls.test>, .*dsn=4\.7\.5, status=deferred \(Cannot start "
                   r"TLS: handshake failure")
        self.assertEqual(stub.messages, [])

    def test_tls_policy_table_bad_attribute_defers(self):
        # an attribute that cannot be applied defers, before any STARTTLS
        stub = self.tls_stub()
        a = self.policy_node("encrypt ciphers=strongest")
        a.send("alice@a.test", ["bob@tls.test"], "policy typo")
        a.wait_log(r"to=<bob@tls.test>, .*dsn=4\.7\.5, status=deferred \(invalid TLS "
                   r"policy for tls\.test: ciphers=strongest: unknown cipher grade")
        self.assertEqual(stub.messages, [])
        self.assertFalse(any(i.get("tls") for i in stub.sessions), stub.sessions)

    def test_sasl_auth_to_relayhost(self):
        stub = self.tls_stub("relay.test", auth=True)
        nh = "[%s]:%d" % (TLS_ADDR, PORT)
        a = self.node(A_ADDR, ["a.test"], start=False, conf={"relayhost": nh})
        a.write("sasl_passwd", "%s user1:s3cret\n" % nh)
        a.params["smtp_sasl_password_maps"] = "lmdb:" + a.path("sasl_passwd")
        a.prepare()
        a.postern("map", "build", "lmdb:" + a.path("sasl_passwd"), check=True)
        a.start(prepare=False)
        a.send("alice@a.test", ["bob@far.test"], "authenticated relay")
        m = stub.wait_messages(1)[0]
        self.assertEqual(m[4], (b"\0user1\0s3cret", True))   # AUTH PLAIN over TLS

    def test_sasl_security_options_rule_out_plain(self):
        # smtp_sasl_tls_security_options with noplaintext: PLAIN is all
        # Postern has, so the password is never sent and the mail waits
        stub = self.tls_stub("relay.test", auth=True)
        nh = "[%s]:%d" % (TLS_ADDR, PORT)
        a = self.node(A_ADDR, ["a.test"], start=False, conf={
            "relayhost": nh,
            "smtp_sasl_tls_security_options": "noanonymous, noplaintext"})
        a.write("sasl_passwd", "%s user1:s3cret\n" % nh)
        a.params["smtp_sasl_password_maps"] = "lmdb:" + a.path("sasl_passwd")
        a.prepare()
        a.postern("map", "build", "lmdb:" + a.path("sasl_passwd"), check=True)
        a.start(prepare=False)
        a.send("alice@a.test", ["bob@far.test"], "no plaintext password")
        a.wait_log(r"to=<bob@far.test>, .*dsn=4\.7\.0, status=deferred \(SASL "
                   r"authentication failed; cannot authenticate to server "
                   r"127\.0\.0\.7\[127\.0\.0\.7\]: no mechanism available "
                   r"\(smtp_sasl_tls_security_options rules out PLAIN\)\)")
        self.assertEqual(stub.auths, [])
        self.assertEqual(stub.messages, [])

    def test_smtputf8_needed_but_not_offered(self):
        stub = self.stub(STUB_ADDR, smtputf8=False)
        a = self.node(A_ADDR, ["a.test"])
        msg = H.make_message("alice@a.test", ["b\u00f8b@stub.test"], "utf8", "hi\r\n")
        s = H.smtplib.SMTP(a.addr, a.port, timeout=30)
        s.ehlo("client.test")
        s.sendmail("alice@a.test", ["b\u00f8b@stub.test"], msg, mail_options=["SMTPUTF8"])
        s.quit()
        a.wait_log(r"dsn=5\.6\.7, status=bounced \(SMTPUTF8 is required, but was not "
                   r"offered by host mx\.stub\.test")
        self.assertEqual(stub.messages, [])

    def test_dsn_and_size_parameters(self):
        stub = self.stub(STUB_ADDR)
        a = self.node(A_ADDR, ["a.test"])
        msg = H.make_message("alice@a.test", ["bob@stub.test"], "dsn params",
                             "hi\r\n.leading dot\r\n")
        s = H.smtplib.SMTP(a.addr, a.port, timeout=30)
        s.ehlo("client.test")
        s.sendmail("alice@a.test", ["bob@stub.test"], msg,
                   mail_options=["RET=HDRS", "ENVID=abc+2Bdef"],
                   rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob@stub.test"])
        s.quit()
        m = stub.wait_messages(1)[0]
        self.assertRegex(m[0], r"^MAIL FROM:<alice@a\.test> SIZE=\d+ .*RET=HDRS ENVID=abc\+2Bdef")
        self.assertIn("NOTIFY=SUCCESS,FAILURE", m[1][0])
        self.assertIn("ORCPT=rfc822;bob@stub.test", m[1][0])
        # CRLF only, dot-stuffed on the wire.
        self.assertNotRegex(m[2], rb"(?<!\r)\n")
        self.assertIn(b"\r\n..leading dot\r\n", m[2])

    def test_a_to_b_hop_encrypted(self):
        """B offers STARTTLS with a self-signed certificate; A (level may)
        uses it, unverified, and B records the TLS in its Received line."""
        b = self.node(B_ADDR, ["b.test", "down.test", "amx.test"], cert=True)
        a = self.node(A_ADDR, ["a.test"])
        a.send("alice@a.test", ["bob@b.test"], "encrypted a to b")
        got = H.wait_maildir(b.vmaildir("bob@b.test"), 1, 40, a)[0]
        self.assertIn(b"Subject: encrypted a to b", got)
        self.assertRegex(got, rb"\(using TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)\)")
        a.wait_log(r"TLS connection established to mx1\.b\.test\[127\.0\.0\.3\]:%d: "
                   r"TLSv1\.[23] with cipher \S+" % PORT)
        a.wait_log(r"to=<bob@b.test>, relay=mx1\.b\.test\[127\.0\.0\.3\]:%d, .*"
                   r"dsn=2\.0\.0, status=sent" % PORT)
        b.wait_log(r"TLS connection established from \S*\[127\.0\.0\.2\]: TLSv1\.[23]")
        # 3 MB with dot-led lines: many TLS records and output buffers
        # on both sides, and the dot-stuffing undone once
        body = "".join(".line %06d, led by a dot, of a large relayed message\r\n" % i
                       for i in range(50000))
        a.send("alice@a.test", ["alice@b.test"], "large encrypted", body)
        got = H.wait_maildir(b.vmaildir("alice@b.test"), 1, 60, a)[0]
        self.assertIn(b"\n\n" + body.replace("\r\n", "\n").encode(), got)
        a.wait_queue_empty(20)


if __name__ == "__main__":
    H.main()

"""
test_smtp_cache - outbound SMTP connection caching and TLS session
resumption between real instances (smtp/, qmgr/qmgr_deliver.c).

Instance A (127.0.0.2) relays to instance B (127.0.0.3, mx1.b.test, with
STARTTLS) through the dnsmasq zone of test_relay. A's smtp service has
maxproc 1 and smtp_destination_concurrency_limit = 1, so its deliveries to
B run one after another in one smtp process: what is counted (B's
"connect from" lines, A's conn_use= and TLS lines) then depends on the
caching alone. A backlog is made deterministic by queuing N messages
while B is down and flushing them once B is up.

B runs two smtpd processes (smtpd_process_count = 2): master's shared
TLS ticket keys let either resume a session the other began, which
test_resumes_on_either_smtpd_process forces by stopping one at a time.

A stub server stands in for B where a real instance cannot produce the
case: a server that closes a kept connection as the next MAIL FROM
arrives (the race between reuse and the server's own time-out).
"""

import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402
import test_relay as R  # noqa: E402

A_ADDR, B_ADDR, STUB_ADDR = R.A_ADDR, R.B_ADDR, R.STUB_ADDR
DNS = None
PORT = None
N = 8


def setUpModule():
    global DNS, PORT
    R.setUpModule()
    DNS, PORT = R.DNS, R.PORT


def tearDownModule():
    R.tearDownModule()


class OneSmtpNode(R.Node):
    """A node whose smtp service runs at most one process."""

    def master_text(self):
        return super().master_text().replace("smtp unix - - n - - smtp",
                                             "smtp unix - - n - 1 smtp")


class TwoSmtpdNode(R.Node):
    """B: two smtpd processes (smtpd_process_count = 2). Every smtpd
    process of B resumes the TLS tickets of any other (master's shared
    ticket keys), so what A counts does not depend on which one accepts."""

    def __init__(self, *a, conf=None, **kw):
        c = {"smtpd_process_count": "2"}
        c.update(conf or {})
        super().__init__(*a, conf=c, **kw)


class ClosingStub:
    """A plain SMTP server that closes the connection, without a reply,
    when a second MAIL FROM arrives in one session."""

    def __init__(self, addr, port):
        self.messages = []
        self.sessions = 0
        stub = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                stub.sessions += 1
                stub._converse(self.connection, self.rfile)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((addr, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _converse(self, sock, rf):
        def send(line):
            sock.sendall((line + "\r\n").encode())

        send("220 closing-stub ESMTP")
        mails = 0
        while True:
            line = rf.readline(4096)
            if not line:
                return
            up = line.decode("utf-8", "replace").rstrip("\r\n").upper()
            if up.startswith("EHLO"):
                send("250-closing-stub")
                send("250 8BITMIME")
            elif up.startswith("MAIL FROM:"):
                mails += 1
                if mails == 2:
                    sock.shutdown(socket.SHUT_RDWR)
                    return
                send("250 2.1.0 Ok")
            elif up.startswith("RCPT TO:"):
                send("250 2.1.5 Ok")
            elif up == "DATA":
                send("354 go ahead")
                data = b""
                while True:
                    l = rf.readline(100000)
                    if not l or l == b".\r\n":
                        break
                    data += l
                self.messages.append(data)
                send("250 2.0.0 Ok: queued as CS%d" % len(self.messages))
            elif up in ("RSET", "NOOP"):
                send("250 2.0.0 Ok")
            elif up == "QUIT":
                send("221 2.0.0 Bye")
                return
            else:
                send("502 5.5.2 no")

    def wait_messages(self, n, timeout=40):
        deadline = time.time() + timeout
        while len(self.messages) < n:
            if time.time() > deadline:
                raise AssertionError("stub: %d/%d messages" % (len(self.messages), n))
            time.sleep(0.2)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class SmtpCacheTest(H.InstanceTestCase):

    def node(self, cls, addr, domains, conf=None, start=True, cert=False):
        n = cls(addr, PORT, DNS.port, domains, conf=conf)
        self.addCleanup(self._cleanup_inst, n)
        if cert:
            n.make_cert(n.params["myhostname"], level="may")
        if start:
            n.start()
        return n

    def a_node(self, conf=None, backlog=False):
        c = {"smtp_destination_concurrency_limit": "1"}
        if backlog:
            # No retry of its own before the flush: on a slow machine one
            # could start a message alone between B's start and the flush,
            # and change how the messages share connections.
            c.update({"minimal_backoff_time": "300s", "maximal_backoff_time": "600s"})
        c.update(conf or {})
        return self.node(OneSmtpNode, A_ADDR, ["a.test"], conf=c)

    def b_connects(self, b):
        return len(re.findall(r"smtpd\[\d+\]: connect from \S*\[127\.0\.0\.2\]", b.log()))

    def backlog_to_b(self, a, b, n):
        """Queue n messages in A while B is down, then start B and flush:
        every message is in A's active queue at once (a backlog)."""
        for i in range(n):
            a.send("alice@a.test", ["bob@b.test"], "cached %d" % i)
        a.wait_log(r"to=<bob@b\.test>, .*status=deferred", timeout=60, count=n)
        b.start()
        a.postern("queue", "flush", check=True)
        got = H.wait_maildir(b.vmaildir("bob@b.test"), n, 90, a)
        subjects = sorted(re.search(rb"Subject: (cached \d+)", m).group(1) for m in got)
        self.assertEqual(subjects, sorted(b"cached %d" % i for i in range(n)))
        a.wait_queue_empty(30)

    def test_backlog_reuses_the_connection(self):
        """On demand (the default): with a backlog, A sends the messages in a
        row over kept sessions: fewer connections to B than messages,
        conn_use= in A's status lines, and the TLS session reused."""
        b = self.node(TwoSmtpdNode, B_ADDR, ["b.test"], start=False, cert=True)
        a = self.a_node(backlog=True)
        self.backlog_to_b(a, b, N)
        conns = self.b_connects(b)
        self.assertGreaterEqual(conns, 1)
        self.assertLess(conns, N, "one connection per message despite the cache")
        a.wait_log(r"to=<bob@b\.test>, relay=mx1\.b\.test\[127\.0\.0\.3\]:%d, "
                   r"conn_use=2, delay=[^,]+, delays=[^,]+, dsn=2\.0\.0, "
                   r"status=sent" % PORT)
        a.wait_log(r"TLS connection reused to mx1\.b\.test\[127\.0\.0\.3\]:%d: "
                   r"TLSv1\.[23] with cipher" % PORT)
        # Every message went over TLS: B's Received lines say so.
        for m in H.maildir_messages(b.vmaildir("bob@b.test")):
            self.assertRegex(m, rb"\(using TLSv1\.[23] with cipher")
        # The only deferrals are B being down: none came from a kept
        # session.
        defers = re.findall(r"to=<bob@b\.test>, .*status=deferred \((.*)\)$", a.log(),
                            re.M)
        self.assertGreaterEqual(len(defers), N)
        self.assertEqual([d for d in defers if "Connection refused" not in d], [])

    def test_on_demand_off_one_connection_per_message(self):
        """smtp_connection_cache_on_demand = no: one connection per message,
        and from the second connection on the TLS handshake resumes the
        session of the first (same smtp process)."""
        b = self.node(TwoSmtpdNode, B_ADDR, ["b.test"], start=False, cert=True)
        a = self.a_node({"smtp_connection_cache_on_demand": "no"}, backlog=True)
        self.backlog_to_b(a, b, N)
        self.assertEqual(self.b_connects(b), N)
        self.assertNotIn("conn_use=", a.log())
        est = re.findall(r"(\w+) TLS connection established to mx1\.b\.test"
                         r"\[127\.0\.0\.3\]:%d: TLSv1\.[23] with cipher \S+ "
                         r"\(\d+/\d+ bits\)( \(session reused\))?" % PORT, a.log())
        self.assertEqual(len(est), N)
        self.assertEqual(est[0][1], "", "the first handshake cannot resume")
        self.assertTrue(all(e[1] for e in est[1:]),
                        "later handshakes did not resume: %r" % est)

    def test_resumes_on_either_smtpd_process(self):
        """B runs two smtpd processes; each of A's connections (one per
        message) is made to land on a given one by stopping the other
        (SIGSTOP by pid). From the second on, every handshake resumes the
        session of the first, on the process that issued its ticket and on
        the other alike: A logs "(session reused)", and so does B, under
        both pids."""
        b = self.node(TwoSmtpdNode, B_ADDR, ["b.test"], cert=True)
        a = self.a_node({"smtp_connection_cache_on_demand": "no"})
        # Idle sessions until master runs B's second smtpd.
        held = []
        self.addCleanup(lambda: [c.close() for c in held])
        for _ in range(60):
            c = H.RawSMTP(PORT, host=B_ADDR, timeout=30)
            held.append(c)
            self.assertEqual(c.reply()[0], 220)
            if len(b.pids().get("smtpd", [])) >= 2:
                break
        pids = sorted(b.pids().get("smtpd", []))
        self.assertEqual(len(pids), 2, "B's smtpd processes: %s" % pids)
        order = [pids[0], pids[1], pids[0], pids[1], pids[1], pids[0]]
        for i, serving in enumerate(order):
            other = pids[1] if serving == pids[0] else pids[0]
            os.kill(other, signal.SIGSTOP)
            try:
                a.send("alice@a.test", ["bob@b.test"], "spread %d" % i)
                H.wait_maildir(b.vmaildir("bob@b.test"), i + 1, 60, a)
            finally:
                os.kill(other, signal.SIGCONT)
        est = re.findall(r"(\w+) TLS connection established to mx1\.b\.test"
                         r"\[127\.0\.0\.3\]:%d: TLSv1\.[23] with cipher \S+ "
                         r"\(\d+/\d+ bits\)( \(session reused\))?" % PORT, a.log())
        self.assertEqual(len(est), len(order))
        self.assertEqual(est[0][1], "", "the first handshake cannot resume")
        self.assertTrue(all(e[1] for e in est[1:]),
                        "later handshakes did not resume: %r" % est)
        # B's side: which process took each, and that it resumed.
        srv = re.findall(r"smtpd\[(\d+)\]: Anonymous TLS connection established "
                         r"from \S*\[127\.0\.0\.2\]: TLSv1\.[23] with cipher \S+ "
                         r"\(\d+/\d+ bits\)( \(session reused\))?$", b.log(), re.M)
        self.assertEqual([int(p) for p, _ in srv], order)
        self.assertEqual(srv[0][1], "")
        self.assertTrue(all(r for _, r in srv[1:]),
                        "B did not resume on every process: %r" % srv)
        self.assertNotIn("TLS session tickets resume only", b.log())

    def test_server_timeout_zero_no_resumption(self):
        """smtpd_tls_session_cache_timeout = 0 on B: no tickets and no
        cache (Postfix's meaning), so none of A's handshakes resumes."""
        b = self.node(TwoSmtpdNode, B_ADDR, ["b.test"], start=False, cert=True,
                      conf={"smtpd_tls_session_cache_timeout": "0"})
        a = self.a_node({"smtp_connection_cache_on_demand": "no"}, backlog=True)
        self.backlog_to_b(a, b, 3)
        est = re.findall(r"TLS connection established to mx1\.b\.test"
                         r"\[127\.0\.0\.3\]:%d: TLSv1\.[23] with cipher \S+ "
                         r"\(\d+/\d+ bits\)( \(session reused\))?" % PORT, a.log())
        self.assertEqual(est, ["", "", ""])
        self.assertNotIn("(session reused)", b.log())

    def test_reuse_count_limit(self):
        """smtp_connection_reuse_count_limit = 2: a session carries two
        messages, then QUIT and a new connection (which resumes TLS)."""
        b = self.node(TwoSmtpdNode, B_ADDR, ["b.test"], start=False, cert=True)
        a = self.a_node({"smtp_connection_reuse_count_limit": "2"}, backlog=True)
        self.backlog_to_b(a, b, 6)
        self.assertEqual(self.b_connects(b), 3)
        self.assertEqual(len(re.findall(r"conn_use=2,", a.log())), 3)
        self.assertNotIn("conn_use=3", a.log())
        self.assertIn("(session reused)", a.log())

    def test_server_closes_idle_kept_connection(self):
        """B drops the kept connection while it is idle (smtpd_timeout 3s:
        short of A's 20 s cache time, long enough not to cut a session a
        slow machine is still busy with);
        the next message still goes out, on a new connection, and nothing is
        deferred."""
        b = self.node(TwoSmtpdNode, B_ADDR, ["b.test"], cert=True,
                      conf={"smtpd_timeout": "3s"})
        a = self.a_node({"smtp_connection_cache_destinations": "b.test",
                         "smtp_connection_cache_time_limit": "20s"})
        a.send("alice@a.test", ["bob@b.test"], "cached 0")
        H.wait_maildir(b.vmaildir("bob@b.test"), 1, 40, a)
        # B times the kept session out and closes it.
        b.wait_log(r"timeout after \S+ from \S*\[127\.0\.0\.2\]|"
                   r"disconnect from \S*\[127\.0\.0\.2\]", timeout=20)
        a.send("alice@a.test", ["bob@b.test"], "cached 1")
        H.wait_maildir(b.vmaildir("bob@b.test"), 2, 40, a)
        a.wait_log(r"kept connection to mx1\.b\.test\[127\.0\.0\.3\]:%d was closed "
                   r"by the server; delivering on a new connection" % PORT)
        self.assertEqual(self.b_connects(b), 2)
        self.assertNotIn("status=deferred", a.log())
        a.wait_queue_empty(30)

    def test_server_closes_at_next_mail(self):
        """The server closes the kept connection just as the next MAIL FROM
        arrives: the message is not deferred, it goes out on a new
        connection."""
        stub = ClosingStub(STUB_ADDR, PORT)
        self.addCleanup(stub.stop)
        a = self.a_node({"smtp_connection_cache_destinations": "stub.test",
                         "smtp_connection_cache_time_limit": "20s"})
        a.send("alice@a.test", ["bob@stub.test"], "first")
        stub.wait_messages(1)
        a.wait_log(r"to=<bob@stub\.test>, .*status=sent")
        a.send("alice@a.test", ["bob@stub.test"], "second")
        stub.wait_messages(2)
        a.wait_log(r"kept connection to mx\.stub\.test\[127\.0\.0\.6\]:%d failed "
                   r"\(lost connection\); delivering on a new connection" % PORT)
        a.wait_log(r"to=<bob@stub\.test>, .*status=sent", count=2)
        self.assertEqual(stub.sessions, 2)
        self.assertNotIn("status=deferred", a.log())
        a.wait_queue_empty(30)


if __name__ == "__main__":
    H.main()

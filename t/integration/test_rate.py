"""
test_rate - qmgr's per-destination rate delay (default_destination_rate_delay,
<transport>_destination_rate_delay).

Instance A relays through transport_maps to a Python SMTP stub on
127.0.0.3: slow.test over transport "smtp" (smtp_destination_rate_delay =
2s) and fast.test over a second service of the same agent, "fastsmtp",
which has no delay. The stub notes time.monotonic() at each RCPT (right
after MAIL FROM) per recipient domain, with the time the connection came
in.

Checked: consecutive slow.test deliveries start at least about the delay
apart (a lower bound only: never an upper bound or a speed), and every
fast.test message is delivered before the second slow.test delivery
starts, so a rate-limited destination does not hold up the others.
"""

import os
import socketserver
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

STUB_ADDR = "127.0.0.3"
DELAY = 2
SLACK = 0.8     # the first connection reaches the stub late by its connect time
                # (0.45 s seen under ASan); without the delay the gap is ~0


class TimingStub:
    """Accepts everything; records (domain, connection time) at each RCPT
    and the domain of each message accepted after DATA."""

    def __init__(self, addr):
        self.rcpts = []
        self.delivered = []
        self.lock = threading.Lock()
        stub = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                stub._converse(self)

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server((addr, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _converse(self, h):
        def send(line):
            h.wfile.write((line + "\r\n").encode())
            h.wfile.flush()

        # A delivery's start is its connection: EHLO and MAIL latency
        # (an agent process started afresh, a sanitizer build) would
        # otherwise be counted against the delay.
        connected = time.monotonic()
        send("220 stub ESMTP")
        domains = []
        while True:
            line = h.rfile.readline(4096)
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            up = cmd.upper()
            if up.startswith("EHLO") or up.startswith("HELO"):
                send("250-stub")
                send("250 PIPELINING")
            elif up.startswith("MAIL FROM:"):
                domains = []
                # a kept connection's next delivery starts at its MAIL
                # (smtp_connection_cache_*), the first at the connect
                if connected is None:
                    connected = time.monotonic()
                send("250 2.1.0 Ok")
            elif up.startswith("RCPT TO:"):
                dom = cmd[8:].split(">")[0].rsplit("@", 1)[-1].lower()
                with self.lock:
                    self.rcpts.append((dom, connected))
                domains.append(dom)
                send("250 2.1.5 Ok")
            elif up == "DATA":
                send("354 go ahead")
                while True:
                    l = h.rfile.readline(100000)
                    if not l or l == b".\r\n":
                        break
                with self.lock:
                    for d in domains:
                        self.delivered.append((d, time.monotonic()))
                connected = None
                send("250 2.0.0 Ok")
            elif up == "QUIT":
                send("221 2.0.0 Bye")
                return
            else:
                send("250 2.0.0 Ok")

    def times(self, what, domain):
        with self.lock:
            return [t for d, t in what if d == domain]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def setUpModule():
    H.require_binaries()


class RateTest(H.InstanceTestCase):

    def run_two_transports(self, conf, transport, per_domain):
        """Instance A with conf, an extra transport "fastsmtp", transport
        table text (format with the stub's nexthop), per_domain messages to
        slow.test then fast.test; returns (A, stub) once all are sent."""
        stub = TimingStub(STUB_ADDR)
        self.addCleanup(stub.stop)
        nh = "[%s]:%d" % (STUB_ADDR, stub.port)
        a = self.make_instance(conf=dict(conf, inet_protocols="ipv4"),
                               services=["fastsmtp unix - - n - - smtp"])
        tm = a.path("transport")
        a.params["transport_maps"] = "lmdb:" + tm
        a.write("transport", transport % {"nh": nh})
        a.prepare()
        a.postern("map", "build", "lmdb:" + tm, check=True)
        a.start(prepare=False)
        # slow.test first, so the fast ones queue behind a waiting destination.
        s = H.smtplib.SMTP("127.0.0.1", a.port, timeout=30)
        s.ehlo("client.test")
        for dom in ("slow.test", "fast.test"):
            for i in range(per_domain):
                rcpt = "u%d@%s" % (i, dom)
                s.sendmail("alice@example.test", [rcpt],
                           H.make_message("alice@example.test", [rcpt],
                                          "%s %d" % (dom, i), "hi\r\n"))
        s.quit()
        return a, stub

    def test_rate_delay_per_destination(self):
        a, stub = self.run_two_transports(
            {"smtp_destination_rate_delay": "%ds" % DELAY},
            "slow.test smtp:%(nh)s\nfast.test fastsmtp:%(nh)s\n", 3)

        a.wait_log(r"to=<u\d@slow\.test>, relay=.*status=sent", count=3, timeout=60)
        a.wait_log(r"to=<u\d@fast\.test>, relay=.*status=sent", count=3, timeout=60)
        a.wait_queue_empty(20)

        slow = sorted(stub.times(stub.rcpts, "slow.test"))
        fast_done = stub.times(stub.delivered, "fast.test")
        self.assertEqual(len(slow), 3, stub.rcpts)
        self.assertEqual(len(fast_done), 3, stub.delivered)
        for prev, nxt in zip(slow, slow[1:]):
            self.assertGreaterEqual(nxt - prev, DELAY - SLACK,
                                    "slow.test deliveries %.3fs apart" % (nxt - prev))
        self.assertLess(max(fast_done), slow[1],
                        "fast.test waited for the rate-limited slow.test")
        # Rate waits are not logged at info level.
        self.assertNotRegex(a.log(), r"(?i)rate.?delay|rate.?limit")

    def test_default_rate_delay_applies_to_other_transports(self):
        """default_destination_rate_delay covers a transport without its
        own setting; its own "0s" turns it off again for smtp."""
        # Here "fastsmtp" is the delayed one (default), "smtp" is not.
        a, stub = self.run_two_transports(
            {"default_destination_rate_delay": "%ds" % DELAY,
             "smtp_destination_rate_delay": "0s"},
            "slow.test fastsmtp:%(nh)s\nfast.test smtp:%(nh)s\n", 2)
        a.wait_log(r"to=<u\d@slow\.test>, relay=.*status=sent", count=2, timeout=60)
        a.wait_log(r"to=<u\d@fast\.test>, relay=.*status=sent", count=2, timeout=60)
        slow = sorted(stub.times(stub.rcpts, "slow.test"))
        fast_done = stub.times(stub.delivered, "fast.test")
        self.assertEqual(len(slow), 2, stub.rcpts)
        self.assertGreaterEqual(slow[1] - slow[0], DELAY - SLACK)
        self.assertLess(max(fast_done), slow[1])
        a.wait_queue_empty(20)


if __name__ == "__main__":
    H.main()

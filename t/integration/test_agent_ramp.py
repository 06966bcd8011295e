"""
test_agent_ramp - master starts delivery agents for a burst, bounded by
maxproc (master/service.c svc_ramp(), lib/util/net.c net_listen_pending()),
and qmgr's slow start for a new destination (initial_destination_concurrency,
qmgr/qmgr_sched.c).

Instance A (127.0.0.2, dnsmasq zone of test_relay) relays to a slow stub
SMTP server (stub.test, 127.0.0.6) that holds every RCPT for a while and
counts the sessions open at once. A's smtp service has maxproc 4; 20
messages are queued while the stub is down and flushed once it is up,
so qmgr hands out 4 deliveries at once and master must start an smtp
process for each waiting connection. Each smtp process holds one
session, so the stub's concurrent sessions are A's running agents: 4
at most (maxproc), and 4 reached (all started for the burst).

Crash-loop throttling (a child that dies before taking work) is covered
by test_crash.
"""

import os
import re
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402
import test_relay as R  # noqa: E402

A_ADDR, STUB_ADDR = R.A_ADDR, R.STUB_ADDR
DNS = None
PORT = None
N = 20
MAXPROC = 4


def setUpModule():
    global DNS, PORT
    R.setUpModule()
    DNS, PORT = R.DNS, R.PORT


def tearDownModule():
    R.tearDownModule()


def smtp_node(maxproc, conf):
    """Instance A, its smtp service limited to maxproc processes."""
    class Node(R.Node):
        def master_text(self):
            return super().master_text().replace(
                "smtp unix - - n - - smtp", "smtp unix - - n - %d smtp" % maxproc)
    return Node(A_ADDR, PORT, DNS.port, ["a.test"], conf=conf)


class CountingStub(R.StubSMTP):
    """A stub that is slow to accept each recipient and counts the sessions
    open at once."""

    def __init__(self, *a, **kw):
        self.lock = threading.Lock()
        self.open = 0
        self.max_open = 0
        super().__init__(*a, rcpt_reply=self._slow, **kw)

    @staticmethod
    def _slow(addr, n):
        time.sleep(0.5)
        return "250 2.1.5 Ok"

    def _session(self, h):
        with self.lock:
            self.open += 1
            self.max_open = max(self.max_open, self.open)
        try:
            super()._session(h)
        finally:
            with self.lock:
                self.open -= 1


class AgentRampTest(H.InstanceTestCase):

    def burst(self, maxproc, conf, subject):
        """N messages queued in A while the stub is down, then the stub up
        and a flush: (A, the stub) once all are delivered."""
        a = smtp_node(maxproc, conf)
        self.addCleanup(self._cleanup_inst, a)
        a.start()
        for i in range(N):
            a.send("alice@a.test", ["bob@stub.test"], "%s %d" % (subject, i))
        a.wait_log(r"to=<bob@stub\.test>, .*status=deferred", timeout=60, count=N)
        stub = CountingStub(STUB_ADDR, PORT)
        self.addCleanup(stub.stop)
        a.postern("queue", "flush", check=True)
        stub.wait_messages(N, timeout=120)
        a.wait_queue_empty(60)
        return a, stub

    def test_burst_runs_maxproc_agents_and_never_more(self):
        a, stub = self.burst(MAXPROC, {"smtp_destination_concurrency_limit": "20"},
                             "burst")
        subjects = sorted(re.search(rb"Subject: (burst \d+)", m[2]).group(1)
                          for m in stub.messages)
        self.assertEqual(subjects, sorted(b"burst %d" % i for i in range(N)))
        self.assertLessEqual(stub.max_open, MAXPROC, "more agents than maxproc")
        self.assertEqual(stub.max_open, MAXPROC,
                         "the burst never ran maxproc agents at once")
        # Every delivery went out; the smtp processes that did it were
        # never more than maxproc in all (none died and was replaced).
        pids = set(re.findall(r"postern/smtp\[(\d+)\]: \S+: to=<bob@stub\.test>, "
                              r".*status=sent", a.log()))
        self.assertGreaterEqual(len(pids), 2)
        self.assertLessEqual(len(pids), MAXPROC)

    def test_new_destination_starts_slow(self):
        """initial_destination_concurrency: a destination starts with that
        many parallel deliveries and widens by 1/window per answered one
        (Postfix's slow start), so 20 deliveries from a window of 2 never
        run more than 6 at once, though limit and maxproc allow 10."""
        _, stub = self.burst(10, {"smtp_destination_concurrency_limit": "10",
                                  "initial_destination_concurrency": "2"}, "slow start")
        # sqrt(2**2 + 2 * 20) < 7: the window after 20 answered deliveries
        self.assertLessEqual(stub.max_open, 6, "the window did not hold")
        self.assertGreaterEqual(stub.max_open, 2, "not even the initial window")


if __name__ == "__main__":
    unittest.main()

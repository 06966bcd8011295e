#!/usr/bin/env python3
"""
check_policy_service the way Postfix runs it (issue 10): connections to a
policy service are kept and reused, and spawn(8) runs stdin/stdout policy
servers such as Debian's postfix-policyd-spf-python.

  - a policy server written here that keeps its connections open counts
    them: the requests of several RCPTs and of two SMTP sessions travel
    on one connection; while a request is in flight another session's
    request opens a second connection (never two requests on one), and
    each session gets its own answer
  - the server closes its idle connections: the next request still gets
    its answer (on a new connection); the server drops a request on a
    reused connection without answering: smtpd sends it again on a new
    one, and the client never notices
  - check_policy_service { inet:localhost:PORT, max_idle=1s }: the host
    name is looked up (hosts file), and smtpd closes the idle connection
    itself (seen by the server as end of file)
  - spawn: master.conf "policyd-spf unix - n n - 0 spawn user=nobody
    argv=..." runs the real policyd-spf (its resolver pointed at our
    dnsmasq, which serves the SPF TXT records): a sender whose SPF fails is
    refused with 550, one that passes is delivered with "Received-SPF:
    Pass" in the Maildir; the command runs as user= (privileged instance)
  - a spawned command that hangs is killed after its time limit
    (hang-policy_time_limit = 2s), and smtpd answers with
    smtpd_policy_service_default_action
"""

import os
import pwd
import re
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402
from test_restrictions import rcpt_code, send, DNSMASQ  # noqa: E402

POLICYD_SPF = "/usr/bin/policyd-spf"


def setUpModule():
    H.require_binaries()
    if not os.path.exists(DNSMASQ):
        raise unittest.SkipTest("dnsmasq is not installed (scripts/deps.sh dnsmasq-base)")


class KeepAlivePolicyServer:
    """Policy delegation over connections it keeps open: any number of
    requests per connection. Records, per connection, the requests seen
    and whether the client closed it. close_idle() closes every
    connection now; drop_next makes it read the next request on a
    connection that already served one and close without answering."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []          # dicts: requests (list), closed_by_client
        self.live = []
        self.drop_next = False
        self.slow_seen = threading.Event()
        self.stopped = False
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()

    def accept_loop(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            rec = {"requests": [], "closed_by_client": False, "dropped": 0}
            with self.lock:
                self.conns.append(rec)
                self.live.append(c)
            threading.Thread(target=self.serve, args=(c, rec), daemon=True).start()

    def serve(self, c, rec):
        data = b""
        try:
            while True:
                while b"\n\n" not in data:
                    chunk = c.recv(4096)
                    if not chunk:
                        rec["closed_by_client"] = True
                        return
                    data += chunk
                req, data = data.split(b"\n\n", 1)
                attrs = dict(l.split("=", 1) for l in req.decode().split("\n") if "=" in l)
                with self.lock:
                    drop = self.drop_next and len(rec["requests"]) > 0
                    if drop:
                        self.drop_next = False
                if drop:
                    rec["dropped"] += 1
                    return
                rec["requests"].append(attrs)
                if attrs.get("sender", "").startswith("slow@"):
                    self.slow_seen.set()
                    time.sleep(1.5)
                    c.sendall(b"action=REJECT slow no\n\n")
                elif attrs.get("sender", "").startswith("no@"):
                    c.sendall(b"action=REJECT not you\n\n")
                else:
                    c.sendall(b"action=DUNNO\n\n")
        except OSError:
            return
        finally:
            c.close()

    def close_idle(self):
        with self.lock:
            for c in self.live:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.live = []

    def count(self):
        with self.lock:
            return len(self.conns), sum(len(r["requests"]) for r in self.conns)

    def stop(self):
        self.stopped = True
        H.close_listener(self.sock, self.thread)
        self.close_idle()


def wait_for(pred, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


class PolicyConnections(H.InstanceTestCase):

    def setUp(self):
        self.policy = KeepAlivePolicyServer()
        self.addCleanup(self.policy.stop)
        self.idle_port = H.free_port()
        inst = self.make_instance()
        inst.params.update({
            "mynetworks": "192.0.2.0/24",
            "smtpd_recipient_restrictions":
                "reject_unauth_destination, check_policy_service inet:127.0.0.1:%d"
                % self.policy.port,
        })
        self.idle_policy = KeepAlivePolicyServer()
        self.addCleanup(self.idle_policy.stop)
        inst.services += [
            # a host name, and Postfix 3.0's per-service settings
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_recipient_restrictions="
            "reject_unauth_destination,check_policy_service,"
            "{inet:localhost:%d,max_idle=1s,timeout=10s}"
            % (self.idle_port, self.idle_policy.port),
        ]
        inst.start()

    def rcpts(self, n, sender="s@sender.example", port=None):
        s = H.smtp_client(self.inst, port=port)
        try:
            s.ehlo("client.example.org")
            s.mail(sender)
            codes = [s.rcpt("alice@example.test")[0] for _ in range(n)]
            s.quit()
        finally:
            s.close()
        return codes

    def test_requests_share_a_connection(self):
        self.assertEqual(self.rcpts(3), [250, 250, 250])
        self.assertEqual(self.rcpts(2), [250, 250])
        conns, reqs = self.policy.count()
        self.assertEqual(reqs, 5)
        self.assertEqual(conns, 1, self.policy.conns)
        self.assertEqual(len(self.policy.conns[0]["requests"]), 5)
        # a reject through the same connection
        self.assertEqual(self.rcpts(1, sender="no@sender.example"), [554])
        self.assertEqual(self.policy.count(), (1, 6))

    def test_busy_connection_is_not_shared(self):
        # a request is in flight on the only connection: another session's
        # request goes on a second connection, and each gets its own answer
        out = {}
        t = threading.Thread(target=lambda: out.update(
            slow=self.rcpts(1, sender="slow@sender.example")))
        t.start()
        self.assertTrue(self.policy.slow_seen.wait(20))
        self.assertEqual(self.rcpts(1), [250])
        t.join(30)
        self.assertEqual(out.get("slow"), [554])
        self.assertEqual(self.policy.count(), (2, 2))
        self.assertEqual([len(r["requests"]) for r in self.policy.conns], [1, 1])
        # both are idle now and reused: no third connection
        self.assertEqual(self.rcpts(2), [250, 250])
        self.assertEqual(self.policy.count(), (2, 4))

    def test_server_closes_idle_connection(self):
        self.assertEqual(self.rcpts(1), [250])
        self.policy.close_idle()
        # the next request is answered, on a new connection
        self.assertEqual(self.rcpts(1, sender="no@sender.example"), [554])
        # read the server's bookkeeping once its threads caught up (a
        # loaded CI machine once saw (1, 1) here right after the reply)
        wait_for(lambda: self.policy.count() == (2, 2), 10)
        self.assertEqual(self.policy.count(), (2, 2), self.policy.conns)
        # the server drops a request on the reused connection unanswered:
        # smtpd sends it again on a new one
        self.policy.drop_next = True
        self.assertEqual(self.rcpts(1, sender="no@sender.example"), [554])
        conns, reqs = self.policy.count()
        self.assertEqual((conns, reqs), (3, 3))
        self.assertEqual(sum(r["dropped"] for r in self.policy.conns), 1)
        self.assertNotIn("check_policy_service", self.inst.log())

    def test_host_name_and_max_idle(self):
        self.assertEqual(self.rcpts(2, port=self.idle_port), [250, 250])
        self.assertEqual(self.rcpts(1, sender="no@sender.example",
                                    port=self.idle_port), [554])
        self.assertEqual(self.idle_policy.count(), (1, 3))
        # max_idle=1s: smtpd closes the connection (the server sees EOF)
        self.assertTrue(wait_for(lambda: self.idle_policy.conns[0]["closed_by_client"]),
                        "smtpd kept the idle connection open")
        # and the next request opens a new one
        self.assertEqual(self.rcpts(1, port=self.idle_port), [250])
        self.assertEqual(self.idle_policy.count(), (2, 4))


SPF_WRAPPER = """\
# The real policyd-spf, with its resolver pointed at the test's dnsmasq
# instead of /etc/resolv.conf (pyspf uses dnspython or pydns).
import sys
import spf
try:
    import dns.resolver
    r = dns.resolver.Resolver(configure=False)
    r.nameservers = ["127.0.0.1"]
    r.port = %d
    dns.resolver.default_resolver = r
except ImportError:
    import DNS
    DNS.defaults["server"] = ["127.0.0.1"]
    DNS.defaults["port"] = %d
from spf_engine.policyd_spf import main
sys.argv = ["policyd-spf", %r]
sys.exit(main())
"""

# TestOnly = 1 is policyd-spf's normal operation (0 never rejects)
SPF_CONF = """\
debugLevel = 1
TestOnly = 1
HELO_reject = Fail
Mail_From_reject = Fail
PermError_reject = False
TempError_Defer = False
skip_addresses = 192.0.2.255/32
"""

HANG = """#!/bin/sh
id -u > %s
exec sleep 3600
"""


def SpfDns(port):
    """dnsmasq serving the SPF records of the test, nothing else."""
    return H.Dnsmasq([
        "--local=/spf.example/", "--local=/example.org/",
        "--txt-record=pass.spf.example,v=spf1 ip4:127.0.0.1 -all",
        "--txt-record=fail.spf.example,v=spf1 ip4:192.0.2.1 -all"], port)


@unittest.skipUnless(os.path.exists(POLICYD_SPF),
                     "postfix-policyd-spf-python is not installed "
                     "(scripts/deps.sh postfix-policyd-spf-python)")
class Spawn(H.InstanceTestCase):

    @classmethod
    def setUpClass(cls):
        cls.dns_port = H.free_port()
        cls.dns = SpfDns(cls.dns_port)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()

    def setUp(self):
        privileged = H.can_run_privileged()
        inst = self.make_instance(privileged=privileged)
        self.privileged = privileged
        self.hang_port = H.free_port()
        inst.write("spf/policyd-spf.conf", SPF_CONF)
        inst.write("spf/wrapper.py", SPF_WRAPPER % (self.dns_port, self.dns_port,
                                                      inst.path("spf/policyd-spf.conf")))
        self.hang_out = inst.path("out", "hang-uid")
        inst.write("spf/hang", HANG % self.hang_out, mode=0o755)
        user = "nobody" if privileged else pwd.getpwuid(
            inst.run_uid if inst.run_uid is not None else os.getuid()).pw_name
        self.user = user
        inst.params.update({
            "mynetworks": "192.0.2.0/24",
            "smtpd_recipient_restrictions":
                "reject_unauth_destination, check_policy_service unix:private/policyd-spf",
            # the spawn service "hang-policy" reads hang-policy_time_limit
            "hang-policy_time_limit": "2s",
        })
        inst.services += [
            "policyd-spf unix - n n - 0 spawn user=%s argv=/usr/bin/python3 %s"
            % (user, inst.path("spf/wrapper.py")),
            "hang-policy unix - n n - 0 spawn user=%s argv=%s" % (user, inst.path("spf/hang")),
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_recipient_restrictions="
            "reject_unauth_destination,check_policy_service,unix:private/hang-policy"
            % self.hang_port,
        ]
        inst.start()

    def test_policyd_spf(self):
        inst = self.inst
        code, text = rcpt_code(inst, "127.0.0.1", "x@fail.spf.example",
                               "alice@example.test")
        self.assertEqual(code, 550, text)
        self.assertIn("SPF", text)
        inst.wait_log(r"NOQUEUE: reject: RCPT from localhost\[127\.0\.0\.1\]: 550 5\.7\.23 "
                      r"<alice@example\.test>: Recipient address rejected: ")
        rc, dc, dt = send(inst, "127.0.0.1", "x@pass.spf.example", "alice@example.test",
                          "spf pass")
        self.assertEqual((rc, dc), (250, 250), dt)
        inst.wait_log(r"to=<alice@example\.test>, .*status=sent")
        msgs = H.maildir_messages(inst.vmaildir("alice@example.test"))
        self.assertEqual(len(msgs), 1)
        self.assertRegex(msgs[0], rb"\nReceived-SPF: Pass \(mailfrom\) identity=mailfrom; "
                         rb"client-ip=127\.0\.0\.1")
        self.assertNotRegex(inst.log(), r"service policyd-spf: command .* (exit|killed)")

    def test_hanging_command_is_killed(self):
        inst = self.inst
        code, text = rcpt_code(inst, "127.0.0.1", "x@pass.spf.example",
                               "alice@example.test", port=self.hang_port)
        # killed after 2s, tried again (try_limit 2), killed again: the
        # default action
        self.assertEqual(code, 451, text)
        inst.wait_log(r"service hang-policy: command %s killed after the time limit \(2s\)"
                      % re.escape(inst.path("spf/hang")))
        with open(self.hang_out) as f:
            uid = int(f.read())
        self.assertEqual(uid, pwd.getpwnam(self.user).pw_uid)
        self.assertNotEqual(uid, 0)


if __name__ == "__main__":
    H.main()

#!/usr/bin/env python3
"""
Crashes and restarts (issue 7): a killed daemon is replaced without
taking its port down, a killed master leaves no child making things worse
and `postern start` over its stale pid file delivers the backlog, killed
writers leave no temporary files behind, and a burst of clients is
greeted rather than dropped.

Only pids of this instance are killed.
"""

import os
import re
import shutil
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

SENDER = "sender@client.example"
# Generous bounds for "within a second": before the change a repeated kill
# throttled the port for 1, 2, 4, ... 32 s.
BANNER_BOUND_S = 5.0


def setUpModule():
    H.require_binaries()


def open_data_session(inst, rcpt="alice@example.test"):
    """A client in the middle of DATA (half a message sent)."""
    c = H.RawSMTP(inst.port)
    assert c.reply()[0] == 220
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<%s>" % SENDER)[0] == 250
    assert c.cmd("RCPT TO:<%s>" % rcpt)[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: half a message\r\n\r\n" + b"partial line\r\n" * 200)
    return c


class KillBusySmtpd(H.InstanceTestCase):
    def test_killed_busy_smtpd_is_replaced_at_once(self):
        bad_port = H.free_port()
        inst = self.make_instance(
            services=["127.0.0.1:%d inet n - n - - smtpd -o queue_directory=/nonexistent/queue" % bad_port])
        inst.start()
        waits = []
        for _ in range(6):
            c = open_data_session(inst)
            time.sleep(0.3)
            pid = inst.pid_of("smtpd")
            os.kill(pid, signal.SIGKILL)
            c.close()
            t0 = time.time()
            got = H.banner_within(inst.port, BANNER_BOUND_S + 25)
            waits.append(round(time.time() - t0, 2) if got else None)
        sys.stderr.write("banner after each kill of a busy smtpd: %s s\n" % waits)
        self.assertTrue(all(w is not None and w < BANNER_BOUND_S for w in waits),
                        "banner waits %s\nlog:\n%s" % (waits, inst.log()[-3000:]))
        inst.wait_log(r"master\[\d+\]: service 127\.0\.0\.1:%d/inet: process pid \d+ died while working" % inst.port)
        # A service whose program fails before doing any work is still
        # throttled (a broken binary or configuration).
        try:
            socket.create_connection(("127.0.0.1", bad_port), timeout=2).close()
        except OSError:
            pass
        inst.wait_log(r"service 127\.0\.0\.1:%d/inet: abnormal exit before taking "
                      r"any work -- throttling" % bad_port)


class ConnectionBurst(H.InstanceTestCase):
    NCLIENTS = 1000

    def test_burst_all_greeted(self):
        inst = self.make_instance()
        inst.start()
        greeted = H.burst_banners(inst.port, self.NCLIENTS, timeout=60)
        sys.stderr.write("burst of %d connections: %d greeted\n"
                         % (self.NCLIENTS, len(greeted)))
        self.assertEqual(len(greeted), self.NCLIENTS)
        slow = sorted(greeted.values())[-1]
        sys.stderr.write("slowest banner: %.2f s\n" % slow)
        # Before: a 128-entry backlog dropped SYNs and clients waited for
        # their retransmission (16 s and more).
        self.assertLess(slow, 10.0)


class KillMaster(H.InstanceTestCase):
    """master killed with a backlog in the queue: its children finish and
    exit without pushing mail into deferred/ (backoff here is 300 s), and
    `postern start` over the stale pid file delivers everything."""
    NMSG = 30

    def test_kill_master_then_start(self):
        inst = self.make_instance(conf={"minimal_backoff_time": "300s",
                                        "maximal_backoff_time": "4000s",
                                        "queue_run_delay": "300s"})
        inst.local_maxproc = "1"
        inst.aliases["slow"] = "|%s" % inst.path("bin", "slow")
        inst.write_script("slow", 'sleep 0.2\ncat >> %s/slow\n' % inst.path("out"))
        inst.start()
        marker = "crash-marker-%d" % os.getpid()
        s = H.smtp_client(inst)
        try:
            for i in range(self.NMSG):
                msg = H.make_message(SENDER, ["slow@localhost"], "m%d" % i,
                                     "%s %d\r\n" % (marker, i))
                self.assertEqual(s.sendmail(SENDER, ["slow@localhost"], msg), {})
            s.quit()
        finally:
            s.close()

        def delivered():
            try:
                with open(inst.path("out", "slow")) as f:
                    return f.read().count(marker)
            except OSError:
                return 0

        deadline = time.time() + 60
        while delivered() < 2 and time.time() < deadline:
            time.sleep(0.05)
        old = set(p for comm in ("qmgr", "local", "smtpd", "pickup")
                  for p in inst.pids().get(comm, []))
        os.kill(inst.master_pid(), signal.SIGKILL)
        inst.proc.wait(10)
        # Every child notices and leaves after finishing what it holds.
        deadline = time.time() + 30
        while time.time() < deadline and any(H.pid_alive(p) for p in old):
            time.sleep(0.2)
        self.assertFalse([p for p in old if H.pid_alive(p)],
                         "children outlived master\n" + inst.log()[-3000:])
        at_kill = delivered()
        self.assertLess(at_kill, self.NMSG, "backlog drained before the kill")
        self.assertEqual(inst.queue_files(dirs=("deferred",)), [],
                         "mail deferred with backoff because master died\n"
                         + inst.log()[-3000:])

        # The pid file is stale now; start must notice and come up.
        self.assertTrue(os.path.exists(inst.path("data", "master.pid")))
        inst.start_daemon()
        deadline = time.time() + 60
        while delivered() < self.NMSG and time.time() < deadline:
            time.sleep(0.2)
        got = delivered()
        sys.stderr.write("delivered %d before the kill, %d after restart\n"
                         % (at_kill, got))
        # Exactly once is not promised for a pipe command killed mid-run,
        # but none may be missing, and the queue must be empty.
        self.assertGreaterEqual(got, self.NMSG, inst.log()[-3000:])
        inst.wait_queue_empty(30)


class QmgrTrigger(H.InstanceTestCase):
    """smtpd wakes qmgr over one connection it keeps (trigger_keep):
    after a few messages qmgr holds it, and when qmgr is killed and
    replaced, the next message opens one to the new qmgr."""

    def send(self, inst, n, tag):
        for i in range(n):
            s = H.smtp_client(inst)
            try:
                msg = H.make_message(SENDER, ["alice@example.test"],
                                     "%s %d" % (tag, i), "hi\r\n")
                self.assertEqual(s.sendmail(SENDER, ["alice@example.test"], msg), {})
                s.quit()
            finally:
                s.close()

    def test_kept_trigger_connection_survives_qmgr_restart(self):
        if shutil.which("ss") is None:
            self.skipTest("ss (iproute2) is not installed")
        inst = self.make_instance()
        inst.start()
        box = inst.vmaildir("alice@example.test")
        self.send(inst, 3, "before")
        H.wait_maildir(box, count=3, inst=inst)
        smtpds = set(inst.pids().get("smtpd", []))
        qmgr = inst.pid_of("qmgr")
        peers = H.qmgr_trigger_peers(qmgr)
        self.assertTrue(peers & smtpds, "qmgr keeps no connection from smtpd "
                        "(peers %s, smtpd %s)" % (peers, smtpds))
        os.kill(qmgr, signal.SIGKILL)
        deadline = time.time() + 30
        while time.time() < deadline:
            new = inst.pids().get("qmgr", [])
            if new and new[0] != qmgr:
                break
            time.sleep(0.1)
        self.assertTrue(new and new[0] != qmgr, "qmgr was not restarted")
        self.send(inst, 2, "after")
        H.wait_maildir(box, count=5, inst=inst)
        smtpds = set(inst.pids().get("smtpd", []))
        peers = H.qmgr_trigger_peers(new[0])
        self.assertTrue(peers & smtpds, "no kept connection to the new qmgr "
                        "(peers %s, smtpd %s)" % (peers, smtpds))
        inst.wait_queue_empty(30)

    def test_named_wakeup_takes_without_a_listing(self):
        """smtpd names each committed message in its wake-up ("N<id>"), so
        qmgr moves it to active/ without opening incoming/: with qmgr
        traced, a dozen messages sent one by one cost at most the timer's
        scans (one per 5 s), not one listing each."""
        inst = self.make_instance()
        inst.start()
        box = inst.vmaildir("alice@example.test")
        self.send(inst, 1, "warm")
        H.wait_maildir(box, count=1, inst=inst)
        trace = inst.path("qmgr.strace")
        st = H.strace_attach(self, inst.pid_of("qmgr"), trace, "openat,rename")
        try:
            t0 = time.time()
            self.send(inst, 12, "named")
            H.wait_maildir(box, count=13, inst=inst)
            inst.wait_queue_empty(30)
            elapsed = time.time() - t0
        finally:
            H.strace_stop(st)
        with open(trace, encoding="utf-8", errors="replace") as f:
            text = f.read()
        listings = len(re.findall(r'openat\([^)]*/queue/incoming", [^)]*O_DIRECTORY', text))
        moves = len(re.findall(r'rename\("[^"]*/queue/incoming/[^"]+", "[^"]*/queue/active/', text))
        self.assertEqual(moves, 12, text[-3000:])
        self.assertLessEqual(listings, 1 + int(elapsed / 5),
                             "qmgr listed incoming/ %d times for 12 messages in %.1f s"
                             % (listings, elapsed))


class Orphans(H.InstanceTestCase):
    def test_smtpd_killed_in_data_leaves_no_tmp(self):
        inst = self.make_instance()
        inst.start()
        c = open_data_session(inst)
        time.sleep(0.3)
        tmp = [f for f in inst.queue_files(dirs=("incoming",), include_tmp=True)
               if "/.tmp" in f]
        self.assertTrue(tmp, "no temporary file while in DATA")
        os.kill(inst.pid_of("smtpd"), signal.SIGKILL)
        c.close()
        # qmgr's scan (every queue_run_delay) removes it once it is a few
        # seconds old and its writer's lock is gone.
        inst.wait_log(r"removed stale temporary file incoming/\.tmp\S*: its writer is gone",
                      timeout=30)
        self.assertEqual([f for f in inst.queue_files(include_tmp=True)], [])

    def test_live_writer_keeps_its_tmp(self):
        inst = self.make_instance()
        inst.start()
        c = open_data_session(inst, rcpt="bob@example.test")
        try:
            time.sleep(8)   # past the minimum age, several scans
            tmp = [f for f in inst.queue_files(dirs=("incoming",), include_tmp=True)
                   if "/.tmp" in f]
            self.assertTrue(tmp, "a live writer's file was removed\n" + inst.log()[-2000:])
            c.send(b"end\r\n.\r\n")
            self.assertEqual(c.reply()[0], 250)
        finally:
            c.close()
        H.wait_maildir(inst.vmaildir("bob@example.test"), inst=inst)

    def test_local_killed_mid_write_leaves_no_maildir_tmp(self):
        # Already the case before issue 7's work (maildir_deliver_named()
        # replaces its own leftover); kept as a regression guard.
        inst = self.make_instance()
        inst.local_maxproc = "1"
        inst.start()
        box = inst.vmaildir("alice@example.test")
        s = H.smtp_client(inst)
        try:
            small = H.make_message(SENDER, ["alice@example.test"], "small", "hi\r\n")
            self.assertEqual(s.sendmail(SENDER, ["alice@example.test"], small), {})
            H.wait_maildir(box, inst=inst)
            local = inst.pid_of("local")     # idle, serves the next one too
            big = H.make_message(SENDER, ["alice@example.test"], "big",
                                 ("x" * 998 + "\r\n") * 8000)
            self.assertEqual(s.sendmail(SENDER, ["alice@example.test"], big), {})
            s.quit()
        finally:
            s.close()
        deadline = time.time() + 30
        caught = False
        while time.time() < deadline:
            try:
                if os.listdir(os.path.join(box, "tmp")):
                    os.kill(local, signal.SIGKILL)
                    caught = True
                    break
            except FileNotFoundError:
                pass
            if len(H.maildir_messages(box)) >= 2:
                break
        if not caught:
            self.skipTest("delivery finished before a kill could land")
        msgs = H.wait_maildir(box, count=2, inst=inst, timeout=60)
        inst.wait_queue_empty(30)
        time.sleep(1)
        msgs = H.maildir_messages(box)
        self.assertEqual(sorted(m.count(b"Subject: big") for m in msgs), [0, 1])
        self.assertEqual(os.listdir(os.path.join(box, "tmp")), [])


if __name__ == "__main__":
    H.main()

#!/usr/bin/env python3
"""
Durability: kill -9 of one daemon at a bad moment, then check that nothing
accepted is lost, nothing half-received is delivered, no queue file is
corrupt, and the queue drains (DESIGN.md invariants 1 and 2).

Only the pid of the one daemon is killed; master restarts it.
"""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

SENDER = "sender@client.example"
NRCPT = 10


def setUpModule():
    H.require_binaries()


def count_copies(data, marker):
    return data.count(marker)


class KillSmtpd(H.InstanceTestCase):
    def setUp(self):
        self.inst = self.make_instance()
        self.inst.start()

    def test_kill_smtpd_during_data(self):
        inst = self.inst
        c = H.RawSMTP(inst.port)
        saw = []
        try:
            self.assertEqual(c.reply()[0], 220)
            c.cmd("EHLO client.example")
            self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER)[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<alice@example.test>")[0], 250)
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(b"Subject: half a message\r\n\r\n" + b"partial line\r\n" * 500)
            time.sleep(0.5)
            pid = inst.pid_of("smtpd")
            os.kill(pid, signal.SIGKILL)
            # the client must never see a 250 for this message
            try:
                c.send(b"more text\r\n.\r\n")
                code, lines = c.reply()
                saw.append((code, lines))
            except (EOFError, OSError):
                pass
        finally:
            c.close()
        self.assertFalse([s for s in saw if s[0] == 250], "client got %s" % saw)
        # master logs the abnormal exit and starts a new smtpd on demand
        inst.wait_log(r"postern/master\[\d+\]: .*smtpd.*(killed|signal|status)", timeout=15)
        inst.wait_smtp(inst.port, 20)
        # a later message still gets through, and only that one
        s = H.smtp_client(inst)
        try:
            msg = H.make_message(SENDER, ["alice@example.test"], "after the kill", "fine\r\n")
            self.assertEqual(s.sendmail(SENDER, ["alice@example.test"], msg), {})
            s.quit()
        finally:
            s.close()
        msgs = H.wait_maildir(inst.vmaildir("alice@example.test"), inst=inst)
        inst.wait_queue_empty(30)
        time.sleep(2)   # give a stray half message a chance to show up
        msgs = H.maildir_messages(inst.vmaildir("alice@example.test"))
        self.assertEqual(len(msgs), 1, [m[:200] for m in msgs])
        self.assertIn(b"Subject: after the kill", msgs[0])
        self.assertEqual(inst.queue_files(), [])
        self.assertEqual(inst.queue_files(dirs=("corrupt",)), [])
        leftovers = inst.queue_files(include_tmp=True)
        if leftovers:
            sys.stderr.write("note: temporary files left by the killed smtpd: %s\n" % leftovers)


class KillDuringDelivery(H.InstanceTestCase):
    """A ten-recipient message whose recipients are aliases to a slow
    command (about one second each), so there is time to kill qmgr and
    then local in the middle. Nobody may miss the message and nobody may
    get it twice: local marks each recipient done as soon as it is
    delivered, a command in flight dies with local (its guard kills the
    process group), and requests a dead qmgr left queued are dropped."""

    def setUp(self):
        inst = self.make_instance()
        # one local process at a time: recipients are delivered one
        # after the other, so a kill lands in the middle of the list
        inst.local_maxproc = "1"
        self.marker = b"durability-marker-%d" % os.getpid()
        for i in range(1, NRCPT + 1):
            inst.aliases["r%d" % i] = "|%s r%d" % (inst.path("bin", "slow"), i)
        inst.write_script("slow", 'sleep 1\ncat >> %s/"$1"\n' % inst.path("out"))
        inst.start()

    def delivered(self):
        res = {}
        for i in range(1, NRCPT + 1):
            p = self.inst.path("out", "r%d" % i)
            try:
                with open(p, "rb") as f:
                    res[i] = count_copies(f.read(), self.marker)
            except OSError:
                res[i] = 0
        return res

    def wait_count(self, n, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            d = self.delivered()
            if sum(1 for v in d.values() if v) >= n:
                return d
            time.sleep(0.05)
        raise AssertionError("only %s after %ss\nlog:\n%s"
                             % (self.delivered(), timeout, self.inst.log()[-4000:]))

    def test_kill_qmgr_then_local(self):
        inst = self.inst
        rcpts = ["r%d@localhost" % i for i in range(1, NRCPT + 1)]
        msg = H.make_message(SENDER, rcpts, "ten recipients",
                             "body " + self.marker.decode() + "\r\n")
        s = H.smtp_client(inst)
        try:
            self.assertEqual(s.sendmail(SENDER, rcpts, msg), {})
            s.quit()
        finally:
            s.close()

        self.wait_count(2, 60)
        qmgr = inst.pid_of("qmgr")
        os.kill(qmgr, signal.SIGKILL)
        killed_at_qmgr = self.delivered()

        self.wait_count(sum(1 for v in killed_at_qmgr.values() if v) + 3, 60)
        # A copy has just appeared: its command has finished and local is
        # recording it. Kill in the middle of the next recipient's command
        # (it sleeps a second), not in that instant between a command's
        # exit and the done mark, where no agent can avoid a retry.
        time.sleep(0.4)
        local = inst.pid_of("local")
        os.kill(local, signal.SIGKILL)

        deadline = time.time() + 90
        while time.time() < deadline:
            d = self.delivered()
            if all(d.values()) and not inst.queue_files():
                break
            time.sleep(0.5)
        time.sleep(3)  # let any duplicate surface
        d = self.delivered()
        self.assertTrue(all(d.values()), "recipients without the message: %s" % d)
        dups = {k: v for k, v in d.items() if v > 1}
        # local marks each recipient done right after its delivery, and a
        # command it started dies with it (PR_SET_PDEATHSIG), so none twice.
        self.assertEqual(dups, {}, "duplicates: %s" % d)
        inst.wait_queue_empty(30)
        self.assertEqual(inst.queue_files(dirs=("corrupt",)), [])
        # The agents log their own status=sent lines, as Postfix's do, so a
        # qmgr killed mid-delivery loses none of them.
        unlogged = [i for i in range(1, NRCPT + 1)
                    if not re.search(r"to=<r%d@localhost>.*status=sent" % i, inst.log())]
        self.assertEqual(unlogged, [], "deliveries without a status=sent line")


if __name__ == "__main__":
    H.main()

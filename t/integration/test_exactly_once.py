#!/usr/bin/env python3
"""
Exactly once under kill -9 of the delivery agent (DESIGN.md invariant 2,
and better: no duplicate even for the recipient in flight).

A ten-recipient message with a big body goes to ten virtual Maildirs. The
virtual service runs one process (maxproc 1) and qmgr hands it all ten
recipients in one request, so they are delivered one after the other and
each copy takes measurable time. We kill -9 that process several times
while it is between recipients (watching the Maildirs), and check at the
end that every mailbox holds exactly one copy, the queue is empty, and
every recipient has exactly one status=sent line, logged by the agent
(postern/virtual).

What makes this hold: local names the Maildir file after (queue ID,
recipient offset), so a retry of a recipient whose copy landed before the
'D' mark finds it instead of writing a twin; and a stale tmp/ leftover of
the killed copy is replaced, not kept.
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
BODY_SIZE = 8 * 1024 * 1024
KILL_AT = (2, 5, 8)          # kill once this many mailboxes have their copy


def setUpModule():
    H.require_binaries()


class OneVirtualInstance(H.Instance):
    """The standard instance with the virtual service limited to one
    process."""

    def master_text(self):
        text = super().master_text()
        out = []
        for line in text.splitlines():
            f = line.split()
            if len(f) >= 8 and f[0] == "virtual" and f[1] == "unix":
                f[6] = "1"
                line = " ".join(f)
            out.append(line)
        return "\n".join(out) + "\n"


def virtual_agent_pids(inst):
    """Processes of this instance running `local ... -n virtual`."""
    res = []
    master = inst.master_pid()
    for pid in H.descendants(master):
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if not argv or os.path.basename(argv[0]) != b"local":
            continue
        for i in range(len(argv) - 1):
            if argv[i] == b"-n" and argv[i + 1] == b"virtual":
                res.append(pid)
    return res


class ExactlyOnce(H.InstanceTestCase):
    def setUp(self):
        inst = OneVirtualInstance(conf={
            "message_size_limit": str(4 * BODY_SIZE),
            "virtual_mailbox_limit": str(8 * BODY_SIZE),
            # no pause between a kill and the retry beyond the backoff
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "1s",
        })
        self.inst = inst
        self.addCleanup(self._cleanup_inst, inst)
        self.rcpts = ["u%d@example.test" % i for i in range(NRCPT)]
        for r in self.rcpts:
            inst.vmailbox[r] = "example.test/%s/" % r.split("@")[0]
        inst.start()

    def copies(self):
        return [len(H.maildir_messages(self.inst.vmaildir(r))) for r in self.rcpts]

    def wait_then_kill(self, n, deadline):
        """Wait until n mailboxes have their copy (and fewer than all),
        then kill -9 the virtual agent. True when a kill happened."""
        while time.time() < deadline:
            c = self.copies()
            done = sum(1 for x in c if x)
            if done >= NRCPT:
                return False
            if done >= n:
                pids = virtual_agent_pids(self.inst)
                if pids:
                    for p in pids:
                        os.kill(p, signal.SIGKILL)
                    return True
            time.sleep(0.005)
        raise AssertionError("only %s after waiting\nlog:\n%s"
                             % (self.copies(), self.inst.log()[-4000:]))

    def test_kill_virtual_agent_repeatedly(self):
        inst = self.inst
        msg = H.make_message(SENDER, self.rcpts, "exactly once",
                             "exactly-once marker\r\n", size=BODY_SIZE)
        s = H.smtp_client(inst, timeout=120)
        try:
            self.assertEqual(s.sendmail(SENDER, self.rcpts, msg), {})
            s.quit()
        finally:
            s.close()

        kills = 0
        deadline = time.time() + 180
        for n in KILL_AT:
            if self.wait_then_kill(n, deadline):
                kills += 1
        self.assertGreaterEqual(kills, 1, "delivery finished before any kill; "
                                "copies %s" % self.copies())

        while time.time() < deadline:
            if all(self.copies()) and not inst.queue_files():
                break
            time.sleep(0.2)
        inst.wait_queue_empty(30)
        time.sleep(2)   # let a late duplicate surface
        c = self.copies()
        self.assertEqual(c, [1] * NRCPT, "copies per mailbox after %d kill(s): %s\nlog:\n%s"
                         % (kills, c, inst.log()[-6000:]))
        for r in self.rcpts:
            m = H.maildir_messages(inst.vmaildir(r))[0]
            self.assertIn(b"exactly-once marker", m)
            self.assertGreater(len(m), BODY_SIZE * 9 // 10)
            tmp = os.listdir(os.path.join(inst.vmaildir(r), "tmp"))
            self.assertEqual(tmp, [], "%s: left in tmp/: %s" % (r, tmp))
        self.assertEqual(inst.queue_files(dirs=("corrupt",)), [])

        # One status=sent line per recipient, from the agent itself.
        log = inst.log()
        for r in self.rcpts:
            lines = re.findall(r"^.*to=<%s>.*status=sent.*$" % re.escape(r), log, re.M)
            self.assertEqual(len(lines), 1, "%s: status=sent lines: %s" % (r, lines))
            self.assertRegex(lines[0], r"postern/virtual\[\d+\]: ")
        sys.stderr.write("note: %d kill(s); %d copies found already present on retry\n"
                         % (kills, log.count("already present")))


def send(inst, rcpts, subject, body="hello\r\n"):
    msg = H.make_message(SENDER, rcpts, subject, body)
    s = H.smtp_client(inst)
    try:
        r = s.sendmail(SENDER, rcpts, msg)
        s.quit()
    finally:
        s.close()
    return r


class QmgrHousekeeping(H.InstanceTestCase):
    """qmgr's memory limit, stale temporaries and vanished messages."""

    def test_recipient_limit_one_message_at_a_time(self):
        # qmgr_message_recipient_limit=1: with a message in memory, the
        # next waits, even though the active limit would allow more.
        inst = self.make_instance(conf={"qmgr_message_recipient_limit": "1"})
        inst.aliases["slow"] = "|%s" % inst.path("bin", "slow")
        inst.write_script("slow", "sleep 2\ncat >> %s/slow\n" % inst.path("out"))
        inst.start()
        for i in range(3):
            self.assertEqual(send(inst, ["slow@localhost"], "limit %d" % i), {})
        inst.wait_log(r": removed", count=3, timeout=60)
        inuse = peak = 0
        for line in inst.log().splitlines():
            if "postern/qmgr[" not in line:
                continue
            if "(queue active)" in line:
                inuse += 1
                peak = max(peak, inuse)
            elif line.endswith(": removed"):
                inuse -= 1
        self.assertEqual(peak, 1, inst.log()[-4000:])

    def test_stale_temporary_removed_periodically(self):
        inst = self.make_instance()
        inst.start()
        inst.pid_of("qmgr")
        old = inst.path("queue", "incoming", ".tmp.99999.0.0000000000000000")
        young = inst.path("queue", "incoming", ".tmp.99999.1.0000000000000000")
        for p in (old, young):
            with open(p, "wb") as f:
                f.write(b"V")
        t = time.time() - 2 * 3600
        os.utime(old, (t, t))
        # queue_run_delay is 1s in the harness: no restart needed
        inst.wait_log(r"warning: removed stale temporary file incoming/"
                      r"\.tmp\.99999\.0\.", timeout=20)
        self.assertFalse(os.path.exists(old))
        self.assertTrue(os.path.exists(young))

    def test_no_logs_for_a_vanished_message(self):
        # The queue file disappears (an administrator's rm) while an agent
        # is delivering it; the deferral that follows must not create
        # defer/ID for a message that no longer exists.
        inst = self.make_instance()
        inst.aliases["tempfail"] = "|%s" % inst.path("bin", "tempfail")
        inst.aliases["hardfail"] = "|%s" % inst.path("bin", "hardfail")
        # Both commands say they started: both agents have the queue file
        # open before the test removes it (a slow agent would otherwise
        # find no file to open and defer instead of bounce). They end only
        # after the removal (the test's "go"), however far apart they
        # started.
        wait_go = ("i=0; while [ ! -e %s/go ] && [ $i -lt 300 ]; do sleep 0.1; "
                   "i=$((i+1)); done\n" % inst.path("out"))
        inst.write_script("tempfail", "touch %s/started\n%sexit 75\n"
                          % (inst.path("out"), wait_go))
        inst.write_script("hardfail", "touch %s/started-hard\n%s"
                          "echo no such thing >&2\nexit 67\n" % (inst.path("out"), wait_go))
        inst.start()
        self.assertEqual(send(inst, ["tempfail@localhost", "hardfail@localhost"],
                              "vanish"), {})
        for marker in ("started", "started-hard"):
            H.wait_file(inst.path("out", marker), predicate=lambda b: True,
                        timeout=30, inst=inst)
        active = [q for q in inst.queue_files() if q.startswith("active/")]
        self.assertEqual(len(active), 1, inst.queue_files())
        qid = active[0].split("/")[1]
        os.unlink(inst.path("queue", active[0]))
        with open(inst.path("out", "go"), "w"):
            pass
        inst.wait_log(r"%s: to=<tempfail@localhost>.*status=deferred" % qid, timeout=30)
        inst.wait_log(r"%s: to=<hardfail@localhost>.*status=bounced" % qid, timeout=30)
        time.sleep(2)
        for d in ("defer", "bounce"):
            self.assertFalse(os.path.exists(inst.path("queue", d, qid)),
                             "%s/%s re-created for a deleted message" % (d, qid))
        self.assertEqual(inst.queue_files(), [])


if __name__ == "__main__":
    H.main()

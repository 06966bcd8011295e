#!/usr/bin/env python3
"""
A backlog larger than qmgr's active queue (issue 11): qmgr holds at most
qmgr_message_active_limit messages in memory and active/, and still
delivers everything.

  - qmgr is left out of master.conf while 50 messages are accepted, so
    they all wait in incoming/ (nothing is delivered meanwhile, and
    `postern queue list` lists all 50)
  - qmgr comes back (master.conf, reload) with qmgr_message_active_limit
    = 10: every message lands in the Maildir, the queue ends empty, and
    from qmgr's own log lines ("(queue active)" when it takes a message,
    "removed" when it is done) the number it held never went above 10 -
    and did reach 10, so the backlog really was larger than the limit

And a backlog drains over kept connections to local (dlv_serve()): while
qmgr has more mail for local, one connection carries request after
request (the test users are virtual mailboxes: the virtual service,
local's program). master runs under `strace -f -e trace=execve,accept,accept4`
while the backlog of 100 messages (to alice and bob in turn, so to two
destinations of local's) drains: the local processes accepted far fewer
connections than there were deliveries - one per message without reuse -
and every message is in its Maildir exactly once. With -o
max_use=3 a process still takes at most 3 requests, over however many
connections.
"""

import re
import unittest

import postern_harness as H

LIMIT = 10
MESSAGES = 50
RCPT = "alice@example.test"


def setUpModule():
    H.require_binaries()


class QueueBacklogTest(H.InstanceTestCase):

    def test_backlog_beyond_active_limit(self):
        inst = self.make_instance(conf={"qmgr_message_active_limit": str(LIMIT)})
        inst.prepare()
        full = inst.master_text()
        inst.write("master.conf", "".join(l + "\n" for l in full.splitlines()
                                          if not l.startswith("qmgr ")))
        inst.start(prepare=False)

        s = H.smtp_client(inst)
        for i in range(MESSAGES):
            s.sendmail("sender@client.example", [RCPT], H.make_message(
                "sender@client.example", [RCPT], "backlog %d" % i, "body %d\n" % i))
        s.quit()
        queued = inst.queue_files(("incoming",))
        self.assertEqual(len(queued), MESSAGES, queued)
        self.assertEqual(H.maildir_messages(inst.vmaildir(RCPT)), [])
        listing = inst.postern("queue", "list", check=True).stdout
        self.assertIn("in %d Requests" % MESSAGES, listing)

        mark = inst.log_mark()
        inst.write("master.conf", full)
        inst.reload()
        H.wait_maildir(inst.vmaildir(RCPT), MESSAGES, timeout=120, inst=inst)
        self.assertQueueEmpty(timeout=60)
        msgs = H.maildir_messages(inst.vmaildir(RCPT))
        self.assertEqual(sorted(set(re.search(rb"Subject: backlog (\d+)", m).group(1)
                                    for m in msgs)),
                         sorted(str(i).encode() for i in range(MESSAGES)))

        held = peak = taken = 0
        for line in inst.log_since(mark).splitlines():
            if "/qmgr[" not in line:
                continue
            if "(queue active)" in line:
                held += 1
                taken += 1
                peak = max(peak, held)
                self.assertLessEqual(held, LIMIT, "over the limit at: " + line)
            elif line.endswith(": removed"):
                held -= 1
        self.assertEqual(taken, MESSAGES)
        self.assertEqual(peak, LIMIT)


    def drain_traced(self, inst, n, master_edit=lambda t: t):
        """Queue n messages to alice and bob in turn with qmgr away, bring
        qmgr back with master traced: {local pid: accepted connections}."""
        inst.prepare()
        full = master_edit(inst.master_text())
        inst.write("master.conf", "".join(l + "\n" for l in full.splitlines()
                                          if not l.startswith("qmgr ")))
        inst.start(prepare=False)
        rcpts = ["alice@example.test", "bob@example.test"]
        s = H.smtp_client(inst)
        for i in range(n):
            to = rcpts[i % 2]
            s.sendmail("sender@client.example", [to], H.make_message(
                "sender@client.example", [to], "kept %d" % i, "body %d\n" % i))
        s.quit()
        self.assertEqual(len(inst.queue_files(("incoming",))), n)

        trace = inst.path("master.strace")
        st = H.strace_attach(self, inst.master_pid(), trace,
                             "execve,accept,accept4", follow=True)
        inst.write("master.conf", full)
        inst.reload()
        for to in rcpts:
            H.wait_maildir(inst.vmaildir(to), n // 2, timeout=120, inst=inst)
        self.assertQueueEmpty(timeout=60)
        H.strace_stop(st)
        for to in rcpts:
            msgs = H.maildir_messages(inst.vmaildir(to))
            self.assertEqual(len(msgs), n // 2)
        local, accepts = set(), {}
        with open(trace, encoding="utf-8", errors="replace") as f:
            for line in f:
                pid, _, call = line.partition(" ")
                call = call.strip()
                if re.match(r'execve\("[^"]*/local"', call):
                    local.add(pid)
                elif re.match(r"(accept4?\(|<\.\.\. accept4? resumed>).*\)\s+= \d+", call):
                    accepts[pid] = accepts.get(pid, 0) + 1
        self.assertTrue(local, "no local process started under the trace")
        return {p: accepts.get(p, 0) for p in local}

    def test_backlog_drains_over_kept_local_connections(self):
        n = 100
        inst = self.make_instance()
        accepted = self.drain_traced(inst, n)
        total = sum(accepted.values())
        # Without reuse: n. With it: about as many as ran at once at the
        # start (qmgr's concurrency for the two destinations).
        self.assertGreater(total, 0)
        self.assertLessEqual(total, n // 2, accepted)

    def test_max_use_counts_requests(self):
        n = 12
        inst = self.make_instance()
        log = inst.log_mark()
        accepted = self.drain_traced(inst, n, lambda t: re.sub(
            r"^((?:local|virtual)\s.*)$", r"\1 -o max_use=3", t, flags=re.M))
        # Each process took at most 3 requests, so at least n/3 of them ran.
        self.assertGreaterEqual(len([p for p in accepted.values() if p]), n // 3, accepted)
        per_pid = {}
        for line in inst.log_since(log).splitlines():
            m = re.search(r"postern/(?:local|virtual)\[(\d+)\].*status=sent", line)
            if m:
                per_pid[m.group(1)] = per_pid.get(m.group(1), 0) + 1
        self.assertEqual(sum(per_pid.values()), n)
        self.assertLessEqual(max(per_pid.values()), 3, per_pid)


if __name__ == "__main__":
    H.main()

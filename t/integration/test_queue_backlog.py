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


if __name__ == "__main__":
    H.main()

#!/usr/bin/env python3
"""
Mailbox quota for local delivery: a virtual user's limit from
virtual_mailbox_limit_maps (Postfix/VDA name), counted in the Maildir++
maildirsize file, all folders together. A message that does not fit is
deferred (4.2.2 mailbox full) and stays queued, so it is delivered once
the user makes room; with virtual_overquota_bounce = yes it bounces at
once (5.2.2) and the sender gets a DSN that says so. A user without an
entry has no quota.
"""

import os
import smtplib
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

ALICE = "alice@example.test"
BOB = "bob@example.test"


def setUpModule():
    H.require_binaries()


def body(tag, size):
    return ("Subject: %s\r\nFrom: bob@example.test\r\n\r\n" % tag
            + ("x" * 70 + "\r\n") * (size // 72)).encode()


class Quota(H.InstanceTestCase):

    def start(self, bounce):
        inst = self.make_instance(conf={
            "virtual_overquota_bounce": "yes" if bounce else "no",
        })
        inst.params["virtual_mailbox_limit_maps"] = "lmdb:" + inst.path("quota")
        inst.write("quota", "%s 6000\n" % ALICE)
        inst.prepare()
        inst.postern("map", "build", "lmdb:" + inst.path("quota"), check=True)
        inst.start(prepare=False)
        return inst

    def send(self, inst, tag, size, rcpt=ALICE):
        with smtplib.SMTP("127.0.0.1", inst.port, timeout=30) as s:
            s.sendmail(BOB, [rcpt], body(tag, size))

    def maildir_subjects(self, addr):
        md = self.inst.vmaildir(addr)
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(md, sub)
            for f in sorted(os.listdir(d)) if os.path.isdir(d) else []:
                data = open(os.path.join(d, f), "rb").read()
                for line in data.split(b"\n"):
                    if line.startswith(b"Subject: "):
                        out.append(line[9:].strip().decode())
                        break
        return out

    def test_defer_then_deliver_after_room(self):
        inst = self.start(bounce=False)
        mark = inst.log_mark()
        self.send(inst, "first", 4000)
        inst.wait_log(r"to=<%s>.*status=sent" % ALICE, since=mark)
        self.assertEqual(self.maildir_subjects(ALICE), ["first"])
        md = inst.vmaildir(ALICE)
        self.assertTrue(open(os.path.join(md, "maildirsize")).read().startswith("6000S\n"))

        mark = inst.log_mark()
        self.send(inst, "second", 4000)
        m = inst.wait_log(r"to=<%s>.*dsn=4\.2\.2, status=deferred \(.*mailbox full"
                          % ALICE, since=mark)
        self.assertTrue(m)
        self.assertEqual(self.maildir_subjects(ALICE), ["first"])
        self.assertTrue(inst.queue_files(), "over-quota mail must stay queued")
        # bob has no entry: no quota
        self.send(inst, "to bob", 8000, rcpt=BOB)
        inst.wait_log(r"to=<%s>.*status=sent" % BOB, since=mark)

        # The user makes room (as an IMAP/POP3 expunge would: the file
        # goes and the count follows); the next queue run delivers.
        for sub in ("new", "cur"):
            for f in os.listdir(os.path.join(md, sub)):
                os.unlink(os.path.join(md, sub, f))
        os.unlink(os.path.join(md, "maildirsize"))
        mark = inst.log_mark()
        inst.postern("queue", "flush", check=True)
        inst.wait_log(r"to=<%s>.*status=sent" % ALICE, since=mark, timeout=30)
        self.assertEqual(self.maildir_subjects(ALICE), ["second"])
        self.assertQueueEmpty()

    def test_bounce_with_dsn(self):
        inst = self.start(bounce=True)
        mark = inst.log_mark()
        self.send(inst, "fits", 4000)
        inst.wait_log(r"to=<%s>.*status=sent" % ALICE, since=mark)
        mark = inst.log_mark()
        self.send(inst, "too much", 4000)
        inst.wait_log(r"to=<%s>.*dsn=5\.2\.2, status=bounced \(.*mailbox full"
                      % ALICE, since=mark)
        inst.wait_log(r"to=<%s>.*status=sent" % BOB, since=mark)
        dsn = b""
        md = inst.vmaildir(BOB)
        deadline = time.time() + 20
        while b"5.2.2" not in dsn and time.time() < deadline:
            for sub in ("new", "cur"):
                for f in os.listdir(os.path.join(md, sub)):
                    dsn += open(os.path.join(md, sub, f), "rb").read()
            time.sleep(0.2)
        self.assertIn(b"Status: 5.2.2", dsn)
        self.assertIn(b"quota of 6000 bytes exceeded", dsn)
        self.assertEqual(self.maildir_subjects(ALICE), ["fits"])
        self.assertQueueEmpty()


if __name__ == "__main__":
    unittest.main()

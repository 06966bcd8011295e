#!/usr/bin/env python3
"""
postern mailbox: mail delivered over SMTP, then what `postern mailbox
status|list|reindex` says about the recipient's Maildir and its index
(message and unseen counts, sizes, UIDVALIDITY, next UID), that the index
file is the owner's and mode 0600, and that run as root the command
works on the mailbox as its owner (the index is not root's).
"""

import os
import re
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

SENDER = "sender@client.example"
RX = re.compile(r"^(\S+) messages=(\d+) unseen=(\d+) size=(\d+) uidvalidity=(\d+) "
                r"uidnext=(\d+) highestmodseq=(\d+)$")


def setUpModule():
    H.require_binaries()


def send(inst, rcpt, subject):
    s = H.smtp_client(inst)
    try:
        s.sendmail(SENDER, [rcpt], H.make_message(SENDER, [rcpt], subject, "body\r\n"))
        s.quit()
    finally:
        s.close()


class Common:
    def status(self, *args):
        r = self.inst.postern("mailbox", "status", *args)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = RX.match(r.stdout.strip())
        self.assertIsNotNone(m, r.stdout)
        return (m.group(1),) + tuple(int(x) for x in m.groups()[1:])

    def check_mailbox(self):
        addr = "alice@example.test"
        mdir = self.inst.vmaildir(addr)
        send(self.inst, addr, "one")
        send(self.inst, addr, "two")
        H.wait_maildir(mdir, count=2, inst=self.inst)
        size = sum(os.path.getsize(os.path.join(mdir, "new", n))
                   for n in os.listdir(os.path.join(mdir, "new")))

        name, msgs, unseen, total, uidv, uidnext, _ = self.status(addr)
        self.assertEqual((name, msgs, unseen, total, uidnext), ("INBOX", 2, 2, size, 3))
        idx = os.stat(os.path.join(mdir, "postern.index"))
        self.assertEqual(stat.S_IMODE(idx.st_mode), 0o600)
        self.assertEqual(idx.st_uid, self.inst.vuid)
        self.assertFalse(idx.st_mode & stat.S_IWOTH)

        # A mail reader marks one seen (Maildir rename): unseen drops, UIDs stay.
        first = sorted(os.listdir(os.path.join(mdir, "new")))[0]
        os.rename(os.path.join(mdir, "new", first), os.path.join(mdir, "cur", first + ":2,S"))
        self.assertEqual(self.status(addr)[1:3], (2, 1))
        self.assertEqual(self.status(addr)[5], 3)

        # A third message gets the next UID.
        send(self.inst, addr, "three")
        H.wait_maildir(mdir, count=3, inst=self.inst)
        _, msgs, unseen, _, uidv2, uidnext, _ = self.status(addr)
        self.assertEqual((msgs, unseen, uidv2, uidnext), (3, 2, uidv, 4))

        # Reindex: a new, greater UIDVALIDITY; UIDs from 1 again.
        r = self.inst.postern("mailbox", "reindex", addr)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        _, msgs, unseen, _, uidv3, uidnext, _ = self.status(addr)
        self.assertEqual((msgs, unseen, uidnext), (3, 2, 4))
        self.assertGreater(uidv3, uidv)

        # Folders: Maildir++ .Sent shows up in list and has its own status.
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(mdir, ".Sent", sub))
        if os.getuid() == 0:
            for dp, _, _ in os.walk(os.path.join(mdir, ".Sent")):
                os.chown(dp, self.inst.vuid, self.inst.vgid)
        r = self.inst.postern("mailbox", "list", addr)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["INBOX", "Sent"])
        self.assertEqual(self.status(addr, "Sent")[:3], ("Sent", 0, 0))
        r = self.inst.postern("mailbox", "status", addr, "../etc")
        self.assertNotEqual(r.returncode, 0)

        r = self.inst.postern("mailbox", "status", "nobody-here@example.test")
        self.assertEqual(r.returncode, 67, r.stdout + r.stderr)
        self.assertIn("unknown user", r.stderr)


class Unprivileged(Common, H.InstanceTestCase):
    def setUp(self):
        self.inst = self.make_instance(privileged=False)
        self.inst.start()

    def test_status_list_reindex(self):
        self.check_mailbox()


class Privileged(Common, H.InstanceTestCase):
    """As root: postern drops to the virtual owner before opening."""

    def setUp(self):
        H.skip_unless_root()
        self.inst = self.make_instance(privileged=True)
        self.inst.start()

    def test_status_as_root(self):
        self.check_mailbox()


if __name__ == "__main__":
    H.main()

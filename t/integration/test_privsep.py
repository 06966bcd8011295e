#!/usr/bin/env python3
"""
Privilege separation (DESIGN.md invariant 5): run as root, master keeps
root, the network-facing smtpd and the queue manager run as mail_owner;
local keeps root only to become the recipient. Needs root; skipped
otherwise.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402


def setUpModule():
    H.require_binaries()


@H.skip_unless_root()
class Privsep(H.InstanceTestCase):
    def setUp(self):
        self.inst = self.make_instance(privileged=True)
        self.inst.start()

    def test_process_users(self):
        inst = self.inst
        # an open session keeps an smtpd around
        c = H.RawSMTP(inst.port)
        try:
            self.assertEqual(c.reply()[0], 220)
            smtpd = inst.pid_of("smtpd")
            qmgr = inst.pid_of("qmgr")
            pickup = inst.pid_of("pickup")     # resident, like qmgr
            master = inst.master_pid()
            self.assertEqual(H.proc_user(master), "root")
            self.assertEqual(H.proc_user(smtpd), H.MAIL_OWNER)
            self.assertEqual(H.proc_user(qmgr), H.MAIL_OWNER)
            self.assertEqual(H.proc_user(pickup), H.MAIL_OWNER)
            # all ids dropped, not only the effective ones
            for pid in (smtpd, qmgr, pickup):
                with open("/proc/%d/status" % pid) as f:
                    st = dict(l.split(":", 1) for l in f if ":" in l)
                uids = set(st["Uid"].split())
                gids = set(st["Gid"].split())
                self.assertEqual(uids, {str(inst.owner_uid)}, (pid, st["Uid"]))
                self.assertEqual(gids, {str(inst.owner_gid)}, (pid, st["Gid"]))
                groups = st.get("Groups", "").split()
                self.assertTrue(set(groups) <= {str(inst.owner_gid)}, groups)
            c.cmd("QUIT")
        finally:
            c.close()

    def test_queue_owned_by_mail_owner(self):
        q = self.inst.path("queue")
        for d in ("incoming", "active", "deferred", "hold", "corrupt", "private"):
            st = os.stat(os.path.join(q, d))
            self.assertEqual(st.st_uid, self.inst.owner_uid, d)
            self.assertEqual(st.st_mode & 0o002, 0, "%s is world-writable" % d)

    def test_delivery_works_privileged(self):
        inst = self.inst
        s = H.smtp_client(inst)
        try:
            msg = H.make_message("s@client.example", ["alice@example.test"], "privsep", "hi\r\n")
            self.assertEqual(s.sendmail("s@client.example", ["alice@example.test"], msg), {})
            s.quit()
        finally:
            s.close()
        msgs = H.wait_maildir(inst.vmaildir("alice@example.test"), inst=inst)
        self.assertEqual(len(msgs), 1)
        for sub in ("new", "cur"):
            d = os.path.join(inst.vmaildir("alice@example.test"), sub)
            for n in os.listdir(d):
                self.assertEqual(os.stat(os.path.join(d, n)).st_uid, inst.vuid)
        inst.wait_queue_empty(30)


if __name__ == "__main__":
    H.main()

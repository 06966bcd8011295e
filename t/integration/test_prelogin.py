#!/usr/bin/env python3
"""
The pre-login process runs unprivileged with no access to any mailbox,
chrooted to an empty directory (issue 8, "Logins"), and auth's PAM helper
comes back when it dies.

As root, pop3 (STLS) and pop3s listeners with the chroot column "y":
pop3-login must run as login_user (postern-login) in every uid and gid
field of /proc/PID/status, with /proc/PID/root the login directory
(queue_directory/login), which holds nothing but auth's and the broker's
sockets and is root:postern-login 0750 ("postern check" says so, and
says when it is not); and a login still works over STLS and pop3s.

Then auth's PAM helper (auth's child that kept root) is killed: the log
says auth restarts it, and a system user logs in with its system
password again.
"""

import grp
import os
import poplib
import pwd
import re
import signal
import smtplib
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

ALICE = "alice@example.test"
PW = "alice prelogin secret"
BOB = "bob@example.test"      # hashes to the other of two worker slots
BOB_PW = "bob prelogin secret"


def setUpModule():
    H.require_binaries()
    for prog in ("pop3-login", "pop3d"):
        if not os.path.exists(os.path.join(H.BUILDDIR, prog)):
            raise unittest.SkipTest("%s not built" % prog)


def tls_ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def status_ids(pid):
    """(Uid fields, Gid fields, Groups) from /proc/PID/status."""
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups"):
                ids[k] = [int(x) for x in v.split()]
    return ids["Uid"], ids["Gid"], ids.get("Groups", [])


@H.skip_unless_root()
class PreLogin(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.p110 = H.free_port()
        cls.p995 = H.free_port()
        services = [
            "127.0.0.1:%d inet n - y - - pop3-login" % cls.p110,
            "127.0.0.1:%d inet n - y - - pop3-login -o pop3d_tls_wrappermode=yes"
            % cls.p995,
            "pop3d unix - n n - 1 pop3d",
        ]
        inst = H.Instance(conf={"home_mailbox": "Maildir/",
                                "pop3d_owner_process_limit": "2"},
                          services=services, privileged=True)
        cls.inst = inst
        inst.make_cert("mx.example.test", level="may")
        inst.prepare()
        inst.add_user(ALICE, PW)
        inst.add_user(BOB, BOB_PW)
        inst.start(prepare=False)
        for p in (cls.p110, cls.p995):
            deadline = time.time() + 30
            while not H.port_accepts(p):
                if time.time() > deadline:
                    raise AssertionError("POP3 port %d not ready\n%s"
                                         % (p, inst.log()[-3000:]))
                time.sleep(0.2)

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()
        cls.inst.remove_system_users()
        cls.inst.cleanup(keep=os.environ.get("POSTERN_KEEP") == "1")

    def deliver(self, rcpt, subject):
        with smtplib.SMTP("127.0.0.1", self.inst.port, timeout=30) as s:
            s.sendmail("sender@example.test", [rcpt],
                       "Subject: %s\r\n\r\nbody of %s\r\n" % (subject, subject))

    def wait_files(self, md, n):
        deadline = time.time() + 30
        while True:
            files = []
            for sub in ("new", "cur"):
                d = os.path.join(md, sub)
                if os.path.isdir(d):
                    files += os.listdir(d)
            if len(files) >= n:
                return files
            self.assertLess(time.time(), deadline, self.inst.log()[-2000:])
            time.sleep(0.2)

    def login_dir(self):
        return self.inst.path("queue", "login")

    def test_login_process_unprivileged_and_chrooted(self):
        self.deliver(ALICE, "over stls")
        self.deliver(ALICE, "over pop3s")
        self.wait_files(self.inst.vmaildir(ALICE), 2)
        # STLS on 110, then pop3s on 995: both logins work through the
        # sockets in the login directory.
        c = poplib.POP3("127.0.0.1", self.p110, timeout=30)
        c.stls(context=tls_ctx())
        c.user(ALICE)
        c.pass_(PW)
        self.assertEqual(c.stat()[0], 2)
        _, lines, _ = c.retr(1)
        self.assertIn(b"body of over stls", b"\n".join(lines))
        s = poplib.POP3_SSL("127.0.0.1", self.p995, timeout=30, context=tls_ctx())
        s.user(ALICE)
        s.pass_(PW)
        self.assertEqual(s.stat()[0], 2)
        _, lines, _ = s.retr(2)
        self.assertIn(b"body of over pop3s", b"\n".join(lines))

        uid, gid = H.user_ids(H.LOGIN_USER)
        pids = self.inst.pids().get("pop3-login", [])
        self.assertEqual(len(pids), 2, self.inst.pids())   # one per listener
        for pid in pids:
            uids, gids, groups = status_ids(pid)
            self.assertEqual(uids, [uid] * 4, "pop3-login pid %d" % pid)
            self.assertEqual(gids, [gid] * 4, "pop3-login pid %d" % pid)
            self.assertEqual(set(groups) - {gid}, set(), "supplementary groups")
            self.assertEqual(os.readlink("/proc/%d/root" % pid), self.login_dir())
        c.quit()
        s.quit()

        # The jail: root:postern-login 0750, nothing but the two sockets.
        st = os.lstat(self.login_dir())
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                         (0, gid, 0o750))
        entries = sorted(os.listdir(self.login_dir()))
        self.assertEqual(entries, ["auth", "pop3d"])
        for e in entries:
            self.assertTrue(stat.S_ISSOCK(os.lstat(os.path.join(self.login_dir(),
                                                               e)).st_mode))
        # Not a mailbox, not the queue: the login user cannot read them.
        r = subprocess.run(["runuser", "-u", H.LOGIN_USER, "--", "ls",
                            self.inst.path("queue", "private")],
                           capture_output=True)
        self.assertNotEqual(r.returncode, 0)

    def test_owner_sessions_spread_over_workers(self):
        """Users of one owner (virtual users share one uid) spread over up
        to pop3d_owner_process_limit workers, all running as that owner;
        all sessions of one user meet in one worker."""
        for u in (ALICE, BOB):
            self.deliver(u, "spread")
            self.wait_files(self.inst.vmaildir(u), 1)
        owner = pwd.getpwuid(self.inst.vuid).pw_name

        def workers():
            table = H.proc_table()
            return [p for p in H.descendants(self.inst.master_pid(), table)
                    if table[p][1] == "pop3d" and " -W " in table[p][2] and
                    H.proc_user(p) == owner]
        sessions = []
        for u, pw in ((ALICE, PW), (ALICE, PW), (BOB, BOB_PW)):
            c = poplib.POP3("127.0.0.1", self.p110, timeout=30)
            c.user(u)
            c.pass_(pw)
            self.assertGreaterEqual(c.stat()[0], 1)
            sessions.append(c)
            if len(sessions) == 2:
                # alice's second session went to her first one's worker
                self.assertEqual(len(workers()), 1, workers())
        self.assertEqual(len(workers()), 2, workers())
        for c in sessions:
            c.quit()

    def test_check_verifies_login_directory(self):
        r = self.inst.postern("check")
        self.assertEqual(r.returncode, 0, r.stderr)
        d = self.login_dir()
        os.chmod(d, 0o755)
        try:
            r = self.inst.postern("check")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("%s has mode 0755, expected 0750" % d, r.stderr)
        finally:
            os.chmod(d, 0o750)
        junk = os.path.join(d, "junk")
        open(junk, "w").close()
        try:
            r = self.inst.postern("check")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("%s is not a socket" % junk, r.stderr)
        finally:
            os.unlink(junk)

    def test_penalty_exact_with_parallel_hashing(self):
        """auth verifies in several threads, but an address with failures
        gets one guess at a time, each delayed by what every earlier
        failure has cost: after one failure, three simultaneous wrong
        guesses wait 1 s, then 2 s, then 4 s (7 s in all), not 1 s each
        side by side. A lower bound only: a slow machine passes too."""
        src = "127.0.0.5"    # its own penalty bucket

        def guess(out, k):
            t0 = time.monotonic()
            sock = socket.create_connection(("127.0.0.1", self.p110), 60,
                                            source_address=(src, 0))
            f = sock.makefile("rb")
            f.readline()
            sock.sendall(b"USER %s\r\n" % ALICE.encode())
            f.readline()
            sock.sendall(b"PASS wrong-%d\r\n" % k)
            out[k] = (f.readline(), time.monotonic() - t0)
            sock.close()

        first = {}
        guess(first, 0)
        self.assertTrue(first[0][0].startswith(b"-ERR"), first)
        since = self.inst.log_mark()
        res = {}
        ts = [threading.Thread(target=guess, args=(res, k)) for k in (1, 2, 3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertEqual(sorted(res), [1, 2, 3])
        self.assertTrue(all(r[0].startswith(b"-ERR") for r in res.values()), res)
        self.assertGreaterEqual(max(r[1] for r in res.values()), 6.5, res)
        ms = self.inst.wait_log(r"rip=%s: authentication failed: password "
                                r"mismatch \(failures (\d+)\)" % re.escape(src),
                                since=since, count=3)
        self.assertEqual([int(m.group(1)) for m in ms], [2, 3, 4])

    def test_pam_helper_restarted(self):
        name = "ptprelogin"
        home = self.inst.add_system_user(name)
        pw = "Sys-pw-prelogin-1"
        subprocess.run(["chpasswd"], input="%s:%s\n" % (name, pw), text=True,
                       check=True)
        self.deliver("%s@localhost" % name, "first")
        self.wait_files(os.path.join(home, "Maildir"), 1)

        def login():
            c = poplib.POP3("127.0.0.1", self.p110, timeout=30)
            c.user(name)
            c.pass_(pw)
            n = c.stat()[0]
            c.quit()
            return n

        self.assertEqual(login(), 1)
        table = H.proc_table()
        helpers = [p for p in H.descendants(self.inst.master_pid(), table)
                   if table[p][1] == "auth" and H.proc_user(p) == "root"]
        self.assertEqual(len(helpers), 1, table)
        since = self.inst.log_mark()
        os.kill(helpers[0], signal.SIGKILL)
        self.inst.wait_log(r"PAM helper \(pid %d\) killed by signal 9: "
                           r"restarting auth" % helpers[0], since=since)
        # The next login gets a fresh auth with a fresh helper.
        deadline = time.time() + 30
        while True:
            try:
                self.assertEqual(login(), 1)
                break
            except poplib.error_proto:
                # Only a temporary failure while auth restarts.
                self.assertLess(time.time(), deadline, self.inst.log()[-3000:])
                time.sleep(0.5)
        table = H.proc_table()
        helpers2 = [p for p in H.descendants(self.inst.master_pid(), table)
                    if table[p][1] == "auth" and H.proc_user(p) == "root"]
        self.assertEqual(len(helpers2), 1)
        self.assertNotEqual(helpers2, helpers)
        self.assertFalse(re.search(r"authentication failed.*user=%s" % name,
                                   self.inst.log_since(since)))


if __name__ == "__main__":
    H.main()

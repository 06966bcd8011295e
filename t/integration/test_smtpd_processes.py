#!/usr/bin/env python3
"""
smtpd_process_count: master runs that many smtpd processes for the SMTP
service once connections wait (one event loop is one CPU), never more
while none is full, and one when it is 1 (the smtpd_client_limit rule
alone). Sessions served by both processes each get their mail queued.

No timing: connections are opened one by one and kept open until the
expected processes exist (bounded count); then each smtpd in turn is
stopped (SIGSTOP, by pid, then SIGCONT) while new sessions come, which
the other must greet; then each session sends a message.
"""

import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

MAX_CONN = 60


def setUpModule():
    H.require_binaries()


class SmtpdProcesses(H.InstanceTestCase):
    def open_until(self, inst, want, limit=MAX_CONN):
        """Open sessions (each greeted) until `want` smtpd processes run
        or `limit` sessions are open; returns the sessions."""
        sessions = []
        for _ in range(limit):
            c = H.RawSMTP(inst.port, timeout=30)
            self.assertEqual(c.reply()[0], 220)
            sessions.append(c)
            if len(inst.pids().get("smtpd", [])) >= want:
                break
        return sessions

    def send_one(self, c, k):
        self.assertEqual(c.cmd("EHLO c%d.example" % k)[0], 250)
        self.assertEqual(c.cmd("MAIL FROM:<p%d@client.example>" % k)[0], 250)
        self.assertEqual(c.cmd("RCPT TO:<alice@example.test>")[0], 250)
        self.assertEqual(c.cmd("DATA")[0], 354)
        code, text = c.cmd("Subject: proc %d\r\n\r\nbody\r\n." % k)
        self.assertEqual(code, 250, text)
        self.assertEqual(c.cmd("QUIT")[0], 221)
        c.close()

    def test_two_processes_share_the_sessions(self):
        inst = self.make_instance(conf={"smtpd_process_count": "2"})
        inst.start()
        sessions = self.open_until(inst, 2)
        try:
            pids = inst.pids().get("smtpd", [])
            self.assertEqual(len(pids), 2, "smtpd processes after %d sessions: %s"
                             % (len(sessions), pids))
            # More sessions never start a third while none is full.
            sessions += self.open_until(inst, 3, limit=20)
            self.assertEqual(len(inst.pids().get("smtpd", [])), 2)
            # While one is stopped (as busy as a process gets), the other
            # greets the new sessions: each takes work on its own.
            for p in pids:
                os.kill(p, signal.SIGSTOP)
                try:
                    for _ in range(2):
                        c = H.RawSMTP(inst.port, timeout=30)
                        sessions.append(c)
                        self.assertEqual(c.reply()[0], 220)
                finally:
                    os.kill(p, signal.SIGCONT)
            for k, c in enumerate(sessions):
                self.send_one(c, k)
        finally:
            for c in sessions:
                c.close()
        H.wait_maildir(inst.vmaildir("alice@example.test"), count=len(sessions),
                       timeout=60, inst=inst)
        conns = re.findall(r"postern/smtpd\[(\d+)\]: connect from", inst.log())
        served = {p: conns.count(p) for p in set(conns)}
        sys.stderr.write("sessions per smtpd: %s\n" % served)
        self.assertGreaterEqual(len(served), 2, "sessions served by %s" % served)

    def test_one_process_when_count_is_one(self):
        inst = self.make_instance(conf={"smtpd_process_count": "1"})
        inst.start()
        sessions = self.open_until(inst, 2, limit=20)
        try:
            self.assertEqual(len(inst.pids().get("smtpd", [])), 1)
        finally:
            for c in sessions:
                c.close()


if __name__ == "__main__":
    import unittest
    unittest.main(verbosity=2)

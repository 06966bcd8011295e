#!/usr/bin/env python3
"""
Durability: kill -9 of one daemon at a bad moment, then check that nothing
accepted is lost, nothing half-received is delivered, no queue file is
corrupt, and the queue drains (DESIGN.md invariants 1 and 2).

Only the pid of the one daemon is killed; master restarts it.
"""

import imaplib
import os
import re
import signal
import sys
import threading
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


class KillImapd(H.InstanceTestCase):
    """kill -9 of the imapd worker while its sessions APPEND, MOVE and
    STORE. A process crash loses nothing the kernel already has, so every
    command that was answered OK must show after the restart: each
    APPENDed message under the UID its APPENDUID gave, byte for byte and
    once; a MOVEd one in its target only; a STOREd flag and keyword set.
    A command cut off by the kill may or may not have happened, but what
    is visible is whole (every message is one that was sent, complete) and
    nothing is there twice. UIDVALIDITY stays, and UIDs go on growing."""

    USER = "alice@example.test"
    PW = "alice kill secret"
    WRITERS = 3

    def setUp(self):
        self.p143 = H.free_port()
        inst = self.make_instance(services=[
            "127.0.0.1:%d inet n - n - - imap-login" % self.p143,
            "imapd unix - n n - 1 imapd"])
        inst.prepare()
        inst.add_user(self.USER, self.PW)
        inst.start(prepare=False)
        deadline = time.time() + 30
        while not H.port_accepts(self.p143):
            self.assertLess(time.time(), deadline, "IMAP port not ready")
            time.sleep(0.2)
        self.sent = {}          # marker -> the bytes APPENDed (CRLF)
        self.acked = {}         # marker -> ("append", uid) / ("move",) / ("store",)
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def login(self):
        c = imaplib.IMAP4("127.0.0.1", self.p143, timeout=30)
        c.login(self.USER, self.PW)
        return c

    def message(self, marker):
        # 40 KB, so a kill often lands inside a write
        body = ("Subject: %s\r\nX-Marker: %s\r\n\r\n" % (marker, marker)
                + ("%s line of forty bytes or so.....\r\n" % marker[:6]) * 1000)
        b = body.encode()
        with self.lock:
            self.sent[marker] = b
        return b

    def ack(self, marker, what):
        with self.lock:
            self.acked[marker] = what

    def writer(self, n):
        """APPEND to INBOX; every third message goes to Work and is MOVEd
        to INBOX, every fifth gets \\Flagged and $Kept."""
        c = None
        try:
            c = self.login()
            i = 0
            while not self.stop.is_set():
                marker = "w%d-%d" % (n, i)
                box = "Work" if i % 3 == 0 else "INBOX"
                typ, data = c.append(box, None, None, self.message(marker))
                if typ != "OK":
                    raise AssertionError("APPEND %s: %s" % (marker, data))
                m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", data[0])
                uid = m.group(2).decode()
                if box == "Work":
                    c.select("Work")
                    typ, data = c.uid("MOVE", uid, "INBOX")
                    if typ != "OK":
                        raise AssertionError("MOVE %s: %s" % (marker, data))
                    self.ack(marker, ("move",))
                elif i % 5 == 0:
                    self.ack(marker, ("append", uid))
                    c.select("INBOX")
                    typ, data = c.uid("STORE", uid, "+FLAGS", r"(\Flagged $Kept)")
                    if typ != "OK":
                        raise AssertionError("STORE %s: %s" % (marker, data))
                    self.ack(marker, ("store", uid))
                else:
                    self.ack(marker, ("append", uid))
                i += 1
        except (imaplib.IMAP4.abort, OSError, EOFError):
            pass            # the kill: what was in flight is unknown
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))
        if c is not None:
            try:
                c.shutdown()
            except OSError:
                pass

    def worker_pids(self):
        """The imapd workers (there may be one per CPU for an owner)."""
        table = H.proc_table()
        return [pid for pid in H.descendants(self.inst.master_pid(), table)
                if table[pid][1] == "imapd" and " -W" in table[pid][2]]

    def mailbox(self, c, box):
        """{marker: (uid, flags, bytes)} of a folder, and the markers seen
        more than once."""
        typ, data = c.select(box, readonly=True)
        self.assertEqual(typ, "OK", data)
        out, dups = {}, []
        typ, data = c.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
        self.assertEqual(typ, "OK", data)
        for item in data:
            if not isinstance(item, tuple):
                continue
            meta, body = item
            uid = re.search(rb"UID (\d+)", meta).group(1).decode()
            flags = re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).decode().split()
            marker = re.search(rb"^X-Marker: (\S+)", body, re.M).group(1).decode()
            if marker in out:
                dups.append(marker)
            out[marker] = (uid, flags, body)
        return out, dups

    def test_kill_imapd_worker_during_writes(self):
        self.errors = []
        c = self.login()
        c.create("Work")
        c.select("INBOX")
        validity = c.response("UIDVALIDITY")[1][0]
        c.logout()
        threads = [threading.Thread(target=self.writer, args=(n,))
                   for n in range(self.WRITERS)]
        for t in threads:
            t.start()
        deadline = time.time() + 60
        while len(self.acked) < 30 and time.time() < deadline:
            time.sleep(0.05)
        pids = self.worker_pids()
        self.assertNotEqual(pids, [], "no imapd worker")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        self.stop.set()
        for t in threads:
            t.join(60)
        self.assertEqual(self.errors, [])
        with self.lock:
            acked = dict(self.acked)
        self.assertGreaterEqual(len(acked), 30)

        c = self.login()
        inbox, dups = self.mailbox(c, "INBOX")
        work, wdups = self.mailbox(c, "Work")
        self.assertEqual(dups + wdups, [], "messages there twice")
        c.select("INBOX", readonly=True)
        self.assertEqual(c.response("UIDVALIDITY")[1][0], validity)
        for marker, (uid, flags, body) in list(inbox.items()) + list(work.items()):
            self.assertEqual(body, self.sent[marker], "%s is not what was sent" % marker)
        for marker, what in sorted(acked.items()):
            self.assertIn(marker, inbox, "acknowledged %s lost" % (what,))
            if what[0] in ("append", "store"):
                self.assertEqual(inbox[marker][0], what[1], marker)
            if what[0] == "move":
                self.assertNotIn(marker, work, "MOVEd %s still in Work" % marker)
            if what[0] == "store":
                self.assertIn("\\Flagged", inbox[marker][1], marker)
                self.assertIn("$Kept", inbox[marker][1], marker)
        # the next worker goes on from there
        typ, data = c.append("INBOX", None, None, self.message("after-kill"))
        self.assertEqual(typ, "OK", data)
        uid = int(re.search(rb"\[APPENDUID \d+ (\d+)\]", data[0]).group(1))
        self.assertGreater(uid, max(int(u) for u, _, _ in inbox.values()))
        c.logout()
        sys.stderr.write("imapd killed after %d acknowledged commands; "
                         "INBOX %d, Work %d messages\n"
                         % (len(acked), len(inbox), len(work)))


if __name__ == "__main__":
    H.main()

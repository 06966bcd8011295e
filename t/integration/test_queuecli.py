#!/usr/bin/env python3
"""
Queue administration and "postern check" against a real instance.

A message to an alias whose command exits 75 (EX_TEMPFAIL) is deferred
deterministically; the backoff is long (60 s) so it sits in deferred/ with
its reason while the test looks. Then: mailq-format and --json listings,
queue show, hold/release/requeue/delete (single IDs, ALL and "-"), the
permission check for an ordinary user, and "postern check" on a broken
config, a missing table and a wrong owner.

Runs privileged (root, the daemons as mail_owner) when possible; the
unprivileged class covers privilege separation off.
"""

import fcntl
import json
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

SENDER = "sender@client.example"
RCPT = "tempfail@mx.example.test"
REASON = "Command died with status 75"

# What a script written for Postfix's mailq uses (long queue IDs).
MAILQ_HEADER = ("-Queue ID-        --Size-- ---Arrival Time---- "
                "-Sender/Recipient-------")
MAILQ_MSG_RE = re.compile(
    r"^(?P<id>[0-9A-Za-z]+)(?P<flag>[*!#]?)\s+(?P<size>\d+) "
    r"(?P<date>\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d)  ?(?P<sender>\S+)$")
RCPT_INDENT = " " * 47


def setUpModule():
    H.require_binaries()


def send(inst, rcpts, subject):
    msg = H.make_message(SENDER, rcpts, subject, "body line\r\n")
    s = H.smtp_client(inst)
    try:
        s.sendmail(SENDER, rcpts, msg)
        s.quit()
    finally:
        s.close()


class QueueMixin:
    privileged = False

    def setUp(self):
        inst = self.make_instance(
            privileged=self.privileged,
            conf={"minimal_backoff_time": "60s", "maximal_backoff_time": "120s",
                  "queue_run_delay": "60s"})
        inst.aliases["tempfail"] = "|" + inst.path("bin", "tempfail")
        inst.write_script("tempfail", "cat >/dev/null\nexit 75\n")
        inst.aliases["slowfail"] = "|" + inst.path("bin", "slowfail")
        inst.write_script("slowfail", "cat >/dev/null\nsleep 3\nexit 75\n")
        inst.start()

    # ----- helpers -------------------------------------------------------

    def deferred_message(self, subject="queued"):
        inst = self.inst
        mark = inst.log_mark()
        send(inst, [RCPT], subject)
        m = inst.wait_log(r"postern/\w+\[\d+\]: ([0-9A-Za-z]+): to=<%s>.*status=deferred"
                          % re.escape(RCPT), since=mark)[0]
        qid = m.group(1)
        self.wait_in(qid, "deferred")
        return qid

    def wait_in(self, qid, queue, timeout=20):
        deadline = time.time() + timeout
        while True:
            if os.path.exists(self.inst.path("queue", queue, qid)):
                return
            if time.time() > deadline:
                self.fail("%s not in %s/ after %ss: %s" % (qid, queue, timeout,
                                                          self.inst.queue_files()))
            time.sleep(0.1)

    def wait_gone(self, qid, timeout=20):
        deadline = time.time() + timeout
        while any(f.endswith("/" + qid) for f in self.inst.queue_files()):
            if time.time() > deadline:
                self.fail("%s still queued: %s" % (qid, self.inst.queue_files()))
            time.sleep(0.1)

    def q(self, *args, check=True, input=None):
        r = self.inst.postern("queue", *args, input=input)
        if check and r.returncode != 0:
            self.fail("postern queue %s: exit %d\n%s%s" % (" ".join(args), r.returncode,
                                                         r.stdout, r.stderr))
        return r

    def mailq(self):
        return self.q("list").stdout

    def parse_mailq(self, text):
        """{id: (flag, size, sender, [reasons], [rcpts])} as a script would."""
        lines = text.split("\n")
        self.assertEqual(lines[0], MAILQ_HEADER, text)
        self.assertTrue(text.endswith("\n"), text)
        msgs, cur = {}, None
        for line in lines[1:]:
            m = MAILQ_MSG_RE.match(line)
            if m:
                cur = msgs[m.group("id")] = (m.group("flag"), int(m.group("size")),
                                             m.group("sender"), [], [])
            elif line.startswith("-- "):
                self.assertRegex(line, r"^-- \d+ Kbytes in %d Requests?\.$" % len(msgs))
                break
            elif line.strip().startswith("(") and line.endswith(")"):
                cur[3].append(line.strip()[1:-1])
            elif line.startswith(RCPT_INDENT) and line.strip():
                cur[4].append(line.strip())
            else:
                self.assertEqual(line, "", "unexpected mailq line %r in\n%s" % (line, text))
        else:
            self.fail("no footer in\n%s" % text)
        return msgs

    # ----- listing -------------------------------------------------------

    def test_list_deferred(self):
        qid = self.deferred_message()
        text = self.mailq()
        msgs = self.parse_mailq(text)
        self.assertIn(qid, msgs, text)
        flag, size, sender, reasons, rcpts = msgs[qid]
        self.assertEqual(flag, "")
        self.assertEqual(sender, SENDER)
        self.assertGreater(size, 0)
        self.assertEqual(rcpts, [RCPT])
        self.assertTrue(any(REASON in r for r in reasons), text)
        # The reason line ends near column 78, as Postfix's does.
        rline = [l for l in text.split("\n") if l.strip().startswith("(")][0]
        self.assertTrue(len(rline) >= 78 or rline.startswith("("), repr(rline))

        r = self.q("list", "--json")
        objs = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
        self.assertEqual(len(objs), 1, r.stdout)
        o = objs[0]
        for k in ("queue_name", "queue_id", "arrival_time", "message_size",
                  "forced_expire", "sender", "recipients"):
            self.assertIn(k, o)
        self.assertEqual(o["queue_name"], "deferred")
        self.assertEqual(o["queue_id"], qid)
        self.assertEqual(o["sender"], SENDER)
        self.assertIs(o["forced_expire"], False)
        self.assertEqual(o["message_size"], size)
        self.assertLess(abs(o["arrival_time"] - time.time()), 120)
        self.assertEqual(o["recipients"][0]["address"], RCPT)
        self.assertIn(REASON, o["recipients"][0]["delay_reason"])

    def test_list_empty(self):
        r = self.q("list")
        self.assertEqual(r.stdout, "Mail queue is empty\n")
        self.assertEqual(self.q("list", "--json").stdout, "")

    def test_list_without_showq(self):
        """The mail system down: the owner reads the queue directly."""
        qid = self.deferred_message()
        self.inst.stop()
        msgs = self.parse_mailq(self.mailq())
        self.assertIn(qid, msgs)

    def test_show(self):
        qid = self.deferred_message("show me")
        r = self.q("show", qid)
        self.assertIn("*** ENVELOPE RECORDS deferred/%s ***" % qid, r.stdout)
        self.assertIn("sender: %s" % SENDER, r.stdout)
        self.assertIn("recipient: pending: %s" % RCPT, r.stdout)
        self.assertIn("*** MESSAGE CONTENTS deferred/%s ***" % qid, r.stdout)
        self.assertIn("Subject: show me", r.stdout)
        self.assertIn("*** MESSAGE FILE END deferred/%s ***" % qid, r.stdout)
        bad = self.q("show", "../../etc/passwd", check=False)
        self.assertEqual(bad.returncode, 65, bad.stderr)
        self.assertIn("bad queue ID", bad.stderr)

    # ----- changes -------------------------------------------------------

    def test_hold_release_requeue_delete(self):
        inst = self.inst
        qid = self.deferred_message()

        self.q("hold", qid)
        self.wait_in(qid, "hold")
        self.assertFalse(os.path.exists(inst.path("queue", "deferred", qid)))
        msgs = self.parse_mailq(self.mailq())
        self.assertEqual(msgs[qid][0], "!")
        self.assertEqual(json.loads(self.q("list", "--json").stdout)["queue_name"], "hold")
        inst.wait_log(r"postern/postern\[\d+\]: %s: placed on hold" % qid)

        # release: back to deferred, due now, so qmgr tries (and defers) again
        mark = inst.log_mark()
        self.q("release", qid)
        inst.wait_log(r"%s: released from hold" % qid, since=mark)
        inst.wait_log(r"%s: to=<%s>.*status=deferred" % (qid, re.escape(RCPT)),
                      since=mark)
        self.wait_in(qid, "deferred")

        # requeue: to incoming, qmgr takes it at once
        mark = inst.log_mark()
        self.q("requeue", qid)
        inst.wait_log(r"%s: requeued" % qid, since=mark)
        inst.wait_log(r"%s: to=<%s>.*status=deferred" % (qid, re.escape(RCPT)),
                      since=mark)
        self.wait_in(qid, "deferred")

        # delete: gone, with its defer log, and logged as postsuper does
        r = self.q("delete", qid)
        self.assertIn("Deleted: 1 message", r.stderr)
        self.wait_gone(qid)
        self.assertFalse(os.path.exists(inst.path("queue", "defer", qid)))
        inst.wait_log(r"postern/postern\[\d+\]: %s: removed" % qid)
        self.assertEqual(self.mailq(), "Mail queue is empty\n")
        # deleting it again: not found, exit 1
        self.assertEqual(self.q("delete", qid, check=False).returncode, 1)

    def test_hold_active(self):
        """A message being delivered is held once it leaves active/, and
        the delivery in progress is neither lost nor repeated."""
        inst = self.inst
        mark = inst.log_mark()
        send(inst, ["slowfail@mx.example.test"], "slow")
        qid = inst.wait_log(r"postern/qmgr\[\d+\]: ([0-9A-Za-z]+): from=.*queue active",
                            since=mark)[0].group(1)
        self.wait_in(qid, "active")
        r = self.q("hold", qid)
        self.assertIn("Placed on hold: 1 message", r.stderr)
        self.wait_in(qid, "hold")
        self.assertEqual(len(inst.wait_log(r"%s: to=<slowfail@.*status=deferred" % qid,
                                           since=mark)), 1)
        self.assertNotIn("vanished", inst.log_since(mark))
        self.assertEqual(self.parse_mailq(self.mailq())[qid][0], "!")

    def test_locked_by_agent(self):
        """A file an agent of an earlier qmgr still delivers from (it holds
        a shared flock, as every agent does) is put back and taken again
        within seconds once the agent lets go, not after a minute."""
        inst = self.inst
        qid = self.deferred_message()
        fd = os.open(inst.path("queue", "deferred", qid), os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            mark = inst.log_mark()
            self.q("requeue", qid)
            inst.wait_log(r"postern/qmgr\[\d+\]: %s: queue file is in use by a "
                          r"delivery agent, retrying in 10 s" % qid, since=mark)
            self.wait_in(qid, "incoming")
            self.assertNotRegex(inst.log_since(mark), r"%s: to=<" % qid)
        finally:
            os.close(fd)
        # the next incoming/ scan after the 10 s takes it; 60 s would not
        inst.wait_log(r"%s: to=<%s>.*status=deferred" % (qid, re.escape(RCPT)),
                      since=mark, timeout=40)
        self.wait_in(qid, "deferred")

    def test_all_and_stdin(self):
        a = self.deferred_message("first")
        b = self.deferred_message("second")
        r = self.q("hold", "ALL")
        self.assertIn("Placed on hold: 2 messages", r.stderr)
        self.wait_in(a, "hold")
        self.wait_in(b, "hold")
        msgs = self.parse_mailq(self.mailq())
        self.assertEqual({k: v[0] for k, v in msgs.items()}, {a: "!", b: "!"})
        # IDs from stdin, as with postsuper -
        self.q("release", "-", input="%s\n" % a)
        self.wait_in(a, "deferred")
        self.wait_in(b, "hold")
        r = self.q("delete", "ALL")
        self.assertIn("Deleted: 2 messages", r.stderr)
        self.wait_gone(a)
        self.wait_gone(b)

    def test_flush(self):
        qid = self.deferred_message()
        mark = self.inst.log_mark()
        self.q("flush")
        self.inst.wait_log(r"%s: to=<%s>.*status=deferred" % (qid, re.escape(RCPT)),
                           since=mark)

    def test_bad_ids(self):
        for bad in ("../x", "ALLx", "", "a" * 200):
            r = self.q("hold", bad, check=False)
            self.assertEqual(r.returncode, 65, (bad, r.stderr))


@H.skip_unless_root()
class PrivilegedQueue(QueueMixin, H.InstanceTestCase):
    privileged = True

    def as_user(self, user, *args):
        cmd = ["runuser", "-u", user, "--", os.path.join(self.inst.daemon_dir, "postern"),
               "-c", self.inst.dir] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                              cwd="/")

    def test_permission_denied(self):
        qid = self.deferred_message()
        for args in (("hold", qid), ("delete", "ALL"), ("release", qid),
                     ("requeue", qid), ("flush",)):
            r = self.as_user("nobody", "queue", *args)
            self.assertEqual(r.returncode, 77, (args, r.stdout, r.stderr))
            self.assertIn("permission denied: only root or the mail owner may "
                          "change the queue", r.stderr)
        self.wait_in(qid, "deferred")
        r = self.as_user("nobody", "queue", "show", qid)
        self.assertNotEqual(r.returncode, 0)
        self.assertNotIn("MESSAGE CONTENTS", r.stdout)
        # the mail owner may change it
        r = self.as_user(H.MAIL_OWNER, "queue", "hold", qid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_in(qid, "hold")

    def test_owner_lists_through_showq(self):
        qid = self.deferred_message()
        r = self.as_user(H.MAIL_OWNER, "queue", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(qid, self.parse_mailq(r.stdout))

    def test_anyone_may_list(self):
        """Through public/showq; needs public/ to be searchable by all."""
        qid = self.deferred_message()
        pub = os.stat(self.inst.path("queue", "public"))
        if not pub.st_mode & 0o001:
            self.skipTest("queue/public is mode %o: ordinary users cannot reach "
                          "public/showq" % (pub.st_mode & 0o7777))
        r = self.as_user("nobody", "queue", "list")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(qid, self.parse_mailq(r.stdout))

    def test_authorized_mailq_users(self):
        """'unless configured otherwise': a user not in the list is refused
        (77, one line), root still lists."""
        qid = self.deferred_message()
        self.inst.params["authorized_mailq_users"] = "root"
        self.inst.write_config()
        self.inst.reload()
        deadline = time.time() + 20
        while True:
            r = self.as_user("nobody", "queue", "list")
            if r.returncode == 77 or time.time() > deadline:
                break
            time.sleep(0.5)     # the old showq may still serve one listing
        self.assertEqual(r.returncode, 77, (r.stdout, r.stderr))
        self.assertIn("not in authorized_mailq_users", r.stderr)
        self.assertNotIn(qid, r.stdout)
        r = self.inst.postern("queue", "list")
        self.assertIn(qid, self.parse_mailq(r.stdout))


class UnprivilegedQueue(QueueMixin, H.InstanceTestCase):
    privileged = False


class Check(H.InstanceTestCase):
    """postern check on an instance that is not running."""

    def setUp(self):
        self.make_instance(privileged=H.is_root())
        self.inst.prepare()

    def check(self):
        r = self.inst.postern("check")
        return r.returncode, r.stderr

    def test_clean(self):
        rc, err = self.check()
        self.assertEqual(rc, 0, err)
        self.assertNotIn("error:", err)

    def test_broken_config(self):
        p = self.inst.path("postern.conf")
        with open(p, "a") as f:
            f.write("this line is broken\n")
        with open(p) as f:
            n = len(f.read().splitlines())
        rc, err = self.check()
        self.assertEqual(rc, 78, err)
        self.assertRegex(err, r"postern: error: .*postern\.conf:%d: .*fix" % n)

    def test_bad_value(self):
        with open(self.inst.path("postern.conf"), "a") as f:
            f.write("queue_run_delay = soon\n")
        rc, err = self.check()
        self.assertEqual(rc, 78, err)
        self.assertRegex(err, r"postern: error: .*queue_run_delay.*fix")

    def test_missing_table(self):
        os.unlink(self.inst.path("vmailbox.lmdb"))
        rc, err = self.check()
        self.assertEqual(rc, 78, err)
        self.assertIn("postern: error: virtual_mailbox_maps: table lmdb:%s"
                      % self.inst.path("vmailbox"), err)
        self.assertIn("run: postern map build lmdb:%s" % self.inst.path("vmailbox"), err)

    def test_stale_table(self):
        src = self.inst.path("aliases")
        later = time.time() + 10
        os.utime(src, (later, later))
        rc, err = self.check()
        self.assertEqual(rc, 0, err)
        self.assertIn("postern: warning: alias_maps: table lmdb:%s" % src, err)
        self.assertIn("older than its source", err)

    def test_missing_program(self):
        self.inst.services.append("bogus unix - - n - - no-such-daemon")
        self.inst.write_config()
        rc, err = self.check()
        self.assertEqual(rc, 78, err)
        self.assertIn("no-such-daemon does not exist", err)
        self.assertIn("daemon_directory", err)

    @H.skip_unless_root()
    def test_wrong_owner(self):
        inst = self.inst
        inst.start(prepare=False)
        inst.stop()
        rc, err = self.check()
        self.assertEqual(rc, 0, err)
        os.chown(inst.path("queue", "deferred"), 0, 0)
        stray = inst.path("queue", "incoming", "strayfile")
        open(stray, "w").close()
        rc, err = self.check()
        self.assertEqual(rc, 78, err)
        self.assertRegex(err, r"postern: error: %s is owned by root, not by mail_owner "
                         r"postern; fix: chown -R postern: " % re.escape(
                             inst.path("queue", "deferred")))
        self.assertRegex(err, r"postern: error: %s is owned by root.*fix: chown postern: "
                         % re.escape(stray))

    @H.skip_unless_root()
    def test_root_mail_owner(self):
        with open(self.inst.path("postern.conf"), "a") as f:
            f.write("mail_owner = root\n")
        rc, err = self.check()
        self.assertEqual(rc, 78, err)
        self.assertIn("mail_owner \"root\" has uid 0", err)


if __name__ == "__main__":
    H.main()

#!/usr/bin/env python3
"""
Sieve in local (issue 12): mail delivered over SMTP (smtplib) to virtual
users whose active script sits in Pigeonhole's layout (sieve/NAME.sieve
and the .dovecot.sieve link, here under the user's Maildir), with an
administrator's local_sieve_before and local_sieve_after script.

  - fileinto :create with :flags lands in the Maildir++ folder imapd
    shows ("postern mailbox list" names it), with the Maildir flags, and
    an IMAP client sees \Seen and the $Work keyword there
  - exactly one vacation reply per sender within :days, carrying
    Auto-Submitted: auto-replied, from the null sender; none to a list
    message
  - redirect :copy re-submits through the queue to another user; a
    redirect loop (erin -> frank -> erin) is stopped by Delivered-To and
    the message kept
  - the before script files X-Spam: yes into Junk for a user without any
    script; the after script flags what reaches the implicit keep
  - duplicate (RFC 7352): a second message with the same Message-ID is
    discarded, another one is not
  - environment (RFC 5183): host, domain and location as local gives them
  - enotify (RFC 5435, mailto RFC 5436): a notification by mail from the
    null sender, none for an Auto-Submitted message
  - a script that does not compile keeps the message in INBOX and logs
    why, with the queue ID and the line
  - postern sieve check prints FILE:LINE and exits non-zero; postern
    check reports a local_sieve_after script that does not compile
"""

import imaplib
import os
import re
import smtplib
import time
import unittest

import postern_harness as H

ALICE_SCRIPT = r'''require ["fileinto", "imap4flags", "mailbox", "vacation", "copy"];
# lists go to their folder, read
if header :contains "List-Id" "sieve.lists.example" {
    fileinto :create :flags ["\\Seen", "$Work"] "Lists/Sieve";
    stop;
}
if header :contains "subject" "share" {
    redirect :copy "bob@example.test";
}
vacation :days 1 :subject "Away" :addresses ["alice@example.test"]
    "I am away until Monday.";
'''

CAROL_BROKEN = '''require "fileinto";
if header :contains "subject" "x" {
    fileinto "a"
}
'''

BEFORE = r'''require ["fileinto", "mailbox"];
if header :is "X-Spam" "yes" {
    fileinto :create "Junk";
    stop;
}
'''

AFTER = r'''require "imap4flags";
addflag "\\Flagged";
'''


def setUpModule():
    H.require_binaries()


class SieveTest(H.InstanceTestCase):

    def setUp(self):
        self.p143 = H.free_port()
        inst = self.make_instance(services=[
            "127.0.0.1:%d inet n - n - - imap-login" % self.p143,
            "imapd unix - n n - 1 imapd"])
        inst.vmailbox["dave@example.test"] = "example.test/dave/"
        inst.vmailbox["erin@example.test"] = "example.test/erin/"
        inst.vmailbox["frank@example.test"] = "example.test/frank/"
        inst.vmailbox["grace@example.test"] = "example.test/grace/"
        inst.vmailbox["heidi@example.test"] = "example.test/heidi/"
        inst.vmailbox["ivan@example.test"] = "example.test/ivan/"
        inst.params.update({
            "local_sieve_before": inst.path("before.sieve"),
            "local_sieve_after": inst.path("after.sieve"),
        })
        inst.prepare()
        inst.write("before.sieve", BEFORE)
        inst.write("after.sieve", AFTER)
        self.install_script("alice@example.test", "main", ALICE_SCRIPT)
        self.install_script("carol@example.test", "broken", CAROL_BROKEN)
        # a redirect loop: erin -> frank -> erin
        self.install_script("erin@example.test", "fwd", 'redirect "frank@example.test";\n')
        self.install_script("frank@example.test", "fwd", 'redirect "erin@example.test";\n')
        self.install_script("grace@example.test", "dedup",
                            'require "duplicate";\nif duplicate { discard; stop; }\n')
        # environment (RFC 5183) as local fills it: myhostname, and who runs it
        self.install_script("heidi@example.test", "env",
                            'require ["environment", "fileinto", "mailbox"];\n'
                            'if allof (environment :is "host" "mx.example.test",\n'
                            '          environment :is "domain" "example.test",\n'
                            '          environment :is "location" "MDA") {\n'
                            '  fileinto :create "Env";\n}\n')
        # enotify (RFC 5435/5436): a mail to bob about each of ivan's
        self.install_script("ivan@example.test", "notify",
                            'require ["enotify", "variables"];\n'
                            'if header :matches "Subject" "*" { set "s" "${1}"; }\n'
                            'notify :importance "1" :message "New: ${s}"\n'
                            '  "mailto:bob@example.test?body=see%20INBOX";\n')
        inst.add_user("alice@example.test", "alice-pw")
        inst.start(prepare=False)

    def install_script(self, addr, name, text):
        """Pigeonhole's layout under the virtual user's Maildir."""
        inst = self.inst
        top = inst.vmaildir(addr)
        sdir = os.path.join(top, "sieve")
        os.makedirs(sdir, exist_ok=True)
        path = os.path.join(sdir, name + ".sieve")
        with open(path, "w") as f:
            f.write(text)
        link = os.path.join(top, ".dovecot.sieve")
        os.symlink("sieve/%s.sieve" % name, link)
        for p in (os.path.dirname(top), top, sdir, path):
            os.chown(p, inst.vuid, inst.vgid)
        os.lchown(link, inst.vuid, inst.vgid)

    def send(self, sender, rcpt, subject, extra="", body="hello\r\n", msgid=None):
        msgid = msgid or "%s.%s@client.example" % (subject.replace(" ", "-"),
                                                   os.urandom(4).hex())
        msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
               "Message-ID: <%s>\r\n%s\r\n%s"
               % (sender, rcpt, subject, msgid, extra, body)).encode()
        with smtplib.SMTP("127.0.0.1", self.inst.port, timeout=30) as s:
            s.sendmail(sender, [rcpt], msg)

    def files(self, maildir):
        out = []
        for sub in ("new", "cur"):
            try:
                out += [(sub, n) for n in os.listdir(os.path.join(maildir, sub))]
            except OSError:
                pass
        return out

    def test_fileinto_folder_with_flags(self):
        inst = self.inst
        self.send("dave@example.test", "alice@example.test", "list post",
                  "List-Id: Sieve list <sieve.lists.example>\r\n")
        folder = os.path.join(inst.vmaildir("alice@example.test"), ".Lists.Sieve")
        msgs = H.wait_maildir(folder, 1, inst=inst)
        self.assertIn(b"Subject: list post", msgs[0])
        names = self.files(folder)
        self.assertEqual(len(names), 1)
        sub, name = names[0]
        self.assertEqual(sub, "cur")
        self.assertTrue(name.endswith(":2,S"), name)
        # not in the INBOX, and no vacation reply to a list message
        self.assertEqual(self.files(inst.vmaildir("alice@example.test")), [])
        inst.wait_log(r"sieve: to=<alice@example\.test>: stored into Lists/Sieve")
        self.assertTrue(os.path.exists(os.path.join(folder, "maildirfolder")))
        # imapd's view: the folder has its IMAP name
        res = inst.postern("mailbox", "list", "alice@example.test")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("Lists/Sieve", res.stdout.split())
        inst.wait_queue_empty()
        self.assertEqual(H.maildir_messages(inst.vmaildir("dave@example.test")), [])
        # what the user's IMAP client sees: the folder, \Seen and the keyword
        deadline = time.time() + 30
        while not H.port_accepts(self.p143):
            self.assertLess(time.time(), deadline, "IMAP port not ready")
            time.sleep(0.2)
        c = imaplib.IMAP4("127.0.0.1", self.p143, timeout=30)
        try:
            c.login("alice@example.test", "alice-pw")
            typ, _ = c.select('"Lists/Sieve"')
            self.assertEqual(typ, "OK")
            typ, data = c.fetch("1", "(FLAGS)")
            self.assertEqual(typ, "OK")
            self.assertIn(b"\\Seen", data[0])
            self.assertIn(b"$Work", data[0])
            c.logout()
        finally:
            try:
                c.shutdown()
            except OSError:
                pass

    def test_environment(self):
        self.send("dave@example.test", "heidi@example.test", "env")
        folder = os.path.join(self.inst.vmaildir("heidi@example.test"), ".Env")
        H.wait_maildir(folder, 1, inst=self.inst)

    def test_notify_by_mail(self):
        inst = self.inst
        self.send("dave@example.test", "ivan@example.test", "quarterly report")
        # ivan keeps it (notify leaves the implicit keep alone) ...
        H.wait_maildir(inst.vmaildir("ivan@example.test"), 1, inst=inst)
        # ... and bob hears of it, from the null sender, marked automatic
        got = H.wait_maildir(inst.vmaildir("bob@example.test"), 1, inst=inst)[0]
        self.assertIn(b"Subject: New: quarterly report", got)
        self.assertIn(b"Auto-Submitted: auto-notified", got)
        self.assertIn(b"Importance: high", got)
        self.assertIn(b"Return-Path: <>", got)
        self.assertTrue(got.rstrip().endswith(b"see INBOX"), got[-200:])
        inst.wait_log(r"sieve: to=<ivan@example\.test>: notification to "
                      r"<bob@example\.test> queued as \w+")
        # an automatic message gets no notification (RFC 5436 2.7)
        self.send("dave@example.test", "ivan@example.test", "out of office",
                  "Auto-Submitted: auto-replied\r\n")
        inst.wait_log(r"sieve: to=<ivan@example\.test>: no notification: the message "
                      r"is Auto-Submitted")
        H.wait_maildir(inst.vmaildir("ivan@example.test"), 2, inst=inst)
        inst.wait_queue_empty()
        self.assertEqual(len(H.maildir_messages(inst.vmaildir("bob@example.test"))), 1)

    def test_vacation_once_per_sender(self):
        inst = self.inst
        bob = inst.vmaildir("bob@example.test")
        self.send("bob@example.test", "alice@example.test", "first")
        replies = H.wait_maildir(bob, 1, inst=inst)
        self.assertIn(b"Subject: Away", replies[0])
        self.assertRegex(replies[0], rb"(?m)^Auto-Submitted: auto-replied")
        self.assertRegex(replies[0], rb"(?m)^Return-Path: <>")
        self.assertIn(b"I am away until Monday.", replies[0])
        # the mail itself reached alice's INBOX, flagged by the after script
        inbox = inst.vmaildir("alice@example.test")
        H.wait_maildir(inbox, 1, inst=inst)
        self.send("bob@example.test", "alice@example.test", "second")
        H.wait_maildir(inbox, 2, inst=inst)
        inst.wait_log(r"no vacation reply: <bob@example\.test> already answered")
        inst.wait_queue_empty()
        self.assertEqual(len(H.maildir_messages(bob)), 1)
        # an auto-submitted message gets no reply either
        self.send("dave@example.test", "alice@example.test", "robot",
                  "Auto-Submitted: auto-generated\r\n")
        H.wait_maildir(inbox, 3, inst=inst)
        inst.wait_log(r"no vacation reply: auto-submitted")
        inst.wait_queue_empty()
        self.assertEqual(H.maildir_messages(inst.vmaildir("dave@example.test")), [])
        for sub, name in self.files(inbox):
            self.assertTrue(name.endswith(":2,F"), name)

    def test_redirect_copy(self):
        inst = self.inst
        self.send("dave@example.test", "alice@example.test", "please share")
        bob = H.wait_maildir(inst.vmaildir("bob@example.test"), 1, inst=inst)
        self.assertIn(b"Subject: please share", bob[0])
        self.assertIn(b"Delivered-To: alice@example.test", bob[0])
        H.wait_maildir(inst.vmaildir("alice@example.test"), 1, inst=inst)
        inst.wait_log(r"sieve: to=<alice@example\.test>: redirect to <bob@example\.test>")

    def test_redirect_loop_kept(self):
        inst = self.inst
        self.send("dave@example.test", "erin@example.test", "round and round")
        frank = H.wait_maildir(inst.vmaildir("frank@example.test"), 1, inst=inst)
        self.assertIn(b"Subject: round and round", frank[0])
        self.assertIn(b"Delivered-To: erin@example.test", frank[0])
        inst.wait_log(r"sieve: to=<frank@example\.test>: redirect to <erin@example\.test> "
                      r"would loop")
        inst.wait_queue_empty()
        self.assertEqual(H.maildir_messages(inst.vmaildir("erin@example.test")), [])
        self.assertEqual(len(H.maildir_messages(inst.vmaildir("frank@example.test"))), 1)
        # nothing bounced back to dave
        self.assertEqual(H.maildir_messages(inst.vmaildir("dave@example.test")), [])

    def test_duplicate(self):
        inst = self.inst
        grace = inst.vmaildir("grace@example.test")
        self.send("dave@example.test", "grace@example.test", "once", msgid="same@example")
        H.wait_maildir(grace, 1, inst=inst)
        self.send("dave@example.test", "grace@example.test", "twice", msgid="same@example")
        inst.wait_log(r"sieve: to=<grace@example\.test>: discarded")
        self.send("dave@example.test", "grace@example.test", "other", msgid="other@example")
        H.wait_maildir(grace, 2, inst=inst)
        inst.wait_queue_empty()
        subjects = sorted(m.split(b"Subject: ")[1].split(b"\n")[0].strip()
                          for m in H.maildir_messages(grace))
        self.assertEqual(subjects, [b"once", b"other"])

    def test_before_and_after(self):
        inst = self.inst
        bob = inst.vmaildir("bob@example.test")
        self.send("dave@example.test", "bob@example.test", "buy now", "X-Spam: yes\r\n")
        junk = H.wait_maildir(os.path.join(bob, ".Junk"), 1, inst=inst)
        self.assertIn(b"Subject: buy now", junk[0])
        self.send("dave@example.test", "bob@example.test", "hello bob")
        H.wait_maildir(bob, 1, inst=inst)
        names = self.files(bob)
        self.assertEqual(len(names), 1)
        self.assertTrue(names[0][1].endswith(":2,F"), names)

    def test_broken_script_keeps(self):
        inst = self.inst
        carol = inst.vmaildir("carol@example.test")
        self.send("dave@example.test", "carol@example.test", "x marks")
        msgs = H.wait_maildir(carol, 1, inst=inst)
        self.assertIn(b"Subject: x marks", msgs[0])
        text = inst.wait_log(r"[0-9A-Za-z]+: sieve: to=<carol@example\.test>: .*"
                             r"broken: line 4: .*keeping the message in INBOX")
        self.assertTrue(text)
        self.assertFalse(os.path.exists(os.path.join(carol, ".a")))

    def test_sieve_check(self):
        inst = self.inst
        bad = inst.path("bad.sieve")
        with open(bad, "w") as f:
            f.write(CAROL_BROKEN)
        res = inst.postern("sieve", "check", bad)
        self.assertNotEqual(res.returncode, 0)
        self.assertRegex(res.stderr, re.escape(bad) + r":4: expected ';'")
        good = inst.path("good.sieve")
        with open(good, "w") as f:
            f.write(ALICE_SCRIPT)
        res = inst.postern("sieve", "check", good)
        self.assertEqual(res.returncode, 0, res.stderr)
        # postern check compiles the administrator's scripts
        res = inst.postern("check")
        self.assertEqual(res.returncode, 0, res.stderr)
        inst.write("after.sieve", CAROL_BROKEN)
        res = inst.postern("check")
        self.assertNotEqual(res.returncode, 0)
        self.assertRegex(res.stderr, r"error: local_sieve_after: .*after\.sieve:4: ")


SYS_SCRIPT = r"""require ["fileinto", "mailbox"];
if header :contains "subject" "report" {
    fileinto :create "Reports";
}
if header :contains "subject" "escape" {
    fileinto :create "../../../escaped";
}
"""


class SystemUserSieve(H.InstanceTestCase):
    """A system user: ~/sieve/NAME.sieve and ~/.dovecot.sieve under $HOME,
    run by a privileged local as that user."""

    USER = "ptsieve1"

    def setUp(self):
        inst = self.make_instance(privileged=True, conf={"home_mailbox": "Maildir/"})
        self.home = inst.add_system_user(self.USER)
        self.uid, self.gid = H.user_ids(self.USER)
        sdir = os.path.join(self.home, "sieve")
        os.makedirs(sdir, exist_ok=True)
        with open(os.path.join(sdir, "rules.sieve"), "w") as f:
            f.write(SYS_SCRIPT)
        os.symlink("sieve/rules.sieve", os.path.join(self.home, ".dovecot.sieve"))
        for p in (sdir, os.path.join(sdir, "rules.sieve")):
            os.chown(p, self.uid, self.gid)
        os.lchown(os.path.join(self.home, ".dovecot.sieve"), self.uid, self.gid)
        inst.start()

    def send(self, subject):
        rcpt = self.USER + "@localhost"
        msg = ("From: <dave@example.test>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nhi\r\n"
               % (rcpt, subject)).encode()
        with smtplib.SMTP("127.0.0.1", self.inst.port, timeout=30) as s:
            s.sendmail("dave@example.test", [rcpt], msg)

    def test_fileinto_as_the_user(self):
        self.send("weekly report")
        folder = os.path.join(self.home, "Maildir", ".Reports")
        msgs = H.wait_maildir(folder, 1, inst=self.inst)
        self.assertIn(b"Subject: weekly report", msgs[0])
        for p in (folder, os.path.join(folder, "new")):
            self.assertEqual(os.stat(p).st_uid, self.uid)
        for n in os.listdir(os.path.join(folder, "new")):
            self.assertEqual(os.stat(os.path.join(folder, "new", n)).st_uid, self.uid)

    def test_folder_name_cannot_leave_the_maildir(self):
        self.send("escape attempt")
        inbox = os.path.join(self.home, "Maildir")
        msgs = H.wait_maildir(inbox, 1, inst=self.inst)
        self.assertIn(b"Subject: escape attempt", msgs[0])
        self.inst.wait_log(r"fileinto \"\.\./\.\./\.\./escaped\": folder name refused.*"
                           r"keeping in INBOX")
        for p in (os.path.join(self.home, "escaped"), os.path.join(self.inst.dir, "escaped"),
                  os.path.join(self.home, "Maildir", "escaped")):
            self.assertFalse(os.path.exists(p), p)
        self.assertEqual([n for n in os.listdir(inbox) if n.startswith(".") and
                          os.path.isdir(os.path.join(inbox, n))], [])


if __name__ == "__main__":
    unittest.main()

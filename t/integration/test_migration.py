#!/usr/bin/env python3
"""
Moving mailboxes from Dovecot to Postern in place. A Maildir that a real
Dovecot kept (messages APPENDed, flagged, given keywords and expunged
through its IMAP, a second folder, a third whose non-ASCII name Dovecot
keeps on disk in modified UTF-7, two subscriptions; its POP3 UIDLs read)
is handed to Postern as it is, files and all. Postern's first index of each folder
takes Dovecot's dovecot-uidlist and dovecot-keywords, so IMAP clients see
the same UIDVALIDITY, UIDNEXT, UIDs, flags and keywords and fetch nothing
again, and with pop3d_uidl_format = %08Xu%08Xv (Dovecot's default) a POP3
client that leaves mail on the server sees the same UIDLs and downloads
no duplicates. A message delivered afterwards gets the UID Dovecot would
have given next; one that Sieve files into the non-ASCII folder before
the first IMAP login finds it under its UTF-8 name. The password is a
Dovecot passwd-file line with a {SSHA512} hash.

The Dovecot is a private one (bench/benchlib.py), stopped by its pid.
"""

import base64
import hashlib
import imaplib
import os
import poplib
import re
import shutil
import smtplib
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench"))
import postern_harness as H  # noqa: E402
import benchlib  # noqa: E402

ALICE = "alice@example.test"
PW = benchlib.PW
UMLAUT = "Entw&APw-rfe"          # "Entwürfe" in modified UTF-7
BOXES = ("INBOX", "Work", UMLAUT)


def setUpModule():
    H.require_binaries()
    for d in ("imap-login", "imapd", "pop3-login", "pop3d"):
        if not os.path.exists(os.path.join(H.BUILDDIR, d)):
            raise unittest.SkipTest("%s not built" % d)


def msg(i):
    return ("From: someone@example.test\r\nSubject: migrated %s\r\n"
            "Message-ID: <mig.%s@example.test>\r\n\r\nbody of %s\r\n" % (i, i, i)).encode()


def folder_state(c, box):
    """(UIDVALIDITY, UIDNEXT, {Message-ID: (UID, flags without \\Recent)})."""
    typ, data = c.select(box, readonly=True)
    assert typ == "OK", data
    validity = int(c.response("UIDVALIDITY")[1][0])
    typ, data = c.status(box, "(UIDNEXT)")
    uidnext = int(re.search(rb"UIDNEXT (\d+)", data[0]).group(1))
    c.select(box, readonly=True)
    typ, data = c.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    msgs = {}
    for item in data:
        if not isinstance(item, tuple):
            continue
        meta, hdr = item
        uid = int(re.search(rb"UID (\d+)", meta).group(1))
        flags = re.search(rb"FLAGS \(([^)]*)\)", meta).group(1).decode().split()
        mid = re.search(rb"<([^>]+)>", hdr).group(1).decode()
        msgs[mid] = (uid, sorted(f for f in flags if f != "\\Recent"))
    return validity, uidnext, msgs


def pop3_uidls(port):
    """{Message-ID: UIDL} of alice's INBOX over POP3."""
    p = poplib.POP3("127.0.0.1", port, timeout=30)
    p.user(ALICE)
    p.pass_(PW)
    out = {}
    for line in p.uidl()[1]:
        n, uidl = line.decode().split()
        hdr = b"\n".join(p.top(int(n), 0)[1])
        out[re.search(rb"Message-ID: <([^>]+)>", hdr).group(1).decode()] = uidl
    p.quit()
    return out


class FromDovecot(H.InstanceTestCase):

    def dovecot_mailbox(self):
        """Fill a private Dovecot's Maildir for alice; return what its
        IMAP and POP3 said about it, and the Maildir's path."""
        pop3_port = H.free_port()
        try:
            dc = benchlib.Dovecot(None, "imap", 0, users=(ALICE,), extra_conf=(
                "protocols = imap pop3\n"
                "service pop3-login {\n  inet_listener pop3 {\n"
                "    address = 127.0.0.1\n    port = %d\n  }\n}\n" % pop3_port))
        except (RuntimeError, subprocess.CalledProcessError) as e:
            self.skipTest("no Dovecot: %s" % e)
        self.addCleanup(shutil.rmtree, dc.dir, True)
        try:
            c = imaplib.IMAP4("127.0.0.1", dc.port, timeout=30)
            c.login(ALICE, PW)
            flags = ["(\\Seen $Label1)", "(\\Flagged)", None, "(\\Seen \\Answered Work)",
                     None, "($Label1 Work)"]
            for i, f in enumerate(flags):
                self.assertEqual(c.append("INBOX", f, None, msg(i))[0], "OK")
            c.select("INBOX")
            c.store("3", "+FLAGS", "(\\Deleted)")
            c.expunge()                     # a gap in the UIDs
            c.create("Work")
            c.append("Work", "(\\Seen Project)", None, msg("w0"))
            c.append("Work", None, None, msg("w1"))
            c.subscribe("Work")
            c.create(UMLAUT)                # a name Maildir++ keeps in mUTF-7
            c.append(UMLAUT, "(\\Draft)", None, msg("u0"))
            c.subscribe(UMLAUT)
            c.logout()
            c = imaplib.IMAP4("127.0.0.1", dc.port, timeout=30)
            c.login(ALICE, PW)
            state = {box: folder_state(c, box) for box in BOXES}
            c.logout()
            uidls = pop3_uidls(pop3_port)
        finally:
            dc.stop(keep=True)
        return state, uidls, dc.maildir(ALICE)

    def test_maildir_keeps_uids_keywords_and_uidls(self):
        state, uidls, dcmail = self.dovecot_mailbox()
        self.assertEqual(len(state["INBOX"][2]), 5)
        self.assertIn("$Label1", state["INBOX"][2]["mig.0@example.test"][1])

        p143, p110 = H.free_port(), H.free_port()
        inst = self.make_instance(
            conf={"pop3d_uidl_format": "%08Xu%08Xv"},
            services=["127.0.0.1:%d inet n - n - - imap-login" % p143,
                      "imapd unix - n n - 1 imapd",
                      "127.0.0.1:%d inet n - n - - pop3-login" % p110,
                      "pop3d unix - n n - 1 pop3d"])
        inst.prepare()
        # Her password comes over as a line of Dovecot's passwd-file, in a
        # scheme Postern only verifies (salted SHA-512, as PostfixAdmin and
        # LDAP setups have them).
        salt = os.urandom(8)
        ssha = base64.b64encode(hashlib.sha512(PW.encode() + salt).digest() + salt).decode()
        inst.write("passwd", "%s:{SSHA512}%s:1000:1000::/home/alice::\n" % (ALICE, ssha))
        inst.postern("user", "rebuild", check=True)
        # The Maildir moves over as it is, Dovecot's files included.
        dest = inst.vmaildir(ALICE).rstrip("/")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copytree(dcmail, dest, symlinks=True)
        for root, dirs, files in os.walk(dest):
            for n in dirs + files:
                os.lchown(os.path.join(root, n), inst.vuid, inst.vgid)
        os.chown(dest, inst.vuid, inst.vgid)
        # alice's Sieve script (Pigeonhole's layout, beside the Maildir
        # as test_sieve has it) files into the non-ASCII folder by its
        # UTF-8 name, before any IMAP login renamed that folder.
        sdir = os.path.join(dest, "sieve")
        os.makedirs(sdir)
        with open(os.path.join(sdir, "main.sieve"), "w", encoding="utf-8") as f:
            f.write('require "fileinto";\n'
                    'if header :contains "Subject" "sieved" { fileinto "Entw\u00fcrfe"; }\n')
        os.symlink("sieve/main.sieve", os.path.join(dest, ".dovecot.sieve"))
        for q in (sdir, os.path.join(sdir, "main.sieve")):
            os.chown(q, inst.vuid, inst.vgid)
        os.lchown(os.path.join(dest, ".dovecot.sieve"), inst.vuid, inst.vgid)
        inst.start(prepare=False)
        with smtplib.SMTP("127.0.0.1", inst.port, timeout=30) as s:
            s.sendmail("sender@example.test", [ALICE], msg("sieved"))
        H.wait_maildir(os.path.join(dest, ".Entw\u00fcrfe"), 1, 30, inst)
        for p in (p143, p110):
            deadline = time.time() + 30
            while not H.port_accepts(p):
                self.assertLess(time.time(), deadline, "port %d not ready" % p)
                time.sleep(0.2)

        c = imaplib.IMAP4("127.0.0.1", p143, timeout=30)
        c.login(ALICE, PW)
        for box in BOXES:
            got = folder_state(c, box)
            if box == UMLAUT:   # and the message Sieve filed there since
                uidnext = state[box][1]
                self.assertEqual(got[2].pop("mig.sieved@example.test")[0], uidnext)
                got = (got[0], got[1] - 1, got[2])
            self.assertEqual(got, state[box], box)
        typ, data = c.lsub()
        subscribed = [d.rsplit(b'"/" ', 1)[1].strip(b'"').decode() for d in data]
        self.assertIn("Work", subscribed)
        self.assertIn(UMLAUT, subscribed)
        c.logout()
        self.assertEqual(pop3_uidls(p110), uidls)

        # New mail goes on from Dovecot's UIDNEXT.
        with smtplib.SMTP("127.0.0.1", inst.port, timeout=30) as s:
            s.sendmail("sender@example.test", [ALICE], msg("after"))
        deadline = time.time() + 30
        while True:
            c = imaplib.IMAP4("127.0.0.1", p143, timeout=30)
            c.login(ALICE, PW)
            _, _, msgs = folder_state(c, "INBOX")
            c.logout()
            if "mig.after@example.test" in msgs:
                break
            self.assertLess(time.time(), deadline, "the new message never came")
            time.sleep(0.3)
        # folder_state's STATUS runs before its FETCH: the message may have
        # come in between, so ask again now that it is there.
        c = imaplib.IMAP4("127.0.0.1", p143, timeout=30)
        c.login(ALICE, PW)
        typ, data = c.status("INBOX", "(UIDNEXT)")
        c.logout()
        uidnext = int(re.search(rb"UIDNEXT (\d+)", data[0]).group(1))
        self.assertEqual(msgs["mig.after@example.test"][0], state["INBOX"][1])
        self.assertEqual(uidnext, state["INBOX"][1] + 1)


if __name__ == "__main__":
    H.main()

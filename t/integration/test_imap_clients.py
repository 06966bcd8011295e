#!/usr/bin/env python3
"""
IMAP with the real clients administrators' users run: mbsync (isync)
two-way sync with flags and folders, offlineimap3, fetchmail over IMAP,
curl imap:// and imaps://, mutt reading and copying in batch mode
(under a pseudo-terminal, as mutt wants one), and Dovecot's doveadm
backup pulling a whole mailbox through imapc (a migration to Dovecot).

What is asserted is what a user would check: the messages the client
stored are byte-identical (line ends aside, where the client's own store
uses LF) to what local delivered into the Maildir; a flag set on one side
shows on the other after the next sync; a message deleted on one side is
gone from the other's Maildir; a folder created on one side exists on the
other.

Skips (with the reason) when a client is not installed; scripts/test.sh
installs them all.
"""

import imaplib
import os
import pty
import re
import select
import shutil
import smtplib
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import postern_harness as H  # noqa: E402
import benchlib  # noqa: E402

ALICE = "alice@example.test"
PW = "alice imap secret"


def setUpModule():
    H.require_binaries()
    for b in ("imap-login", "imapd"):
        if not os.path.exists(os.path.join(H.BUILDDIR, b)):
            raise unittest.SkipTest("%s not built" % b)


def lf(b):
    return b.replace(b"\r\n", b"\n")


def no_tuid(b):
    """mbsync marks the copies it stores with an X-TUID header of its own."""
    return re.sub(rb"(?m)^X-TUID: [^\n]*\n", b"", lf(b))


def tls_ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


class Clients(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.p143 = H.free_port()
        cls.p993 = H.free_port()
        inst = H.Instance(services=[
            "127.0.0.1:%d inet n - n - - imap-login" % cls.p143,
            "127.0.0.1:%d inet n - n - - imap-login -o imapd_tls_wrappermode=yes"
            % cls.p993,
            "imapd unix - n n - 1 imapd",
        ])
        cls.inst = inst
        # mbsync checks the name it connected to against the certificate
        inst.make_cert("127.0.0.1", level="may")
        inst.prepare()
        inst.add_user(ALICE, PW)
        inst.start(prepare=False)
        for p in (cls.p143, cls.p993):
            deadline = time.time() + 30
            while not H.port_accepts(p):
                if time.time() > deadline:
                    raise AssertionError("IMAP port %d not ready" % p)
                time.sleep(0.2)

    @classmethod
    def tearDownClass(cls):
        cls.inst.stop()
        cls.inst.cleanup(keep=os.environ.get("POSTERN_KEEP") == "1")

    # ----- helpers ---------------------------------------------------------

    def setUp(self):
        """Each test starts from an empty INBOX and no extra folders."""
        c = self.imap()
        typ, data = c.list()
        for line in data:
            name = line.decode().rsplit(' "/" ', 1)[1].strip('"')
            if name.startswith("Sync") or name.startswith("Projects"):
                c.delete('"%s"' % name)
        c.select("INBOX")
        c.store("1:*", "+FLAGS", "(\\Deleted)")
        c.expunge()
        c.logout()

    def imap(self):
        c = imaplib.IMAP4("127.0.0.1", self.p143, timeout=30)
        c.login(ALICE, PW)
        return c

    def deliver(self, n, tag):
        """n messages to alice over SMTP; returns {Subject: file bytes} once
        local has put them all in the Maildir."""
        md = self.inst.vmaildir(ALICE)
        before = set(self.files(md))
        with smtplib.SMTP("127.0.0.1", self.inst.port, timeout=30) as s:
            for i in range(n):
                body = ("Subject: %s %d\r\nMessage-ID: <%s.%d@client.test>\r\n\r\n"
                        "body of %s %d\r\n.dot line\r\nlast\r\n" % (tag, i, tag, i, tag, i))
                s.sendmail("sender@example.test", [ALICE], body)
        deadline = time.time() + 30
        while True:
            new = set(self.files(md)) - before
            if len(new) >= n:
                out = {}
                for p in new:
                    b = open(p, "rb").read()
                    out[re.search(rb"^Subject: (.*)$", b, re.M).group(1).strip()] = b
                return out
            if time.time() > deadline:
                raise AssertionError("delivery timed out\n" + self.inst.log()[-3000:])
            time.sleep(0.2)

    @staticmethod
    def files(md):
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(md, sub)
            if os.path.isdir(d):
                out += [os.path.join(d, f) for f in os.listdir(d)]
        return out

    @staticmethod
    def by_subject(paths):
        out = {}
        for p in paths:
            with open(p, "rb") as f:
                b = f.read()
            m = re.search(rb"^Subject: (.*)$", b, re.M)
            if m:
                out[m.group(1).strip()] = (p, b)
        return out

    def need(self, prog):
        if shutil.which(prog) is None:
            self.skipTest("%s not installed" % prog)

    def server_flags(self, subject, folder="INBOX"):
        c = self.imap()
        c.select('"%s"' % folder, readonly=True)
        typ, data = c.search(None, "SUBJECT", '"%s"' % subject)
        nums = data[0].split()
        if not nums:
            c.logout()
            return None
        typ, data = c.fetch(nums[0].decode(), "(FLAGS)")
        c.logout()
        return data[0].decode()

    # ----- mbsync ----------------------------------------------------------

    def mbsync(self, rc):
        r = subprocess.run(["mbsync", "-c", rc, "-a"], capture_output=True,
                           timeout=120, env=dict(os.environ, HOME=self.inst.dir))
        self.assertEqual(r.returncode, 0, (r.stdout + r.stderr).decode()[-3000:]
                         + self.inst.log()[-2000:])

    def test_mbsync_two_way(self):
        self.need("mbsync")
        sent = self.deliver(3, "mbsync")
        # Messages larger than imapd's output high-water mark, which
        # mbsync fetches with pipelined UID FETCHes.
        big = {}
        c = self.imap()
        c.create("SyncBig")
        for i in range(3):
            subj = b"big %d" % i
            big[subj] = (b"Subject: " + subj + b"\r\n\r\n" + b"".join(
                b"line %06d of a large message for mbsync.....\r\n" % k
                for k in range(8000)))
            self.assertEqual(c.append("SyncBig", None, None, big[subj])[0], "OK")
        c.logout()
        local = self.inst.path("mbsync-local")
        shutil.rmtree(local, ignore_errors=True)
        os.makedirs(local)
        rc = self.inst.path("mbsyncrc")
        with open(rc, "w") as f:
            f.write("IMAPAccount postern\nHost 127.0.0.1\nPort %d\nUser %s\n"
                    "Pass \"%s\"\nSSLType IMAPS\nCertificateFile %s\n\n"
                    "IMAPStore remote\nAccount postern\n\n"
                    "MaildirStore near\nPath %s/\nInbox %s/INBOX\nSubFolders Verbatim\n\n"
                    "Channel c\nFar :remote:\nNear :near:\nPatterns INBOX Sync*\n"
                    "Create Both\nRemove Both\nExpunge Both\nSync All\nSyncState *\n"
                    % (self.p993, ALICE, PW, self.inst.path("cert.pem"), local, local))
        self.mbsync(rc)
        got = self.by_subject(self.files(os.path.join(local, "INBOX")))
        self.assertEqual(sorted(got), sorted(sent))
        for subj, b in sent.items():
            self.assertEqual(no_tuid(got[subj][1]), lf(b), subj)
        gotbig = self.by_subject(self.files(os.path.join(local, "SyncBig")))
        self.assertEqual(sorted(gotbig), sorted(big))
        for subj, b in big.items():
            self.assertEqual(no_tuid(gotbig[subj][1]), lf(b), subj)

        # Near side: read one, delete one, file one into a new folder.
        p0, _ = got[b"mbsync 0"]
        base = os.path.basename(p0).split(":2,")[0]
        os.rename(p0, os.path.join(local, "INBOX", "cur", base + ":2,S"))
        p1, _ = got[b"mbsync 1"]
        base1 = os.path.basename(p1).split(":2,")[0]
        os.rename(p1, os.path.join(local, "INBOX", "cur", base1 + ":2,T"))
        folder = os.path.join(local, "SyncNew")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(folder, sub))
        filed = b"Subject: filed locally\nFrom: a@b.test\n\nkept\n"
        with open(os.path.join(folder, "cur", "1700000000.1.near:2,S"), "wb") as f:
            f.write(filed)
        # Far side: flag one.
        c = self.imap()
        c.select("INBOX")
        typ, data = c.search(None, "SUBJECT", '"mbsync 2"')
        c.store(data[0].decode(), "+FLAGS", "(\\Flagged)")
        c.logout()

        self.mbsync(rc)
        self.assertIn("\\Seen", self.server_flags("mbsync 0"))
        self.assertIsNone(self.server_flags("mbsync 1"), "deleted near, still far")
        md = self.inst.vmaildir(ALICE)
        self.assertNotIn(b"mbsync 1", self.by_subject(self.files(md)))
        self.assertIn("\\Seen", self.server_flags("filed locally", "SyncNew"))
        fm = self.by_subject(self.files(os.path.join(md, ".SyncNew")))
        self.assertEqual(no_tuid(fm[b"filed locally"][1]), filed)
        got = self.by_subject(self.files(os.path.join(local, "INBOX")))
        self.assertRegex(os.path.basename(got[b"mbsync 2"][0]), r":2,[A-Z]*F")

    # ----- offlineimap -----------------------------------------------------

    def test_offlineimap(self):
        self.need("offlineimap")
        sent = self.deliver(2, "oimap")
        local = self.inst.path("oimap-local")
        shutil.rmtree(local, ignore_errors=True)
        rc = self.inst.path("offlineimaprc")
        with open(rc, "w") as f:
            f.write("[general]\naccounts = a\nmetadata = %s/meta\n\n"
                    "[Account a]\nlocalrepository = L\nremoterepository = R\n\n"
                    "[Repository L]\ntype = Maildir\nlocalfolders = %s\n\n"
                    "[Repository R]\ntype = IMAP\nremotehost = 127.0.0.1\n"
                    "remoteport = %d\nremoteuser = %s\nremotepass = %s\n"
                    "ssl = no\nstarttls = no\nfolderfilter = lambda f: f == 'INBOX'\n"
                    % (self.inst.dir, local, self.p143, ALICE, PW))
        cmd = ["offlineimap", "-c", rc, "-o", "-u", "basic"]
        r = subprocess.run(cmd, capture_output=True, timeout=180)
        self.assertEqual(r.returncode, 0, (r.stdout + r.stderr).decode()[-3000:])
        got = self.by_subject(self.files(os.path.join(local, "INBOX")))
        for subj, b in sent.items():
            self.assertEqual(no_tuid(got[subj][1]), lf(b), subj)
        # Read one locally; the next run says so to the server.
        p, _ = got[b"oimap 0"]
        os.rename(p, p.replace("/new/", "/cur/").split(":2,")[0] + ":2,S")
        r = subprocess.run(cmd, capture_output=True, timeout=180)
        self.assertEqual(r.returncode, 0, (r.stdout + r.stderr).decode()[-3000:])
        self.assertIn("\\Seen", self.server_flags("oimap 0"))

    # ----- fetchmail -------------------------------------------------------

    def test_fetchmail_imap(self):
        self.need("fetchmail")
        sent = self.deliver(2, "fmimap")
        out = self.inst.path("fetched-imap")
        rc = self.inst.path("fetchmailrc-imap")
        with open(rc, "w") as f:
            f.write("poll 127.0.0.1 protocol imap port %d\n"
                    "  user \"%s\" password \"%s\" is x here\n"
                    "  ssl no sslcertck nokeep\n  mda \"/bin/sh -c 'cat >> %s'\"\n"
                    % (self.p993, ALICE, PW, out))
        os.chmod(rc, 0o600)
        r = subprocess.run(["fetchmail", "-f", rc, "--nosyslog", "-N", "-a",
                            # no Received line of its own: the bytes stay comparable
                            "--invisible"],
                           capture_output=True, timeout=120,
                           env=dict(os.environ, HOME=self.inst.dir))
        self.assertEqual(r.returncode, 0, r.stderr.decode()[-2000:])
        data = open(out, "rb").read()
        for b in sent.values():
            self.assertIn(lf(b), lf(data))
        # nokeep: gone from the server's Maildir
        self.assertEqual(self.files(self.inst.vmaildir(ALICE)), [])

    # ----- curl ------------------------------------------------------------

    def test_curl(self):
        self.need("curl")
        sent = self.deliver(1, "curl")
        want = list(sent.values())[0]
        for url in ("imap://127.0.0.1:%d/INBOX;UID=1" % self.p143,
                    "imaps://127.0.0.1:%d/INBOX;UID=1" % self.p993):
            c = self.imap()
            c.select("INBOX")
            typ, data = c.search(None, "ALL")
            typ, data = c.fetch(data[0].split()[-1].decode(), "(UID)")
            uid = re.search(rb"UID (\d+)", data[0]).group(1).decode()
            c.logout()
            url = url.replace("UID=1", "UID=" + uid)
            r = subprocess.run(["curl", "-sk", "--max-time", "30", "-u",
                                "%s:%s" % (ALICE, PW), url],
                               capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, want.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))

    # ----- mutt ------------------------------------------------------------

    def run_pty(self, argv, env, steps=(), timeout=60):
        """Run a curses client on a pty; steps are (wait-for, keys) pairs:
        each keys is typed once wait-for has appeared on the screen, as a
        user would type it."""
        pid, fd = pty.fork()
        if pid == 0:
            os.execvpe(argv[0], argv, env)
        out = b""
        steps = list(steps)
        seen = 0
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                if steps and steps[0][0] in out[seen:]:
                    seen = out.index(steps[0][0], seen) + len(steps[0][0])
                    os.write(fd, steps.pop(0)[1])
                r, _, _ = select.select([fd], [], [], 0.2)
                if r:
                    try:
                        chunk = os.read(fd, 65536)
                    except OSError:
                        break
                    if not chunk:
                        break
                    out += chunk
                wpid, status = os.waitpid(pid, os.WNOHANG)
                if wpid:
                    return os.waitstatus_to_exitcode(status), out
            # EOF or EIO on the pty: the child has closed it, so it is
            # exiting; wait for it (a bounded while) before killing.
            while time.time() < deadline:
                wpid, status = os.waitpid(pid, os.WNOHANG)
                if wpid:
                    return os.waitstatus_to_exitcode(status), out
                time.sleep(0.1)
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            return None, out
        finally:
            os.close(fd)

    def test_mutt_batch(self):
        self.need("mutt")
        sent = self.deliver(2, "mutt")
        rc = self.inst.path("muttrc")
        box = self.inst.path("mutt-copy.mbox")
        if os.path.exists(box):
            os.unlink(box)
        with open(rc, "w") as f:
            f.write('set imap_user="%s"\nset imap_pass="%s"\n'
                    'set ssl_starttls=no\nset ssl_force_tls=no\n'
                    'set certificate_file=%s/mutt-certs\nset confirmappend=no\n'
                    'set confirmcreate=no\nset mbox_type=mbox\nset header_cache=""\n'
                    'set move=no\nset quit=yes\nset sort=date\nset folder=%s\n'
                    % (ALICE, PW, self.inst.dir, self.inst.dir))
        # Tag both, copy the tagged ones to a local mbox, flag the first,
        # quit: typed on the terminal as a user types them.
        code, out = self.run_pty(
            ["mutt", "-n", "-F", rc, "-f", "imap://127.0.0.1:%d/INBOX" % self.p143],
            dict(os.environ, HOME=self.inst.dir, TERM="vt100"),
            steps=[(b"---Mutt:", b"tt;C"), (b"Copy tagged", box.encode() + b"\r1\rFq")])
        self.assertEqual(code, 0, out.decode(errors="replace")[-2000:])
        data = open(box, "rb").read()
        for b in sent.values():
            body = lf(b).split(b"\n\n", 1)[1]
            self.assertIn(body, data)
        # mutt's flag reached the server
        self.assertIn("\\Flagged", self.server_flags("mutt 0"))

    # ----- doveadm backup through imapc: a migration to Dovecot ----------

    def test_dovecot_dsync_migration(self):
        """The way an administrator moves mailboxes to Dovecot: doveadm
        backup with Postern as the imapc source. Every message arrives
        with its bytes (Dovecot's Maildir keeps LF line ends), flags,
        keywords, INTERNALDATE and folder, and the subscriptions."""
        self.need("doveadm")
        sent = self.deliver(2, "dsync")
        c = self.imap()
        self.assertEqual(c.create("Projects/2027")[0], "OK")
        old = b"Subject: dsync old\r\n\r\nfrom last year\r\n"
        self.assertEqual(c.append("Projects/2027", "(\\Flagged $Work)",
                                  '"01-Jan-2025 10:00:00 +0100"', old)[0], "OK")
        c.select("INBOX")
        c.store("1", "+FLAGS", "(\\Seen \\Answered $Done)")
        c.logout()
        try:
            dc = benchlib.Dovecot(None, "imap", 0, users=(ALICE,), extra_conf=(
                "namespace inbox {\n  inbox = yes\n  separator = /\n}\n"))
        except (RuntimeError, subprocess.CalledProcessError) as e:
            self.skipTest("no Dovecot to migrate to: %s" % e)
        try:
            r = subprocess.run(
                ["doveadm", "-c", os.path.join(dc.dir, "dovecot.conf"),
                 "-o", "imapc_host=127.0.0.1", "-o", "imapc_port=%d" % self.p143,
                 "-o", "imapc_user=%s" % ALICE, "-o", "imapc_password=%s" % PW,
                 "-o", "imapc_features=rfc822.size fetch-headers modseq",
                 "backup", "-R", "-u", ALICE, "imapc:"],
                capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:] + self.inst.log()[-2000:])
            root = os.path.join(dc.dir, "mail", ALICE)
            got = {}
            for d in (root, os.path.join(root, ".Projects.2027")):
                for sub in ("new", "cur"):
                    for f in os.listdir(os.path.join(d, sub)):
                        p = os.path.join(d, sub, f)
                        with open(p, "rb") as fh:
                            b = fh.read()
                        subj = re.search(rb"^Subject: (.*)$", b, re.M).group(1).strip()
                        got[subj] = (d, f, b, os.stat(p).st_mtime)
            self.assertEqual(sorted(got), sorted(list(sent) + [b"dsync old"]))
            for subj, b in sent.items():
                d, f, data, _ = got[subj]
                self.assertEqual(d, root)
                self.assertEqual(data, lf(b))
            def letter(d, kw):
                """Dovecot's Maildir letter for keyword kw in folder d."""
                with open(os.path.join(d, "dovecot-keywords")) as fh:
                    for ln in fh:
                        if ln.split()[1:] == [kw]:
                            return chr(ord("a") + int(ln.split()[0]))
                self.fail("%s not in %s/dovecot-keywords" % (kw, d))
            first = got[b"dsync 0"][1]
            self.assertRegex(first, r":2,[A-Za-z]*R[A-Za-z]*S")
            self.assertIn(letter(root, "$Done"), first.split(":2,")[1])
            d, f, data, mtime = got[b"dsync old"]
            self.assertEqual(d, os.path.join(root, ".Projects.2027"))
            self.assertEqual(data, lf(old))
            self.assertIn("F", f.split(":2,")[1])
            self.assertIn(letter(d, "$Work"), f.split(":2,")[1])
            self.assertEqual(mtime, 1735722000)     # 2025-01-01 09:00 UTC
            subs = open(os.path.join(root, "subscriptions")).read()
            self.assertIn("Projects\t2027", subs)
        finally:
            dc.stop()


if __name__ == "__main__":
    unittest.main()

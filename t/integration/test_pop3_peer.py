#!/usr/bin/env python3
"""
POP3 against its peer: the same Maildir (the messages of test_imap_peer,
as files with the same names and dates, LF line ends as delivered) served by Postern and by a
PRIVATE Dovecot (bench/benchlib.py's), and the same session sent to both;
every reply a client parses must say the same thing: +OK or -ERR, the
counts and octet sizes of STAT and LIST, the lines of TOP and RETR
(dot-stuffing included), what DELE, RSET and a deleted message do to
them, and which message numbers exist.

Not compared: the text after +OK/-ERR, the UIDL strings (each server's
own format; only which numbers have one), CAPA's SASL and UTF8 lines, and
pop3d_hard_error_limit (Postern closes a session after that many bad
commands, Dovecot does not: raised here so the whole script runs).
"""

import os
import re
import socket
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))

import postern_harness as H  # noqa: E402
import benchlib  # noqa: E402
from test_imap_peer import MESSAGES, USER  # noqa: E402

# A trailing " M": the reply is multi-line when it is +OK.
SCRIPT = """
CAPA M
USER {user}
PASS {pw}
STAT
LIST M
LIST 3
LIST 9
LIST 0
LIST x
UIDL M
UIDL 2
UIDL 9
TOP 1 0 M
TOP 2 3 M
TOP 3 200 M
TOP 2 -1 M
TOP 9 1 M
TOP 1 M
RETR 5 M
RETR 6 M
RETR 7 M
DELE 2
DELE 2
LIST 2
RETR 2 M
TOP 2 0 M
STAT
LIST M
UIDL M
RSET
STAT
LIST 2
DELE 1
DELE 7
NOOP
FOO
STAT
LIST M
"""


class Client:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""
        greeting = self.line()
        assert greeting.startswith(b"+OK"), greeting

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError(self.buf)
            self.buf += d
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def cmd(self, text, multi):
        self.s.sendall(text.encode() + b"\r\n")
        out = [self.line()]
        if out[0].startswith(b"+OK") and multi:
            while True:
                ln = self.line()
                if ln == b".":
                    break
                out.append(ln)
        return out


def normal(command, out):
    """What a client parses: the status, and the lines after it (UIDL
    strings and CAPA's SASL/UTF8 lines aside); for a one-line +OK of
    STAT or LIST, the numbers."""
    status = out[0].split(b" ", 1)[0]
    verb = command.split(" ", 1)[0]
    if status != b"+OK":
        return [status]
    if verb in ("STAT", "LIST") and len(out) == 1:
        return [out[0]]
    body = out[1:]
    if verb == "UIDL":
        if " " in command:
            return [status, re.sub(rb"^\+OK (\d+) \S+$", rb"\1", out[0])]
        body = [ln.split(b" ", 1)[0] for ln in body]
    if verb == "CAPA":
        body = sorted(ln for ln in body if not ln.startswith((b"SASL", b"UTF8")))
    return [status] + body


class PeerTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binaries()
        if not os.path.exists(os.path.join(H.BUILDDIR, "pop3d")):
            raise unittest.SkipTest("pop3d not built")
        cls.port = H.free_port()
        cls.inst = H.Instance(services=[
            "127.0.0.1:%d inet n - n - - pop3-login" % cls.port,
            "pop3d unix - n n - 1 pop3d"],
            conf={"pop3d_hard_error_limit": "100"})
        cls.inst.vmailbox[USER] = "example.test/peer/"
        cls.inst.prepare()
        cls.inst.add_user(USER, benchlib.PW)
        cls.dc = benchlib.Dovecot(None, "pop3", 0, users=(USER,))
        cls.put(cls.inst.vmaildir(USER), cls.inst.vuid, cls.inst.vgid,
                cls.inst.path("vmail"))
        cls.put(cls.dc.maildir(USER), cls.dc.uid, cls.dc.gid,
                os.path.dirname(cls.dc.maildir(USER)))
        cls.inst.start(prepare=False)
        benchlib.wait_port(cls.port)

    @staticmethod
    def put(maildir, uid, gid, top):
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(maildir, sub), exist_ok=True)
        for i, m in enumerate(MESSAGES):
            p = os.path.join(maildir, "cur" if i % 2 else "new",
                             "%d.M%dP1.peer%s" % (1700000000 + i, i,
                                                  ":2,S" if i % 2 else ""))
            with open(p, "wb") as f:     # as delivered: LF line ends
                f.write(m.replace(b"\r\n", b"\n"))
            os.utime(p, (1700000000 + i, 1700000000 + i))
        benchlib.chown_up(maildir, uid, gid, top)
        for root, dirs, files in os.walk(maildir):
            for n in dirs + files:
                os.chown(os.path.join(root, n), uid, gid)

    @classmethod
    def tearDownClass(cls):
        if hasattr(cls, "dc"):
            cls.dc.stop()
        cls.inst.stop()
        cls.inst.cleanup(keep=os.environ.get("POSTERN_KEEP") == "1")

    def test_session(self):
        clients = [Client(self.port), Client(self.dc.port)]
        seen = {}
        try:
            for line in SCRIPT.strip().splitlines():
                multi = line.endswith(" M")
                command = (line[:-2] if multi else line).format(
                    user=USER, pw=benchlib.PW)
                postern, dovecot = (normal(command, c.cmd(command, multi))
                                    for c in clients)
                seen.setdefault(command, postern)
                with self.subTest(command):
                    self.assertEqual(postern, dovecot, command)
        finally:
            for c in clients:
                c.s.close()
        # Something was compared: every message listed, one retrieved.
        total = sum(len(m) for m in MESSAGES)
        self.assertEqual(seen["STAT"], [b"+OK %d %d" % (len(MESSAGES), total)])
        self.assertEqual(len(seen["LIST"]), 1 + len(MESSAGES))
        self.assertGreater(len(seen["RETR 5"]), 5)


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""
IMAP against its peer: the same messages APPENDed to Postern and to a
PRIVATE Dovecot (bench/benchlib.py's: own config and Maildirs in a
temporary directory, a free loopback port), then the same commands sent
to both; every reply a client parses must say the same thing.

Compared: RFC822.SIZE and ENVELOPE, BODYSTRUCTURE and BODY (case aside:
"TEXT" and "text" are one), BODY[section] for every kind of section,
BINARY, SEARCH with every key that looks at the message, SORT, THREAD.
Not compared, because the two differ on purpose (each noted where it is
decided): obsolete or broken address syntax (lib/proto/mime.c), a
multipart without a boundary, BODY[2.1] of a part that is no message
(RFC 3501's numbering has no such part), a message without a final
CRLF (Postern serves what RFC822.SIZE counts, imapd/cmd_fetch.c), the
body of a multipart nested in another (RFC 2046 5.1.1 gives the CRLF
before the outer boundary to that boundary; Dovecot keeps it), and
SORT's collation (Postern uses i;ascii-casemap, RFC 5256's default,
Dovecot i;unicode-casemap) on names with non-ASCII letters.

This is how the bugs of 2026-12-07 were found: a parameter written
name*= losing its star, comments inside <...>, SEARCH TEXT not seeing
the headers of the parts.
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

USER = "peer@example.test"


def crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n").encode()


MESSAGES = [crlf(m) for m in (
    """From: "Doe, John" <john@example.com>
To: alice@example.test, "Bob B." <bob@example.org>
Cc: Friends: carl@example.net, dan@example.net;, eve@example.net
Subject: =?UTF-8?B?SGVsbG8gd8O2cmxk?= and more
Date: Mon, 7 Dec 2026 10:00:00 +0100
Message-ID: <m1@example.com>
In-Reply-To: <m0@example.com>
Reply-To: replies@example.com
MIME-Version: 1.0
Content-Type: text/plain; charset="utf-8"; format=flowed
Content-Transfer-Encoding: 8bit

Hello w\u00f6rld, this is the first message.
Second line with searchword banana.
""",
    """From: sender@example.com
To: undisclosed-recipients:;
Subject: multipart mixed
Date: Tue, 8 Dec 2026 11:00:00 -0500
Message-ID: <m2@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

preamble text
--outer
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=us-ascii

plain part apple
--inner
Content-Type: text/html; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

<p>html part caf=E9 apple</p>
--inner--
--outer
Content-Type: application/pdf; name="report.pdf"
Content-Disposition: attachment; filename*=UTF-8''r%C3%A9port.pdf
Content-Transfer-Encoding: base64
Content-ID: <part3@example.com>
Content-Description: The report
Content-Language: en, de
Content-Location: http://example.com/r.pdf

SGVsbG8gUERGIQ==
--outer--
epilogue
""",
    """From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>
To: alice@example.test
Subject: Fwd: inner
Date: Wed, 9 Dec 2026 12:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain

see attached
--b1
Content-Type: message/rfc822

From: inner@example.com
To: someone@example.com
Subject: the inner message
Date: Thu, 1 Jan 2026 00:00:00 +0000
Message-ID: <inner@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b2"

--b2
Content-Type: text/plain

inner text cherry
--b2
Content-Type: text/enriched

inner enriched
--b2--

--b1--
""",
    """From: a@example.com
Subject: broken multipart
Date: Thu, 10 Dec 2026 09:00:00 +0000
Content-Type: multipart/mixed; boundary=zz

--zz
Content-Type: text/plain

part one, never closed
--zz
Content-Type: image/png
Content-Transfer-Encoding: base64

iVBORw0KGgo=
""",
    """From: b@example.com
Cc: c1@example.net
CC: c2@example.net
Subject: text no charset
Date: Fri, 11 Dec 2026 09:00:00 +0000
Content-Type: TEXT/Plain
Content-Disposition: inline

short
""",
    """From: d@example.com
Subject: digest
Date: Sat, 12 Dec 2026 09:00:00 +0000
Content-Type: multipart/digest; boundary="d"

--d

From: x@example.com
Subject: digest part 1

digest one
--d
Content-Type: text/plain

not rfc822 in digest
--d--
""",
    """From: e@example.com
Subject: Re: multipart mixed
Date: Sun, 13 Dec 2026 09:00:00 +0000
Message-ID: <m7@example.com>
References: <m2@example.com>
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

=E9t=E9 soft=
break here durian nul:\x00:
""",
)]

FETCHES = [
    "FETCH 1:* (RFC822.SIZE ENVELOPE)",
    "FETCH 1:* BODYSTRUCTURE",
    "FETCH 1:* BODY",
    "FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM X-NONE)] BODY.PEEK[TEXT]<0.10>)",
    "FETCH 2 (BODY.PEEK[1.1] BODY.PEEK[1.2] BODY.PEEK[1.2.MIME] BODY.PEEK[2] BODY.PEEK[2.MIME])",
    "FETCH 3 (BODY.PEEK[2] BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2.1] "
    "BODY.PEEK[2.2.MIME] BODY.PEEK[2.MIME])",
    "FETCH 3 (BODY.PEEK[2.HEADER.FIELDS (SUBJECT)] BODY.PEEK[2.HEADER.FIELDS.NOT (SUBJECT FROM)])",
    "FETCH 4 (BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[2.MIME])",
    "FETCH 6 (BODY.PEEK[1] BODY.PEEK[1.HEADER] BODY.PEEK[1.TEXT] BODY.PEEK[2])",
    "FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1.2])",
    "FETCH 7 (BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[TEXT])",
    "FETCH 1 (BODY.PEEK[]<0.20> RFC822.HEADER)",
    "FETCH 7 BODY.PEEK[]",
]

SEARCHES = [
    "SUBJECT multipart", "SUBJECT w\u00f6rld", "FROM john", "FROM pete", "TO bob",
    "CC carl", "HEADER Message-ID m2", "HEADER X-None \"\"", "BODY banana",
    "BODY apple", "BODY caf\u00e9", "TEXT cherry", "TEXT report.pdf",
    "TEXT attachment", "TEXT multipart/alternative", "BODY \u00e9t\u00e9",
    "LARGER 600", "SMALLER 300", "OR SUBJECT digest SUBJECT broken",
    "NOT SUBJECT multipart", "2:4,*", "UID 3:*", "SENTBEFORE 9-Dec-2026",
    "SENTON 8-Dec-2026", "SENTSINCE 11-Dec-2026", "KEYWORD $Peer",
    "UNKEYWORD $Peer", "FLAGGED", "UNSEEN",
]

ORDERS = [
    "SORT (SUBJECT) UTF-8 ALL", "SORT (REVERSE SUBJECT) UTF-8 ALL",
    "SORT (DATE) UTF-8 ALL", "SORT (FROM DATE) UTF-8 ALL", "SORT (SIZE) UTF-8 ALL",
    "SORT (TO) UTF-8 NOT TO undisclosed", "SORT (DISPLAYFROM) UTF-8 ALL",
    "THREAD REFERENCES UTF-8 ALL", "THREAD ORDEREDSUBJECT UTF-8 ALL",
]


class Client:
    """Sends one command at a time (literals as UTF-8 synchronizing ones)
    and returns the untagged replies, a literal read by its count."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buf = b""
        self.n = 0
        self.line()

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError(self.buf)
            self.buf += d
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def reply(self):
        out = ln = self.line()
        while True:
            m = re.search(rb"\{(\d+)\}$", ln)
            if not m:
                return out
            n = int(m.group(1))
            while len(self.buf) < n:
                self.buf += self.s.recv(65536)
            lit, self.buf = self.buf[:n], self.buf[n:]
            ln = self.line()
            out += b"\r\n" + lit + ln

    def cmd(self, text, literal=None):
        self.n += 1
        tag = b"p%d" % self.n
        if literal is None:
            self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        else:
            self.s.sendall(tag + b" " + text.encode() + b" {%d}\r\n" % len(literal))
            ln = self.line()
            if not ln.startswith(b"+"):
                raise AssertionError("no continuation: %r" % ln)
            self.s.sendall(literal + b"\r\n")
        out = []
        while True:
            ln = self.reply()
            if ln.startswith(tag + b" "):
                if not ln.startswith(tag + b" OK"):
                    raise AssertionError("%s: %r" % (text, ln))
                return out
            out.append(ln)


def normal(lines):
    """The untagged FETCH/SEARCH/SORT/THREAD replies, with what RFC 3501
    leaves to the server made one: case (BODYSTRUCTURE's "7BIT"/"7bit"),
    literal8 against literal when there is no NUL."""
    out = []
    for ln in lines:
        if re.match(rb"\* (\d+ FETCH|SEARCH|SORT|THREAD|ESEARCH)\b", ln):
            out.append(ln.replace(b"~{", b"{").lower())
    return out


class PeerTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        H.require_binaries()
        if not os.path.exists(os.path.join(H.BUILDDIR, "imapd")):
            raise unittest.SkipTest("imapd not built")
        cls.port = H.free_port()
        cls.inst = H.Instance(services=[
            "127.0.0.1:%d inet n - n - - imap-login" % cls.port,
            "imapd unix - n n - 1 imapd"])
        cls.inst.vmailbox[USER] = "example.test/peer/"
        cls.inst.prepare()
        cls.inst.add_user(USER, benchlib.PW)
        cls.inst.start(prepare=False)
        cls.dc = benchlib.Dovecot(None, "imap", 0, users=(USER,))
        benchlib.wait_port(cls.port)
        cls.clients = []
        for port in (cls.port, cls.dc.port):
            c = Client(port)
            c.cmd('LOGIN "%s" "%s"' % (USER, benchlib.PW))
            for m in MESSAGES:
                c.cmd("APPEND INBOX", m)
            c.cmd("SELECT INBOX")
            c.cmd("STORE 2,5 +FLAGS.SILENT (\\Flagged $Peer)")
            cls.clients.append(c)

    @classmethod
    def tearDownClass(cls):
        for c in getattr(cls, "clients", []):
            c.s.close()
        if hasattr(cls, "dc"):
            cls.dc.stop()
        cls.inst.stop()
        cls.inst.cleanup(keep=os.environ.get("POSTERN_KEEP") == "1")

    def same(self, command, literal=None):
        postern, dovecot = (normal(c.cmd(command, literal)) for c in self.clients)
        self.assertTrue(postern, "%s: no reply to compare" % command)
        self.assertEqual(postern, dovecot, command)

    def test_fetch(self):
        for f in FETCHES:
            with self.subTest(f):
                self.same(f)

    def test_search(self):
        for key in SEARCHES:
            with self.subTest(key):
                if any(ord(ch) > 127 for ch in key):
                    head, word = key.rsplit(" ", 1)
                    self.same("SEARCH CHARSET UTF-8 " + head, word.encode())
                else:
                    self.same("SEARCH " + key)

    def test_search_local_charset(self):
        # Clients that search in their own charset: the string converted
        # to UTF-8 finds what its UTF-8 spelling finds, on both servers.
        for cs, key, word in (("ISO-8859-1", "BODY", "caf\u00e9"),
                              ("ISO-8859-1", "SUBJECT", "w\u00f6rld"),
                              ("windows-1252", "TEXT", "\u00e9t\u00e9"),
                              ("KOI8-R", "BODY", "banana")):
            with self.subTest(cs=cs, word=word):
                self.same("SEARCH CHARSET %s %s" % (cs, key), word.encode(cs))

    def test_sort_thread(self):
        for o in ORDERS:
            with self.subTest(o):
                self.same(o)


if __name__ == "__main__":
    unittest.main()

#!/usr/bin/env python3
"""
The table types read from text (cidr:, regexp:, pcre:, texthash:,
inline:{...}), as an administrator meets them: "postern map query", "map
list" and "map build" on each, with their exit codes and file:line errors;
and a pcre: table in a running system (virtual_alias_maps) rewriting
addresses, picked up again when the file changes (no reload), and turning
every lookup into a temporary failure while it has a bad line.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

SENDER = "sender@remote.test"


def setUpModule():
    H.require_binaries()


class MapCommands(H.InstanceTestCase):
    def setUp(self):
        self.inst = self.make_instance(privileged=False)
        self.inst.write_config()

    def table(self, name, text):
        self.inst.write(name, text)
        return self.inst.path(name)

    def query(self, spec, *keys):
        r = self.inst.postern("map", "query", spec, *keys)
        return r.returncode, r.stdout.splitlines(), r.stderr

    def test_cidr(self):
        p = self.table("clients.cidr",
                       "# access by client address\n"
                       "192.0.2.1          OK\n"
                       "192.0.2.0/24       REJECT\n"
                       "if 10.0.0.0/8\n"
                       "!10.1.0.0/16       DUNNO\n"
                       "endif\n"
                       "2001:db8::/32      REJECT v6\n")
        rc, out, err = self.query("cidr:" + p, "192.0.2.1", "192.0.2.200",
                                  "10.9.9.9", "2001:DB8:0::42", "[192.0.2.7]")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, ["OK", "REJECT", "DUNNO", "REJECT v6", "REJECT"])
        rc, out, _ = self.query("cidr:" + p, "10.1.2.3")
        self.assertEqual((rc, out), (1, []))

    def test_regexp_and_pcre(self):
        text = ("/^(.+)-(sales|support)@example\\.com$/  $2+$1@example.com\n"
                "!/@/                                    bare\n"
                "if /^admin@/\n"
                "/\\.org$/                                 admin-org\n"
                "endif\n"
                "/^Exact@x$/i                            exact\n")
        for t in ("regexp", "pcre"):
            p = self.table("virtual." + t, text)
            rc, out, err = self.query(t + ":" + p, "Bob-Sales@EXAMPLE.com",
                                      "joe", "admin@example.org", "Exact@x")
            self.assertEqual(rc, 0, (t, err))
            self.assertEqual(out, ["Sales+Bob@example.com", "bare",
                                   "admin-org", "exact"], t)
            rc, out, _ = self.query(t + ":" + p, "exact@x")
            self.assertEqual((rc, out), (1, []), t)
        # a flag only PCRE has
        p = self.table("dotall.pcre", "/^a.b$/s dotall\n")
        self.assertEqual(self.query("pcre:" + p, "a\nb")[:2], (0, ["dotall"]))
        p = self.table("dotall.regexp", "/^a.b$/s dotall\n")
        rc, _, err = self.query("regexp:" + p, "axb")
        self.assertEqual(rc, 78)
        self.assertIn("dotall.regexp:1: unknown regexp flag 's'", err)

    def test_texthash_and_inline(self):
        p = self.table("transport", "example.net  smtp:[192.0.2.25]\n"
                                    "Slow.Example smtp:[192.0.2.26]:2525\n")
        self.assertEqual(self.query("texthash:" + p, "SLOW.example")[:2],
                         (0, ["smtp:[192.0.2.26]:2525"]))
        self.assertFalse(os.path.exists(p + ".lmdb"))
        spec = "inline:{ a.example=local, { b.example = smtp:[192.0.2.9] } }"
        self.assertEqual(self.query(spec, "b.example", "A.EXAMPLE")[:2],
                         (0, ["smtp:[192.0.2.9]", "local"]))
        r = self.inst.postern("map", "list", "texthash:" + p)
        self.assertEqual((r.returncode, r.stdout),
                         (0, "example.net smtp:[192.0.2.25]\n"
                             "slow.example smtp:[192.0.2.26]:2525\n"))
        r = self.inst.postern("map", "list", spec)
        self.assertEqual(r.stdout, "a.example local\nb.example smtp:[192.0.2.9]\n")

    def test_build_list_and_errors(self):
        good = self.table("ok.cidr", "::/0 v6\n")
        r = self.inst.postern("map", "build", "cidr:" + good)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("nothing to build", r.stderr)
        self.assertFalse(os.path.exists(good + ".lmdb"))
        r = self.inst.postern("map", "list", "cidr:" + good)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot be listed", r.stderr)

        bad = self.table("bad.pcre", "/ok/ fine\n\n/(unclosed/ x\n")
        for cmd in (["map", "build", "pcre:" + bad],
                    ["map", "query", "pcre:" + bad, "ok"]):
            r = self.inst.postern(*cmd)
            self.assertEqual(r.returncode, 78, (cmd, r.stderr))
            self.assertIn(bad + ":3: bad regular expression /(unclosed/", r.stderr)
        r = self.inst.postern("map", "query", "cidr:" + self.inst.path("none"), "x")
        self.assertEqual(r.returncode, 74)
        self.assertIn("No such file", r.stderr)
        r = self.inst.postern("map", "build", "cidr:" + self.inst.path("none"))
        self.assertEqual(r.returncode, 74)

    def test_check_loads_text_tables(self):
        """postern check loads each text table: a bad line is an error
        naming file:line, an inline table with blanks is one table."""
        bad = self.table("access.cidr", "192.0.2.0/24 OK\n192.0.2.1/24 REJECT\n")
        self.inst.params["transport_maps"] = (
            "inline:{ {a.example = smtp:[192.0.2.9]}, b.example=local }, "
            "texthash:" + self.table("t", "c.example local\n"))
        self.inst.params["relay_recipient_maps"] = "cidr:" + bad
        self.inst.prepare()
        r = self.inst.postern("check")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("relay_recipient_maps: table cidr:%s: %s:2: non-null host "
                      "address bits" % (bad, bad), r.stderr)
        self.assertNotIn("transport_maps", r.stderr)
        self.table("access.cidr", "192.0.2.0/24 OK\n")
        r = self.inst.postern("check")
        self.assertEqual(r.returncode, 0, r.stderr)


class PcreVirtualAliases(H.InstanceTestCase):
    """virtual_alias_maps = pcre:... in a running instance."""

    def setUp(self):
        self.inst = self.make_instance(privileged=False)
        self.pcre = self.inst.path("virtual.pcre")
        self.inst.params["virtual_alias_maps"] = "pcre:" + self.pcre
        self.inst.write("virtual.pcre",
                        "/^team-(.+)@example\\.test$/  ${1}@example.test\n")
        self.inst.start()

    def rcpt(self, addr):
        s = H.smtp_client(self.inst)
        try:
            code, _ = s.mail(SENDER)
            self.assertEqual(code, 250)
            return s.rcpt(addr)
        finally:
            s.close()

    def send(self, rcpt, subject):
        msg = H.make_message(SENDER, [rcpt], subject, "body\r\n")
        s = H.smtp_client(self.inst)
        try:
            self.assertEqual(s.sendmail(SENDER, [rcpt], msg), {})
        finally:
            s.close()

    def rewrite(self, text):
        before = os.stat(self.pcre)
        self.inst.write("virtual.pcre", text)
        # a change is seen by inode, size or mtime; make sure one moved
        if os.stat(self.pcre).st_mtime_ns == before.st_mtime_ns:
            os.utime(self.pcre, ns=(before.st_atime_ns,
                                    before.st_mtime_ns + 1000000))

    def test_rewrite_reload_and_bad_line(self):
        self.send("team-bob@example.test", "via pcre")
        msgs = H.wait_maildir(self.inst.vmaildir("bob@example.test"), 1, 40,
                              self.inst)
        self.assertIn(b"Subject: via pcre", msgs[0])

        # the file changes: the next lookups use it, no reload
        self.rewrite("# everyone in the team goes to carol now\n"
                     "/^team-.+@example\\.test$/  carol@example.test\n")
        self.send("team-bob@example.test", "after the change")
        msgs = H.wait_maildir(self.inst.vmaildir("carol@example.test"), 1, 40,
                              self.inst)
        self.assertIn(b"Subject: after the change", msgs[0])
        self.assertEqual(len(H.maildir_messages(
            self.inst.vmaildir("bob@example.test"))), 1)

        # a bad line: not half a table, but a temporary failure for every
        # address the table is asked about, and file:line in the log
        mark = self.inst.log_mark()
        self.rewrite("/^team-(.+)@example\\.test$/  $2@example.test\n")
        code, text = self.rcpt("team-bob@example.test")
        self.assertEqual(code, 451, text)
        code, text = self.rcpt("alice@example.test")
        self.assertEqual(code, 451, text)
        self.inst.wait_log(r"virtual\.pcre:1: \$2: no such group in the pattern; "
                           r"lookups fail temporarily until it is fixed",
                           since=mark)

        self.rewrite("/^team-(.+)@example\\.test$/  ${1}@example.test\n")
        code, text = self.rcpt("team-alice@example.test")
        self.assertEqual(code, 250, text)
        self.inst.wait_log(r"virtual\.pcre is available now", since=mark)


class TexthashVirtualDomain(H.InstanceTestCase):
    """A texthash: virtual_alias_maps makes its domains virtual alias
    domains (virtual_alias_domains = $virtual_alias_maps), as lmdb does."""

    def test_alias_domain_from_texthash(self):
        self.inst = self.make_instance(privileged=False)
        self.inst.params["virtual_alias_maps"] = "texthash:" + self.inst.path("valias")
        self.inst.write("valias", "team@alias.test  bob@example.test\n")
        self.inst.start()
        msg = H.make_message(SENDER, ["team@alias.test"], "alias domain", "b\r\n")
        s = H.smtp_client(self.inst)
        try:
            self.assertEqual(s.sendmail(SENDER, ["team@alias.test"], msg), {})
        finally:
            s.close()
        msgs = H.wait_maildir(self.inst.vmaildir("bob@example.test"), 1, 40,
                              self.inst)
        self.assertIn(b"Subject: alias domain", msgs[0])


if __name__ == "__main__":
    H.main()

#!/usr/bin/env python3
"""
The manual pages against the programs: postern.conf(5) documents every
parameter "postern conf -d" knows, and no other, with the same defaults;
postern(1) covers every sub-command "postern --help" lists; master.conf(5)
exists and is installed with the others; postern-tables(5) describes
exactly the table types "postern map query" accepts, and is installed.
"""

import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

DOC = os.path.join(H.SRCDIR, "doc")
POSTERN = os.path.join(H.BUILDDIR, "postern")


def setUpModule():
    H.require_binaries()


def section(text, name):
    """The lines of one .SH section of a man page."""
    lines = text.splitlines()
    start = lines.index(".SH %s" % name)
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].startswith(".SH ")), len(lines))
    return lines[start + 1:end]


def documented_params(lines):
    """{name: default or None} from the .TP/.TQ tags ".B name [= default]"."""
    res = {}
    for prev, line in zip(lines, lines[1:]):
        m = re.match(r"^\.B ([A-Za-z0-9_]+)(?: = (.*))?$", line)
        if prev in (".TP", ".TQ") and m:
            res[m.group(1)] = m.group(2)
    return res


class ManPages(unittest.TestCase):
    def test_postern_conf_documents_every_parameter(self):
        with open(os.path.join(DOC, "postern.conf.5")) as f:
            doc = documented_params(section(f.read(), "PARAMETERS"))
        # an empty configuration directory: only the table's defaults
        confdir = H.tempfile.mkdtemp(prefix="postern-doc-")
        try:
            open(os.path.join(confdir, "postern.conf"), "w").close()
            r = subprocess.run([POSTERN, "-c", confdir, "conf", "-d"],
                               capture_output=True, text=True, check=True)
        finally:
            os.unlink(os.path.join(confdir, "postern.conf"))
            os.rmdir(confdir)
        table = dict(l.split(" =", 1) for l in r.stdout.splitlines())
        table = {k: v.strip() for k, v in table.items()}
        self.assertEqual(sorted(set(table) - set(doc)), [],
                         "parameters postern.conf(5) does not document")
        self.assertEqual(sorted(set(doc) - set(table)), [],
                         "documented parameters postern conf does not know")
        wrong = {k: (v, table[k]) for k, v in doc.items()
                 if v is not None and v != table[k]}
        self.assertEqual(wrong, {}, "documented default != table default")

    def test_postern_1_covers_every_subcommand(self):
        r = subprocess.run([POSTERN, "--help"], capture_output=True, text=True,
                           check=True)
        cmds = re.findall(r"^  ([a-z][a-z-]*) ", r.stdout, re.M)
        self.assertIn("user", cmds)
        with open(os.path.join(DOC, "postern.1")) as f:
            page = f.read().replace("\\-", "-")
        missing = [c for c in cmds
                   if not re.search(r'^\.B[RI]? "?%s\b' % re.escape(c), page, re.M)]
        self.assertEqual(missing, [], "sub-commands postern(1) does not cover")
        for opt in ("--help", "--version", "conf -e", "conf -d"):
            self.assertRegex(page, r"(?m)^\.BR? .*%s" % re.escape(opt))

    def test_master_conf_page(self):
        with open(os.path.join(DOC, "master.conf.5")) as f:
            page = f.read()
        for word in ("service", "type", "private", "unpriv", "chroot", "wakeup",
                     "maxproc", "command", r"\-o"):
            self.assertIn(word, page)
        with open(os.path.join(H.SRCDIR, "cmake", "PosternInstall.cmake")) as f:
            self.assertIn("doc/master.conf.5", f.read())

    def test_tables_page_matches_map_types(self):
        with open(os.path.join(DOC, "postern-tables.5")) as f:
            lines = section(f.read(), "TYPES")
        documented = {m.group(1) for m in
                      (re.match(r"^\.BI? ([a-z]+):", l) for l in lines) if m}
        self.assertEqual(documented, {"lmdb", "texthash", "inline", "cidr",
                                      "regexp", "pcre", "static", "unix"})
        confdir = H.tempfile.mkdtemp(prefix="postern-doc-")
        try:
            open(os.path.join(confdir, "postern.conf"), "w").close()
            for t in sorted(documented) + ["nosuchtype"]:
                name = {"inline": "{a=b}", "static": "x",
                        "unix": "passwd.byname"}.get(t, "/nonexistent")
                r = subprocess.run([POSTERN, "-c", confdir, "map", "query",
                                    "%s:%s" % (t, name), "a"],
                                   capture_output=True, text=True)
                unsupported = "unsupported map type" in r.stderr
                self.assertEqual(unsupported, t == "nosuchtype",
                                 (t, r.stderr))
        finally:
            os.unlink(os.path.join(confdir, "postern.conf"))
            os.rmdir(confdir)
        with open(os.path.join(H.SRCDIR, "cmake", "PosternInstall.cmake")) as f:
            self.assertIn("doc/postern-tables.5", f.read())


if __name__ == "__main__":
    H.main()

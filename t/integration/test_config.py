#!/usr/bin/env python3
"""
The postern command: conf, map build/query/list, start-fg with broken
configuration files (errors name file and line), status and stop.
"""

import os
import pwd
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402


def setUpModule():
    H.require_binaries()


class Conf(H.InstanceTestCase):
    def setUp(self):
        self.inst = self.make_instance()
        self.inst.prepare()

    def test_conf_all(self):
        r = self.inst.postern("conf", check=True)
        lines = r.stdout.splitlines()
        self.assertIn("myhostname = mx.example.test", lines)
        self.assertIn("queue_directory = %s" % self.inst.path("queue"), lines)
        # defaults are listed too, sorted by name
        names = [l.split(" = ", 1)[0] for l in lines if " = " in l]
        self.assertEqual(names, sorted(names))
        self.assertIn("message_size_limit", names)
        self.assertIn("smtpd_banner", names)

    def test_conf_one_and_expansion(self):
        r = self.inst.postern("conf", "myhostname", check=True)
        self.assertEqual(r.stdout.strip(), "myhostname = mx.example.test")
        # as postconf: values as written, -x expands them
        r = self.inst.postern("conf", "mydestination", check=True)
        self.assertEqual(r.stdout.strip(), "mydestination = localhost, $myhostname")
        r = self.inst.postern("conf", "-x", "mydestination", check=True)
        self.assertEqual(r.stdout.strip(), "mydestination = localhost, mx.example.test")
        r = self.inst.postern("conf", "no_such_parameter_xyz")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no_such_parameter_xyz", r.stderr)

    def test_conf_nondefault(self):
        r = self.inst.postern("conf", "-n", check=True)
        names = [l.split(" = ", 1)[0] for l in r.stdout.splitlines()]
        self.assertIn("myhostname", names)
        self.assertIn("virtual_mailbox_maps", names)
        self.assertNotIn("smtpd_banner", names)

    def test_conf_defaults(self):
        r = self.inst.postern("conf", "-d", check=True)
        lines = r.stdout.splitlines()
        names = [l.split(" =", 1)[0] for l in lines]
        self.assertEqual(names, sorted(names))
        # the table's defaults, not this instance's values
        self.assertIn("queue_directory = /var/spool/postern", lines)
        self.assertIn("alias_maps = lmdb:/etc/aliases", lines)
        self.assertIn("mydestination = $myhostname, localhost.$mydomain, localhost",
                      lines)
        r = self.inst.postern("conf", "-d", "queue_directory", check=True)
        self.assertEqual(r.stdout, "queue_directory = /var/spool/postern\n")
        r = self.inst.postern("conf", "-d", "no_such_parameter_xyz")
        self.assertEqual(r.returncode, 1)

    def test_conf_edit(self):
        path = self.inst.path("postern.conf")
        with open(path, "a") as f:
            f.write("# keep this comment\nsmtpd_banner = $myhostname\n"
                    "    ESMTP continued\nrelayhost = [a.example]\n"
                    "relayhost = [b.example]\n")
        os.chmod(path, 0o640)
        self.inst.postern("conf", "-e", "smtpd_banner=$myhostname ready",
                          "relayhost = [c.example]", "message_size_limit=2000000",
                          check=True)
        with open(path) as f:
            text = f.read()
        self.assertIn("# keep this comment\nsmtpd_banner = $myhostname ready\n"
                      "relayhost = [c.example]\n", text)
        self.assertNotIn("ESMTP continued", text)
        self.assertNotIn("b.example", text)
        self.assertTrue(text.endswith("message_size_limit = 2000000\n"), text)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o640)
        r = self.inst.postern("conf", "smtpd_banner", "relayhost",
                              "message_size_limit", check=True)
        self.assertEqual(r.stdout, "smtpd_banner = $myhostname ready\n"
                         "relayhost = [c.example]\nmessage_size_limit = 2000000\n")
        self.assertNotIn("overriding", r.stderr)
        r = self.inst.postern("conf", "-e", "no_equals_sign")
        self.assertEqual(r.returncode, 64)

    def test_help_and_version(self):
        out = subprocess.run([os.path.join(H.BUILDDIR, "postern"), "--help"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0)
        for cmd in ("start", "reload", "check", "conf", "map", "queue", "user"):
            self.assertRegex(out.stdout, r"\n  %s " % cmd)
        with open(os.path.join(H.SRCDIR, "CMakeLists.txt")) as f:
            version = re.search(r"project\(postern VERSION ([0-9.]+)", f.read()).group(1)
        out = subprocess.run([os.path.join(H.BUILDDIR, "postern"), "--version"],
                             capture_output=True, text=True)
        self.assertEqual((out.returncode, out.stdout), (0, "postern %s\n" % version))
        r = self.inst.postern("conf", "mail_version", check=True)
        self.assertEqual(r.stdout, "mail_version = %s\n" % version)

    @H.skip_unless_root("needs another user than the log's owner")
    def test_unprivileged_mailq_no_log_warning(self):
        self.inst.write("maillog", "", mode=0o600)
        r = subprocess.run([os.path.join(H.BUILDDIR, "mailq"), "-C", self.inst.dir],
                           capture_output=True, text=True, user="nobody",
                           group="nogroup", extra_groups=[], cwd="/")
        self.assertNotIn("log file", r.stderr)
        self.assertNotIn("warning", r.stderr)

    def test_bad_postern_conf_line(self):
        text = self.inst.conf_text()
        n = len(text.splitlines()) + 1
        self.inst.write("postern.conf", text + "this line has no equals sign\n")
        r = self.inst.postern("start-fg", timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("postern.conf:%d:" % n, r.stderr)
        self.assertFalse(H.port_accepts(self.inst.port))

    def test_check(self):
        r = self.inst.postern("check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.inst.write("postern.conf", self.inst.conf_text() + "message_size_limit = lots\n")
        r = self.inst.postern("check")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("message_size_limit", r.stderr)

    def test_inet_interfaces(self):
        """A listener without an address listens where inet_interfaces
        says (a null client's loopback-only must not face the network);
        what Postern cannot do with it (a list, a name) is an error in
        check and at start, not a silent listen on every address."""
        inst = self.make_instance(conf={"inet_interfaces": "127.0.0.2"})
        bare = H.free_port()
        inst.services.append("%d inet n - n - - smtpd" % bare)
        inst.start()
        inst.wait_smtp(bare, 20, host="127.0.0.2")
        self.assertFalse(H.port_accepts(bare, "127.0.0.1"),
                         "a bare port listened beyond inet_interfaces")
        self.assertTrue(H.port_accepts(inst.port))   # an address of its own
        inst.stop()
        for bad in ("127.0.0.1, 127.0.0.2", "mail.example.test"):
            inst.params["inet_interfaces"] = bad
            inst.write_config()
            r = inst.postern("check")
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertIn("inet_interfaces", r.stderr)
            r = inst.postern("start-fg", timeout=30)
            self.assertNotEqual(r.returncode, 0, bad)
            self.assertIn("inet_interfaces", r.stderr)
            self.assertFalse(H.port_accepts(bare, "127.0.0.1"))

    def test_check_tls_certificates(self):
        """postern check loads the TLS certificates as the daemons will: a
        service that requires TLS (encrypt, wrapper mode) and cannot load
        them is an error - it would die at start, over and over - and one
        that may do without TLS gets a warning."""
        inst = self.make_instance()
        cert, key = inst.make_cert(level="may")
        imaps = H.free_port()
        inst.services.append("127.0.0.1:%d inet n - n - - imap-login "
                             "-o imapd_tls_wrappermode=yes" % imaps)
        inst.params.update({"imapd_tls_cert_file": cert, "imapd_tls_key_file": key})
        inst.prepare()

        def check():
            inst.write_config()
            inst.write("master.conf", inst.master_text())
            return inst.postern("check")

        r = check()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("cannot load", r.stderr)
        # smtpd at "may" with a missing key: it runs, without TLS
        inst.params["smtpd_tls_key_file"] = inst.path("no-such-key.pem")
        r = check()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stderr, r"warning: .*service 127\.0\.0\.1:%d: cannot load "
                         r".*would run without TLS" % inst.port)
        # ... at "encrypt" it would not start
        inst.params["smtpd_tls_security_level"] = "encrypt"
        r = check()
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r"error: .*service 127\.0\.0\.1:%d: cannot load "
                         r".*TLS is required" % inst.port)
        inst.params["smtpd_tls_key_file"] = key
        # imaps (wrapper mode) without a certificate at all
        inst.params["imapd_tls_cert_file"] = ""
        r = check()
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stderr, r"error: .*service 127\.0\.0\.1:%d: TLS is required "
                         r"\(imapd_tls_wrappermode\) but imapd_tls_cert_file" % imaps)
        r = inst.postern("start-fg", timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertFalse(H.port_accepts(inst.port))

    def test_root_owned_data_directory(self):
        """A data_directory root made (a package's mkdir, scripts/demo.sh)
        is what master hands to mail_owner at start: check and start take
        it. One another user owns is still refused."""
        if os.geteuid() != 0:
            self.skipTest("needs root")
        inst = self.make_instance(privileged=True)
        inst.prepare()
        d = inst.params["data_directory"]
        os.makedirs(d, exist_ok=True)
        os.chown(d, 0, 0)
        r = inst.postern("check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("data_directory", r.stderr)
        inst.start(prepare=False)
        owner = pwd.getpwnam(H.MAIL_OWNER)
        self.assertEqual((os.stat(d).st_uid, os.stat(d).st_gid),
                         (owner.pw_uid, owner.pw_gid))
        inst.stop()
        os.chown(d, 65534, 65534)
        r = inst.postern("check")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("data_directory %s is owned by" % d, r.stderr)
        r = inst.postern("start-fg", timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not starting", r.stderr)

    def test_bad_master_conf_line(self):
        text = self.inst.master_text()
        n = len(text.splitlines()) + 1
        self.inst.write("master.conf", text + "broken inet\n")
        r = self.inst.postern("start-fg", timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("master.conf:%d:" % n, r.stderr)
        self.assertFalse(H.port_accepts(self.inst.port))

    def test_map_build_query_list(self):
        m = "lmdb:" + self.inst.path("vmailbox")
        self.assertTrue(os.path.exists(self.inst.path("vmailbox.lmdb")))
        r = self.inst.postern("map", "query", m, "alice@example.test", check=True)
        self.assertEqual(r.stdout.strip(), "example.test/alice/")
        r = self.inst.postern("map", "query", m, "ALICE@Example.TEST", check=True)
        self.assertEqual(r.stdout.strip(), "example.test/alice/")
        r = self.inst.postern("map", "query", m, "nobody@example.test")
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(r.stdout.strip(), "")
        r = self.inst.postern("map", "list", m, check=True)
        self.assertIn("bob@example.test", r.stdout)
        self.assertIn("example.test/bob/", r.stdout)
        # rebuild with a change: readers see the new table
        self.inst.vmailbox["dave@example.test"] = "example.test/dave/"
        self.inst.write_maps()
        r = self.inst.postern("map", "query", m, "dave@example.test", check=True)
        self.assertEqual(r.stdout.strip(), "example.test/dave/")
        # a bad source line is reported with file and line
        self.inst.write("badmap", "ok value\n: no key\n")
        r = self.inst.postern("map", "build", "lmdb:" + self.inst.path("badmap"))
        if r.returncode != 0:
            self.assertIn("badmap:2:", r.stderr)

    def test_status_and_stop(self):
        inst = self.inst
        r = inst.postern("status")
        self.assertNotEqual(r.returncode, 0, "status says running before start")
        inst.start(prepare=False)
        r = inst.postern("status")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = inst.postern("stop")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        try:
            rc = inst.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.fail("start-fg still running 30s after postern stop")
        self.assertEqual(rc, 0)
        r = inst.postern("status")
        self.assertNotEqual(r.returncode, 0)
        deadline = time.time() + 10
        while H.port_accepts(inst.port) and time.time() < deadline:
            time.sleep(0.2)
        self.assertFalse(H.port_accepts(inst.port))
        left = {k: v for k, v in inst.pids().items() if k in ("master", "smtpd", "qmgr", "local")}
        self.assertEqual(left, {})

    def test_start_daemon_mode(self):
        """postern start returns once master runs in the background."""
        inst = self.inst
        self.addCleanup(self._stop_background)
        r = inst.postern("start", timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        inst.wait_smtp(inst.port, 20)
        r = inst.postern("status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout + r.stderr, r"running: PID: \d+")
        r = inst.postern("start")
        self.assertNotEqual(r.returncode, 0, "a second start must refuse")
        self.assertIn("already running", r.stdout + r.stderr)
        r = inst.postern("stop", timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotEqual(inst.postern("status").returncode, 0)
        self.assertFalse(H.port_accepts(inst.port))

    def _stop_background(self):
        if self.inst.postern("status").returncode == 0:
            self.inst.postern("stop", timeout=60)
        # whatever still names our directory is ours
        self.inst._reap_leftovers(set())


class HarnessMatchesDefaults(unittest.TestCase):
    """The harness's instances run every service of etc/master.conf, so a
    daemon added there is exercised by every integration test."""

    def test_standard_services(self):
        services = []
        with open(os.path.join(H.SRCDIR, "etc", "master.conf")) as f:
            for line in f:
                if line.startswith("#") or not line.strip() or line[0].isspace():
                    continue
                col = line.split()
                services.append((col[0], col[1], col[7]))
        self.assertIn(("smtp", "inet", "smtpd"), services)
        harness = set()
        for line in H.STANDARD_SERVICES:
            col = line.split()
            harness.add((col[0], col[1], col[7]))
        for svc in services:
            if svc[1] == "unix":
                self.assertIn(svc, harness, "etc/master.conf service missing "
                              "from postern_harness.STANDARD_SERVICES")
            self.assertIn(svc[2], H.DAEMONS)
        self.assertLessEqual(harness, set(services))


if __name__ == "__main__":
    H.main()

#!/usr/bin/env python3
"""
"cmake --install" into a DESTDIR (prefix /usr/local by default) produces the tree
documented in cmake/PosternInstall.cmake and postern(1): the command in
sbin, the daemons in libexec/postern, the default configuration, the man
pages and the systemd unit pointing at the installed command; and the
installed command finds the installed configuration and daemons by
default.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402



def configured_prefix():
    """The build's CMAKE_INSTALL_PREFIX: compiled-in paths follow it, so the
    install uses the same prefix (normally /usr/local)."""
    try:
        with open(os.path.join(H.BUILDDIR, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("CMAKE_INSTALL_PREFIX:"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return "/usr/local"


PREFIX = configured_prefix()
# every daemon etc/master.conf names (the harness's list, less the command)
DAEMONS = tuple(d for d in H.DAEMONS if d != "postern")


def built(name):
    return os.access(os.path.join(H.BUILDDIR, name), os.X_OK)


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("cmake") is None:
            raise unittest.SkipTest("cmake not installed")
        if not os.path.exists(os.path.join(H.BUILDDIR, "cmake_install.cmake")):
            raise unittest.SkipTest("%s is not a CMake build tree" % H.BUILDDIR)
        cls.destdir = tempfile.mkdtemp(prefix="postern-install-")
        env = dict(os.environ, DESTDIR=cls.destdir)
        r = subprocess.run(["cmake", "--install", H.BUILDDIR, "--prefix", PREFIX],
                           capture_output=True, text=True, env=env, timeout=300)
        if r.returncode != 0:
            shutil.rmtree(cls.destdir, ignore_errors=True)
            raise AssertionError("cmake --install failed:\n%s%s" % (r.stdout, r.stderr))
        cls.root = cls.destdir + PREFIX

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.destdir, ignore_errors=True)

    def p(self, *rel):
        return os.path.join(self.root, *rel)

    def assertExecutable(self, path):
        self.assertTrue(os.path.isfile(path), "%s missing" % path)
        self.assertTrue(os.access(path, os.X_OK), "%s not executable" % path)

    def test_programs(self):
        self.assertExecutable(self.p("sbin", "postern"))
        for d in DAEMONS:
            self.assertExecutable(self.p("libexec", "postern", d))
        # nothing of ours lands in the sbin/bin dirs but the front ends
        self.assertFalse(os.path.exists(self.p("sbin", "master")))

    def test_sendmail_front_ends(self):
        if not built("sendmail"):
            self.skipTest("sendmail is not built")
        self.assertExecutable(self.p("sbin", "sendmail"))
        for link in ("mailq", "newaliases"):
            path = self.p("bin", link)
            self.assertTrue(os.path.islink(path), "%s is not a symlink" % path)
            # absolute links point at the final location, outside DESTDIR
            target = os.readlink(path)
            if os.path.isabs(target):
                target = self.destdir + target
            else:
                target = os.path.join(os.path.dirname(path), target)
            self.assertEqual(os.path.realpath(target),
                             os.path.realpath(self.p("sbin", "sendmail")))

    def test_configuration(self):
        for f in ("postern.conf", "master.conf"):
            self.assertTrue(os.path.isfile(self.p("etc", "postern", f)), f)
        with open(self.p("etc", "postern", "master.conf")) as f:
            text = f.read()
        for svc in ("qmgr", "local", "showq", "auth", "smtp", "lmtp", "pickup"):
            self.assertRegex(text, r"(?m)^%s\s+unix\s" % svc)

    def test_fail2ban_files(self):
        for rel in ("filter.d", "jail.d"):
            self.assertTrue(os.path.isfile(self.p("share", "postern", "fail2ban", rel,
                                                  "postern.conf")), rel)

    def test_man_pages(self):
        for rel in (("man1", "postern.1"), ("man1", "sendmail.1"),
                    ("man5", "postern.conf.5"), ("man5", "master.conf.5")):
            path = self.p("share", "man", *rel)
            self.assertTrue(os.path.isfile(path), path)
            if shutil.which("man"):
                r = subprocess.run(["man", "--warnings", "-l", path], capture_output=True,
                                   text=True, env=dict(os.environ, MANPAGER="cat",
                                                       PAGER="cat", MANWIDTH="80"))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr.strip(), "", "%s: %s" % (path, r.stderr))

    def test_systemd_unit(self):
        path = self.p("lib", "systemd", "system", "postern.service")
        self.assertTrue(os.path.isfile(path), path)
        with open(path) as f:
            text = f.read()
        self.assertIn("ExecStart=%s/sbin/postern start-fg" % PREFIX, text)
        self.assertIn("$MAINPID", text)
        self.assertIn("Type=notify", text)
        if shutil.which("systemd-analyze"):
            # verify wants the programs at their final paths: check a copy
            # that points into the DESTDIR tree.
            d = tempfile.mkdtemp(prefix="postern-unit-")
            self.addCleanup(shutil.rmtree, d, True)
            copy = os.path.join(d, "postern.service")
            with open(copy, "w") as f:
                f.write(text.replace(PREFIX + "/sbin/", self.root + "/sbin/"))
            # ... and runs man for Documentation=: find the installed pages.
            r = subprocess.run(["systemd-analyze", "verify", copy], capture_output=True,
                               text=True, timeout=120,
                               env=dict(os.environ, MANPATH=self.p("share", "man")))
            bad = [l for l in (r.stdout + r.stderr).splitlines() if "postern.service" in l]
            self.assertEqual(bad, [], r.stdout + r.stderr)

    def test_compiled_in_paths(self):
        """The installed postern looks for the installed files by default."""
        r = subprocess.run([self.p("sbin", "postern"), "conf", "daemon_directory",
                            "config_directory"],
                           capture_output=True, text=True,
                           env=dict(os.environ, MAIL_CONFIG=self.p("etc", "postern")))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("daemon_directory = %s/libexec/postern" % PREFIX, r.stdout)


if __name__ == "__main__":
    H.main()

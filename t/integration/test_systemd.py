#!/usr/bin/env python3
"""
systemd integration: master under a fake $NOTIFY_SOCKET (a datagram socket
the test owns) must send READY=1 once it serves, RELOADING=1 and READY=1
around a reload, and STOPPING=1 when "postern stop" asks it to go. And the
unit file passes "systemd-analyze verify" where that tool exists.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402


def setUpModule():
    H.require_binaries()


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's."""

    def __init__(self, directory, uid=None, gid=None):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        if uid is not None:
            os.chown(self.path, uid, gid)
        os.chmod(self.path, 0o666)
        self.seen = []

    def wait_for(self, text, timeout=30):
        """Wait for a datagram with a line equal to text; all are kept."""
        deadline = time.time() + timeout
        while True:
            for msg in self.seen:
                if text in msg.split("\n"):
                    self.seen.remove(msg)
                    return msg
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("no %r from master after %ss (got %r)"
                                     % (text, timeout, self.seen))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.seen.append(data.decode("utf-8", "replace"))

    def close(self):
        self.sock.close()


class Notify(H.InstanceTestCase):
    def test_ready_reload_stopping(self):
        inst = self.make_instance(privileged=H.is_root())
        ns = NotifySocket(inst.dir, inst.run_uid, inst.run_gid)
        self.addCleanup(ns.close)
        old = os.environ.get("NOTIFY_SOCKET")
        os.environ["NOTIFY_SOCKET"] = ns.path
        try:
            inst.start()
        finally:
            if old is None:
                del os.environ["NOTIFY_SOCKET"]
            else:
                os.environ["NOTIFY_SOCKET"] = old
        msg = ns.wait_for("READY=1")
        self.assertNotIn("STOPPING=1", msg)
        # start-fg became master: the notifying process is the unit's main pid
        self.assertEqual(inst.master_pid(), inst.proc.pid)

        inst.reload()
        ns.wait_for("RELOADING=1")
        ns.wait_for("READY=1")

        r = inst.postern("stop")
        self.assertEqual(r.returncode, 0, r.stderr)
        ns.wait_for("STOPPING=1")
        self.assertEqual(inst.proc.wait(30), 0)


def unit_with_paths(src, sbindir):
    with open(src) as f:
        text = f.read()
    return text.replace("/usr/sbin/postern", os.path.join(sbindir, "postern"))


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze not installed")
class UnitFile(unittest.TestCase):
    def verify(self, path, manpath):
        # verify also runs "man" for each Documentation= page: point it at
        # our (uninstalled) pages.
        env = dict(os.environ, MANPATH=manpath)
        r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True,
                           text=True, timeout=120, env=env)
        # Some containers have no systemd manager to talk to; a unit problem
        # is always reported with the unit's name.
        out = r.stdout + r.stderr
        unit_lines = [l for l in out.splitlines() if os.path.basename(path) in l]
        self.assertEqual(unit_lines, [], out)
        if r.returncode != 0 and not out.strip():
            self.fail("systemd-analyze verify failed without output")
        return r

    def test_source_unit_verifies(self):
        """etc/postern.service, with ExecStart at the built command (verify
        insists that the program exists)."""
        d = tempfile.mkdtemp(prefix="postern-unit-")
        self.addCleanup(shutil.rmtree, d, True)
        p = os.path.join(d, "postern.service")
        with open(p, "w") as f:
            f.write(unit_with_paths(os.path.join(H.SRCDIR, "etc", "postern.service"),
                                    H.BUILDDIR))
        man = os.path.join(d, "man")
        for sect, page in (("man1", "postern.1"), ("man5", "postern.conf.5")):
            os.makedirs(os.path.join(man, sect), exist_ok=True)
            shutil.copy(os.path.join(H.SRCDIR, "doc", page), os.path.join(man, sect))
        self.verify(p, man)

    def test_unit_contents(self):
        with open(os.path.join(H.SRCDIR, "etc", "postern.service")) as f:
            text = f.read()
        kv = {}
        for line in text.splitlines():
            m = re.match(r"^(\w+)=(.*)$", line)
            if m:
                kv[m.group(1)] = m.group(2)
        self.assertEqual(kv["Type"], "notify")
        self.assertTrue(kv["ExecStart"].endswith("postern start-fg"))
        self.assertIn("-HUP", kv["ExecReload"])
        self.assertEqual(kv["KillMode"], "mixed")
        self.assertIn(kv["ProtectSystem"], ("full", "strict"))
        self.assertEqual(kv["PrivateTmp"], "yes")
        self.assertEqual(kv["NoNewPrivileges"], "yes")
        caps = set(kv["CapabilityBoundingSet"].split())
        self.assertIn("CAP_NET_BIND_SERVICE", caps)
        self.assertIn("CAP_SETUID", caps)
        self.assertNotIn("CAP_SYS_ADMIN", caps)
        self.assertNotIn("CAP_SYS_PTRACE", caps)


if __name__ == "__main__":
    H.main()

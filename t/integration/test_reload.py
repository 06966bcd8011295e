#!/usr/bin/env python3
"""
postern reload (SIGHUP to master) with sessions open: the open session
finishes its mail; a changed listener in master.conf takes effect.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

SENDER = "sender@client.example"


def setUpModule():
    H.require_binaries()


class Reload(H.InstanceTestCase):
    def setUp(self):
        self.inst = self.make_instance()
        self.inst.start()

    def test_open_session_survives_reload(self):
        inst = self.inst
        c = H.RawSMTP(inst.port)
        try:
            self.assertEqual(c.reply()[0], 220)
            c.cmd("EHLO client.example")
            self.assertEqual(c.cmd("MAIL FROM:<%s>" % SENDER)[0], 250)
            self.assertEqual(c.cmd("RCPT TO:<alice@example.test>")[0], 250)
            mark = inst.log_mark()
            inst.reload()
            inst.wait_log(r"postern/master\[\d+\]: .*reload", since=mark, timeout=15)
            time.sleep(1)
            self.assertEqual(c.cmd("DATA")[0], 354)
            c.send(H.make_message(SENDER, ["alice@example.test"], "across reload", "hi\r\n")
                   + b".\r\n")
            code, lines = c.reply()
            self.assertEqual(code, 250, lines)
            self.assertEqual(c.cmd("QUIT")[0], 221)
        finally:
            c.close()
        msgs = H.wait_maildir(inst.vmaildir("alice@example.test"), inst=inst)
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"Subject: across reload", msgs[0])
        # a new session after the reload works as well
        s = H.smtp_client(inst)
        try:
            msg = H.make_message(SENDER, ["bob@example.test"], "after reload", "hi\r\n")
            self.assertEqual(s.sendmail(SENDER, ["bob@example.test"], msg), {})
            s.quit()
        finally:
            s.close()
        H.wait_maildir(inst.vmaildir("bob@example.test"), inst=inst)
        inst.wait_queue_empty(30)

    def test_listener_change(self):
        inst = self.inst
        old = inst.port
        new = H.free_port()
        inst.port = new
        inst.write("master.conf", inst.master_text())
        inst.reload()
        inst.wait_smtp(new, 20)
        s = H.smtp_client(inst, port=new)
        try:
            msg = H.make_message(SENDER, ["carol@example.test"], "new port", "hi\r\n")
            self.assertEqual(s.sendmail(SENDER, ["carol@example.test"], msg), {})
            s.quit()
        finally:
            s.close()
        H.wait_maildir(inst.vmaildir("carol@example.test"), inst=inst)
        # the removed listener goes away
        deadline = time.time() + 15
        while H.port_accepts(old) and time.time() < deadline:
            time.sleep(0.3)
        self.assertFalse(H.port_accepts(old), "old port %d still accepts" % old)
        inst.wait_queue_empty(30)

    def test_config_change_applies(self):
        """A postern.conf change (smtpd_banner) reaches new smtpd processes."""
        inst = self.inst
        inst.params["smtpd_banner"] = "$myhostname ESMTP reloaded-banner"
        inst.write("postern.conf", inst.conf_text())
        inst.reload()
        deadline = time.time() + 20
        greeting = None
        while time.time() < deadline:
            c = H.RawSMTP(inst.port)
            try:
                greeting = c.reply()[1][0]
                c.cmd("QUIT")
            finally:
                c.close()
            if "reloaded-banner" in greeting:
                break
            time.sleep(0.5)
        self.assertIn("mx.example.test ESMTP reloaded-banner", greeting)


if __name__ == "__main__":
    H.main()

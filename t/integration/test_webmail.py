#!/usr/bin/env python3
"""
Roundcube (Debian's packages) on Postern, driven in headless Chromium.

A fresh instance like the demo's (SMTP, submission with STARTTLS and
AUTH, IMAP with STARTTLS, imapd, a quota) gets Roundcube configured by
scripts/webmail.sh and served by PHP's built-in server. Selenium then
does as alice what a webmail user does: log in, read the inbox (a message
delivered by SMTP is listed and opens), download its attachment (bytes
identical), compose and send with an attachment (bob's Maildir has it
byte-intact, alice's Sent folder a copy), save a draft and reopen it,
flag a message, create a folder, move a message into it, rename and
delete it, delete a message to Trash, see the quota, and change the
password through the password plugin (a wrong current password refused
by Postern itself, the new one logs in, the old one no longer does).
What lands on disk is checked, and Roundcube's error log must hold no
IMAP or SMTP error. Each step leaves a screenshot in
$POSTERN_BUILDDIR/test-output/test_webmail/.

Needs Debian's chromium, chromium-driver and python3-selenium; the
suite's python may not see Debian's dist-packages, so this file re-runs
itself under /usr/bin/python3 when selenium is not importable. Skips
when the browser cannot start. (Filters and vacation, the managesieve
plugin, come with the ManageSieve server.)
"""

import base64
import email
import email.policy
import os
import re
import shutil
import smtplib
import subprocess
import sys
import time
import unittest
import urllib.request
from email.message import EmailMessage

try:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    if os.path.exists("/usr/bin/python3") and \
            os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") \
            and not os.environ.get("POSTERN_WEBMAIL_REEXEC"):
        os.environ["POSTERN_WEBMAIL_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    webdriver = None

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

ALICE = "alice@example.test"
BOB = "bob@example.test"
PW = {ALICE: "alice-web-secret", BOB: "bob-web-secret"}
NEWPW = "alice-new-secret-2"
SRCDIR = os.environ.get("POSTERN_SRCDIR",
                        os.path.dirname(os.path.dirname(os.path.dirname(
                            os.path.abspath(__file__)))))
# Binary, not text: any re-encoding on the way shows as a difference.
ATTACH_IN = bytes((i * 7 + 3) % 256 for i in range(6000))
ATTACH_OUT = bytes((i * 13 + 5) % 256 for i in range(9000))


def setUpModule():
    H.require_binaries()
    if webdriver is None:
        raise unittest.SkipTest("python3-selenium is not installed")
    for p in ("/usr/bin/php", "/var/lib/roundcube/public_html/index.php"):
        if not os.path.exists(p):
            raise unittest.SkipTest("%s missing: scripts/deps.sh roundcube-core "
                                    "roundcube-plugins roundcube-sqlite3" % p)


def maildir_files(md):
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(md, sub)
        if os.path.isdir(d):
            out += [os.path.join(d, f) for f in sorted(os.listdir(d))]
    return out


def wait_for(pred, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.3)


class Webmail(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.sub_port = H.free_port()
        cls.imap_port = H.free_port()
        cls.web_port = H.free_port()
        cls.web = None
        cls.driver = None
        services = [
            "127.0.0.1:%d inet n - n - - smtpd"
            " -o smtpd_tls_security_level=encrypt"
            " -o smtpd_sasl_auth_enable=yes"
            " -o smtpd_client_restrictions=permit_sasl_authenticated,reject"
            % cls.sub_port,
            "127.0.0.1:%d inet n - n - - imap-login" % cls.imap_port,
            "imapd unix - n n - 1 imapd",
        ]
        inst = H.Instance(conf={"virtual_mailbox_limit_maps": "static:50000000"},
                          services=services)
        cls.inst = inst
        try:
            inst.make_cert("mx.example.test", level="may")
            inst.prepare()
            for u, pw in PW.items():
                inst.add_user(u, pw)
            inst.start(prepare=False)
            inst.wait_smtp(cls.sub_port)
            wait_for(lambda: H.port_accepts(cls.imap_port), what="IMAP port")
            cls.outdir = os.path.join(H.BUILDDIR, "test-output", "test_webmail")
            shutil.rmtree(cls.outdir, ignore_errors=True)
            os.makedirs(cls.outdir)
            cls.start_roundcube()
            cls.start_browser()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_roundcube(cls):
        # As the instance's user: PHP never runs as root, and the password
        # plugin's "postern user chpasswd" writes files that user owns.
        kw = cls.inst._popen_kw()
        kw["env"]["POSTERN_BUILDDIR"] = H.BUILDDIR
        cls.web_log = open(cls.inst.path("webmail.out"), "wb")
        cls.web = subprocess.Popen(
            [os.path.join(SRCDIR, "scripts", "webmail.sh"), "--debug", "--port",
             str(cls.web_port), cls.inst.dir],
            stdout=cls.web_log, stderr=subprocess.STDOUT, start_new_session=True,
            **kw)
        wait_for(lambda: H.port_accepts(cls.web_port) or cls.web.poll() is not None,
                 timeout=120, what="webmail.sh")
        if cls.web.poll() is not None:
            with open(cls.inst.path("webmail.out")) as f:
                raise AssertionError("webmail.sh failed:\n" + f.read())
        cls.url = "http://127.0.0.1:%d/" % cls.web_port
        cls.rc = cls.inst.path("roundcube")

    @classmethod
    def start_browser(cls):
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-dev-shm-usage", "--window-size=1400,1000",
                  "--no-proxy-server"):
            opts.add_argument(a)
        cls.dl = os.path.join(cls.inst.dir, "downloads")
        os.makedirs(cls.dl, exist_ok=True)
        opts.add_experimental_option("prefs", {
            "download.default_directory": cls.dl,
            "download.prompt_for_download": False})
        try:
            service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver") \
                if hasattr(webdriver, "ChromeService") else \
                webdriver.chrome.service.Service("/usr/bin/chromedriver")
            cls.driver = webdriver.Chrome(service=service, options=opts)
        except Exception as e:   # noqa: BLE001 - any failure to start
            raise unittest.SkipTest("headless Chromium cannot start: %s" % e)
        cls.driver.set_page_load_timeout(60)

    @classmethod
    def tearDownClass(cls):
        if cls.driver is not None:
            try:
                cls.driver.quit()
            except Exception:   # noqa: BLE001
                pass
        if cls.web is not None and cls.web.poll() is None:
            os.killpg(cls.web.pid, 15)
            cls.web.wait(timeout=30)
        cls.inst.stop()
        cls.inst.cleanup(keep=os.environ.get("POSTERN_KEEP") == "1")

    # ----- helpers ---------------------------------------------------------

    def shot(self, name):
        self.n_shot = getattr(self, "n_shot", 0) + 1
        self.driver.save_screenshot(os.path.join(
            self.outdir, "%02d-%s.png" % (self.n_shot, name)))

    def js(self, code, *args):
        return self.driver.execute_script(code, *args)

    def go(self, query):
        self.driver.get(self.url + "?" + query)
        self.wait_idle()

    def wait_idle(self, timeout=30):
        """Roundcube loaded and no request of its own running."""
        WebDriverWait(self.driver, timeout).until(lambda d: d.execute_script(
            "return document.readyState == 'complete' && !!window.rcmail && "
            "!rcmail.busy && !!window.jQuery && jQuery.active == 0"))

    def login(self, user, pw):
        self.driver.delete_all_cookies()
        self.driver.get(self.url)
        self.wait_idle()
        self.driver.find_element(By.ID, "rcmloginuser").send_keys(user)
        self.driver.find_element(By.ID, "rcmloginpwd").send_keys(pw)
        self.driver.find_element(By.ID, "rcmloginsubmit").click()
        time.sleep(0.5)
        self.wait_idle()

    def logged_in(self):
        return self.js("return rcmail.env.task != 'login'")

    def list_uids(self, mbox):
        self.go("_task=mail&_mbox=" + mbox)
        WebDriverWait(self.driver, 30).until(lambda d: d.execute_script(
            "return rcmail.message_list && !rcmail.busy"))
        self.wait_idle()
        return self.js("return Object.keys(rcmail.message_list.rows)")

    def uid_of(self, mbox, subject, present=True):
        """The UID of the listed message whose row shows subject, or None
        when present is False and the (loaded, non-empty) list lacks it.
        The list arrives by a request of its own after the page: poll."""
        self.list_uids(mbox)
        found = """
            var r = rcmail.message_list.rows, n = 0;
            for (var k in r) {
                n++;
                if (jQuery(r[k].obj).text().indexOf(arguments[0]) >= 0) return k;
            }
            return n ? '' : null;"""
        try:
            WebDriverWait(self.driver, 20).until(lambda d: (
                lambda v: v if present else v == "")(d.execute_script(found, subject)))
        except Exception:   # noqa: BLE001 - reported by the caller's assert
            pass
        return self.js(found, subject) or None

    def cookie_get(self, url):
        cookies = "; ".join("%s=%s" % (c["name"], c["value"])
                            for c in self.driver.get_cookies())
        req = urllib.request.Request(url, headers={"Cookie": cookies})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def vmail(self, addr, folder=""):
        md = self.inst.vmaildir(addr)
        return os.path.join(md, "." + folder) if folder else md

    def folder_files(self, addr, folder=""):
        return maildir_files(self.vmail(addr, folder))

    def deliver(self, subject, attach=None, reply_to=None):
        m = EmailMessage()
        if reply_to:
            m["In-Reply-To"] = m["References"] = reply_to
        m["From"] = "carol@example.test"
        m["To"] = ALICE
        m["Subject"] = subject
        m["Message-ID"] = "<%s@example.test>" % subject.replace(" ", ".")
        m.set_content("Hello alice, this is %s.\n" % subject)
        if attach is not None:
            m.add_attachment(attach, maintype="application",
                             subtype="octet-stream", filename="data.bin")
        n = len(self.folder_files(ALICE))
        with smtplib.SMTP("127.0.0.1", self.inst.port, timeout=30) as s:
            s.send_message(m)
        wait_for(lambda: len(self.folder_files(ALICE)) > n, what="delivery")

    # ----- the session -----------------------------------------------------

    def test_roundcube(self):
        d = self.driver
        self.deliver("first report", attach=ATTACH_IN)
        self.deliver("second note")

        # log in: a wrong password is refused, the right one lands in the inbox
        self.login(ALICE, "wrong password")
        self.assertFalse(self.logged_in())
        self.shot("login-refused")
        self.login(ALICE, PW[ALICE])
        self.assertTrue(self.logged_in(), d.page_source[-2000:])
        self.shot("inbox")

        # the inbox lists both messages; the first opens with its attachment
        uid = self.uid_of("INBOX", "first report")
        self.assertIsNotNone(uid, "first report not listed")
        self.assertIsNotNone(self.uid_of("INBOX", "second note"))
        self.go("_task=mail&_mbox=INBOX&_action=show&_uid=%s" % uid)
        self.assertIn("Hello alice, this is first report.",
                      d.find_element(By.ID, "messagebody").text)
        links = d.find_elements(By.CSS_SELECTOR, "#attachment-list li a.filename")
        self.assertTrue(any("data.bin" in a.text for a in links),
                        [a.text for a in links])
        self.shot("message-open")

        # the attachment downloads byte for byte
        href = [a.get_attribute("href") for a in links if "data.bin" in a.text][0]
        got = self.cookie_get(href + ("&" if "?" in href else "?") + "_download=1")
        self.assertEqual(got, ATTACH_IN)

        # flag it: the Maildir file name gets F
        self.list_uids("INBOX")
        self.js("rcmail.message_list.select(arguments[0]);"
                "rcmail.command('mark', 'flagged');", uid)
        self.wait_idle()
        wait_for(lambda: any(re.search(r":2,[A-Z]*F", f)
                             for f in self.folder_files(ALICE)), what="flag F")
        self.shot("flagged")

        # quota: the storage use shows in the folder pane
        self.go("_task=mail&_mbox=INBOX")
        wait_for(lambda: self.js(
            "var q = document.getElementById('quotadisplay');"
            "return q && /\\d/.test(q.textContent + (q.title || ''))"),
            what="quota display")
        self.shot("quota")

        # search: the server's SEARCH narrows the list to the one match
        self.js("jQuery('#mailsearchform').val('second note');"
                "rcmail.command('search');")
        time.sleep(0.5)
        self.wait_idle()
        WebDriverWait(d, 30).until(lambda d: d.execute_script(
            "return rcmail.message_list.rowcount == 1"))
        self.assertIn("second note", self.js(
            "return jQuery('#messagelist tbody').text()"))
        self.shot("search")
        self.js("rcmail.command('reset-search')")
        time.sleep(0.5)
        self.wait_idle()
        WebDriverWait(d, 30).until(lambda d: d.execute_script(
            "return rcmail.message_list.rowcount == 2"))

        # compose and send with an attachment
        att = os.path.join(self.inst.dir, "downloads", "upload.bin")
        with open(att, "wb") as f:
            f.write(ATTACH_OUT)
        self.go("_task=mail&_action=compose")
        to = d.find_element(By.CSS_SELECTOR, "#compose_to input, .recipient-input input")
        to.send_keys(BOB + ", ")
        d.find_element(By.ID, "compose-subject").send_keys("webmail to bob")
        d.find_element(By.ID, "composebody").send_keys("Bob, the data is attached.\n")
        upload = d.find_element(By.CSS_SELECTOR, "input[type=file][name='_attachments[]']")
        upload.send_keys(att)
        WebDriverWait(d, 30).until(lambda d: d.execute_script(
            "return jQuery('#attachment-list li:not(.uploading)').length > 0"))
        self.shot("compose")
        bob_before = len(self.folder_files(BOB))
        self.js("rcmail.command('send', {})")
        wait_for(lambda: len(self.folder_files(BOB)) > bob_before, what="bob's mail")
        with open(self.folder_files(BOB)[-1], "rb") as f:
            msg = email.message_from_binary_file(f, policy=email.policy.default)
        self.assertEqual(msg["Subject"], "webmail to bob")
        self.assertEqual(msg["From"].addresses[0].addr_spec, ALICE)
        parts = [p for p in msg.iter_attachments() if p.get_filename() == "upload.bin"]
        self.assertEqual(len(parts), 1)
        self.assertEqual(parts[0].get_content(), ATTACH_OUT)
        wait_for(lambda: self.folder_files(ALICE, "Sent"), what="Sent copy")
        with open(self.folder_files(ALICE, "Sent")[-1], "rb") as f:
            self.assertIn(b"Subject: webmail to bob", f.read())
        # Roundcube leaves the compose screen by itself once it is sent
        WebDriverWait(d, 30).until(lambda d: d.execute_script(
            "return document.readyState == 'complete' && !!window.rcmail && "
            "rcmail.env.action != 'compose'"))
        self.wait_idle()
        self.shot("sent")

        # a draft is saved to Drafts and reopens with its subject
        self.go("_task=mail&_action=compose")
        d.find_element(By.ID, "compose-subject").send_keys("unfinished thoughts")
        d.find_element(By.ID, "composebody").send_keys("to be continued\n")
        self.js("rcmail.command('savedraft', {})")
        wait_for(lambda: self.folder_files(ALICE, "Drafts"), what="draft on disk")
        self.wait_idle()
        self.shot("draft-saved")
        self.js("rcmail.env.extwin = 0; rcmail.compose_skip_unsavedcheck = 1;")
        duid = self.uid_of("Drafts", "unfinished thoughts")
        self.assertIsNotNone(duid)
        self.go("_task=mail&_action=compose&_draft_uid=%s&_mbox=Drafts" % duid)
        self.assertEqual(d.find_element(By.ID, "compose-subject").get_attribute("value"),
                         "unfinished thoughts")
        self.assertIn("to be continued",
                      d.find_element(By.ID, "composebody").get_attribute("value"))
        self.shot("draft-reopened")

        # create a folder, move a message into it, rename, delete it
        self.js("rcmail.compose_skip_unsavedcheck = 1;")
        self.go("_task=settings&_action=folders")
        self.go("_task=settings&_action=edit-folder&_mbox=&_framed=1")
        d.find_element(By.NAME, "_name").send_keys("Projects")
        self.js("rcmail.command('save')")
        wait_for(lambda: os.path.isdir(self.vmail(ALICE, "Projects")),
                 what="folder Projects on disk")
        self.shot("folder-created")
        uid2 = self.uid_of("INBOX", "second note")
        self.js("rcmail.message_list.select(arguments[0]);"
                "rcmail.command('move', 'Projects');", uid2)
        wait_for(lambda: self.folder_files(ALICE, "Projects"), what="moved message")
        self.wait_idle()
        self.assertIsNone(self.uid_of("INBOX", "second note", present=False))
        self.assertIsNotNone(self.uid_of("Projects", "second note"))
        self.shot("moved")
        self.go("_task=settings&_action=edit-folder&_mbox=Projects&_framed=1")
        name = d.find_element(By.NAME, "_name")
        name.clear()
        name.send_keys("Archive 2026")
        self.js("rcmail.command('save')")
        wait_for(lambda: os.path.isdir(self.vmail(ALICE, "Archive 2026")) and
                 not os.path.isdir(self.vmail(ALICE, "Projects")),
                 what="folder renamed on disk")
        self.assertTrue(self.folder_files(ALICE, "Archive 2026"))
        self.go("_task=settings&_action=folders")
        self.shot("folder-renamed")
        self.js("rcmail.delete_folder('Archive 2026')")
        sel = ".ui-dialog .ui-dialog-buttonpane button"
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, sel))
        btn = [b for b in d.find_elements(By.CSS_SELECTOR, sel) if "Delete" in b.text]
        self.assertTrue(btn, [b.text for b in d.find_elements(By.CSS_SELECTOR, sel)])
        btn[0].click()
        wait_for(lambda: not os.path.isdir(self.vmail(ALICE, "Archive 2026")),
                 what="folder deleted on disk")
        self.wait_idle()
        self.shot("folder-deleted")

        # delete goes to Trash
        uid = self.uid_of("INBOX", "first report")
        self.js("rcmail.message_list.select(arguments[0]); rcmail.command('delete');", uid)
        wait_for(lambda: self.folder_files(ALICE, "Trash"), what="message in Trash")
        self.wait_idle()
        self.assertIsNone(self.uid_of("INBOX", "first report", present=False))
        self.assertIsNotNone(self.uid_of("Trash", "first report"))
        self.shot("trash")

        # password: Postern itself refuses a wrong current password ...
        r = subprocess.run(["/bin/sh", "-f", os.path.join(self.rc, "password.sh"), "--"],
                           input="%s\nnot-the-password\nwhatever-new\n" % ALICE,
                           capture_output=True, text=True, **self.inst._popen_kw())
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertIn("old password is wrong", r.stderr)
        # ... and the plugin changes it with the right one
        self.go("_task=settings&_action=plugin.password")
        d.find_element(By.ID, "curpasswd").send_keys(PW[ALICE])
        d.find_element(By.ID, "newpasswd").send_keys(NEWPW)
        d.find_element(By.ID, "confpasswd").send_keys(NEWPW)
        self.js("rcmail.command('plugin.password-save')")
        time.sleep(1)
        self.wait_idle()
        self.shot("password-changed")
        self.login(ALICE, PW[ALICE])
        self.assertFalse(self.logged_in(), "the old password still logs in")
        self.login(ALICE, NEWPW)
        self.assertTrue(self.logged_in(), "the new password does not log in")
        self.shot("new-password-login")

        # threads: the server's THREAD puts the reply under the report
        self.deliver("status update")
        self.deliver("Re: status update", reply_to="<status.update@example.test>")
        self.assertIsNotNone(self.uid_of("INBOX", "Re: status update"))
        self.js("rcmail.set_list_options(undefined, undefined, undefined, 1)")
        time.sleep(0.5)
        self.wait_idle()
        WebDriverWait(d, 30).until(lambda d: d.execute_script("""
            var r = rcmail.message_list.rows;
            for (var k in r)
                if (r[k].has_children && jQuery(r[k].obj).text().indexOf('status update') >= 0)
                    return true;
            return false;"""))
        self.shot("threads")
        # (undefined, not null: a null sort column would be saved as "null")
        self.js("rcmail.set_list_options(undefined, undefined, undefined, 0)")
        time.sleep(0.5)
        self.wait_idle()
        self.assertIsNotNone(self.uid_of("INBOX", "Re: status update"))

        # bob reads what alice sent, attachment and all
        self.login(BOB, PW[BOB])
        self.assertTrue(self.logged_in())
        buid = self.uid_of("INBOX", "webmail to bob")
        self.assertIsNotNone(buid)
        self.go("_task=mail&_mbox=INBOX&_action=show&_uid=%s" % buid)
        self.assertIn("the data is attached", d.find_element(By.ID, "messagebody").text)
        links = d.find_elements(By.CSS_SELECTOR, "#attachment-list li a.filename")
        href = [a.get_attribute("href") for a in links if "upload.bin" in a.text][0]
        self.assertEqual(self.cookie_get(href + "&_download=1"), ATTACH_OUT)
        self.shot("bob-reads")

        # no IMAP or SMTP error reached Roundcube's log
        errors = ""
        p = os.path.join(self.rc, "logs", "errors.log")
        if os.path.exists(p):
            with open(p, errors="replace") as f:
                errors = f.read()
        bad = [l for l in errors.splitlines()
               if re.search(r"IMAP Error|SMTP Error|PHP (Fatal|Error)", l)]
        # the two logins refused on purpose (a wrong password, the old one)
        refused = [l for l in bad if "IMAP Error: Login failed for " + ALICE in l]
        self.assertEqual(len(refused), 2, errors[-3000:])
        self.assertEqual([l for l in bad if l not in refused], [], errors[-3000:])
        # nor did Postern answer any other command with NO or BAD
        with open(os.path.join(self.rc, "logs", "imap.log"), "rb") as f:
            imap = f.read().decode("utf-8", "replace")
        self.assertIn("S: * CAPABILITY", imap)
        nobad = re.findall(r"S: [A-Z0-9]+ (?:NO|BAD) .*", imap)
        self.assertEqual([l for l in nobad if "[AUTHENTICATIONFAILED]" not in l], [])
        self.assertEqual(len(nobad), 2, nobad)


if __name__ == "__main__":
    unittest.main(verbosity=2)

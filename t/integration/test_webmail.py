#!/usr/bin/env python3
"""
Roundcube (Debian's packages) on Postern, driven in headless Chromium.

A fresh instance like the demo's (SMTP, submission with STARTTLS and
AUTH, IMAP with STARTTLS, imapd, ManageSieve, a quota) gets Roundcube
configured by scripts/webmail.sh - the very configuration a demo user
gets, managesieve plugin included - and served by PHP's built-in server.
Selenium then does as alice what a webmail user does, by clicking and
typing: log in, read the inbox (a message delivered by SMTP is listed and
opens), download its attachment (bytes identical), search, compose and
send with an attachment (bob's Maildir has it byte-intact, alice's Sent
folder a copy), save a draft and reopen it, flag a message, create a
folder, move a message into it, rename and delete it, delete a message to
Trash, see the quota, change the password through the password plugin (a
wrong current password refused by Postern itself, the new one logs in,
the old one no longer does), show threads, make a filter (Settings,
Filters: subject contains "invoice" -> Invoices; the Sieve script on disk
has it and local files the next invoice there) and an out-of-office reply
(Settings, Out of Office: the script has vacation, and bob, writing to
alice, gets the reply). What lands on disk is checked, Roundcube's error
log must hold no IMAP, SMTP or ManageSieve error, and its protocol logs
no NO or BAD from Postern, but for the two refused logins and a broken
script typed into the raw Sieve editor (refused at PUTSCRIPT by the
compiler local uses, its line marked in the editor). Each step leaves a
screenshot in $POSTERN_BUILDDIR/test-output/test_webmail/.

Needs Debian's chromium, chromium-driver and python3-selenium; the
suite's python may not see Debian's dist-packages, so this file re-runs
itself under /usr/bin/python3 when selenium is not importable. Skips
when the browser cannot start.
"""

import contextlib
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
from email.message import EmailMessage

try:
    from selenium import webdriver
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait
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
VACATION_SUBJECT = "Away until Monday"
VACATION_BODY = "I am out of the office; your mail will wait."
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
        cls.sieve_port = H.free_port()
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
            # as scripts/demo.sh: webmail.sh finds this listener and
            # enables the managesieve plugin against it
            "127.0.0.1:%d inet n - n - - managesieve-login" % cls.sieve_port,
            "managesieve unix - n n - 1 managesieve",
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
            wait_for(lambda: H.port_accepts(cls.sieve_port), what="ManageSieve port")
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
        # Chromium leaves empty org.chromium.Chromium.* directories in
        # TMPDIR: give it the instance's, which cleanup() removes.
        tmp = os.path.join(cls.inst.dir, "browser-tmp")
        os.makedirs(tmp, exist_ok=True)
        env = dict(os.environ, TMPDIR=tmp)
        try:
            service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver", env=env) \
                if hasattr(webdriver, "ChromeService") else \
                webdriver.chrome.service.Service("/usr/bin/chromedriver", env=env)
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
        """Reads the page's state for an assertion; the test drives
        Roundcube only by clicking and typing."""
        return self.driver.execute_script(code, *args)

    def wait_idle(self, timeout=30):
        """Roundcube loaded and no request of its own running."""
        WebDriverWait(self.driver, timeout).until(lambda d: d.execute_script(
            "return document.readyState == 'complete' && !!window.rcmail && "
            "!rcmail.busy && !!window.jQuery && jQuery.active == 0"))

    def button(self, text, scope=None):
        """The visible link or button labelled text (in scope, else the
        page or the frame switched to)."""
        xp = (".//a[normalize-space(.)='{0}'] | .//button[normalize-space(.)='{0}']"
              " | .//input[@type='button' and @value='{0}']").format(text)
        found = []

        def visible(d):
            found[:] = [e for e in (scope or d).find_elements(By.XPATH, xp)
                        if e.is_displayed()]
            return found
        WebDriverWait(self.driver, 20).until(visible, "no button " + text)
        return found[0]

    def click(self, text, scope=None):
        self.button(text, scope).click()
        time.sleep(0.3)
        self.wait_idle()

    def dialog(self):
        """The open Roundcube dialog (confirmations, list options)."""
        found = []
        WebDriverWait(self.driver, 20).until(lambda d: found.extend(
            e for e in d.find_elements(By.CSS_SELECTOR, ".ui-dialog")
            if e.is_displayed()) or found, "no dialog")
        return found[0]

    @contextlib.contextmanager
    def frame(self, fid, field):
        """Inside the iframe fid (settings forms load there) once its form
        field has loaded."""
        d = self.driver
        d.switch_to.default_content()
        WebDriverWait(d, 30).until(lambda d: d.find_element(By.ID, fid).is_displayed())
        d.switch_to.frame(d.find_element(By.ID, fid))
        try:
            WebDriverWait(d, 30).until(lambda d: d.find_elements(By.NAME, field))
            self.wait_idle()
            yield
        finally:
            d.switch_to.default_content()

    def select(self, name, text):
        Select(self.driver.find_element(By.NAME, name)).select_by_visible_text(text)

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

    def open_folder(self, mbox):
        """Mail, then the folder (its IMAP name) in the folder list; its
        message list loaded."""
        self.click("Mail")
        self.driver.find_element(
            By.CSS_SELECTOR, "#mailboxlist a[rel='%s']" % mbox).click()
        WebDriverWait(self.driver, 30).until(lambda d: d.execute_script(
            "return rcmail.message_list && rcmail.env.mailbox == arguments[0] "
            "&& !rcmail.busy", mbox))
        self.wait_idle()

    def row(self, subject):
        """The message list's row showing subject (the list arrives by a
        request of its own after the page: poll)."""
        found = []
        WebDriverWait(self.driver, 30).until(lambda d: found.extend(
            r for r in d.find_elements(By.CSS_SELECTOR, "#messagelist tbody tr")
            if subject in r.text) or found, "no row " + subject)
        return found[0]

    def pick(self, subject):
        """Click a message in the list, as selecting it does."""
        self.row(subject).click()
        time.sleep(0.3)
        self.wait_idle()

    def list_uids(self, mbox):
        self.open_folder(mbox)
        return self.js("return Object.keys(rcmail.message_list.rows)")

    def uid_of(self, mbox, subject, present=True):
        """The UID of the listed message whose row shows subject, or None
        when present is False and the (loaded, non-empty) list lacks it."""
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

    def download(self, link, name):
        """Click an attachment's link; the browser saves it to the
        download directory: its bytes."""
        path = os.path.join(self.dl, name)
        if os.path.exists(path):
            os.unlink(path)
        link.click()
        wait_for(lambda: os.path.exists(path) and
                 not os.path.exists(path + ".crdownload"), what="download " + name)
        time.sleep(0.5)
        with open(path, "rb") as f:
            return f.read()

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

        # the inbox lists both messages; the first opens (double click)
        # with its attachment
        self.assertIsNotNone(self.uid_of("INBOX", "first report"), "first report not listed")
        self.assertIsNotNone(self.uid_of("INBOX", "second note"))
        ActionChains(d).double_click(self.row("first report")).perform()
        WebDriverWait(d, 30).until(lambda d: d.find_elements(By.ID, "messagebody"))
        self.wait_idle()
        self.assertIn("Hello alice, this is first report.",
                      d.find_element(By.ID, "messagebody").text)
        links = d.find_elements(By.CSS_SELECTOR, "#attachment-list li a.filename")
        self.assertTrue(any("data.bin" in a.text for a in links),
                        [a.text for a in links])
        self.shot("message-open")

        # the attachment downloads byte for byte
        link = [a for a in links if "data.bin" in a.text][0]
        self.assertEqual(self.download(link, "data.bin"), ATTACH_IN)

        # flag it (Mark, As flagged): the Maildir file name gets F
        self.open_folder("INBOX")
        self.pick("first report")
        d.find_element(By.ID, "markmessagemenulink").click()
        self.click("As flagged")
        wait_for(lambda: any(re.search(r":2,[A-Z]*F", f)
                             for f in self.folder_files(ALICE)), what="flag F")
        self.shot("flagged")

        # quota: the storage use shows in the folder pane
        self.open_folder("INBOX")
        wait_for(lambda: self.js(
            "var q = document.getElementById('quotadisplay');"
            "return q && /\\d/.test(q.textContent + (q.title || ''))"),
            what="quota display")
        self.shot("quota")

        # search: the server's SEARCH narrows the list to the one match
        box = d.find_element(By.ID, "mailsearchform")
        box.send_keys("second note", Keys.ENTER)
        time.sleep(0.5)
        self.wait_idle()
        WebDriverWait(d, 30).until(lambda d: d.execute_script(
            "return rcmail.message_list.rowcount == 1"))
        self.assertIn("second note", d.find_element(By.ID, "messagelist").text)
        self.assertNotIn("first report", d.find_element(By.ID, "messagelist").text)
        self.shot("search")
        self.click("Reset search")
        WebDriverWait(d, 30).until(lambda d: d.execute_script(
            "return rcmail.message_list.rowcount == 2"))

        # compose and send with an attachment
        upload_dir = os.path.join(self.inst.dir, "uploads")
        os.makedirs(upload_dir, exist_ok=True)
        att = os.path.join(upload_dir, "upload.bin")
        with open(att, "wb") as f:
            f.write(ATTACH_OUT)
        self.click("Compose")
        to = d.find_element(By.CSS_SELECTOR, "#compose_to input, .recipient-input input")
        to.send_keys(BOB + ", ")
        d.find_element(By.ID, "compose-subject").send_keys("webmail to bob")
        d.find_element(By.ID, "composebody").send_keys("Bob, the data is attached.\n")
        # The "Attach a file" button opens the desktop's file chooser, which
        # no browser automation can drive: the file goes to its <input>,
        # which is what the chooser fills in.
        upload = d.find_element(By.CSS_SELECTOR, "input[type=file][name='_attachments[]']")
        upload.send_keys(att)
        WebDriverWait(d, 30).until(lambda d: d.execute_script(
            "return jQuery('#attachment-list li:not(.uploading)').length > 0"))
        self.shot("compose")
        bob_before = len(self.folder_files(BOB))
        self.click("Send")
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

        # a draft is saved (Save) to Drafts and reopens (double click in
        # Drafts) with its subject
        self.click("Compose")
        d.find_element(By.ID, "compose-subject").send_keys("unfinished thoughts")
        d.find_element(By.ID, "composebody").send_keys("to be continued\n")
        self.click("Save")
        wait_for(lambda: self.folder_files(ALICE, "Drafts"), what="draft on disk")
        self.wait_idle()
        self.shot("draft-saved")
        self.open_folder("Drafts")
        ActionChains(d).double_click(self.row("unfinished thoughts")).perform()
        WebDriverWait(d, 30).until(lambda d: d.execute_script(
            "return document.readyState == 'complete' && !!window.rcmail && "
            "rcmail.env.action == 'compose'"))
        self.wait_idle()
        self.assertEqual(d.find_element(By.ID, "compose-subject").get_attribute("value"),
                         "unfinished thoughts")
        self.assertIn("to be continued",
                      d.find_element(By.ID, "composebody").get_attribute("value"))
        self.shot("draft-reopened")

        # create a folder (Settings, Folders, Create), move a message into
        # it (More, Move to...), rename and delete it
        self.click("Settings")
        self.create_folder("Projects")
        wait_for(lambda: os.path.isdir(self.vmail(ALICE, "Projects")),
                 what="folder Projects on disk")
        self.shot("folder-created")
        self.open_folder("INBOX")
        self.pick("second note")
        d.find_element(By.ID, "messagemenulink").click()
        self.click("Move to...")
        self.click("Projects", d.find_element(By.ID, "folder-selector"))
        wait_for(lambda: self.folder_files(ALICE, "Projects"), what="moved message")
        self.wait_idle()
        self.assertIsNone(self.uid_of("INBOX", "second note", present=False))
        self.assertIsNotNone(self.uid_of("Projects", "second note"))
        self.shot("moved")
        self.click("Settings")
        self.click("Folders")
        self.settings_folder("Projects").click()
        with self.frame("preferences-frame", "_name"):
            name = d.find_element(By.NAME, "_name")
            name.clear()
            name.send_keys("Archive 2026")
            self.button("Save").click()
        wait_for(lambda: os.path.isdir(self.vmail(ALICE, "Archive 2026")) and
                 not os.path.isdir(self.vmail(ALICE, "Projects")),
                 what="folder renamed on disk")
        self.assertTrue(self.folder_files(ALICE, "Archive 2026"))
        self.wait_idle()
        self.shot("folder-renamed")
        self.settings_folder("Archive 2026").click()
        self.wait_idle()
        self.click("Delete")
        self.click("Delete", self.dialog())
        wait_for(lambda: not os.path.isdir(self.vmail(ALICE, "Archive 2026")),
                 what="folder deleted on disk")
        self.wait_idle()
        self.shot("folder-deleted")

        # delete (the toolbar's Delete) goes to Trash
        self.open_folder("INBOX")
        self.pick("first report")
        self.click("Delete")
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
        # ... and the plugin (Settings, Password) changes it with the right one
        self.click("Settings")
        self.click("Password")
        d.find_element(By.ID, "curpasswd").send_keys(PW[ALICE])
        d.find_element(By.ID, "newpasswd").send_keys(NEWPW)
        d.find_element(By.ID, "confpasswd").send_keys(NEWPW)
        self.click("Save")
        time.sleep(1)
        self.wait_idle()
        self.shot("password-changed")
        self.login(ALICE, PW[ALICE])
        self.assertFalse(self.logged_in(), "the old password still logs in")
        self.login(ALICE, NEWPW)
        self.assertTrue(self.logged_in(), "the new password does not log in")
        self.shot("new-password-login")

        # threads (Options, List mode): the server's THREAD puts the reply
        # under the report
        self.deliver("status update")
        self.deliver("Re: status update", reply_to="<status.update@example.test>")
        self.assertIsNotNone(self.uid_of("INBOX", "Re: status update"))
        self.list_mode("Threads")
        WebDriverWait(d, 30).until(lambda d: d.execute_script("""
            var r = rcmail.message_list.rows;
            for (var k in r)
                if (r[k].has_children && jQuery(r[k].obj).text().indexOf('status update') >= 0)
                    return true;
            return false;"""))
        self.shot("threads")
        self.list_mode("List")
        self.assertIsNotNone(self.uid_of("INBOX", "Re: status update"))

        self.filters()
        self.vacation()

        # bob reads what alice sent, attachment and all, and her
        # out-of-office reply
        self.login(BOB, PW[BOB])
        self.assertTrue(self.logged_in())
        self.assertIsNotNone(self.uid_of("INBOX", VACATION_SUBJECT))
        self.assertIsNotNone(self.uid_of("INBOX", "webmail to bob"))
        self.shot("bob-inbox")
        ActionChains(d).double_click(self.row("webmail to bob")).perform()
        WebDriverWait(d, 30).until(lambda d: d.find_elements(By.ID, "messagebody"))
        self.wait_idle()
        self.assertIn("the data is attached", d.find_element(By.ID, "messagebody").text)
        links = d.find_elements(By.CSS_SELECTOR, "#attachment-list li a.filename")
        link = [a for a in links if "upload.bin" in a.text][0]
        self.assertEqual(self.download(link, "upload.bin"), ATTACH_OUT)
        self.shot("bob-reads")

        self.check_logs()

    def create_folder(self, name):
        """Settings, Folders, Create: the form in the frame, Save."""
        self.click("Folders")
        self.click("Create")
        with self.frame("preferences-frame", "_name"):
            self.driver.find_element(By.NAME, "_name").send_keys(name)
            self.button("Save").click()
        time.sleep(0.5)
        self.wait_idle()

    def settings_folder(self, name):
        """A folder's entry in Settings, Folders."""
        found = []
        WebDriverWait(self.driver, 20).until(lambda d: found.extend(
            a for a in d.find_elements(By.CSS_SELECTOR, "#subscription-table li > a")
            if a.text.strip() == name) or found, "no folder " + name)
        return found[0]

    def list_mode(self, mode):
        """The message list's Options dialog: List mode, Save."""
        self.driver.find_element(By.ID, "listmenulink").click()
        dlg = self.dialog()
        Select(dlg.find_element(By.NAME, "mode")).select_by_visible_text(mode)
        self.click("Save", dlg)
        time.sleep(0.5)
        self.wait_idle()
        WebDriverWait(self.driver, 30).until(lambda d: d.execute_script(
            "return !!rcmail.env.threading == arguments[0]", mode == "Threads"))

    def sieve_script(self):
        """The active script on disk, through the link local follows."""
        link = os.path.join(self.vmail(ALICE), ".dovecot.sieve")
        self.assertTrue(os.path.islink(link), "no active Sieve script")
        target = os.readlink(link)
        self.assertRegex(target, r"^sieve/[^/]+\.sieve$")
        with open(os.path.join(self.vmail(ALICE), target), encoding="utf-8") as f:
            return f.read()

    def filters(self):
        """Settings, Filters, Create: subject contains "invoice" -> move to
        Invoices; the script on disk; a matching message filed by local."""
        d = self.driver
        self.click("Settings")
        self.create_folder("Invoices")
        wait_for(lambda: os.path.isdir(self.vmail(ALICE, "Invoices")),
                 what="folder Invoices on disk")
        self.shot("invoices-folder")
        self.click("Filters")
        self.shot("filters")
        self.click("Create")
        with self.frame("filter-box", "_name"):
            d.find_element(By.NAME, "_name").send_keys("invoices")
            self.select("_header[0]", "Subject")
            self.select("_rule_op[0]", "contains")
            d.find_element(By.NAME, "_rule_target[0][]").send_keys("invoice")
            self.select("_action_type[0]", "Move message to")
            self.select("_action_mailbox[0]", "Invoices")
        self.shot("filter-form")
        with self.frame("filter-box", "_name"):
            self.button("Save").click()
        WebDriverWait(d, 30).until(lambda d: "invoices" in
                                   d.find_element(By.ID, "filterslist").text)
        self.wait_idle()
        self.shot("filter-saved")
        script = self.sieve_script()
        self.assertIn('# rule:[invoices]', script)
        self.assertRegex(script, r'header :contains "subject" "invoice"')
        self.assertRegex(script, r'fileinto "Invoices";')

        # delivery runs it: the invoice goes to Invoices, not INBOX
        inbox = len(self.folder_files(ALICE))
        m = EmailMessage()
        m["From"] = "carol@example.test"
        m["To"] = ALICE
        m["Subject"] = "Your invoice 42"
        m["Message-ID"] = "<invoice.42@example.test>"
        m.set_content("Please pay by Friday.\n")
        with smtplib.SMTP("127.0.0.1", self.inst.port, timeout=30) as s:
            s.send_message(m)
        wait_for(lambda: self.folder_files(ALICE, "Invoices"), what="filed invoice")
        with open(self.folder_files(ALICE, "Invoices")[0], "rb") as f:
            self.assertIn(b"Subject: Your invoice 42", f.read())
        self.assertEqual(len(self.folder_files(ALICE)), inbox)
        self.assertIsNotNone(self.uid_of("Invoices", "Your invoice 42"))
        self.shot("filtered")

        # the raw editor (Actions, Edit filter set): a broken script is
        # refused by Postern's compiler at PUTSCRIPT, and Roundcube marks
        # the line its "line N:" names; the script on disk is unchanged
        self.click("Settings")
        self.click("Filters")
        d.find_element(By.CSS_SELECTOR, "a.actions[data-popup='filterset-menu']").click()
        self.click("Edit filter set")
        with self.frame("filter-box", "rawsetcontent"):
            d.find_element(By.CSS_SELECTOR, ".CodeMirror").click()
            editor = d.find_element(By.CSS_SELECTOR, ".CodeMirror textarea")
            editor.send_keys(Keys.CONTROL, Keys.END)
            editor.send_keys("\nif frobnicate { keep; }\n")
            self.button("Save").click()
            WebDriverWait(d, 30).until(lambda d: d.execute_script(
                "return rcmail.env.sieve_errors"))
            marked = [e.text for e in d.find_elements(
                By.XPATH, "//div[contains(@class, 'line-error')]/..//pre")]
            self.assertEqual(marked, ["if frobnicate { keep; }"])
            self.assertIn("frobnicate", self.js("return rcmail.env.sieve_errors[0].msg"))
        self.shot("raw-editor-error")
        self.assertEqual(self.sieve_script(), script)

    def vacation(self):
        """Settings, Out of Office: a reply with a subject and a body, On;
        the script on disk; bob's message to alice gets the reply."""
        d = self.driver
        self.click("Settings")
        self.click("Out of Office")
        WebDriverWait(d, 30).until(lambda d: d.find_elements(By.NAME, "vacation_subject"))
        d.find_element(By.NAME, "vacation_subject").send_keys(VACATION_SUBJECT)
        d.find_element(By.NAME, "vacation_reason").send_keys(VACATION_BODY)
        self.select("vacation_status", "On")
        self.click("Fill with all my addresses")
        self.shot("vacation-form")
        self.click("Save")
        wait_for(lambda: "vacation" in self.sieve_script(), what="vacation script")
        self.shot("vacation-saved")
        script = self.sieve_script()
        self.assertRegex(script, r'require \[[^]]*"vacation"')
        self.assertRegex(script, r'vacation :addresses "%s" :subject "%s" "%s";'
                         % (re.escape(ALICE), re.escape(VACATION_SUBJECT),
                            re.escape(VACATION_BODY)))
        # the filter made before is still there
        self.assertIn('fileinto "Invoices";', script)

        n = len(self.folder_files(BOB))
        m = EmailMessage()
        m["From"] = BOB
        m["To"] = ALICE
        m["Subject"] = "lunch on friday?"
        m["Message-ID"] = "<lunch@example.test>"
        m.set_content("Shall we?\n")
        with smtplib.SMTP("127.0.0.1", self.inst.port, timeout=30) as s:
            s.send_message(m)
        wait_for(lambda: len(self.folder_files(BOB)) > n, what="vacation reply")
        with open(self.folder_files(BOB)[-1], "rb") as f:
            reply = email.message_from_binary_file(f, policy=email.policy.default)
        self.assertEqual(reply["Subject"], VACATION_SUBJECT)
        self.assertEqual(reply["From"].addresses[0].addr_spec, ALICE)
        self.assertEqual(reply["In-Reply-To"], "<lunch@example.test>")
        self.assertTrue(reply["Auto-Submitted"].startswith("auto-replied"))
        self.assertEqual(reply["Return-Path"], "<>")
        self.assertIn(VACATION_BODY, reply.get_content())

    def check_logs(self):
        """No IMAP, SMTP or ManageSieve error reached Roundcube's log, and
        Postern answered no command with NO or BAD, but the refused logins
        and the broken script."""
        errors = ""
        p = os.path.join(self.rc, "logs", "errors.log")
        if os.path.exists(p):
            with open(p, errors="replace") as f:
                errors = f.read()
        bad = [l for l in errors.splitlines()
               if re.search(r"IMAP Error|SMTP Error|managesieve|PHP (Fatal|Error)", l, re.I)]
        # the two logins refused on purpose (a wrong password, the old one)
        # and the broken script
        refused = [l for l in bad if "IMAP Error: Login failed for " + ALICE in l]
        self.assertEqual(len(refused), 2, errors[-3000:])
        broken = [l for l in bad if "unknown test" in l and "frobnicate" in l]
        self.assertEqual(len(broken), 1, errors[-3000:])
        self.assertEqual([l for l in bad if l not in refused + broken], [],
                         errors[-3000:])
        with open(os.path.join(self.rc, "logs", "imap.log"), "rb") as f:
            imap = f.read().decode("utf-8", "replace")
        self.assertIn("S: * CAPABILITY", imap)
        nobad = re.findall(r"S: [A-Z0-9]+ (?:NO|BAD) .*", imap)
        self.assertEqual([l for l in nobad if "[AUTHENTICATIONFAILED]" not in l], [])
        self.assertEqual(len(nobad), 2, nobad)
        with open(os.path.join(self.rc, "logs", "sieve.log"), "rb") as f:
            sieve = f.read().decode("utf-8", "replace")
        self.assertIn('C: PUTSCRIPT "', sieve)
        self.assertIn('C: SETACTIVE "', sieve)
        nobye = re.findall(r"S: (?:NO|BYE)\b.*", sieve)
        self.assertEqual(len(nobye), 1, nobye)
        self.assertRegex(nobye[0], r'^S: NO "line \d+: unknown test')
        # and Postern logged no trouble of its own on the way (an
        # unprivileged instance says so once at start)
        trouble = [l for l in self.inst.log().splitlines()
                   if re.search(r"\b(warning|error|fatal|panic):", l)
                   and "privilege separation is off" not in l]
        self.assertEqual(trouble, [])
        self.assertIn("vacation reply to <%s> queued" % BOB, self.inst.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""
postern_harness - start a real Postern instance on loopback for a test.

An Instance owns one temporary directory holding postern.conf,
master.conf, the queue, the data directory, the maillog and the mail
store. start() runs "$POSTERN_BUILDDIR/postern -c DIR start-fg" as a child
of the test, so the test owns that pid; stop() signals only that pid (and,
if it will not go, the processes it started, found through /proc by parent
pid and by the instance directory on their command line). Nothing is ever
killed by name.

Modes:
  privileged=True   the test runs as root; master keeps root and drops the
                    daemons to mail_owner ("postern", created if missing).
  privileged=False  the instance runs as an ordinary user: the caller when
                    the test is not root; otherwise the system user
                    "ptunpriv" (created once), which owns the directory.

Services: master.conf has every service of etc/master.conf - the SMTP
listener (on listen_addr:port), qmgr, local, virtual, showq, auth, smtp
and pickup - plus the lines a test passes in services=. Outbound smtp is
pointed at a DNS server address where nothing listens
(smtp_dns_servers), so mail to a remote domain defers without a query
ever leaving the host; relay tests override it with their own dnsmasq.
smtpd's own lookups (smtpd_dns_servers: the client's PTR name, DNSBLs)
go to the same dead port: 127.0.0.1 is "localhost" from /etc/hosts, any
other loopback client is "unknown".

Environment: POSTERN_BUILDDIR (default ./build), POSTERN_KEEP=1 keeps the
directory of a test for post-mortem; POSTERN_VERBOSE=1 prints the commands.
Ports are free loopback ports found by binding port 0; no external network.
"""

import os
import re
import selectors
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SRCDIR = os.environ.get("POSTERN_SRCDIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILDDIR = os.path.abspath(os.environ.get("POSTERN_BUILDDIR")
                           or os.path.join(SRCDIR, "build"))
MAIL_OWNER = "postern"
AUTH_OWNER = "postern-auth"    # auth_owner's default
LOGIN_USER = "postern-login"   # login_user's default: pop3-login/imap-login
UNPRIV_USER = "ptunpriv"
# Every program a master.conf of the harness names, plus master and the
# postern command; require_binaries() insists on all of them.
DAEMONS = ("master", "smtpd", "qmgr", "local", "pickup", "showq", "auth",
           "smtp", "lmtp", "postern")
# The etc/master.conf services besides the SMTP listener, in its column
# format; "{local_maxproc}" is filled from Instance.local_maxproc.
STANDARD_SERVICES = (
    "qmgr unix n - n 60 1 qmgr",
    "local unix - n n - {local_maxproc} local",
    "virtual unix - n n - - local",
    "showq unix n - n - - showq",
    "auth unix - n n - 1 auth",
    "smtp unix - - n - - smtp",
    "lmtp unix - - n - - lmtp",
    "pickup unix n - n 60 1 pickup",
)
QUEUE_DIRS = ("incoming", "active", "deferred", "hold")
VERBOSE = os.environ.get("POSTERN_VERBOSE") == "1"

QUEUE_ID_RE = re.compile(r"^[0-9A-Za-z]+$")


def is_root():
    return os.geteuid() == 0


def vprint(*a):
    if VERBOSE:
        print("[harness]", *a, file=sys.stderr, flush=True)


_PORTS_GIVEN = set()


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (bind 0, read, close), and
    one this process has not been given before: the kernel may hand out a
    just-closed port again, and two services of one master.conf on the
    same port (seen in test_peername) make the instance refuse to start."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port


def close_listener(sock, thread=None, timeout=5):
    """Close a test server's listening socket that thread may be blocked
    in accept() on. shutdown() first makes that accept() fail, and the
    thread is joined before the descriptor goes: a bare close() leaves the
    thread in accept() on the old socket, or lets its next accept() run on
    whatever socket gets the descriptor number next - the next test's
    server, whose connections the old thread then takes and answers (seen
    in test_policy_service)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout)
    sock.close()


DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


class Dnsmasq:
    """A DNS server for one test: dnsmasq on addr:port answering from the
    records given as dnsmasq options ("--host-record=...", "--local=/d/"
    for NXDOMAIN in d) and nothing else (no upstream, no /etc/hosts).
    queries() is its log: every question it was asked."""

    def __init__(self, records, port=None, addr="127.0.0.1"):
        self.addr = addr
        self.port = port if port is not None else free_port(addr)
        self.log = tempfile.NamedTemporaryFile(prefix="dnsmasq-", suffix=".log",
                                               delete=False)
        args = [DNSMASQ, "--no-daemon", "--port=%d" % self.port,
                "--listen-address=" + addr, "--bind-interfaces", "--no-resolv",
                "--no-hosts", "--log-queries", "--pid-file="] + list(records)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            text = self.queries()
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("dnsmasq exited: %s" % text)
            if "started" in text:
                return
            if time.time() > deadline:
                self.stop()
                raise RuntimeError("dnsmasq did not start: %s" % text)
            time.sleep(0.1)

    def queries(self):
        with open(self.log.name) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
            os.unlink(self.log.name)


def port_accepts(port, host="127.0.0.1", timeout=1.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def user_exists(name):
    return subprocess.run(["getent", "passwd", name],
                          stdout=subprocess.DEVNULL).returncode == 0


def user_ids(name):
    import pwd
    pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid


def ensure_system_user(name):
    """Create a system user (and its group) unless it exists. Root only."""
    if user_exists(name):
        return
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                    "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                    name], check=True)


def can_run_privileged():
    return is_root()


def skip_unless_root(reason="needs root (privileged instance)"):
    return unittest.skipUnless(can_run_privileged(), reason)


def maybe_reexec_with_sudo():
    """Not root but password-less sudo: run the whole test program as root,
    so the privileged cases run too. Called from a test's __main__."""
    if is_root() or os.environ.get("POSTERN_NO_SUDO") == "1":
        return
    if os.environ.get("POSTERN_SUDO_TRIED") == "1":
        return
    if shutil.which("sudo") is None:
        return
    if subprocess.run(["sudo", "-n", "true"], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL).returncode != 0:
        return
    env_keep = ["POSTERN_BUILDDIR=" + BUILDDIR, "POSTERN_SRCDIR=" + SRCDIR,
                "POSTERN_SUDO_TRIED=1", "PATH=" + os.environ.get("PATH", "")]
    for k in ("POSTERN_KEEP", "POSTERN_VERBOSE", "ASAN_OPTIONS", "UBSAN_OPTIONS"):
        if k in os.environ:
            env_keep.append("%s=%s" % (k, os.environ[k]))
    argv = ["sudo", "-n", "env"] + env_keep + [sys.executable] + sys.argv
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp("sudo", argv)


def proc_table():
    """{pid: (ppid, comm, cmdline)} for every process we can see."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        try:
            with open("/proc/%d/stat" % pid, "rb") as f:
                st = f.read().decode("utf-8", "replace")
            # comm may contain spaces and parens: split at the last ')'
            rp = st.rfind(")")
            comm = st[st.find("(") + 1:rp]
            ppid = int(st[rp + 2:].split()[1])
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except (OSError, ValueError, IndexError):
            continue
        out[pid] = (ppid, comm, cmd)
    return out


def descendants(pid, table=None):
    table = table if table is not None else proc_table()
    kids = {}
    for p, (pp, _, _) in table.items():
        kids.setdefault(pp, []).append(p)
    res, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            res.append(c)
            todo.append(c)
    return res


def proc_user(pid):
    r = subprocess.run(["ps", "-o", "user=", "-p", str(pid)],
                       capture_output=True, text=True)
    return r.stdout.strip()


def proc_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class SMTPReplyError(Exception):
    pass


class RawSMTP:
    """A line-level SMTP client on a plain socket, for what smtplib hides:
    pipelining, bare LF, killed servers."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=20):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.buf = b""
        try:
            self.sock.settimeout(timeout)
            if source:
                self.sock.bind((source, 0))
            self.sock.connect((host, port))
        except OSError:
            self.sock.close()
            raise

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; pending %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """One (possibly multi-line) reply: (code, [text lines])."""
        lines = []
        while True:
            line = self._line()
            if len(line) < 3 or not line[:3].isdigit():
                raise SMTPReplyError("bad reply line %r" % line)
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return int(line[:3]), lines

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Instance:
    """One Postern instance in its own directory. See the module comment."""

    def __init__(self, tmpdir=None, privileged=False, conf=None,
                 services=None, smtp_port=None, listen_addr="127.0.0.1"):
        self.privileged = privileged
        self.listen_addr = listen_addr
        if privileged and not is_root():
            raise unittest.SkipTest("privileged instance needs root")
        self.dir = tmpdir or tempfile.mkdtemp(prefix="postern-it-")
        os.chmod(self.dir, 0o755)
        self.builddir = BUILDDIR
        self.port = smtp_port or free_port(listen_addr)
        self.proc = None
        self.run_uid = None        # None: run as ourselves
        self.run_gid = None
        if is_root():
            if privileged:
                ensure_system_user(MAIL_OWNER)
                ensure_system_user(AUTH_OWNER)
                ensure_system_user(LOGIN_USER)
                self.owner_uid, self.owner_gid = user_ids(MAIL_OWNER)
            else:
                ensure_system_user(UNPRIV_USER)
                self.run_uid, self.run_gid = user_ids(UNPRIV_USER)
        # Virtual mailboxes belong to whoever the instance runs as, or, in
        # privileged mode, to the mail owner (never root).
        if privileged:
            self.vuid, self.vgid = self.owner_uid, self.owner_gid
        elif self.run_uid is not None:
            self.vuid, self.vgid = self.run_uid, self.run_gid
        else:
            self.vuid, self.vgid = os.getuid(), os.getgid()
        for sub in ("vmail", "out", "bin", "home", "spool"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        os.chmod(os.path.join(self.dir, "out"), 0o1777)
        os.chmod(os.path.join(self.dir, "spool"), 0o1777)
        self.daemon_dir = self._daemon_dir()
        self.params = {
            "queue_directory": self.path("queue"),
            "data_directory": self.path("data"),
            "daemon_directory": self.daemon_dir,
            "maillog_file": self.path("maillog"),
            "mail_owner": MAIL_OWNER,
            "myhostname": "mx.example.test",
            "mydomain": "example.test",
            "mydestination": "localhost, $myhostname",
            "mynetworks": "127.0.0.0/8",
            "virtual_mailbox_domains": "example.test",
            "virtual_mailbox_base": self.path("vmail"),
            "virtual_mailbox_maps": "lmdb:" + self.path("vmailbox"),
            "virtual_uid_maps": "static:%d" % self.vuid,
            "virtual_gid_maps": "static:%d" % self.vgid,
            "alias_maps": "lmdb:" + self.path("aliases"),
            "alias_database": "lmdb:" + self.path("aliases"),
            "mail_spool_directory": self.path("spool"),
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "queue_run_delay": "1s",
            # One smtpd per service (not one per CPU): the tests that kill
            # "the smtpd" of a session need it to be the only one;
            # test_smtpd_processes.py sets more.
            "smtpd_process_count": "1",
            # a loopback port with no DNS server: remote domains defer
            # locally instead of asking the host's resolver
            "smtp_dns_servers": "127.0.0.1:9",
            # smtpd's client name lookups too: beyond /etc/hosts a
            # client is "unknown" (tests of names bring their own dnsmasq)
            "smtpd_dns_servers": "127.0.0.1:9",
        }
        if conf:
            self.params.update(conf)
        self.services = list(services or [])
        self.local_maxproc = "-"     # master.conf maxproc of local
        self.vmailbox = {"alice@example.test": "example.test/alice/",
                         "bob@example.test": "example.test/bob/",
                         "carol@example.test": "example.test/carol/"}
        self.aliases = {"postmaster": "root"}
        self.sys_users = []
        self._log_fd_pos = 0

    # ----- files -----------------------------------------------------------

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def _daemon_dir(self):
        """The build dir, or a copy of the binaries in DIR/libexec when the
        user the daemons run as cannot reach the build dir."""
        users = []
        if is_root():
            users.append(MAIL_OWNER if self.privileged else UNPRIV_USER)
        ok = True
        for u in users:
            r = subprocess.run(["runuser", "-u", u, "--", "test", "-x",
                                os.path.join(self.builddir, "postern")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ok = ok and r.returncode == 0
        if ok:
            return self.builddir
        dst = self.path("libexec")
        os.makedirs(dst, exist_ok=True)
        # every program of the build (daemons added later included)
        for d in os.listdir(self.builddir):
            src = os.path.join(self.builddir, d)
            if os.path.isfile(src) and os.access(src, os.X_OK):
                shutil.copy2(src, dst)
        os.chmod(dst, 0o755)
        return dst

    def write(self, rel, text, mode=0o644):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)
        self._chown(p)
        return p

    def _chown(self, p):
        if self.run_uid is not None:
            os.chown(p, self.run_uid, self.run_gid)

    def _chown_tree(self, top):
        if self.run_uid is None:
            return
        for root, dirs, files in os.walk(top):
            os.chown(root, self.run_uid, self.run_gid)
            for n in files:
                os.lchown(os.path.join(root, n), self.run_uid, self.run_gid)

    def conf_text(self):
        return "".join("%s = %s\n" % (k, v) for k, v in self.params.items())

    def master_text(self):
        lines = [
            "# service type private unpriv chroot wakeup maxproc command args",
            "%s:%d inet n - n - - smtpd" % (self.listen_addr, self.port),
        ]
        lines += [l.format(local_maxproc=self.local_maxproc) for l in STANDARD_SERVICES]
        lines += self.services
        return "\n".join(lines) + "\n"

    def write_config(self):
        self.write("postern.conf", self.conf_text())
        self.write("master.conf", self.master_text())

    def write_maps(self):
        self.write("vmailbox", "".join("%s %s\n" % kv for kv in self.vmailbox.items()))
        self.write("aliases", "".join("%s: %s\n" % kv for kv in self.aliases.items()))
        for m in ("vmailbox", "aliases"):
            self.postern("map", "build", "lmdb:" + self.path(m), check=True)

    def make_cert(self, cn=None, level="may"):
        """A self-signed certificate for smtpd (openssl req), set in the
        parameters with smtpd_tls_security_level=level. Call before
        prepare()/start(). Returns (cert, key) paths."""
        cert, key = self.path("cert.pem"), self.path("key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2",
                        "-subj", "/CN=" + (cn or self.params["myhostname"])],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(key, 0o600)
        self._chown(cert)
        self._chown(key)
        self.params["smtpd_tls_cert_file"] = cert
        self.params["smtpd_tls_key_file"] = key
        if level:
            self.params["smtpd_tls_security_level"] = level
        return cert, key

    def add_user(self, name, password):
        """A user of the auth daemon ("postern user add"), after prepare()."""
        return self.postern("user", "add", name, "--password-stdin",
                            input=password + "\n", check=True)

    def write_script(self, name, body):
        """An executable in DIR/bin, for |command deliveries."""
        p = self.write("bin/" + name, "#!/bin/sh\n" + body, mode=0o755)
        return p

    # ----- system users (privileged tests) ------------------------------

    def add_system_user(self, name):
        assert is_root()
        if user_exists(name):
            subprocess.run(["userdel", "-f", name], stderr=subprocess.DEVNULL)
        home = self.path("home", name)
        subprocess.run(["useradd", "-m", "-d", home, "-s", "/bin/sh",
                        "--user-group", name], check=True)
        self.sys_users.append(name)
        return home

    def remove_system_users(self):
        for u in self.sys_users:
            subprocess.run(["userdel", "-f", u], stderr=subprocess.DEVNULL)
            subprocess.run(["groupdel", u], stderr=subprocess.DEVNULL)
        self.sys_users = []

    # ----- processes -----------------------------------------------------

    def _popen_kw(self):
        kw = {}
        env = dict(os.environ)
        if self.run_uid is not None:
            kw.update(user=self.run_uid, group=self.run_gid, extra_groups=[])
            env["HOME"] = self.dir
            env["USER"] = env["LOGNAME"] = UNPRIV_USER
        kw["env"] = env
        kw["cwd"] = self.dir
        return kw

    def postern(self, *args, check=False, timeout=60, input=None):
        """Run the postern command against this instance; CompletedProcess."""
        cmd = [os.path.join(self.builddir, "postern"), "-c", self.dir] + list(args)
        vprint("run", " ".join(cmd))
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           input=input, **self._popen_kw())
        if check and r.returncode != 0:
            raise AssertionError("%s failed (%d)\nstdout: %s\nstderr: %s"
                                 % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
        return r

    def prepare(self):
        self._chown_tree(self.dir)
        self.write_config()
        self.write_maps()
        if self.privileged:
            # local delivers virtual mail as the virtual owner, who must be
            # able to create the mailbox directories under the base.
            os.chown(self.path("vmail"), self.vuid, self.vgid)

    def start(self, timeout=30, prepare=True):
        if prepare:
            self.prepare()
        self.stdout = open(self.path("start-fg.out"), "wb")
        self.stderr_path = self.path("start-fg.err")
        self.stderr = open(self.stderr_path, "wb")
        cmd = [os.path.join(self.builddir, "postern"), "-c", self.dir, "start-fg"]
        vprint("start", " ".join(cmd))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self.stdout, stderr=self.stderr,
                                     **self._popen_kw())
        self.wait_smtp(self.port, timeout)
        return self

    def start_daemon(self, timeout=30):
        """`postern start` (master in the background, as an administrator
        runs it); stop() then uses `postern stop`."""
        if self.proc is not None and self.proc.poll() is not None:
            self.stdout.close()
            self.stderr.close()
            self.proc = None     # a start-fg master that was killed
        self.postern("start", check=True, timeout=timeout)
        self.daemon = True
        self.wait_smtp(self.port, timeout)

    def wait_smtp(self, port, timeout=30, host=None):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("postern start-fg exited %s before listening\n"
                                     "stderr: %s\nlog: %s" % (self.proc.returncode,
                                                              self.stderr_text(),
                                                              self.log()[-3000:]))
            try:
                c = RawSMTP(port, host=host or self.listen_addr, timeout=5)
                code, _ = c.reply()
                try:
                    c.cmd("QUIT")
                except (OSError, EOFError, SMTPReplyError):
                    pass
                c.close()
                if code == 220:
                    return
                last = "greeting %d" % code
            except (OSError, EOFError, SMTPReplyError) as e:
                last = e
            time.sleep(0.2)
        raise AssertionError("SMTP port %d not ready after %ss (%s)\nstderr: %s\nlog: %s"
                             % (port, timeout, last, self.stderr_text(), self.log()[-3000:]))

    def stderr_text(self):
        try:
            with open(self.path("start-fg.err"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def pids(self):
        """{comm: [pid,...]} of the processes this instance runs."""
        if self.proc is None and not getattr(self, "daemon", False):
            return {}
        table = proc_table()
        res = {}
        mine = set([self.proc.pid] + descendants(self.proc.pid, table)) \
            if self.proc is not None else set()
        for pid, (ppid, comm, cmd) in table.items():
            if pid in mine or (self.dir in cmd and pid != os.getpid()):
                res.setdefault(comm, []).append(pid)
        return res

    def pid_of(self, comm, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            p = self.pids().get(comm)
            if p:
                return p[0]
            time.sleep(0.1)
        raise AssertionError("no %s process of this instance (have %s)"
                             % (comm, self.pids()))

    def master_pid(self):
        return self.pid_of("master")

    def reload(self):
        return self.postern("reload", check=True)

    def stop(self, timeout=30):
        """SIGTERM to our start-fg child, wait; then make sure nothing of the
        instance survives (by pid)."""
        if getattr(self, "daemon", False):
            self.daemon = False
            self.postern("stop", timeout=timeout)
        if self.proc is None:
            return None
        leftovers = set(descendants(self.proc.pid))
        rc = self.proc.poll()
        if rc is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                leftovers |= set(descendants(self.proc.pid))
                self.proc.kill()
                rc = self.proc.wait(10)
        self._reap_leftovers(leftovers)
        self.stdout.close()
        self.stderr.close()
        self.proc = None
        return rc

    def _reap_leftovers(self, known):
        """Processes of this instance still alive after stop: the ones we saw
        as descendants, and any whose command line names our directory."""
        deadline = time.time() + 5
        while True:
            table = proc_table()
            alive = [p for p in known if p in table]
            alive += [p for p, (_, _, cmd) in table.items()
                      if self.dir in cmd and p != os.getpid() and p not in alive]
            if not alive:
                return
            if time.time() > deadline:
                for p in alive:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                return
            time.sleep(0.2)

    def cleanup(self, keep=False):
        try:
            self.stop()
        finally:
            self.remove_system_users()
            if not keep and os.environ.get("POSTERN_KEEP") != "1":
                shutil.rmtree(self.dir, ignore_errors=True)
            else:
                print("[harness] kept %s" % self.dir, file=sys.stderr)

    # ----- observing -----------------------------------------------------

    def log(self):
        try:
            with open(self.path("maillog"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_mark(self):
        try:
            return os.path.getsize(self.path("maillog"))
        except OSError:
            return 0

    def log_since(self, mark):
        return self.log().encode("utf-8", "replace")[mark:].decode("utf-8", "replace") \
            if mark else self.log()

    def wait_log(self, regex, timeout=20, since=0, count=1):
        """Wait until regex matches count times in the log (after byte
        offset since). Returns the list of match objects."""
        rx = re.compile(regex, re.M)
        deadline = time.time() + timeout
        while True:
            text = self.log_since(since)
            ms = list(rx.finditer(text))
            if len(ms) >= count:
                return ms
            if time.time() > deadline:
                raise AssertionError("log: %d/%d matches of %r after %ss; log tail:\n%s"
                                     % (len(ms), count, regex, timeout, text[-4000:]))
            time.sleep(0.2)

    def queue_files(self, dirs=QUEUE_DIRS, include_tmp=False):
        """Queue files (relative paths) in the given queue sub-dirs."""
        res = []
        for d in dirs:
            p = self.path("queue", d)
            try:
                names = os.listdir(p)
            except OSError:
                continue
            for n in names:
                full = os.path.join(p, n)
                if os.path.isdir(full):
                    # tolerate hashed sub-directories
                    for n2 in os.listdir(full):
                        if include_tmp or not n2.startswith("."):
                            res.append(os.path.join(d, n, n2))
                    continue
                if include_tmp or not n.startswith("."):
                    res.append(os.path.join(d, n))
        return sorted(res)

    def wait_queue_empty(self, timeout=30):
        deadline = time.time() + timeout
        while True:
            q = self.queue_files()
            if not q:
                return
            if time.time() > deadline:
                raise AssertionError("queue not empty after %ss: %s\nlog tail:\n%s"
                                     % (timeout, q, self.log()[-4000:]))
            time.sleep(0.2)

    def vmaildir(self, addr):
        return self.path("vmail", self.vmailbox[addr].rstrip("/"))


def maildir_messages(path):
    """Bytes of every message in a Maildir (new/ and cur/), sorted by name."""
    res = []
    for sub in ("new", "cur"):
        d = os.path.join(path, sub)
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for n in names:
            if n.startswith("."):
                continue
            with open(os.path.join(d, n), "rb") as f:
                res.append(f.read())
    return res


def wait_maildir(path, count=1, timeout=30, inst=None):
    deadline = time.time() + timeout
    while True:
        msgs = maildir_messages(path)
        if len(msgs) >= count:
            return msgs
        if time.time() > deadline:
            tail = inst.log()[-4000:] if inst else ""
            raise AssertionError("%s: %d/%d messages after %ss\nlog tail:\n%s"
                                 % (path, len(msgs), count, timeout, tail))
        time.sleep(0.2)


def wait_file(path, predicate=lambda b: len(b) > 0, timeout=30, inst=None):
    deadline = time.time() + timeout
    data = None
    while True:
        try:
            with open(path, "rb") as f:
                data = f.read()
            if predicate(data):
                return data
        except OSError:
            pass
        if time.time() > deadline:
            tail = inst.log()[-4000:] if inst else ""
            raise AssertionError("%s not as expected after %ss (have %r)\nlog tail:\n%s"
                                 % (path, timeout, data and data[:300], tail))
        time.sleep(0.2)


def make_message(sender, rcpts, subject, body, size=None):
    """An RFC 5322 message with CRLF line ends (what goes on the wire)."""
    hdr = ("From: <%s>\r\nTo: %s\r\nSubject: %s\r\n"
           "Message-ID: <%s.%d@client.example>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n\r\n"
           % (sender, ", ".join("<%s>" % r for r in rcpts), subject,
              subject.replace(" ", "-"), int(time.time() * 1e6)))
    if size is not None:
        line = "x" * 70 + "\r\n"
        body = body + line * max(0, (size - len(hdr) - len(body)) // len(line))
    return (hdr + body).encode()


def dot_stuff(msg):
    """RFC 5321 4.5.2 transparency, for raw sends."""
    if msg.startswith(b"."):
        msg = b"." + msg
    return msg.replace(b"\n.", b"\n..")


def smtp_client(inst, source=None, port=None, timeout=30):
    s = smtplib.SMTP(timeout=timeout,
                     source_address=(source, 0) if source else None)
    s.connect(inst.listen_addr, port or inst.port)
    s.ehlo("client.example")
    return s


def strace_attach(test, pid, trace, syscalls, follow=False):
    """strace -p pid (-f: and its children) writing the calls in syscalls
    ("openat,rename") to the file trace, once it is attached. Skips the
    test when strace is missing or may not attach. Stop it with
    strace_stop()."""
    if shutil.which("strace") is None:
        test.skipTest("strace is not installed (scripts/deps.sh strace)")
    cmd = ["strace"] + (["-f"] if follow else []) + [
        "-qq", "-o", trace, "-e", "trace=" + syscalls, "-p", str(pid)]
    st = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 10
    while time.time() < deadline and not os.path.exists(trace):
        time.sleep(0.05)
    time.sleep(0.5)     # attached: strace writes the file first
    if st.poll() is not None:
        test.skipTest("strace cannot attach: %s" % st.stderr.read().decode())
    return st


def strace_stop(st):
    st.send_signal(signal.SIGINT)
    st.wait(30)


def qmgr_trigger_peers(qmgr_pid):
    """Pids at the other end of the connections qmgr has accepted on its
    trigger socket (ss -xp: a unix socket's own and its peer's inode)."""
    out = subprocess.run(["ss", "-xpna"], capture_output=True, text=True,
                         check=True).stdout
    owner, mine = {}, []
    for line in out.splitlines()[1:]:
        f = line.split()
        if len(f) < 8 or f[0] != "u_str":
            continue
        local, inode, peer = f[4], f[5], f[7]
        pids = [int(p) for p in re.findall(r"pid=(\d+)", line)]
        for p in pids:
            owner.setdefault(inode, set()).add(p)
        if f[1] == "ESTAB" and local.endswith("/qmgr") and qmgr_pid in pids:
            mine.append(peer)
    return set(p for peer in mine for p in owner.get(peer, ()))


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is dead for our purposes
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def banner_within(port, timeout, host="127.0.0.1"):
    """True once a connection to port is greeted with 220 within timeout
    seconds (retrying refused or silent connections)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            c = RawSMTP(port, host=host, timeout=max(0.1, deadline - time.time()))
            try:
                if c.reply()[0] == 220:
                    return True
            finally:
                c.close()
        except (OSError, EOFError, SMTPReplyError):
            time.sleep(0.05)
    return False


def burst_banners(port, n, timeout=60, host="127.0.0.1"):
    """Open n connections to port at once (non-blocking, one thread) and
    wait for their first line. Returns {index: seconds to a 220 line}
    for those greeted within timeout."""
    sel = selectors.DefaultSelector()
    start = time.time()
    socks = {}
    try:
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((host, port))
            socks[i] = (s, bytearray())
            sel.register(s, selectors.EVENT_READ, i)
        greeted = {}
        done = 0
        while done < n and time.time() < start + timeout:
            for key, _ in sel.select(timeout=0.5):
                i = key.data
                s, got = socks[i]
                try:
                    data = s.recv(512)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                got += data
                if b"\n" in got or not data:
                    sel.unregister(s)
                    done += 1
                    if got.startswith(b"220"):
                        greeted[i] = time.time() - start
        return greeted
    finally:
        for s, _ in socks.values():
            try:
                s.close()
            except OSError:
                pass
        sel.close()


class InstanceTestCase(unittest.TestCase):
    """Base class: self.inst is created by make_instance() and cleaned up
    after the test; on failure the log tail and start-fg stderr are printed."""

    inst = None

    def make_instance(self, **kw):
        inst = Instance(**kw)
        self.inst = inst
        self.addCleanup(self._cleanup_inst, inst)
        return inst

    def _failed(self):
        outcome = getattr(self, "_outcome", None)
        if outcome is None:
            return False
        result = getattr(outcome, "result", None)
        if result is not None:
            for t, _ in result.errors + result.failures:
                if t is self:
                    return True
        return not getattr(outcome, "success", True)

    # Daemon crashes fail the test even when the client side looked fine
    # (master restarts crashed children). SIGKILL is what durability tests
    # send on purpose.
    CRASH_RX = re.compile(r"killed by signal (?!9\b)\d+|\bpanic: |"
                          r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error: ")

    def crash_reports(self, inst):
        text = inst.log() + "\n" + inst.stderr_text()
        return [l for l in text.splitlines() if self.CRASH_RX.search(l)]

    def _cleanup_inst(self, inst):
        failed = self._failed()
        try:
            inst.stop()
        except Exception as e:  # noqa: BLE001 - still clean up below
            sys.stderr.write("stop failed: %r\n" % e)
        crashes = self.crash_reports(inst)
        failed = failed or bool(crashes)
        if failed:
            sys.stderr.write("\n==== %s: instance %s ====\n--- start-fg stderr:\n%s\n"
                             "--- maillog tail:\n%s\n" % (self.id(), inst.dir,
                                                         inst.stderr_text()[-3000:],
                                                         inst.log()[-6000:]))
        inst.cleanup(keep=failed and os.environ.get("POSTERN_KEEP") == "1")
        if crashes:
            raise AssertionError("daemon crash reports:\n" + "\n".join(crashes[:20]))

    def assertQueueEmpty(self, inst=None, timeout=30):
        (inst or self.inst).wait_queue_empty(timeout)


def require_binaries():
    """Call from setUpModule: a missing binary is a failure, not a skip."""
    missing = [d for d in DAEMONS if not os.access(os.path.join(BUILDDIR, d), os.X_OK)]
    if missing:
        raise RuntimeError("not built in %s: %s (set POSTERN_BUILDDIR)"
                           % (BUILDDIR, ", ".join(missing)))


def main():
    """Entry point for test programs: sudo re-exec if useful, then unittest."""
    maybe_reexec_with_sudo()
    unittest.main(verbosity=2)

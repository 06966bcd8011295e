"""
benchlib - what the mailbox benchmarks (pop3-throughput, imap-throughput)
share: the test messages, filling Maildirs, summing the resident memory of
idle sessions, and a PRIVATE Dovecot instance (own config, base_dir, state
and mail in a temporary directory, listeners on free loopback ports,
passwd-file auth with the same hashes as Postern's). The system Dovecot is
never used or changed; everything started here is stopped here, by pid.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "t", "integration"))

import postern_harness as H  # noqa: E402

PW = "bench-mail-pw"


def log(*a):
    print(*a, flush=True)


def user(i):
    return "bench%d@example.test" % i


def message(i, size):
    head = ("From: load@client.example\nTo: bench@example.test\n"
            "Subject: message %d\nMessage-ID: <%d@bench>\n\n" % (i, i))
    line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-\n"
    body = (line * (size // len(line) + 1))
    return (head + body)[:size - 1].encode() + b"\n"


def fill(maildir, n, size, uid, gid, start):
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    for i in range(n):
        p = os.path.join(maildir, "new", "%d.M%dP1.bench" % (1700000000 + start + i, i))
        with open(p, "wb") as f:
            f.write(message(start + i, size))
        os.chown(p, uid, gid)
    for root, dirs, files in os.walk(maildir):
        os.chown(root, uid, gid)


def chown_up(path, uid, gid, stop):
    while path != stop and len(path) > len(stop):
        os.chown(path, uid, gid)
        path = os.path.dirname(path)


def proc_pss_kib(pid):
    """Proportional set size: shared pages divided among their users, so
    the sum over many processes is the memory they really take (RSS
    counts a shared library once per process)."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def idle_rss(open_session, close_session, n, pids_fn):
    """Open n idle logged-in sessions with open_session(i); return
    (sessions opened, PSS KiB before, after, processes counted). A session
    that fails to open is counted out, not fatal."""
    before = sum(proc_pss_kib(p) for p in pids_fn())
    sess = []
    try:
        for i in range(n):
            try:
                sess.append(open_session(i))
            except Exception as e:  # noqa: BLE001 - the count says it
                log("  idle session %d failed: %r" % (i, e))
                if len(sess) < i // 2:
                    break
        time.sleep(1)
        pids = pids_fn()
        after = sum(proc_pss_kib(p) for p in pids)
        return len(sess), before, after, len(pids)
    finally:
        for c in sess:
            try:
                close_session(c)
            except Exception:  # noqa: BLE001
                pass


def postern_instance(args, services, per_client, conf=None):
    """A prepared and started Postern with --clients virtual users, each
    Maildir holding per_client messages. Sets args.hashes for Dovecot."""
    priv = os.geteuid() == 0
    inst = H.Instance(privileged=priv, services=services, conf=conf)
    for k in range(args.clients):
        inst.vmailbox[user(k)] = "example.test/bench%d/" % k
    inst.prepare()
    for k in range(args.clients):
        inst.add_user(user(k), PW)
        md = inst.vmaildir(user(k))
        fill(md, per_client, args.size, inst.vuid, inst.vgid, k * 100000)
        chown_up(md, inst.vuid, inst.vgid, inst.path("vmail"))
    # The same password hashes for Dovecot ({CRYPT}: libc's crypt(),
    # which knows yescrypt), so both pay the same for a login.
    with open(inst.path("passwd")) as f:
        args.hashes = f.read().replace("{YESCRYPT}", "{CRYPT}")
    inst.start(prepare=False)
    return inst


def wait_port(port, proc=None, what="server"):
    deadline = time.time() + 30
    while not H.port_accepts(port):
        if time.time() > deadline or (proc is not None and proc.poll() is not None):
            err = proc.stderr.read().decode()[-2000:] if proc is not None else ""
            raise RuntimeError("%s did not start: %s" % (what, err))
        time.sleep(0.2)


DOVECOT_CONF = """
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = {protocol}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
pop3_uidl_format = %08Xu%08Xv
protocol {protocol} {{
  mail_max_userip_connections = 100000
}}
service {protocol} {{
  process_limit = 100000
}}
default_client_limit = 100000
default_process_limit = 100000
default_vsz_limit = 0
passdb {{
  driver = passwd-file
  args = username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  process_min_avail = 2
  client_limit = 100000
}}
"""


# LMTP (t/integration/test_lmtp.py): a UNIX listener at {d}/run/lmtp
# and a TCP one on a free loopback port. Users exist only when listed in
# {d}/passwd: the static userdb without allow_all_users asks the passdb,
# so an unknown recipient is refused at RCPT as on a real server.
DOVECOT_LMTP_CONF = """
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
passdb {{
  driver = passwd-file
  args = username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp_port}
  }}
}}
"""

PACKAGES = {"pop3": "dovecot-pop3d", "imap": "dovecot-imapd", "lmtp": "dovecot-lmtpd"}


class Dovecot:
    """A private Dovecot for one protocol ("pop3", "imap" or "lmtp") on a
    free loopback port. pop3/imap: the Maildirs filled like Postern's
    (args.clients users); lmtp: the names in users exist, the UNIX socket
    is lmtp_socket. extra_conf is appended to the configuration."""

    def __init__(self, args, protocol, per_client, users=(), extra_conf=""):
        self.protocol = protocol
        pkg = PACKAGES[protocol]
        if shutil.which("dovecot") is None \
                or not os.path.exists("/usr/lib/dovecot/" + protocol):
            if os.geteuid() != 0:
                raise RuntimeError("dovecot not installed and not root")
            subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", pkg],
                           check=True, stdout=subprocess.DEVNULL)
        d = self.dir = tempfile.mkdtemp(prefix="%s-dovecot-" % protocol)
        os.chmod(d, 0o755)
        if os.geteuid() == 0:
            H.ensure_system_user(H.UNPRIV_USER)
            self.uid, self.gid = H.user_ids(H.UNPRIV_USER)
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
        self.port = H.free_port()
        self.lmtp_socket = os.path.join(d, "run", "lmtp")
        with open(os.path.join(d, "dovecot.conf"), "w") as f:
            if protocol == "lmtp":
                f.write(DOVECOT_LMTP_CONF.format(d=d, uid=self.uid, gid=self.gid,
                                                 lmtp_port=self.port))
                f.write(extra_conf)
            else:
                f.write(DOVECOT_CONF.format(
                    d=d, protocol=protocol, uid=self.uid, gid=self.gid,
                    pop3_port=self.port if protocol == "pop3" else 0,
                    imap_port=self.port if protocol == "imap" else 0))
                f.write(extra_conf)
        with open(os.path.join(d, "passwd"), "w") as f:
            if getattr(args, "hashes", None):
                f.write(args.hashes)
            elif args is not None:
                for k in range(args.clients):
                    f.write("%s:{PLAIN}%s\n" % (user(k), PW))
            for u in users:
                f.write("%s:{PLAIN}%s\n" % (u, PW))
        for sub in ("mail", "home"):
            os.makedirs(os.path.join(d, sub))
            os.chown(os.path.join(d, sub), self.uid, self.gid)
        for k in range(args.clients if args is not None else 0):
            self.fill(k, per_client, args.size, k * 100000)
        self.start()

    def start(self):
        """Start (or start again after stop(keep=True))."""
        self.proc = subprocess.Popen(
            ["dovecot", "-F", "-c", os.path.join(self.dir, "dovecot.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_port(self.port, self.proc, "dovecot")
        except Exception:
            self.stop()
            raise

    def maildir(self, name):
        return os.path.join(self.dir, "mail", name)

    def fill(self, k, n, size, start):
        fill(os.path.join(self.dir, "mail", user(k)), n, size, self.uid, self.gid, start)

    def pids(self):
        master = int(open(os.path.join(self.dir, "run", "master.pid")).read())
        return [master] + H.descendants(master)

    def stop(self, keep=False):
        """Stop our dovecot (by its pid); keep=True keeps its directory
        (mail, config) for start() again."""
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)

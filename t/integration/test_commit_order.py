#!/usr/bin/env python3
"""
The order of a commit, proved from a syscall trace (DESIGN.md invariant 1:
250 only after the fsync of the queue file and of its directory).

The whole instance runs under `strace -f`, with two smtpd processes
(smtpd_process_count = 2; idle sessions are opened first until master has
started the second). Several sessions at once send
several messages each with PIPELINING: the end of one message (".", or
"BDAT n LAST" with its octets) travels in the same write as the next
MAIL, RCPT and DATA, so the server has more commands in hand while a
commit is pending. Then the trace is parsed: file descriptors are mapped
to paths through the open calls (per process: threads share their fd
table, found through clone(CLONE_THREAD)), and for every "250 ... queued
as ID" written to a client it checks, in that smtpd process:

  - the .tmp file that was renamed to ID was fsynced (or fdatasynced)
    before the rename started and before the reply was written;
  - the directory holding ID was fsynced after the rename returned and
    before the reply was written.

Order is line order in the trace: strace reports a syscall's return (the
line, or its "resumed" line) before it reports a later syscall's entry.
No timing is measured. The client's queue IDs must all appear in the trace
and every message must reach the Maildir, so the test cannot pass on an
empty or partial trace.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postern_harness as H  # noqa: E402

SESSIONS = 8
PER_SESSION = 4
RCPT = "alice@example.test"
SYSCALLS = ("open,openat,openat2,creat,close,dup,dup2,dup3,fcntl,fsync,fdatasync,"
            "rename,renameat,renameat2,link,linkat,write,writev,sendto,sendmsg,"
            "clone,clone3,fork,vfork")


def setUpModule():
    H.require_binaries()
    if shutil.which("strace") is None:
        raise unittest.SkipTest("strace is not installed (scripts/deps.sh strace)")
    r = subprocess.run(["strace", "-f", "-o", os.devnull, "true"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise unittest.SkipTest("strace cannot trace here (ptrace refused?): %s"
                                % r.stderr.decode(errors="replace").strip())


# ----- trace parsing ---------------------------------------------------------

LINE_RX = re.compile(r"^(\d+)\s+(.*)$")
RESUMED_RX = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
CALL_RX = re.compile(r"^(\w+)\((.*)$")
RET_RX = re.compile(r"\)\s+=\s+(-?\d+|\?)(?:\s.*)?$")
STR_RX = re.compile(r'"((?:[^"\\]|\\.)*)"')


class Call:
    __slots__ = ("tid", "name", "args", "ret", "entry", "exit")

    def __init__(self, tid, name, args, ret, entry, exit_):
        self.tid, self.name, self.args, self.ret = tid, name, args, ret
        self.entry, self.exit = entry, exit_

    def strings(self):
        return [bytes(s, "utf-8").decode("unicode_escape") for s in STR_RX.findall(self.args)]

    def first_int(self):
        m = re.match(r"\s*(-?\d+)", self.args)
        return int(m.group(1)) if m else None


def parse_trace(text):
    """Calls in trace order, each with the line of its entry and of its
    return."""
    calls, pending = [], {}
    for idx, raw in enumerate(text.splitlines()):
        m = LINE_RX.match(raw)
        if not m:
            continue
        tid, rest = int(m.group(1)), m.group(2)
        if rest.startswith("+++") or rest.startswith("---"):
            continue
        r = RESUMED_RX.match(rest)
        if r:
            name, tail = r.group(1), r.group(2)
            start = pending.pop(tid, None)
            if start is None or start[0] != name:
                continue
            full = start[1] + tail
            entry = start[2]
        else:
            c = CALL_RX.match(rest)
            if not c:
                continue
            name, full, entry = c.group(1), c.group(2), idx
            if rest.endswith("<unfinished ...>"):
                pending[tid] = (name, full[:-len("<unfinished ...>")].rstrip(), idx)
                continue
        rm = RET_RX.search(full)
        if not rm:
            continue
        ret = None if rm.group(1) == "?" else int(rm.group(1))
        calls.append(Call(tid, name, full[:rm.start()], ret, entry, idx))
    return calls


def thread_groups(calls):
    """tid -> the process (tgid) it belongs to."""
    tgid = {}
    for c in sorted(calls, key=lambda c: c.exit):
        if c.name in ("clone", "clone3", "fork", "vfork") and c.ret and c.ret > 0:
            parent = tgid.get(c.tid, c.tid)
            tgid[c.ret] = parent if "CLONE_THREAD" in c.args else c.ret
    return tgid


class Proc:
    """What one process did to the queue: fsyncs by path, renames, replies."""

    def __init__(self):
        self.fds = {}
        self.syncs = []       # (path, entry, exit)
        self.renames = []     # (src, dst, entry, exit)
        self.replies = []     # (queue id, entry)



def replay(calls, tgid):
    """Walk the calls in trace order (an open counts from its return, every
    other call from its entry) and build each process's record."""
    events = []
    for c in calls:
        events.append((c.exit if c.name in ("open", "openat", "openat2", "creat",
                                            "dup", "dup2", "dup3", "fcntl")
                       else c.entry, c))
    events.sort(key=lambda e: e[0])
    procs = {}
    for _, c in events:
        p = procs.setdefault(tgid.get(c.tid, c.tid), Proc())
        n = c.name
        if n in ("open", "openat", "openat2", "creat") and c.ret is not None and c.ret >= 0:
            s = c.strings()
            if not s:
                continue
            path = s[0]
            if n in ("openat", "openat2") and not path.startswith("/"):
                base = c.args.split(",", 1)[0].strip()
                m = re.match(r"(\d+)", base)
                if m and int(m.group(1)) in p.fds:
                    path = os.path.join(p.fds[int(m.group(1))], path)
            p.fds[c.ret] = os.path.normpath(path)
        elif n in ("dup", "dup2", "dup3") or (n == "fcntl" and "F_DUPFD" in c.args):
            old = c.first_int()
            if c.ret is not None and c.ret >= 0 and old in p.fds:
                p.fds[c.ret] = p.fds[old]
        elif n == "close":
            p.fds.pop(c.first_int(), None)
        elif n in ("fsync", "fdatasync") and c.ret == 0:
            path = p.fds.get(c.first_int())
            if path is not None:
                p.syncs.append((path, c.entry, c.exit))
        elif n in ("rename", "renameat", "renameat2", "link", "linkat") and c.ret == 0:
            s = c.strings()
            if len(s) >= 2:
                p.renames.append((os.path.normpath(s[0]), os.path.normpath(s[1]),
                                  c.entry, c.exit))
        elif n in ("write", "writev", "sendto", "sendmsg"):
            text = "".join(c.strings())
            for m in re.finditer(r"250[ -]2\.0\.0 Ok: queued as (\w+)", text):
                p.replies.append((m.group(1), c.entry))
    return procs


def check_order(procs):
    """Problems found, and the number of replies checked."""
    problems, checked = [], 0
    for pid, p in procs.items():
        for qid, at in p.replies:
            checked += 1
            ren = [r for r in p.renames if os.path.basename(r[1]) == qid]
            if not ren:
                problems.append("%s: reply in %d, but no rename to it in that process"
                                % (qid, pid))
                continue
            src, dst, r_entry, r_exit = ren[-1]
            if r_exit >= at:
                problems.append("%s: reply before the rename returned" % qid)
            if not any(path == src and s_exit < r_entry and s_exit < at
                       for path, _, s_exit in p.syncs):
                problems.append("%s: no fsync of %s before the rename and the reply"
                                % (qid, src))
            d = os.path.dirname(dst)
            if not any(path == d and s_entry > r_exit and s_exit < at
                       for path, s_entry, s_exit in p.syncs):
                problems.append("%s: no fsync of %s between the rename and the reply"
                                % (qid, d))
    return problems, checked


def recycled_commits(procs):
    """Replies whose queue file was taken from recycle/ (renamed from there
    to the .tmp name that was then renamed to the queue ID)."""
    n = 0
    for p in procs.values():
        for qid, _ in p.replies:
            ren = [r for r in p.renames if os.path.basename(r[1]) == qid]
            if ren and any(r[1] == ren[-1][0] and
                           os.path.basename(os.path.dirname(r[0])) == "recycle"
                           for r in p.renames):
                n += 1
    return n


def shared_dir_syncs(procs):
    """Directory fsyncs that covered more than one rename (information)."""
    shared = 0
    for p in procs.values():
        for path, s_entry, _ in p.syncs:
            prev = [s for s in p.syncs if s[0] == path and s[2] < s_entry]
            since = max([s[2] for s in prev], default=-1)
            n = sum(1 for r in p.renames
                    if os.path.dirname(r[1]) == path and since < r[3] < s_entry)
            if n > 1:
                shared += 1
    return shared


# ----- the client ------------------------------------------------------------

def body(sid, i):
    return ("Subject: order %d.%d\r\nMessage-ID: <order.%d.%d@client.example>\r\n\r\n"
            % (sid, i, sid, i) + ("line %d.%d of the body\r\n" % (sid, i)) * 60).encode()


def session(port, sid, ids, errors):
    """PER_SESSION messages; each end of data shares its write with the
    next envelope. The last message goes by BDAT ... LAST."""
    try:
        c = H.RawSMTP(port, timeout=120)
        code, _ = c.reply()
        assert code == 220, code
        code, ehlo = c.cmd("EHLO client%d.example" % sid)
        assert code == 250 and "PIPELINING" in ehlo, (code, ehlo)
        chunking = "CHUNKING" in ehlo
        carry = b""      # the end of the previous message
        expect_queued = 0
        for i in range(PER_SESSION):
            env = ("MAIL FROM:<s%d@client.example>\r\nRCPT TO:<%s>\r\n" % (sid, RCPT)).encode()
            b = body(sid, i)
            if chunking and i == PER_SESSION - 1:
                c.send(carry + env + b"BDAT %d LAST\r\n" % len(b) + b)
                want = [250] * expect_queued + [250, 250, 250]
            else:
                c.send(carry + env + b"DATA\r\n")
                want = [250] * expect_queued + [250, 250, 354]
            got = [c.reply() for _ in want]
            assert [g[0] for g in got] == want, (sid, i, got)
            for code, text in got[:expect_queued]:
                ids.append(text[0].split("queued as ")[1])
            if want[-1] == 354:
                carry, expect_queued = b + b".\r\n", 1
            else:
                ids.append(got[-1][1][0].split("queued as ")[1])
                carry, expect_queued = b"", 0
        c.send(carry + b"QUIT\r\n")
        for _ in range(expect_queued):
            code, text = c.reply()
            assert code == 250, (code, text)
            ids.append(text[0].split("queued as ")[1])
        assert c.reply()[0] == 221
        c.close()
    except Exception as e:  # noqa: BLE001 - reported by the test
        errors.append("session %d: %r" % (sid, e))


class CommitOrder(H.InstanceTestCase):
    def start_traced(self, inst, trace):
        inst.prepare()
        inst.stdout = open(inst.path("start-fg.out"), "wb")
        inst.stderr_path = inst.path("start-fg.err")
        inst.stderr = open(inst.stderr_path, "wb")
        cmd = ["strace", "-f", "-qq", "-s", "8192", "-o", trace, "-e", "trace=" + SYSCALLS,
               os.path.join(inst.builddir, "postern"), "-c", inst.dir, "start-fg"]
        inst.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=inst.stdout,
                                     stderr=inst.stderr, **inst._popen_kw())
        inst.wait_smtp(inst.port, 90)

    def stop_traced(self, inst):
        """SIGTERM to the instance (strace's child), so that strace ends
        with it and its trace is complete."""
        kids = [p for p, (pp, _, _) in H.proc_table().items() if pp == inst.proc.pid]
        for p in kids:
            try:
                os.kill(p, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            inst.proc.wait(60)
        except subprocess.TimeoutExpired:
            pass

    def test_every_250_follows_its_fsyncs(self):
        # Two smtpd processes (the harness default is one), so the replies
        # come from more than one process, each with its commit thread.
        inst = self.make_instance(conf={"smtpd_process_count": "2"})
        trace = inst.path("strace.out")
        self.start_traced(inst, trace)
        # Idle sessions until master has started the second smtpd, so the
        # load below is shared (which process takes a session is the
        # kernel's choice: not asserted).
        idle = []
        for _ in range(40):
            c = H.RawSMTP(inst.port, timeout=60)
            self.assertEqual(c.reply()[0], 220)
            idle.append(c)
            if len(inst.pids().get("smtpd", [])) >= 2:
                break
        # Two rounds: the second one's writers reuse the files the first
        # one's messages left in recycle/ once delivered (queue.c), so
        # both kinds of queue file, new and recycled, are checked.
        ids, errors = [], []
        maildir = inst.path("vmail", "example.test", "alice", "new")
        total = 0
        for _ in range(2):
            threads = [threading.Thread(target=session, args=(inst.port, k, ids, errors))
                       for k in range(SESSIONS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(300)
            self.assertEqual(errors, [])
            total += SESSIONS * PER_SESSION
            self.assertEqual(len(ids), total)
            deadline = time.time() + 120
            while time.time() < deadline:
                if os.path.isdir(maildir) and len(os.listdir(maildir)) >= total and \
                        not os.listdir(inst.path("queue", "active")):
                    break
                time.sleep(0.2)
            self.assertEqual(len(os.listdir(maildir)), total)
        for c in idle:
            c.close()
        self.stop_traced(inst)

        with open(trace, encoding="utf-8", errors="replace") as f:
            calls = parse_trace(f.read())
        procs = replay(calls, thread_groups(calls))
        problems, checked = check_order(procs)
        replied = sorted(q for p in procs.values() for q, _ in p.replies)
        self.assertEqual(replied, sorted(ids),
                         "the trace must hold every reply the clients got")
        self.assertEqual(checked, total)
        self.assertEqual(problems, [])
        reused = recycled_commits(procs)
        self.assertGreater(reused, 0, "no reply was for a recycled queue file")
        sys.stderr.write("commit order: %d replies checked from %d smtpd process(es); "
                         "%d directory fsyncs covered more than one rename; "
                         "%d replies for recycled queue files\n"
                         % (checked, len([p for p in procs.values() if p.replies]),
                            shared_dir_syncs(procs), reused))


if __name__ == "__main__":
    unittest.main(verbosity=2)

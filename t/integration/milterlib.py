"""
A tiny milter (Sendmail milter protocol version 6, the milter side) for
the integration tests, written from the protocol description: frames are
a 4-octet length, a command octet and its payload.

The milter's behaviour comes from the message it is shown, so one
milter serves many tests:
  MAIL FROM <tempfail@...>      -> TEMPFAIL at MAIL
  RCPT TO <reject-me@...>       -> REJECT at RCPT
  Subject: REJECTME             -> REPLYCODE "550 5.7.1 Spam detected" at EOM
  Subject: TEMPME               -> TEMPFAIL at EOM
  Subject: DISCARDME            -> DISCARD at EOM
  Subject: HOLDME               -> QUARANTINE "held for review", CONTINUE
  unknown command XSPAM ...      -> REPLYCODE "550 5.7.1 No spam commands"
  Subject: WAITME               -> holds its end-of-message answer (CONTINUE)
                                   until self.release is set
  Subject: ADDALIAS             -> ADDRCPT <team@alias.test>, CONTINUE
  Subject: EDITME               -> every edit: ADDHEADER, CHGHEADER, INSHEADER,
                                   delete X-Remove, REPLBODY, CHGFROM, ADDRCPT
                                   carol, DELRCPT bob; then ACCEPT
mode "slow": answers OPTNEG, then never answers CONNECT.
want_macros: {stage number: "names"} sent in the OPTNEG answer (the
protocol 6 macro request, SMFIM_*); steps: the SMFIP_* flags it asks for
(e.g. 0x800, RCPT_REJ: the MTA's refused recipients too).
The OPTNEG offer is kept in self.optneg (version, actions, steps); the
milter answers with the offered version when it is below 6. Every
macro and command seen is recorded (self.seen; self.macros holds the
last value of each macro, self.stage_macros the macros sent with each
command letter) for assertions.
"""

import socket
import struct
import threading

import postern_harness as H

SMFIC_OPTNEG = b"O"


def frame(cmd, payload=b""):
    return struct.pack(">I", len(payload) + 1) + cmd + payload


class Milter:
    def __init__(self, mode="normal", host="127.0.0.1", want_macros=None,
                 steps=0):
        self.mode = mode
        self.steps = steps      # SMFIP_* flags asked for in OPTNEG
        self.want_macros = want_macros or {}
        self.optneg = None
        self.release = threading.Event()
        self.stage_macros = {}  # command letter -> {name: value}
        self.rcpt_macros = []   # the macros of each RCPT, in order
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.endpoint = "inet:%s:%d" % (host, self.port)
        self.seen = []          # (command letter, decoded payload)
        self.macros = {}        # name -> last value
        self.lock = threading.Lock()
        self.stopping = False
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def stop(self):
        self.release.set()
        self.stopping = True
        H.close_listener(self.sock, self.thread)
        # shutdown() first, as for the listener: a thread blocked in recv()
        # would otherwise keep the socket alive behind a closed descriptor
        # whose number the next test's sockets may get.
        for s in list(self.conns):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    @staticmethod
    def _read(c, n):
        b = b""
        while len(b) < n:
            d = c.recv(n - len(b))
            if not d:
                raise EOFError
            b += d
        return b

    def _serve(self, c):
        st = {"subject": "", "mail": "", "hold": False}
        try:
            while True:
                (n,) = struct.unpack(">I", self._read(c, 4))
                data = self._read(c, n)
                cmd, payload = data[:1], data[1:]
                out = self._handle(cmd, payload, st)
                if out:
                    c.sendall(out)
        except (EOFError, OSError):
            pass
        finally:
            c.close()

    def _record(self, cmd, what):
        with self.lock:
            self.seen.append((cmd, what))

    def _handle(self, cmd, p, st):
        cont = frame(b"c")
        if cmd == b"O":
            ver, act, proto = struct.unpack(">III", p[:12])
            with self.lock:
                self.optneg = (ver, act, proto)
            # All actions, every step, a reply to each.
            extra = b"".join(struct.pack(">I", st) + names.encode() + b"\0"
                             for st, names in sorted(self.want_macros.items()))
            return frame(b"O", struct.pack(">III", min(ver, 6), act & 0x1ff,
                                            self.steps) + extra)
        if cmd == b"D":
            parts = p[1:].split(b"\0")
            stage = {}
            for i in range(0, len(parts) - 1, 2):
                stage[parts[i].decode()] = parts[i + 1].decode()
            with self.lock:
                self.macros.update(stage)
                self.stage_macros[p[:1].decode()] = stage
                if p[:1] == b"R":
                    self.rcpt_macros.append(stage)
            self._record("D", p[:1].decode())
            return b""
        if cmd == b"C":
            self._record("C", p.split(b"\0")[0].decode())
            if self.mode == "slow":
                return b""          # never answers
            return cont
        if cmd == b"H":
            self._record("H", p.rstrip(b"\0").decode())
            return cont
        if cmd == b"M":
            args = [a.decode() for a in p.split(b"\0") if a]
            self._record("M", args)
            st.update(subject="", mail=args[0], hold=False)
            if args[0].startswith("<tempfail@"):
                return frame(b"t")
            return cont
        if cmd == b"R":
            args = [a.decode() for a in p.split(b"\0") if a]
            self._record("R", args)
            if args[0].startswith("<reject-me@"):
                return frame(b"r")
            return cont
        if cmd == b"T":
            self._record("T", "")
            return cont
        if cmd == b"U":
            line = p.rstrip(b"\0").decode()
            self._record("U", line)
            if line.startswith("XSPAM"):
                return frame(b"y", b"550 5.7.1 No spam commands\0")
            return cont
        if cmd == b"L":
            name, value = p.split(b"\0")[:2]
            self._record("L", (name.decode(), value.decode()))
            if name.lower() == b"subject":
                st["subject"] = value.decode().strip()
            return cont
        if cmd == b"N":
            self._record("N", "")
            return cont
        if cmd == b"B":
            self._record("B", p.decode("latin-1"))
            return cont
        if cmd == b"E":
            self._record("E", "")
            return self._eom(st)
        if cmd in (b"A", b"Q", b"K"):
            self._record(cmd.decode(), "")
            return b""
        return cont

    def _eom(self, st):
        s = st["subject"]
        if s == "REJECTME":
            return frame(b"y", b"550 5.7.1 Spam detected\0")
        if s == "TEMPME":
            return frame(b"t")
        if s == "DISCARDME":
            return frame(b"d")
        if s == "WAITME":
            self.release.wait(120)
            return frame(b"c")
        if s == "ADDALIAS":
            return frame(b"+", b"<team@alias.test>\0") + frame(b"c")
        if s == "HOLDME":
            return frame(b"q", b"held for review\0") + frame(b"c")
        if s == "EDITME":
            return b"".join([
                frame(b"h", b"X-Milter\0added by the test milter\0"),
                frame(b"m", struct.pack(">I", 1) + b"Subject\0edited\0"),
                frame(b"i", struct.pack(">I", 0) + b"X-First\0top\0"),
                frame(b"m", struct.pack(">I", 1) + b"X-Remove\0\0"),
                frame(b"b", b"replaced body\r\nsecond line\r\n"),
                frame(b"e", b"<new-sender@example.test>\0"),
                frame(b"+", b"<carol@example.test>\0"),
                frame(b"-", b"<bob@example.test>\0"),
                frame(b"a"),
            ])
        return frame(b"c")

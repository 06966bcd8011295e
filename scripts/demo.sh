#!/bin/bash
# demo.sh - build Postern and run a demo instance in the foreground.
#
# Installs missing Debian packages, builds in build/, writes ./demo/
# (postern.conf, master.conf, the virtual mailbox map for alice and bob at
# example.test), prints how to send mail to it, then runs
# "build/postern -c demo start-fg" until Ctrl-C. The log goes to the terminal.
#
# As an ordinary user everything runs as that user. As root, master keeps
# root and the daemons run as the "postern" user (created if missing); the
# virtual mailboxes belong to the sudo caller, or to a "vmail" user.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

scripts/deps.sh
cmake -S . -B build
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"

DEMO=$ROOT/demo
mkdir -p "$DEMO"
STATE=$DEMO

add_system_user() {
	getent passwd "$1" >/dev/null ||
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin "$1"
}

if [ "$(id -u)" -eq 0 ]; then
	add_system_user postern
	if [ -n "${SUDO_UID:-}" ] && [ "${SUDO_UID}" != 0 ]; then
		VUID=$SUDO_UID VGID=$(getent passwd "$SUDO_UID" | cut -d: -f4)
	else
		add_system_user vmail
		VUID=$(id -u vmail) VGID=$(id -g vmail)
	fi
	vuser=$(getent passwd "$VUID" | cut -d: -f1)
	# The daemons run as postern and deliver as the mailbox owner: both
	# must be able to reach the queue and the mail store.
	if ! runuser -u postern -- test -x "$DEMO" || ! runuser -u "$vuser" -- test -x "$DEMO"; then
		STATE=/var/spool/postern-demo
		echo "demo: $DEMO is not reachable by postern/$vuser; keeping queue and mail in $STATE"
	fi
else
	VUID=$(id -u) VGID=$(id -g)
fi
mkdir -p "$STATE/mail" "$STATE/data"
if [ "$(id -u)" -eq 0 ]; then
	chmod 755 "$STATE"
	chown "$VUID:$VGID" "$STATE/mail"
fi

port_free() {
	python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}
PORT=
for p in 2525 2526 2527 2528 2529 $(seq 2530 2600); do
	if port_free "$p"; then PORT=$p; break; fi
done
[ -n "$PORT" ] || { echo "demo: no free port in 2525-2600" >&2; exit 1; }

cat > "$DEMO/postern.conf" <<CONF
# Written by scripts/demo.sh; Postfix parameter names.
myhostname = mail.example.test
mydomain = example.test
mydestination = localhost
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = example.test
virtual_mailbox_base = $STATE/mail
virtual_mailbox_maps = lmdb:$DEMO/vmailbox
alias_maps = lmdb:$DEMO/aliases
alias_database = lmdb:$DEMO/aliases
virtual_uid_maps = static:$VUID
virtual_gid_maps = static:$VGID
queue_directory = $STATE/queue
data_directory = $STATE/data
daemon_directory = $ROOT/build
maillog_file = /dev/stderr
minimal_backoff_time = 10s
maximal_backoff_time = 60s
queue_run_delay = 10s
CONF

cat > "$DEMO/master.conf" <<CONF
# service type private unpriv chroot wakeup maxproc command args
127.0.0.1:$PORT inet n - n - - smtpd
qmgr unix n - n 60 1 qmgr
local unix - n n - - local
virtual unix - n n - - local
CONF

cat > "$DEMO/vmailbox" <<'MAP'
alice@example.test example.test/alice/
bob@example.test example.test/bob/
MAP
[ -f "$DEMO/aliases" ] || cat > "$DEMO/aliases" <<'MAP'
# local names (user@localhost) -> where their mail goes
postmaster: alice@example.test
root: alice@example.test
MAP
build/postern -c "$DEMO" map build "lmdb:$DEMO/vmailbox"
build/postern -c "$DEMO" map build "lmdb:$DEMO/aliases"

# Passwords are used by AUTH, POP3 and IMAP (later releases); made once
# and kept, in passwd-file form with SHA512-CRYPT hashes when available.
if [ ! -s "$DEMO/credentials" ]; then
	umask 077
	: > "$DEMO/credentials"
	: > "$DEMO/passwd"
	for u in alice@example.test bob@example.test; do
		pw=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | head -c 12)
		hash=$(python3 -c 'import crypt,sys; print("{SHA512-CRYPT}" + crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_SHA512)))' "$pw" 2>/dev/null ||
			openssl passwd -6 "$pw" 2>/dev/null | sed 's/^/{SHA512-CRYPT}/' ||
			echo "{PLAIN}$pw")
		echo "$u:$hash" >> "$DEMO/passwd"
		echo "$u $pw" >> "$DEMO/credentials"
	done
	umask 022
fi

echo
echo "Postern demo"
echo "  SMTP:   127.0.0.1:$PORT   (config in $DEMO)"
while read -r u pw; do
	local_part=${u%@*}
	echo "  user:   $u  password: $pw  (for AUTH/POP3/IMAP in a later release)"
	echo "          mail lands in $STATE/mail/example.test/$local_part/new/"
done < "$DEMO/credentials"
echo "  try:    swaks --server 127.0.0.1:$PORT --to alice@example.test"
echo "  stop:   Ctrl-C (or: build/postern -c demo stop)"
echo
exec build/postern -c "$DEMO" start-fg

#!/bin/bash
# demo.sh - build Postern and run a demo instance in the foreground.
#
# Installs missing Debian packages, builds in build/, writes ./demo/
# (postern.conf, master.conf, the virtual mailbox map for alice and bob at
# example.test, a self-signed certificate, the two users' passwords),
# prints the ports, the users and ready swaks lines, then runs
# "build/postern -c demo start-fg" until Ctrl-C. The log goes to the terminal.
#
# Listeners, all on 127.0.0.1: SMTP (2525 if free; mail from 127.0.0.0/8
# may relay, STARTTLS offered), submission (2587 if free; STARTTLS, then
# AUTH, required) and submissions (2465 if free; implicit TLS, AUTH
# required). Authenticated users may only send as their own address
# (smtpd_sender_login_maps).
#
# Re-running reuses demo/: the certificate while it is valid for another
# day, the passwords in demo/credentials (mode 0600); delete a file to
# have it made again. Ports are chosen afresh each time.
#
# As an ordinary user everything runs as that user. As root, master keeps
# root and the daemons run as the "postern" user, auth as "postern-auth",
# pop3-login as "postern-login" (all created if missing); the virtual
# mailboxes belong to the sudo
# caller, or to a "vmail" user.
#
# POSTERN_DEMO_DIR (default ./demo) and POSTERN_BUILDDIR (default ./build)
# put the demo and the build elsewhere: t/integration/test_demo.py runs
# this script so, as a newcomer would, in a directory of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${POSTERN_BUILDDIR:-$ROOT/build}

scripts/deps.sh
cmake -S . -B "$BUILD"
cmake --build "$BUILD" -j"$(nproc 2>/dev/null || echo 2)"

DEMO=${POSTERN_DEMO_DIR:-$ROOT/demo}
mkdir -p "$DEMO"
STATE=$DEMO

add_system_user() {
	getent passwd "$1" >/dev/null ||
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin "$1"
}

if [ "$(id -u)" -eq 0 ]; then
	add_system_user postern
	add_system_user postern-auth
	add_system_user postern-login
	if [ -n "${SUDO_UID:-}" ] && [ "${SUDO_UID}" != 0 ]; then
		VUID=$SUDO_UID VGID=$(getent passwd "$SUDO_UID" | cut -d: -f4)
	else
		add_system_user vmail
		VUID=$(id -u vmail) VGID=$(id -g vmail)
	fi
	vuser=$(getent passwd "$VUID" | cut -d: -f1)
	# The daemons run as postern and deliver as the mailbox owner: both
	# must be able to reach the queue and the mail store.
	if ! runuser -u postern -- test -x "$DEMO" || ! runuser -u "$vuser" -- test -x "$DEMO" ||
		! runuser -u postern-auth -- test -x "$DEMO"; then
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
# pick_port PREFERRED: that port if free, else the first free one in
# 2600-2700 not already taken by this script.
TAKEN=" "
pick_port() {
	local p
	for p in "$1" $(seq 2600 2700); do
		case "$TAKEN" in *" $p "*) continue ;; esac
		if port_free "$p"; then
			TAKEN="$TAKEN$p "
			echo "$p"
			return 0
		fi
	done
	echo "demo: no free port for $1 (tried 2600-2700)" >&2
	return 1
}
PORT=$(pick_port 2525)
TAKEN="$TAKEN$PORT "
SUB=$(pick_port 2587)
TAKEN="$TAKEN$SUB "
SMTPS=$(pick_port 2465)
TAKEN="$TAKEN$SMTPS "
POP3=$(pick_port 2110)
TAKEN="$TAKEN$POP3 "
POP3S=$(pick_port 2995)
TAKEN="$TAKEN$POP3S "
IMAP=$(pick_port 2143)
TAKEN="$TAKEN$IMAP "
IMAPS=$(pick_port 2993)
TAKEN="$TAKEN$IMAPS "
SIEVE=$(pick_port 4190)

# A self-signed certificate for STARTTLS and port 465, kept while it is
# valid for another day. smtpd reads the key before it drops privileges,
# so the key stays readable by its owner only (root, or you).
if [ ! -s "$DEMO/cert.pem" ] || [ ! -s "$DEMO/key.pem" ] ||
	! openssl x509 -checkend 86400 -noout -in "$DEMO/cert.pem" >/dev/null 2>&1; then
	rm -f "$DEMO/cert.pem" "$DEMO/key.pem"
	(umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 365 \
		-subj "/CN=mail.example.test" \
		-keyout "$DEMO/key.pem" -out "$DEMO/cert.pem" 2>/dev/null)
fi
chmod 600 "$DEMO/key.pem"
chmod 644 "$DEMO/cert.pem"

cat > "$DEMO/postern.conf" <<CONF
# Written by scripts/demo.sh; Postfix parameter names.
myhostname = mail.example.test
mydomain = example.test
# myorigin (\$myhostname) must be local: the demo's own bounces and mail to
# root@\$myhostname stay on this host instead of being relayed.
mydestination = \$myhostname, localhost
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
daemon_directory = $BUILD
maillog_file = /dev/stderr
smtpd_tls_cert_file = $DEMO/cert.pem
smtpd_tls_key_file = $DEMO/key.pem
smtpd_tls_security_level = may
smtpd_sender_login_maps = lmdb:$DEMO/senders
passwd_file = $STATE/passwd
minimal_backoff_time = 10s
maximal_backoff_time = 60s
queue_run_delay = 10s
CONF

cat > "$DEMO/master.conf" <<CONF
# Written by scripts/demo.sh (see etc/master.conf for the columns).
# service type private unpriv chroot wakeup maxproc command args
127.0.0.1:$PORT inet n - n - - smtpd
# submission: STARTTLS, then AUTH, before any mail
127.0.0.1:$SUB inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
# submissions: implicit TLS (RFC 8314), AUTH required
127.0.0.1:$SMTPS inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
# POP3 (STLS) and POP3S (implicit TLS): pop3-login (as postern-login,
# chrooted to queue/login where only auth's and pop3d's sockets are), then pop3d as the
# mailbox owner; the certificate is smtpd's (pop3d_tls_cert_file default)
127.0.0.1:$POP3 inet n - y - - pop3-login
127.0.0.1:$POP3S inet n - y - - pop3-login
  -o pop3d_tls_wrappermode=yes
pop3d unix - n n - 1 pop3d
# IMAP (STARTTLS) and IMAPS (implicit TLS): imap-login (chrooted as
# pop3-login), then imapd as the mailbox owner (imapd_tls_cert_file
# defaults to smtpd's certificate)
127.0.0.1:$IMAP inet n - y - - imap-login
127.0.0.1:$IMAPS inet n - y - - imap-login
  -o imapd_tls_wrappermode=yes
imapd unix - n n - 1 imapd
# ManageSieve (STARTTLS): managesieve-login, then managesieve as the owner
127.0.0.1:$SIEVE inet n - y - - managesieve-login
managesieve unix - n n - 1 managesieve
qmgr unix n - n 60 1 qmgr
local unix - n n - - local
virtual unix - n n - - local
showq unix n - n - - showq
auth unix - n n - 1 auth
smtp unix - - n - - smtp
pickup unix n - n 60 1 pickup
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
# An authenticated user may send as its own address only.
cat > "$DEMO/senders" <<'MAP'
alice@example.test alice@example.test
bob@example.test bob@example.test
MAP
"$BUILD/postern" -c "$DEMO" map build "lmdb:$DEMO/vmailbox"
"$BUILD/postern" -c "$DEMO" map build "lmdb:$DEMO/aliases"
"$BUILD/postern" -c "$DEMO" map build "lmdb:$DEMO/senders"

# The users log in with their full address. Passwords are made once and
# kept in demo/credentials; every run (re)sets them with "postern user",
# which keeps the hashes in passwd_file and its table readable only by
# the auth daemon's user.
if [ ! -s "$DEMO/credentials" ]; then
	rm -f "$STATE/passwd" "$STATE/passwd.lmdb"
	(
		umask 077
		for u in alice@example.test bob@example.test; do
			pw=$(head -c 12 /dev/urandom | base64 | tr -d '/+=' | head -c 12)
			echo "$u $pw"
		done > "$DEMO/credentials.new"
	)
	mv "$DEMO/credentials.new" "$DEMO/credentials"
fi
chmod 600 "$DEMO/credentials"
while read -r u pw; do
	if ! printf '%s\n' "$pw" | "$BUILD/postern" -c "$DEMO" user passwd "$u" --password-stdin 2>/dev/null; then
		printf '%s\n' "$pw" | "$BUILD/postern" -c "$DEMO" user add "$u" --password-stdin
	fi
done < "$DEMO/credentials"

first_pw=
echo
echo "Postern demo   (config in $DEMO)"
echo "  SMTP:        127.0.0.1:$PORT   (STARTTLS offered; 127.0.0.0/8 may relay)"
echo "  submission:  127.0.0.1:$SUB   (STARTTLS, then AUTH required)"
echo "  smtps:       127.0.0.1:$SMTPS   (implicit TLS, AUTH required)"
echo "  POP3:        127.0.0.1:$POP3   (STLS; plaintext login from loopback only)"
echo "  POP3S:       127.0.0.1:$POP3S   (implicit TLS)"
echo "  IMAP:        127.0.0.1:$IMAP   (STARTTLS; plaintext login from loopback only)"
echo "  IMAPS:       127.0.0.1:$IMAPS   (implicit TLS)"
echo "  ManageSieve: 127.0.0.1:$SIEVE   (STARTTLS; Sieve filters, RFC 5804)"
while read -r u pw; do
	[ -n "$first_pw" ] || first_pw=$pw
	echo "  user:        $u   password: $pw"
	echo "               mail lands in $STATE/mail/example.test/${u%@*}/new/"
done < "$DEMO/credentials"
echo "  try:"
echo "    swaks --server 127.0.0.1:$PORT --to alice@example.test"
echo "    swaks --server 127.0.0.1:$SUB -tls --auth PLAIN --auth-user alice@example.test --auth-password $first_pw --from alice@example.test --to bob@example.test"
echo "    swaks --server 127.0.0.1:$SMTPS --tlsc --auth PLAIN --auth-user alice@example.test --auth-password $first_pw --from alice@example.test --to bob@example.test"
echo "    curl -k --user alice@example.test:$first_pw pop3s://127.0.0.1:$POP3S/1"
echo "    curl --user alice@example.test:$first_pw pop3://127.0.0.1:$POP3/   (list)"
echo "    curl -k --user alice@example.test:$first_pw 'imaps://127.0.0.1:$IMAPS/INBOX;MAILINDEX=1'"
echo "    sieve-connect --server 127.0.0.1 --port $SIEVE --user alice@example.test --notlsverify --list"
echo "  Thunderbird: Account Settings > Account Actions > Add Mail Account, then"
echo "    'Configure manually': incoming IMAP, server 127.0.0.1, port $IMAPS, SSL/TLS,"
echo "    normal password, username alice@example.test; outgoing SMTP 127.0.0.1,"
echo "    port $SUB, STARTTLS, normal password (accept the self-signed certificate)"
echo "  stop:        Ctrl-C (or: $BUILD/postern -c $DEMO stop)"
echo
exec "$BUILD/postern" -c "$DEMO" start-fg

#!/bin/bash
# webmail.sh - Roundcube (Debian's packages) on a running Postern demo.
#
#   scripts/webmail.sh [--port N] [--imap-port N] [--smtp-port N]
#                      [--sieve-port N] [--debug] [--setup-only] [DIR]
#
# DIR is the demo's configuration directory (default: demo/, as
# scripts/demo.sh writes it; start the demo first, in another terminal).
# Installs what is missing (roundcube-core, roundcube-plugins,
# roundcube-sqlite3, php-cli, php-sqlite3), then writes a private Roundcube
# in DIR/roundcube/ - config/config.inc.php (read through Debian's
# ROUNDCUBE_CONFIG_DIR, so /etc/roundcube is left alone), an SQLite
# database, logs/, temp/ - and serves it with PHP's built-in server on
# 127.0.0.1 (8080 if free, else the next free port) until Ctrl-C.
#
# The ports come from DIR/master.conf unless given: IMAP is the
# imap-login listener with STARTTLS (else the implicit-TLS one), SMTP the
# smtpd listener with AUTH and STARTTLS (else the implicit-TLS one), and
# ManageSieve the managesieve-login listener, if there is one: then the
# managesieve plugin (filters, vacation) is enabled too.
#
# Password changes (the password plugin) go through its "expect" driver,
# the one that hands the current password to a command: DIR/roundcube/
# password.sh turns its three lines (user, current, new) into the
# "user:old:new" line of "postern user chpasswd --check-old", which
# changes nothing unless the current password matches. (The "chpasswd"
# driver writes "user:new" only, so it cannot let Postern check the old
# one.) PHP runs as the user running this script, who must be able to
# run "postern user" on DIR: the user who ran the demo.
#
# --debug logs every IMAP, SMTP and ManageSieve exchange to
# DIR/roundcube/logs/ (imap.log, smtp.log, sieve.log): passwords included,
# so for tests only. --setup-only writes the configuration and prints
# what it would serve, without starting the server.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${POSTERN_BUILDDIR:-$ROOT/build}

web_port= imap_port= smtp_port= sieve_port= setup_only=0 debug=false DIR=
while [ $# -gt 0 ]; do
	case "$1" in
	--port) web_port=$2; shift ;;
	--imap-port) imap_port=$2; shift ;;
	--smtp-port) smtp_port=$2; shift ;;
	--sieve-port) sieve_port=$2; shift ;;
	--setup-only) setup_only=1 ;;
	--debug) debug=true ;;
	-h|--help) sed -n '2,35p' "$0"; exit 0 ;;
	-*) echo "webmail.sh: unknown option $1" >&2; exit 2 ;;
	*) DIR=$1 ;;
	esac
	shift
done
DIR=$(cd "${DIR:-$ROOT/demo}" && pwd)
if [ ! -f "$DIR/master.conf" ]; then
	echo "webmail.sh: no $DIR/master.conf: run scripts/demo.sh first" >&2
	exit 1
fi
if [ ! -x "$BUILD/postern" ]; then
	echo "webmail.sh: no $BUILD/postern: build first (scripts/demo.sh does)" >&2
	exit 1
fi

# roundcube-core asks debconf about a database; it gets a private one
# here, so tell dbconfig-common to leave the system alone.
if ! dpkg-query -W -f='${Status}' roundcube-core 2>/dev/null | grep -q "install ok installed"; then
	SUDO=()
	[ "$(id -u)" -eq 0 ] || SUDO=(sudo -n)
	echo "roundcube-core roundcube/dbconfig-install boolean false" |
		"${SUDO[@]}" debconf-set-selections
fi
# php-cgi satisfies "php" without pulling in Apache.
scripts/deps.sh roundcube-core roundcube-plugins roundcube-sqlite3 php-cli \
	php-cgi php-sqlite3 sqlite3

# master.conf, continuation lines joined: "PORT COMMAND ARGS..." for the
# inet services on 127.0.0.1.
listeners() {
	awk '
	/^[ \t]*#/ || /^[ \t]*$/ { next }
	/^[ \t]/ { if (cur != "") cur = cur " " $0; next }
	{ if (cur != "") print cur; cur = $0 }
	END { if (cur != "") print cur }' "$DIR/master.conf" |
		awk '$2 == "inet" && $1 ~ /^127\.0\.0\.1:[0-9]+$/ {
			sub(/^127\.0\.0\.1:/, "", $1); $2 = $3 = $4 = $5 = $6 = $7 = ""
			print }' | tr -s ' '
}
# first_port COMMAND MUST-MATCH MUST-NOT-MATCH
first_port() {
	listeners | awk -v cmd="$1" -v want="$2" -v not="$3" '
		$2 == cmd && (want == "" || index($0, want)) &&
		(not == "" || !index($0, not)) { print $1; exit }'
}
imap_scheme=tls smtp_scheme=tls
if [ -z "$imap_port" ]; then
	imap_port=$(first_port imap-login "" imapd_tls_wrappermode=yes)
	if [ -z "$imap_port" ]; then
		imap_port=$(first_port imap-login imapd_tls_wrappermode=yes "")
		imap_scheme=ssl
	fi
fi
if [ -z "$smtp_port" ]; then
	smtp_port=$(first_port smtpd smtpd_sasl_auth_enable=yes smtpd_tls_wrappermode=yes)
	if [ -z "$smtp_port" ]; then
		smtp_port=$(first_port smtpd smtpd_sasl_auth_enable=yes "")
		smtp_scheme=ssl
	fi
fi
[ -n "$sieve_port" ] || sieve_port=$(first_port managesieve-login "" "")
if [ -z "$imap_port" ] || [ -z "$smtp_port" ]; then
	echo "webmail.sh: no IMAP or submission listener in $DIR/master.conf" >&2
	exit 1
fi

port_free() {
	python3 -c 'import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}
if [ -z "$web_port" ]; then
	for p in 8080 $(seq 8081 8180); do
		if port_free "$p"; then web_port=$p; break; fi
	done
fi

RC=$DIR/roundcube
mkdir -p "$RC/config" "$RC/logs" "$RC/temp"
chmod 700 "$RC"
ln -sf /etc/roundcube/defaults.inc.php "$RC/config/defaults.inc.php"
ln -sf /etc/roundcube/mimetypes.php "$RC/config/mimetypes.php"
if [ ! -s "$RC/roundcube.db" ]; then
	rm -f "$RC/roundcube.db"
	sqlite3 "$RC/roundcube.db" < /usr/share/roundcube/SQL/sqlite.initial.sql
fi
[ -s "$RC/des_key" ] ||
	(umask 077 && head -c 18 /dev/urandom | base64 | tr '/+' '_-' > "$RC/des_key")

cat > "$RC/password.sh" <<SH
# Written by scripts/webmail.sh. Roundcube's password plugin ("expect"
# driver) runs "/bin/sh -f $RC/password.sh --" and writes the user, the
# current and the new password, one a line; Postern checks the current one.
IFS= read -r user || exit 1
IFS= read -r old || exit 1
IFS= read -r new || exit 1
printf '%s:%s:%s\\n' "\$user" "\$old" "\$new" |
	"$BUILD/postern" -c "$DIR" user chpasswd --check-old
SH
chmod 700 "$RC/password.sh"

plugins="'password'"
sieve_conf=
if [ -n "$sieve_port" ]; then
	plugins="$plugins, 'managesieve'"
	sieve_conf="\$config['managesieve_host'] = 'tls://127.0.0.1:$sieve_port';
\$config['managesieve_conn_options'] = \$tls;
\$config['managesieve_vacation'] = 1;"
fi
# A self-signed demo certificate: trusted because this is loopback only.
cat > "$RC/config/config.inc.php.new" <<PHP
<?php
// Written by scripts/webmail.sh for the Postern instance in $DIR.
\$tls = ['ssl' => ['verify_peer' => false, 'verify_peer_name' => false,
                   'allow_self_signed' => true]];
\$config = [];
\$config['db_dsnw'] = 'sqlite:///$RC/roundcube.db?mode=0600';
\$config['log_dir'] = '$RC/logs/';
\$config['temp_dir'] = '$RC/temp/';
\$config['des_key'] = '$(cat "$RC/des_key")';
\$config['product_name'] = 'Postern webmail';
\$config['skin'] = 'elastic';
\$config['enable_installer'] = false;
\$config['enable_spellcheck'] = false;
\$config['imap_host'] = '$imap_scheme://127.0.0.1:$imap_port';
\$config['imap_conn_options'] = \$tls;
\$config['smtp_host'] = '$smtp_scheme://127.0.0.1:$smtp_port';
\$config['smtp_user'] = '%u';
\$config['smtp_pass'] = '%p';
\$config['smtp_conn_options'] = \$tls;
\$config['create_default_folders'] = true;
\$config['plugins'] = [$plugins];
\$config['password_driver'] = 'expect';
\$config['password_expect_bin'] = '/bin/sh';
\$config['password_expect_script'] = '$RC/password.sh';
\$config['password_expect_params'] = '';
\$config['password_confirm_current'] = true;
\$config['password_minimum_length'] = 8;
\$config['imap_debug'] = $debug;
\$config['smtp_debug'] = $debug;
\$config['managesieve_debug'] = $debug;
$sieve_conf
PHP
mv "$RC/config/config.inc.php.new" "$RC/config/config.inc.php"
chmod 600 "$RC/config/config.inc.php"

echo
echo "Roundcube for the Postern demo in $DIR"
echo "  IMAP:        $imap_scheme://127.0.0.1:$imap_port"
echo "  SMTP:        $smtp_scheme://127.0.0.1:$smtp_port (AUTH)"
if [ -n "$sieve_port" ]; then
	echo "  ManageSieve: tls://127.0.0.1:$sieve_port (filters, vacation)"
fi
echo "  logs:        $RC/logs/"
if [ -f "$DIR/credentials" ]; then
	echo "  log in as:   the users and passwords in $DIR/credentials"
fi
echo "  URL:         http://127.0.0.1:$web_port/"
if [ "$(id -u)" -eq 0 ]; then
	echo "  warning:     PHP runs as root here (the password plugin must write"
	echo "               the root-owned passwd_file); run the demo and this script"
	echo "               as an ordinary user to keep the web server unprivileged"
fi
echo
[ $setup_only -eq 0 ] || exit 0
export ROUNDCUBE_CONFIG_DIR=$RC/config
export PHP_CLI_SERVER_WORKERS=${PHP_CLI_SERVER_WORKERS:-4}
exec php -S "127.0.0.1:$web_port" -t /var/lib/roundcube/public_html \
	-d upload_max_filesize=20M -d post_max_size=25M -d memory_limit=256M

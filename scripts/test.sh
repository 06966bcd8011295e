#!/bin/bash
# test.sh - install what is missing, build with -Werror, run the whole suite.
#
#   scripts/test.sh              build in build/, run ctest there
#   scripts/test.sh --sanitize   build in build-asan/ with ASan+UBSan, run there
#
# Works as root or as a user with sudo (for package installs and for the
# privileged integration tests); never asks questions.
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=0
for a in "$@"; do
	case "$a" in
	--sanitize) sanitize=1 ;;
	-h|--help) sed -n '2,8p' "$0"; exit 0 ;;
	*) echo "test.sh: unknown option $a" >&2; exit 2 ;;
	esac
done

# dnsmasq-base: DNS tests; fail2ban: fail2ban-regex runs the shipped filter;
# isync, offlineimap3, mutt: the IMAP clients test_imap_clients drives;
# dovecot-lmtpd: the LMTP server test_lmtp delivers into (a private instance);
# dovecot-imapd: the peer test_imap_peer compares replies with, and the
# Dovecot test_imap_clients migrates a mailbox into (doveadm backup, imapc);
# dovecot-pop3d: the Dovecot whose Maildir and UIDLs test_migration takes over;
# roundcube-core asks debconf about a database: it gets a private one, so
# none is set up
if ! dpkg-query -W -f='${Status}' roundcube-core 2>/dev/null | grep -q "install ok installed"; then
	echo "roundcube-core roundcube/dbconfig-install boolean false" |
		if [ "$(id -u)" -eq 0 ]; then debconf-set-selections; else sudo -n debconf-set-selections; fi
fi
# sieve-connect: the ManageSieve client test_managesieve drives;
# postgrey: the policy service test_restrictions greylists through;
# postfix-policyd-spf-python: the SPF policy server test_policy_service runs
# under spawn (it pulls in Debian's postfix package, which stays stopped);
# opendkim, opendkim-tools, opendmarc: the real milters test_milter_opendkim
# and test_milter_opendmarc sign, verify and judge mail with;
# Roundcube, PHP, Chromium and Selenium: test_webmail
# strace: test_commit_order traces the instance's syscalls
scripts/deps.sh dnsmasq-base fail2ban isync offlineimap3 mutt dovecot-lmtpd dovecot-imapd dovecot-pop3d \
	sieve-connect postgrey postfix-policyd-spf-python opendkim opendkim-tools opendmarc \
	roundcube-core roundcube-plugins roundcube-sqlite3 php-cli php-cgi php-sqlite3 \
	sqlite3 chromium chromium-driver python3-selenium strace

jobs=$(nproc 2>/dev/null || echo 2)
if [ $sanitize -eq 1 ]; then
	build="build-asan"
	cmake -S . -B "$build" -DPOSTERN_WERROR=ON -DPOSTERN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
	# Leak checking needs ptrace, which containers often forbid; keep the
	# rest of ASan and make UBSan findings fatal.
	export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
else
	build="build"
	cmake -S . -B "$build" -DPOSTERN_WERROR=ON
fi
cmake --build "$build" -j"$jobs"
ctest --test-dir "$build" --output-on-failure -j"$jobs" --timeout 900

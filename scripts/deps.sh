#!/bin/bash
# deps.sh - install the Debian packages Postern needs, only those missing.
#
#   scripts/deps.sh [EXTRA-PACKAGE...]
#
# Non-interactive (DEBIAN_FRONTEND=noninteractive); runs apt-get through sudo
# when not root; runs "apt-get update" only when something is missing.
set -euo pipefail

PKGS=(build-essential cmake pkg-config libssl-dev libc-ares-dev liblmdb-dev
      lmdb-utils check libcrypt-dev python3 swaks libnet-ssleay-perl openssl
      curl fetchmail libpam0g-dev libpcre2-dev zlib1g-dev "$@")

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo -n)
	else
		echo "deps.sh: missing packages ${missing[*]}, and not root without sudo" >&2
		exit 1
	fi
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# The servers installed here (Dovecot, Postfix via policyd-spf, postgrey,
# OpenDKIM, fail2ban) are run by the tests and the demo with their own
# configuration on loopback ports; their system services must not start
# on all addresses behind our back. policy-rc.d (exit 101 = "not
# allowed") stops invoke-rc.d for the install, unless one is already there.
rcd=/usr/sbin/policy-rc.d
if [ ! -e "$rcd" ]; then
	printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$rcd" >/dev/null
	"${SUDO[@]}" chmod 755 "$rcd"
	trap '"${SUDO[@]}" rm -f "$rcd"' EXIT
fi
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	--no-install-recommends "${missing[@]}"

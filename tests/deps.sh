#!/bin/sh
# Install the Debian packages that building, testing or the demo need, when missing.
# Usage: tests/deps.sh build|check|demo|bench
# As root it runs apt-get; otherwise it prints the exact apt-get line and fails.
set -eu

build="build-essential pkg-config libsystemd-dev libpam0g-dev libssl-dev liblockfile-dev
	liblockfile-bin zlib1g-dev"
check="$build libcmocka-dev clang libclang-rt-14-dev python3 python3-pytest libpam-wrapper
	systemd curl openssl passwd procmail mutt isync offlineimap3 fetchmail getmail6 tmux
	openbsd-inetd iproute2 groff-base dovecot-imapd"
demo="$build libpam-wrapper systemd curl python3"
bench="$check"

case "${1:-check}" in
build) want=$build ;;
check) want=$check ;;
demo) want=$demo ;;
bench) want=$bench ;;
*) echo "usage: $0 build|check|demo|bench" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "imapd: these Debian packages are missing; install them as root with:" >&2
	echo "  apt-get install -y$missing" >&2
	exit 1
fi
echo "imapd: installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
# Never start services that packages ship (dovecot, postfix) on this host.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
fi
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends $missing
[ "$made_policy" = 1 ] && rm -f "$policy"
exit 0

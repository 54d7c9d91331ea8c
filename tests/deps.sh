#!/bin/sh
# Install the Debian packages that building, testing or the demo need, when missing.
# Usage: tests/deps.sh build|check|demo|bench
# As root it runs apt-get; otherwise it prints the exact apt-get line and fails.
#
# For check and bench it also fetches xinetd's .deb (not installed: xinetd and
# openbsd-inetd conflict as packages, and the tests run both) into $XINETD_DEB_DIR, where
# tests/integration/test_activation.py unpacks its binary to run the shipped xinetd file.
set -eu

XINETD_DEB_DIR=/var/cache/imapd-tests

build="build-essential pkg-config libsystemd-dev libpam0g-dev libssl-dev liblockfile-dev
	liblockfile-bin zlib1g-dev"
# php-cgi before roundcube: apt then takes it for php's web server module (otherwise it pulls
# in apache2-bin and libapache2-mod-php).
check="$build libcmocka-dev clang libclang-rt-14-dev python3 python3-pytest libpam-wrapper
	systemd curl openssl passwd procmail mutt neomutt isync offlineimap3 fetchmail getmail6 tmux
	openbsd-inetd iproute2 groff-base dovecot-imapd
	php-cgi lighttpd roundcube roundcube-sqlite3 chromium chromium-driver python3-selenium"
demo="$build libpam-wrapper systemd curl python3"
bench="$check"

case "${1:-check}" in
build) want=$build ;;
check) want=$check ;;
demo) want=$demo ;;
bench) want=$bench ;;
*) echo "usage: $0 build|check|demo|bench" >&2; exit 2 ;;
esac

# --- imapflow, for tests/integration/test_clients_imapflow.py (check and bench) -------------
# node and npm: the machine's own when both commands are there (NodeSource's nodejs carries
# npm and conflicts with Debian's npm package), else Debian's nodejs and npm, installed with
# the packages above. imapflow itself goes into tests/integration/imapflow/node_modules as its
# package-lock.json pins it (npm ci), never globally: when node_modules is missing and npm is
# there, at the end of a run that went well (after any apt-get install), through the EXIT trap.
# A failed npm ci only warns; the test then fails and says why.
IMAPFLOW_DIR=$(cd "$(dirname "$0")" && pwd)/integration/imapflow
imapflow_modules() {
	[ -d "$IMAPFLOW_DIR/node_modules" ] && return 0
	command -v npm >/dev/null 2>&1 || return 0
	echo "imapd: installing imapflow for its test: npm ci in $IMAPFLOW_DIR"
	(cd "$IMAPFLOW_DIR" && npm ci --no-audit --no-fund) ||
		echo "imapd: npm ci failed in $IMAPFLOW_DIR; test_clients_imapflow.py will fail" >&2
	return 0
}
case "${1:-check}" in
check|bench)
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		want="$want nodejs npm"
	fi
	trap 'rc=$?; [ "$rc" != 0 ] || imapflow_modules; exit "$rc"' EXIT
	;;
esac
# --- end of imapflow ------------------------------------------------------------------------

# The xinetd .deb is wanted when xinetd is not installed and no copy was fetched yet.
need_xinetd_deb() {
	case "${1:-check}" in check|bench) ;; *) return 1 ;; esac
	command -v xinetd >/dev/null 2>&1 && return 1
	for f in "$XINETD_DEB_DIR"/xinetd_*.deb /var/cache/apt/archives/xinetd_*.deb; do
		[ -f "$f" ] && return 1
	done
	return 0
}

fetch_xinetd_deb() {
	mkdir -p "$XINETD_DEB_DIR"
	chmod 755 "$XINETD_DEB_DIR"
	# apt fetches as the user _apt, which must be able to write there.
	chown _apt "$XINETD_DEB_DIR" 2>/dev/null || true
	if ! apt-cache show xinetd >/dev/null 2>&1; then
		apt-get update -qq || true
	fi
	if (cd "$XINETD_DEB_DIR" && apt-get download -qq xinetd); then
		echo "imapd: fetched xinetd's .deb into $XINETD_DEB_DIR (not installed)"
	else
		echo "imapd: could not fetch xinetd's .deb; its test will be skipped" >&2
	fi
}

missing=""
for p in $want; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
xinetd_deb=0
need_xinetd_deb "${1:-check}" && xinetd_deb=1
[ -z "$missing" ] && [ "$xinetd_deb" = 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	if [ -n "$missing" ]; then
		echo "imapd: these Debian packages are missing; install them as root with:" >&2
		echo "  apt-get install -y$missing" >&2
	fi
	if [ "$xinetd_deb" = 1 ]; then
		echo "imapd: xinetd's .deb is missing, so its test will be skipped; as root:" >&2
		echo "  mkdir -p $XINETD_DEB_DIR && cd $XINETD_DEB_DIR && apt-get download xinetd" >&2
	fi
	# Only the .deb missing: the rest of the tests can still run.
	[ -n "$missing" ] && exit 1
	exit 0
fi
if [ -z "$missing" ]; then
	fetch_xinetd_deb
	exit 0
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
[ "$xinetd_deb" = 1 ] && fetch_xinetd_deb
exit 0

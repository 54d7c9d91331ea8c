#!/bin/sh
# make demo / make demo-clean: a real imapd on 127.0.0.1:1143, one process per
# connection through systemd-socket-activate (as a socket unit with Accept=yes runs it),
# with a demo account whose password PAM checks through pam_wrapper + pam_matrix (the
# host's password files are not used for it) and a sample INBOX.
#
# As root it creates a Unix user "imapdemo" to serve (imapd never serves root);
# as another user it serves that user. Everything else lives in $DEMO_DIR.
set -eu
cd "$(dirname "$0")/.."
REPO=$PWD
DEMO_DIR=${DEMO_DIR:-/var/tmp/imapd-demo}
PORT=${DEMO_PORT:-1143}
DEMO_USER=imapdemo
PASSWORD=demo-password
PAM_WRAPPER=/usr/lib/x86_64-linux-gnu/libpam_wrapper.so
PAM_MATRIX=/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so

clean() {
	# The activator execs in place of this script, so the pid it wrote is the server's.
	if [ -f "$DEMO_DIR/pid" ]; then
		pid=$(cat "$DEMO_DIR/pid")
		if kill -0 "$pid" 2>/dev/null &&
		    grep -q socket-activate "/proc/$pid/cmdline" 2>/dev/null; then
			echo "the demo still runs (pid $pid); stop it with Ctrl-C first" >&2
			exit 1
		fi
	fi
	if [ -f "$DEMO_DIR/.created-user" ] && id "$DEMO_USER" >/dev/null 2>&1; then
		userdel "$DEMO_USER" && echo "removed Unix user $DEMO_USER"
	fi
	if [ -d "$DEMO_DIR" ]; then
		rm -rf "$DEMO_DIR"
		echo "removed $DEMO_DIR"
	fi
}

sample_inbox() {
	now=$(date -u '+%a %b %e %H:%M:%S %Y')
	date822=$(date -u -R)
	cat <<MBOX
From alice@example.org $now
From: Alice Example <alice@example.org>
To: $1@localhost
Subject: Welcome to imapd
Date: $date822
Message-ID: <demo-1@example.org>

Hello,

this is the demo INBOX of imapd, an mbox file at $2.
Open it with curl, Python's imaplib, mutt or Thunderbird.

From bob@example.net $now
From: =?UTF-8?Q?Bj=C3=B6rn?= <bob@example.net>
To: $1@localhost
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= from the demo
Date: $date822
Message-ID: <demo-2@example.net>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

A message with a plain and an HTML part.
>From lines in bodies are quoted, as mbox writers do.
--b1
Content-Type: text/html; charset=utf-8

<p>A message with a plain and an <b>HTML</b> part.</p>
--b1--

From carol@example.com $now
From: carol@example.com
To: $1@localhost
Subject: A third message
Date: $date822
Message-ID: <demo-3@example.com>

Short and plain.

MBOX
}

run() {
	[ -x imapd/imapd ] || { echo "imapd/imapd is not built; run make demo" >&2; exit 1; }
	if ss -ltn 2>/dev/null | grep -q "127.0.0.1:$PORT "; then
		echo "port $PORT on 127.0.0.1 is in use (another demo running?)" >&2
		exit 1
	fi
	mkdir -p "$DEMO_DIR/pam" "$DEMO_DIR/spool"
	chmod 755 "$DEMO_DIR" "$DEMO_DIR/pam"
	if [ "$(id -u)" -eq 0 ]; then
		user=$DEMO_USER
		home=$DEMO_DIR/home
		if ! id "$user" >/dev/null 2>&1; then
			useradd --no-create-home --home-dir "$home" --shell /usr/sbin/nologin \
				--user-group "$user"
			touch "$DEMO_DIR/.created-user"
			echo "created Unix user $user (no password, no login shell; make demo-clean removes it)"
		fi
		mkdir -p "$home/mail"
		chown -R "$user:" "$home"
		chmod 700 "$home"
		maildir=mail
	else
		user=$(id -un)
		home=$DEMO_DIR/home
		mkdir -p "$home/mail"
		maildir=$home/mail
	fi
	chmod 1777 "$DEMO_DIR/spool"
	inbox=$DEMO_DIR/spool/$user
	if [ ! -s "$inbox" ]; then
		sample_inbox "$user" "$inbox" >"$inbox"
		[ "$(id -u)" -eq 0 ] && chown "$user:" "$inbox"
		chmod 600 "$inbox"
	fi
	printf '%s:%s:imap\n' "$user" "$PASSWORD" >"$DEMO_DIR/pam/passdb"
	for k in auth account password session; do
		printf '%s required %s passdb=%s\n' "$k" "$PAM_MATRIX" "$DEMO_DIR/pam/passdb"
	done >"$DEMO_DIR/pam/imap"
	cp "$DEMO_DIR/pam/imap" "$DEMO_DIR/pam/other"	# PAM's fallback service
	cat >"$DEMO_DIR/imapd.conf" <<CONF
# imapd.conf for the demo (see doc/imapd.conf.5)
spool_dir = $DEMO_DIR/spool
mail_dir = $maildir
login_delay_ms = 1000
CONF
	chmod 644 "$DEMO_DIR/imapd.conf" "$DEMO_DIR/pam/passdb" "$DEMO_DIR/pam/imap" \
		"$DEMO_DIR/pam/other"

	made="the directory $DEMO_DIR (sample INBOX, settings, PAM files, the user's home)"
	if [ -f "$DEMO_DIR/.created-user" ]; then
		made="$made and the Unix user $user"
	fi
	cat <<INFO

imapd demo: it created $made on this host; make demo-clean removes them.

  host      127.0.0.1
  port      $PORT (plain IMAP; loopback, so LOGIN is allowed without TLS)
  user      $user
  password  $PASSWORD
  INBOX     $inbox

Try, from another terminal:
  curl -u $user:$PASSWORD imap://127.0.0.1:$PORT/ -X 'CAPABILITY'
  python3 -c "import imaplib; c=imaplib.IMAP4('127.0.0.1',$PORT); print(c.login('$user','$PASSWORD')); print(c.capability()); c.logout()"
  openssl s_client is for TLS; for plain text: nc -C 127.0.0.1 $PORT

Logs of each connection appear below. Ctrl-C stops the demo; make demo-clean removes it.

INFO
	echo $$ >"$DEMO_DIR/pid"
	export LD_PRELOAD=$PAM_WRAPPER PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR=$DEMO_DIR/pam
	exec systemd-socket-activate --inetd -a -l "127.0.0.1:$PORT" \
		-E LD_PRELOAD -E PAM_WRAPPER -E PAM_WRAPPER_SERVICE_DIR \
		"$REPO/imapd/imapd" -d -c "$DEMO_DIR/imapd.conf"
}

case "${1:-run}" in
run) run ;;
clean) clean ;;
*) echo "usage: $0 run|clean" >&2; exit 2 ;;
esac

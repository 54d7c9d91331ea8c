/*
 * imapd: started per connection by inetd (nowait) or a systemd socket unit (Accept=yes),
 * with the connection on fd 0/1 or passed as LISTEN_FDS; or by a user as
 * "imapd --preauth" over an ssh tunnel. Options and activation only; the session does
 * the rest.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "imapd/config.h"
#include "imapd/limits.h"
#include "imapd/log.h"
#include "imapd/session.h"
#include "imapd/sigbus.h"
#include "imapd/tls.h"
#include "imapd/version.h"

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: imapd [-d] [-c FILE] [-o KEY=VALUE] [--preauth] [--tls]\n"
		"             [--pam-service NAME] [--spool-dir DIR] [--mail-dir DIR]\n"
		"  -c, --config FILE      settings file (default " IMAPD_CONFIG_PATH ")\n"
		"  -o KEY=VALUE           set one setting (see imapd.conf(5))\n"
		"  -d, --debug            log to stderr, with debug lines\n"
		"      --preauth          serve the user running imapd, greeting PREAUTH\n"
		"      --tls              TLS from the first byte (port 993; implicit_tls)\n"
		"      --pam-service NAME PAM service (default imap)\n"
		"      --spool-dir DIR    INBOX is DIR/USER (default /var/mail)\n"
		"      --mail-dir DIR     mailboxes, relative to the home (default mail)\n"
		"  -V, --version          print the version\n");
}

/* Describes the peer of fd for the log and for PAM_RHOST; "local" for a pipe. */
static void
peer_name(int fd, char *buf, size_t size, bool *local_r)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	*local_r = true;
	snprintf(buf, size, "local");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == -1)
		return;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)size);
		*local_r = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			struct in_addr a;

			memcpy(&a, &sin6->sin6_addr.s6_addr[12], 4);
			inet_ntop(AF_INET, &a, buf, (socklen_t)size);
			*local_r = (ntohl(a.s_addr) >> 24) == 127;
		} else {
			inet_ntop(AF_INET6, &sin6->sin6_addr, buf, (socklen_t)size);
			*local_r = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
		}
	} else if (ss.ss_family != AF_UNIX)
		snprintf(buf, size, "unknown");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "debug", no_argument, NULL, 'd' },
		{ "preauth", no_argument, NULL, 'P' },
		{ "tls", no_argument, NULL, 'T' },
		{ "pam-service", required_argument, NULL, 's' },
		{ "spool-dir", required_argument, NULL, 'S' },
		{ "mail-dir", required_argument, NULL, 'M' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct config cfg;
	static struct session sess;
	const char *config_path = IMAPD_CONFIG_PATH;
	int config_given = 0, debug = 0, preauth = 0, ch, rfd = 0, wfd = 1, n, rc;
	char err[512];
	struct {
		const char *key, *value;
	} overrides[32];
	size_t noverrides = 0, i;

	while ((ch = getopt_long(argc, argv, "c:do:Vh", longopts, NULL)) != -1) {
		const char *key = NULL;

		switch (ch) {
		case 'c':
			config_path = optarg;
			config_given = 1;
			break;
		case 'd':
			debug = 1;
			break;
		case 'P':
			preauth = 1;
			break;
		case 'T':
			key = "implicit_tls";
			optarg = (char *)"yes";
			break;
		case 's':
			key = "pam_service";
			break;
		case 'S':
			key = "spool_dir";
			break;
		case 'M':
			key = "mail_dir";
			break;
		case 'o': {
			char *eq = strchr(optarg, '=');

			if (eq == NULL) {
				fprintf(stderr, "imapd: -o needs KEY=VALUE\n");
				return 2;
			}
			*eq = '\0';
			key = optarg;
			optarg = eq + 1;
			break;
		}
		case 'V':
			printf("imapd %s\n", IMAPD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (key != NULL) {
			if (noverrides == sizeof(overrides) / sizeof(overrides[0])) {
				fprintf(stderr, "imapd: too many settings on the command line\n");
				return 2;
			}
			overrides[noverrides].key = key;
			overrides[noverrides++].value = optarg;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	log_init("imapd", debug);
	log_set_verbose(debug);
	config_defaults(&cfg);
	if (config_load(&cfg, config_path, !config_given, err, sizeof(err)) == -1)
		fatalx("%s", err);
	for (i = 0; i < noverrides; i++)
		if (config_set(&cfg, overrides[i].key, overrides[i].value, err, sizeof(err)) == -1)
			fatalx("%s", err);

	/* A client that goes away mid-write must not kill us before we log it. */
	signal(SIGPIPE, SIG_IGN);
	/* A mailbox truncated by another program while mapped ends the session, not the
	 * process (imapd/sigbus.h). */
	sigbus_guard_install();

	/* systemd without StandardInput=socket passes the connection as LISTEN_FDS. */
	n = sd_listen_fds(1);
	if (n < 0)
		fatalx("sd_listen_fds: %s", strerror(-n));
	if (n > 1)
		fatalx("expected one socket from systemd, got %d", n);
	if (n == 1) {
		int fd = SD_LISTEN_FDS_START, acc = 0;
		socklen_t al = sizeof(acc);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 && acc)
			fatalx("got a listening socket: the socket unit needs Accept=yes");
		rfd = wfd = fd;
	}

	sess.cfg = &cfg;
	sess.io = io_new(rfd, wfd, IMAPD_LINE_MAX + 64);
	if (sess.io == NULL || (sess.parser = parser_new(sess.io)) == NULL)
		fatalx("out of memory");
	peer_name(rfd, sess.peer, sizeof(sess.peer), &sess.peer_local);
	log_set_peer(sess.peer);
	sess.state = STATE_NOT_AUTH;

	/*
	 * The certificate and key are read now, as root, so that the key file can stay
	 * readable by root only. An ssh-tunnel (--preauth) session is already encrypted
	 * and runs as the user, who could not read the key anyway.
	 */
	if (preauth && cfg.implicit_tls)
		fatalx("--preauth and implicit TLS do not go together");
	if (!preauth && (cfg.tls_cert[0] != '\0' || cfg.implicit_tls)) {
		sess.tls_server = tls_server_new(cfg.tls_cert, cfg.tls_key, err, sizeof(err));
		if (sess.tls_server == NULL && cfg.implicit_tls)
			fatalx("implicit TLS unavailable, refusing the connection: %s", err);
		if (sess.tls_server == NULL)
			log_warnx("STARTTLS not offered: %s", err);
	}
	if (cfg.implicit_tls) {
		/* RFC 8314 3.3: the handshake comes first, the greeting goes out through it. */
		if (tls_start(sess.tls_server, sess.io, cfg.timeout_preauth * 1000, err,
			      sizeof(err)) == -1) {
			log_notice("TLS handshake failed: %s", err);
			tls_server_free(&sess.tls_server);
			parser_free(&sess.parser);
			io_free(&sess.io);
			return 1;
		}
		sess.tls = true;
		log_info("TLS: %s", err);
	}

	if (preauth) {
		struct passwd *pw;

		if (geteuid() == 0 || getuid() == 0)
			fatalx("--preauth serves the user running imapd, and never root");
		if ((pw = getpwuid(getuid())) == NULL)
			fatalx("no passwd entry for uid %ld", (long)getuid());
		const char *home = getenv("HOME");

		/* Run by the user, imapd takes the user's environment as mail readers do:
		 * $HOME (and $MAIL, for INBOX) where set, else the passwd entry. */
		if (home == NULL || home[0] != '/')
			home = pw->pw_dir;
		sess.preauth = true;
		if (chdir(home) == -1)
			log_warn("chdir %s", home);
		session_logged_in(&sess, pw->pw_name, pw->pw_uid, pw->pw_gid, home);
		log_info("preauth session");
	} else
		log_info("connection");

	rc = session_run(&sess);
	tls_server_free(&sess.tls_server);
	parser_free(&sess.parser);
	io_free(&sess.io);
	return rc;
}

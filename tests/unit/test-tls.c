/*
 * test-tls.c: the TLS back end of the transport. Certificates are made here with OpenSSL;
 * a forked OpenSSL client talks to tls_start() over a socketpair. Also the plaintext
 * policy (session_plaintext_ok) and the capability list before and after TLS.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "imapd/config.h"
#include "imapd/io.h"
#include "imapd/session.h"
#include "imapd/tls.h"

struct files {
	char dir[64];
	char cert[128], key[128], other_key[128], garbage[128];
};

static EVP_PKEY *
write_key(const char *path)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	FILE *f = fopen(path, "w");

	assert_non_null(pk);
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(fclose(f), 0);
	return pk;
}

static int
setup(void **state)
{
	struct files *fs = calloc(1, sizeof(*fs));
	EVP_PKEY *pk;
	X509 *x;
	X509_NAME *n;
	FILE *f;

	assert_non_null(fs);
	snprintf(fs->dir, sizeof(fs->dir), "/tmp/imapd-test-tls-XXXXXX");
	assert_non_null(mkdtemp(fs->dir));
	snprintf(fs->cert, sizeof(fs->cert), "%s/cert.pem", fs->dir);
	snprintf(fs->key, sizeof(fs->key), "%s/key.pem", fs->dir);
	snprintf(fs->other_key, sizeof(fs->other_key), "%s/other.pem", fs->dir);
	snprintf(fs->garbage, sizeof(fs->garbage), "%s/garbage.pem", fs->dir);
	pk = write_key(fs->key);
	EVP_PKEY_free(write_key(fs->other_key));
	x = X509_new();
	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, pk);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"localhost",
				   -1, -1, 0);
	X509_set_issuer_name(x, n);
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	f = fopen(fs->cert, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	assert_int_equal(fclose(f), 0);
	X509_free(x);
	EVP_PKEY_free(pk);
	f = fopen(fs->garbage, "w");
	assert_non_null(f);
	fputs("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", f);
	assert_int_equal(fclose(f), 0);
	*state = fs;
	return 0;
}

static int
teardown(void **state)
{
	struct files *fs = *state;

	unlink(fs->cert);
	unlink(fs->key);
	unlink(fs->other_key);
	unlink(fs->garbage);
	rmdir(fs->dir);
	free(fs);
	return 0;
}

static void
test_load_errors(void **state)
{
	struct files *fs = *state;
	struct tls_server *ts;
	char err[512];

	ts = tls_server_new("/nonexistent/cert.pem", fs->key, err, sizeof(err));
	assert_null(ts);
	assert_non_null(strstr(err, "tls_cert /nonexistent/cert.pem: No such file"));
	ts = tls_server_new(fs->cert, "/nonexistent/key.pem", err, sizeof(err));
	assert_null(ts);
	assert_non_null(strstr(err, "tls_key /nonexistent/key.pem"));
	ts = tls_server_new(fs->garbage, fs->key, err, sizeof(err));
	assert_null(ts);
	assert_non_null(strstr(err, "tls_cert"));
	ts = tls_server_new(fs->cert, fs->other_key, err, sizeof(err));
	assert_null(ts);
	assert_non_null(strstr(err, "mismatch"));
	ts = tls_server_new("", NULL, err, sizeof(err));
	assert_null(ts);
	/* The key file alone holds no certificate. */
	ts = tls_server_new(fs->key, NULL, err, sizeof(err));
	assert_null(ts);
	ts = tls_server_new(fs->cert, fs->key, err, sizeof(err));
	assert_non_null(ts);
	tls_server_free(&ts);
	assert_null(ts);
	tls_server_free(&ts);
}

/* The forked client: handshake, send "hello" one byte per record, expect "world". */
static int
client(int fd, int byte_records)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl;
	char buf[64];
	size_t got = 0;
	const char *hello = "hello there\r\n";
	size_t i;

	if (ctx == NULL || (ssl = SSL_new(ctx)) == NULL)
		return 2;
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		return 3;
	if (byte_records) {
		for (i = 0; i < strlen(hello); i++)
			if (SSL_write(ssl, hello + i, 1) != 1)
				return 4;
	} else if (SSL_write(ssl, hello, (int)strlen(hello)) != (int)strlen(hello))
		return 4;
	while (got < 7) {
		int n = SSL_read(ssl, buf + got, (int)(sizeof(buf) - got));

		if (n <= 0)
			return 5;
		got += (size_t)n;
	}
	if (memcmp(buf, "world\r\n", 7) != 0)
		return 6;
	SSL_shutdown(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return 0;
}

static void
run_exchange(struct files *fs, int byte_records)
{
	struct tls_server *ts;
	struct io *io;
	char err[256], desc[256];
	const char *line;
	size_t len;
	int sv[2], status;
	pid_t pid;

	ts = tls_server_new(fs->cert, fs->key, err, sizeof(err));
	assert_non_null(ts);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		_exit(client(sv[1], byte_records));
	}
	close(sv[1]);
	io = io_new(sv[0], sv[0], 1024);
	assert_non_null(io);
	io_set_timeout(io, 10000);
	assert_int_equal(tls_start(ts, io, 10000, desc, sizeof(desc)), 0);
	assert_non_null(strstr(desc, "TLSv1."));
	assert_int_equal(io_read_line(io, 100, &line, &len), IO_OK);
	assert_int_equal(len, 11);
	assert_memory_equal(line, "hello there", 11);
	assert_int_equal(io_puts(io, "world\r\n"), 0);
	assert_int_equal(io_flush(io), 0);
	/* The client closes with close_notify: an ordinary end of input. */
	assert_int_equal(io_read_line(io, 100, &line, &len), IO_EOF);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	io_free(&io);
	close(sv[0]);
	tls_server_free(&ts);
}

static void
test_exchange(void **state)
{
	run_exchange(*state, 0);
}

static void
test_exchange_byte_records(void **state)
{
	run_exchange(*state, 1);
}

/* Bytes received before the handshake and still buffered: tls_start refuses. */
static void
test_buffered_input_refused(void **state)
{
	struct files *fs = *state;
	struct tls_server *ts;
	struct io *io;
	char err[256];
	const char *line;
	size_t len;
	int sv[2];

	ts = tls_server_new(fs->cert, fs->key, err, sizeof(err));
	assert_non_null(ts);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], "a STARTTLS\r\nb LOGOUT\r\n", 22), 22);
	io = io_new(sv[0], sv[0], 1024);
	assert_non_null(io);
	assert_int_equal(io_read_line(io, 100, &line, &len), IO_OK);
	assert_int_equal(tls_start(ts, io, 1000, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not discarded"));
	assert_int_equal(io_discard_input(io), 10);
	assert_int_equal(io_buffered(io), 0);
	io_free(&io);
	close(sv[0]);
	close(sv[1]);
	tls_server_free(&ts);
}

static void
test_handshake_timeout_and_garbage(void **state)
{
	struct files *fs = *state;
	struct tls_server *ts;
	struct io *io;
	char err[256];
	struct timespec a, b;
	long ms;
	int sv[2];

	ts = tls_server_new(fs->cert, fs->key, err, sizeof(err));
	assert_non_null(ts);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	io = io_new(sv[0], sv[0], 1024);
	assert_non_null(io);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(tls_start(ts, io, 300, err, sizeof(err)), -1);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_true(ms >= 250 && ms < 5000);
	assert_string_equal(err, "handshake timed out");
	io_free(&io);
	close(sv[0]);
	close(sv[1]);

	/* Plaintext where a ClientHello belongs. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(write(sv[1], "b LOGOUT\r\n", 10), 10);
	io = io_new(sv[0], sv[0], 1024);
	assert_non_null(io);
	assert_int_equal(tls_start(ts, io, 5000, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "error:"));
	io_free(&io);
	close(sv[0]);
	close(sv[1]);

	/* The peer goes away in the middle. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	io = io_new(sv[0], sv[0], 1024);
	assert_non_null(io);
	assert_int_equal(tls_start(ts, io, 5000, err, sizeof(err)), -1);
	io_free(&io);
	close(sv[0]);
	tls_server_free(&ts);
}

/* Each word of want is in the capability list, no word of unwanted is. */
static void
expect_caps(const struct session *s, const char *want, const char *unwanted)
{
	char caps[600], list[256], *w, *save = NULL;
	int n;

	n = snprintf(caps, sizeof(caps), " %s ", session_capabilities(s));
	assert_true(n > 0 && (size_t)n < sizeof(caps));
	for (int pass = 0; pass < 2; pass++) {
		snprintf(list, sizeof(list), "%s", pass == 0 ? want : unwanted);
		for (w = strtok_r(list, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
			char word[64];

			snprintf(word, sizeof(word), " %s ", w);
			if ((strstr(caps, word) != NULL) != (pass == 0))
				fail_msg("capabilities \"%s\": %s %s", caps, w,
					 pass == 0 ? "missing" : "present");
		}
	}
}

static void
test_plaintext_policy_and_capabilities(void **state)
{
	struct files *fs = *state;
	struct config cfg;
	struct session s;
	char err[256];
	static const struct {
		const char *policy;
		bool local, tls, ok;
	} cases[] = {
		{ "never", true, false, false },
		{ "never", false, false, false },
		{ "never", false, true, true },
		{ "loopback", true, false, true },
		{ "loopback", false, false, false },
		{ "loopback", false, true, true },
		{ "always", false, false, true },
	};
	size_t i;

	config_defaults(&cfg);
	assert_string_equal(cfg.plaintext_auth, "loopback");
	memset(&s, 0, sizeof(s));
	s.cfg = &cfg;
	s.state = STATE_NOT_AUTH;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(config_set(&cfg, "plaintext_auth", cases[i].policy, err,
					    sizeof(err)), 0);
		s.peer_local = cases[i].local;
		s.tls = cases[i].tls;
		assert_int_equal(session_plaintext_ok(&s), cases[i].ok);
	}
	assert_int_equal(config_set(&cfg, "plaintext_auth", "sometimes", err, sizeof(err)), -1);

	/* Capabilities: STARTTLS only with a certificate and before TLS. */
	config_set(&cfg, "plaintext_auth", "loopback", err, sizeof(err));
	s.peer_local = false;
	s.tls = false;
	s.tls_server = NULL;
	expect_caps(&s, "IMAP4rev1 LOGINDISABLED", "STARTTLS AUTH=PLAIN");
	s.tls_server = tls_server_new(fs->cert, fs->key, err, sizeof(err));
	assert_non_null(s.tls_server);
	expect_caps(&s, "IMAP4rev1 STARTTLS LOGINDISABLED", "AUTH=PLAIN");
	s.tls = true;
	expect_caps(&s, "IMAP4rev1 SASL-IR AUTH=PLAIN", "STARTTLS LOGINDISABLED");
	s.tls = false;
	s.peer_local = true;
	expect_caps(&s, "IMAP4rev1 STARTTLS SASL-IR AUTH=PLAIN", "LOGINDISABLED");
	/* After login STARTTLS is no longer valid (RFC 3501 6.2.1). */
	s.state = STATE_AUTH;
	expect_caps(&s, "IMAP4rev1", "STARTTLS LOGINDISABLED");
	tls_server_free(&s.tls_server);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_exchange),
		cmocka_unit_test(test_exchange_byte_records),
		cmocka_unit_test(test_buffered_input_refused),
		cmocka_unit_test(test_handshake_timeout_and_garbage),
		cmocka_unit_test(test_plaintext_policy_and_capabilities),
	};

	/* As in imapd: a peer that is gone is an error to handle, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}

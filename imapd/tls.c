#include "imapd/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <dlfcn.h>

#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>

#include "imapd/log.h"

/*
 * OpenSSL is loaded when the first TLS context is made (tls_server_new()), not when the
 * program starts.  Its relocated tables are about half a megabyte of private memory in
 * every process, and many sessions never speak TLS: an ssh-tunnel session (--preauth),
 * every session on a host with no tls_cert.  The library is the one the headers are for
 * (libssl.so.3 for OpenSSL 3); libcrypto comes with it.
 *
 * Below the table, each name is defined to the table's entry, so the code (and OpenSSL's
 * own function-like macros, such as SSL_CTX_set_mode() for SSL_CTX_ctrl()) reads as usual.
 */
#define OSSL_FUNCS(X) \
	X(ERR_clear_error) X(ERR_error_string_n) X(ERR_peek_last_error) \
	X(SSL_CIPHER_get_name) X(SSL_CTX_check_private_key) X(SSL_CTX_ctrl) \
	X(SSL_CTX_free) X(SSL_CTX_new) X(SSL_CTX_set_num_tickets) X(SSL_CTX_set_options) \
	X(SSL_CTX_use_PrivateKey_file) X(SSL_CTX_use_certificate_chain_file) \
	X(SSL_accept) X(SSL_free) X(SSL_get_current_cipher) X(SSL_get_error) \
	X(SSL_get_version) X(SSL_has_pending) X(SSL_new) X(SSL_pending) X(SSL_read_ex) \
	X(SSL_set_rfd) X(SSL_set_wfd) X(SSL_shutdown) X(SSL_write_ex) X(TLS_server_method)

static struct {
	bool loaded;
#define OSSL_FIELD(f) __typeof__(f) *f;
	OSSL_FUNCS(OSSL_FIELD)
#undef OSSL_FIELD
} ossl;

#define OSSL_STR2(x) #x
#define OSSL_STR(x) OSSL_STR2(x)
#define OSSL_LIBSSL "libssl.so." OSSL_STR(OPENSSL_VERSION_MAJOR)

/* Loads libssl once.  Returns 0, or -1 with the reason in err. */
static int
ossl_load(char *err, size_t errsize)
{
	void *h;
	const char *missing = NULL;

	if (ossl.loaded)
		return 0;
	if ((h = dlopen(OSSL_LIBSSL, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		const char *e = dlerror();

		snprintf(err, errsize, "cannot load %s: %s", OSSL_LIBSSL, e ? e : "?");
		return -1;
	}
	/* dlsym() on the handle also searches what libssl needs (libcrypto) */
#define OSSL_SYM(f) \
	if ((*(void **)&ossl.f = dlsym(h, #f)) == NULL && missing == NULL) \
		missing = #f;
	OSSL_FUNCS(OSSL_SYM)
#undef OSSL_SYM
	if (missing != NULL) {
		snprintf(err, errsize, "%s has no %s", OSSL_LIBSSL, missing);
		dlclose(h);
		memset(&ossl, 0, sizeof(ossl));
		return -1;
	}
	ossl.loaded = true;	/* never unloaded: OpenSSL keeps state until exit */
	return 0;
}

#define ERR_clear_error			(*ossl.ERR_clear_error)
#define ERR_error_string_n		(*ossl.ERR_error_string_n)
#define ERR_peek_last_error		(*ossl.ERR_peek_last_error)
#define SSL_CIPHER_get_name		(*ossl.SSL_CIPHER_get_name)
#define SSL_CTX_check_private_key	(*ossl.SSL_CTX_check_private_key)
#define SSL_CTX_ctrl			(*ossl.SSL_CTX_ctrl)
#define SSL_CTX_free			(*ossl.SSL_CTX_free)
#define SSL_CTX_new			(*ossl.SSL_CTX_new)
#define SSL_CTX_set_num_tickets		(*ossl.SSL_CTX_set_num_tickets)
#define SSL_CTX_set_options		(*ossl.SSL_CTX_set_options)
#define SSL_CTX_use_PrivateKey_file	(*ossl.SSL_CTX_use_PrivateKey_file)
#define SSL_CTX_use_certificate_chain_file (*ossl.SSL_CTX_use_certificate_chain_file)
#define SSL_accept			(*ossl.SSL_accept)
#define SSL_free			(*ossl.SSL_free)
#define SSL_get_current_cipher		(*ossl.SSL_get_current_cipher)
#define SSL_get_error			(*ossl.SSL_get_error)
#define SSL_get_version			(*ossl.SSL_get_version)
#define SSL_has_pending			(*ossl.SSL_has_pending)
#define SSL_new				(*ossl.SSL_new)
#define SSL_pending			(*ossl.SSL_pending)
#define SSL_read_ex			(*ossl.SSL_read_ex)
#define SSL_set_rfd			(*ossl.SSL_set_rfd)
#define SSL_set_wfd			(*ossl.SSL_set_wfd)
#define SSL_shutdown			(*ossl.SSL_shutdown)
#define SSL_write_ex			(*ossl.SSL_write_ex)
#define TLS_server_method		(*ossl.TLS_server_method)

struct tls_server {
	SSL_CTX	*ctx;
};

/* The back end's context: one TLS connection over the transport's descriptors. */
struct tls_conn {
	SSL	*ssl;
	short	want;		/* poll events OpenSSL waits for after the last EAGAIN */
	int	dead;		/* a fatal error happened: no close_notify may be sent */
};

/* OpenSSL's most recent error as text ("no error" when its queue is empty). */
static void
ssl_error(char *buf, size_t size)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, size, "no error");
	else
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
}

/* Opens path the way OpenSSL will, to say plainly why a file cannot be used. */
static int
check_readable(const char *what, const char *path, char *err, size_t errsize)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd == -1) {
		snprintf(err, errsize, "%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

struct tls_server *
tls_server_new(const char *cert_path, const char *key_path, char *err, size_t errsize)
{
	struct tls_server *ts;
	char e[256];
	SSL_CTX *ctx;

	if (cert_path == NULL || cert_path[0] == '\0') {
		snprintf(err, errsize, "no tls_cert set");
		return NULL;
	}
	if (key_path == NULL || key_path[0] == '\0')
		key_path = cert_path;
	if (check_readable("tls_cert", cert_path, err, errsize) == -1 ||
	    check_readable("tls_key", key_path, err, errsize) == -1 ||
	    ossl_load(err, errsize) == -1)
		return NULL;
	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		ssl_error(e, sizeof(e));
		snprintf(err, errsize, "SSL_CTX_new: %s", e);
		return NULL;
	}
	/*
	 * TLS 1.2 and newer (RFC 8314 4.1 and RFC 8996). No renegotiation: a client could use
	 * it to make us spend CPU. Session resumption is useless with one process per
	 * connection (the next connection is another process with other ticket keys), so no
	 * cache and no tickets. A client that drops TCP without close_notify is an ordinary
	 * EOF: IMAP has its own framing, so truncation cannot go unnoticed.
	 */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		ssl_error(e, sizeof(e));
		snprintf(err, errsize, "TLS 1.2 minimum: %s", e);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
			    SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_CIPHER_SERVER_PREFERENCE |
			    SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_dh_auto(ctx, 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_path) != 1) {
		ssl_error(e, sizeof(e));
		snprintf(err, errsize, "tls_cert %s: %s", cert_path, e);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1) {
		ssl_error(e, sizeof(e));
		snprintf(err, errsize, "tls_key %s: %s", key_path, e);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_error(e, sizeof(e));
		snprintf(err, errsize, "tls_key %s does not match tls_cert %s: %s", key_path,
			 cert_path, e);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if ((ts = calloc(1, sizeof(*ts))) == NULL) {
		SSL_CTX_free(ctx);
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	ts->ctx = ctx;
	return ts;
}

void
tls_server_free(struct tls_server **tsp)
{
	struct tls_server *ts = *tsp;

	if (ts == NULL)
		return;
	SSL_CTX_free(ts->ctx);
	free(ts);
	*tsp = NULL;
}

/*
 * Turns the outcome of an SSL_* call that returned r into the read()/write() convention
 * the transport expects: -1 with EAGAIN (and c->want set) to wait, 0 for EOF, -1 with
 * errno for a failure.
 */
static ssize_t
conn_result(struct tls_conn *c, int r, const char *op)
{
	int saved = errno;
	int e = SSL_get_error(c->ssl, r);
	char buf[256];

	switch (e) {
	case SSL_ERROR_WANT_READ:
		c->want = POLLIN;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		c->want = POLLOUT;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		/* The peer sent close_notify (or, with IGNORE_UNEXPECTED_EOF, just closed). */
		return 0;
	case SSL_ERROR_SYSCALL:
		c->dead = 1;
		ERR_clear_error();
		if (saved == 0)
			return 0;
		errno = saved;
		return -1;
	default:
		c->dead = 1;
		ssl_error(buf, sizeof(buf));
		log_notice("TLS %s failed: %s", op, buf);
		errno = EPROTO;
		return -1;
	}
}

static ssize_t
conn_read(void *ctx, void *buf, size_t len)
{
	struct tls_conn *c = ctx;
	size_t n = 0;
	int r;

	ERR_clear_error();
	errno = 0;
	r = SSL_read_ex(c->ssl, buf, len, &n);
	if (r == 1)
		return (ssize_t)n;
	return conn_result(c, r, "read");
}

static ssize_t
conn_write(void *ctx, const void *buf, size_t len)
{
	struct tls_conn *c = ctx;
	size_t n = 0;
	ssize_t r2;
	int r;

	ERR_clear_error();
	errno = 0;
	r = SSL_write_ex(c->ssl, buf, len, &n);
	if (r == 1)
		return (ssize_t)n;
	r2 = conn_result(c, r, "write");
	/* The transport treats 0 from write as a failure; make it an error it can log. */
	if (r2 == 0) {
		errno = EPIPE;
		return -1;
	}
	return r2;
}

static size_t
conn_pending(void *ctx)
{
	struct tls_conn *c = ctx;
	int n = SSL_pending(c->ssl);

	if (n > 0)
		return (size_t)n;
	/* Raw bytes of a record not yet decrypted: the kernel will not report them as
	 * readable again, so say something is there and let the next read sort it out. */
	return SSL_has_pending(c->ssl) ? 1 : 0;
}

static short
conn_want(void *ctx, int r)
{
	struct tls_conn *c = ctx;

	if (c->want != 0)
		return c->want;
	return r ? POLLIN : POLLOUT;
}

static void
conn_free(void *ctx)
{
	struct tls_conn *c = ctx;

	/* One non-blocking close_notify, best effort: the descriptors are non-blocking and
	 * nobody waits for the peer's answer, as RFC 8446 6.1 allows. */
	if (!c->dead)
		(void)SSL_shutdown(c->ssl);
	ERR_clear_error();
	SSL_free(c->ssl);
	free(c);
}

static const struct io_backend tls_backend = {
	.read = conn_read,
	.write = conn_write,
	.pending = conn_pending,
	.want = conn_want,
	.free = conn_free,
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
tls_start(struct tls_server *ts, struct io *io, int timeout_ms, char *desc, size_t descsize)
{
	struct tls_conn *c;
	int64_t deadline;

	if (io_buffered(io) != 0) {
		/* Bytes from before the handshake must not reach the TLS layer either. */
		snprintf(desc, descsize, "input received before the handshake was not discarded");
		return -1;
	}
	if (io_flush(io) == -1) {
		snprintf(desc, descsize, "write failed before the handshake: %s", strerror(errno));
		return -1;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->ssl = SSL_new(ts->ctx)) == NULL) {
		free(c);
		snprintf(desc, descsize, "out of memory");
		return -1;
	}
	if (SSL_set_rfd(c->ssl, io_rfd(io)) != 1 || SSL_set_wfd(c->ssl, io_wfd(io)) != 1) {
		ssl_error(desc, descsize);
		SSL_free(c->ssl);
		free(c);
		return -1;
	}
	deadline = now_ms() + (timeout_ms >= 0 ? timeout_ms : IMAPD_TLS_HANDSHAKE_MS);
	for (;;) {
		struct pollfd pfd;
		int64_t left;
		int r, e, saved;

		ERR_clear_error();
		errno = 0;
		r = SSL_accept(c->ssl);
		if (r == 1)
			break;
		saved = errno;
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_READ) {
			pfd.fd = io_rfd(io);
			pfd.events = POLLIN;
		} else if (e == SSL_ERROR_WANT_WRITE) {
			pfd.fd = io_wfd(io);
			pfd.events = POLLOUT;
		} else {
			if (e == SSL_ERROR_SSL)
				ssl_error(desc, descsize);
			else if (e == SSL_ERROR_SYSCALL && saved != 0)
				snprintf(desc, descsize, "%s", strerror(saved));
			else
				snprintf(desc, descsize, "connection closed during the handshake");
			SSL_free(c->ssl);
			free(c);
			return -1;
		}
		for (;;) {
			left = deadline - now_ms();
			if (left <= 0) {
				snprintf(desc, descsize, "handshake timed out");
				SSL_free(c->ssl);
				free(c);
				return -1;
			}
			r = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
			if (r > 0 || (r == -1 && errno != EINTR))
				break;
		}
		if (r == -1) {
			snprintf(desc, descsize, "poll: %s", strerror(errno));
			SSL_free(c->ssl);
			free(c);
			return -1;
		}
	}
	snprintf(desc, descsize, "%s %s", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
	io_set_backend(io, &tls_backend, c);
	return 0;
}

#ifndef IMAPD_TLS_H
#define IMAPD_TLS_H

#include <stddef.h>

#include "imapd/io.h"

/*
 * TLS for the transport, with OpenSSL: STARTTLS (RFC 3501 6.2.1) and implicit TLS on port
 * 993 (RFC 8314). TLS 1.2 is the oldest version offered; ciphers are the system's OpenSSL
 * defaults (/etc/ssl/openssl.cnf), so a site tunes them in one place for every program.
 *
 * The certificate chain and key are loaded by tls_server_new() while the process is still
 * root, so the key file need not (and should not) be readable by mail users. After the
 * handshake, tls_start() swaps the transport's back end: everything above keeps reading
 * lines and literals as before.
 *
 * OpenSSL writes to the socket with write(2): the process must ignore SIGPIPE (main does),
 * so that a vanished client is an error rather than a signal.
 */

/* Longest TLS handshake we wait for, in milliseconds, when the caller gives none. */
#define IMAPD_TLS_HANDSHAKE_MS	60000

struct tls_server;

/*
 * Loads the PEM certificate chain (leaf first) and the PEM private key; key_path may be
 * NULL or empty when the key is in the certificate file. Checks that they match.
 * Returns the context, or NULL with the reason (file and OpenSSL's error) in err.
 */
struct tls_server *tls_server_new(const char *cert_path, const char *key_path, char *err,
				  size_t errsize);
void	tls_server_free(struct tls_server **tsp);

/*
 * Runs the server side of the handshake on io's descriptors, waiting at most timeout_ms
 * (-1: IMAPD_TLS_HANDSHAKE_MS) in total. The caller must have dropped whatever input io
 * still buffered (io_discard_input()): those bytes arrived before TLS and must never be
 * acted on. On success io's back end is TLS from now on (output that was queued goes out
 * encrypted), and a description such as "TLSv1.3 TLS_AES_256_GCM_SHA384" is written to
 * desc. Returns 0, or -1 with the reason in desc; the connection is then unusable.
 */
int	tls_start(struct tls_server *ts, struct io *io, int timeout_ms, char *desc,
		  size_t descsize);

#endif

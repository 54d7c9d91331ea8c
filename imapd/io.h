#ifndef IMAPD_IO_H
#define IMAPD_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * The buffered transport every byte to and from the client passes through. One process
 * serves one connection, so I/O is blocking with poll() timeouts: no event loop. The
 * bytes move through a back end (plain file descriptors here; TLS sets its own), so what
 * sits above reads lines and literals and writes responses without knowing which is used.
 *
 * Input: one buffer of fixed size (line limit + a little). io_read_line() returns a pointer
 * into it that stays valid until the next io_read_*() call. Output is buffered and goes
 * out on io_flush() (the session flushes at every tagged response and before every blocking
 * read) or when the buffer fills.
 */

enum io_status {
	IO_OK = 0,
	IO_EOF,		/* peer closed the connection */
	IO_TIMEOUT,	/* nothing arrived (or could be sent) within the timeout */
	IO_TOOLONG,	/* line longer than the limit; its first part was consumed */
	IO_ERROR,	/* I/O error, errno set */
};

struct io;

/*
 * A back end moves bytes. read/write may return -1 with errno EAGAIN; the transport then
 * polls the fd for the events want() names (POLLIN by default) and calls again.
 */
struct io_backend {
	ssize_t	(*read)(void *ctx, void *buf, size_t len);
	ssize_t	(*write)(void *ctx, const void *buf, size_t len);
	/* Bytes the back end already holds decrypted (TLS); may be NULL. */
	size_t	(*pending)(void *ctx);
	/* poll() events needed after an EAGAIN from read (r=1) or write (r=0); may be NULL. */
	short	(*want)(void *ctx, int r);
	/* Releases ctx; may be NULL. */
	void	(*free)(void *ctx);
};

/* Takes the two descriptors (the same one for a socket is fine); sets them non-blocking. */
struct io *io_new(int rfd, int wfd, size_t inbuf_size);
void	io_free(struct io **iop);

/* Replaces the back end (e.g. after a TLS handshake). Frees the old one's ctx. */
void	io_set_backend(struct io *io, const struct io_backend *be, void *ctx);
int	io_rfd(const struct io *io);
int	io_wfd(const struct io *io);

/* Timeout for each wait, in milliseconds; -1 waits for ever. */
void	io_set_timeout(struct io *io, int timeout_ms);

/*
 * Reads one line ended by LF (a CR before it is dropped too). On IO_OK, *line_r points at
 * the line without its ending and *len_r is its length; the line may contain NUL bytes.
 * Lines longer than maxlen give IO_TOOLONG, with *line_r and *len_r its first (up to
 * maxlen) bytes, valid until the next io_read_*() call; io_skip_line() then drops the
 * rest of it.
 */
enum io_status io_read_line(struct io *io, size_t maxlen, const char **line_r, size_t *len_r);

/*
 * After IO_TOOLONG from io_read_line(): reads and drops the rest of that line, up to and
 * with its LF, at most max bytes of it (IO_TOOLONG beyond).  On IO_OK *tail_r points at
 * the line's last bytes (up to IO_TAIL_MAX, without CR LF; valid until the next io_*()
 * call), so that the caller can tell whether it announced a literal.
 */
#define IO_TAIL_MAX	32
enum io_status io_skip_line(struct io *io, uint64_t max, const unsigned char **tail_r,
			    size_t *tail_len_r);

/* Reads exactly len bytes into buf (a literal). */
enum io_status io_read_exact(struct io *io, void *buf, size_t len);

/*
 * Gives up to max buffered bytes (reading more when none are buffered): *data_r points into
 * the input buffer, valid until the next io_read_*() call. For streaming big literals.
 */
enum io_status io_read_some(struct io *io, size_t max, const unsigned char **data_r,
			    size_t *len_r);

/* Reads and drops len bytes. */
enum io_status io_skip(struct io *io, uint64_t len);

/* Overwrites input already consumed that is still in the buffer (a password line). */
void	io_wipe_consumed(struct io *io);

/* Bytes received and not yet consumed (in this buffer and in the back end). */
size_t	io_buffered(const struct io *io);

/* Drops what was received but not consumed; returns how many bytes. Used after STARTTLS:
 * nothing the client sent before the handshake may be acted on (RFC 3501 6.2.1). */
size_t	io_discard_input(struct io *io);

/*
 * Waits until client input is readable or extra_fd (if >= 0) is readable, for at most
 * timeout_ms. Returns 1 for client input, 2 for extra_fd, 0 on timeout, -1 on error.
 */
int	io_wait(struct io *io, int extra_fd, int timeout_ms);

/* Buffered output. Errors are sticky: a failed write makes later calls fail too. */
int	io_write(struct io *io, const void *data, size_t len);
int	io_puts(struct io *io, const char *s);
int	io_flush(struct io *io);
/*
 * Holding output, while the mailbox is locked for reading: from io_hold() on, no write or
 * flush waits for the client.  What it cannot take at once is kept in order, in memory up
 * to IMAPD_HOLD_MEM and beyond that in an unnamed file in spill_dir (the user's state
 * directory; NULL: /var/tmp), and sent by io_unhold(), which waits as io_flush() does.
 * io_held() is what is kept.  A caller that holds long lets it out now and then.
 */
void	io_hold(struct io *io, const char *spill_dir);
uint64_t io_held(const struct io *io);
int	io_unhold(struct io *io);

/* Non-zero once a write failed or timed out. */
int	io_failed(const struct io *io);

/* Byte counters, for the logout log line. */
uint64_t io_bytes_in(const struct io *io);
uint64_t io_bytes_out(const struct io *io);

#endif

#include "imapd/io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "imapd/limits.h"

struct io {
	int		rfd, wfd;
	const struct io_backend *be;
	void		*ctx;
	int		timeout_ms;
	int		failed;

	unsigned char	*in;
	size_t		in_size;	/* capacity */
	size_t		in_pos;		/* first unconsumed byte */
	size_t		in_len;		/* end of valid bytes */

	unsigned char	out[IMAPD_OUTBUF_SIZE];
	size_t		out_len;

	/* Holding (io_hold): bytes the client could not take at once, oldest first: q[q_off,
	 * q_len) in memory, then spill_len bytes in the file spill_fd.  They precede out. */
	int		hold;
	unsigned char	*q;
	size_t		q_off, q_len, q_cap;
	int		spill_fd;
	uint64_t	spill_len;
	char		*spill_dir;

	uint64_t	bytes_in, bytes_out;

	/* An over-long line (IO_TOOLONG): whether its LF is still to come, and its last
	 * bytes so far (for io_skip_line()) */
	int		long_open;
	unsigned char	long_tail[IO_TAIL_MAX];
	size_t		long_tail_len;
	uint64_t	long_skipped;	/* of it, consumed so far */
};

struct plain_ctx {
	int rfd, wfd;
};

static ssize_t
plain_read(void *ctx, void *buf, size_t len)
{
	struct plain_ctx *p = ctx;

	return read(p->rfd, buf, len);
}

static ssize_t
plain_write(void *ctx, const void *buf, size_t len)
{
	struct plain_ctx *p = ctx;

	return write(p->wfd, buf, len);
}

static void
plain_free(void *ctx)
{
	free(ctx);
}

static const struct io_backend plain_backend = {
	.read = plain_read,
	.write = plain_write,
	.free = plain_free,
};

static void
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl != -1)
		(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

struct io *
io_new(int rfd, int wfd, size_t inbuf_size)
{
	struct io *io = calloc(1, sizeof(*io));
	struct plain_ctx *p = calloc(1, sizeof(*p));

	if (io == NULL || p == NULL || (io->in = malloc(inbuf_size)) == NULL) {
		free(io);
		free(p);
		return NULL;
	}
	io->in_size = inbuf_size;
	io->rfd = rfd;
	io->wfd = wfd;
	io->timeout_ms = -1;
	io->spill_fd = -1;
	p->rfd = rfd;
	p->wfd = wfd;
	io->be = &plain_backend;
	io->ctx = p;
	set_nonblock(rfd);
	if (wfd != rfd)
		set_nonblock(wfd);
	return io;
}

void
io_free(struct io **iop)
{
	struct io *io = *iop;

	if (io == NULL)
		return;
	if (io->be->free != NULL)
		io->be->free(io->ctx);
	if (io->spill_fd >= 0)
		(void)close(io->spill_fd);
	free(io->q);
	free(io->spill_dir);
	free(io->in);
	free(io);
	*iop = NULL;
}

void
io_set_backend(struct io *io, const struct io_backend *be, void *ctx)
{
	if (io->be->free != NULL)
		io->be->free(io->ctx);
	io->be = be;
	io->ctx = ctx;
}

int
io_rfd(const struct io *io)
{
	return io->rfd;
}

int
io_wfd(const struct io *io)
{
	return io->wfd;
}

void
io_set_timeout(struct io *io, int timeout_ms)
{
	io->timeout_ms = timeout_ms;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline (-1: none). 1 ready, 0 timeout, -1 error. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };

	for (;;) {
		int t = -1, r;

		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			t = left > 0 ? (int)left : 0;
		}
		r = poll(&pfd, 1, t);
		if (r > 0)
			return 1;
		if (r == 0)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

/* Appends whatever the back end has to the input buffer; compacts it first if needed. */
static enum io_status
fill(struct io *io)
{
	int64_t deadline = io->timeout_ms >= 0 ? now_ms() + io->timeout_ms : -1;

	if (io->in_pos > 0 && io->in_pos == io->in_len)
		io->in_pos = io->in_len = 0;
	if (io->in_len == io->in_size && io->in_pos > 0) {
		memmove(io->in, io->in + io->in_pos, io->in_len - io->in_pos);
		io->in_len -= io->in_pos;
		io->in_pos = 0;
	}
	if (io->in_len == io->in_size)
		return IO_TOOLONG;
	/* Whatever is queued for the client goes out before we wait on it. */
	if (io_flush(io) == -1)
		return IO_ERROR;
	for (;;) {
		ssize_t n = io->be->read(io->ctx, io->in + io->in_len, io->in_size - io->in_len);
		short ev;
		int w;

		if (n > 0) {
			io->in_len += (size_t)n;
			io->bytes_in += (uint64_t)n;
			return IO_OK;
		}
		if (n == 0)
			return IO_EOF;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return IO_ERROR;
		ev = io->be->want != NULL ? io->be->want(io->ctx, 1) : POLLIN;
		w = wait_fd(ev & POLLOUT ? io->wfd : io->rfd, ev, deadline);
		if (w == 0)
			return IO_TIMEOUT;
		if (w < 0)
			return IO_ERROR;
	}
}

/* Keeps the last bytes of p[0..n) after those kept already, as the tail of a long line. */
static void
keep_tail(struct io *io, const unsigned char *p, size_t n)
{
	size_t keep = io->long_tail_len;

	if (n >= IO_TAIL_MAX) {
		memcpy(io->long_tail, p + n - IO_TAIL_MAX, IO_TAIL_MAX);
		io->long_tail_len = IO_TAIL_MAX;
		return;
	}
	if (keep + n > IO_TAIL_MAX) {
		memmove(io->long_tail, io->long_tail + keep + n - IO_TAIL_MAX,
			IO_TAIL_MAX - n);
		keep = IO_TAIL_MAX - n;
	}
	memcpy(io->long_tail + keep, p, n);
	io->long_tail_len = keep + n;
}

/* The line at start is longer than maxlen: give its first maxlen bytes. */
static enum io_status
too_long(struct io *io, unsigned char *start, size_t avail, int open, size_t maxlen,
	 const char **line_r, size_t *len_r)
{
	io->long_open = open;
	io->long_tail_len = 0;
	io->long_skipped = avail;
	keep_tail(io, start, avail);
	*line_r = (const char *)start;
	*len_r = avail < maxlen ? avail : maxlen;
	return IO_TOOLONG;
}

enum io_status
io_read_line(struct io *io, size_t maxlen, const char **line_r, size_t *len_r)
{
	size_t scanned = 0;

	for (;;) {
		unsigned char *start = io->in + io->in_pos;
		size_t avail = io->in_len - io->in_pos;
		unsigned char *lf = memchr(start + scanned, '\n', avail - scanned);
		enum io_status st;

		if (lf != NULL) {
			size_t len = (size_t)(lf - start);

			io->in_pos += len + 1;
			if (len > 0 && start[len - 1] == '\r')
				len--;
			if (len > maxlen)
				return too_long(io, start, len, 0, maxlen, line_r, len_r);
			*line_r = (const char *)start;
			*len_r = len;
			return IO_OK;
		}
		scanned = avail;
		/* CR LF may follow the limit: allow two bytes for them. */
		if (avail > maxlen + 1) {
			io->in_pos = io->in_len;
			return too_long(io, start, avail, 1, maxlen, line_r, len_r);
		}
		if (io->in_pos > 0 && io->in_size - io->in_len < maxlen + 2 - avail) {
			memmove(io->in, start, avail);
			io->in_pos = 0;
			io->in_len = avail;
		}
		st = fill(io);
		if (st == IO_TOOLONG) {
			start = io->in + io->in_pos;
			avail = io->in_len - io->in_pos;
			io->in_pos = io->in_len;
			return too_long(io, start, avail, 1, maxlen, line_r, len_r);
		}
		if (st != IO_OK)
			return st;
	}
}

enum io_status
io_skip_line(struct io *io, uint64_t max, const unsigned char **tail_r, size_t *tail_len_r)
{
	while (io->long_open) {
		unsigned char *start, *lf;
		size_t avail;
		enum io_status st;

		if (io->long_skipped > max)
			return IO_TOOLONG;
		if (io->in_pos == io->in_len) {
			io->in_pos = io->in_len = 0;
			if ((st = fill(io)) != IO_OK)
				return st;
		}
		start = io->in + io->in_pos;
		avail = io->in_len - io->in_pos;
		lf = memchr(start, '\n', avail);
		if (lf != NULL) {
			size_t len = (size_t)(lf - start);

			keep_tail(io, start, len);
			io->in_pos += len + 1;
			io->long_open = 0;
			/* the CR of the CRLF is not part of the line */
			if (io->long_tail_len > 0 && io->long_tail[io->long_tail_len - 1] == '\r')
				io->long_tail_len--;
			break;
		}
		keep_tail(io, start, avail);
		io->in_pos = io->in_len;
		io->long_skipped += avail;
	}
	*tail_r = io->long_tail;
	*tail_len_r = io->long_tail_len;
	return IO_OK;
}

enum io_status
io_read_some(struct io *io, size_t max, const unsigned char **data_r, size_t *len_r)
{
	size_t avail = io->in_len - io->in_pos;

	if (avail == 0) {
		enum io_status st = fill(io);

		if (st != IO_OK)
			return st;
		avail = io->in_len - io->in_pos;
	}
	if (avail > max)
		avail = max;
	*data_r = io->in + io->in_pos;
	*len_r = avail;
	io->in_pos += avail;
	return IO_OK;
}

enum io_status
io_read_exact(struct io *io, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		const unsigned char *d;
		size_t n;
		enum io_status st = io_read_some(io, len, &d, &n);

		if (st != IO_OK)
			return st;
		memcpy(p, d, n);
		p += n;
		len -= n;
	}
	return IO_OK;
}

enum io_status
io_skip(struct io *io, uint64_t len)
{
	while (len > 0) {
		const unsigned char *d;
		size_t n;
		enum io_status st = io_read_some(io, len > SIZE_MAX ? SIZE_MAX : (size_t)len,
						 &d, &n);

		if (st != IO_OK)
			return st;
		len -= n;
	}
	return IO_OK;
}

void
io_wipe_consumed(struct io *io)
{
	explicit_bzero(io->in, io->in_pos);
}

size_t
io_buffered(const struct io *io)
{
	size_t n = io->in_len - io->in_pos;

	if (io->be->pending != NULL)
		n += io->be->pending(io->ctx);
	return n;
}

size_t
io_discard_input(struct io *io)
{
	size_t n = io->in_len - io->in_pos;

	io->in_pos = io->in_len = 0;
	return n;
}

int
io_wait(struct io *io, int extra_fd, int timeout_ms)
{
	struct pollfd pfd[2];
	nfds_t nfd = 1;
	int r;

	if (io_buffered(io) > 0)
		return 1;
	if (io_flush(io) == -1)
		return -1;
	pfd[0].fd = io->rfd;
	pfd[0].events = POLLIN;
	if (extra_fd >= 0) {
		pfd[1].fd = extra_fd;
		pfd[1].events = POLLIN;
		nfd = 2;
	}
	do
		r = poll(pfd, nfd, timeout_ms);
	while (r == -1 && errno == EINTR);
	if (r <= 0)
		return r;
	if (pfd[0].revents != 0)
		return 1;
	return 2;
}

/* Sends len bytes from data straight through the back end. */
static int
send_all(struct io *io, const unsigned char *data, size_t len)
{
	int64_t deadline = now_ms() + (int64_t)IMAPD_TIMEOUT_WRITE * 1000;

	while (len > 0) {
		ssize_t n = io->be->write(io->ctx, data, len);
		short ev;
		int w;

		if (n > 0) {
			data += n;
			len -= (size_t)n;
			io->bytes_out += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			io->failed = 1;
			return -1;
		}
		ev = io->be->want != NULL ? io->be->want(io->ctx, 0) : POLLOUT;
		w = wait_fd(ev & POLLIN ? io->rfd : io->wfd, ev, deadline);
		if (w <= 0) {
			if (w == 0)
				errno = ETIMEDOUT;
			io->failed = 1;
			return -1;
		}
	}
	return 0;
}

/*
 * Sends what the back end takes without waiting: *len_r is set to the bytes left.  0, or -1
 * on a write error (sticky).
 */
static int
send_now(struct io *io, const unsigned char *data, size_t len, size_t *left_r)
{
	while (len > 0) {
		ssize_t n = io->be->write(io->ctx, data, len);

		if (n > 0) {
			data += n;
			len -= (size_t)n;
			io->bytes_out += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		io->failed = 1;
		return -1;
	}
	*left_r = len;
	return 0;
}

/* Queues len bytes behind what is held already: in memory up to IMAPD_HOLD_MEM, then in
 * the spill file.  0, or -1 (sticky) when neither can take them. */
static int
queue_add(struct io *io, const unsigned char *data, size_t len)
{
	if (len == 0)
		return 0;
	if (io->spill_fd < 0 && io->q_len + len <= IMAPD_HOLD_MEM) {
		if (io->q_len + len > io->q_cap) {
			size_t cap = io->q_cap < 65536 ? 65536 : io->q_cap;
			unsigned char *nq;

			while (cap < io->q_len + len)
				cap *= 2;
			nq = realloc(io->q, cap);
			if (nq == NULL) {
				io->failed = 1;
				return -1;
			}
			io->q = nq;
			io->q_cap = cap;
		}
		memcpy(io->q + io->q_len, data, len);
		io->q_len += len;
		return 0;
	}
	if (io->spill_fd < 0) {
		/* unnamed, in the user's state directory: it goes with the process */
		io->spill_fd = open(io->spill_dir != NULL ? io->spill_dir : "/var/tmp",
				    O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (io->spill_fd < 0) {
			io->failed = 1;
			return -1;
		}
		io->spill_len = 0;
	}
	while (len > 0) {
		ssize_t n = pwrite(io->spill_fd, data, len, (off_t)io->spill_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			io->failed = 1;
			return -1;
		}
		data += n;
		len -= (size_t)n;
		io->spill_len += (uint64_t)n;
	}
	return 0;
}

/* While holding: the output buffer goes to the client as far as it takes it at once, the
 * rest to the queue; once anything is queued, everything after it is queued too. */
static int
hold_flush(struct io *io)
{
	size_t left = io->out_len;

	if (io->out_len == 0)
		return 0;
	if (io->q_len == io->q_off && io->spill_fd < 0) {
		if (send_now(io, io->out, io->out_len, &left) < 0)
			return -1;
	}
	if (queue_add(io, io->out + io->out_len - left, left) < 0)
		return -1;
	io->out_len = 0;
	return 0;
}

void
io_hold(struct io *io, const char *spill_dir)
{
	free(io->spill_dir);
	io->spill_dir = spill_dir != NULL ? strdup(spill_dir) : NULL;
	io->hold = 1;
}

uint64_t
io_held(const struct io *io)
{
	return (uint64_t)(io->q_len - io->q_off) + io->spill_len;
}

int
io_unhold(struct io *io)
{
	unsigned char buf[65536];
	uint64_t off = 0;
	int r = 0;

	if (!io->hold)
		return io->failed ? -1 : 0;
	io->hold = 0;
	if (!io->failed && io->q_len > io->q_off)
		r = send_all(io, io->q + io->q_off, io->q_len - io->q_off);
	while (r == 0 && !io->failed && off < io->spill_len) {
		size_t want = io->spill_len - off < sizeof(buf) ? (size_t)(io->spill_len - off) :
								     sizeof(buf);
		ssize_t n = pread(io->spill_fd, buf, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			io->failed = 1;
			r = -1;
			break;
		}
		r = send_all(io, buf, (size_t)n);
		off += (uint64_t)n;
	}
	if (io->spill_fd >= 0)
		(void)close(io->spill_fd);
	io->spill_fd = -1;
	io->spill_len = 0;
	io->q_off = io->q_len = 0;
	/* a large queue is not kept for the next command */
	if (io->q_cap > IMAPD_HOLD_KEEP) {
		free(io->q);
		io->q = NULL;
		io->q_cap = 0;
	}
	return io->failed ? -1 : r;
}

int
io_flush(struct io *io)
{
	size_t len = io->out_len;

	if (io->failed)
		return -1;
	if (io->hold)
		return hold_flush(io);
	io->out_len = 0;
	return len > 0 ? send_all(io, io->out, len) : 0;
}

int
io_write(struct io *io, const void *data, size_t len)
{
	if (io->failed)
		return -1;
	if (io->out_len + len > sizeof(io->out)) {
		if (io_flush(io) == -1)
			return -1;
		if (len >= sizeof(io->out)) {
			if (io->hold) {
				size_t left = len;

				if (io->q_len == io->q_off && io->spill_fd < 0 &&
				    send_now(io, data, len, &left) < 0)
					return -1;
				return queue_add(io, (const unsigned char *)data + len - left,
						 left);
			}
			return send_all(io, data, len);
		}
	}
	memcpy(io->out + io->out_len, data, len);
	io->out_len += len;
	return 0;
}

int
io_puts(struct io *io, const char *s)
{
	return io_write(io, s, strlen(s));
}

int
io_failed(const struct io *io)
{
	return io->failed;
}

uint64_t
io_bytes_in(const struct io *io)
{
	return io->bytes_in;
}

uint64_t
io_bytes_out(const struct io *io)
{
	return io->bytes_out;
}

#ifndef IMAPD_LIMITS_H
#define IMAPD_LIMITS_H

/*
 * Every limit the protocol side enforces, in one place. Values before login are tight:
 * an unauthenticated peer gets only what LOGIN/AUTHENTICATE need. Most can be changed in
 * imapd.conf (see imapd.conf(5)); these are the defaults and hard ceilings.
 */

/* Longest command line (without its literals). RFC 7162 section 4 asks servers to accept
 * at least 8192 octets; UID sets of synchronising clients get long, so allow 64 KiB.
 * Before login the longest command a client may rightly send is ID at RFC 2971's maxima
 * (30 pairs of 30- and 1024-octet quoted strings: about 32 KiB), so 40 KiB.  A longer line
 * is answered BAD and skipped (up to IMAPD_DISCARD_MAX*), not a reason to end the session. */
#define IMAPD_LINE_MAX_PREAUTH		40960
#define IMAPD_LINE_MAX			65536

/* Largest literal held in memory: a LOGIN user name or password before login; a SEARCH
 * string or mailbox name after. APPEND literals are streamed to disk and have their own. */
#define IMAPD_LITERAL_MAX_PREAUTH	1024
#define IMAPD_LITERAL_MAX		65536

/* Largest message APPEND accepts (streamed, never held in memory). */
#define IMAPD_APPEND_MAX		(64ULL * 1024 * 1024)

/* Bytes of a refused non-synchronising literal we read and throw away before giving up
 * on the connection (RFC 7888 section 4 lets the server close it instead). */
#define IMAPD_DISCARD_MAX		(64ULL * 1024 * 1024)
#define IMAPD_DISCARD_MAX_PREAUTH	65536

/* Everything one command may make the parser keep: its line pieces and small literals. */
#define IMAPD_COMMAND_MAX_PREAUTH	(4 * IMAPD_LINE_MAX_PREAUTH)
#define IMAPD_COMMAND_MAX		(4 * IMAPD_LINE_MAX + 4 * IMAPD_LITERAL_MAX)

/* Parenthesised lists inside lists (SEARCH groups and FETCH item lists nest). */
#define IMAPD_NEST_MAX			32

/* Arguments in one command, counting list members. */
#define IMAPD_ARGS_MAX			16384

/* Tag length: RFC 3501 puts no bound; 64 octets is more than any client uses. */
#define IMAPD_TAG_MAX			64

/* Commands answered BAD in a row before the session ends. */
#define IMAPD_BAD_MAX			20

/* Failed logins per connection, and the pause before each NO (plus up to the jitter). */
#define IMAPD_LOGIN_FAILURES_MAX	3
#define IMAPD_LOGIN_DELAY_MS		2000
#define IMAPD_LOGIN_JITTER_MS		1000

/* Idle timeouts in seconds: about a minute before login; RFC 3501 section 5.4 requires at
 * least 30 minutes after; IDLE clients re-issue within 29 minutes (RFC 2177). */
#define IMAPD_TIMEOUT_PREAUTH		60
#define IMAPD_TIMEOUT_AUTH		1800
#define IMAPD_TIMEOUT_MIN_AUTH		1800

/* How long a write to the client may stall before the session is given up. */
#define IMAPD_TIMEOUT_WRITE		300

/* ID command (RFC 2971 3.3): at most 30 field/value pairs, fields of 30 octets, values of
 * 1024 octets. */
#define IMAPD_ID_PAIRS_MAX		30
#define IMAPD_ID_FIELD_MAX		30
#define IMAPD_ID_VALUE_MAX		1024

/* Buffered output before a forced flush. */
#define IMAPD_OUTBUF_SIZE		65536

/* Output held while a mailbox is read under its lock (io_hold): in memory up to
 * IMAPD_HOLD_MEM, then in a temporary file; the reader lets its lock go and sends what is
 * held once it passes IMAPD_HOLD_PAUSE.  A queue grown past IMAPD_HOLD_KEEP is freed. */
#define IMAPD_HOLD_MEM			(1024 * 1024)
#define IMAPD_HOLD_PAUSE		(256 * 1024)
#define IMAPD_HOLD_KEEP			(256 * 1024)

_Static_assert(IMAPD_LINE_MAX_PREAUTH <= IMAPD_LINE_MAX, "pre-login lines must be shorter");
_Static_assert(IMAPD_LINE_MAX_PREAUTH >= 64 + 6 + IMAPD_ID_PAIRS_MAX *
	       (IMAPD_ID_FIELD_MAX + IMAPD_ID_VALUE_MAX + 6), "ID at its maxima fits pre-login");
_Static_assert(IMAPD_LITERAL_MAX_PREAUTH <= IMAPD_LITERAL_MAX, "pre-login literals smaller");
_Static_assert(IMAPD_COMMAND_MAX_PREAUTH >= IMAPD_LINE_MAX_PREAUTH + 2 *
	       IMAPD_LITERAL_MAX_PREAUTH, "LOGIN with two literals must fit");
_Static_assert(IMAPD_TIMEOUT_MIN_AUTH >= 30 * 60, "RFC 3501 5.4: at least 30 minutes");
_Static_assert(IMAPD_TIMEOUT_PREAUTH < IMAPD_TIMEOUT_AUTH, "pre-login timeout is shorter");
_Static_assert(IMAPD_HOLD_PAUSE <= IMAPD_HOLD_MEM, "a pause comes before the spill file");

#endif

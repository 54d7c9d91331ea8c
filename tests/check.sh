#!/bin/sh
# make check: builds imapd, runs the unit tests, the end-to-end tests and the short stress
# run against the real binary, then does it all again under ASan+UBSan, then runs every
# fuzz harness for a few seconds over its seed corpus. Prints "check: N passed, M failed" last; exits non-zero on
# any failure. FUZZ_SECONDS (default 10) sets the time per fuzz harness.
set -u
cd "$(dirname "$0")/.."

PY=/usr/bin/python3
JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
pass=0
fail=0
failed=""

note_fail() {
	fail=$((fail + ${2:-1}))
	failed="$failed $1"
}

# Runs every cmocka program in $1/tests/unit and adds up its results.
run_unit() {
	for t in "$1"/tests/unit/test-*; do
		[ -x "$t" ] || continue
		out=$("$t" 2>&1)
		rc=$?
		printf '%s\n' "$out" | grep -E '^\[  (PASSED|FAILED|  ERROR|  LINE)|^\[  ERROR' || true
		p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
		f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
		pass=$((pass + ${p:-0}))
		if [ -n "$f" ] && [ "$f" -gt 0 ]; then
			note_fail "$t" "$f"
		elif [ "$rc" -ne 0 ]; then
			printf '%s\n' "$out" | tail -n 40
			note_fail "$t"
		fi
		echo "   $t: ${p:-0} passed, ${f:-0} failed (exit $rc)"
	done
}

# pam_wrapper (used by the tests for PAM) keeps a directory /tmp/pam.X per process, with
# only 36 names; a process that dropped privileges cannot remove its own. Remove those whose
# process is gone before each run.
clean_pam_wrapper_dirs() {
	for d in /tmp/pam.?; do
		[ -d "$d" ] || continue
		pid=$(cat "$d/pid" 2>/dev/null || true)
		if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
			rm -rf "$d"
		fi
	done
}

# Runs the pytest suite against the binary $1.
run_integration() {
	clean_pam_wrapper_dirs
	out=$(IMAPD_BIN="$1" $PY -m pytest -q -p no:cacheprovider tests/integration 2>&1)
	rc=$?
	printf '%s\n' "$out" | tail -n 60
	summary=$(printf '%s\n' "$out" | tail -n 1)
	p=$(printf '%s\n' "$summary" | grep -o '[0-9]* passed' | grep -o '[0-9]*')
	f=$(printf '%s\n' "$summary" | grep -o '[0-9]* failed' | grep -o '[0-9]*')
	e=$(printf '%s\n' "$summary" | grep -o '[0-9]* error' | grep -o '[0-9]*')
	pass=$((pass + ${p:-0}))
	bad=$(( ${f:-0} + ${e:-0} ))
	if [ "$bad" -gt 0 ]; then
		note_fail "integration($1)" "$bad"
	elif [ "$rc" -ne 0 ]; then
		note_fail "integration($1)"
	fi
}

echo "== build"
if ! make -s -j"$JOBS" all unit; then
	echo "check: 0 passed, 1 failed"
	exit 1
fi
# the store's test hooks (IMAPD_MBOX_* variables, crash points) are in the unit tests'
# library only: the server must not read them
if grep -q -a 'IMAPD_MBOX_' imapd/imapd; then
	echo "   the server binary reads IMAPD_MBOX_* test variables"
	note_fail "test-hooks-in-server"
else
	pass=$((pass + 1))
	echo "   the server binary holds no test hook (no IMAPD_MBOX_* name)"
fi
echo "== unit tests"
run_unit build
echo "== integration tests"
run_integration "$PWD/imapd/imapd"

# Runs the short concurrent stress run (tests/stress) against the binary $1: every answer of
# ten clients, an MDA and a mail reader on one INBOX is checked; 0 violations passes.
run_stress() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "   skipped: needs root (it runs the server as a throwaway user)"
		return
	fi
	if $PY tests/stress/stress.py --short --imapd "$1" ${2:-} >/tmp/imapd-stress.$$ 2>&1; then
		pass=$((pass + 1))
		grep -E '^(all IMAP|violations)' /tmp/imapd-stress.$$
	else
		tail -n 60 /tmp/imapd-stress.$$
		note_fail "stress($1${2:+ $2})"
	fi
	rm -f /tmp/imapd-stress.$$
}

echo "== stress: 10 clients, an MDA and a mail reader on one mailbox (tests/stress)"
run_stress "$PWD/imapd/imapd"
echo "== stress with CONDSTORE/QRESYNC sessions: mod-sequences checked (tests/stress --condstore)"
if $PY tests/stress/test_modseq.py >/tmp/imapd-stress-self.$$ 2>&1; then
	pass=$((pass + 1))
else
	cat /tmp/imapd-stress-self.$$
	note_fail "stress-modseq-selftest"
fi
rm -f /tmp/imapd-stress-self.$$
run_stress "$PWD/imapd/imapd" --condstore
echo "== stress with updating SEARCH/SORT results: ADDTO/REMOVEFROM checked (tests/stress --context)"
if $PY tests/stress/test_context_copy.py >/tmp/imapd-stress-self.$$ 2>&1; then
	pass=$((pass + 1))
else
	cat /tmp/imapd-stress-self.$$
	note_fail "stress-context-selftest"
fi
rm -f /tmp/imapd-stress-self.$$
run_stress "$PWD/imapd/imapd" --context

echo "== differential test against Dovecot's imap (tests/diff)"
if [ "$(id -u)" -ne 0 ]; then
	echo "   skipped: needs root (it runs both servers as a throwaway user)"
elif $PY tests/diff/diff.py --generated 1000 >/tmp/imapd-diff.$$ 2>&1; then
	pass=$((pass + 1))
	grep '^summary' /tmp/imapd-diff.$$
else
	tail -n 60 /tmp/imapd-diff.$$
	note_fail "differential"
fi
rm -f /tmp/imapd-diff.$$

# CONDSTORE/QRESYNC (RFC 7162): the same scenario on both servers (tests/diff/condstore.py).
echo "== CONDSTORE/QRESYNC differential test against Dovecot's imap (tests/diff/condstore.py)"
if [ "$(id -u)" -ne 0 ]; then
	echo "   skipped: needs root (it runs both servers as a throwaway user)"
elif $PY tests/diff/condstore.py >/tmp/imapd-condstore.$$ 2>&1; then
	pass=$((pass + 1))
	grep '^summary' /tmp/imapd-condstore.$$
else
	tail -n 60 /tmp/imapd-condstore.$$
	note_fail "differential-condstore"
fi
rm -f /tmp/imapd-condstore.$$

# SORT, THREAD and ESORT (RFC 5256, 5267): the same commands on both servers (tests/diff/sort.py).
echo "== SORT/THREAD differential test against Dovecot's imap (tests/diff/sort.py)"
if [ "$(id -u)" -ne 0 ]; then
	echo "   skipped: needs root (it runs both servers as a throwaway user)"
elif $PY tests/diff/sort.py >/tmp/imapd-sortdiff.$$ 2>&1; then
	pass=$((pass + 1))
	grep '^summary' /tmp/imapd-sortdiff.$$
else
	tail -n 60 /tmp/imapd-sortdiff.$$
	note_fail "differential-sort"
fi
rm -f /tmp/imapd-sortdiff.$$

echo "== sanitizer build (ASan + UBSan)"
if make -s -j"$JOBS" B=build-san SAN=1 build-san/imapd/imapd unit; then
	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:verify_asan_link_order=0"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
	echo "== unit tests (sanitizers)"
	run_unit build-san
	unset ASAN_OPTIONS UBSAN_OPTIONS
	echo "== integration tests (sanitizers)"
	run_integration "$PWD/build-san/imapd/imapd"
	echo "== stress (sanitizers)"
	run_stress "$PWD/build-san/imapd/imapd"
else
	note_fail "sanitizer-build"
fi

echo "== fuzz harnesses (${FUZZ_SECONDS}s each)"
if make -s -j"$JOBS" fuzz; then
	for f in build-fuzz/tests/fuzz/fuzz-*; do
		[ -x "$f" ] || continue
		name=${f##*/fuzz-}
		work=$(mktemp -d)
		[ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name/." "$work/"
		if "$f" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
			-artifact_prefix="$work.art-" \
			-print_final_stats=0 "$work" >"$work.log" 2>&1; then
			pass=$((pass + 1))
			echo "   fuzz-$name: ok ($(grep -c . "$work.log") log lines)"
		else
			tail -n 40 "$work.log"
			# Keep the input that failed, outside the source tree.
			cp "$work".art-* build-fuzz/ 2>/dev/null && echo "   input kept in build-fuzz/"
			note_fail "fuzz-$name"
		fi
		rm -rf "$work" "$work.log" "$work".art-*
	done
else
	note_fail "fuzz-build"
fi

[ -n "$failed" ] && echo "failed:$failed"
echo "check: $pass passed, $fail failed"
[ "$fail" -eq 0 ]

#!/bin/bash
# Run every test: unit tests (normal and ASan+UBSan builds), bounded fuzz
# runs of every libFuzzer target, and the black-box pytest suites against
# the ASan+UBSan build.  Ends with one line "N passed, N failed" and a
# non-zero exit status on any failure.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BUILD_ASAN=${BUILD_ASAN:-build-asan}
BUILD_FUZZ=${BUILD_FUZZ:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
passed=0
failed=0
failures=()

count_meson() { # $1 = build dir
	local out
	out=$(meson test -C "$1" --print-errorlogs 2>&1)
	local rc=$?
	echo "$out" | grep -E '^(Ok|Fail|Expected Fail|Unexpected Pass|Skipped|Timeout):' || true
	echo "$out" | grep -E '(FAIL|TIMEOUT) ' | head -20 || true
	local ok fail to
	ok=$(echo "$out" | sed -n 's/^Ok: *\([0-9]*\).*/\1/p')
	fail=$(echo "$out" | sed -n 's/^Fail: *\([0-9]*\).*/\1/p')
	to=$(echo "$out" | sed -n 's/^Timeout: *\([0-9]*\).*/\1/p')
	passed=$((passed + ${ok:-0}))
	failed=$((failed + ${fail:-0} + ${to:-0}))
	if [ "$rc" -ne 0 ]; then
		failures+=("unit tests in $1")
		[ "${fail:-0}" = 0 ] && [ "${to:-0}" = 0 ] && failed=$((failed + 1))
	fi
}

echo "== unit tests ($BUILD)"
count_meson "$BUILD"
echo "== unit tests under ASan+UBSan ($BUILD_ASAN)"
count_meson "$BUILD_ASAN"

echo "== fuzz targets (${FUZZ_SECONDS}s each)"
for f in "$BUILD_FUZZ"/fuzz_*; do
	[ -f "$f" ] && [ -x "$f" ] || continue
	name=$(basename "$f")
	corpus=fuzz/corpus/$name
	work=$(mktemp -d)
	[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
	if (cd "$work" && "$OLDPWD/$f" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
		. >"$work.log" 2>&1); then
		echo "fuzz $name: ok, $(grep -oE 'Done [0-9]+ runs' "$work.log" | tail -1 | cut -d' ' -f2) runs"
		passed=$((passed + 1))
	else
		echo "fuzz $name: FAILED"; tail -40 "$work.log"
		failed=$((failed + 1)); failures+=("fuzz $name")
	fi
	rm -rf "$work" "$work.log"
done

echo "== black-box tests (pytest, $BUILD_ASAN)"
asan_dir=$(mktemp -d /tmp/facteur-asan.XXXXXX)
chmod 1777 "$asan_dir"
export ASAN_OPTIONS="log_path=$asan_dir/asan:detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="log_path=$asan_dir/ubsan:print_stacktrace=1:halt_on_error=1"
out=$(FACTEUR_BUILD="$BUILD_ASAN" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests 2>&1)
rc=$?
echo "$out" | tail -60
last=$(echo "$out" | grep -E '[0-9]+ (passed|failed)' | tail -1)
p=$(echo "$last" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
f=$(echo "$last" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
e=$(echo "$last" | grep -oE '[0-9]+ error' | grep -oE '[0-9]+')
passed=$((passed + ${p:-0}))
failed=$((failed + ${f:-0} + ${e:-0}))
if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then
	failures+=("pytest (exit $rc)")
	[ -z "$f" ] && [ -z "$e" ] && failed=$((failed + 1))
fi
if ls "$asan_dir"/* >/dev/null 2>&1; then
	echo "== sanitizer reports from the daemons:"
	head -60 "$asan_dir"/*
	failed=$((failed + 1)); failures+=("sanitizer reports")
fi
rm -rf "$asan_dir"

if [ ${#failures[@]} -gt 0 ]; then
	echo "failures: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

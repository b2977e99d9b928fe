#!/usr/bin/env bash
# Runs slow suites many times in a row and says how many runs of each passed: a suite that fails
# one run in twenty fails CI one time in twenty.
#
#   npm run test:repeat -- [-n N] [PATTERN ...]
#
# PATTERN is a Jest test path pattern; by default the suites that kill, restart and race things:
# agent crashes, restarts and pauses, the disruptive engine suite, the e2e menu and attach
# suites, and the hostile-session, hardening, attach-size, attach-filter and migration suites. N defaults to 20. The log of every failed run is kept; the last line sums everything
# up, and the exit status is non-zero when any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/bin:/usr/sbin:$PATH"

n=20
if [ "${1:-}" = "-n" ]; then
  n="${2:?-n needs a count}"
  shift 2
fi
case "$n" in '' | *[!0-9]*) echo "test:repeat: -n wants a positive count, not '$n'" >&2; exit 2 ;; esac
suites=("$@")
if [ ${#suites[@]} -eq 0 ]; then
  suites=(test/integration/agent-crash test/integration/agent-restart test/integration/agent-pause test/disruptive test/e2e/shell-menu test/e2e/shell-attach
    test/integration/hostile-session test/integration/container-hardening test/integration/attach-size test/integration/attach-filter
    test/integration/store-migration)
fi

logs=$(mktemp -d "${TMPDIR:-/tmp}/berth-repeat-XXXXXX")
total_pass=0
total_fail=0
summary=()
for suite in "${suites[@]}"; do
  pass=0
  fail=0
  start=$(date +%s)
  for i in $(seq 1 "$n"); do
    log="$logs/$(echo "$suite" | tr '/' '_')-$i.log"
    # Jest's default ignore list skips test/disruptive; name it here and it runs like the rest.
    if npx jest --runInBand --testPathIgnorePatterns /node_modules/ /dist/ --testPathPattern "$suite" >"$log" 2>&1; then
      pass=$((pass + 1))
      rm -f "$log"
    else
      fail=$((fail + 1))
      echo "  $suite run $i FAILED: $log" >&2
    fi
    printf '%s: run %d/%d, %d passed, %d failed\n' "$suite" "$i" "$n" "$pass" "$fail"
  done
  summary+=("$(printf '%-32s %d/%d runs passed (%d s)' "$suite" "$pass" "$n" "$(($(date +%s) - start))")")
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
done

echo
echo "== test:repeat, $n runs each"
printf '%s\n' "${summary[@]}"
[ "$total_fail" -eq 0 ] && rmdir "$logs" 2>/dev/null
[ "$total_fail" -gt 0 ] && echo "logs of failed runs: $logs"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]

#!/usr/bin/env bash
# Runs one bench/lib/*.py driver with cleanup: whatever it started (pid files in
# $BENCH_RUN/pids) is stopped on exit, error or Ctrl-C. Usage: lib/run.sh DRIVER.py ARGS...
set -euo pipefail
LIB="$(cd "$(dirname "$0")" && pwd)"
export BENCH_RUN="${BENCH_RUN:-/tmp/cohort-bench}"
cleanup() {
  python3 -c "import sys; sys.path.insert(0, '$LIB'); import benchlib; benchlib.stop_all()" || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ -d "$BENCH_RUN/pids" ] && [ -n "$(ls -A "$BENCH_RUN/pids" 2>/dev/null)" ]; then
  echo "stopping processes left by an earlier run: $(ls "$BENCH_RUN/pids")" >&2
  cleanup
fi
command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk tomcat10 nginx" >&2; exit 1; }
command -v nginx >/dev/null || { echo "nginx missing: apt-get install -y nginx" >&2; exit 1; }
[ -d /usr/share/tomcat10 ] || { echo "tomcat10 missing: apt-get install -y tomcat10" >&2; exit 1; }
[ -x "${COHORT_BINARY:-$LIB/../../.build/release/cohort}" ] || { echo "build first: swift build -c release" >&2; exit 1; }
cd "$LIB"
timeout --foreground -k 30 "${BENCH_TIMEOUT:-1200}" python3 "$@"

#!/usr/bin/env bash
# bench/failover.sh ARGS... : see bench/README.md and the docstring of bench/lib/failover.py.
exec "$(cd "$(dirname "$0")" && pwd)/lib/run.sh" failover.py "$@"

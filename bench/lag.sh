#!/usr/bin/env bash
# bench/lag.sh ARGS... : see bench/README.md and the docstring of bench/lib/lag.py.
exec "$(cd "$(dirname "$0")" && pwd)/lib/run.sh" lag.py "$@"

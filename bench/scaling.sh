#!/usr/bin/env bash
# bench/scaling.sh ARGS... : see bench/README.md and the docstring of bench/lib/scaling.py.
exec "$(cd "$(dirname "$0")" && pwd)/lib/run.sh" scaling.py "$@"

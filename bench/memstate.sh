#!/usr/bin/env bash
# bench/memstate.sh ARGS... : see bench/README.md and the docstring of bench/lib/memstate.py.
exec "$(cd "$(dirname "$0")" && pwd)/lib/run.sh" memstate.py "$@"

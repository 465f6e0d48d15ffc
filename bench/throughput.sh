#!/usr/bin/env bash
# bench/throughput.sh ARGS... : see bench/README.md and the docstring of bench/lib/throughput.py.
exec "$(cd "$(dirname "$0")" && pwd)/lib/run.sh" throughput.py "$@"

#!/bin/sh
# Builds the real-RDTSC-rate reference (rdtsc_rate.c) next to this script with gcc -O2.
# `tscsim bench` looks for the result here (tests/TscSim.Benchmarks/reference/rdtsc/rdtsc_rate,
# found by walking up from the current folder and from the tscsim binary's folder) or at
# $TSCSIM_RDTSC_REFERENCE. x86-64 only (RDTSC).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
CC=${CC:-gcc}
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "build.sh: $CC not found (Debian: apt-get install gcc)" >&2
    exit 1
fi
"$CC" -O2 -o "$here/rdtsc_rate" "$here/rdtsc_rate.c"
echo "$here/rdtsc_rate"

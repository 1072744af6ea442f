#!/bin/sh
# Builds the bare C++ hold-loop reference (hold.cpp) next to this script with g++ -O2.
# `tscsim bench` looks for the result here (tests/TscSim.Benchmarks/reference/hold, found by
# walking up from the current folder and from the tscsim binary's folder) or at $TSCSIM_CXX_HOLD.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
CXX=${CXX:-g++}
if ! command -v "$CXX" >/dev/null 2>&1; then
    echo "build.sh: $CXX not found (Debian: apt-get install g++)" >&2
    exit 1
fi
"$CXX" -O2 -std=c++17 -o "$here/hold" "$here/hold.cpp"
echo "$here/hold"

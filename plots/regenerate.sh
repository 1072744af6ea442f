#!/bin/sh
# Regenerates the README's figures from shipped scenarios and sweeps (deterministic inputs; the
# images are the same on a given machine). Run from anywhere: plots/regenerate.sh
# Each plots/<name>/ folder is made by this script alone and is emptied first, so a figure that
# 'tscsim plot' now skips (no data: e.g. cross-vcpu-skew of a one-vCPU VM) does not linger.
set -eu
cd "$(dirname "$0")/.."
tscsim() { dotnet run -c Release --project src/TscSim.Cli --no-launch-profile -- "$@"; }
dotnet build -c Release src/TscSim.Cli >/dev/null
for s in legacy-guest-to-faster-host hpet-fallback-after-watchdog; do
  tscsim run "scenarios/$s.yaml" --out "results/$s" --quiet
  rm -rf "plots/$s"
  tscsim plot "results/$s" --out "plots/$s"
done
for w in skew-vs-frequency-ratio skew-vs-vmm trap-overhead-vs-rdtsc-rate; do
  tscsim sweep "scenarios/sweeps/$w.yaml" --out "results/sweeps/$w" --quiet
  rm -rf "plots/$w"
  tscsim plot "results/sweeps/$w" --out "plots/$w"
done

using System.Globalization;
using TscSim.Core.Time;

namespace TscSim.Core.Runs;

/// <summary>
/// The performance reference of <c>tscsim bench</c> and the benchmarks: one VM of 4 vCPUs with
/// kvm-clock (linux-modern on kvm-modern, intel-skylake at 2 GHz), each reading the clock every
/// 10 µs of guest time (20,000 cycles of work between reads).
/// </summary>
public static class ReferenceScenario
{
    /// <summary>The scenario text for a run of <paramref name="duration"/>.</summary>
    public static string Text(Duration duration) => $$"""
        name: bench-reference
        duration: {{duration.Picoseconds.ToString(CultureInfo.InvariantCulture)}}ps
        hosts:
          - id: h
            cpu: intel-skylake
            frequency: 2GHz
            cores_per_socket: 4
        hypervisor:
          policy: kvm-modern
        vms:
          - id: vm0
            host: h
            vcpus: 4
            pin: [0, 1, 2, 3]
            guest: linux-modern
            workload: |
              loop:
                call clock_gettime
                work 20000cycles
                jmp loop
        """;
}

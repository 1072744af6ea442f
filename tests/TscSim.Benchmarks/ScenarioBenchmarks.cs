using BenchmarkDotNet.Attributes;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;

namespace TscSim.Benchmarks;

/// <summary>
/// A whole scenario, end to end (model built, run, summary): the reference scenario of
/// <c>tscsim bench</c> (1 VM, 4 vCPUs, linux-modern on kvm-modern, a clock read every 10 µs),
/// 250 ms simulated. Simulated/wall = 0.25 s / the reported mean.
/// </summary>
[MemoryDiagnoser]
public class ScenarioBenchmarks
{
    private const string Text = """
        name: bench-reference
        duration: 250ms
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

    private Scenario _scenario = null!;

    [GlobalSetup]
    public void Setup() => _scenario = ScenarioLoader.LoadText(Text, "bench-reference.yaml");

    [Benchmark]
    public string ReferenceScenario250ms() => ScenarioRun.Execute(new ScenarioModel(_scenario)).Fingerprint;
}

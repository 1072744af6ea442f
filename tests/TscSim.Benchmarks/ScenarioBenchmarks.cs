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
    private Scenario _scenario = null!;

    [GlobalSetup]
    public void Setup() => _scenario = ScenarioLoader.LoadText(ReferenceScenario.Text(TscSim.Core.Time.Duration.FromMilliseconds(250)), "bench-reference.yaml");

    [Benchmark]
    public string ReferenceScenario250ms() => ScenarioRun.Execute(new ScenarioModel(_scenario)).Fingerprint;
}

using System.Text.Json;
using TscSim.Cli;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;

namespace TscSim.Tests.Cli;

/// <summary>
/// <c>tscsim bench</c>'s boot figure times the reference scenario's first
/// <see cref="Bench.ReferenceBoot"/> of simulated time; it is a boot figure only if every vCPU
/// has booted (and read its clock) by then.
/// </summary>
public class BenchBootTests
{
    [Fact]
    public void Every_vcpu_of_the_reference_scenario_reads_its_clock_within_the_boot_window_and_not_before_its_warp_tests()
    {
        var model = new ScenarioModel(ScenarioLoader.LoadText(ReferenceScenario.Text(Bench.ReferenceBoot), "boot.yaml"));
        ScenarioRun.Execute(model);
        var vcpus = model.Observer.Vms[0].Vcpus;
        Assert.Equal(4, vcpus.Count);
        Assert.All(vcpus, v => Assert.True(v.Reads > 0, $"vcpu{v.Id} did not boot within {Bench.ReferenceBoot}"));
        // Linux 6.18 tsc_sync.c loop_timeout: three APs, each after a 2 ms warp test run in turn,
        // so the last AP is online only after 3 x 2 ms = 6 ms of the 2 GHz TSC.
        var spans = model.Vms[0].Kernel.WarpTestSpans;
        Assert.Equal(3, spans.Count);
        Assert.True(spans[^1].End.Picoseconds >= 6_000_000_000L);
    }

    [Fact]
    public void Bench_reports_the_boots_wall_time()
    {
        var output = new StringWriter();
        int code = TscSimCli.Run(["bench", "--json", "--events", "20000", "--rounds", "1"], output, new StringWriter());
        Assert.Equal(ExitCodes.Success, code);
        using var doc = JsonDocument.Parse(output.ToString());
        Assert.True(doc.RootElement.GetProperty("reference_boot_wall_ms").GetDouble() > 0);
    }
}

using TscSim.Plots;
using TscSim.Plots.Input;
using TscSim.Plots.Recipes;

namespace TscSim.Tests.Plots;

/// <summary>The data behind each results figure, on the tiny folder of <see cref="TinyFolders"/>, worked out by hand.</summary>
public sealed class ResultsRecipeTests : IDisposable
{
    private readonly TempFolder _dir = new();
    private readonly ResultsFolder _results;

    public ResultsRecipeTests() => _results = ResultsFolder.Load(TinyFolders.WriteResults(_dir));

    public void Dispose() => _dir.Dispose();

    private static void AssertSeries(Series actual, string label, double[] x, double[] y)
    {
        Assert.Equal(label, actual.Label);
        Assert.Equal(x, actual.X);
        Assert.Equal(y, actual.Y);
    }

    [Fact]
    public void Results_folder_reads_every_file()
    {
        Assert.Equal("tiny", _results.ScenarioName);
        Assert.Equal(1_000_000_000, _results.SimulatedNs);
        Assert.Equal(["vm0", "vm1"], _results.Vms.Select(v => v.Id));
        Assert.Equal([2, 1], _results.Vms.Select(v => v.VcpuCount));
        Assert.Equal(7, _results.Reads.Count);
        Assert.Equal(new ClockRead(150_000_000, "vm0", 1, 1, "h0", -1000, 50), _results.Reads[1]);
        Assert.Equal(9, _results.Exits.Count);
        Assert.Equal([300L, 0, 0, 0, 5, 0, 0], _results.Exits[7].Counts);
        Assert.Null(_results.Vms[0].Trapping[1].ToNs);
        Assert.Null(_results.Vms[0].Switches[0].From);
        Assert.Equal("tiny", _results.Scenario.Name);
    }

    [Fact]
    public void Skew_over_time_is_seconds_against_milliseconds_per_vcpu_with_switches_and_trapping()
    {
        var data = new SkewOverTime().Extract(_results);
        Assert.Equal("tiny", data.Scenario);
        Assert.Equal(1.0, data.EndSeconds);
        Assert.Equal(3, data.Vcpus.Count);
        AssertSeries(data.Vcpus[0], "vm0.vcpu0", [0.1, 0.2, 0.6], [0.0005, 0.002, 0.003]);
        AssertSeries(data.Vcpus[1], "vm0.vcpu1", [0.15, 0.3, 0.5], [-0.001, 0.0015, 0]);
        AssertSeries(data.Vcpus[2], "vm1.vcpu0", [0.25], [0]);
        Assert.Equal([new Marker(0.01, "vm0: tsc (boot)"), new Marker(0.6, "vm0: tsc → hpet"), new Marker(0.01, "vm1: kvm-clock (boot)")], data.Switches);
        // The open interval (to_ns null) ends at the end of the run.
        Assert.Equal([new Span(0.2, 0.4, "vm0 trapped"), new Span(0.7, 1.0, "vm0 trapped")], data.Trapping);
    }

    [Fact]
    public void Skew_series_follow_true_time_whatever_the_row_order()
    {
        string shuffled = string.Join('\n', TinyFolders.Reads.ReplaceLineEndings("\n").Split('\n') is var lines
            ? new[] { lines[0] }.Concat(lines.Skip(1).Reverse()) : []);
        var results = ResultsFolder.Load(TinyFolders.WriteResults(_dir, "shuffled", shuffled));
        var data = new SkewOverTime().Extract(results);
        AssertSeries(data.Vcpus[0], "vm0.vcpu0", [0.1, 0.2, 0.6], [0.0005, 0.002, 0.003]);
    }

    [Fact]
    public void Cross_vcpu_skew_compares_each_read_with_the_latest_skew_of_the_other_vcpus()
    {
        // vm0 in time order: v0 +500 (no other vCPU yet), v1 −1000 (|−1000 − 500| = 1500),
        // v0 +2000 (3000), v1 +1500 (500), v1 0 (2000), v0 +3000 (3000). vm1 has one vCPU: no series.
        var data = new CrossVcpuSkew().Extract(_results);
        Assert.Equal("µs", data.Unit);
        var vm0 = Assert.Single(data.Vms);
        AssertSeries(vm0, "vm0", [0.15, 0.2, 0.3, 0.5, 0.6], [1.5, 3, 0.5, 2, 3]);
    }

    [Fact]
    public void Read_latency_cdf_in_cycles_steps_at_each_distinct_latency()
    {
        var data = new ReadLatencyCdf(LatencyUnit.Cycles).Extract(_results);
        Assert.Equal(LatencyUnit.Cycles, data.Unit);
        Assert.Equal(3, data.Vcpus.Count);
        AssertSeries(data.Vcpus[0], "vm0.vcpu0", [50, 1000], [2 / 3.0, 1]);
        AssertSeries(data.Vcpus[1], "vm0.vcpu1", [50, 100, 1000], [1 / 3.0, 2 / 3.0, 1]);
        AssertSeries(data.Vcpus[2], "vm1.vcpu0", [100], [1]);
    }

    [Fact]
    public void Read_latency_in_ns_divides_by_the_core_frequency_at_the_read_including_cpufreq_events()
    {
        // h0 at 2 GHz: 50 cycles = 25 ns, 1000 cycles = 500 ns; h0 core 1 at 1 GHz from 500 ms (the read at
        // exactly 500 ms sees the new frequency): 100 cycles = 100 ns; h1 at 4 GHz: 100 cycles = 25 ns.
        var data = new ReadLatencyCdf(LatencyUnit.Nanoseconds).Extract(_results);
        AssertSeries(data.Vcpus[0], "vm0.vcpu0", [25, 500], [2 / 3.0, 1]);
        AssertSeries(data.Vcpus[1], "vm0.vcpu1", [25, 100, 500], [1 / 3.0, 2 / 3.0, 1]);
        AssertSeries(data.Vcpus[2], "vm1.vcpu0", [25], [1]);
    }

    [Fact]
    public void Read_latency_in_ns_needs_the_read_host_in_the_scenario()
    {
        var results = ResultsFolder.Load(TinyFolders.WriteResults(_dir, "badhost",
            TinyFolders.Reads.Replace("250000000,vm1,0,0,h1,", "250000000,vm1,0,0,elsewhere,", StringComparison.Ordinal)));
        var ex = Assert.Throws<PlotInputException>(() => new ReadLatencyCdf(LatencyUnit.Nanoseconds).Extract(results));
        Assert.Contains("host 'elsewhere' is not a host of scenario.resolved.yaml", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Exit_rates_are_differences_of_cumulative_counts_per_interval_summed_over_a_vms_vcpus()
    {
        // vm0 summed over vCPUs: at 0.25 s pio 15; at 0.5 s rdtsc 150, pio 15; at 1 s rdtsc 400, mmio 1, pio 15.
        // Intervals [0, 0.25], [0.25, 0.5], [0.5, 1]: rdtsc 0, 150/0.25, 250/0.5; mmio 0, 0, 1/0.5; pio 15/0.25, 0, 0.
        // vm1 has no exit: no series.
        var data = new ExitRates().Extract(_results);
        Assert.Equal("tiny", data.Scenario);
        Assert.Equal(["vm0 rdtsc", "vm0 mmio", "vm0 pio"], data.Rates.Select(r => r.Label));
        Assert.All(data.Rates, r =>
        {
            Assert.Equal([0, 0.25, 0.5], r.From);
            Assert.Equal([0.25, 0.5, 1], r.To);
        });
        Assert.Equal([0, 600, 500], data.Rates[0].PerSecond);
        Assert.Equal([0, 0, 2], data.Rates[1].PerSecond);
        Assert.Equal([60, 0, 0], data.Rates[2].PerSecond);
    }

    [Fact]
    public void Empty_reads_give_empty_series_and_still_render()
    {
        var results = ResultsFolder.Load(TinyFolders.WriteResults(_dir, "noreads", "true_ns,vm,vcpu,core,host,clock_ns,skew_ns,exited,cycles\n"));
        Assert.Empty(new SkewOverTime().Extract(results).Vcpus);
        Assert.Equal([], new CrossVcpuSkew().Extract(results).Vms.Single().X);
        Assert.Empty(new ReadLatencyCdf(LatencyUnit.Nanoseconds).Extract(results).Vcpus);
        foreach (var recipe in Plotter.ResultsRecipes)
        {
            using var plot = recipe.Draw(results);
            Assert.NotEmpty(plot.GetImageBytes(200, 150, ScottPlot.ImageFormat.Png));
        }
    }
}

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
    public void Cross_vcpu_skew_compares_two_vcpus_clocks_at_one_instant()
    {
        // vm0 in time order: v0 0.1 s +500, v1 0.15 s −1000 (first reads: nothing in their brackets);
        // v0 0.2 s +2000: v0 between 0.1 and 0.2 s is +1250 at 0.15 s, |−1000 − 1250| = 2250;
        // v1 0.3 s +1500: v1 between 0.15 and 0.3 s is −166.67 at 0.2 s, |2000 + 166.67| → 2167;
        // v1 0.5 s 0: v0's latest (0.2 s) is before its bracket [0.3, 0.5]: no point;
        // v0 0.6 s +3000: v0 between 0.2 and 0.6 s is +2750 at 0.5 s, |0 − 2750| = 2750.
        // (The old definition, each read against the other's latest, gave 1500, 3000, 500, 2000, 3000.)
        // vm1 has one vCPU: no series.
        var data = new CrossVcpuSkew().Extract(_results);
        Assert.Equal("µs", data.Unit);
        var vm0 = Assert.Single(data.Vms);
        AssertSeries(vm0, "vm0", [0.2, 0.3, 0.6], [2.25, 2.167, 2.75]);
    }

    [Fact]
    public void Cross_vcpu_skew_figure_does_not_count_a_pause_as_skew()
    {
        // Both vCPUs lose a 100 ms pause (their skew steps from 0 to −100 ms) and stay 20 µs apart.
        string reads = """
            true_ns,vm,vcpu,core,host,clock_ns,skew_ns,exited,cycles
            100000000,vm0,0,0,h0,100000000,0,0,50
            101000000,vm0,1,1,h0,101020000,20000,0,50
            102000000,vm0,0,0,h0,102000000,0,0,50
            203000000,vm0,1,1,h0,103020000,-99980000,0,50
            204000000,vm0,0,0,h0,104000000,-100000000,0,50
            205000000,vm0,1,1,h0,105020000,-99980000,0,50
            """;
        var results = ResultsFolder.Load(TinyFolders.WriteResults(_dir, "pause", reads));
        var vm0 = new CrossVcpuSkew().Extract(results).Vms[0];
        AssertSeries(vm0, "vm0", [0.102, 0.205], [20, 20]);
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
    public void Figures_without_data_are_not_drawn_and_say_why()
    {
        var results = ResultsFolder.Load(TinyFolders.WriteResults(_dir, "noreads", "true_ns,vm,vcpu,core,host,clock_ns,skew_ns,exited,cycles\n"));
        Assert.Null(new SkewOverTime().TryDraw(results, out string? why));
        Assert.Equal("no clock reads in reads.csv (the workload reads no clock)", why);
        Assert.Null(new CrossVcpuSkew().TryDraw(results, out why));
        Assert.Equal("no clock reads of 2 or more vCPUs of one VM close enough in reads.csv to compare", why);
        using var exits = new ExitRates().TryDraw(results, out why); // the exits are still there
        Assert.NotNull(exits);
        Assert.Null(why);
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

using TscSim.Plots;
using TscSim.Plots.Input;
using TscSim.Plots.Recipes;

namespace TscSim.Tests.Plots;

/// <summary>The data behind the sweep figures, on hand-written <c>sweep.csv</c> files.</summary>
public sealed class SweepRecipeTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private SweepTable Load(string csv, string sub = "sweep")
    {
        _dir.Write($"{sub}/sweep.csv", csv);
        return SweepTable.Load(Path.Combine(_dir.Path, sub));
    }

    private static void AssertSeries(Series actual, string label, double[] x, double[] y)
    {
        Assert.Equal(label, actual.Label);
        Assert.Equal(x, actual.X);
        Assert.Equal(y, actual.Y);
    }

    [Fact]
    public void Sweep_table_takes_the_columns_between_complete_and_vm_as_parameters()
    {
        var table = Load(TinyFolders.Sweep);
        Assert.Equal(["dst_frequency", "trapping"], table.Parameters);
        Assert.Equal(10, table.Rows.Count);
        Assert.Equal(new[] { "500MHz", "off" }, table.Rows[8].Parameters);
        Assert.False(table.Rows[8].Complete);
        Assert.Null(table.Rows[9].SkewMaxAbsNs);
        Assert.Equal(0.25, table.Rows[9].OverheadPct);
        Assert.Equal("sweep", table.Name); // no sweep.json, no point folder: the folder's name
    }

    [Fact]
    public void Skew_is_averaged_over_repeats_and_vcpus_against_the_numeric_parameter_one_series_per_policy()
    {
        // x = dst_frequency (numeric; 500MHz converted to GHz, the unit of the first value), series = trapping.
        // on: 1 GHz mean(1, 3, 2, 2) ms = 2 ms, 0.5 GHz 4 ms; off: 1 GHz 500 ms; the incomplete 500MHz/off run
        // is left out, and the 2GHz/off run has no skew (no reads).
        var data = new SweepSkew().Extract(Load(TinyFolders.Sweep));
        Assert.Equal("dst_frequency (GHz)", data.XLabel);
        Assert.Equal("max |skew| (ms)", data.Metric);
        Assert.Null(data.XTicks);
        Assert.False(data.LogX);
        Assert.Equal(2, data.Series.Count);
        AssertSeries(data.Series[0], "trapping = on", [0.5, 1], [4, 2]);
        AssertSeries(data.Series[1], "trapping = off", [1], [500]);
    }

    [Fact]
    public void Overhead_is_averaged_the_same_way()
    {
        var data = new SweepOverhead().Extract(Load(TinyFolders.Sweep));
        Assert.Equal("exit overhead (%)", data.Metric);
        AssertSeries(data.Series[0], "trapping = on", [0.5, 1], [4, 2]);
        AssertSeries(data.Series[1], "trapping = off", [1, 2], [0.5, 0.25]);
    }

    [Fact]
    public void A_single_word_parameter_gives_one_series_over_categories()
    {
        const string csv = """
            point,repeat,seed,fingerprint,complete,cpu,vm,vcpu,reads,skew_max_abs_ns,skew_final_ns,drift_ppm,violations,exits_total,exits_rdtsc,exits_rdtscp,overhead_pct
            0,0,1,aaaaaaaaaaaaaaaa,true,intel-nehalem,vm0,0,1,1000000,0,0,0,0,0,0,1.5
            1,0,1,bbbbbbbbbbbbbbbb,true,amd-zen2,vm0,0,1,3000000,0,0,0,0,0,0,2.5
            """;
        _dir.Write("words/sweep.json", """{ "schema": "tscsim.sweep/1", "name": "cpus" }""");
        var table = Load(csv, "words");
        Assert.Equal("cpus", table.Name);
        var data = new SweepOverhead().Extract(table);
        Assert.Equal("cpu", data.XLabel);
        Assert.Equal([new Marker(0, "intel-nehalem"), new Marker(1, "amd-zen2")], data.XTicks!);
        AssertSeries(Assert.Single(data.Series), "exit overhead (%)", [0, 1], [1.5, 2.5]);
    }

    [Fact]
    public void A_numeric_parameter_spanning_two_decades_is_drawn_on_a_log_axis()
    {
        const string csv = """
            point,repeat,seed,fingerprint,complete,work,cpu,vm,vcpu,reads,skew_max_abs_ns,skew_final_ns,drift_ppm,violations,exits_total,exits_rdtsc,exits_rdtscp,overhead_pct
            0,0,1,aaaaaaaaaaaaaaaa,true,2000000,intel-nehalem,vm0,0,0,,,,0,200,200,0,0.0575
            1,0,1,bbbbbbbbbbbbbbbb,true,2000000,amd-zen2,vm0,0,0,,,,0,200,200,0,0.075
            2,0,1,cccccccccccccccc,true,2000,intel-nehalem,vm0,0,0,,,,0,1989,1989,0,36.5
            3,0,1,dddddddddddddddd,true,2000,amd-zen2,vm0,0,0,,,,0,1986,1986,0,42.75
            """;
        _dir.Write("rate/points/p0000-r00/summary.json", """{ "scenario": "trap-overhead" }""");
        var table = Load(csv, "rate");
        Assert.Equal("trap-overhead", table.Name); // from the first point folder's summary.json
        var overhead = new SweepOverhead().Extract(table);
        Assert.True(overhead.LogX);
        Assert.Equal("work", overhead.XLabel);
        AssertSeries(overhead.Series[0], "cpu = intel-nehalem", [2000, 2000000], [36.5, 0.0575]);
        AssertSeries(overhead.Series[1], "cpu = amd-zen2", [2000, 2000000], [42.75, 0.075]);
        Assert.Empty(new SweepSkew().Extract(table).Series); // no run read a clock
        foreach (var recipe in Plotter.SweepRecipes)
        {
            using var plot = recipe.Draw(table);
            Assert.NotEmpty(plot.GetImageBytes(200, 150, ScottPlot.ImageFormat.Png));
        }
    }

    [Fact]
    public void Without_parameter_columns_x_is_the_point_number()
    {
        const string csv = """
            point,repeat,seed,fingerprint,complete,vm,vcpu,reads,skew_max_abs_ns,skew_final_ns,drift_ppm,violations,exits_total,exits_rdtsc,exits_rdtscp,overhead_pct
            0,0,1,aaaaaaaaaaaaaaaa,true,vm0,0,1,1000000,0,0,0,0,0,0,1
            0,1,2,bbbbbbbbbbbbbbbb,true,vm0,0,1,3000000,0,0,0,0,0,0,2
            """;
        var data = new SweepSkew().Extract(Load(csv, "none"));
        Assert.Equal("point", data.XLabel);
        AssertSeries(Assert.Single(data.Series), "max |skew| (ms)", [0], [2]);
    }

    [Theory]
    [InlineData("complete", "maybe", "sweep.csv:2:24: complete 'maybe' is not true or false")]
    [InlineData("overhead_pct", "lots", "sweep.csv:2:77: overhead_pct 'lots' is not a number")]
    public void Malformed_cells_are_reported_with_line_and_column(string column, string value, string expected)
    {
        string csv = column == "complete"
            ? TinyFolders.Sweep.Replace("aaaaaaaaaaaaaaaa,true,1GHz,on,vm0,0,10,1000000", $"aaaaaaaaaaaaaaaa,{value},1GHz,on,vm0,0,10,1000000", StringComparison.Ordinal)
            : TinyFolders.Sweep.Replace("-1000000,1.5,0,10,10,0,1\n", $"-1000000,1.5,0,10,10,0,{value}\n", StringComparison.Ordinal);
        var ex = Assert.Throws<PlotInputException>(() => Load(csv, "bad-" + column));
        Assert.EndsWith(expected, ex.Message, StringComparison.Ordinal);
    }
}

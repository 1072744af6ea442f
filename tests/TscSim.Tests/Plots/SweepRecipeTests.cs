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

    [Fact]
    public void A_quantity_parameter_labels_its_axis_with_the_unit_of_its_values()
    {
        const string csv = """
            point,repeat,seed,fingerprint,complete,work,vm,vcpu,reads,skew_max_abs_ns,skew_final_ns,drift_ppm,violations,exits_total,exits_rdtsc,exits_rdtscp,overhead_pct
            0,0,1,aaaaaaaaaaaaaaaa,true,2000000cycles,vm0,0,0,,,,0,200,200,0,0.0575
            1,0,1,bbbbbbbbbbbbbbbb,true,2000cycles,vm0,0,0,,,,0,1989,1989,0,36.5
            """;
        var data = new SweepOverhead().Extract(Load(csv, "cycles"));
        Assert.Equal("work (cycles)", data.XLabel);
        Assert.True(data.LogX);
        AssertSeries(Assert.Single(data.Series), "exit overhead (%)", [2000, 2000000], [36.5, 0.0575]);
        using var plot = new SweepOverhead().Draw(Load(csv, "cycles"));
        Assert.Equal("work (cycles) (log scale)", plot.Axes.Bottom.Label.Text);
    }

    [Fact]
    public void Every_numeric_parameter_of_the_shipped_sweeps_has_a_unit()
    {
        string dir = Path.Combine(TscSim.Tests.Runs.ShippedScenarioTests.RepoRoot(), "scenarios", "sweeps");
        var sweeps = Directory.GetFiles(dir, "*.yaml").Where(f => !f.EndsWith(".base.yaml", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(sweeps);
        foreach (string file in sweeps)
        {
            foreach (var p in TscSim.Core.Runs.SweepSpec.Load(file).Parameters)
            {
                var scale = ParameterScale.Of(p.Name, p.Values);
                Assert.True(!scale.IsNumeric || scale.Unit.Length > 0, $"{Path.GetFileName(file)}: '{p.Name}' is drawn without a unit ({string.Join(", ", p.Values)})");
            }
        }
    }

    [Fact]
    public void Series_differ_in_marker_shape_and_line_pattern_as_well_as_colour()
    {
        // In the shipped skew sweep, trapping "on" and "auto" lie on the same points for a faster host.
        using var plot = new SweepSkew().Draw(Load(TinyFolders.Sweep));
        var lines = plot.GetPlottables().OfType<ScottPlot.Plottables.Scatter>().ToList();
        Assert.Equal(2, lines.Count);
        for (int i = 0; i < lines.Count; i++)
        {
            var style = Figure.StyleAt(i);
            Assert.Equal(style.Marker, lines[i].MarkerShape);
            Assert.Equal(style.Pattern, lines[i].LinePattern);
            Assert.Equal(7 * style.MarkerScale, lines[i].MarkerSize);
        }
        var styles = Enumerable.Range(0, 12).Select(Figure.StyleAt).ToList();
        Assert.Equal(12, styles.Select(st => (st.Marker, st.PatternName)).Distinct().Count()); // 12 series, 12 combinations
        Assert.Equal(4, styles.Take(4).Select(st => st.PatternName).Distinct().Count());
        Assert.Equal(6, styles.Take(6).Select(st => st.Marker).Distinct().Count());
        Assert.Equal(["solid", "dashed", "dotted"], styles.Take(3).Select(st => st.PatternName));
        // A series drawn after another has the bigger marker, so it rings the earlier one where they coincide.
        Assert.True(styles[1].MarkerScale > styles[0].MarkerScale && styles[2].MarkerScale > styles[0].MarkerScale);
    }

    [Fact]
    public void A_sweep_whose_runs_read_no_clock_has_no_skew_figure()
    {
        const string csv = """
            point,repeat,seed,fingerprint,complete,work,vm,vcpu,reads,skew_max_abs_ns,skew_final_ns,drift_ppm,violations,exits_total,exits_rdtsc,exits_rdtscp,overhead_pct
            0,0,1,aaaaaaaaaaaaaaaa,true,2000cycles,vm0,0,0,,,,0,200,200,0,0.0575
            """;
        _dir.Write("noclock/sweep.csv", csv);
        string outDir = Path.Combine(_dir.Path, "noclock-figures");
        var outcome = Plotter.PlotAll(Path.Combine(_dir.Path, "noclock"), outDir);
        Assert.Equal([Path.Combine(outDir, "sweep-overhead.png"), Path.Combine(outDir, "sweep-overhead.svg")], outcome.Files);
        var skipped = Assert.Single(outcome.Skipped);
        Assert.Equal("sweep-skew", skipped.Name);
        Assert.Equal("skipped sweep-skew: no data: no complete run has a value of max |skew| (ms) in sweep.csv; a skew needs guest clock reads", skipped.ToString());
        Assert.False(File.Exists(Path.Combine(outDir, "sweep-skew.png")));
    }
}

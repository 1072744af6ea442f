using TscSim.Cli;
using TscSim.Plots;

namespace TscSim.Tests.Plots;

/// <summary>Every figure renders to non-empty PNG and SVG files (image bytes are not compared: fonts differ by machine).</summary>
public sealed class PlotRenderingTests : IDisposable
{
    private static readonly byte[] PngMagic = [0x89, (byte)'P', (byte)'N', (byte)'G'];

    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = TscSimCli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static void AssertFigures(IReadOnlyList<string> files, IEnumerable<string> names, string outDir)
    {
        var expected = names.SelectMany(n => new[] { Path.Combine(outDir, n + ".png"), Path.Combine(outDir, n + ".svg") }).ToList();
        Assert.Equal(expected, files);
        foreach (string file in files)
        {
            byte[] bytes = File.ReadAllBytes(file);
            Assert.True(bytes.Length > 1000, $"{file}: {bytes.Length} bytes");
            if (file.EndsWith(".png", StringComparison.Ordinal))
            {
                Assert.Equal(PngMagic, bytes[..4]);
            }
            else
            {
                string svg = File.ReadAllText(file);
                Assert.Contains("<svg", svg, StringComparison.Ordinal);
                Assert.Contains($"width=\"{Figure.Width}\"", svg, StringComparison.Ordinal);
            }
        }
        Assert.Empty(Directory.GetFiles(outDir, "*.tmp")); // written under a temporary name, then renamed
    }

    [Fact]
    public void Every_results_figure_is_written_as_png_and_svg()
    {
        string results = TinyFolders.WriteResults(_dir);
        string outDir = Path.Combine(_dir.Path, "figures");
        var files = Plotter.Plot(results, outDir);
        AssertFigures(files, ["skew-over-time", "cross-vcpu-skew", "read-latency-cdf-cycles", "read-latency-cdf-ns", "exit-rates"], outDir);
        Assert.Contains("tiny: guest clock skew per vCPU", File.ReadAllText(files[1]), StringComparison.Ordinal); // the title names the scenario
    }

    [Fact]
    public void Every_sweep_figure_is_written_as_png_and_svg()
    {
        _dir.Write("sw/sweep.csv", TinyFolders.Sweep);
        string outDir = Path.Combine(_dir.Path, "sw-figures");
        var files = Plotter.Plot(Path.Combine(_dir.Path, "sw"), outDir);
        AssertFigures(files, ["sweep-skew", "sweep-overhead"], outDir);
    }

    [Fact]
    public void Drawing_twice_gives_identical_svg_and_png()
    {
        string results = TinyFolders.WriteResults(_dir);
        var first = Plotter.Plot(results, Path.Combine(_dir.Path, "a"));
        var second = Plotter.Plot(results, Path.Combine(_dir.Path, "b"));
        for (int i = 0; i < first.Count; i++)
        {
            Assert.True(File.ReadAllBytes(first[i]).AsSpan().SequenceEqual(File.ReadAllBytes(second[i])), Path.GetFileName(first[i]));
        }
    }

    [Fact]
    public void Plot_verb_writes_into_dir_plots_and_prints_each_file()
    {
        string results = TinyFolders.WriteResults(_dir);
        var (code, output, err) = Cli("plot", results);
        Assert.Equal(ExitCodes.Success, code);
        Assert.Equal("", err);
        var printed = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(10, printed.Length);
        Assert.Equal(Path.Combine(results, "plots", "skew-over-time.png"), printed[0]);
        Assert.All(printed, f => Assert.True(File.Exists(f), f));
    }

    [Fact]
    public void Plot_verb_honours_out()
    {
        string results = TinyFolders.WriteResults(_dir);
        string outDir = Path.Combine(_dir.Path, "elsewhere");
        var (code, output, _) = Cli("plot", results, "--out", outDir);
        Assert.Equal(ExitCodes.Success, code);
        Assert.StartsWith(Path.Combine(outDir, "skew-over-time.png"), output, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(results, "plots")));
    }

    [Fact]
    public void Plot_verb_on_a_folder_that_is_neither_exits_2_with_a_message()
    {
        _dir.Write("empty/readme.txt", "nothing here");
        string dir = Path.Combine(_dir.Path, "empty");
        var (code, output, err) = Cli("plot", dir);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Equal("", output);
        Assert.Contains($"{dir}: neither a results folder (no summary.json", err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal); // no stack trace
        Assert.False(Directory.Exists(Path.Combine(dir, "plots")));
    }

    [Fact]
    public void Plot_verb_on_a_missing_folder_exits_2()
    {
        string dir = Path.Combine(_dir.Path, "nowhere");
        var (code, _, err) = Cli("plot", dir);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Equal($"{dir}: no such folder", err.Trim());
    }

    [Fact]
    public void Plot_verb_on_a_malformed_results_folder_exits_2_and_writes_nothing()
    {
        string results = TinyFolders.WriteResults(_dir, "bad", TinyFolders.Reads.Replace(",vm0,1,1,h0,149999000,", ",vm0,one,1,h0,149999000,", StringComparison.Ordinal));
        var (code, output, err) = Cli("plot", results);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Equal("", output);
        Assert.Equal($"{Path.Combine(results, "reads.csv")}:3:15: vcpu 'one' is not an integer", err.Trim());
        Assert.False(Directory.Exists(Path.Combine(results, "plots")));
    }

    [Fact]
    public void Plot_verb_says_which_figures_it_skipped_for_want_of_data_and_keeps_older_files()
    {
        string results = TinyFolders.WriteResults(_dir, "noreads", "true_ns,vm,vcpu,core,host,clock_ns,skew_ns,exited,cycles\n");
        string outDir = Path.Combine(_dir.Path, "noreads-figures");
        _dir.Write("noreads-figures/skew-over-time.png", "an older figure");
        var (code, output, err) = Cli("plot", results, "--out", outDir);
        Assert.Equal(ExitCodes.Success, code);
        Assert.Equal("", err);
        var printed = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(
            [Path.Combine(outDir, "exit-rates.png"), Path.Combine(outDir, "exit-rates.svg"),
             $"skipped skew-over-time: no data: no clock reads in reads.csv (the workload reads no clock); the older {Path.Combine(outDir, "skew-over-time.png")} is left as before",
             "skipped cross-vcpu-skew: no data: no clock reads of 2 or more vCPUs of one VM close enough in reads.csv to compare",
             "skipped read-latency-cdf-cycles: no data: no clock reads in reads.csv (the workload reads no clock)",
             "skipped read-latency-cdf-ns: no data: no clock reads in reads.csv (the workload reads no clock)"],
            printed);
        Assert.Equal("an older figure", File.ReadAllText(Path.Combine(outDir, "skew-over-time.png")));
        Assert.False(File.Exists(Path.Combine(outDir, "read-latency-cdf-ns.png")));
    }
}

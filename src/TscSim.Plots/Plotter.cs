using TscSim.Plots.Input;
using TscSim.Plots.Recipes;

namespace TscSim.Plots;

/// <summary>
/// Draws every figure of a results folder (<c>summary.json</c>) or a sweep folder (<c>sweep.csv</c>;
/// a folder with both gets both sets) as PNG and SVG. All inputs are read and checked before the
/// first file is written.
/// </summary>
public static class Plotter
{
    /// <summary>The figures of a results folder, in the order they are written.</summary>
    public static IReadOnlyList<IRecipe<ResultsFolder>> ResultsRecipes { get; } =
    [
        new SkewOverTime(),
        new CrossVcpuSkew(),
        new ReadLatencyCdf(LatencyUnit.Cycles),
        new ReadLatencyCdf(LatencyUnit.Nanoseconds),
        new ExitRates(),
    ];

    /// <summary>The figures of a sweep folder, in the order they are written.</summary>
    public static IReadOnlyList<IRecipe<SweepTable>> SweepRecipes { get; } =
    [
        new SweepSkew(),
        new SweepOverhead(),
    ];

    /// <summary>
    /// Draws the figures of <paramref name="dir"/> into <paramref name="outDir"/> (created if
    /// needed) and returns the files written, PNG then SVG for each figure.
    /// </summary>
    /// <exception cref="PlotInputException"><paramref name="dir"/> is neither kind of folder, or a file in it is malformed.</exception>
    public static IReadOnlyList<string> Plot(string dir, string outDir)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(outDir);
        if (!Directory.Exists(dir))
        {
            throw new PlotInputException($"{dir}: no such folder");
        }
        var results = ResultsFolder.IsResultsFolder(dir) ? ResultsFolder.Load(dir) : null;
        var sweep = SweepTable.IsSweepFolder(dir) ? SweepTable.Load(dir) : null;
        if (results is null && sweep is null)
        {
            throw new PlotInputException(
                $"{dir}: neither a results folder (no {ResultsFolder.SummaryFile}, as written by 'tscsim run') nor a sweep folder (no {SweepTable.SweepFile}, as written by 'tscsim sweep')");
        }
        // Draw everything first (extraction checks the data), then write: a bad input leaves no file behind.
        var plots = new List<(string Name, ScottPlot.Plot Plot)>();
        try
        {
            if (results is not null)
            {
                plots.AddRange(ResultsRecipes.Select(r => (r.Name, r.Draw(results))));
            }
            if (sweep is not null)
            {
                plots.AddRange(SweepRecipes.Select(r => (r.Name, r.Draw(sweep))));
            }
            return [.. plots.SelectMany(p => Figure.Save(p.Plot, outDir, p.Name))];
        }
        finally
        {
            foreach (var (_, plot) in plots)
            {
                plot.Dispose();
            }
        }
    }
}

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
    /// needed) and returns the files written, PNG then SVG for each figure; see <see cref="PlotAll"/>.
    /// </summary>
    /// <exception cref="PlotInputException"><paramref name="dir"/> is neither kind of folder, or a file in it is malformed.</exception>
    public static IReadOnlyList<string> Plot(string dir, string outDir) => PlotAll(dir, outDir).Files;

    /// <summary>
    /// Draws the figures of <paramref name="dir"/> into <paramref name="outDir"/> (created if
    /// needed): the files written, PNG then SVG for each figure, and the figures skipped because
    /// they would have had no data (a skew figure of a workload that reads no clock), with the
    /// reason. A skipped figure writes nothing and deletes nothing: files of that name already in
    /// <paramref name="outDir"/> (from an earlier plot) stay, and are listed.
    /// </summary>
    /// <exception cref="PlotInputException"><paramref name="dir"/> is neither kind of folder, or a file in it is malformed.</exception>
    public static PlotOutcome PlotAll(string dir, string outDir)
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
        var skipped = new List<SkippedFigure>();
        void Add<T>(IEnumerable<IRecipe<T>> recipes, T source)
        {
            foreach (var recipe in recipes)
            {
                if (recipe.TryDraw(source, out string? noData) is { } plot)
                {
                    plots.Add((recipe.Name, plot));
                }
                else
                {
                    string[] leftOver = [.. new[] { ".png", ".svg" }.Select(ext => Path.Combine(outDir, recipe.Name + ext)).Where(File.Exists)];
                    skipped.Add(new SkippedFigure(recipe.Name, noData ?? "no data", leftOver));
                }
            }
        }
        try
        {
            if (results is not null)
            {
                Add(ResultsRecipes, results);
            }
            if (sweep is not null)
            {
                Add(SweepRecipes, sweep);
            }
            return new PlotOutcome([.. plots.SelectMany(p => Figure.Save(p.Plot, outDir, p.Name))], skipped);
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

/// <summary>What <see cref="Plotter.PlotAll"/> did.</summary>
/// <param name="Files">The files written, PNG then SVG for each figure drawn, in recipe order.</param>
/// <param name="Skipped">The figures not drawn because they had no data, in recipe order.</param>
public sealed record PlotOutcome(IReadOnlyList<string> Files, IReadOnlyList<SkippedFigure> Skipped);

/// <summary>A figure not drawn because it had no data.</summary>
/// <param name="Name">The figure's name (<see cref="IRecipe{TSource}.Name"/>).</param>
/// <param name="Reason">Why there was nothing to draw, e.g. "no clock reads in reads.csv (the workload reads no clock)".</param>
/// <param name="LeftOver">Files of that figure already in the output folder (from an earlier plot), left as they were.</param>
public sealed record SkippedFigure(string Name, string Reason, IReadOnlyList<string> LeftOver)
{
    /// <summary>The line printed for it: <c>skipped NAME: no data: REASON</c>, plus the files left over if any.</summary>
    public override string ToString() =>
        $"skipped {Name}: no data: {Reason}"
        + (LeftOver.Count == 0 ? "" : $"; the older {string.Join(" and ", LeftOver)} {(LeftOver.Count == 1 ? "is" : "are")} left as before");
}

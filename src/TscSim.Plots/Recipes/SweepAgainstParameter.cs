using System.Globalization;
using ScottPlot;
using TscSim.Plots.Input;

namespace TscSim.Plots.Recipes;

/// <summary>The data of a <see cref="SweepAgainstParameter"/> figure.</summary>
/// <param name="Sweep">The sweep's name (<see cref="SweepTable.Name"/>).</param>
/// <param name="Metric">What y is, with its unit, e.g. <c>max |skew| (ms)</c>.</param>
/// <param name="XLabel">The x parameter's path, with its unit when it has one.</param>
/// <param name="XTicks">For a categorical x parameter, each value's position and text; null when x is numeric.</param>
/// <param name="LogX">Whether x is drawn on a log scale: numeric, every value positive, the largest at least 100 × the smallest.</param>
/// <param name="Series">One series per value of the other parameters (one series when only one is swept), x positions ascending.</param>
public sealed record SweepFigureData(string Sweep, string Metric, string XLabel, IReadOnlyList<Marker>? XTicks, bool LogX, IReadOnlyList<Series> Series);

/// <summary>
/// A sweep metric against a swept parameter. x is the first parameter whose values are all numbers
/// or quantities (else the first parameter, as categories); every other parameter splits the
/// series (<c>name = value</c>, combined when there are several). Each point is the mean of the
/// metric over every row of <c>sweep.csv</c> at that parameter combination: all repeats, VMs and
/// vCPUs. Rows of incomplete runs (<c>complete</c> false) and empty cells are left out.
/// With no parameter column, x is the point number.
/// </summary>
public abstract class SweepAgainstParameter : Recipe<SweepTable, SweepFigureData>
{
    /// <summary>The metric's axis label, with unit.</summary>
    protected abstract string Metric { get; }

    /// <summary>The metric of one row in the axis unit, or null when the row has none.</summary>
    protected abstract double? Value(SweepRow row);

    /// <inheritdoc/>
    public override SweepFigureData Extract(SweepTable source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var rows = source.Rows.Where(r => r.Complete).ToList();
        bool byPoint = source.Parameters.Count == 0;
        var names = byPoint ? ["point"] : source.Parameters;
        Func<SweepRow, int, string> valueOf = byPoint
            ? (r, _) => r.Point.ToString(CultureInfo.InvariantCulture)
            : (r, p) => r.Parameters[p];
        var scales = Enumerable.Range(0, names.Count).Select(p => ParameterScale.Of(names[p], rows.Select(r => valueOf(r, p)))).ToList();
        int x = scales.FindIndex(s => s.IsNumeric);
        if (x < 0)
        {
            x = 0;
        }
        var others = Enumerable.Range(0, names.Count).Where(p => p != x).ToList();

        var series = rows
            .GroupBy(r => string.Join(", ", others.Select(p => $"{names[p]} = {valueOf(r, p)}")))
            .OrderBy(g => others.Select(p => scales[p].Position(valueOf(g.First(), p))).ToArray(), PositionComparer.Instance)
            .Select(g =>
            {
                var points = g.GroupBy(r => valueOf(r, x))
                    .Select(px => (X: scales[x].Position(px.Key), Values: px.Select(Value).Where(v => v is not null).Select(v => v!.Value).ToList()))
                    .Where(p => p.Values.Count > 0)
                    .OrderBy(p => p.X)
                    .ToList();
                return new Series(others.Count == 0 ? Metric : g.Key, [.. points.Select(p => p.X)], [.. points.Select(p => p.Values.Average())]);
            })
            .Where(s => s.X.Length > 0)
            .ToList();
        var ticks = scales[x].IsNumeric ? null : scales[x].Values.Select(v => new Marker(scales[x].Position(v), v)).ToList();
        var positions = scales[x].Values.Select(scales[x].Position).ToList();
        bool log = scales[x].IsNumeric && positions.Count > 0 && positions.Min() > 0 && positions.Max() >= 100 * positions.Min();
        return new SweepFigureData(source.Name, Metric, scales[x].Label, ticks, log, series);
    }

    /// <inheritdoc/>
    public override string? NoData(SweepFigureData data) =>
        data.Series.Count == 0 ? $"no complete run has a value of {data.Metric} in sweep.csv{EmptyHint}" : null;

    /// <summary>Why the metric may be missing, appended to the no-data reason (e.g. "; a skew needs clock reads"), or empty.</summary>
    protected virtual string EmptyHint => "";

    /// <inheritdoc/>
    public override void Render(Plot plot, SweepFigureData data)
    {
        ArgumentNullException.ThrowIfNull(plot);
        ArgumentNullException.ThrowIfNull(data);
        string x = data.XLabel;
        Figure.Label(plot, $"{data.Sweep}: {data.Metric} against {x}", x, $"{data.Metric}, mean over repeats, VMs and vCPUs");
        if (data.LogX && data.Series.Count > 0)
        {
            Figure.Lines(plot, [.. data.Series.Select(s => s with { X = [.. s.X.Select(Math.Log10)] })], markerSize: 7);
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
            {
                MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                IntegerTicksOnly = true,
                LabelFormatter = v => Math.Pow(10, v).ToString("#,0.######", CultureInfo.InvariantCulture),
            };
            plot.Axes.Bottom.Label.Text = $"{x} (log scale)";
        }
        else
        {
            Figure.Lines(plot, data.Series, markerSize: 7);
        }
        if (data.XTicks is { } ticks)
        {
            var manual = new ScottPlot.TickGenerators.NumericManual();
            foreach (var t in ticks)
            {
                manual.AddMajor(t.X, t.Label);
            }
            plot.Axes.Bottom.TickGenerator = manual;
            if (ticks.Count > 0)
            {
                plot.Axes.SetLimitsX(-0.5, ticks.Count - 0.5);
            }
        }
        if (NoData(data) is { } none)
        {
            Figure.NoData(plot, none);
        }
        Figure.Legend(plot);
    }

    private sealed class PositionComparer : IComparer<double[]>
    {
        public static readonly PositionComparer Instance = new();

        public int Compare(double[]? a, double[]? b)
        {
            for (int i = 0; i < Math.Min(a!.Length, b!.Length); i++)
            {
                int c = a[i].CompareTo(b[i]);
                if (c != 0)
                {
                    return c;
                }
            }
            return a.Length.CompareTo(b.Length);
        }
    }
}

/// <summary>Max |skew| (ms) of the sweep's runs against a swept parameter (<c>skew_max_abs_ns</c> / 10⁶, mean over repeats and vCPUs).</summary>
public sealed class SweepSkew : SweepAgainstParameter
{
    /// <inheritdoc/>
    public override string Name => "sweep-skew";

    /// <inheritdoc/>
    public override string Description =>
        "Max |skew| (ms) against the first numeric swept parameter, one series per value of the others; mean over repeats, VMs and vCPUs of complete runs.";

    /// <inheritdoc/>
    protected override string Metric => "max |skew| (ms)";

    /// <inheritdoc/>
    protected override string EmptyHint => "; a skew needs guest clock reads";

    /// <inheritdoc/>
    protected override double? Value(SweepRow row) => row.SkewMaxAbsNs / 1e6;
}

/// <summary>Exit overhead (%) of the sweep's runs against a swept parameter (<c>overhead_pct</c>, mean over repeats and vCPUs).</summary>
public sealed class SweepOverhead : SweepAgainstParameter
{
    /// <inheritdoc/>
    public override string Name => "sweep-overhead";

    /// <inheritdoc/>
    public override string Description =>
        "Exit overhead (% of cycles) against the first numeric swept parameter, one series per value of the others; mean over repeats, VMs and vCPUs of complete runs.";

    /// <inheritdoc/>
    protected override string Metric => "exit overhead (%)";

    /// <inheritdoc/>
    protected override double? Value(SweepRow row) => row.OverheadPct;
}

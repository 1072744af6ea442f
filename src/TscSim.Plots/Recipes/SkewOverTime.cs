using ScottPlot;
using TscSim.Plots.Input;

namespace TscSim.Plots.Recipes;

/// <summary>The data of <see cref="SkewOverTime"/>.</summary>
/// <param name="Scenario">The scenario's name.</param>
/// <param name="EndSeconds">The run's simulated time, s (the end of the x axis).</param>
/// <param name="Vcpus">One series per vCPU (<c>vm.vcpuN</c>): x true time (s), y skew (ms).</param>
/// <param name="Switches">Clocksource switches (s), labelled <c>vm: from → to</c> (the boot choice <c>vm: to (boot)</c>).</param>
/// <param name="Trapping">Trapping intervals (s), labelled <c>vm trapped</c>; an interval still open at the end ends at <paramref name="EndSeconds"/>.</param>
public sealed record SkewOverTimeData(string Scenario, double EndSeconds, IReadOnlyList<Series> Vcpus,
    IReadOnlyList<Marker> Switches, IReadOnlyList<Span> Trapping);

/// <summary>
/// Skew over time per vCPU: every row of <c>reads.csv</c> as (true time in s, skew in ms), one step
/// line per vCPU (each read's skew held until the vCPU's next read), with the guests' clocksource switches as labelled vertical lines and the VMs'
/// trapping intervals (from <c>summary.json</c>) as shaded spans.
/// </summary>
public sealed class SkewOverTime : Recipe<ResultsFolder, SkewOverTimeData>
{
    /// <inheritdoc/>
    public override string Name => "skew-over-time";

    /// <inheritdoc/>
    public override string Description =>
        "Guest clock skew (guest clock − true time, ms) of every vCPU against true time (s), from reads.csv; " +
        "clocksource switches as vertical lines, trapping intervals as shaded spans (from summary.json).";

    /// <inheritdoc/>
    public override SkewOverTimeData Extract(ResultsFolder source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var series = ReadGroups.ByVcpu(source)
            .Select(g => new Series(g.Label, [.. g.Reads.Select(r => Units.Seconds(r.TrueNs))], [.. g.Reads.Select(r => Units.Milliseconds(r.SkewNs))]))
            .ToList();
        var switches = source.Vms
            .SelectMany(vm => vm.Switches.Select(s => new Marker(Units.Seconds(s.TimeNs),
                s.From is null ? $"{vm.Id}: {s.To} (boot)" : $"{vm.Id}: {s.From} → {s.To}")))
            .ToList();
        var trapping = source.Vms
            .SelectMany(vm => vm.Trapping.Select(t => new Span(Units.Seconds(t.FromNs), Units.Seconds(t.ToNs ?? source.SimulatedNs), $"{vm.Id} trapped")))
            .ToList();
        return new SkewOverTimeData(source.ScenarioName, Units.Seconds(source.SimulatedNs), series, switches, trapping);
    }

    /// <inheritdoc/>
    public override string? NoData(SkewOverTimeData data) =>
        data.Vcpus.Count == 0 ? "no clock reads in reads.csv (the workload reads no clock)" : null;

    /// <inheritdoc/>
    public override void Render(Plot plot, SkewOverTimeData data)
    {
        ArgumentNullException.ThrowIfNull(plot);
        ArgumentNullException.ThrowIfNull(data);
        Figure.Label(plot, $"{data.Scenario}: guest clock skew per vCPU", "true time (s)", "skew = guest clock − true time (ms)");
        var labelled = new HashSet<string>(StringComparer.Ordinal);
        var spanColors = new Dictionary<string, Color>(StringComparer.Ordinal);
        foreach (var span in data.Trapping)
        {
            if (!spanColors.TryGetValue(span.Label, out var color))
            {
                color = Figure.ColorAt(7 + spanColors.Count).WithAlpha(0.18); // grey, olive, cyan: apart from the lines' first colours
                spanColors[span.Label] = color;
            }
            var s = plot.Add.HorizontalSpan(span.From, span.To, color);
            s.LineWidth = 0;
            s.LegendText = labelled.Add(span.Label) ? span.Label : "";
        }
        Figure.Lines(plot, data.Vcpus, ConnectStyle.StepHorizontal); // a skew holds until the next read: a jump stays a jump
        LabelSwitches(plot, data.Switches, data.EndSeconds);
        if (NoData(data) is { } none)
        {
            Figure.NoData(plot, none);
        }
        if (data.EndSeconds > 0)
        {
            plot.Axes.SetLimitsX(0, data.EndSeconds);
        }
        Figure.Legend(plot);
    }

    /// <summary>
    /// Dashed vertical lines, each labelled along the top of the data area; labels that would overlap
    /// go one row lower (widths estimated from the text length at about 7 px a character on a
    /// 720 px wide data area), and labels in the right 40 % of the axis extend to the left of their line.
    /// </summary>
    private static void LabelSwitches(Plot plot, IReadOnlyList<Marker> switches, double end)
    {
        double range = end > 0 ? end : Math.Max(1e-9, switches.Select(m => m.X).DefaultIfEmpty(0).Max());
        var rows = new List<List<(double From, double To)>>();
        foreach (var m in switches.OrderBy(m => m.X))
        {
            double width = (m.Label.Length * 7.0 + 16) / 720 * range;
            bool left = m.X > 0.6 * range;
            var extent = left ? (From: m.X - width, To: m.X) : (From: m.X, To: m.X + width);
            int row = rows.FindIndex(r => r.All(e => e.To < extent.From || e.From > extent.To));
            if (row < 0)
            {
                row = rows.Count;
                rows.Add([]);
            }
            rows[row].Add(extent);
            var line = plot.Add.VerticalLine(m.X, 1, Colors.Black, LinePattern.Dashed);
            line.Text = m.Label;
            line.LabelOppositeAxis = true;
            line.ManualLabelAlignment = left ? Alignment.LowerRight : Alignment.LowerLeft;
            line.LabelStyle.OffsetY = 18 * (row + 1);
            line.LabelFontSize = 11;
        }
    }
}

using ScottPlot;
using TscSim.Plots.Input;

namespace TscSim.Plots.Recipes;

/// <summary>Exits per second of one VM and one reason, constant over each sampling interval.</summary>
/// <param name="Label"><c>vm reason</c>.</param>
/// <param name="From">Interval starts, true time (s); the first is 0, the run's start.</param>
/// <param name="To">Interval ends, true time (s): the sampling instants of <c>exits.csv</c>.</param>
/// <param name="PerSecond">Exits in the interval divided by its length (exits/s).</param>
public sealed record RateSeries(string Label, double[] From, double[] To, double[] PerSecond);

/// <summary>The data of <see cref="ExitRates"/>.</summary>
/// <param name="Scenario">The scenario's name.</param>
/// <param name="Rates">One series per (VM, reason) with at least one exit; VMs in summary order, reasons in <c>exits.csv</c> column order.</param>
public sealed record ExitRatesData(string Scenario, IReadOnlyList<RateSeries> Rates);

/// <summary>
/// Exits per second by reason over time, per VM (summed over its vCPUs: one line per VM and reason
/// rather than per vCPU, which would multiply the lines by the vCPU count). <c>exits.csv</c> holds
/// cumulative counts since the run's start at sampling instants; the rate over each interval
/// between consecutive instants (the first from 0) is the difference of the counts divided by
/// the interval's length, drawn as a step.
/// </summary>
public sealed class ExitRates : Recipe<ResultsFolder, ExitRatesData>
{
    /// <inheritdoc/>
    public override string Name => "exit-rates";

    /// <inheritdoc/>
    public override string Description =>
        "VM exits per second by reason against true time (s), per VM summed over its vCPUs: differences of exits.csv's cumulative counts / the sampling interval.";

    /// <inheritdoc/>
    public override ExitRatesData Extract(ResultsFolder source)
    {
        ArgumentNullException.ThrowIfNull(source);
        int reasons = ExitSample.Reasons.Count;
        var rates = new List<RateSeries>();
        var vms = source.Exits.Select(e => e.Vm).Distinct(StringComparer.Ordinal).OrderBy(vm => ReadGroups.VmOrder(source, vm));
        foreach (string vm in vms)
        {
            var instants = source.Exits.Where(e => e.Vm == vm)
                .GroupBy(e => e.TrueNs)
                .OrderBy(g => g.Key)
                .Select(g => (TrueNs: g.Key, Counts: Enumerable.Range(0, reasons).Select(i => g.Sum(e => e.Counts[i])).ToArray()))
                .ToList();
            var from = new List<double>();
            var to = new List<double>();
            var perReason = Enumerable.Range(0, reasons).Select(_ => new List<double>()).ToArray();
            long prevNs = 0;
            long[] prev = new long[reasons];
            foreach (var (t, counts) in instants)
            {
                if (t > prevNs)
                {
                    from.Add(Units.Seconds(prevNs));
                    to.Add(Units.Seconds(t));
                    for (int i = 0; i < reasons; i++)
                    {
                        perReason[i].Add(checked(counts[i] - prev[i]) * 1e9 / (t - prevNs));
                    }
                }
                prevNs = t;
                prev = counts;
            }
            for (int i = 0; i < reasons; i++)
            {
                if (perReason[i].Any(r => r != 0))
                {
                    rates.Add(new RateSeries($"{vm} {ExitSample.Reasons[i]}", [.. from], [.. to], [.. perReason[i]]));
                }
            }
        }
        return new ExitRatesData(source.ScenarioName, rates);
    }

    /// <inheritdoc/>
    public override string? NoData(ExitRatesData data) => data.Rates.Count == 0 ? "no VM exits in exits.csv" : null;

    /// <inheritdoc/>
    public override void Render(Plot plot, ExitRatesData data)
    {
        ArgumentNullException.ThrowIfNull(plot);
        ArgumentNullException.ThrowIfNull(data);
        Figure.Label(plot, $"{data.Scenario}: VM exits per second by reason", "true time (s)", "exits per second (sum over the VM's vCPUs)");
        var steps = data.Rates.Select(r => new Series(r.Label,
            [.. r.From.Zip(r.To).SelectMany(p => new[] { p.First, p.Second })],
            [.. r.PerSecond.SelectMany(v => new[] { v, v })])).ToList();
        Figure.Lines(plot, steps);
        if (NoData(data) is { } none)
        {
            Figure.NoData(plot, none);
        }
        else
        {
            plot.Axes.Margins(bottom: 0);
            plot.Axes.SetLimitsX(0, data.Rates.Max(r => r.To.DefaultIfEmpty(0).Max()));
        }
        Figure.Legend(plot);
    }
}

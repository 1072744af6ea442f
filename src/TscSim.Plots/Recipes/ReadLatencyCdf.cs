using ScottPlot;
using TscSim.Plots.Input;

namespace TscSim.Plots.Recipes;

/// <summary>The unit of <see cref="ReadLatencyCdf"/>'s x axis.</summary>
public enum LatencyUnit
{
    /// <summary>Core cycles, as <c>reads.csv</c> records them.</summary>
    Cycles,

    /// <summary>Nanoseconds: cycles / the frequency of the read's core at the read's time.</summary>
    Nanoseconds,
}

/// <summary>The data of <see cref="ReadLatencyCdf"/>.</summary>
/// <param name="Scenario">The scenario's name.</param>
/// <param name="Unit">The x unit.</param>
/// <param name="Vcpus">
/// One step series per vCPU: x the distinct latencies in ascending order, y the fraction of the
/// vCPU's reads whose latency is at most x (the last y is 1).
/// </param>
public sealed record ReadLatencyData(string Scenario, LatencyUnit Unit, IReadOnlyList<Series> Vcpus);

/// <summary>
/// Clock-read latency CDF per vCPU: the <c>cycles</c> column of <c>reads.csv</c> (cycles from
/// entering the clock read to its result, exits included), in cycles or in ns. For ns a read's
/// cycles are divided by the frequency of its core (the <c>host</c> and <c>core</c> columns) at its
/// time, per <c>scenario.resolved.yaml</c>: the host's frequency and its <c>cpufreq</c> events.
/// </summary>
/// <remarks>
/// reads.csv is a decimated sample of the reads (and pins reads that went backwards), so this is
/// the CDF of that sample, not of every read.
/// </remarks>
/// <param name="unit">Cycles or nanoseconds.</param>
public sealed class ReadLatencyCdf(LatencyUnit unit) : Recipe<ResultsFolder, ReadLatencyData>
{
    /// <summary>The x unit.</summary>
    public LatencyUnit Unit { get; } = unit;

    private string UnitText => Unit == LatencyUnit.Cycles ? "cycles" : "ns";

    /// <inheritdoc/>
    public override string Name => $"read-latency-cdf-{UnitText}";

    /// <inheritdoc/>
    public override string Description =>
        $"Cumulative distribution of clock-read latency ({UnitText}) per vCPU over the rows of reads.csv" +
        (Unit == LatencyUnit.Nanoseconds ? "; ns = cycles / the read's core frequency at the read's time (scenario.resolved.yaml, cpufreq events included)." : ".");

    /// <inheritdoc/>
    public override ReadLatencyData Extract(ResultsFolder source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var frequencies = Unit == LatencyUnit.Nanoseconds ? new CoreFrequencies(source.Scenario) : null;
        var series = new List<Series>();
        foreach (var g in ReadGroups.ByVcpu(source))
        {
            double[] values = [.. g.Reads.Select(r => frequencies is null
                ? r.Cycles
                : r.Cycles * 1e12 / frequencies.MillihertzAt(r.Host, r.Core, r.TrueNs))];
            Array.Sort(values);
            var xs = new List<double>();
            var ys = new List<double>();
            for (int i = 0; i < values.Length; i++)
            {
                if (i + 1 < values.Length && values[i + 1] == values[i])
                {
                    continue; // the step is at the last read with this latency
                }
                xs.Add(values[i]);
                ys.Add((i + 1) / (double)values.Length);
            }
            series.Add(new Series(g.Label, [.. xs], [.. ys]));
        }
        return new ReadLatencyData(source.ScenarioName, Unit, series);
    }

    /// <inheritdoc/>
    public override string? NoData(ReadLatencyData data) =>
        data.Vcpus.Count == 0 ? "no clock reads in reads.csv (the workload reads no clock)" : null;

    /// <inheritdoc/>
    public override void Render(Plot plot, ReadLatencyData data)
    {
        ArgumentNullException.ThrowIfNull(plot);
        ArgumentNullException.ThrowIfNull(data);
        string unit = data.Unit == LatencyUnit.Cycles ? "core cycles" : "ns";
        Figure.Label(plot, $"{data.Scenario}: clock-read latency CDF ({(data.Unit == LatencyUnit.Cycles ? "cycles" : "ns")})",
            $"clock-read latency, exits included ({unit})", "fraction of reads ≤ latency");
        // Each step line starts from 0 at the smallest latency, as a CDF drawn by hand would.
        Figure.Lines(plot, [.. data.Vcpus.Select(s => s with { X = [s.X[0], .. s.X], Y = [0, .. s.Y] })], ConnectStyle.StepHorizontal, markerSize: 3);
        if (NoData(data) is { } none)
        {
            Figure.NoData(plot, none);
        }
        else
        {
            plot.Axes.SetLimitsY(0, 1.05);
        }
        Figure.Legend(plot);
    }
}

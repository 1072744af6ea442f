using ScottPlot;
using TscSim.Plots.Input;

namespace TscSim.Plots.Recipes;

/// <summary>The data of <see cref="CrossVcpuSkew"/>.</summary>
/// <param name="Scenario">The scenario's name.</param>
/// <param name="Unit">The y unit: <c>ns</c>, <c>µs</c> or <c>ms</c>, the largest in which the largest value is at least 1.</param>
/// <param name="Vms">One series per VM with at least 2 vCPUs: x true time (s), y the read's cross-vCPU skew in <paramref name="Unit"/>.</param>
public sealed record CrossVcpuSkewData(string Scenario, string Unit, IReadOnlyList<Series> Vms);

/// <summary>
/// Cross-vCPU skew over time: for each VM with at least 2 vCPUs, the rows of <c>reads.csv</c> in
/// true-time order fed to the definition of <c>cross_vcpu.max_skew_ns</c>
/// (<see cref="Core.Measurement.CrossVcpuSkew"/>: a vCPU's skew interpolated between two of its
/// reads at the time of another vCPU's read, never across a step such as a pause); a point for
/// each read that was compared with another vCPU, at the largest difference it gave.
/// </summary>
/// <remarks>
/// reads.csv is decimated (every k-th read of each vCPU), so a vCPU is interpolated between kept
/// rows: the curve can miss a peak that <c>summary.json</c>'s <c>cross_vcpu.max_skew_ns</c>
/// (computed over every read) records.
/// </remarks>
public sealed class CrossVcpuSkew : Recipe<ResultsFolder, CrossVcpuSkewData>
{
    /// <inheritdoc/>
    public override string Name => "cross-vcpu-skew";

    /// <inheritdoc/>
    public override string Description =>
        "For each VM with at least 2 vCPUs: at each read of reads.csv (true time, s) compared with another vCPU's, the largest difference between the two clocks at one instant (cross_vcpu.max_skew_ns's definition).";

    /// <inheritdoc/>
    public override CrossVcpuSkewData Extract(ResultsFolder source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var perVm = new List<(string Vm, List<double> X, List<long> Y)>();
        foreach (var vm in source.Vms.Where(v => v.VcpuCount >= 2))
        {
            var skew = new Core.Measurement.CrossVcpuSkew(vm.VcpuCount);
            var xs = new List<double>();
            var ys = new List<long>();
            foreach (var r in source.Reads.Where(r => r.Vm == vm.Id).OrderBy(r => r.TrueNs))
            {
                if (r.Vcpu >= vm.VcpuCount)
                {
                    throw new PlotInputException(
                        $"{Path.Combine(source.Path, "reads.csv")}: a read of vCPU {r.Vcpu} of VM '{vm.Id}', which has {vm.VcpuCount} vCPUs in summary.json");
                }
                ulong? d;
                try
                {
                    d = skew.Observe(r.Vcpu, r.TrueNs, r.SkewNs);
                }
                catch (OverflowException)
                {
                    throw new PlotInputException(
                        $"{Path.Combine(source.Path, "reads.csv")}: VM '{vm.Id}' has skews too far apart to compare (beyond ±2^63 ns) at true time {r.TrueNs} ns");
                }
                if (d is ulong v)
                {
                    xs.Add(Units.Seconds(r.TrueNs));
                    ys.Add(v > long.MaxValue ? long.MaxValue : (long)v);
                }
            }
            perVm.Add((vm.Id, xs, ys));
        }
        long max = perVm.SelectMany(v => v.Y).DefaultIfEmpty(0).Max();
        var (unit, perUnit) = max >= 1_000_000 ? ("ms", 1e6) : max >= 1_000 ? ("µs", 1e3) : ("ns", 1.0);
        return new CrossVcpuSkewData(source.ScenarioName, unit,
            [.. perVm.Select(v => new Series(v.Vm, [.. v.X], [.. v.Y.Select(y => y / perUnit)]))]);
    }

    /// <inheritdoc/>
    public override void Render(Plot plot, CrossVcpuSkewData data)
    {
        ArgumentNullException.ThrowIfNull(plot);
        ArgumentNullException.ThrowIfNull(data);
        Figure.Label(plot, $"{data.Scenario}: skew between vCPUs of a VM", "true time (s)",
            $"largest difference between two vCPUs' clocks at one instant ({data.Unit})");
        Figure.Lines(plot, data.Vms, markerSize: 2);
        if (NoData(data) is { } none)
        {
            Figure.NoData(plot, none);
        }
        Figure.Legend(plot);
    }

    /// <inheritdoc/>
    public override string? NoData(CrossVcpuSkewData data) =>
        data.Vms.Count == 0 ? "no VM with 2 or more vCPUs"
        : data.Vms.All(v => v.X.Length == 0) ? "no clock reads of 2 or more vCPUs of one VM close enough in reads.csv to compare"
        : null;
}

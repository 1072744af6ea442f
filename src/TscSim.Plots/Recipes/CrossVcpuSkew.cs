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
/// true-time order; at each read, the largest |its skew − the latest skew of another vCPU of the VM|
/// over the vCPUs that have read already (reads before every other vCPU's first read give no point).
/// </summary>
/// <remarks>
/// reads.csv is decimated, so "latest" means the latest kept row: the curve can miss a peak that
/// <c>summary.json</c>'s <c>cross_vcpu.max_skew_ns</c> (computed over every read) records.
/// </remarks>
public sealed class CrossVcpuSkew : Recipe<ResultsFolder, CrossVcpuSkewData>
{
    /// <inheritdoc/>
    public override string Name => "cross-vcpu-skew";

    /// <inheritdoc/>
    public override string Description =>
        "For each VM with at least 2 vCPUs: at each read of reads.csv (true time, s), max |that read's skew − the latest skew of each other vCPU|.";

    /// <inheritdoc/>
    public override CrossVcpuSkewData Extract(ResultsFolder source)
    {
        ArgumentNullException.ThrowIfNull(source);
        var perVm = new List<(string Vm, List<double> X, List<long> Y)>();
        foreach (var vm in source.Vms.Where(v => v.VcpuCount >= 2))
        {
            var latest = new Dictionary<int, long>();
            var xs = new List<double>();
            var ys = new List<long>();
            foreach (var r in source.Reads.Where(r => r.Vm == vm.Id).OrderBy(r => r.TrueNs))
            {
                long worst = -1;
                foreach (var (vcpu, skew) in latest)
                {
                    if (vcpu != r.Vcpu)
                    {
                        worst = Math.Max(worst, Math.Abs(checked(r.SkewNs - skew)));
                    }
                }
                latest[r.Vcpu] = r.SkewNs;
                if (worst >= 0)
                {
                    xs.Add(Units.Seconds(r.TrueNs));
                    ys.Add(worst);
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
            $"max |skew − other vCPU's latest skew| ({data.Unit})");
        Figure.Lines(plot, data.Vms, markerSize: 2);
        if (data.Vms.Count == 0)
        {
            Figure.NoData(plot, "no VM with 2 or more vCPUs");
        }
        else if (data.Vms.All(v => v.X.Length == 0))
        {
            Figure.NoData(plot, "no clock reads from 2 or more vCPUs of one VM in reads.csv");
        }
        Figure.Legend(plot);
    }
}

using TscSim.Plots.Input;

namespace TscSim.Plots.Recipes;

/// <summary>The rows of <c>reads.csv</c> of one vCPU, in true-time order.</summary>
/// <param name="Vm">The VM's id.</param>
/// <param name="Vcpu">The vCPU's index.</param>
/// <param name="Reads">Its reads, ordered by true time (rows at the same time keep their file order).</param>
internal sealed record VcpuReads(string Vm, int Vcpu, IReadOnlyList<ClockRead> Reads)
{
    /// <summary><c>vm.vcpuN</c>, as in expectations.</summary>
    public string Label => $"{Vm}.vcpu{Vcpu}";
}

/// <summary>Grouping shared by the recipes.</summary>
internal static class ReadGroups
{
    /// <summary>
    /// The reads per vCPU: VMs in <c>summary.json</c> order (then any other VM of reads.csv in order
    /// of first appearance), vCPUs by index.
    /// </summary>
    public static IReadOnlyList<VcpuReads> ByVcpu(ResultsFolder source) =>
        [.. source.Reads
            .GroupBy(r => (r.Vm, r.Vcpu))
            .OrderBy(g => VmOrder(source, g.Key.Vm))
            .ThenBy(g => g.Key.Vcpu)
            .Select(g => new VcpuReads(g.Key.Vm, g.Key.Vcpu, [.. g.OrderBy(r => r.TrueNs)]))];

    /// <summary>Where VM <paramref name="vm"/> comes in figures: its index in <c>summary.json</c>, or after every listed VM.</summary>
    public static int VmOrder(ResultsFolder source, string vm)
    {
        for (int i = 0; i < source.Vms.Count; i++)
        {
            if (source.Vms[i].Id == vm)
            {
                return i;
            }
        }
        return source.Vms.Count;
    }
}

/// <summary>Unit conversions for axes (doubles only here, at the edge).</summary>
internal static class Units
{
    /// <summary>Nanoseconds to seconds.</summary>
    public static double Seconds(long ns) => ns / 1e9;

    /// <summary>Nanoseconds to milliseconds.</summary>
    public static double Milliseconds(long ns) => ns / 1e6;
}

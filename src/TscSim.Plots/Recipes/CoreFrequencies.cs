using TscSim.Core.Scenarios;
using TscSim.Plots.Input;

namespace TscSim.Plots.Recipes;

/// <summary>
/// The frequency of a host's core at a true time, from <c>scenario.resolved.yaml</c>: the host's
/// nominal <c>frequency</c>, changed by the scenario's <c>cpufreq</c> events for the cores they
/// select (a change at the very nanosecond of a read applies to it, as in the engine, where
/// frequency changes come before TSC reads at the same instant).
/// </summary>
internal sealed class CoreFrequencies
{
    private readonly Scenario _scenario;
    private readonly List<CpufreqEvent> _changes;

    public CoreFrequencies(Scenario scenario)
    {
        _scenario = scenario;
        _changes = [.. scenario.EventsInTimeOrder.OfType<CpufreqEvent>()];
    }

    /// <summary>Millihertz of core <paramref name="core"/> of host <paramref name="host"/> at <paramref name="trueNs"/>.</summary>
    /// <exception cref="PlotInputException">The host is not in the scenario.</exception>
    public long MillihertzAt(string host, int core, long trueNs)
    {
        var spec = _scenario.FindHost(host)
            ?? throw new PlotInputException($"reads.csv: host '{host}' is not a host of scenario.resolved.yaml ({string.Join(", ", _scenario.Hosts.Select(h => h.Id))})");
        long mHz = spec.Frequency.Millihertz;
        foreach (var change in _changes)
        {
            if (change.At.Picoseconds > checked(trueNs * 1000))
            {
                break;
            }
            if (change.Host == host && (change.Cores.IsAll || change.Cores.Cores!.Contains(core)))
            {
                mHz = change.Frequency.Millihertz;
            }
        }
        return mHz;
    }
}

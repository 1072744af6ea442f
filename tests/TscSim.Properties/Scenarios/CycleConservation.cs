using System.Globalization;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;
using TscSim.Core.Time;

namespace TscSim.Properties.Scenarios;

/// <summary>
/// The cycle-conservation oracle: from a scenario alone, when each vCPU runs and at which core
/// frequency, and so how many cycles (guest + exit) it must have accumulated over any interval.
/// </summary>
/// <remarks>
/// <para>What the model lets a check see: per vCPU, the cumulative guest and exit cycles at the
/// 200 run steps (<see cref="ScenarioModel.ExitSamples"/>, what <c>exits.csv</c> holds). What it
/// does not expose: how long an AP waits in the guest kernel at boot until vCPU 0 brings it
/// online, or how long the host scheduler keeps a vCPU descheduled. So the invariant checked is:</para>
/// <para><b>Every picosecond of a vCPU's simulated time is paid for as guest or exit cycles at the
/// frequency of the core it is on, except while its VM has not started or is paused for a live
/// migration's downtime.</b> Precisely, for each step interval [t₀, t₁] and each vCPU,
/// |Δ(guest + exit cycles) − ∫ f(core(t)) dt over the running part| ≤ 2C + b · C · ⌈f_max / f_min⌉,
/// where C is the cost of the dearest single instruction (an MMIO exit: the round trip plus a
/// 1,650-cycle userspace handler, plus the dearest native instruction; one at each end of the
/// interval), b is the number of changes inside the interval (P-state changes, vCPU moves,
/// pauses and resumes), and the ratio covers an instruction issued just before a frequency
/// change, which is charged in full at the old rate.
/// For vCPU 0 this holds from the VM's start (it never waits); for an AP, from the first interval
/// it runs through (before that it may only accumulate less than elapsed time). The same bound,
/// with b counting every change, holds for the whole run.</para>
/// <para>C-states do not stop a vCPU in this model (they only stop or slow a TSC), so they take no
/// part. The check does not apply with the host scheduler (<c>scheduler_slice</c>).</para>
/// </remarks>
public static class CycleConservation
{
    /// <summary>Cycles of the dearest exit handler (port I/O and MMIO completed in userspace), with margin.</summary>
    public const long HandlerCycles = 2_000;

    /// <summary>Whether the oracle applies to <paramref name="scenario"/>: no host scheduler.</summary>
    public static bool Applies(Scenario scenario) => scenario.Hypervisor.SchedulerSlice is null;

    private readonly record struct Piece(long FromPs, long ToPs, long FrequencyMillihertz);

    /// <summary>
    /// Checks every vCPU of <paramref name="o"/>; null if all accounts balance, otherwise a
    /// message naming the first vCPU and interval that do not.
    /// </summary>
    public static string? Check(RunOutcome o)
    {
        Scenario s = o.Scenario;
        if (!Applies(s) || !o.Result.Complete)
        {
            return null;
        }
        long end = s.Duration.Picoseconds;
        int steps = ScenarioRun.Steps;
        var instants = new long[steps + 1];
        for (int k = 1; k <= steps; k++)
        {
            instants[k] = (long)((Int128)end * k / steps);
        }

        var (pieces, changes) = Timeline(s);
        long ratio = FrequencyRatio(s);
        long instruction = s.Hosts.Max(h => h.ExitCost.Count + HandlerCycles + h.CpuModel.Costs.Max(c => c.Count));

        for (int vmIndex = 0; vmIndex < s.Vms.Count; vmIndex++)
        {
            VmSpec vm = s.Vms[vmIndex];
            for (int v = 0; v < vm.Vcpus; v++)
            {
                var cycles = new long[steps + 1];
                int k = 0;
                foreach (ExitSample x in o.Model.ExitSamples.Where(x => x.Vm == vm.Id && x.Vcpu == v))
                {
                    cycles[++k] = x.GuestCycles + x.ExitCycles;
                }
                if (k != steps)
                {
                    return $"{vm.Id}.vcpu{v}: {k} exit samples, expected {steps}";
                }
                List<Piece> mine = pieces[(vmIndex, v)];
                List<long> myChanges = changes[vmIndex];
                int online = v == 0 ? 1 : -1;
                for (k = 1; k <= steps; k++)
                {
                    long expected = Expected(mine, instants[k - 1], instants[k]);
                    long measured = cycles[k] - cycles[k - 1];
                    int inside = myChanges.Count(t => t > instants[k - 1] && t < instants[k]);
                    long tolerance = 2 * instruction + inside * instruction * ratio;
                    if (online < 0)
                    {
                        if (measured > expected + tolerance)
                        {
                            return Message(vm.Id, v, instants[k - 1], instants[k], measured, expected, tolerance, "before it came online");
                        }
                        if (expected > tolerance && measured >= expected - tolerance)
                        {
                            online = k;
                        }
                        continue;
                    }
                    if (Math.Abs(measured - expected) > tolerance)
                    {
                        return Message(vm.Id, v, instants[k - 1], instants[k], measured, expected, tolerance,
                            v == 0 ? "" : $"online since {Ms(instants[online - 1])}");
                    }
                }
                if (online > 0)
                {
                    // The whole run at once: small per-interval errors must not add up.
                    long from = instants[online - 1];
                    long expected = Expected(mine, from, end);
                    long measured = cycles[steps] - cycles[online - 1];
                    long tolerance = 2 * instruction + myChanges.Count(t => t > from && t < end) * instruction * ratio;
                    if (Math.Abs(measured - expected) > tolerance)
                    {
                        return Message(vm.Id, v, from, end, measured, expected, tolerance, "whole run");
                    }
                }
            }
        }
        return null;
    }

    private static string Message(string vm, int v, long from, long to, long measured, long expected, long tolerance, string note) =>
        $"{vm}.vcpu{v}: over [{Ms(from)}, {Ms(to)}]{(note.Length > 0 ? $" ({note})" : "")} it accumulated {ScenarioHarness.N(measured)} guest+exit cycles, " +
        $"expected {ScenarioHarness.N(expected)} (running time x core frequency) within {ScenarioHarness.N(tolerance)}";

    private static string Ms(long ps) => (ps / 1e9).ToString("0.######", CultureInfo.InvariantCulture) + "ms";

    /// <summary>∫ f dt over [from, to] of the running pieces, in cycles (floor).</summary>
    private static long Expected(List<Piece> pieces, long from, long to)
    {
        Int128 sum = 0;
        foreach (Piece p in pieces)
        {
            long a = Math.Max(p.FromPs, from), b = Math.Min(p.ToPs, to);
            if (b > a)
            {
                sum += (Int128)(b - a) * p.FrequencyMillihertz;
            }
        }
        return (long)(sum / 1_000_000_000_000_000); // ps × mHz = 10^-15 cycles
    }

    /// <summary>The largest frequency over the smallest one the scenario sets, rounded up.</summary>
    private static long FrequencyRatio(Scenario s)
    {
        var all = s.Hosts.Select(h => h.Frequency.Millihertz)
            .Concat(s.Events.OfType<CpufreqEvent>().Select(e => e.Frequency.Millihertz)).ToList();
        long max = all.Max(), min = all.Min();
        return (max + min - 1) / min;
    }

    /// <summary>
    /// Replays the timeline: for every vCPU, pieces of constant state (running at a frequency in
    /// mHz; absent while not running), and per VM the instants at which anything that matters to
    /// its vCPUs changes.
    /// </summary>
    private static (Dictionary<(int Vm, int Vcpu), List<Piece>> Pieces, List<List<long>> Changes) Timeline(Scenario s)
    {
        long end = s.Duration.Picoseconds;
        var hostIndex = s.Hosts.Select((h, i) => (h.Id, i)).ToDictionary(x => x.Id, x => x.i, StringComparer.Ordinal);
        var vmIndex = s.Vms.Select((v, i) => (v.Id, i)).ToDictionary(x => x.Id, x => x.i, StringComparer.Ordinal);
        var freq = s.Hosts.Select(h => Enumerable.Repeat(h.Frequency.Millihertz, h.Cores).ToArray()).ToArray();
        var host = s.Vms.Select(v => hostIndex[v.Host]).ToArray();
        var core = s.Vms.Select(v => Enumerable.Range(0, v.Vcpus).Select(i => v.Pin is { } pin ? pin[i] : i % s.Hosts[hostIndex[v.Host]].Cores).ToArray()).ToArray();
        var paused = new bool[s.Vms.Count];

        // Change points: every scenario event, and every live migration's resume.
        var points = new List<(long At, int Order, Action Apply, int? Vm)>();
        int order = 0;
        foreach (ScenarioEvent e in s.EventsInTimeOrder)
        {
            long at = e.At.Picoseconds;
            switch (e)
            {
                case CpufreqEvent f:
                {
                    int h = hostIndex[f.Host];
                    points.Add((at, order++, () =>
                    {
                        foreach (int c in f.Cores.Expand(freq[h].Length))
                        {
                            freq[h][c] = f.Frequency.Millihertz;
                        }
                    }, null));
                    break;
                }
                case MigrateVcpuEvent mv:
                {
                    int vm = vmIndex[mv.Vm];
                    points.Add((at, order++, () => core[vm][mv.Vcpu] = mv.ToCore, vm));
                    break;
                }
                case LiveMigrateEvent m:
                {
                    int vm = vmIndex[m.Vm];
                    int to = hostIndex[m.To];
                    points.Add((at, order++, () => paused[vm] = true, vm));
                    points.Add((at + m.Downtime.Picoseconds, order++, () =>
                    {
                        paused[vm] = false;
                        host[vm] = to;
                        for (int i = 0; i < core[vm].Length; i++)
                        {
                            core[vm][i] %= s.Hosts[to].Cores;
                        }
                    }, vm));
                    break;
                }
            }
        }
        points.Sort((a, b) => a.At != b.At ? a.At.CompareTo(b.At) : a.Order.CompareTo(b.Order));

        var pieces = new Dictionary<(int, int), List<Piece>>();
        var changes = s.Vms.Select(_ => new List<long>()).ToList();
        for (int vm = 0; vm < s.Vms.Count; vm++)
        {
            for (int v = 0; v < s.Vms[vm].Vcpus; v++)
            {
                pieces[(vm, v)] = [];
            }
            long start = s.Vms[vm].Start.Picoseconds;
            if (start > 0)
            {
                changes[vm].Add(start);
            }
        }

        long from = 0;
        int next = 0;
        while (from < end)
        {
            while (next < points.Count && points[next].At <= from)
            {
                points[next].Apply();
                next++;
            }
            long to = next < points.Count ? Math.Min(points[next].At, end) : end;
            for (int vm = 0; vm < s.Vms.Count; vm++)
            {
                long start = s.Vms[vm].Start.Picoseconds;
                for (int v = 0; v < s.Vms[vm].Vcpus; v++)
                {
                    // A VM that starts inside this piece runs from its start.
                    long a = Math.Max(from, start);
                    if (!paused[vm] && a < to)
                    {
                        pieces[(vm, v)].Add(new Piece(a, to, freq[host[vm]][core[vm][v]]));
                    }
                }
            }
            from = to;
        }
        // Changes that matter to a VM: its own moves, pauses and resumes, and P-state changes of any host (cheap to over-count).
        foreach (var p in points)
        {
            for (int vm = 0; vm < s.Vms.Count; vm++)
            {
                if (p.Vm is null || p.Vm == vm)
                {
                    changes[vm].Add(p.At);
                }
            }
        }
        return (pieces, changes);
    }
}

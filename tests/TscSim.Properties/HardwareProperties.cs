using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TscSim.Core.Engine;
using TscSim.Core.Hardware;
using TscSim.Core.Time;

namespace TscSim.Properties;

/// <summary>One step of a random host timeline.</summary>
public enum HostOpKind { Frequency, CState, Read, Write }

/// <summary>A timeline step: after <c>GapPs</c>, do <c>Kind</c> on core <c>Core</c> with argument <c>Arg</c>.</summary>
public sealed record HostOp(long GapPs, HostOpKind Kind, int Core, long Arg);

/// <summary>A random host (preset, topology, drift, skew) and a random timeline on it.</summary>
public sealed record HostTimeline(string Cpu, int Sockets, long DriftPpb, long SkewCycles, bool Walk, IReadOnlyList<HostOp> Ops)
{
    public override string ToString() =>
        $"{Cpu} sockets={Sockets} drift={DriftPpb}ppb skew={SkewCycles} walk={Walk}: " +
        string.Join(", ", Ops.Select(o => $"+{o.GapPs}ps {o.Kind} cpu{o.Core} {o.Arg}"));
}

public static class HostTimelineArbitrary
{
    public const int CoresPerSocket = 2;

    public static Arbitrary<HostTimeline> Timeline()
    {
        var op =
            // Gaps: often none or a few picoseconds (so a read right after a change would expose
            // even a one-tick step back), otherwise up to 1 ms.
            from gap in Gen.Frequency(
                (2, Gen.Constant(0L)),
                (2, Gen.Choose(1, 1_000).Select(g => (long)g)),
                (3, Gen.Choose(0, 2_000_000).Select(g => (long)g * 500)))
            from kind in Gen.Frequency(
                (3, Gen.Constant(HostOpKind.Read)), (2, Gen.Constant(HostOpKind.Frequency)),
                (2, Gen.Constant(HostOpKind.CState)), (1, Gen.Constant(HostOpKind.Write)))
            from core in Gen.Choose(0, 3)
            from arg in Gen.Choose(1, 4_000)
            select new HostOp(gap, kind, core, arg);
        var timeline =
            from cpu in Gen.Elements(CpuPresets.All.Select(m => m.Name).ToArray())
            from sockets in Gen.Choose(1, 2)
            from drift in Gen.Choose(-100_000, 100_000)
            from skew in Gen.Choose(0, 10_000)
            from walk in Gen.Elements(true, false)
            from ops in op.ListOf()
            select new HostTimeline(cpu, sockets, drift, skew, walk, ops.ToList());
        return timeline.ToArbitrary();
    }
}

/// <summary>Plays a <see cref="HostTimeline"/> and checks every read against the previous one of the same core.</summary>
internal sealed class TimelinePlayer : IEventHandler
{
    private readonly Host _host;
    private readonly EventKind _read;
    private readonly EventKind _write;
    private readonly ulong?[] _lastRead;
    private readonly bool[] _writtenSinceRead;

    public TimelinePlayer(HostTimeline t)
    {
        Sim = new Simulator(seed: 11);
        _host = new Host(new HostConfig
        {
            Id = "p",
            Cpu = CpuPresets.Find(t.Cpu)!,
            Frequency = Frequency.FromMegahertz(2_000),
            Sockets = t.Sockets,
            CoresPerSocket = HostTimelineArbitrary.CoresPerSocket,
            Drift = Ppm.FromPartsPerBillion(t.DriftPpb),
            SocketSkew = new Cycles(t.SkewCycles),
            Walk = t.Walk ? new DriftWalk(Ppm.FromPartsPerMillion(2), Duration.FromMicroseconds(300), Ppm.FromPartsPerMillion(50)) : null,
        }, Sim);
        _read = Sim.RegisterKind("test.read", EventBand.Guest, this);
        _write = Sim.RegisterKind("test.write", EventBand.Hardware, this);
        _lastRead = new ulong?[_host.Cores.Length];
        _writtenSinceRead = new bool[_host.Cores.Length];

        SimTime at = SimTime.Zero;
        foreach (var op in t.Ops)
        {
            at += Duration.FromPicoseconds(op.GapPs);
            int core = op.Core % _host.Cores.Length;
            switch (op.Kind)
            {
                case HostOpKind.Frequency:
                    _host.ScheduleFrequencyChange(at, core, Frequency.FromMegahertz(op.Arg));
                    break;
                case HostOpKind.CState:
                    var state = (CState[])[CState.C1, CState.C1E, CState.C3, CState.C6];
                    _host.ScheduleCState(at, core, state[op.Arg % 4], Duration.FromNanoseconds(op.Arg * 100));
                    break;
                case HostOpKind.Read:
                    Sim.Schedule(at, _read, core);
                    break;
                case HostOpKind.Write:
                    Sim.Schedule(at, _write, core, op.Arg * 1_000_003L);
                    break;
            }
        }
        End = at;
    }

    public Simulator Sim { get; }

    /// <summary>The instant of the last step (crystal walks go on forever, so runs stop here).</summary>
    public SimTime End { get; }

    public string? Violation { get; private set; }

    public int Reads { get; private set; }

    public void OnEvent(Simulator sim, in SimEvent e)
    {
        var core = _host.Cores[e.Subject];
        if (e.Kind == _write)
        {
            core.WriteTsc(e.Time, (ulong)e.Payload);
            _writtenSinceRead[e.Subject] = true;
            return;
        }
        Reads++;
        ulong value = core.ReadTsc(e.Time).Raw;
        if (core.ReadTsc(e.Time).Raw != value)
        {
            Violation ??= $"cpu{e.Subject} at {e.Time}: two reads of the same instant differ";
        }
        if (_lastRead[e.Subject] is ulong last && value < last && !_writtenSinceRead[e.Subject])
        {
            Violation ??= $"cpu{e.Subject} at {e.Time}: TSC went from {last} to {value} without a write";
        }
        _lastRead[e.Subject] = value;
        _writtenSinceRead[e.Subject] = false;
    }
}

public class HardwareProperties
{
    /// <summary>
    /// For any host and any sequence of frequency changes, C-states, reads and writes, a core's
    /// TSC never decreases except through an explicit write, and reading it never changes it.
    /// </summary>
    [CiProperty(Arbitrary = [typeof(HostTimelineArbitrary)], MaxTest = 300)]
    public Property Tsc_never_decreases_except_through_a_write_and_reads_change_nothing(HostTimeline timeline)
    {
        var player = new TimelinePlayer(timeline);
        player.Sim.Run(player.End);
        return (player.Violation is null).Label(player.Violation ?? "ok").Classify(player.Reads > 5, "more than 5 reads");
    }
}

using TscSim.Core.Time;

namespace TscSim.Core.Hardware;

/// <summary>
/// One physical core: its P-state frequency, C-state, and TSC. The TSC is
/// <c>counter + IA32_TSC_ADJUST</c> (mod 2^64), where the counter is a
/// <see cref="LinearCounter"/> whose rate is
/// (constant TSC ? nominal frequency : current core frequency) × (1 + socket crystal error),
/// or 0 while the core sits in a C-state where this model's TSC stops.
/// </summary>
/// <remarks>
/// State changes take the instant they apply at; <see cref="Host"/> schedules them as
/// <see cref="Engine.EventBand.Hardware"/> events so they land before any read at the same
/// picosecond. Reads never change anything.
/// </remarks>
public sealed class PhysicalCpu
{
    private readonly LinearCounter _counter;
    private long _tscAdjust;

    internal PhysicalCpu(Host host, int index, int socket, int coreInSocket, Crystal crystal, SimTime start, Int128 initialTicks)
    {
        Host = host;
        Index = index;
        Socket = socket;
        CoreInSocket = coreInSocket;
        Crystal = crystal;
        Model = host.Config.Cpu;
        Frequency = host.Config.Frequency;
        _counter = new LinearCounter(start, initialTicks, TscRateFor(Frequency, CState.C0));
    }

    public Host Host { get; }

    /// <summary>Host-wide core index (socket-major).</summary>
    public int Index { get; }

    public int Socket { get; }

    public int CoreInSocket { get; }

    /// <summary>The crystal that drives this core's TSC (its socket's).</summary>
    public Crystal Crystal { get; }

    public CpuModel Model { get; }

    /// <summary>The current core clock (P-state); instruction costs are paid in these cycles.</summary>
    public Frequency Frequency { get; private set; }

    /// <summary>The current power state.</summary>
    public CState CState { get; private set; } = CState.C0;

    /// <summary>The rate at which the TSC counts now (0 Hz while stopped).</summary>
    public Frequency TscRate => _counter.Rate;

    /// <summary>IA32_TSC_ADJUST (0 on models without it).</summary>
    public long TscAdjust => _tscAdjust;

    /// <summary>Segments of the TSC's piecewise-linear history so far.</summary>
    public int TscSegments => _counter.Segments;

    /// <summary>RDTSC on this core at <paramref name="t"/> (not before the last change).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public TscValue ReadTsc(SimTime t) => new TscValue(_counter.ValueAt(t)) + _tscAdjust;

    /// <summary>How long <paramref name="cycles"/> of core clock take at the current P-state (floor).</summary>
    public Duration CoreTime(Cycles cycles) => Frequency.DurationOf(cycles);

    /// <summary>
    /// The first instant at or after the current TSC segment's start at which RDTSC shows
    /// at least <paramref name="value"/> (ignoring wrap), or null if the TSC is stopped short of it.
    /// </summary>
    public SimTime? TimeOfTsc(TscValue value) =>
        _counter.TimeOfTicks((Int128)unchecked(value.Raw - (ulong)_tscAdjust));

    /// <summary>P-state change at <paramref name="t"/>.</summary>
    public void SetFrequency(SimTime t, Frequency frequency)
    {
        if (frequency <= Frequency.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(frequency), frequency, "A core frequency must be positive.");
        }
        Frequency = frequency;
        Retune(t);
    }

    /// <summary>Enters <paramref name="state"/> at <paramref name="t"/> (C0 = wake up).</summary>
    public void SetCState(SimTime t, CState state)
    {
        CState = state;
        Retune(t);
    }

    /// <summary>
    /// WRMSR IA32_TSC (0x10) at <paramref name="t"/>. On models with the P6-era rule only the
    /// low 32 bits are written and the upper 32 cleared. With IA32_TSC_ADJUST the write moves
    /// TSC_ADJUST by the same amount as the TSC (SDM; KVM mirrors it in update_ia32_tsc_adjust_msr).
    /// </summary>
    public void WriteTsc(SimTime t, ulong value)
    {
        if (!Model.FullWidthTscWrite)
        {
            value &= 0xFFFF_FFFFUL;
        }
        if (Model.HasTscAdjust)
        {
            long delta = new TscValue(value) - ReadTsc(t);
            _tscAdjust = unchecked(_tscAdjust + delta);
        }
        else
        {
            _counter.Write(t, value);
        }
    }

    /// <summary>
    /// WRMSR IA32_TSC_ADJUST (0x3B) at <paramref name="t"/>: the TSC moves by (new − old); the
    /// underlying counter does not change. #GP (an exception here) on models without the MSR.
    /// </summary>
    public void WriteTscAdjust(SimTime t, long value)
    {
        if (!Model.HasTscAdjust)
        {
            throw new InvalidOperationException($"{Model.Name} has no IA32_TSC_ADJUST (WRMSR 0x3B raises #GP).");
        }
        _ = _counter.ValueAt(t); // no writes into the past
        _tscAdjust = value;
    }

    /// <summary>The socket crystal's error changed at <paramref name="t"/>.</summary>
    internal void OnCrystalChanged(SimTime t) => Retune(t);

    private void Retune(SimTime t) => _counter.SetRate(t, TscRateFor(Frequency, CState));

    private Frequency TscRateFor(Frequency coreFrequency, CState state)
    {
        if (Model.TscStopsIn(state))
        {
            return Frequency.Zero;
        }
        Frequency nominal = Model.ConstantTsc ? Host.Config.Frequency : coreFrequency;
        return Crystal.Drive(nominal);
    }

    public override string ToString() => $"{Host.Config.Id}/cpu{Index} (socket {Socket})";
}

using System.Runtime.CompilerServices;
using TscSim.Core.Time;

namespace TscSim.Core.Hardware;

/// <summary>
/// A counter that is a piecewise-linear function of true time, computed on demand: nothing
/// ticks. The current segment starts at <see cref="SegmentStart"/> and runs at
/// <see cref="Rate"/> (0 Hz = stopped); changing the rate or writing the value starts a new
/// segment.
/// </summary>
/// <remarks>
/// Exact to the sub-tick: the counter keeps the accumulated phase as
/// Σ Δt_ps × rate_mHz (an <see cref="Int128"/> in units of 10^-15 tick), and the value at t
/// is ⌊phase / 10^15⌋. A rate change therefore loses no fractional tick, and the value after
/// any sequence of changes equals the integral of the rate, rounded down once.
/// Reading never changes the counter; only <see cref="SetRate"/> and <see cref="Write"/> do,
/// and both refuse to move backwards in time.
/// </remarks>
public sealed class LinearCounter
{
    private Int128 _phase; // ticks × 10^15, at _start

    // Read cache (an optimisation, invisible to callers): the value and sub-tick remainder at
    // _cacheT, so a read shortly after the previous one advances with 64-bit arithmetic and a
    // division by a constant instead of a 128-bit division.
    private long _cacheT;
    private ulong _cacheValue;
    private long _cacheRemainder; // in [0, 10^15)
    private long _cacheMaxStep;   // largest Δt (ps) whose Δt × rate fits in 63 bits with the remainder

    /// <summary>A counter holding <paramref name="initialTicks"/> at <paramref name="start"/>, running at <paramref name="rate"/>.</summary>
    public LinearCounter(SimTime start, Int128 initialTicks, Frequency rate)
    {
        SegmentStart = start;
        _phase = initialTicks * ExactMath.PicosecondMillihertzPerCycle;
        Rate = rate;
        SeedCache();
    }

    /// <summary>Where the current segment begins.</summary>
    public SimTime SegmentStart { get; private set; }

    /// <summary>The current rate (0 Hz while stopped).</summary>
    public Frequency Rate { get; private set; }

    /// <summary>Segments begun since creation (rate changes and writes).</summary>
    public int Segments { get; private set; } = 1;

    /// <summary>Whole ticks counted at <paramref name="t"/> (not wrapped; may exceed 64 bits in principle).</summary>
    public Int128 TicksAt(SimTime t) => ExactMath.FloorDiv(PhaseAt(t), ExactMath.PicosecondMillihertzPerCycle);

    /// <summary>The value at <paramref name="t"/> modulo 2^64, as a 64-bit hardware counter shows it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong ValueAt(SimTime t)
    {
        long dt = t.Picoseconds - _cacheT;
        if (unchecked((ulong)dt) <= (ulong)_cacheMaxStep) // a negative dt reads as huge: slow path
        {
            const long unit = ExactMath.PicosecondMillihertzPerCycle;
            long r = _cacheRemainder + dt * Rate.Millihertz;
            ulong v = _cacheValue;
            if (r >= unit)
            {
                long whole = r / unit;
                v = unchecked(v + (ulong)whole); // a 64-bit counter wraps
                r -= whole * unit;
            }
            _cacheT = t.Picoseconds;
            _cacheValue = v;
            _cacheRemainder = r;
            return v;
        }
        return ValueAtSlow(t);
    }

    /// <summary>How many cache steps a read ahead may take before the 128-bit path is cheaper.</summary>
    private const long MaxCacheSteps = 16;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ulong ValueAtSlow(SimTime t)
    {
        long back = _cacheT - t.Picoseconds;
        if (back > 0 && back <= _cacheMaxStep && t >= SegmentStart)
        {
            // A read a little before the cached one (readers at different instants take turns:
            // a vCPU running ahead, then the hypervisor at the engine's now): step the cache back
            // with the same 64-bit arithmetic, borrowing whole ticks, instead of a 128-bit division.
            const long unit = ExactMath.PicosecondMillihertzPerCycle;
            long r = _cacheRemainder - (back * Rate.Millihertz); // > −2^63: back × rate fits in 63 bits with the remainder
            ulong v = _cacheValue;
            if (r < 0)
            {
                long whole = (-r + unit - 1) / unit; // ⌈−r / unit⌉: r + whole × unit lands in [0, unit)
                v = unchecked(v - (ulong)whole); // a 64-bit counter wraps
                r += whole * unit;
            }
            _cacheT = t.Picoseconds;
            _cacheValue = v;
            _cacheRemainder = r;
            return v;
        }
        long ahead = t.Picoseconds - _cacheT;
        if (ahead > 0 && ahead / MaxCacheSteps <= _cacheMaxStep)
        {
            // A read further ahead than one 64-bit step (about 4.6 µs at 2 GHz: a vCPU reading
            // every 10 µs) but within a few: the same exact steps in turn, instead of a 128-bit division.
            const long unit = ExactMath.PicosecondMillihertzPerCycle;
            ulong v = _cacheValue;
            long r = _cacheRemainder;
            while (ahead > 0)
            {
                long step = Math.Min(ahead, _cacheMaxStep);
                r += step * Rate.Millihertz; // < 2^63: step × rate fits with the remainder (_cacheMaxStep)
                long whole = r / unit;
                v = unchecked(v + (ulong)whole); // a 64-bit counter wraps
                r -= whole * unit;
                ahead -= step;
            }
            _cacheT = t.Picoseconds;
            _cacheValue = v;
            _cacheRemainder = r;
            return v;
        }
        Int128 phase = PhaseAt(t);
        SeedCache(t.Picoseconds, phase);
        return _cacheValue;
    }

    private void SeedCache() => SeedCache(SegmentStart.Picoseconds, _phase);

    private void SeedCache(long t, Int128 phase)
    {
        Int128 ticks = ExactMath.FloorDiv(phase, ExactMath.PicosecondMillihertzPerCycle);
        _cacheT = t;
        _cacheValue = unchecked((ulong)ticks);
        _cacheRemainder = (long)(phase - ticks * ExactMath.PicosecondMillihertzPerCycle);
        long rate = Math.Max(Rate.Millihertz, 1);
        _cacheMaxStep = (long.MaxValue - ExactMath.PicosecondMillihertzPerCycle) / rate;
    }

    /// <summary>From <paramref name="t"/> on, the counter runs at <paramref name="rate"/>.</summary>
    public void SetRate(SimTime t, Frequency rate)
    {
        if (rate == Rate)
        {
            return;
        }
        _phase = PhaseAt(t);
        SegmentStart = t;
        Rate = rate;
        Segments++;
        SeedCache();
    }

    /// <summary>At <paramref name="t"/> the counter is set to exactly <paramref name="ticks"/> (sub-tick phase cleared).</summary>
    public void Write(SimTime t, Int128 ticks)
    {
        _ = PhaseAt(t); // validates t
        _phase = ticks * ExactMath.PicosecondMillihertzPerCycle;
        SegmentStart = t;
        Segments++;
        SeedCache();
    }

    /// <summary>
    /// The first instant at or after the segment start at which the counter shows at least
    /// <paramref name="ticks"/>, or null if it never will at the current rate.
    /// </summary>
    public SimTime? TimeOfTicks(Int128 ticks)
    {
        Int128 target = ticks * ExactMath.PicosecondMillihertzPerCycle;
        if (target <= _phase)
        {
            return SegmentStart;
        }
        if (Rate == Frequency.Zero)
        {
            return null;
        }
        Int128 ps = ExactMath.CeilDiv(target - _phase, Rate.Millihertz);
        return SegmentStart + Duration.FromPicoseconds(ExactMath.ToInt64Checked(ps, "time of ticks"));
    }

    private Int128 PhaseAt(SimTime t)
    {
        if (t < SegmentStart)
        {
            throw new ArgumentOutOfRangeException(nameof(t), t,
                $"A counter cannot be read or changed before its current segment (which starts at {SegmentStart}).");
        }
        return _phase + (Int128)(t - SegmentStart).Picoseconds * Rate.Millihertz;
    }
}

using System.Numerics;

namespace TscSim.Core.Time;

/// <summary>
/// A rate in integer millihertz: 1 ppb of a 14.31818 MHz HPET (14.3 mHz) is representable, and
/// the largest value (2^63−1 mHz, about 9.2 PHz) is far above any clock. Default: 0 Hz, a stopped
/// counter. Never negative.
/// </summary>
/// <remarks>
/// Conversions are exact through 128-bit intermediates and round down (floor), so a counter
/// never reports a tick before the instant it happens:
/// <list type="bullet">
/// <item><c>DurationOf(c)</c> = floor(c × 10^15 / f_mHz) ps; 1,000 cycles at 3 GHz = 333,333 ps.</item>
/// <item><c>TicksIn(d)</c> = floor(d_ps × f_mHz / 10^15); 1 ms at 14.31818 MHz = 14,318 ticks.</item>
/// <item><c>WithDrift(e)</c> = floor(f_mHz × (10^9 + e_ppb) / 10^9) mHz.</item>
/// </list>
/// </remarks>
public readonly struct Frequency :
    IEquatable<Frequency>, IComparable<Frequency>, IComparisonOperators<Frequency, Frequency, bool>
{
    private readonly long _mHz;

    private Frequency(long millihertz) => _mHz = millihertz;

    /// <summary>The rate in millihertz.</summary>
    public long Millihertz => _mHz;

    /// <summary>A stopped counter.</summary>
    public static Frequency Zero => default;

    public static Frequency FromMillihertz(long mHz)
    {
        if (mHz < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(mHz), mHz, "A frequency cannot be negative.");
        }
        return new Frequency(mHz);
    }

    public static Frequency FromHertz(long hz) => FromMillihertz(checked(hz * 1_000L));
    public static Frequency FromKilohertz(long khz) => FromMillihertz(checked(khz * 1_000_000L));
    public static Frequency FromMegahertz(long mhz) => FromMillihertz(checked(mhz * 1_000_000_000L));

    /// <summary>Whole hertz, rounded down.</summary>
    public long HertzFloor => _mHz / 1_000;

    /// <summary>Whole kilohertz, rounded down (the unit of KVM's <c>tsc_khz</c>).</summary>
    public long KilohertzFloor => _mHz / 1_000_000;

    /// <summary>The time <paramref name="cycles"/> take at this rate, rounded down to a picosecond.</summary>
    public Duration DurationOf(Cycles cycles)
    {
        RequireRunning();
        Int128 ps = ExactMath.FloorDiv((Int128)cycles.Count * ExactMath.PicosecondMillihertzPerCycle, _mHz);
        return Duration.FromPicoseconds(ExactMath.ToInt64Checked(ps, "duration of cycles"));
    }

    /// <summary>
    /// The time <paramref name="cycles"/> take at this rate, rounded up: the first picosecond
    /// at which a counter started at zero has reached <paramref name="cycles"/>.
    /// </summary>
    public Duration DurationOfCeiling(Cycles cycles)
    {
        RequireRunning();
        Int128 ps = ExactMath.CeilDiv((Int128)cycles.Count * ExactMath.PicosecondMillihertzPerCycle, _mHz);
        return Duration.FromPicoseconds(ExactMath.ToInt64Checked(ps, "duration of cycles"));
    }

    /// <summary>Whole ticks a counter at this rate makes in <paramref name="span"/>, rounded down.</summary>
    public Cycles TicksIn(Duration span)
    {
        Int128 ticks = ExactMath.FloorDiv((Int128)span.Picoseconds * _mHz, ExactMath.PicosecondMillihertzPerCycle);
        return new Cycles(ExactMath.ToInt64Checked(ticks, "ticks in duration"));
    }

    /// <summary>This nominal rate as produced by a crystal off by <paramref name="error"/>, rounded down.</summary>
    public Frequency WithDrift(Ppm error)
    {
        const long billion = 1_000_000_000L;
        long factor = checked(billion + error.PartsPerBillion);
        if (factor < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(error), error, "A drift below -10^6 ppm would run the clock backwards.");
        }
        Int128 mhz = ExactMath.FloorDiv((Int128)_mHz * factor, billion);
        return new Frequency(ExactMath.ToInt64Checked(mhz, "drifted frequency"));
    }

    private void RequireRunning()
    {
        if (_mHz == 0)
        {
            throw new DivideByZeroException("A stopped counter (0 Hz) never reaches a cycle count.");
        }
    }

    public static bool operator ==(Frequency a, Frequency b) => a._mHz == b._mHz;
    public static bool operator !=(Frequency a, Frequency b) => a._mHz != b._mHz;
    public static bool operator <(Frequency a, Frequency b) => a._mHz < b._mHz;
    public static bool operator >(Frequency a, Frequency b) => a._mHz > b._mHz;
    public static bool operator <=(Frequency a, Frequency b) => a._mHz <= b._mHz;
    public static bool operator >=(Frequency a, Frequency b) => a._mHz >= b._mHz;

    public bool Equals(Frequency other) => _mHz == other._mHz;
    public override bool Equals(object? obj) => obj is Frequency f && Equals(f);
    public override int GetHashCode() => _mHz.GetHashCode();
    public int CompareTo(Frequency other) => _mHz.CompareTo(other._mHz);

    /// <summary>Exact text that <see cref="Quantity.ParseFrequency"/> reads back, e.g. <c>14.31818MHz</c>.</summary>
    public override string ToString() => QuantityFormat.Frequency(_mHz);
}

using System.Numerics;

namespace TscSim.Core.Time;

/// <summary>
/// A signed span of simulated true time in integer picoseconds. Range ±(2^63−1) ps, about
/// ±106.75 days. Default: zero. Arithmetic is checked: overflow throws, it never wraps.
/// </summary>
public readonly struct Duration :
    IEquatable<Duration>, IComparable<Duration>, IComparisonOperators<Duration, Duration, bool>
{
    private readonly long _ps;

    private Duration(long picoseconds) => _ps = picoseconds;

    /// <summary>The span in picoseconds.</summary>
    public long Picoseconds => _ps;

    /// <summary>No time at all.</summary>
    public static Duration Zero => default;

    /// <summary>The longest representable span (2^63−1 ps).</summary>
    public static Duration MaxValue => new(long.MaxValue);

    public static Duration FromPicoseconds(long ps) => new(ps);
    public static Duration FromNanoseconds(long ns) => new(checked(ns * 1_000L));
    public static Duration FromMicroseconds(long us) => new(checked(us * 1_000_000L));
    public static Duration FromMilliseconds(long ms) => new(checked(ms * 1_000_000_000L));
    public static Duration FromSeconds(long s) => new(checked(s * ExactMath.PicosecondsPerSecond));

    /// <summary>Whole nanoseconds, rounded toward negative infinity.</summary>
    public long NanosecondsFloor => (long)ExactMath.FloorDiv(_ps, 1_000);

    public static Duration operator +(Duration a, Duration b) => new(checked(a._ps + b._ps));
    public static Duration operator -(Duration a, Duration b) => new(checked(a._ps - b._ps));
    public static Duration operator -(Duration a) => new(checked(-a._ps));
    public static Duration operator *(Duration a, long k) => new(checked(a._ps * k));
    public static Duration operator *(long k, Duration a) => new(checked(a._ps * k));

    /// <summary>How many whole <paramref name="b"/> fit in <paramref name="a"/> (floor division).</summary>
    public static long operator /(Duration a, Duration b) => (long)ExactMath.FloorDiv(a._ps, b._ps);

    public static bool operator ==(Duration a, Duration b) => a._ps == b._ps;
    public static bool operator !=(Duration a, Duration b) => a._ps != b._ps;
    public static bool operator <(Duration a, Duration b) => a._ps < b._ps;
    public static bool operator >(Duration a, Duration b) => a._ps > b._ps;
    public static bool operator <=(Duration a, Duration b) => a._ps <= b._ps;
    public static bool operator >=(Duration a, Duration b) => a._ps >= b._ps;

    public bool Equals(Duration other) => _ps == other._ps;
    public override bool Equals(object? obj) => obj is Duration d && Equals(d);
    public override int GetHashCode() => _ps.GetHashCode();
    public int CompareTo(Duration other) => _ps.CompareTo(other._ps);

    /// <summary>Exact text that <see cref="Quantity.ParseDuration"/> reads back, e.g. <c>1.5ms</c>.</summary>
    public override string ToString() => QuantityFormat.Duration(_ps);
}

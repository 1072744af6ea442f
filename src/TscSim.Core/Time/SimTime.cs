using System.Numerics;

namespace TscSim.Core.Time;

/// <summary>
/// A point in simulated true time: integer picoseconds since the start of the run (the
/// reference every clock is measured against). Range 0 to 2^63−1 ps (about 106.75 days).
/// Default: the start of the run. <c>SimTime − SimTime</c> is a <see cref="Duration"/>;
/// <c>SimTime + SimTime</c> does not compile. Results outside the range throw.
/// </summary>
public readonly struct SimTime :
    IEquatable<SimTime>, IComparable<SimTime>, IComparisonOperators<SimTime, SimTime, bool>
{
    private readonly long _ps;

    private SimTime(long picoseconds) => _ps = picoseconds;

    /// <summary>Picoseconds since the start of the run.</summary>
    public long Picoseconds => _ps;

    /// <summary>The start of the run.</summary>
    public static SimTime Zero => default;

    /// <summary>The last representable instant.</summary>
    public static SimTime MaxValue => new(long.MaxValue);

    /// <summary>Whole nanoseconds since the start, rounded down.</summary>
    public long NanosecondsFloor => _ps / 1_000;

    public static SimTime FromPicoseconds(long ps)
    {
        if (ps < 0)
        {
            ThrowBeforeStart(ps);
        }
        return new SimTime(ps);
    }

    // Out of line, so that callers which inline FromPicoseconds (the engine's and the
    // interpreter's per-event paths) carry no string-formatting state in their frames.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void ThrowBeforeStart(long ps) =>
        throw new OverflowException($"SimTime cannot be before the start of the run ({ps} ps).");

    /// <summary>For hot paths whose value is non-negative by construction (checked in Debug builds only).</summary>
    internal static SimTime FromPicosecondsTrusted(long ps)
    {
        System.Diagnostics.Debug.Assert(ps >= 0);
        return new SimTime(ps);
    }

    /// <summary>The instant that lies <paramref name="sinceStart"/> after the start.</summary>
    public static SimTime FromDuration(Duration sinceStart) => FromPicoseconds(sinceStart.Picoseconds);

    /// <summary>Time since the start, as a span.</summary>
    public Duration SinceStart => Duration.FromPicoseconds(_ps);

    public static SimTime operator +(SimTime t, Duration d) => FromPicoseconds(checked(t._ps + d.Picoseconds));
    public static SimTime operator -(SimTime t, Duration d) => FromPicoseconds(checked(t._ps - d.Picoseconds));
    public static Duration operator -(SimTime a, SimTime b) => Duration.FromPicoseconds(checked(a._ps - b._ps));

    public static bool operator ==(SimTime a, SimTime b) => a._ps == b._ps;
    public static bool operator !=(SimTime a, SimTime b) => a._ps != b._ps;
    public static bool operator <(SimTime a, SimTime b) => a._ps < b._ps;
    public static bool operator >(SimTime a, SimTime b) => a._ps > b._ps;
    public static bool operator <=(SimTime a, SimTime b) => a._ps <= b._ps;
    public static bool operator >=(SimTime a, SimTime b) => a._ps >= b._ps;

    public static SimTime Max(SimTime a, SimTime b) => a._ps >= b._ps ? a : b;
    public static SimTime Min(SimTime a, SimTime b) => a._ps <= b._ps ? a : b;

    public bool Equals(SimTime other) => _ps == other._ps;
    public override bool Equals(object? obj) => obj is SimTime t && Equals(t);
    public override int GetHashCode() => _ps.GetHashCode();
    public int CompareTo(SimTime other) => _ps.CompareTo(other._ps);

    /// <summary>The instant as an exact offset from the start, e.g. <c>t=1.5ms</c>.</summary>
    public override string ToString() => "t=" + QuantityFormat.Duration(_ps);
}

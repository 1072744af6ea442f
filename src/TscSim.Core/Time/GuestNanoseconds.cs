using System.Numerics;

namespace TscSim.Core.Time;

/// <summary>
/// A guest clock reading in integer nanoseconds (what <c>clock_gettime</c> returns in a guest),
/// as opposed to the simulator's true <see cref="SimTime"/>. Signed: a badly behaved clock may
/// read below zero. Default: zero. Arithmetic is checked.
/// </summary>
public readonly struct GuestNanoseconds :
    IEquatable<GuestNanoseconds>, IComparable<GuestNanoseconds>,
    IComparisonOperators<GuestNanoseconds, GuestNanoseconds, bool>
{
    private readonly long _ns;

    public GuestNanoseconds(long nanoseconds) => _ns = nanoseconds;

    /// <summary>The reading in nanoseconds.</summary>
    public long Nanoseconds => _ns;

    /// <summary>Signed difference of two readings in nanoseconds.</summary>
    public static long operator -(GuestNanoseconds a, GuestNanoseconds b) => checked(a._ns - b._ns);

    /// <summary>
    /// Skew of this reading against true time: reading − true time, in picoseconds (exact; the
    /// guest's nanoseconds are scaled up, true time is not rounded).
    /// </summary>
    public Duration SkewAgainst(SimTime trueTime) =>
        Duration.FromPicoseconds(checked(_ns * 1_000L - trueTime.Picoseconds));

    public static bool operator ==(GuestNanoseconds a, GuestNanoseconds b) => a._ns == b._ns;
    public static bool operator !=(GuestNanoseconds a, GuestNanoseconds b) => a._ns != b._ns;
    public static bool operator <(GuestNanoseconds a, GuestNanoseconds b) => a._ns < b._ns;
    public static bool operator >(GuestNanoseconds a, GuestNanoseconds b) => a._ns > b._ns;
    public static bool operator <=(GuestNanoseconds a, GuestNanoseconds b) => a._ns <= b._ns;
    public static bool operator >=(GuestNanoseconds a, GuestNanoseconds b) => a._ns >= b._ns;

    public bool Equals(GuestNanoseconds other) => _ns == other._ns;
    public override bool Equals(object? obj) => obj is GuestNanoseconds g && Equals(g);
    public override int GetHashCode() => _ns.GetHashCode();
    public int CompareTo(GuestNanoseconds other) => _ns.CompareTo(other._ns);

    public override string ToString() => _ns.ToString(System.Globalization.CultureInfo.InvariantCulture) + "ns(guest)";
}

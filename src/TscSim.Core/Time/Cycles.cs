using System.Numerics;

namespace TscSim.Core.Time;

/// <summary>
/// A signed count of clock cycles or counter ticks (of a core clock, a TSC, a platform timer).
/// Kept apart from <see cref="Duration"/> so cycles and picoseconds never mix by accident
/// (gem5's <c>Cycles</c> vs <c>Tick</c>); turn one into the other only through a
/// <see cref="Frequency"/>. Default: zero. Arithmetic is checked.
/// </summary>
public readonly struct Cycles :
    IEquatable<Cycles>, IComparable<Cycles>, IComparisonOperators<Cycles, Cycles, bool>
{
    private readonly long _count;

    public Cycles(long count) => _count = count;

    /// <summary>The number of cycles.</summary>
    public long Count => _count;

    public static Cycles Zero => default;

    public static Cycles operator +(Cycles a, Cycles b) => new(checked(a._count + b._count));
    public static Cycles operator -(Cycles a, Cycles b) => new(checked(a._count - b._count));
    public static Cycles operator -(Cycles a) => new(checked(-a._count));
    public static Cycles operator *(Cycles a, long k) => new(checked(a._count * k));
    public static Cycles operator *(long k, Cycles a) => new(checked(a._count * k));

    /// <summary>How long these cycles last at <paramref name="f"/>, rounded down to a picosecond.</summary>
    public static Duration operator /(Cycles c, Frequency f) => f.DurationOf(c);

    public static bool operator ==(Cycles a, Cycles b) => a._count == b._count;
    public static bool operator !=(Cycles a, Cycles b) => a._count != b._count;
    public static bool operator <(Cycles a, Cycles b) => a._count < b._count;
    public static bool operator >(Cycles a, Cycles b) => a._count > b._count;
    public static bool operator <=(Cycles a, Cycles b) => a._count <= b._count;
    public static bool operator >=(Cycles a, Cycles b) => a._count >= b._count;

    public bool Equals(Cycles other) => _count == other._count;
    public override bool Equals(object? obj) => obj is Cycles c && Equals(c);
    public override int GetHashCode() => _count.GetHashCode();
    public int CompareTo(Cycles other) => _count.CompareTo(other._count);

    /// <summary>E.g. <c>1200cycles</c>, readable by <see cref="Quantity.ParseCycles"/>.</summary>
    public override string ToString() => _count.ToString(System.Globalization.CultureInfo.InvariantCulture) + "cycles";
}

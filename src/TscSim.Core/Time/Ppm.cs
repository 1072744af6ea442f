using System.Numerics;

namespace TscSim.Core.Time;

/// <summary>
/// A relative frequency error (crystal tolerance, drift) in integer parts per billion, written
/// in scenarios as ppm with up to three decimals (<c>5ppm</c>, <c>-0.125ppm</c>) or as ppb.
/// Positive means faster than nominal. Default: zero. Range: ±10^9 ppb is enforced where it is
/// applied (a clock cannot run backwards).
/// </summary>
public readonly struct Ppm :
    IEquatable<Ppm>, IComparable<Ppm>, IComparisonOperators<Ppm, Ppm, bool>
{
    /// <summary>Parts per billion in one part per million.</summary>
    public const long PpbPerPpm = 1_000;

    private readonly long _ppb;

    private Ppm(long ppb) => _ppb = ppb;

    /// <summary>The error in parts per billion.</summary>
    public long PartsPerBillion => _ppb;

    public static Ppm Zero => default;

    public static Ppm FromPartsPerBillion(long ppb) => new(ppb);
    public static Ppm FromPartsPerMillion(long ppm) => new(checked(ppm * PpbPerPpm));

    public static Ppm operator +(Ppm a, Ppm b) => new(checked(a._ppb + b._ppb));
    public static Ppm operator -(Ppm a, Ppm b) => new(checked(a._ppb - b._ppb));
    public static Ppm operator -(Ppm a) => new(checked(-a._ppb));

    public static bool operator ==(Ppm a, Ppm b) => a._ppb == b._ppb;
    public static bool operator !=(Ppm a, Ppm b) => a._ppb != b._ppb;
    public static bool operator <(Ppm a, Ppm b) => a._ppb < b._ppb;
    public static bool operator >(Ppm a, Ppm b) => a._ppb > b._ppb;
    public static bool operator <=(Ppm a, Ppm b) => a._ppb <= b._ppb;
    public static bool operator >=(Ppm a, Ppm b) => a._ppb >= b._ppb;

    public bool Equals(Ppm other) => _ppb == other._ppb;
    public override bool Equals(object? obj) => obj is Ppm p && Equals(p);
    public override int GetHashCode() => _ppb.GetHashCode();
    public int CompareTo(Ppm other) => _ppb.CompareTo(other._ppb);

    /// <summary>E.g. <c>5ppm</c> or <c>-0.125ppm</c>, readable by <see cref="Quantity.ParsePpm"/>.</summary>
    public override string ToString() => QuantityFormat.Decimal(_ppb, 3) + "ppm";
}

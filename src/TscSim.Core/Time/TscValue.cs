namespace TscSim.Core.Time;

/// <summary>
/// A 64-bit time-stamp counter value as RDTSC returns it (EDX:EAX). Arithmetic wraps modulo
/// 2^64 exactly like the hardware counter and the VMX/SVM offset addition; it is the one time
/// type that wraps on purpose. Default: zero.
/// </summary>
public readonly struct TscValue :
    IEquatable<TscValue>, IComparable<TscValue>, System.Numerics.IEqualityOperators<TscValue, TscValue, bool>
{
    private readonly ulong _raw;

    public TscValue(ulong raw) => _raw = raw;

    /// <summary>The raw unsigned counter value.</summary>
    public ulong Raw => _raw;

    /// <summary>The low 32 bits (what RDTSC puts in EAX).</summary>
    public uint Low => unchecked((uint)_raw);

    /// <summary>The high 32 bits (what RDTSC puts in EDX).</summary>
    public uint High => unchecked((uint)(_raw >> 32));

    /// <summary>Adds a signed tick count, wrapping modulo 2^64 (as the hardware offset add does).</summary>
    public static TscValue operator +(TscValue v, long ticks) => new(unchecked(v._raw + (ulong)ticks));

    /// <summary>Subtracts a signed tick count, wrapping modulo 2^64.</summary>
    public static TscValue operator -(TscValue v, long ticks) => new(unchecked(v._raw - (ulong)ticks));

    /// <summary>
    /// The signed distance <c>a − b</c> in ticks, computed modulo 2^64 and read as two's
    /// complement (how a guest compares two TSC samples): a later sample across a wrap still
    /// gives a small positive number.
    /// </summary>
    public static long operator -(TscValue a, TscValue b) => unchecked((long)(a._raw - b._raw));

    public static bool operator ==(TscValue a, TscValue b) => a._raw == b._raw;
    public static bool operator !=(TscValue a, TscValue b) => a._raw != b._raw;

    public bool Equals(TscValue other) => _raw == other._raw;
    public override bool Equals(object? obj) => obj is TscValue v && Equals(v);
    public override int GetHashCode() => _raw.GetHashCode();

    /// <summary>Orders raw unsigned values (not wrap-aware: use subtraction for that).</summary>
    public int CompareTo(TscValue other) => _raw.CompareTo(other._raw);

    public override string ToString() => "0x" + _raw.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
}

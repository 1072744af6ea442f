using System.Runtime.CompilerServices;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// Maps cycles executed since a slice began to true time, exactly:
/// t(k) = t0 + ⌊(c + k × 10^15) / f_mHz⌋ ps (floor, as every conversion in TscSim), where the
/// carry c &lt; f is the sub-picosecond phase the previous slice ended with, so cutting execution
/// into slices never shifts an instant (at a constant frequency); and back:
/// the first k whose instant reaches a horizon. Evaluations at increasing k advance with 64-bit
/// arithmetic (quotient and remainder kept incrementally, the last step's increments cached),
/// so a loop that reads time at a fixed stride pays one compare, not a 128-bit division.
/// </summary>
internal struct SliceClock
{
    private const long Unit = ExactMath.PicosecondMillihertzPerCycle;
    private const long MaxFastStep = 1 << 19; // dk × (10^15 mod f) must fit in 63 bits for f < 2^44 mHz

    private long _t0;
    private long _f;
    private long _a;   // ⌊10^15 / f⌋: whole ps per cycle
    private long _b;   // 10^15 mod f
    private ulong _inv; // ⌊(2^64 − 1) / f⌋: division by f as a multiply (DivideByFrequency)
    private long _k;   // cycles at the last evaluation
    private long _q;   // ⌊k × 10^15 / f⌋
    private long _r;   // k × 10^15 mod f
    private long _stepK, _stepQ, _stepR;

    /// <summary>
    /// Starts a slice at <paramref name="t0"/> on a core clocked at <paramref name="frequency"/>,
    /// <paramref name="carry"/>/f of a picosecond past <paramref name="t0"/> (0 ≤ carry &lt; f).
    /// </summary>
    public void Start(SimTime t0, Frequency frequency, long carry = 0) => Start(t0, new Scale(frequency), carry);

    /// <summary>
    /// A frequency's constants for the clock (three divisions), computed once and reused by every
    /// slice at that frequency (<see cref="Start(SimTime, in Scale, long)"/>).
    /// </summary>
    internal readonly struct Scale
    {
        public readonly long F, A, B;
        public readonly ulong Inv;

        public Scale(Frequency frequency)
        {
            if (frequency <= Frequency.Zero || frequency.Millihertz >= 1L << 44)
            {
                throw new ArgumentOutOfRangeException(nameof(frequency), frequency, "A core frequency must be positive and below 17.5 GHz (2^44 mHz).");
            }
            F = frequency.Millihertz;
            A = Unit / F;
            B = Unit % F;
            Inv = ulong.MaxValue / (ulong)F;
        }
    }

    /// <summary>Starts a slice with a frequency's precomputed <paramref name="scale"/>.</summary>
    public void Start(SimTime t0, in Scale scale, long carry = 0)
    {
        _t0 = t0.Picoseconds;
        _f = scale.F;
        _a = scale.A;
        _b = scale.B;
        _inv = scale.Inv;
        if (carry < 0 || carry >= _f)
        {
            ThrowBadCarry(carry);
        }
        _k = _q = 0;
        _r = carry;
        _carry = carry;
        _stepK = -1;
    }

    private long _carry;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadCarry(long carry) =>
        throw new ArgumentOutOfRangeException(nameof(carry), carry, "The carry must be below the frequency.");

    /// <summary>The sub-picosecond phase after the last evaluation, to carry into the next slice.</summary>
    public readonly long Remainder => _r;

    /// <summary>The slice's start, in ps.</summary>
    public readonly long StartPs => _t0;

    /// <summary>The instant (ps) at which <paramref name="k"/> cycles of the slice have elapsed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long TimeAt(long k)
    {
        unchecked
        {
            long dk = k - _k;
            if (dk != _stepK)
            {
                if ((ulong)dk > MaxFastStep)
                {
                    return Reseed(k);
                }
                long x = dk * _b;
                long q = DivideByFrequency(x, out long r);
                _stepK = dk;
                _stepQ = dk * _a + q;
                _stepR = r;
            }
            _q += _stepQ;
            _r += _stepR;
            if (_r >= _f)
            {
                _q++;
                _r -= _f;
            }
            _k = k;
            return _t0 + _q;
        }
    }

    /// <summary>
    /// ⌊x / f⌋ and x mod f for 0 ≤ x &lt; 2^63, exactly, without a division: with
    /// inv = ⌊(2^64 − 1) / f⌋, q̂ = ⌊x × inv / 2^64⌋ is q or q − 1 (x/f − q̂ &lt; 1 + x/2^64 &lt; 2),
    /// and one compare corrects it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private readonly long DivideByFrequency(long x, out long remainder)
    {
        unchecked
        {
            ulong q = Math.BigMul((ulong)x, _inv, out _);
            long r = x - (long)q * _f;
            if (r >= _f)
            {
                q++;
                r -= _f;
            }
            remainder = r;
            return (long)q;
        }
    }

    private long Reseed(long k)
    {
        if (k < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(k), k, "Cycles within a slice cannot be negative.");
        }
        Int128 n = (Int128)k * Unit + _carry;
        Int128 q = n / _f;
        _k = k;
        _q = (long)q;
        _r = (long)(n - q * _f);
        _stepK = -1;
        return checked(_t0 + _q);
    }

    /// <summary>The smallest k with t(k) ≥ <paramref name="horizonPs"/>: private work may run while k is below it.</summary>
    public readonly long CyclesUntil(long horizonPs)
    {
        if (horizonPs == long.MaxValue)
        {
            return long.MaxValue / 2;
        }
        long span = horizonPs - _t0;
        if (span <= 0)
        {
            return 0;
        }
        // k = ⌈(span × f − carry) / 10^15⌉ = ⌊(span × f − carry + 10^15 − 1) / 10^15⌋, the
        // numerator positive (carry < f ≤ span × f) and below 2^107 (span < 2^63, f < 2^44).
        UInt128 n = (UInt128)(ulong)span * (ulong)_f - (ulong)_carry + (Unit - 1);
        ulong hi = unchecked((ulong)(n >> 64));
        if (hi >= DivisorOdd << 15)
        {
            return long.MaxValue / 2; // k ≥ 2^64
        }
        ulong k = DivideByUnit(hi, unchecked((ulong)n));
        return k > long.MaxValue / 2 ? long.MaxValue / 2 : (long)k;
    }

    private const ulong DivisorOdd = 30_517_578_125; // 5^15: 10^15 = 2^15 × 5^15

    /// <summary>
    /// ⌊(hi × 2^64 + lo) / 10^15⌋ for a quotient below 2^64 (hi &lt; 2^15 × 5^15), exactly, in
    /// 64-bit steps instead of a 128-bit division (a loop in software): ⌊n / (2^15 × 5^15)⌋ =
    /// ⌊⌊n / 2^15⌋ / 5^15⌋, and the division by 5^15 (&lt; 2^35) is long division in digits of
    /// 28, 28 and 8 bits, each a 64-bit division by a constant (which the JIT makes a multiply).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong DivideByUnit(ulong hi, ulong lo)
    {
        unchecked
        {
            ulong mLo = (lo >> 15) | (hi << 49);
            ulong r = hi >> 15; // < 5^15, so every partial dividend below fits in 63 bits
            ulong x = (r << 28) | (mLo >> 36);
            ulong d1 = x / DivisorOdd;
            r = x - d1 * DivisorOdd;
            x = (r << 28) | ((mLo >> 8) & 0xFFF_FFFF);
            ulong d2 = x / DivisorOdd;
            r = x - d2 * DivisorOdd;
            x = (r << 8) | (mLo & 0xFF);
            ulong d3 = x / DivisorOdd;
            return (d1 << 36) | (d2 << 8) | d3;
        }
    }
}

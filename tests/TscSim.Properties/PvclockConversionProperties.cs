using System.Numerics;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TscSim.Core.Abi;
using TscSim.Core.Virtualization;

namespace TscSim.Properties;

/// <summary>
/// pvclock's fixed-point conversion (<see cref="Pvclock.GetTimeScale"/>, <see cref="PvclockAbi.ScaleDelta"/>)
/// against exact rational arithmetic.
/// </summary>
/// <remarks>
/// <para>The analytic bound. <c>GetTimeScale(scaled, base)</c> returns (shift, mul) standing for the
/// ratio s = mul · 2^shift / 2^32 ≈ r = scaled / base. Its steps lose, relative to r: under 2^−31 in
/// the floor of mul (mul ≥ 2^31); under 1 / min(scaled, 2^31) when base is shifted right (the
/// shifted value is at least that large when the loop stops), and under 2^−30 in all when scaled is
/// halved (only while it is ≥ 2^31). Call their sum ε. <c>ScaleDelta(d)</c> then floors twice:
/// the shifted delta (losing under mul / 2^32 &lt; 1 ns) and the product (under 1 ns). So for every
/// delta d, |ScaleDelta(d) − d · r| ≤ d · r · ε + 2. For kvm-clock (scaled = 10^9) ε ≤ 2^−31 + 10^−9
/// ≈ 1.5 ns per second of TSC.</para>
/// </remarks>
public class PvclockConversionProperties
{
    /// <summary>A rate (Hz) and a delta (ticks): rates from 1 MHz to 10 GHz, at kHz resolution as KVM passes them, or any Hz.</summary>
    public sealed record Conversion(ulong Hz, ulong Delta)
    {
        public override string ToString() => $"{Hz} Hz, delta {Delta}";
    }

    private static Arbitrary<Conversion> Conversions()
    {
        Gen<ulong> hz = Gen.Frequency(
            (3, Gen.Choose(1_000, 10_000_000).Select(khz => (ulong)khz * 1_000)),
            (1, Gen.Choose(1_000_000, int.MaxValue).Select(x => (ulong)x * 4 + 3)), // odd rates, up to ~8.6 GHz
            (1, Gen.Elements(1_000_000_000UL, 2_000_000_000UL, 2_999_999_000UL, 3_333_000_000UL, 4_294_967_296UL, 10_000_000_000UL)));
        Gen<ulong> delta = Gen.Frequency(
            (2, Gen.Choose(0, 1_000_000).Select(x => (ulong)x)),
            (3, from hi in Gen.Choose(0, 1 << 20) from lo in Gen.Choose(0, int.MaxValue) select ((ulong)(uint)hi << 31) | (uint)lo));
        return Arb.From(from h in hz from d in delta select new Conversion(h, d));
    }

    /// <summary>The relative error bound ε of <see cref="Pvclock.GetTimeScale"/>(scaled, base) (see the class remarks).</summary>
    public static double Epsilon(ulong scaledHz, ulong baseHz)
    {
        double eps = Math.Pow(2, -31);
        if (baseHz > scaledHz * 2 || baseHz >= 1UL << 32)
        {
            eps += 1.0 / Math.Min(scaledHz, 1UL << 31);
        }
        if (scaledHz >= 1UL << 31)
        {
            eps += Math.Pow(2, -30);
        }
        return eps;
    }

    private static Property WithinBound(ulong scaledHz, ulong baseHz, ulong delta)
    {
        var (shift, mul) = Pvclock.GetTimeScale(scaledHz, baseHz);
        ulong got = PvclockAbi.ScaleDelta(delta, mul, shift);
        // |got − delta · scaled / base| ≤ delta · scaled / base · ε + 2, multiplied through by base.
        BigInteger exactTimesBase = (BigInteger)delta * scaledHz;
        BigInteger error = BigInteger.Abs((BigInteger)got * baseHz - exactTimesBase);
        double bound = (double)exactTimesBase * Epsilon(scaledHz, baseHz) + 2.0 * baseHz;
        return ((double)error <= bound * (1 + 1e-12) && mul >= 1u << 31).Label(
            $"shift {shift}, mul {mul}: {got} for exact {(double)exactTimesBase / baseHz:R}, error {(double)error / baseHz:R} > bound {bound / baseHz:R}");
    }

    /// <summary>
    /// kvm-clock's TSC → ns conversion (<c>GetTimeScale(10^9, tsc Hz)</c> then <c>ScaleDelta</c>) is
    /// within delta · ε + 2 ns of the exact delta · 10^9 / Hz, for rates from 1 MHz to 10 GHz and
    /// deltas up to 2^51 ticks.
    /// </summary>
    [CiProperty(MaxTest = 3_000)]
    public Property Pvclock_tsc_to_ns_error_stays_within_its_analytic_bound() =>
        Prop.ForAll(Conversions(), c => WithinBound(1_000_000_000, c.Hz, c.Delta));

    /// <summary>
    /// KVM's ns → guest-cycles conversion (catch-up and TSC matching, <c>GetTimeScale(tsc Hz, 10^9)</c>)
    /// is within its bound too.
    /// </summary>
    [CiProperty(MaxTest = 3_000)]
    public Property Pvclock_ns_to_cycles_error_stays_within_its_analytic_bound() =>
        Prop.ForAll(Conversions(), c => WithinBound(c.Hz, 1_000_000_000, c.Delta));

    /// <summary>For a fixed (shift, mul), a larger delta never converts to fewer ns: kvm-clock is monotonic in the TSC.</summary>
    [CiProperty(MaxTest = 3_000)]
    public Property Pvclock_scale_delta_is_monotonic_in_the_delta() =>
        Prop.ForAll(Conversions(), c =>
        {
            var (shift, mul) = Pvclock.GetTimeScale(1_000_000_000, c.Hz);
            ulong a = PvclockAbi.ScaleDelta(c.Delta, mul, shift), b = PvclockAbi.ScaleDelta(c.Delta + 1, mul, shift);
            return (a <= b).Label($"{a} then {b}");
        });

    /// <summary>
    /// The rate a guest infers from (mul, shift) (<c>pvclock_tsc_khz</c>, how linux-modern
    /// calibrates) is within ε of the rate KVM published, plus the precision lost to a negative
    /// shift (2^−shift kHz) and one kHz of flooring.
    /// </summary>
    [CiProperty(MaxTest = 3_000)]
    public Property Pvclock_tsc_khz_recovers_the_published_rate_within_the_bound() =>
        Prop.ForAll(Arb.From(Gen.Choose(1_000, 10_000_000)), khz =>
        {
            ulong hz = (ulong)khz * 1_000;
            var (shift, mul) = Pvclock.GetTimeScale(1_000_000_000, hz);
            ulong back = PvclockAbi.TscKhz(mul, shift);
            double bound = khz * Epsilon(1_000_000_000, hz) * 1.000001 + (shift < 0 ? Math.Pow(2, -shift) : 1) + 1;
            return (Math.Abs((double)back - khz) <= bound).Label($"shift {shift}, mul {mul}: {back} kHz for {khz} kHz (bound {bound})");
        });
}

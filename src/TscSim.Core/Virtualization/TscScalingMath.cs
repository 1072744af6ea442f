using TscSim.Core.Hardware;
using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>
/// Guest TSC arithmetic shared by both vendors (Linux 6.6 arch/x86/kvm/x86.c: kvm_read_l1_tsc,
/// __scale_tsc, kvm_compute_l1_tsc_offset, set_tsc_khz): the guest TSC is
/// offset + ((host TSC × ratio) &gt;&gt; N) modulo 2^64, with the ratio a fixed-point number with N
/// fraction bits (VMX: N = 48, 64-bit multiplier; SVM: N = 32, 8 integer bits). The ratio for a
/// rate is (1 &lt;&lt; N) × guest kHz / host kHz, rounded down, as KVM's set_tsc_khz computes it.
/// </summary>
public static class TscScalingMath
{
    /// <summary>Fraction bits of <paramref name="kind"/> (0 for none).</summary>
    public static int FractionBits(TscScaling kind) => kind switch
    {
        TscScaling.VmxMultiplier16_48 => 48,
        TscScaling.SvmRatio8_32 => 32,
        _ => 0,
    };

    /// <summary>The largest valid ratio: VMX 0xFFFF_FFFF_FFFF_FFFF; SVM 0xFF_FFFF_FFFF (8.32).</summary>
    public static ulong MaxRatio(TscScaling kind) => kind switch
    {
        TscScaling.VmxMultiplier16_48 => ulong.MaxValue,
        TscScaling.SvmRatio8_32 => 0x0000_00FF_FFFF_FFFFUL,
        _ => 0,
    };

    /// <summary>The ratio meaning 1.0 (the identity).</summary>
    public static ulong DefaultRatio(TscScaling kind) => 1UL << FractionBits(kind);

    /// <summary>
    /// The ratio for running a guest at <paramref name="guestKhz"/> on a host TSC of
    /// <paramref name="hostKhz"/>, or null when it is zero or not below the maximum (KVM rejects both).
    /// </summary>
    public static ulong? RatioFor(TscScaling kind, long guestKhz, long hostKhz)
    {
        if (kind == TscScaling.None || guestKhz <= 0 || hostKhz <= 0)
        {
            return null;
        }
        UInt128 ratio = ((UInt128)1 << FractionBits(kind)) * (ulong)guestKhz / (ulong)hostKhz;
        if (ratio == 0 || ratio >= MaxRatio(kind))
        {
            return null;
        }
        return (ulong)ratio;
    }

    /// <summary>(<paramref name="hostTsc"/> × <paramref name="ratio"/>) &gt;&gt; N, the scaled TSC (128-bit product; identity at the default ratio).</summary>
    public static ulong Scale(ulong hostTsc, ulong ratio, int fractionBits) =>
        fractionBits == 0 ? hostTsc : unchecked((ulong)(((UInt128)hostTsc * ratio) >> fractionBits));

    /// <summary>The guest TSC: offset + scaled host TSC, modulo 2^64 (the VMX offset is a signed add).</summary>
    public static ulong GuestTsc(ulong hostTsc, long offset, ulong ratio, int fractionBits) =>
        unchecked(Scale(hostTsc, ratio, fractionBits) + (ulong)offset);

    /// <summary>
    /// KVM's tolerance window: [host × (10^6 − ppm) / 10^6, host × (10^6 + ppm) / 10^6] kHz
    /// (integer division; host 3,000,000 kHz and 250 ppm give [2,999,250, 3,000,750]).
    /// </summary>
    public static (long Low, long High) ToleranceWindow(long hostKhz, long tolerancePpm) =>
        (hostKhz * (1_000_000 - tolerancePpm) / 1_000_000, hostKhz * (1_000_000 + tolerancePpm) / 1_000_000);

    /// <summary>Whether <paramref name="guestKhz"/> lies inside the tolerance window of <paramref name="hostKhz"/>.</summary>
    public static bool WithinTolerance(long guestKhz, long hostKhz, long tolerancePpm)
    {
        var (lo, hi) = ToleranceWindow(hostKhz, tolerancePpm);
        return guestKhz >= lo && guestKhz <= hi;
    }
}

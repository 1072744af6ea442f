namespace TscSim.Core.Virtualization;

/// <summary>
/// KVM's <c>kvm_get_time_scale</c> (arch/x86/kvm/x86.c), the host side of the pvclock
/// arithmetic, reproduced bit for bit: the truncation of the 32-bit multiplier and of a negative
/// shift is a real, reproducible source of skew (about 1 ns per second of TSC at 3 GHz). The
/// record it fills and the guest's side (<c>pvclock_scale_delta</c>, <c>pvclock_tsc_khz</c>) are
/// <see cref="Abi.PvclockAbi"/>.
/// </summary>
public static class Pvclock
{
    /// <summary>
    /// KVM's <c>kvm_get_time_scale(scaled_hz, base_hz)</c>: the (shift, mul) such that
    /// scaled ≈ ((base ticks shifted by shift) × mul) &gt;&gt; 32, with mul in [2^31, 2^32).
    /// TSC to ns for kvmclock is <c>GetTimeScale(10^9, tsc_hz)</c>; ns to guest cycles (catch-up,
    /// matching) is <c>GetTimeScale(tsc_hz, 10^9)</c>.
    /// </summary>
    public static (sbyte Shift, uint Mul) GetTimeScale(ulong scaledHz, ulong baseHz)
    {
        if (scaledHz == 0 || baseHz == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(baseHz), "Both rates must be positive.");
        }
        int shift = 0;
        ulong tps64 = baseHz;
        ulong scaled64 = scaledHz;
        while (tps64 > scaled64 * 2 || tps64 >= 1UL << 32)
        {
            tps64 >>= 1;
            shift--;
        }
        uint tps32 = (uint)tps64;
        while (tps32 <= scaled64 || scaled64 >= 1UL << 32)
        {
            if (scaled64 >= 1UL << 32 || (tps32 & 0x8000_0000u) != 0)
            {
                scaled64 >>= 1;
            }
            else
            {
                tps32 <<= 1;
            }
            shift++;
        }
        // div_frac: a 64/32 divide whose quotient fits in 32 bits because scaled64 < tps32.
        uint mul = (uint)((scaled64 << 32) / tps32);
        return ((sbyte)shift, mul);
    }
}

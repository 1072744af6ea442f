namespace TscSim.Core.Virtualization;

/// <summary>
/// The pvclock ABI shared by KVM and Xen (DOMAIN §1): <c>struct pvclock_vcpu_time_info</c>
/// (32 bytes: version u32 @0, tsc_timestamp u64 @8, system_time u64 @16, tsc_to_system_mul u32
/// @24, tsc_shift s8 @28, flags u8 @29), its read formula, and KVM's
/// <c>kvm_get_time_scale</c>, reproduced bit for bit: the truncation of the 32-bit multiplier
/// and of a negative shift is a real, reproducible source of skew (about 1 ns per second of
/// TSC at 3 GHz).
/// </summary>
public static class Pvclock
{
    /// <summary>Flag bit 0: readings are monotonic across vCPUs (the guest may skip its global guard).</summary>
    public const byte TscStableBit = 1 << 0;

    /// <summary>Flag bit 1: the host paused the vCPU.</summary>
    public const byte GuestStoppedBit = 1 << 1;

    /// <summary>Byte offsets of the fields in the 32-byte structure.</summary>
    public const int VersionOffset = 0, TscTimestampOffset = 8, SystemTimeOffset = 16, MulOffset = 24, ShiftOffset = 28, FlagsOffset = 29;

    /// <summary>The size of one vCPU's structure.</summary>
    public const int Size = 32;

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

    /// <summary><c>pvclock_scale_delta</c>: shift the delta, then bits 32..95 of delta × mul.</summary>
    public static ulong ScaleDelta(ulong delta, uint mul, sbyte shift)
    {
        unchecked
        {
            delta = shift < 0 ? delta >> -shift : delta << shift;
            return (ulong)(((UInt128)delta * mul) >> 32);
        }
    }

    /// <summary><c>pvclock_tsc_khz</c>: the TSC rate a guest infers from (mul, shift).</summary>
    public static ulong TscKhz(uint mul, sbyte shift)
    {
        ulong khz = (1_000_000UL << 32) / mul;
        return shift < 0 ? khz << -shift : khz >> shift;
    }
}

/// <summary>One published <c>pvclock_vcpu_time_info</c>.</summary>
public readonly record struct PvclockTimeInfo(uint Version, ulong TscTimestamp, ulong SystemTime, uint Mul, sbyte Shift, byte Flags)
{
    /// <summary>The guest's read: system_time + scale_delta(tsc − tsc_timestamp) (u64, wrapping).</summary>
    public ulong Read(ulong tsc) => unchecked(SystemTime + Pvclock.ScaleDelta(tsc - TscTimestamp, Mul, Shift));
}

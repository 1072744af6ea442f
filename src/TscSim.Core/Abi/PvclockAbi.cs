using System.Buffers.Binary;

namespace TscSim.Core.Abi;

/// <summary>
/// <c>struct pvclock_vcpu_time_info</c> and its flag bits, as Linux's
/// <c>arch/x86/include/asm/pvclock-abi.h</c> defines them for the host that writes the record
/// and the guest that reads it (KVM and Xen share it): 32 packed bytes per vCPU, little-endian.
/// Both the hypervisor layer (<c>kvm_setup_guest_pvclock</c>) and the guest kernel read and
/// write records only through this class.
/// </summary>
public static class PvclockAbi
{
    /// <summary>sizeof(struct pvclock_vcpu_time_info): 32 bytes ("/* 32 bytes */" in pvclock-abi.h).</summary>
    public const int Size = 32;

    /// <summary>u32 version @0: odd while the host is writing (the guest retries).</summary>
    public const int VersionOffset = 0;

    /// <summary>u64 tsc_timestamp @8 (after u32 pad0): the guest TSC the record was taken at.</summary>
    public const int TscTimestampOffset = 8;

    /// <summary>u64 system_time @16: kvmclock ns at <see cref="TscTimestampOffset"/>.</summary>
    public const int SystemTimeOffset = 16;

    /// <summary>u32 tsc_to_system_mul @24: ns per TSC tick as a 0.32 fixed-point fraction (after the shift).</summary>
    public const int MulOffset = 24;

    /// <summary>s8 tsc_shift @28: the TSC delta is shifted by this before the multiply.</summary>
    public const int ShiftOffset = 28;

    /// <summary>u8 flags @29 (then u8 pad[2]).</summary>
    public const int FlagsOffset = 29;

    /// <summary>PVCLOCK_TSC_STABLE_BIT (1 &lt;&lt; 0): readings are monotonic across vCPUs (the guest may skip its global guard).</summary>
    public const byte TscStableBit = 1 << 0;

    /// <summary>PVCLOCK_GUEST_STOPPED (1 &lt;&lt; 1): the host paused the vCPU; the guest touches its watchdogs and clears the bit.</summary>
    public const byte GuestStoppedBit = 1 << 1;

    /// <summary>
    /// The bit this model uses to tell guests the TSC is trapped. The 2011 proposal was never
    /// merged, so no bit was ever assigned; bits 0–2 are TSC_STABLE, GUEST_STOPPED and
    /// COUNTS_FROM_ZERO (pvclock-abi.h) and bit 7 is kvm-unit-tests' RAW_CYCLE, so the model
    /// takes the first free one: bit 3.
    /// </summary>
    public const byte TscTrappedBit = 1 << 3;

    /// <summary>vCPU <paramref name="vcpu"/>'s record in a pvclock area (one record per vCPU, in order).</summary>
    public static Span<byte> Record(byte[] area, int vcpu) => area.AsSpan(vcpu * Size, Size);

    /// <summary>The record's version field.</summary>
    public static uint ReadVersion(ReadOnlySpan<byte> record) => BinaryPrimitives.ReadUInt32LittleEndian(record[VersionOffset..]);

    /// <summary>Writes the record's version field.</summary>
    public static void WriteVersion(Span<byte> record, uint version) => BinaryPrimitives.WriteUInt32LittleEndian(record[VersionOffset..], version);

    /// <summary>The record's tsc_to_system_mul and tsc_shift (what <c>pvclock_tsc_khz</c> reads).</summary>
    public static (uint Mul, sbyte Shift) ReadScale(ReadOnlySpan<byte> record) =>
        (BinaryPrimitives.ReadUInt32LittleEndian(record[MulOffset..]), unchecked((sbyte)record[ShiftOffset]));

    /// <summary>The whole record.</summary>
    public static PvclockTimeInfo Read(ReadOnlySpan<byte> record)
    {
        var (mul, shift) = ReadScale(record);
        return new PvclockTimeInfo(ReadVersion(record), BinaryPrimitives.ReadUInt64LittleEndian(record[TscTimestampOffset..]),
            BinaryPrimitives.ReadUInt64LittleEndian(record[SystemTimeOffset..]), mul, shift, record[FlagsOffset]);
    }

    /// <summary>Writes every field of <paramref name="info"/> (the version too; the caller owns the version protocol).</summary>
    public static void Write(Span<byte> record, in PvclockTimeInfo info)
    {
        WriteVersion(record, info.Version);
        BinaryPrimitives.WriteUInt64LittleEndian(record[TscTimestampOffset..], info.TscTimestamp);
        BinaryPrimitives.WriteUInt64LittleEndian(record[SystemTimeOffset..], info.SystemTime);
        BinaryPrimitives.WriteUInt32LittleEndian(record[MulOffset..], info.Mul);
        record[ShiftOffset] = unchecked((byte)info.Shift);
        record[FlagsOffset] = info.Flags;
    }

    /// <summary>Clears <paramref name="bit"/> in the record's flags; true if it was set.</summary>
    public static bool ClearFlag(Span<byte> record, byte bit)
    {
        if ((record[FlagsOffset] & bit) == 0)
        {
            return false;
        }
        record[FlagsOffset] &= unchecked((byte)~bit);
        return true;
    }

    /// <summary>
    /// <c>pvclock_scale_delta</c> (arch/x86/include/asm/pvclock.h, shared by host and guest):
    /// shift the delta, then bits 32..95 of delta × mul.
    /// </summary>
    public static ulong ScaleDelta(ulong delta, uint mul, sbyte shift)
    {
        unchecked
        {
            delta = shift < 0 ? delta >> -shift : delta << shift;
            return (ulong)(((UInt128)delta * mul) >> 32);
        }
    }

    /// <summary>
    /// <c>pvclock_tsc_khz</c> (arch/x86/kernel/pvclock.c): the TSC rate a guest infers from
    /// (mul, shift): (10^6 &lt;&lt; 32) / mul, shifted back by tsc_shift.
    /// </summary>
    public static ulong TscKhz(uint mul, sbyte shift)
    {
        ulong khz = (1_000_000UL << 32) / mul;
        return shift < 0 ? khz << -shift : khz >> shift;
    }
}

/// <summary>One <c>struct pvclock_vcpu_time_info</c> (<see cref="PvclockAbi"/>), as values.</summary>
/// <param name="Version">version: odd while an update is in progress.</param>
/// <param name="TscTimestamp">tsc_timestamp: guest TSC ticks at the record's instant.</param>
/// <param name="SystemTime">system_time: kvmclock nanoseconds at the record's instant.</param>
/// <param name="Mul">tsc_to_system_mul: ns per (shifted) TSC tick, 0.32 fixed point.</param>
/// <param name="Shift">tsc_shift: binary shift applied to the TSC delta first.</param>
/// <param name="Flags">flags: <see cref="PvclockAbi.TscStableBit"/>, <see cref="PvclockAbi.GuestStoppedBit"/>, the model's <see cref="PvclockAbi.TscTrappedBit"/>.</param>
public readonly record struct PvclockTimeInfo(uint Version, ulong TscTimestamp, ulong SystemTime, uint Mul, sbyte Shift, byte Flags)
{
    /// <summary>The guest's read (<c>__pvclock_read_cycles</c>): system_time + scale_delta(tsc − tsc_timestamp) (u64, wrapping).</summary>
    public ulong Read(ulong tsc) => unchecked(SystemTime + PvclockAbi.ScaleDelta(tsc - TscTimestamp, Mul, Shift));
}

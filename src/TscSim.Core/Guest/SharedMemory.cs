namespace TscSim.Core.Guest;

/// <summary>
/// The memory one VM's vCPUs share (<c>section .shared</c>). Every access to it is sequenced
/// in exact true-time order, so what a vCPU reads is what the others wrote before that instant.
/// </summary>
public sealed class SharedMemory(ReadOnlyMemory<byte> initial)
{
    /// <summary>Most vCPUs a VM's pvclock area has room for (KVM's kvm-unit-tests MAX_CPU).</summary>
    public const int MaxPvclockVcpus = 64;

    /// <summary>The bytes, little-endian.</summary>
    internal byte[] Bytes { get; } = initial.ToArray();

    /// <summary>
    /// The pvclock area at <see cref="Isa.GuestAddressMap.PvclockBase"/>: one 32-byte
    /// pvclock_vcpu_time_info per vCPU, written by the hypervisor, read by the guest (each
    /// access sequenced like any shared memory).
    /// </summary>
    internal byte[] Pvclock { get; } = new byte[MaxPvclockVcpus * 32];

    /// <summary>Size in bytes.</summary>
    public int Length => Bytes.Length;

    /// <summary>The qword at <paramref name="address"/> (a guest address in the shared section).</summary>
    public long ReadQword(long address) =>
        System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(Bytes.AsSpan(checked((int)(address - Isa.GuestAddressMap.SharedBase)), 8));

    /// <summary>Writes the qword at <paramref name="address"/> (a guest address in the shared section).</summary>
    public void WriteQword(long address, long value) =>
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(Bytes.AsSpan(checked((int)(address - Isa.GuestAddressMap.SharedBase)), 8), value);
}

using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using TscSim.Core.Isa;

namespace TscSim.Core.Guest;

/// <summary>
/// One vCPU's view of guest memory (docs/model.md "Programs and memory"): its private data
/// section and stack, the VM's shared section and pvclock area, and the platform's MMIO ranges.
/// It maps an address to a byte array and offset, looked up in this order: private, shared,
/// the platform's MMIO, else unmapped; it does not sequence (the interpreter does, by region:
/// Vcpu.Memory.cs). A readonly struct held in a field of <see cref="Vcpu"/>, so an access costs
/// no indirection beyond the vCPU itself and allocates nothing.
/// </summary>
internal readonly struct GuestMemory
{
    private readonly byte[] _private;   // this vCPU's copy of section .data, at GuestAddressMap.PrivateBase
    private readonly byte[] _stack;     // this vCPU's stack, GuestAddressMap.StackSize bytes ending at StackTop
    private readonly byte[] _shared;    // the VM's section .shared, at GuestAddressMap.SharedBase
    private readonly byte[] _pvclock;   // the VM's pvclock area, at GuestAddressMap.PvclockBase
    private readonly IGuestPlatform _platform;

    public GuestMemory(byte[] privateData, SharedMemory shared, IGuestPlatform platform)
    {
        _private = privateData;
        _stack = new byte[GuestAddressMap.StackSize];
        _shared = shared.Bytes;
        _pvclock = shared.Pvclock;
        _platform = platform;
    }

    /// <summary>The lowest address of the stack.</summary>
    private const long StackBase = GuestAddressMap.StackTop - GuestAddressMap.StackSize;

    /// <summary><paramref name="size"/> bytes at <paramref name="addr"/> in the private data section or the stack.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryPrivate(long addr, int size, out byte[] buffer, out int offset)
    {
        unchecked
        {
            long p = addr - GuestAddressMap.PrivateBase;
            if (_private.Length >= size && (ulong)p <= (ulong)(_private.Length - size))
            {
                buffer = _private;
                offset = (int)p;
                return true;
            }
            long st = addr - StackBase;
            if ((ulong)st <= (ulong)(_stack.Length - size))
            {
                buffer = _stack;
                offset = (int)st;
                return true;
            }
            buffer = null!;
            offset = 0;
            return false;
        }
    }

    /// <summary>VM-wide memory: the program's shared section, or the hypervisor-written pvclock area.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryShared(long addr, int size, out byte[] buffer, out int offset)
    {
        unchecked
        {
            long p = addr - GuestAddressMap.SharedBase;
            if (_shared.Length >= size && (ulong)p <= (ulong)(_shared.Length - size))
            {
                buffer = _shared;
                offset = (int)p;
                return true;
            }
            p = addr - GuestAddressMap.PvclockBase;
            if ((ulong)p <= (ulong)(_pvclock.Length - size))
            {
                buffer = _pvclock;
                offset = (int)p;
                return true;
            }
            buffer = null!;
            offset = 0;
            return false;
        }
    }

    /// <summary>Whether <paramref name="addr"/> is a device register of the platform (MMIO).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsMmio(long addr) => _platform.IsMmio(addr);

    /// <summary>A little-endian load of 8, 4 (zero-extended) or 1 (zero-extended) bytes.</summary>
    public static long Read(byte[] buffer, int offset, int size) => size switch
    {
        8 => BinaryPrimitives.ReadInt64LittleEndian(buffer.AsSpan(offset, 8)),
        4 => BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(offset, 4)),
        _ => buffer[offset],
    };

    /// <summary>A little-endian store of the low 8, 4 or 1 bytes of <paramref name="value"/>.</summary>
    public static void Write(byte[] buffer, int offset, int size, long value)
    {
        unchecked
        {
            switch (size)
            {
                case 8: BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(offset, 8), value); break;
                case 4: BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(offset, 4), (uint)value); break;
                default: buffer[offset] = (byte)value; break;
            }
        }
    }
}

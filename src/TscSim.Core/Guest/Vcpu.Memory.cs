using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// Memory instructions: what <see cref="GuestMemory"/> maps, sequenced by region (private
/// first, then shared, then MMIO). Private memory
/// runs eagerly; shared memory (the table's <see cref="SyncKind.IfSharedMemory"/>) runs at its
/// exact instant; MMIO goes to the platform at that instant; anything else is a page fault.
/// </summary>
public sealed partial class Vcpu
{
    /// <summary>A load of <paramref name="size"/> bytes (8, or 4 and 1 zero-extended) at <paramref name="addr"/>.</summary>
    private Step Load(ref Slice sl, in Instruction i, long addr, int size, out long value)
    {
        if (_memory.TryPrivate(addr, size, out byte[] buffer, out int offset))
        {
            value = GuestMemory.Read(buffer, offset, size);
            return Step.Continue;
        }
        if (_memory.TryShared(addr, size, out buffer, out offset))
        {
            if (!SyncReady(ref sl, out _))
            {
                value = 0;
                return Step.Yield;
            }
            value = GuestMemory.Read(buffer, offset, size);
            return Step.Continue;
        }
        if (_memory.IsMmio(addr))
        {
            if (!SyncReady(ref sl, out long t))
            {
                value = 0;
                return Step.Yield;
            }
            PlatformResult pr = Platform.MmioRead(this, addr, size, SimTime.FromPicoseconds(t), out value);
            return Apply(ref sl, in pr, _state.Rip, i.Line, t);
        }
        value = 0;
        return Stop(ref sl, GuestFaultKind.PageFault, _state.Rip, i.Line, $"load of {size} bytes at unmapped address 0x{addr:x}");
    }

    /// <summary>A store of the low <paramref name="size"/> bytes of <paramref name="value"/> at <paramref name="addr"/>.</summary>
    private Step Store(ref Slice sl, in Instruction i, long addr, int size, long value)
    {
        if (_memory.TryPrivate(addr, size, out byte[] buffer, out int offset))
        {
            GuestMemory.Write(buffer, offset, size, value);
            return Step.Continue;
        }
        if (_memory.TryShared(addr, size, out buffer, out offset))
        {
            if (!SyncReady(ref sl, out _))
            {
                return Step.Yield;
            }
            GuestMemory.Write(buffer, offset, size, value);
            return Step.Continue;
        }
        if (_memory.IsMmio(addr))
        {
            if (!SyncReady(ref sl, out long t))
            {
                return Step.Yield;
            }
            PlatformResult pr = Platform.MmioWrite(this, addr, size, value, SimTime.FromPicoseconds(t));
            return Apply(ref sl, in pr, _state.Rip, i.Line, t);
        }
        return Stop(ref sl, GuestFaultKind.PageFault, _state.Rip, i.Line, $"store of {size} bytes at unmapped address 0x{addr:x}");
    }

    private enum AtomicOp { Xchg, Cmpxchg, Xadd }

    /// <summary>A locked read-modify-write on private or shared memory (one instant, indivisible).</summary>
    private Step Atomic(ref Slice sl, in Instruction i, ref CpuState s, long addr, ref long src, AtomicOp op)
    {
        unchecked
        {
            if (_memory.TryPrivate(addr, 8, out byte[] buffer, out int offset))
            {
                // private: no sequencing needed
            }
            else if (_memory.TryShared(addr, 8, out buffer, out offset))
            {
                if (!SyncReady(ref sl, out _))
                {
                    return Step.Yield;
                }
            }
            else
            {
                return Stop(ref sl, GuestFaultKind.PageFault, s.Rip, i.Line,
                    $"locked access at 0x{addr:x}, which is not RAM (atomics on MMIO are not modelled)");
            }
            long old = BinaryPrimitives.ReadInt64LittleEndian(buffer.AsSpan(offset, 8));
            long updated;
            switch (op)
            {
                case AtomicOp.Xchg:
                    updated = src;
                    src = old;
                    break;
                case AtomicOp.Xadd:
                    updated = unchecked(old + src);
                    s.SetAdd(old, src, updated);
                    src = old;
                    break;
                default:
                    ref long rax = ref Unsafe.As<RegisterFile, long>(ref s.Regs);
                    s.SetSub(rax, old, unchecked(rax - old));
                    if (rax == old)
                    {
                        updated = src;
                    }
                    else
                    {
                        updated = old;
                        rax = old;
                    }
                    break;
            }
            BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(offset, 8), updated);
            return Step.Continue;
        }
    }

    private Step Push(ref Slice sl, ref long regs, in Instruction i, long value)
    {
        unchecked
        {
            ref long rsp = ref Unsafe.Add(ref regs, Registers.Rsp);
            long addr = unchecked(rsp - 8);
            if (!_memory.TryPrivate(addr, 8, out byte[] buffer, out int offset))
            {
                return Stop(ref sl, GuestFaultKind.PageFault, _state.Rip, i.Line, $"push to 0x{addr:x}: the stack must be in private memory");
            }
            BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(offset, 8), value);
            rsp = addr;
            return Step.Continue;
        }
    }

    private Step Pop(ref Slice sl, ref long regs, in Instruction i, out long value)
    {
        unchecked
        {
            ref long rsp = ref Unsafe.Add(ref regs, Registers.Rsp);
            if (!_memory.TryPrivate(rsp, 8, out byte[] buffer, out int offset))
            {
                value = 0;
                return Stop(ref sl, GuestFaultKind.PageFault, _state.Rip, i.Line, $"pop from 0x{rsp:x}: the stack must be in private memory");
            }
            value = BinaryPrimitives.ReadInt64LittleEndian(buffer.AsSpan(offset, 8));
            rsp = unchecked(rsp + 8);
            return Step.Continue;
        }
    }
}

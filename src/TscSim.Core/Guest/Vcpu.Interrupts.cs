using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using TscSim.Core.Engine;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// Interrupts (docs/model.md "Interrupts"): pending vectors raised by sources, delivered at
/// instruction boundaries through the IDT <c>lidt</c> loaded, returned from with <c>iretq</c>;
/// <c>hlt</c> waits for the next one; exits taken outside any instruction are charged at the
/// next boundary.
/// </summary>
public sealed partial class Vcpu
{
    private readonly ulong[] _irr = new ulong[4];          // pending vectors, one bit each
    private readonly byte[] _irrSource = new byte[256];    // the source of each pending vector
    private readonly long[] _delivered = new long[4];      // by InterruptSource
    private int _pendingInterrupts;
    private long _idtr = -1;                               // IDT base from lidt; -1 = none
    private List<IInterruptSource>? _sources;
    private long _deferredExitCycles;
    private int _deferredExits;

    /// <summary>Interrupt frame size: RIP, the model's work slot (where x86 keeps CS), RFLAGS, RSP, SS.</summary>
    public const int InterruptFrameBytes = 40;

    /// <summary>Waiting in <c>hlt</c> for the next interrupt (IF = 1 and a source armed).</summary>
    public bool HaltWaiting { get; private set; }

    /// <summary>The IDT base <c>lidt</c> loaded, or -1.</summary>
    public long IdtBase => _idtr;

    /// <summary>Interrupts pending (raised, not yet delivered).</summary>
    public int PendingInterrupts => _pendingInterrupts;

    /// <summary>Interrupts delivered from <paramref name="source"/>.</summary>
    public long InterruptsDelivered(InterruptSource source) => _delivered[(int)source];

    /// <summary>The vCPU's local APIC timer, created by its platform on the first APIC access (null until then).</summary>
    public LocalApicTimer? Lapic { get; set; }

    /// <summary>Whether the vCPU is in guest mode (running or runnable), as opposed to halted, waiting or paused.</summary>
    public bool InGuestMode => !HaltWaiting && !Halted && !Paused && !KernelWaiting;

    /// <inheritdoc />
    public void AttachInterruptSource(IInterruptSource source) => (_sources ??= []).Add(source);

    /// <inheritdoc />
    public void RaiseInterrupt(int vector, InterruptSource source, SimTime at)
    {
        if ((uint)vector > 255)
        {
            throw new ArgumentOutOfRangeException(nameof(vector), vector, "A vector is 0..255.");
        }
        if (Halted)
        {
            return;
        }
        ref ulong word = ref _irr[vector >> 6];
        ulong bit = 1UL << (vector & 63);
        if ((word & bit) == 0)
        {
            word |= bit;
            _pendingInterrupts++;
        }
        _irrSource[vector] = (byte)source;
        if (HaltWaiting)
        {
            HaltWaiting = false;
            if (!Paused)
            {
                long t = Math.Max(at.Picoseconds, LocalTime.Picoseconds);
                LocalTime = SimTime.FromPicoseconds(t);
                _executor.ScheduleResume(this, t);
            }
        }
    }

    /// <summary>
    /// An exit taken outside any instruction (a host interrupt, the preemption timer) at an
    /// instant the vCPU is not executing: its cycles are charged at the vCPU's next
    /// instruction boundary, which is where the guest observes it.
    /// </summary>
    public void ChargeExit(long cycles)
    {
        _deferredExitCycles = checked(_deferredExitCycles + cycles);
        _deferredExits++;
    }

    /// <summary><c>hlt</c> retired: wait for an interrupt (IF = 1 and a source that can raise one), take a pending one, or stop for good.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private Step HaltOrWait(ref Slice sl)
    {
        if (_state.InterruptFlag)
        {
            if (_pendingInterrupts != 0)
            {
                sl.YieldAt = sl.Clock.TimeAt(sl.K);
                return Step.Yield;
            }
            if (_sources is not null && _sources.Exists(x => x.Armed))
            {
                HaltWaiting = true;
                return Step.Stop;
            }
        }
        Halted = true;
        return Step.Stop;
    }

    private void ChargeDeferredExits(ref Slice sl)
    {
        sl.K += _deferredExitCycles;
        sl.Exit += _deferredExitCycles;
        sl.Exits += _deferredExits;
        _deferredExitCycles = 0;
        _deferredExits = 0;
    }

    /// <summary>
    /// Delivers the highest pending vector at the slice's start (an instruction boundary): reads
    /// the handler's address from the IDT, pushes the frame on the private stack (16-byte
    /// aligned, as x86-64 does), clears IF and jumps. A <c>work</c> in progress keeps its
    /// remaining cycles in the frame and resumes after <c>iretq</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private Step Deliver(ref Slice sl, Simulator sim)
    {
        unchecked
        {
            int vector = -1;
            for (int w = 3; w >= 0 && vector < 0; w--)
            {
                if (_irr[w] != 0)
                {
                    vector = w * 64 + 63 - System.Numerics.BitOperations.LeadingZeroCount(_irr[w]);
                }
            }
            _irr[vector >> 6] &= ~(1UL << (vector & 63));
            _pendingInterrupts--;
            var source = (InterruptSource)_irrSource[vector];
            ref CpuState s = ref _state;
            long t = sl.Clock.TimeAt(sl.K);
            int line = (uint)s.Rip < (uint)Program.Code.Length ? Program.Code[s.Rip].Line : 0;
            if (_idtr < 0)
            {
                return Stop(ref sl, GuestFaultKind.GeneralProtection, s.Rip, line, $"interrupt vector {vector} with no IDT loaded (lidt): triple fault", t);
            }
            long entry = _idtr + 8L * vector;
            if (!_memory.TryPrivate(entry, 8, out byte[] table, out int at) && !_memory.TryShared(entry, 8, out table, out at))
            {
                return Stop(ref sl, GuestFaultKind.PageFault, s.Rip, line, $"IDT entry of vector {vector} at unmapped address 0x{entry:x}", t);
            }
            long handler = BinaryPrimitives.ReadInt64LittleEndian(table.AsSpan(at, 8));
            long target = handler - GuestAddressMap.CodeBase;
            if ((ulong)target >= (ulong)Program.Code.Length)
            {
                return Stop(ref sl, GuestFaultKind.BadInstructionPointer, s.Rip, line,
                    $"IDT entry of vector {vector} holds 0x{handler:x}, which is not a code address", t);
            }
            long rsp = s.Regs[Registers.Rsp];
            long frame = (rsp & ~15L) - InterruptFrameBytes;
            if (!_memory.TryPrivate(frame, InterruptFrameBytes, out byte[] stack, out int o))
            {
                return Stop(ref sl, GuestFaultKind.PageFault, s.Rip, line, $"interrupt frame at 0x{frame:x}: the stack must be in private memory", t);
            }
            Span<byte> f = stack.AsSpan(o, InterruptFrameBytes);
            BinaryPrimitives.WriteInt64LittleEndian(f, GuestAddressMap.CodeBase + s.Rip);
            BinaryPrimitives.WriteInt64LittleEndian(f[8..], s.WorkRemaining);
            BinaryPrimitives.WriteInt64LittleEndian(f[16..], s.Rflags);
            BinaryPrimitives.WriteInt64LittleEndian(f[24..], rsp);
            BinaryPrimitives.WriteInt64LittleEndian(f[32..], 0);
            s.Regs[Registers.Rsp] = frame;
            s.InterruptFlag = false;
            s.WorkRemaining = 0;
            s.Rip = (int)target;
            long cost = Core.Model.CostCycles[(int)CostClass.Interrupt];
            sl.K += cost;
            sl.Guest += cost;
            _delivered[(int)source]++;
            sim.FoldResult(ResultWord.Tag(ResultWord.Interrupt, Id, vector | ((int)source << 8)));
            sim.FoldResult((ulong)t);
            return Step.Continue;
        }
    }

    /// <summary>iretq: pops the frame <see cref="Deliver"/> pushed (RIP, work slot, RFLAGS with IF, RSP).</summary>
    private Step Iret(ref Slice sl, ref CpuState s, in Instruction i)
    {
        unchecked
        {
            long rsp = s.Regs[Registers.Rsp];
            if (!_memory.TryPrivate(rsp, InterruptFrameBytes, out byte[] stack, out int o))
            {
                return Stop(ref sl, GuestFaultKind.PageFault, s.Rip, i.Line, $"iretq from 0x{rsp:x}: the stack must be in private memory");
            }
            ReadOnlySpan<byte> f = stack.AsSpan(o, InterruptFrameBytes);
            long rip = BinaryPrimitives.ReadInt64LittleEndian(f);
            long target = rip - GuestAddressMap.CodeBase;
            if ((ulong)target >= (ulong)Program.Code.Length)
            {
                return Stop(ref sl, GuestFaultKind.BadInstructionPointer, s.Rip, i.Line, $"iretq to 0x{rip:x}, which is not a code address");
            }
            s.WorkRemaining = Math.Max(BinaryPrimitives.ReadInt64LittleEndian(f[8..]), 0);
            s.SetRflags(BinaryPrimitives.ReadInt64LittleEndian(f[16..]));
            s.Regs[Registers.Rsp] = BinaryPrimitives.ReadInt64LittleEndian(f[24..]);
            s.Rip = (int)target;
            return Step.Continue;
        }
    }
}

using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TscSim.Core.Engine;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// A virtual CPU running a <see cref="GuestProgram"/> on a physical core, cycle by cycle.
/// </summary>
/// <remarks>
/// <para>Execution contract (DESIGN.md): a slice starts at an instant and runs instructions
/// eagerly, adding each one's cost (the core's <see cref="CpuModel"/>, in core cycles) to the
/// slice's cycle count k; the instant of k is t0 + ⌊k × 10^15 / f⌋ ps at the core's frequency
/// when the slice began. Private instructions run while their issue instant is before the
/// <em>horizon</em>, the next pending event; an instruction issued before the horizon is
/// charged in full at that frequency (<c>work</c> is divisible and stops exactly at it). A
/// sequenced instruction (a time read, I/O, MMIO, an exit, a probe, an access to shared
/// memory) runs at its exact issue instant: at once when that is before the horizon (no queue
/// round trip), otherwise the vCPU schedules a resume at that instant and the instruction runs
/// then, after every earlier event. So the global order of clock reads, stores and exits is
/// exact.</para>
/// <para>The hot loop allocates nothing: instructions are structs in an array, registers and
/// flags live in <see cref="CpuState"/>, and memory is byte arrays.</para>
/// </remarks>
public sealed class Vcpu : IInterruptTarget
{
    private readonly GuestExecutor _executor;
    private readonly byte[] _private;
    private readonly byte[] _stack;
    private readonly byte[] _shared;
    private CpuState _state;
    private long _carry;              // sub-picosecond phase at the end of the last slice
    private Frequency _carryFrequency; // the frequency that phase is measured in

    public Vcpu(GuestExecutor executor, string name, GuestProgram program, PhysicalCpu core, IGuestPlatform platform,
        SharedMemory? shared = null, IExecutionObserver? observer = null)
    {
        _executor = executor;
        Name = name;
        Program = program;
        Core = core;
        Platform = platform;
        _observer = observer;
        _private = program.PrivateData.ToArray();
        _stack = new byte[GuestAddressMap.StackSize];
        Shared = shared ?? new SharedMemory(program.SharedData);
        if (Shared.Length < program.SharedData.Length)
        {
            throw new ArgumentException("The shared memory is smaller than the program's shared section.", nameof(shared));
        }
        _shared = Shared.Bytes;
        _state.Rip = program.Entry;
        _state.Regs[Registers.Rsp] = GuestAddressMap.StackTop;
        Id = executor.Register(this);
    }

    /// <summary>Index among the executor's vCPUs (the fingerprint subject of its resumes).</summary>
    public int Id { get; }

    /// <summary>E.g. <c>vm0.vcpu1</c>.</summary>
    public string Name { get; }

    public GuestProgram Program { get; }

    /// <summary>The core it runs on; a migration changes it between slices.</summary>
    public PhysicalCpu Core { get; set; }

    public IGuestPlatform Platform { get; }

    private IExecutionObserver? _observer;

    public IExecutionObserver? Observer
    {
        get => _observer;
        set => _observer = value;
    }

    /// <summary>The VM's shared memory.</summary>
    public SharedMemory Shared { get; }

    /// <summary>IA32_TSC_AUX, as RDTSCP and RDPID return it (the OS puts the CPU number here).</summary>
    public uint TscAux { get; set; }

    /// <summary>Architectural state (a copy).</summary>
    public CpuState State => _state;

    /// <summary>Register <paramref name="r"/> (0 = rax … 15 = r15).</summary>
    public long Register(int r) => _state.Regs[r];

    /// <summary>Sets register <paramref name="r"/> (before the vCPU starts, or from a platform).</summary>
    public void SetRegister(int r, long value) => _state.Regs[r] = value;

    /// <summary>Continues at instruction <paramref name="index"/> (for kernel services: entering the workload after boot).</summary>
    public void Jump(int index) => _state.Rip = index;

    /// <summary>Instructions retired.</summary>
    public long Instructions { get; private set; }

    /// <summary>Cycles spent executing guest instructions.</summary>
    public long GuestCycles { get; private set; }

    /// <summary>Cycles spent outside the guest (exit, handler, entry).</summary>
    public long ExitCycles { get; private set; }

    /// <summary>Instructions that exited.</summary>
    public long Exits { get; private set; }

    /// <summary>Slices run (queue round trips).</summary>
    public long Slices { get; private set; }

    /// <summary>Paused by the hypervisor (no resume pending until <see cref="Start"/>).</summary>
    public bool Paused { get; private set; }

    /// <summary>Waiting in the guest kernel (<see cref="KernelCallResult.Wait"/>) until <see cref="Wake"/>.</summary>
    public bool KernelWaiting { get; private set; }

    private bool _wakePending;

    /// <summary>The guest kernel model behind <c>kcall</c>, or null (then <c>kcall</c> is #UD).</summary>
    public IGuestKernel? Kernel { get; set; }

    /// <summary>
    /// Ends a kernel wait at <paramref name="at"/>: the vCPU runs again from there unless the
    /// hypervisor has it paused, in which case it runs when the hypervisor starts it.
    /// </summary>
    public void Wake(SimTime at)
    {
        if (!KernelWaiting)
        {
            // Not waiting yet (e.g. it has not had its first slice): the wake is kept, and the
            // wait it was meant to end returns at once (no lost wake-up).
            _wakePending = true;
            return;
        }
        KernelWaiting = false;
        if (!Paused && !Halted)
        {
            LocalTime = at;
            _executor.ScheduleResume(this, at.Picoseconds);
        }
    }

    /// <summary>
    /// Pauses the vCPU at the current instant: its pending resume is cancelled; state, registers
    /// and the instruction it would run next are kept. <see cref="Start"/> continues it.
    /// </summary>
    public void Pause()
    {
        _executor.CancelResume(this);
        Paused = true;
    }

    /// <summary>True once the vCPU has executed <c>hlt</c> or faulted.</summary>
    public bool Halted { get; private set; }

    /// <summary>The fault that stopped it, if any.</summary>
    public GuestFault? Fault { get; private set; }

    /// <summary>The instant up to which this vCPU has executed.</summary>
    public SimTime LocalTime { get; private set; }

    private string? _faultExplanation;

    /// <summary>A platform reports a fault with its explanation: <c>return vcpu.ExplainFault(kind, "why")</c>.</summary>
    public PlatformResult ExplainFault(GuestFaultKind kind, string message)
    {
        _faultExplanation = message;
        return PlatformResult.Faulted(kind);
    }

    // ---- interrupts (issue 16): see docs/model.md "Interrupts"
    private readonly ulong[] _irr = new ulong[4];          // pending vectors, one bit each
    private readonly byte[] _irrSource = new byte[256];    // the source of each pending vector
    private readonly long[] _delivered = new long[3];      // by InterruptSource
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

    /// <summary>Starts the vCPU at <paramref name="at"/>.</summary>
    public void Start(SimTime at)
    {
        if (_executor.IsScheduled(this))
        {
            throw new InvalidOperationException($"{Name} is already running.");
        }
        Paused = false;
        LocalTime = at;
        if (KernelWaiting)
        {
            return; // the guest kernel wakes it
        }
        if (HaltWaiting)
        {
            return; // an interrupt wakes it
        }
        _executor.ScheduleResume(this, at.Picoseconds);
    }

    /// <summary>A guest address's qword in this vCPU's private memory or stack (for tests and tools).</summary>
    public long ReadPrivateQword(long address)
    {
        if (!TryPrivate(address, 8, out byte[]? buffer, out int offset))
        {
            throw new ArgumentOutOfRangeException(nameof(address), $"0x{address:x} is not private memory of {Name}.");
        }
        return BinaryPrimitives.ReadInt64LittleEndian(buffer.AsSpan(offset, 8));
    }

    private enum Step { Continue, Yield, Stop }

    /// <summary>The state of one slice, kept in a local struct the helpers take by reference.</summary>
    private struct Slice
    {
        public SliceClock Clock;
        public long K;          // cycles of this slice so far
        public long Budget;     // private instructions may run while K < Budget
        public long Horizon;    // ps of the next pending event
        public long NowPs;      // the slice's start (= the engine's now)
        public long SeenScheduled;
        public long SeenExecutor;
        public long YieldAt;    // ps to resume at
        public long Guest, Exit, Retired, Exits;
    }

    /// <summary>Runs one slice starting at <paramref name="now"/> (called by the executor's resume event).</summary>
    internal void RunSlice(SimTime now)
    {
        if (Halted)
        {
            return;
        }
        Slices++;
        Simulator sim = _executor.Simulator;
        var sl = new Slice { NowPs = now.Picoseconds };
        Frequency f = Core.Frequency;
        sl.Clock.Start(now, f, f == _carryFrequency ? _carry : 0);
        Step step = Step.Continue;
        if (_deferredExits != 0)
        {
            ChargeDeferredExits(ref sl);
        }
        if (_pendingInterrupts != 0 && _state.InterruptFlag)
        {
            step = Deliver(ref sl, sim);
        }
        RefreshHorizon(ref sl, sim);

        if (step == Step.Continue)
        {
            step = Execute(ref sl);
        }

        GuestCycles += sl.Guest;
        ExitCycles += sl.Exit;
        Instructions += sl.Retired;
        Exits += sl.Exits;
        if (step == Step.Yield)
        {
            LocalTime = SimTime.FromPicoseconds(sl.YieldAt);
            _executor.ScheduleResume(this, sl.YieldAt);
        }
        else
        {
            LocalTime = SimTime.FromPicoseconds(sl.Clock.TimeAt(sl.K));
        }
        // Every path above evaluated the clock at K last: its remainder is the phase at LocalTime.
        _carry = sl.Clock.Remainder;
        _carryFrequency = f;
    }

    /// <summary>
    /// The two horizons: private instructions run until the engine's next event (a frequency
    /// change, a hypervisor action, the run's end: anything that could change how this vCPU
    /// executes); sequenced instructions also wait for other vCPUs' pending resumes, since those
    /// may touch what they read.
    /// </summary>
    private void RefreshHorizon(ref Slice sl, Simulator sim)
    {
        // Nothing may run past the run's limit: an instant after it belongs to the next Run call.
        long limit = sim.RunLimit.Picoseconds;
        long afterLimit = limit == long.MaxValue ? long.MaxValue : limit + 1;
        long engine = Math.Min(sim.NextEventTime?.Picoseconds ?? long.MaxValue, afterLimit);
        sl.Budget = sl.Clock.CyclesUntil(engine);
        sl.Horizon = Math.Min(engine, _executor.EarliestOtherResume(this));
        sl.SeenScheduled = sim.ScheduledCount;
        sl.SeenExecutor = _executor.Version;
        if (_pendingInterrupts != 0 && _state.InterruptFlag)
        {
            sl.Budget = Math.Min(sl.Budget, sl.K); // take it at the next boundary
        }
    }

    /// <summary>May a sequenced instruction issued now run at once? If not, the slice yields to its instant.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool SyncReady(ref Slice sl, out long t)
    {
        t = sl.Clock.TimeAt(sl.K);
        if (t < sl.Horizon || t == sl.NowPs)
        {
            return true;
        }
        sl.YieldAt = t;
        return false;
    }

    // Fully optimised at once: the interpreter loop is one long-running method whose dynamic
    // profile (Tiered PGO) depends on whichever program ran first; a PGO build tuned for one
    // instruction mix was measured 40% slower on another, so the loop opts out of tiering.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private Step Execute(ref Slice sl)
    {
        unchecked
        {
            Instruction[] code = Program.Code;
            long[] costs = Core.Model.CostCycles;
            ref CpuState s = ref _state;
            ref long regs = ref Unsafe.As<RegisterFile, long>(ref s.Regs);
            Simulator sim = _executor.Simulator;

            while (true)
            {
                if ((uint)s.Rip >= (uint)code.Length)
                {
                    return Stop(ref sl, GuestFaultKind.BadInstructionPointer, s.Rip, 0,
                        $"execution left the program (instruction index {s.Rip} of {code.Length})");
                }
                ref Instruction i = ref code[s.Rip];
                ref long a = ref Unsafe.Add(ref regs, i.A);
                ref long b = ref Unsafe.Add(ref regs, i.B);
                long r;
                Step st;

                switch (i.Op)
                {
                    // --- data movement
                    case Opcode.MovRR: a = b; s.Rip++; break;
                    case Opcode.MovRI: a = i.Imm; s.Rip++; break;
                    case Opcode.MovRM:
                        st = Load(ref sl, in i, Ea(ref regs, in i), 8, out r);
                        if (st != Step.Continue) { return st; }
                        a = r; s.Rip++; break;
                    case Opcode.MovDM:
                        st = Load(ref sl, in i, Ea(ref regs, in i), 4, out r);
                        if (st != Step.Continue) { return st; }
                        a = (long)(uint)r; s.Rip++; break;
                    case Opcode.MovzxRB:
                        st = Load(ref sl, in i, Ea(ref regs, in i), 1, out r);
                        if (st != Step.Continue) { return st; }
                        a = (long)(byte)r; s.Rip++; break;
                    case Opcode.MovsxRB:
                        st = Load(ref sl, in i, Ea(ref regs, in i), 1, out r);
                        if (st != Step.Continue) { return st; }
                        a = (long)(sbyte)(byte)r; s.Rip++; break;
                    case Opcode.MovMR:
                        st = Store(ref sl, in i, Ea(ref regs, in i), 8, a);
                        if (st != Step.Continue) { return st; }
                        s.Rip++; break;
                    case Opcode.MovMD:
                        st = Store(ref sl, in i, Ea(ref regs, in i), 4, a);
                        if (st != Step.Continue) { return st; }
                        s.Rip++; break;
                    case Opcode.MovMI:
                        st = Store(ref sl, in i, Ea(ref regs, in i), 8, i.Imm);
                        if (st != Step.Continue) { return st; }
                        s.Rip++; break;
                    case Opcode.Lea: a = Ea(ref regs, in i); s.Rip++; break;
                    case Opcode.XchgRR: (a, b) = (b, a); s.Rip++; break;
                    case Opcode.XchgRM:
                        st = Atomic(ref sl, in i, ref s, Ea(ref regs, in i), ref a, AtomicOp.Xchg);
                        if (st != Step.Continue) { return st; }
                        s.Rip++; break;
                    case Opcode.PushR:
                    case Opcode.PushI:
                        st = Push(ref sl, ref regs, in i, i.Op == Opcode.PushR ? a : i.Imm);
                        if (st != Step.Continue) { return st; }
                        s.Rip++; break;
                    case Opcode.PopR:
                        st = Pop(ref sl, ref regs, in i, out r);
                        if (st != Step.Continue) { return st; }
                        a = r; s.Rip++; break;

                    // --- ALU
                    case Opcode.AddRR: r = unchecked(a + b); s.SetAdd(a, b, r); a = r; s.Rip++; break;
                    case Opcode.AddRI: r = unchecked(a + i.Imm); s.SetAdd(a, i.Imm, r); a = r; s.Rip++; break;
                    case Opcode.SubRR: r = unchecked(a - b); s.SetSub(a, b, r); a = r; s.Rip++; break;
                    case Opcode.SubRI: r = unchecked(a - i.Imm); s.SetSub(a, i.Imm, r); a = r; s.Rip++; break;
                    case Opcode.AndRR: a &= b; s.SetLogic(a); s.Rip++; break;
                    case Opcode.AndRI: a &= i.Imm; s.SetLogic(a); s.Rip++; break;
                    case Opcode.OrRR: a |= b; s.SetLogic(a); s.Rip++; break;
                    case Opcode.OrRI: a |= i.Imm; s.SetLogic(a); s.Rip++; break;
                    case Opcode.XorRR: a ^= b; s.SetLogic(a); s.Rip++; break;
                    case Opcode.XorRI: a ^= i.Imm; s.SetLogic(a); s.Rip++; break;
                    case Opcode.CmpRR: s.SetSub(a, b, unchecked(a - b)); s.Rip++; break;
                    case Opcode.CmpRI: s.SetSub(a, i.Imm, unchecked(a - i.Imm)); s.Rip++; break;
                    case Opcode.TestRR: s.SetLogic(a & b); s.Rip++; break;
                    case Opcode.TestRI: s.SetLogic(a & i.Imm); s.Rip++; break;
                    case Opcode.AddRM:
                    case Opcode.SubRM:
                    case Opcode.AndRM:
                    case Opcode.OrRM:
                    case Opcode.XorRM:
                    case Opcode.CmpRM:
                    case Opcode.TestRM:
                        st = Load(ref sl, in i, Ea(ref regs, in i), 8, out r);
                        if (st != Step.Continue) { return st; }
                        AluWithMemory(ref s, i.Op, ref a, r);
                        s.Rip++; break;
                    case Opcode.Inc:
                        {
                            bool cf = s.CF;
                            long old = a;
                            a = unchecked(a + 1);
                            s.SetExplicit(a, cf, old == long.MaxValue);
                            s.Rip++; break;
                        }
                    case Opcode.Dec:
                        {
                            bool cf = s.CF;
                            long old = a;
                            a = unchecked(a - 1);
                            s.SetExplicit(a, cf, old == long.MinValue);
                            s.Rip++; break;
                        }
                    case Opcode.Neg: r = unchecked(-a); s.SetSub(0, a, r); a = r; s.Rip++; break;
                    case Opcode.Not: a = ~a; s.Rip++; break;
                    case Opcode.ShlRI: Shift(ref s, ref a, i.Op, (int)i.Imm); s.Rip++; break;
                    case Opcode.ShrRI: Shift(ref s, ref a, i.Op, (int)i.Imm); s.Rip++; break;
                    case Opcode.SarRI: Shift(ref s, ref a, i.Op, (int)i.Imm); s.Rip++; break;
                    case Opcode.ShlRC:
                    case Opcode.ShrRC:
                    case Opcode.SarRC:
                        Shift(ref s, ref a, i.Op, (int)(Unsafe.Add(ref regs, Registers.Rcx) & 63)); s.Rip++; break;
                    case Opcode.ShrdRRI:
                    case Opcode.ShrdRRC:
                        {
                            int n = i.Op == Opcode.ShrdRRI ? (int)i.Imm : (int)(Unsafe.Add(ref regs, Registers.Rcx) & 63);
                            if (n != 0)
                            {
                                bool cf = ((a >> (n - 1)) & 1) != 0;
                                a = (long)(((ulong)a >> n) | ((ulong)b << (64 - n)));
                                s.SetExplicit(a, cf, false);
                            }
                            s.Rip++; break;
                        }
                    case Opcode.Mul:
                        {
                            ref long rax = ref regs;
                            ulong hi = Math.BigMul((ulong)rax, (ulong)a, out ulong lo);
                            rax = (long)lo;
                            Unsafe.Add(ref regs, Registers.Rdx) = (long)hi;
                            s.SetExplicit((long)lo, hi != 0, hi != 0);
                            s.Rip++; break;
                        }
                    case Opcode.ImulRR:
                    case Opcode.ImulRI:
                        {
                            long src = i.Op == Opcode.ImulRR ? b : i.Imm;
                            long hi = Math.BigMul(a, src, out long lo);
                            bool overflow = hi != (lo >> 63);
                            a = lo;
                            s.SetExplicit(lo, overflow, overflow);
                            s.Rip++; break;
                        }
                    case Opcode.Div:
                        {
                            ulong divisor = (ulong)a;
                            ref long rax = ref regs;
                            ref long rdx = ref Unsafe.Add(ref regs, Registers.Rdx);
                            if (divisor == 0 || (ulong)rdx >= divisor)
                            {
                                return Stop(ref sl, GuestFaultKind.DivideError, s.Rip, i.Line,
                                    divisor == 0 ? "division by zero" : "quotient does not fit in 64 bits (rdx >= divisor)");
                            }
                            UInt128 dividend = ((UInt128)(ulong)rdx << 64) | (ulong)rax;
                            rax = (long)(ulong)(dividend / divisor);
                            rdx = (long)(ulong)(dividend % divisor);
                            s.Rip++; break;
                        }

                    // --- control flow
                    case Opcode.Jmp: s.Rip = i.Target; break;
                    case Opcode.Je: s.Rip = s.ZF ? i.Target : s.Rip + 1; break;
                    case Opcode.Jne: s.Rip = !s.ZF ? i.Target : s.Rip + 1; break;
                    case Opcode.Jb: s.Rip = s.CF ? i.Target : s.Rip + 1; break;
                    case Opcode.Jae: s.Rip = !s.CF ? i.Target : s.Rip + 1; break;
                    case Opcode.Jbe: s.Rip = s.CF || s.ZF ? i.Target : s.Rip + 1; break;
                    case Opcode.Ja: s.Rip = !s.CF && !s.ZF ? i.Target : s.Rip + 1; break;
                    case Opcode.Jl: s.Rip = s.SF != s.OF ? i.Target : s.Rip + 1; break;
                    case Opcode.Jge: s.Rip = s.SF == s.OF ? i.Target : s.Rip + 1; break;
                    case Opcode.Jle: s.Rip = s.ZF || s.SF != s.OF ? i.Target : s.Rip + 1; break;
                    case Opcode.Jg: s.Rip = !s.ZF && s.SF == s.OF ? i.Target : s.Rip + 1; break;
                    case Opcode.Js: s.Rip = s.SF ? i.Target : s.Rip + 1; break;
                    case Opcode.Jns: s.Rip = !s.SF ? i.Target : s.Rip + 1; break;
                    case Opcode.Call:
                        st = Push(ref sl, ref regs, in i, GuestAddressMap.CodeBase + s.Rip + 1);
                        if (st != Step.Continue) { return st; }
                        s.Rip = i.Target; break;
                    case Opcode.Ret:
                        st = Pop(ref sl, ref regs, in i, out r);
                        if (st != Step.Continue) { return st; }
                        long target = r - GuestAddressMap.CodeBase;
                        if ((ulong)target >= (ulong)code.Length)
                        {
                            return Stop(ref sl, GuestFaultKind.BadInstructionPointer, s.Rip, i.Line, $"ret to 0x{r:x}, which is not a code address");
                        }
                        s.Rip = (int)target; break;

                    // --- atomics and ordering
                    case Opcode.LockCmpxchg:
                        st = Atomic(ref sl, in i, ref s, Ea(ref regs, in i), ref a, AtomicOp.Cmpxchg);
                        if (st != Step.Continue) { return st; }
                        s.Rip++; break;
                    case Opcode.LockXadd:
                        st = Atomic(ref sl, in i, ref s, Ea(ref regs, in i), ref a, AtomicOp.Xadd);
                        if (st != Step.Continue) { return st; }
                        s.Rip++; break;
                    case Opcode.Lfence:
                    case Opcode.Mfence:
                    case Opcode.Pause:
                    case Opcode.Nop:
                        s.Rip++; break;

                    // --- platform instructions: always sequenced; the platform prices them
                    case Opcode.Rdtsc:
                    case Opcode.Rdtscp:
                    case Opcode.Rdpid:
                    case Opcode.Rdmsr:
                    case Opcode.Wrmsr:
                    case Opcode.Cpuid:
                    case Opcode.InD:
                    case Opcode.InI:
                    case Opcode.OutD:
                    case Opcode.OutI:
                    case Opcode.Hlt:
                        {
                            if (!SyncReady(ref sl, out long t))
                            {
                                return Step.Yield;
                            }
                            PlatformResult pr = Platform.Execute(this, ref s, in i, SimTime.FromPicosecondsTrusted(t), costs[(int)i.Cost]);
                            st = Apply(ref sl, in pr, s.Rip, i.Line, t);
                            if (st == Step.Stop)
                            {
                                return st;
                            }
                            if (_observer is not null && (i.Op is Opcode.Rdtsc or Opcode.Rdtscp
                                || (i.Op == Opcode.Rdmsr && (uint)Unsafe.Add(ref regs, Registers.Rcx) == 0x10)))
                            {
                                ulong v = ((ulong)(uint)Unsafe.Add(ref regs, Registers.Rdx) << 32) | (uint)regs;
                                _observer.OnTscRead(this, SimTime.FromPicoseconds(t), new TscValue(v), pr.Exited, pr.GuestCycles + pr.ExitCycles);
                            }
                            sl.Retired++;
                            s.Rip++;
                            if (pr.Halt)
                            {
                                return HaltOrWait(ref sl);
                            }
                            if (sim.ScheduledCount != sl.SeenScheduled || _executor.Version != sl.SeenExecutor)
                            {
                                RefreshHorizon(ref sl, sim);
                            }
                            if (sl.K >= sl.Budget)
                            {
                                sl.YieldAt = sl.Clock.TimeAt(sl.K);
                                return Step.Yield;
                            }
                            continue;
                        }

                    // --- pseudo-instructions
                    case Opcode.Work:
                        {
                            if (s.WorkRemaining == 0)
                            {
                                s.WorkRemaining = i.Imm;
                            }
                            // Up to the horizon, and at least one cycle so a slice that starts at
                            // the horizon (another event at the same instant) still makes progress.
                            long take = Math.Min(s.WorkRemaining, Math.Max(sl.Budget - sl.K, 1));
                            sl.K += take;
                            sl.Guest += take;
                            s.WorkRemaining -= take;
                            if (s.WorkRemaining == 0)
                            {
                                s.Rip++;
                                sl.Retired++;
                            }
                            if (sl.K >= sl.Budget)
                            {
                                sl.YieldAt = sl.Clock.TimeAt(sl.K);
                                return Step.Yield;
                            }
                            continue;
                        }
                    case Opcode.Probe:
                        {
                            if (!SyncReady(ref sl, out long t))
                            {
                                return Step.Yield;
                            }
                            Observer?.OnProbe(this, SimTime.FromPicoseconds(t), i.Line, a);
                            s.Rip++;
                            sl.Retired++;
                            continue;
                        }
                    case Opcode.Kcall:
                        {
                            if (!SyncReady(ref sl, out long t))
                            {
                                return Step.Yield;
                            }
                            if (Kernel is null)
                            {
                                return Stop(ref sl, GuestFaultKind.InvalidOpcode, s.Rip, i.Line, "kcall without a guest kernel model");
                            }
                            s.Rip++;
                            sl.Retired++;
                            KernelCallResult kr = Kernel.Call(this, (int)i.Imm, SimTime.FromPicoseconds(t),
                                GuestCycles + ExitCycles + sl.Guest + sl.Exit, Exits + sl.Exits);
                            if (kr == KernelCallResult.Wait)
                            {
                                if (_wakePending)
                                {
                                    _wakePending = false; // woken before it waited
                                }
                                else
                                {
                                    KernelWaiting = true;
                                    return Step.Stop;
                                }
                            }
                            if (Halted)
                            {
                                return Step.Stop;
                            }
                            if (sim.ScheduledCount != sl.SeenScheduled || _executor.Version != sl.SeenExecutor)
                            {
                                RefreshHorizon(ref sl, sim);
                            }
                            continue;
                        }

                    case Opcode.Kend:
                        {
                            // After the workload's last instruction: cite that one (the user's line).
                            int last = s.Rip > 0 ? code[s.Rip - 1].Line : i.Line;
                            return Stop(ref sl, GuestFaultKind.RanPastEnd, s.Rip, last,
                                "ran past the end of the workload: execution went on after its last instruction; end the workload with 'hlt' or a 'jmp' back to a label");
                        }
                    // --- interrupts: pending ones are taken at slice starts; these end the slice when one is due
                    case Opcode.Cli: s.InterruptFlag = false; s.Rip++; break;
                    case Opcode.Sti:
                        s.Rip++;
                        if (!s.InterruptFlag)
                        {
                            s.InterruptFlag = true;
                            if (_pendingInterrupts != 0)
                            {
                                // The STI shadow: one more instruction runs before the interrupt.
                                sl.Budget = Math.Min(sl.Budget, sl.K + costs[(int)i.Cost] + 1);
                            }
                        }
                        break;
                    case Opcode.Iretq:
                        st = Iret(ref sl, ref s, in i);
                        if (st != Step.Continue) { return st; }
                        if (_pendingInterrupts != 0 && s.InterruptFlag)
                        {
                            sl.Budget = Math.Min(sl.Budget, sl.K);
                        }
                        break;
                    case Opcode.Lidt: _idtr = Ea(ref regs, in i); s.Rip++; break;

                    default:
                        return Stop(ref sl, GuestFaultKind.InvalidOpcode, s.Rip, i.Line, $"opcode {i.Op} is not executable");
                }

                long cost = costs[(int)i.Cost];
                sl.K = checked(sl.K + cost);
                sl.Guest += cost;
                sl.Retired++;
                if (sl.K >= sl.Budget)
                {
                    sl.YieldAt = sl.Clock.TimeAt(sl.K);
                    return Step.Yield;
                }
            }
        }
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
            if (!TryPrivate(entry, 8, out byte[] table, out int at) && !TryShared(entry, 8, out table, out at))
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
            if (!TryPrivate(frame, InterruptFrameBytes, out byte[] stack, out int o))
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
            if (!TryPrivate(rsp, InterruptFrameBytes, out byte[] stack, out int o))
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long Ea(ref long regs, in Instruction i) =>
        i.Base == Instruction.NoRegister ? i.Disp : unchecked(Unsafe.Add(ref regs, i.Base) + i.Disp);

    private static void AluWithMemory(ref CpuState s, Opcode op, ref long a, long m)
    {
        unchecked
        {
            long r;
            switch (op)
            {
                case Opcode.AddRM: r = unchecked(a + m); s.SetAdd(a, m, r); a = r; break;
                case Opcode.SubRM: r = unchecked(a - m); s.SetSub(a, m, r); a = r; break;
                case Opcode.AndRM: a &= m; s.SetLogic(a); break;
                case Opcode.OrRM: a |= m; s.SetLogic(a); break;
                case Opcode.XorRM: a ^= m; s.SetLogic(a); break;
                case Opcode.CmpRM: s.SetSub(a, m, unchecked(a - m)); break;
                case Opcode.TestRM: s.SetLogic(a & m); break;
            }
        }
    }

    private static void Shift(ref CpuState s, ref long a, Opcode op, int n)
    {
        unchecked
        {
            if (n == 0)
            {
                return; // flags unchanged, as on x86
            }
            bool cf;
            switch (op)
            {
                case Opcode.ShlRI or Opcode.ShlRC:
                    cf = ((ulong)a >> (64 - n) & 1) != 0;
                    a = (long)((ulong)a << n);
                    s.SetExplicit(a, cf, n == 1 && (a < 0) != cf);
                    break;
                case Opcode.ShrRI or Opcode.ShrRC:
                    cf = ((ulong)a >> (n - 1) & 1) != 0;
                    bool of = n == 1 && a < 0;
                    a = (long)((ulong)a >> n);
                    s.SetExplicit(a, cf, of);
                    break;
                default:
                    cf = (a >> (n - 1) & 1) != 0;
                    a >>= n;
                    s.SetExplicit(a, cf, false);
                    break;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Step Apply(ref Slice sl, in PlatformResult pr, int rip, int line, long t)
    {
        sl.K += pr.GuestCycles + pr.ExitCycles;
        sl.Guest += pr.GuestCycles;
        sl.Exit += pr.ExitCycles;
        if (pr.Exited)
        {
            sl.Exits++;
        }
        return pr.Fault == GuestFaultKind.None ? Step.Continue : PlatformFault(ref sl, pr.Fault, rip, line, t);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private Step PlatformFault(ref Slice sl, GuestFaultKind kind, int rip, int line, long t)
    {
        string message = _faultExplanation ?? kind.ToString();
        _faultExplanation = null;
        return Stop(ref sl, kind, rip, line, message, t);
    }

    private Step Stop(ref Slice sl, GuestFaultKind kind, int rip, int line, string message, long? atPs = null)
    {
        Halted = true;
        var fault = new GuestFault(kind, rip, line, SimTime.FromPicoseconds(atPs ?? sl.Clock.TimeAt(sl.K)), message);
        Fault = fault;
        Observer?.OnFault(this, fault);
        return Step.Stop;
    }

    // ---- memory

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryPrivate(long addr, int size, out byte[] buffer, out int offset)
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
            long st = addr - (GuestAddressMap.StackTop - GuestAddressMap.StackSize);
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
    private bool TryShared(long addr, int size, out byte[] buffer, out int offset)
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
            byte[] pv = Shared.Pvclock;
            p = addr - GuestAddressMap.PvclockBase;
            if ((ulong)p <= (ulong)(pv.Length - size))
            {
                buffer = pv;
                offset = (int)p;
                return true;
            }
            buffer = null!;
            offset = 0;
            return false;
        }
    }

    private static long Read(byte[] buffer, int offset, int size) => size switch
    {
        8 => BinaryPrimitives.ReadInt64LittleEndian(buffer.AsSpan(offset, 8)),
        4 => BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(offset, 4)),
        _ => buffer[offset],
    };

    private static void Write(byte[] buffer, int offset, int size, long value)
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

    private Step Load(ref Slice sl, in Instruction i, long addr, int size, out long value)
    {
        if (TryPrivate(addr, size, out byte[] buffer, out int offset))
        {
            value = Read(buffer, offset, size);
            return Step.Continue;
        }
        if (TryShared(addr, size, out buffer, out offset))
        {
            if (!SyncReady(ref sl, out _))
            {
                value = 0;
                return Step.Yield;
            }
            value = Read(buffer, offset, size);
            return Step.Continue;
        }
        if (Platform.IsMmio(addr))
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

    private Step Store(ref Slice sl, in Instruction i, long addr, int size, long value)
    {
        if (TryPrivate(addr, size, out byte[] buffer, out int offset))
        {
            Write(buffer, offset, size, value);
            return Step.Continue;
        }
        if (TryShared(addr, size, out buffer, out offset))
        {
            if (!SyncReady(ref sl, out _))
            {
                return Step.Yield;
            }
            Write(buffer, offset, size, value);
            return Step.Continue;
        }
        if (Platform.IsMmio(addr))
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
            if (TryPrivate(addr, 8, out byte[] buffer, out int offset))
            {
                // private: no sequencing needed
            }
            else if (TryShared(addr, 8, out buffer, out offset))
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
            if (!TryPrivate(addr, 8, out byte[] buffer, out int offset))
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
            if (!TryPrivate(rsp, 8, out byte[] buffer, out int offset))
            {
                value = 0;
                return Stop(ref sl, GuestFaultKind.PageFault, _state.Rip, i.Line, $"pop from 0x{rsp:x}: the stack must be in private memory");
            }
            value = BinaryPrimitives.ReadInt64LittleEndian(buffer.AsSpan(offset, 8));
            rsp = unchecked(rsp + 8);
            return Step.Continue;
        }
    }

    public override string ToString() => $"{Name} on {Core}";
}

using System.Buffers.Binary;
using System.Runtime.CompilerServices;
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
/// flags live in <see cref="CpuState"/>, and memory is byte arrays (<see cref="GuestMemory"/>).</para>
/// <para>The parts: this file (state, slices and horizons), <c>Vcpu.Interpreter.cs</c> (the
/// instruction loop), <c>Vcpu.Memory.cs</c> (loads, stores, atomics and the stack, sequenced
/// by region) and <c>Vcpu.Interrupts.cs</c> (pending vectors, delivery, <c>hlt</c>).</para>
/// </remarks>
public sealed partial class Vcpu : IInterruptTarget
{
    private readonly GuestExecutor _executor;
    private readonly GuestMemory _memory;
    private CpuState _state;
    private readonly bool _bareMetal;  // on NativePlatform: RDTSC runs inline (Vcpu.Interpreter.cs)
    private long _carry;              // sub-picosecond phase at the end of the last slice
    private Frequency _carryFrequency; // the frequency that phase is measured in
    private SliceClock.Scale _scale;   // the slice clock's constants for the last frequency (F = 0: none yet)

    public Vcpu(GuestExecutor executor, string name, GuestProgram program, PhysicalCpu core, IGuestPlatform platform,
        SharedMemory? shared = null, IExecutionObserver? observer = null)
    {
        _executor = executor;
        Name = name;
        Program = program;
        Core = core;
        Platform = platform;
        _observer = observer;
        Shared = shared ?? new SharedMemory(program.SharedData);
        if (Shared.Length < program.SharedData.Length)
        {
            throw new ArgumentException("The shared memory is smaller than the program's shared section.", nameof(shared));
        }
        _memory = new GuestMemory(program.PrivateData.ToArray(), Shared, platform);
        _bareMetal = platform is NativePlatform;
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

    /// <summary>Sets RFLAGS (the kernel restores a workload's flags after its idle routine).</summary>
    public void SetRflags(long rflags) => _state.SetRflags(rflags);

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
        if (!_memory.TryPrivate(address, 8, out byte[]? buffer, out int offset))
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
        if (f.Millihertz != _scale.F)
        {
            _scale = new SliceClock.Scale(f);
        }
        sl.Clock.Start(now, in _scale, f == _carryFrequency ? _carry : 0);
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
    /// The two horizons: private instructions run until the engine's next event that can concern
    /// this vCPU (a frequency change on its host, an action on its VM, a hypervisor-wide step,
    /// the run's end: anything that could change how it executes; not another VM's or host's
    /// events, <see cref="GuestExecutor.NextEventFor"/>); sequenced instructions also wait for other vCPUs' pending resumes, since those
    /// may touch what they read.
    /// </summary>
    private void RefreshHorizon(ref Slice sl, Simulator sim)
    {
        // Nothing may run past the run's limit: an instant after it belongs to the next Run call.
        long limit = sim.RunLimit.Picoseconds;
        long afterLimit = limit == long.MaxValue ? long.MaxValue : limit + 1;
        long engine = Math.Min(_executor.NextEventFor(this)?.Picoseconds ?? long.MaxValue, afterLimit);
        sl.Budget = sl.Clock.CyclesUntil(engine);
        sl.Horizon = Math.Min(engine, _executor.EarliestOtherResume(this));
        sl.SeenScheduled = sim.ScheduledCount;
        sl.SeenExecutor = _executor.Version;
        if (_pendingInterrupts != 0 && _state.InterruptFlag)
        {
            sl.Budget = Math.Min(sl.Budget, sl.K); // take it at the next boundary
        }
    }

    /// <summary>
    /// The one rule for a sequenced instruction issued at instant <paramref name="t"/>: it may run
    /// now if <paramref name="t"/> is before the horizon (nothing that could touch what it reads
    /// comes first) or is the slice's own start (the engine has just ordered it).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool MayRunAt(ref Slice sl, long t) => t < sl.Horizon || t == sl.NowPs;

    /// <summary>May a sequenced instruction issued now run at once? If not, the slice yields to its instant.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool SyncReady(ref Slice sl, out long t)
    {
        t = sl.Clock.TimeAt(sl.K);
        if (MayRunAt(ref sl, t))
        {
            return true;
        }
        sl.YieldAt = t;
        return false;
    }

    /// <summary>
    /// The issue instant <paramref name="t"/> of an instruction that runs at its instant, and
    /// whether it may run now. One the instruction table marks <see cref="SyncKind.Always"/>
    /// waits for that instant to come (<see cref="SyncReady(ref Slice, out long)"/>): false means
    /// the slice yields to <paramref name="t"/>. The row's kind is looked at only when the
    /// instant is past the horizon, so the common case costs nothing more.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool AtItsInstant(ref Slice sl, SyncKind sync, out long t)
    {
        t = sl.Clock.TimeAt(sl.K);
        if (MayRunAt(ref sl, t) || sync != SyncKind.Always)
        {
            return true;
        }
        sl.YieldAt = t;
        return false;
    }

    /// <summary>
    /// Has the slice used its budget (reached the engine's next event)? Then it yields at the
    /// instant of its cycle count; the check after every instruction that ran eagerly.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool BudgetSpent(ref Slice sl)
    {
        if (sl.K < sl.Budget)
        {
            return false;
        }
        sl.YieldAt = sl.Clock.TimeAt(sl.K);
        return true;
    }

    /// <summary>
    /// After a sequenced instruction that may have scheduled or cancelled events (a platform
    /// instruction, a kernel service): recompute the horizons if the engine's queue or any
    /// vCPU's resume changed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void RefreshIfStale(ref Slice sl, Simulator sim)
    {
        if (sim.ScheduledCount != sl.SeenScheduled || _executor.Version != sl.SeenExecutor)
        {
            RefreshHorizon(ref sl, sim);
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

    public override string ToString() => $"{Name} on {Core}";
}

using TscSim.Core.Abi;
using TscSim.Core.Engine;
using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>A change of the guest's clocksource (the first one is the choice at boot, with <see cref="From"/> null).</summary>
public sealed record ClocksourceSwitch(SimTime Time, ClocksourceKind? From, ClocksourceKind To, string Reason);

/// <summary>
/// The guest kernel of one VM, on the model side: services entered by <c>kcall</c> from the
/// kernel code in <see cref="KernelLibrary"/> (boot, calibration bookkeeping, SMP bring-up,
/// clock reads), and the coordinator of its parts: the registered <see cref="Clocksources"/>,
/// the timekeeping (<see cref="ITimekeeping"/>), the boot <see cref="TscCalibration"/>,
/// <see cref="SmpBringUp"/> with the warp test, the <see cref="ClocksourceWatchdog"/>, the
/// periodic tick and the response to notifications.
/// </summary>
/// <remarks>
/// <para>What runs as guest code (and so costs what the interpreter and the exit path say):
/// every clock read, the PIT calibration loop and its reference reads, the warp test. What runs
/// here, as kernel services at exact instants: decisions on measured values (the kernel's
/// rejection rules), clocksource selection, the tick's accumulation and the watchdog (their
/// own reads use side-effect-free views of the clocks and are not charged to any vCPU).</para>
/// <para>The timekeeping is Linux's (see <see cref="ClocksourceTimekeeping"/>); a clocksource
/// switch keeps time continuous. The guest clock starts at true time when timekeeping is
/// initialised (as from a perfect RTC).</para>
/// </remarks>
public sealed partial class GuestKernel : IGuestKernel, IEventHandler
{
    /// <summary>The periodic tick that accumulates time into the timekeeper's base.</summary>
    public static readonly Duration TickPeriod = Duration.FromMilliseconds(10);

    private readonly IGuestMachine _machine;
    private readonly Vcpu[] _vcpus;      // the VM's vCPUs, cached: IGuestMachine.Vcpus may box on every access
    private readonly int _firstVcpuId;   // executor id of vCPU 0; a VM's vCPUs have consecutive ids
    private readonly Simulator _sim;
    private readonly EventKind _tick, _watchdogEvent, _notify, _verifyTsc;
    private SimTime? _verifyLastAt;   // verify_tsc_freq's last_jiffies (as the instant), null before its first run
    private ulong _verifyLastTsc;
    private long _verifyLastJiffies;
    private readonly long[] _readMarkCycles;   // vCPU cycles at each vCPU's read begin
    private readonly long[] _readMarkExits;    // exits at each vCPU's read begin
    private readonly SimTime[] _readBegin;     // each vCPU's read begin
    private readonly List<ClocksourceSwitch> _switches = [];
    private readonly List<(SimTime Time, string Message)> _log = [];
    private readonly Clocksources _sources;
    private readonly ITimekeeping _timekeeping;
    private readonly TscCalibration _calibration;
    private readonly SmpBringUp _smp;
    private readonly ClocksourceWatchdog _watchdog;
    private bool _timekeepingStarted;
    private readonly TickTimekeeping? _tick2618;   // the 2.6.18 x86_64 profile's timekeeping, else null
    private readonly bool[] _timerSetUp;            // 2.6.18 x86_64: the vCPU ran the timer setup before its workload
    private readonly int _cal2618, _tickSetup2618, _read2618, _hpet2618;
    private readonly bool _pit386;                  // 2.6.18 i386: PIT IRQ0 + local APIC ticks, update_wall_time per IRQ0
    private readonly int _cal386, _irq0Body386;
    private readonly long _latch386;
    private long _jiffies386;                       // 2.6.18 i386: jiffies (one per IRQ0, do_timer)
    private readonly bool _periodic;                // a periodic local APIC tick on every vCPU (FreeBSD, Solaris, Windows)
    private readonly int _periodicSetup;
    private long _verifyAtJiffies386;               // verify_tsc_freq_timer's expiry (jiffies)
    private readonly NoHzTick? _noHz;               // linux-modern's tick, else null
    private readonly int _noHzSetup, _noHzDead;
    private readonly long[] _idleSaved;             // per vCPU: rax, rcx, rdx, RFLAGS of the workload that entered idle
    private readonly EventKind _ipi;

    /// <summary>Creates the kernel of <paramref name="machine"/> running <paramref name="program"/> (from <see cref="Assemble"/>).</summary>
    public GuestKernel(OsProfile profile, ClocksourceKind? clocksource, IGuestMachine machine, Simulator sim, GuestProgram program)
    {
        Profile = profile;
        RequestedClocksource = clocksource ?? profile.Clocksource;
        _machine = machine;
        _sim = sim;
        _vcpus = [.. machine.Vcpus];
        _firstVcpuId = _vcpus[0].Id;
        for (int i = 0; i < _vcpus.Length; i++)
        {
            if (_vcpus[i].Id != _firstVcpuId + i)
            {
                throw new ArgumentException($"{machine.Name}: the vCPUs' executor ids must be consecutive", nameof(machine));
            }
        }
        int n = _vcpus.Length;
        _readMarkCycles = new long[n];
        _readMarkExits = new long[n];
        _readBegin = new SimTime[n];
        _smp = new SmpBringUp(this, _vcpus, program);
        WorkloadEntry = 0;
        _tick = sim.RegisterKind($"guest.{machine.Name}.tick", EventBand.Guest, this);
        _watchdogEvent = sim.RegisterKind($"guest.{machine.Name}.watchdog", EventBand.Guest, this);
        _notify = sim.RegisterKind($"guest.{machine.Name}.notified", EventBand.Guest, this);
        if (profile.VerifiesTscFrequency)
        {
            _verifyTsc = sim.RegisterKind($"guest.{machine.Name}.verify_tsc_freq", EventBand.Guest, this);
        }
        _sources = new Clocksources(this, machine);
        _timerSetUp = new bool[n];
        if (profile.Timekeeping == TimekeepingKind.Tick2618X64)
        {
            _tick2618 = new TickTimekeeping(this, machine, n, profile.Hz, _sources.Has(ClocksourceKind.Hpet));
            _timekeeping = _tick2618;
            _cal2618 = (int)program.Labels[KernelLibrary.Calibrate2618Label].Value;
            _tickSetup2618 = (int)program.Labels[KernelLibrary.TickSetup2618Label].Value;
            _read2618 = (int)program.Labels[KernelLibrary.Read2618Label].Value;
            _hpet2618 = (int)program.Labels[KernelLibrary.Hpet2618Label].Value;
        }
        else
        {
            _timekeeping = new ClocksourceTimekeeping(_sources, machine, n, ClampsNegative, profile.UnsignedReadWraps);
            if (profile.TickKind == TickKind.Pit2618)
            {
                _pit386 = true;
                _tickSetup2618 = (int)program.Labels[KernelLibrary.TickSetup2618Label].Value;
                _cal386 = (int)program.Labels[KernelLibrary.Calibrate386Label].Value;
                _irq0Body386 = (int)program.Labels[KernelLibrary.Irq0Body386Label].Value;
                _latch386 = (TickTimekeeping.ClockTickRate + profile.Hz / 2) / profile.Hz; // LATCH (include/linux/jiffies.h)
            }
        }
        _calibration = new TscCalibration(machine);
        _watchdog = new ClocksourceWatchdog(this, machine, _sources, _vcpus[0].Shared, n);
        _idleSaved = [];
        if (profile.TickKind == TickKind.PeriodicLapic)
        {
            _periodic = true;
            _periodicSetup = (int)program.Labels[KernelLibrary.PeriodicSetupLabel].Value;
        }
        if (profile.TickKind == TickKind.NoHzIdle)
        {
            _noHz = new NoHzTick(this, n, profile.Hz, at => _timekeeping.NowNs(at), at => _timekeeping.Tick(at), _watchdog);
            _noHzSetup = (int)program.Labels[KernelLibrary.NoHzSetupLabel].Value;
            _noHzDead = (int)program.Labels[KernelLibrary.NoHzDeadLabel].Value;
            _idleSaved = new long[5 * n];
            _ipi = sim.RegisterKind($"guest.{machine.Name}.ipi", EventBand.Guest, this);
            EnterIdleOnHlt(program);
            foreach (var v in _vcpus)
            {
                v.AttachInterruptSource(IpiSource.Instance); // a halted CPU can always be woken by another's IPI
            }
        }
        foreach (var v in _vcpus)
        {
            v.Kernel = this;
        }
        machine.OnNotify(at => Notified(at));
    }

    /// <summary>The OS profile.</summary>
    public OsProfile Profile { get; }

    /// <summary>The clocksource asked for (the kernel's <c>clocksource=</c>), if any.</summary>
    public ClocksourceKind? RequestedClocksource { get; }

    /// <summary>Instruction index where the workload begins.</summary>
    public int WorkloadEntry { get; }

    /// <summary>The clocksource in use (meaningful once <see cref="TimekeepingStarted"/>).</summary>
    public ClocksourceKind Clocksource => _timekeeping.Clocksource;

    /// <summary>Timekeeping is initialised (boot calibration done).</summary>
    public bool TimekeepingStarted => _timekeepingStarted;

    /// <summary>Every clocksource change, the boot choice first.</summary>
    public IReadOnlyList<ClocksourceSwitch> Switches => _switches;

    /// <summary>Kernel messages, as dmesg would show them.</summary>
    public IReadOnlyList<(SimTime Time, string Message)> Log => _log;

    /// <summary>The boot calibration, or null before it ends.</summary>
    public CalibrationResult? Calibration { get; private set; }

    /// <summary>The TSC rate the kernel uses (kHz; 0 = unknown).</summary>
    public long TscKhz { get; private set; }

    /// <summary>Why the TSC was marked unstable, or null.</summary>
    public string? TscUnstable { get; private set; }

    /// <summary>Warps the boot-time warp test measured: (target vCPU, warps, largest warp in cycles).</summary>
    public List<(int Vcpu, long Warps, long MaxWarpCycles)> WarpTests => _smp.WarpTests;
    /// <summary>Each warp test's start, end and <c>loop_timeout</c> (ms).</summary>
    public List<(SimTime Start, SimTime End, int TimeoutMilliseconds)> WarpTestSpans => _smp.WarpTestSpans;

    /// <summary>Notifications the kernel acted on.</summary>
    public int NotificationsHandled { get; private set; }

    /// <summary>mult and shift of the current clocksource.</summary>
    public (uint Mult, int Shift) Scale => _timekeeping.Scale;

    /// <summary>The 2.6.18 x86_64 tick-driven timekeeping (jiffies, lost ticks, the HPET fallback), or null for other profiles.</summary>
    public TickTimekeeping? Tick2618 => _tick2618;

    /// <summary>The rating of clocksource <paramref name="kind"/> now (the profile's, as changed since: kvm-clock 299, the 2.6.18 i386 TSC's 50).</summary>
    public int RatingOf(ClocksourceKind kind) => _sources.Rating(kind);

    /// <summary>The modern NO_HZ_IDLE tick, or null for other profiles.</summary>
    internal NoHzTick? NoHz => _noHz;

    /// <summary>
    /// A delta "behind" cycle_last counts as no time: clocksource_delta's negative check and
    /// vread_tsc's clamp (modern profiles, and those honouring the STABLE bit); old kernels count
    /// it as negative time.
    /// </summary>
    internal bool ClampsNegative => Profile.Watchdog == WatchdogKind.Modern || Profile.HonoursStableFlag;

    /// <summary>
    /// The workload followed by the kernel library, as one program: the workload is user code
    /// (<see cref="UserCode"/>: no <c>kcall</c>, only the kernel's <see cref="KernelLibrary.EntryPoints"/>),
    /// and its last instruction is followed by <c>kend</c>, so running past it is a fault.
    /// </summary>
    /// <exception cref="AssemblyException">The workload does not assemble (line numbers are the workload's own) or has no instruction.</exception>
    public static GuestProgram Assemble(string workload, string name)
    {
        string text = workload.EndsWith('\n') ? workload : workload + "\n";
        int userLines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Count(c => c == '\n');
        GuestProgram program = Assembler.Assemble(text + KernelLibrary.Source + "\n" + KernelLibrary.Tick2618Source + "\n" + KernelLibrary.NoHzSource + "\n" + KernelLibrary.I386Source + "\n" + KernelLibrary.PeriodicSource + "\n", name, new UserCode(userLines, KernelLibrary.EntryPoints));
        if (program.Labels[KernelLibrary.WorkloadEndLabel].Value == 0)
        {
            throw new AssemblyException(name, [new AssemblyError(1, 1, "the workload has no instruction; it needs at least one (e.g. 'hlt')")]);
        }
        return program;
    }

    /// <summary>
    /// Whether source line <paramref name="line"/> of a program from <see cref="Assemble"/> is a
    /// line of the workload (as opposed to the kernel library that follows it).
    /// </summary>
    public static bool IsWorkloadLine(GuestProgram program, int line) =>
        line >= 1 && line < program.Labels[KernelLibrary.WorkloadEndLabel].Line - 1; // the library starts with 'section .text'

    /// <summary>The line within <see cref="KernelLibrary.Source"/> of source line <paramref name="line"/> of a program from <see cref="Assemble"/>.</summary>
    public static int KernelLibraryLine(GuestProgram program, int line) =>
        line - (program.Labels[KernelLibrary.WorkloadEndLabel].Line - 2);

    // ---------------------------------------------------------------- services

    /// <inheritdoc />
    public KernelCallResult Call(Vcpu vcpu, int service, SimTime at, long cycles, long exits)
    {
        int v = IndexOf(vcpu);
        switch (service)
        {
            case KernelLibrary.ReadBegin:
                _readMarkCycles[v] = cycles;
                _readMarkExits[v] = exits;
                _readBegin[v] = at;
                _timekeeping.BeginRead(vcpu, v, ReadFlags());
                if (_tick2618 is not null)
                {
                    vcpu.Jump(_read2618); // do_gettimeofday's own offset read
                }
                return KernelCallResult.Continue;
            case KernelLibrary.ReadEnd:
                long ns = _timekeeping.EndRead(vcpu, v);
                vcpu.SetRegister(Registers.Rax, ns);
                vcpu.Observer?.OnClockRead(vcpu, _readBegin[v], at, ns, cycles - _readMarkCycles[v], (int)(exits - _readMarkExits[v]));
                return KernelCallResult.Continue;
            case KernelLibrary.Boot:
                return Boot(vcpu, v, at);
            case KernelLibrary.CalibrationBegin:
                TscCalibration.Begin(vcpu, Profile.ReadRefsThresholdCycles);
                return KernelCallResult.Continue;
            case KernelLibrary.CalibrationStep:
                if (_calibration.Step(vcpu) is CalibrationResult result)
                {
                    CalibrationDone(at, result);
                }
                return KernelCallResult.Continue;
            case KernelLibrary.TimekeepingInit:
                InitTimekeeping(at);
                return KernelCallResult.Continue;
            case KernelLibrary.BringUpNext:
                _smp.Next(vcpu, at);
                return KernelCallResult.Continue;
            case KernelLibrary.WarpResult:
                _smp.Result(at);
                return KernelCallResult.Continue;
            case KernelLibrary.EnterWorkload when !_timerSetUp[v] && TickService(vcpu, v, service, at):
                return KernelCallResult.Continue; // the vCPU arms its tick first (GuestKernel.Ticks.cs)
            case KernelLibrary.EnterWorkload:
                for (int r = 0; r < 16; r++)
                {
                    vcpu.SetRegister(r, 0);
                }
                vcpu.SetRegister(Registers.Rdi, v);
                vcpu.SetRegister(Registers.Rsp, GuestAddressMap.StackTop);
                vcpu.Jump(WorkloadEntry);
                return KernelCallResult.Continue;
            default:
                if (TickService(vcpu, v, service, at))
                {
                    return KernelCallResult.Continue;
                }
                throw new InvalidOperationException($"{vcpu.Name}: unknown kernel service {service}");
        }
    }

    /// <summary>The vCPU's index in the VM, from its executor id (no search on the read path).</summary>
    private int IndexOf(Vcpu vcpu)
    {
        int id = vcpu.Id - _firstVcpuId;
        if ((uint)id >= (uint)_vcpus.Length || !ReferenceEquals(_vcpus[id], vcpu))
        {
            throw new InvalidOperationException($"{vcpu.Name} does not belong to {_machine.Name}");
        }
        return id;
    }

    /// <summary>get_cycles_sync's CPUID (include/asm-x86_64/timex.h): on every CPU but Intel's (only init_intel sets X86_FEATURE_SYNC_RDTSC).</summary>
    private int CpuidFlag => _machine.AmdCpu ? KernelLibrary.FlagCpuidBeforeRdtsc : 0;

    /// <summary>
    /// The local APIC timer's initial count for one tick with divide 16 (__setup_APIC_LVTT:
    /// TMICT = calibration_result / 16, calibration_result = APIC Hz × 16 / HZ). The kernel's
    /// calibrate_APIC_clock measurement is taken as exact: KVM's APIC bus is 1 GHz (APIC_BUS_CYCLE_NS = 1).
    /// </summary>
    private static long ApicTimerCount(int hz) => 1_000_000_000L / hz / 16;

    /// <summary>The read routine's flags (<see cref="KernelLibrary"/>'s Flag* bits), from the profile and what the machine offers now.</summary>
    private int ReadFlags() => _tick2618 is not null ? KernelLibrary.FlagClampNegative | CpuidFlag :
        (ClampsNegative ? KernelLibrary.FlagClampNegative : 0)
        | (Profile.HonoursStableFlag && _machine.StableBitFeature ? KernelLibrary.FlagHonourStable : 0)
        | (Profile.ReactsToNotification && _machine.HasRdtscp ? KernelLibrary.FlagRdtscpWhenTrapped : 0);

    /// <summary>Adds a kernel message (dmesg).</summary>
    internal void Message(SimTime at, string text) => _log.Add((at, text));

    private KernelCallResult Boot(Vcpu vcpu, int v, SimTime at)
    {
        if (v != 0)
        {
            vcpu.SetRegister(Registers.Rbx, 10);
            return KernelCallResult.Wait; // brought online by the BSP
        }
        if (Profile.Calibration == CalibrationKind.Pvclock && _machine.HasKvmclock && _sources.Has(ClocksourceKind.KvmClock))
        {
            // kvm_get_tsc_khz: the rate from vCPU 0's pvclock record (pvclock_tsc_khz).
            var (mul, shift) = PvclockAbi.ReadScale(PvclockAbi.Record(_vcpus[0].Shared.Pvclock, 0));
            TscKhz = mul == 0 ? 0 : (long)PvclockAbi.TscKhz(mul, shift);
            Calibration = new CalibrationResult(TscKhz, "pvclock", 0);
            Message(at, $"tsc: Detected {TscKhz / 1000}.{TscKhz % 1000:D3} MHz processor (from kvm-clock)");
            vcpu.SetRegister(Registers.Rbx, 0);
        }
        else if (_tick2618 is not null)
        {
            vcpu.SetRegister(Registers.Rbx, CpuidFlag);
            // time_init: hpet_init when the ACPI tables describe an HPET (then hpet_calibrate_tsc if it
            // has legacy replacement), else pit_init and pit_calibrate_tsc.
            vcpu.Jump(_sources.Has(ClocksourceKind.Hpet) ? _hpet2618 : _cal2618);
        }
        else if (_pit386)
        {
            vcpu.Jump(_cal386); // tsc_init: calculate_cpu_khz
        }
        else
        {
            vcpu.SetRegister(Registers.Rbx, 1);
        }
        return KernelCallResult.Continue;
    }

    private void CalibrationDone(SimTime at, CalibrationResult result)
    {
        long khz = result.TscKhz;
        TscKhz = khz;
        Calibration = result;
        Message(at, $"tsc: {result.Method}; {khz / 1000}.{khz % 1000:D3} MHz processor ({result.Attempts} attempt(s))");
        if (khz == 0)
        {
            MarkTscUnstable(at, "TSC calibration failed");
        }
    }

    // ---------------------------------------------------------------- clocksources

    private void InitTimekeeping(SimTime at)
    {
        if (Profile.KvmclockRatingWithInvariantTsc is int lowered && _machine.InvariantTscExposed && TscUnstable is null
            && _sources.Has(ClocksourceKind.KvmClock))
        {
            _sources.SetRating(ClocksourceKind.KvmClock, lowered);
        }
        if (_pit386 && _machine.AmdCpu && _vcpus.Length > 1)
        {
            MarkTscUnstable(at, "unsynchronized_tsc (a non-Intel CPU and num_possible_cpus() > 1: init_tsc_clocksource)");
        }
        ClocksourceKind cs = _tick2618 is not null ? GtodSource2618()
            : _sources.Best() ?? throw new InvalidOperationException($"{_machine.Name}: no usable clocksource");
        _timekeepingStarted = true;
        _timekeeping.Start(at, cs);
        string why = RequestedClocksource == cs ? "clocksource= option" : $"rating {_sources.Rating(cs)}";
        _switches.Add(new ClocksourceSwitch(at, null, cs, $"boot: {why}"));
        Message(at, $"clocksource: Switched to clocksource {OsProfiles.NameOf(cs)}");
        if (_noHz is not null)
        {
            _noHz.Start(at, TscKhz); // the tick and the watchdog's timer run from timer interrupts
        }
        else if (_tick2618 is null && !_pit386 && !_periodic)
        {
            _sim.Schedule(at + TickPeriod, _tick);
        }
        if (Profile.Watchdog != WatchdogKind.None && _noHz is null)
        {
            _sim.Schedule(at + ClocksourceWatchdog.Interval, _watchdogEvent);
        }
        if (Profile.VerifiesTscFrequency && _pit386)
        {
            _verifyAtJiffies386 = _jiffies386 + Profile.Hz * 10; // init_tsc_clocksource: jiffies + msecs_to_jiffies(10000), run by the tick
        }
        else if (Profile.VerifiesTscFrequency)
        {
            _sim.Schedule(at + VerifyTscInterval, _verifyTsc); // init_tsc_clocksource: jiffies + msecs_to_jiffies(10000)
        }
    }

    /// <summary>
    /// time_init_gtod (2.6.18 x86_64): notsc when unsynchronized_tsc() — a non-Intel CPU with more
    /// than one CPU present (Intel: 0, taking QEMU's FADT to disable C3: UNCONFIRMED) — or when the
    /// TSC is unusable; then the HPET if there is one, else the PM timer; otherwise the TSC.
    /// </summary>
    private ClocksourceKind GtodSource2618()
    {
        bool notsc = (_machine.AmdCpu && _vcpus.Length > 1) || TscUnstable is not null || TscKhz <= 0;
        if (!notsc)
        {
            return ClocksourceKind.Tsc;
        }
        return _sources.Has(ClocksourceKind.Hpet) ? ClocksourceKind.Hpet : ClocksourceKind.AcpiPm;
    }

    /// <summary>Records a clocksource change the timekeeping made itself (2.6.18's fallback to the HPET).</summary>
    internal void RecordSwitch(SimTime at, ClocksourceKind from, ClocksourceKind to, string reason) =>
        _switches.Add(new ClocksourceSwitch(at, from, to, reason));

    private void SwitchTo(ClocksourceKind to, SimTime at, string reason)
    {
        ClocksourceKind from = _timekeeping.Clocksource;
        if (to == from)
        {
            return;
        }
        _timekeeping.Switch(at, to);
        _switches.Add(new ClocksourceSwitch(at, from, to, reason));
        Message(at, $"clocksource: Switched to clocksource {OsProfiles.NameOf(to)} ({reason})");
    }

    /// <summary>mark_tsc_unstable: the TSC stops being a usable clocksource; if it was the current one, the next best takes over.</summary>
    internal void MarkTscUnstable(SimTime at, string reason)
    {
        if (TscUnstable is not null)
        {
            return;
        }
        TscUnstable = reason;
        Message(at, $"tsc: Marking TSC unstable due to {reason}");
        _noHz?.StopWatchdog(); // the TSC leaves the watchdog list
        if (Profile.UnstableTscRating is int lowered && _sources.Has(ClocksourceKind.Tsc))
        {
            // 2.6.18 i386 mark_tsc_unstable only sets tsc_unstable; tsc_update_callback lowers the rating on the next tick.
            _sources.SetRating(ClocksourceKind.Tsc, lowered);
            return;
        }
        if (_timekeepingStarted && _timekeeping.Clocksource == ClocksourceKind.Tsc && _sources.Best() is ClocksourceKind next)
        {
            SwitchTo(next, at, $"TSC unstable: {reason}");
        }
    }

    // ---------------------------------------------------------------- timers and notifications

    /// <inheritdoc />
    void IEventHandler.OnEvent(Simulator sim, in SimEvent e)
    {
        if (_noHz is not null && e.Kind == _ipi)
        {
            _vcpus[e.Subject].RaiseInterrupt(KernelLibrary.RescheduleVector, Hardware.InterruptSource.Ipi, e.Time);
        }
        else if (e.Kind == _tick)
        {
            if (AnyVcpuRunning())
            {
                _timekeeping.Tick(e.Time);
            }
            sim.Schedule(e.Time + TickPeriod, _tick);
        }
        else if (e.Kind == _watchdogEvent)
        {
            if (AnyVcpuRunning())
            {
                _watchdog.Check(e.Time);
            }
            if (TscUnstable is null)
            {
                sim.Schedule(e.Time + ClocksourceWatchdog.Interval, _watchdogEvent);
            }
        }
        else if (e.Kind == _notify)
        {
            RespondToNotification(e.Time);
        }
        else if (Profile.VerifiesTscFrequency && e.Kind == _verifyTsc)
        {
            VerifyTscFreq(e.Time);
            if (TscUnstable is null)
            {
                sim.Schedule(e.Time + VerifyTscInterval, _verifyTsc);
            }
        }
    }

    /// <summary>2.6.18 i386 jiffies (IRQ0 ticks since timekeeping started).</summary>
    public long Jiffies386 => _jiffies386;

    /// <summary>TSC_FREQ_CHECK_INTERVAL (arch/i386/kernel/tsc.c, 2.6.18): 10 s.</summary>
    public static readonly Duration VerifyTscInterval = Duration.FromSeconds(10);

    /// <summary>
    /// verify_tsc_freq (arch/i386/kernel/tsc.c, 2.6.18): the first run only records; later runs
    /// compute interval_jiffies and interval_tsc = Δtsc × HZ / (cpu_khz × 1000) and mark the TSC
    /// unstable when interval_tsc &lt; interval_jiffies × 3/4 ("TSC appears to be running slowly").
    /// A faster TSC is never caught. jiffies are taken as true time at HZ = 1000 (the model's
    /// i386 kernel takes no tick interrupt), the TSC as vCPU 0's.
    /// </summary>
    private void VerifyTscFreq(SimTime at)
    {
        long hz = _pit386 ? Profile.Hz : 1000;
        if (TscUnstable is not null || !AnyVcpuRunning())
        {
            return;
        }
        ulong tsc = _machine.PeekTsc(0, at);
        if (_verifyLastAt is SimTime last && TscKhz > 0)
        {
            long intervalJiffies = _pit386 ? _jiffies386 - _verifyLastJiffies
                : at.NanosecondsFloor * hz / 1_000_000_000 - last.NanosecondsFloor * hz / 1_000_000_000;
            long intervalTsc = (long)(unchecked(tsc - _verifyLastTsc) * (ulong)hz / ((ulong)TscKhz * 1000));
            if (intervalTsc < intervalJiffies * 3 / 4)
            {
                Message(at, "TSC appears to be running slowly. Marking it as unstable");
                MarkTscUnstable(at, "verify_tsc_freq: TSC running slowly");
                return;
            }
        }
        _verifyLastAt = at;
        _verifyLastTsc = tsc;
        _verifyLastJiffies = _jiffies386;
    }

    /// <summary>
    /// The kernel's timers run on whichever CPU is online and running (Linux hands the timekeeping
    /// update to another CPU when one stalls): they pause only when the whole VM does (migration
    /// downtime, or every vCPU descheduled). A vCPU waiting to be brought online does not count.
    /// </summary>
    private bool AnyVcpuRunning()
    {
        foreach (var v in _vcpus)
        {
            if (!v.Paused && !v.KernelWaiting && !v.Halted)
            {
                return true;
            }
        }
        return false;
    }

    private void Notified(SimTime at)
    {
        bool reacts = _machine.NotificationIsReenlightenment ? Profile.RegistersReenlightenment : Profile.ReactsToNotification;
        if (reacts && _timekeepingStarted)
        {
            _sim.Schedule(at + Profile.NotificationDelay, _notify);
        }
    }

    /// <summary>
    /// The guest's answer to a notification: acknowledge (the hypervisor may stop emulating),
    /// then re-read the TSC rate and, if the TSC is the clocksource, continue with the new
    /// mult/shift from this instant (time stays continuous).
    /// </summary>
    private void RespondToNotification(SimTime at)
    {
        NotificationsHandled++;
        _machine.AcknowledgeTscChange(at);
        long khz = _machine.AdvertisedTscKhz;
        if (khz == TscKhz || khz <= 0)
        {
            Message(at, "tsc: notification acknowledged; TSC rate unchanged");
            return;
        }
        long old = TscKhz;
        TscKhz = khz;
        _timekeeping.TscRateChanged(at); // time so far at the old rate, then the new one
        _noHz?.SetTscKhz(khz);             // lapic_update_tsc_freq: the TSC-deadline clockevent at the new rate
        _watchdog.Restart();
        Message(at, $"tsc: notification acknowledged; TSC rate {old} kHz -> {khz} kHz");
    }
}

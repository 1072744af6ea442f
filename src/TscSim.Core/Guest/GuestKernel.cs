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
public sealed class GuestKernel : IGuestKernel, IEventHandler
{
    /// <summary>The periodic tick that accumulates time into the timekeeper's base.</summary>
    public static readonly Duration TickPeriod = Duration.FromMilliseconds(10);

    private readonly IGuestMachine _machine;
    private readonly Vcpu[] _vcpus;      // the VM's vCPUs, cached: IGuestMachine.Vcpus may box on every access
    private readonly int _firstVcpuId;   // executor id of vCPU 0; a VM's vCPUs have consecutive ids
    private readonly Simulator _sim;
    private readonly EventKind _tick, _watchdogEvent, _notify;
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
        _sources = new Clocksources(this, machine);
        _timekeeping = new ClocksourceTimekeeping(_sources, machine, n, ClampsNegative);
        _calibration = new TscCalibration(machine);
        _watchdog = new ClocksourceWatchdog(this, machine, _sources, _vcpus[0].Shared, n);
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

    /// <summary>Notifications the kernel acted on.</summary>
    public int NotificationsHandled { get; private set; }

    /// <summary>mult and shift of the current clocksource.</summary>
    public (uint Mult, int Shift) Scale => _timekeeping.Scale;

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
        GuestProgram program = Assembler.Assemble(text + KernelLibrary.Source, name, new UserCode(userLines, KernelLibrary.EntryPoints));
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
                return KernelCallResult.Continue;
            case KernelLibrary.ReadEnd:
                long ns = _timekeeping.EndRead(vcpu, v);
                vcpu.SetRegister(Registers.Rax, ns);
                vcpu.Observer?.OnClockRead(vcpu, _readBegin[v], at, ns, cycles - _readMarkCycles[v], (int)(exits - _readMarkExits[v]));
                return KernelCallResult.Continue;
            case KernelLibrary.Boot:
                return Boot(vcpu, v, at);
            case KernelLibrary.CalibrationBegin:
                TscCalibration.Begin(vcpu);
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

    /// <summary>The read routine's flags (<see cref="KernelLibrary"/>'s Flag* bits), from the profile and what the machine offers now.</summary>
    private int ReadFlags() =>
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
        ClocksourceKind cs = _sources.Best() ?? throw new InvalidOperationException($"{_machine.Name}: no usable clocksource");
        _timekeepingStarted = true;
        _timekeeping.Start(at, cs);
        string why = RequestedClocksource == cs ? "clocksource= option" : $"rating {_sources.Rating(cs)}";
        _switches.Add(new ClocksourceSwitch(at, null, cs, $"boot: {why}"));
        Message(at, $"clocksource: Switched to clocksource {OsProfiles.NameOf(cs)}");
        _sim.Schedule(at + TickPeriod, _tick);
        if (Profile.Watchdog != WatchdogKind.None)
        {
            _sim.Schedule(at + ClocksourceWatchdog.Interval, _watchdogEvent);
        }
    }

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
        if (_timekeepingStarted && _timekeeping.Clocksource == ClocksourceKind.Tsc && _sources.Best() is ClocksourceKind next)
        {
            SwitchTo(next, at, $"TSC unstable: {reason}");
        }
    }

    // ---------------------------------------------------------------- timers and notifications

    /// <inheritdoc />
    void IEventHandler.OnEvent(Simulator sim, in SimEvent e)
    {
        if (e.Kind == _tick)
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
        _watchdog.Restart();
        Message(at, $"tsc: notification acknowledged; TSC rate {old} kHz -> {khz} kHz");
    }
}

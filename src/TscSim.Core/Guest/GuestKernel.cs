using System.Collections.Immutable;
using TscSim.Core.Engine;
using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>A change of the guest's clocksource (the first one is the choice at boot, with <see cref="From"/> null).</summary>
public sealed record ClocksourceSwitch(SimTime Time, ClocksourceKind? From, ClocksourceKind To, string Reason);

/// <summary>How the guest's boot calibration went.</summary>
public sealed record CalibrationResult(long TscKhz, string Method, int Attempts);

/// <summary>
/// The guest kernel of one VM, on the model side: services entered by <c>kcall</c> from the
/// kernel code in <see cref="KernelLibrary"/> (boot, calibration bookkeeping, SMP bring-up,
/// clock reads), the timekeeper (the current clocksource, its mult/shift and the accumulated
/// base), the periodic tick, the clocksource watchdog and the response to notifications.
/// </summary>
/// <remarks>
/// <para>What runs as guest code (and so costs what the interpreter and the exit path say):
/// every clock read, the PIT calibration loop and its reference reads, the warp test. What runs
/// here, as kernel services at exact instants: decisions on measured values (the kernel's
/// rejection rules), clocksource selection, the tick's accumulation and the watchdog (their
/// own reads use side-effect-free views of the clocks and are not charged to any vCPU).</para>
/// <para>The timekeeper is Linux's: <c>ns = base + ((delta × mult + frac) >> shift)</c> with
/// <c>delta = (cycles − cycle_last) &amp; mask</c>, accumulated every tick (10 ms) so masked
/// counters never wrap between accumulations; mult and shift from
/// <see cref="CalcMultShift"/>. A clocksource switch keeps time continuous. The guest clock
/// starts at true time when timekeeping is initialised (as from a perfect RTC).</para>
/// </remarks>
public sealed class GuestKernel : IGuestKernel, IEventHandler
{
    /// <summary>The periodic tick that accumulates time into the timekeeper's base.</summary>
    public static readonly Duration TickPeriod = Duration.FromMilliseconds(10);

    /// <summary>WATCHDOG_INTERVAL: HZ/2.</summary>
    public static readonly Duration WatchdogInterval = Duration.FromMilliseconds(500);

    /// <summary>Linux before 5.x: WATCHDOG_THRESHOLD = NSEC_PER_SEC >> 4 = 62.5 ms (DOMAIN §6.3).</summary>
    public const long LegacyWatchdogThresholdNs = 1_000_000_000 >> 4;

    /// <summary>Modern WATCHDOG_MAX_SKEW: MAX_SKEW_USEC = 125 × WATCHDOG_INTERVAL / HZ = 62 µs.</summary>
    public const long WatchdogMaxSkewNs = 62_000;

    /// <summary>WATCHDOG_INTERVAL_MAX_NS: a longer interval means a delayed watchdog; the check is skipped.</summary>
    public const long WatchdogIntervalMaxNs = 1_000_000_000;

    /// <summary>check_tsc_warp's timeout for a vCPU without online siblings (each vCPU is its own core here).</summary>
    public const int WarpTestMilliseconds = 20;

    /// <summary>PIT_TICK_RATE / (1000 / CAL_MS) and / (1000 / CAL2_MS), and their minimum loop counts.</summary>
    public const int CalLatch = 1_193_182 / 100, Cal2Latch = 1_193_182 / 20, CalMs = 10, Cal2Ms = 50, CalLoops = 1000, Cal2Loops = 5000;

    private readonly IGuestMachine _machine;
    private readonly Vcpu[] _vcpus;      // the VM's vCPUs, cached: IGuestMachine.Vcpus may box on every access
    private readonly int _firstVcpuId;   // executor id of vCPU 0; a VM's vCPUs have consecutive ids
    private readonly Simulator _sim;
    private readonly GuestProgram _program;
    private readonly EventKind _tick, _watchdog, _notify;
    private readonly long[] _readMarkCycles;
    private readonly long[] _readMarkExits;
    private readonly long[] _readBeginPs;
    private readonly (long Base, ulong Frac, uint Mult, int Shift, ulong Mask)[] _readSnapshot;
    private readonly List<ClocksourceSwitch> _switches = [];
    private readonly List<(SimTime Time, string Message)> _log = [];
    private readonly Dictionary<ClocksourceKind, int> _ratings = [];
    private readonly long _nrWarpsAddress, _maxWarpAddress, _lastTscAddress;

    // timekeeper
    private bool _timekeeping;
    private ClocksourceKind _cs;
    private ulong _cycleLast;
    private long _baseNs;
    private ulong _frac;
    private uint _mult;
    private int _shift;
    private ulong _mask;

    // calibration state
    private int _calAttempt;
    private int _calMs = CalMs;
    private long _pitMin = long.MaxValue, _refMin = long.MaxValue;

    // bring-up state
    private int _nextAp;
    private int _pairs;

    // watchdog baselines
    private bool _wdBaseline;
    private ulong _wdLastWd, _wdLastCs;
    private ClocksourceKind _wdSource;

    /// <summary>Creates the kernel of <paramref name="machine"/> running <paramref name="program"/> (from <see cref="Assemble"/>).</summary>
    public GuestKernel(OsProfile profile, ClocksourceKind? clocksource, IGuestMachine machine, Simulator sim, GuestProgram program)
    {
        Profile = profile;
        RequestedClocksource = clocksource ?? profile.Clocksource;
        _machine = machine;
        _sim = sim;
        _program = program;
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
        _readBeginPs = new long[n];
        _readSnapshot = new (long, ulong, uint, int, ulong)[n];
        _nrWarpsAddress = program.AddressOf("__k_nr_warps");
        _maxWarpAddress = program.AddressOf("__k_max_warp");
        _lastTscAddress = program.AddressOf("__k_last_tsc");
        WorkloadEntry = 0;
        _tick = sim.RegisterKind($"guest.{machine.Name}.tick", EventBand.Guest, this);
        _watchdog = sim.RegisterKind($"guest.{machine.Name}.watchdog", EventBand.Guest, this);
        _notify = sim.RegisterKind($"guest.{machine.Name}.notified", EventBand.Guest, this);
        foreach (var (kind, rating) in profile.Ratings)
        {
            _ratings[kind] = rating;
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
    public ClocksourceKind Clocksource => _cs;

    /// <summary>Timekeeping is initialised (boot calibration done).</summary>
    public bool TimekeepingStarted => _timekeeping;

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
    public List<(int Vcpu, long Warps, long MaxWarpCycles)> WarpTests { get; } = [];

    /// <summary>Notifications the kernel acted on.</summary>
    public int NotificationsHandled { get; private set; }

    /// <summary>mult and shift of the current clocksource.</summary>
    public (uint Mult, int Shift) Scale => (_mult, _shift);

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

    /// <summary>
    /// clocks_calc_mult_shift: the largest shift (≤ 32) whose mult converts <paramref name="fromHz"/>
    /// to <paramref name="toHz"/> without overflowing 64 bits for <paramref name="maxSeconds"/> of cycles.
    /// </summary>
    public static (uint Mult, int Shift) CalcMultShift(ulong fromHz, ulong toHz, ulong maxSeconds)
    {
        // How many bits the product may use beyond 32: fewer the more cycles maxSeconds holds.
        int headroom = 32;
        ulong t = (ulong)(((UInt128)maxSeconds * fromHz) >> 32);
        while (t != 0)
        {
            t >>= 1;
            headroom--;
        }
        ulong mult = 0;
        int shift;
        for (shift = 32; shift > 0; shift--)
        {
            mult = (ulong)((((UInt128)toHz << shift) + fromHz / 2) / fromHz);
            if ((mult >> headroom) == 0)
            {
                break;
            }
        }
        return ((uint)mult, shift);
    }

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
                _readBeginPs[v] = at.Picoseconds;
                LoadReadRegisters(vcpu, v);
                return KernelCallResult.Continue;
            case KernelLibrary.ReadEnd:
                long ns = FinishRead(vcpu, v);
                vcpu.SetRegister(Registers.Rax, ns);
                vcpu.Observer?.OnClockRead(vcpu, SimTime.FromPicoseconds(_readBeginPs[v]), at, ns, cycles - _readMarkCycles[v], (int)(exits - _readMarkExits[v]));
                return KernelCallResult.Continue;
            case KernelLibrary.Boot:
                return Boot(vcpu, v, at);
            case KernelLibrary.CalibrationBegin:
                vcpu.SetRegister(Registers.Rsi, CalLatch);
                vcpu.SetRegister(Registers.R8, CalLoops);
                return KernelCallResult.Continue;
            case KernelLibrary.CalibrationStep:
                CalibrationStep(vcpu, at);
                return KernelCallResult.Continue;
            case KernelLibrary.TimekeepingInit:
                InitTimekeeping(at);
                return KernelCallResult.Continue;
            case KernelLibrary.BringUpNext:
                BringUpNext(vcpu, at);
                return KernelCallResult.Continue;
            case KernelLibrary.WarpResult:
                WarpResult(at);
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

    private void Message(SimTime at, string text) => _log.Add((at, text));

    private KernelCallResult Boot(Vcpu vcpu, int v, SimTime at)
    {
        if (v != 0)
        {
            vcpu.SetRegister(Registers.Rbx, 10);
            return KernelCallResult.Wait; // brought online by the BSP
        }
        if (Profile.Calibration == CalibrationKind.Pvclock && _machine.HasKvmclock && _ratings.ContainsKey(ClocksourceKind.KvmClock))
        {
            // kvm_get_tsc_khz: the rate from vCPU 0's pvclock record (pvclock_tsc_khz).
            var (mul, shift) = ReadPvclockScale(0);
            TscKhz = mul == 0 ? 0 : PvclockTscKhz(mul, shift);
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

    /// <summary>pvclock_tsc_khz: (10^6 &lt;&lt; 32) / mul, shifted back by tsc_shift.</summary>
    public static long PvclockTscKhz(uint mul, sbyte shift)
    {
        ulong khz = (1_000_000UL << 32) / mul;
        return (long)(shift < 0 ? khz << -shift : khz >> shift);
    }

    private (uint Mul, sbyte Shift) ReadPvclockScale(int v)
    {
        byte[] pv = _vcpus[v].Shared.Pvclock;
        int o = v * 32;
        return (System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(pv.AsSpan(o + 24, 4)), unchecked((sbyte)pv[o + 28]));
    }

    private void CalibrationStep(Vcpu vcpu, SimTime at)
    {
        unchecked
        {
            long tsc1 = vcpu.Register(Registers.R12), hpet1 = vcpu.Register(Registers.R13);
            long pit = vcpu.Register(Registers.R9);
            long tsc2 = vcpu.Register(Registers.R14), hpet2 = vcpu.Register(Registers.R15);
            _calAttempt++;
            long pitKhz = pit == -1 ? long.MaxValue : pit / _calMs;
            _pitMin = Math.Min(_pitMin, pitKhz);
            long refKhz = long.MaxValue;
            if (hpet1 != -1 && hpet2 != -1)
            {
                // calc_hpet_ref: kHz = Δtsc × 10^6 / Δns, Δns = Δticks (32-bit wrap) × period / 10^6.
                ulong ticks = (ulong)((hpet2 - hpet1) & 0xFFFF_FFFF);
                ulong deltaNs = (ulong)((UInt128)ticks * _machine.HpetPeriodFemtoseconds / 1_000_000);
                if (deltaNs > 0)
                {
                    refKhz = (long)((UInt128)(ulong)(tsc2 - tsc1) * 1_000_000 / deltaNs);
                    _refMin = Math.Min(_refMin, refKhz);
                }
            }
            bool done = false;
            if (_pitMin != long.MaxValue && refKhz != long.MaxValue)
            {
                long ratio = _pitMin * 100 / _refMin;
                if (ratio is >= 90 and <= 110)
                {
                    Finish(_refMin, "PIT calibration matches HPET");
                    done = true;
                }
            }
            if (!done && _calAttempt == 2 && _pitMin == long.MaxValue)
            {
                _calMs = Cal2Ms; // the PIT failed twice: the 50 ms window
                vcpu.SetRegister(Registers.Rsi, Cal2Latch);
                vcpu.SetRegister(Registers.R8, Cal2Loops);
            }
            if (!done && _calAttempt == 3)
            {
                if (_refMin == long.MaxValue && _pitMin == long.MaxValue)
                {
                    Finish(0, "Unable to calibrate against PIT");
                }
                else if (_refMin == long.MaxValue)
                {
                    Finish(_pitMin, "PIT calibration (no reference)");
                }
                else if (_pitMin == long.MaxValue)
                {
                    Finish(_refMin, "PIT calibration failed, using HPET");
                }
                else
                {
                    Finish(_pitMin, "PIT calibration deviates from HPET, using PIT");
                }
                done = true;
            }
            vcpu.SetRegister(Registers.Rbx, done ? 0 : 1);

            void Finish(long khz, string method)
            {
                TscKhz = khz;
                Calibration = new CalibrationResult(khz, method, _calAttempt);
                Message(at, $"tsc: {method}; {khz / 1000}.{khz % 1000:D3} MHz processor ({_calAttempt} attempt(s))");
                if (khz == 0)
                {
                    MarkTscUnstable(at, "TSC calibration failed");
                }
            }
        }
    }

    // ---------------------------------------------------------------- clocksources

    private bool Available(ClocksourceKind kind) => kind switch
    {
        ClocksourceKind.Tsc => _ratings.ContainsKey(kind) && TscUnstable is null && TscKhz > 0,
        ClocksourceKind.KvmClock => _ratings.ContainsKey(kind) && _machine.HasKvmclock,
        _ => _ratings.ContainsKey(kind),
    };

    /// <summary>The best available clocksource: the requested one if usable, else the highest rating.</summary>
    private ClocksourceKind? Best()
    {
        if (RequestedClocksource is ClocksourceKind wanted && Available(wanted))
        {
            return wanted;
        }
        ClocksourceKind? best = null;
        int bestRating = int.MinValue;
        foreach (var (kind, _) in Profile.Ratings)
        {
            if (Available(kind) && _ratings[kind] > bestRating)
            {
                best = kind;
                bestRating = _ratings[kind];
            }
        }
        return best;
    }

    private (ulong Hz, ulong Mask) Describe(ClocksourceKind kind) => kind switch
    {
        ClocksourceKind.Tsc => ((ulong)TscKhz * 1000, ulong.MaxValue),
        ClocksourceKind.KvmClock => (1_000_000_000, ulong.MaxValue),
        ClocksourceKind.Hpet => (1_000_000_000_000_000UL / _machine.HpetPeriodFemtoseconds, 0xFFFF_FFFF),
        _ => (3_579_545, 0xFF_FFFF),
    };

    /// <summary>The scale Linux registers a clocksource with: maxsec = mask / Hz, at least 1, at most 600 for wide counters.</summary>
    private (uint Mult, int Shift) ScaleFor(ClocksourceKind kind)
    {
        var (hz, mask) = Describe(kind);
        ulong sec = mask / hz;
        if (sec == 0)
        {
            sec = 1;
        }
        else if (sec > 600 && mask > uint.MaxValue)
        {
            sec = 600;
        }
        return CalcMultShift(hz, 1_000_000_000, sec);
    }

    /// <summary>The clocksource's counter as the kernel's own timers read it (vCPU 0's view).</summary>
    private ulong ReadCounter(ClocksourceKind kind, SimTime at) => kind switch
    {
        ClocksourceKind.Tsc => _machine.PeekTsc(0, at),
        ClocksourceKind.KvmClock => _machine.PeekKvmclock(0, at),
        ClocksourceKind.Hpet => _machine.PeekHpetCounter(at) & 0xFFFF_FFFF,
        _ => (ulong)_machine.PeekPmTimer(at) & 0xFF_FFFF,
    };

    private bool ClampsNegative => Profile.Watchdog == WatchdogKind.Modern || Profile.HonoursStableFlag;

    private void InitTimekeeping(SimTime at)
    {
        if (Profile.KvmclockRatingWithInvariantTsc is int lowered && _machine.InvariantTscExposed && TscUnstable is null
            && _ratings.ContainsKey(ClocksourceKind.KvmClock))
        {
            _ratings[ClocksourceKind.KvmClock] = lowered;
        }
        ClocksourceKind cs = Best() ?? throw new InvalidOperationException($"{_machine.Name}: no usable clocksource");
        _timekeeping = true;
        _baseNs = at.Picoseconds / 1000; // the clock starts at true time, as from the RTC
        Use(cs, at);
        string why = RequestedClocksource == cs ? "clocksource= option" : $"rating {_ratings[cs]}";
        _switches.Add(new ClocksourceSwitch(at, null, cs, $"boot: {why}"));
        Message(at, $"clocksource: Switched to clocksource {OsProfiles.NameOf(cs)}");
        _sim.Schedule(at + TickPeriod, _tick);
        if (Profile.Watchdog != WatchdogKind.None)
        {
            _sim.Schedule(at + WatchdogInterval, _watchdog);
        }
    }

    private void Use(ClocksourceKind cs, SimTime at)
    {
        _cs = cs;
        (_mult, _shift) = ScaleFor(cs);
        _mask = Describe(cs).Mask;
        _cycleLast = ReadCounter(cs, at);
        _frac = 0;
    }

    /// <summary>Time now, by the current clocksource, as the kernel's timers compute it; advances the base (the tick).</summary>
    private void Accumulate(SimTime at)
    {
        ulong now = ReadCounter(_cs, at);
        ulong delta = unchecked(now - _cycleLast) & _mask;
        if (_mask == ulong.MaxValue && unchecked((long)delta) < 0)
        {
            return; // behind cycle_last: no time passed for this reader
        }
        UInt128 p = (UInt128)delta * _mult + _frac;
        _baseNs = unchecked(_baseNs + (long)(ulong)(p >> _shift));
        _frac = (ulong)(p & ((UInt128.One << _shift) - 1));
        _cycleLast = now;
    }

    private void SwitchTo(ClocksourceKind to, SimTime at, string reason)
    {
        if (to == _cs)
        {
            return;
        }
        Accumulate(at);
        ClocksourceKind from = _cs;
        Use(to, at);
        _switches.Add(new ClocksourceSwitch(at, from, to, reason));
        Message(at, $"clocksource: Switched to clocksource {OsProfiles.NameOf(to)} ({reason})");
    }

    private void MarkTscUnstable(SimTime at, string reason)
    {
        if (TscUnstable is not null)
        {
            return;
        }
        TscUnstable = reason;
        Message(at, $"tsc: Marking TSC unstable due to {reason}");
        if (_timekeeping && _cs == ClocksourceKind.Tsc && Best() is ClocksourceKind next)
        {
            SwitchTo(next, at, $"TSC unstable: {reason}");
        }
    }

    private void LoadReadRegisters(Vcpu vcpu, int v)
    {
        int cs = _cs switch
        {
            ClocksourceKind.Tsc => KernelLibrary.CsTsc,
            ClocksourceKind.KvmClock => KernelLibrary.CsKvmclock,
            ClocksourceKind.Hpet => KernelLibrary.CsHpet,
            _ => KernelLibrary.CsAcpiPm,
        };
        int flags = (ClampsNegative ? KernelLibrary.FlagClampNegative : 0)
            | (Profile.HonoursStableFlag && _machine.StableBitFeature ? KernelLibrary.FlagHonourStable : 0)
            | (Profile.ReactsToNotification && _machine.HasRdtscp ? KernelLibrary.FlagRdtscpWhenTrapped : 0);
        vcpu.SetRegister(Registers.R8, cs);
        vcpu.SetRegister(Registers.R9, unchecked((long)_cycleLast));
        vcpu.SetRegister(Registers.R10, _mult);
        vcpu.SetRegister(Registers.Rsi, unchecked((long)_mask));
        vcpu.SetRegister(Registers.Rbx, flags);
        vcpu.SetRegister(Registers.R11, _machine.PvclockAddress(v));
        // The read completes with the timekeeper it started with (what the vDSO's seqcount
        // retry guarantees): a tick between begin and end must not mix old cycle_last with a new base.
        _readSnapshot[v] = (_baseNs, _frac, _mult, _shift, _mask);
    }

    /// <summary>ReadEnd: rdx:rax = delta × mult (from guest code), rcx = delta; returns base + ((product + frac) >> shift).</summary>
    private long FinishRead(Vcpu vcpu, int v)
    {
        unchecked
        {
            var (baseNs, frac, mult, shift, mask) = _readSnapshot[v];
            ulong delta = (ulong)vcpu.Register(Registers.Rcx);
            if (!ClampsNegative && mask == ulong.MaxValue && (long)delta < 0)
            {
                // An old kernel computes a negative delta as negative time: the clock steps back.
                UInt128 back = (UInt128)(ulong)(-(long)delta) * mult;
                return baseNs - (long)(ulong)(back >> shift);
            }
            UInt128 product = ((UInt128)(ulong)vcpu.Register(Registers.Rdx) << 64) | (ulong)vcpu.Register(Registers.Rax);
            return baseNs + (long)(ulong)((product + frac) >> shift);
        }
    }

    // ---------------------------------------------------------------- SMP bring-up and the warp test

    private void BringUpNext(Vcpu bsp, SimTime at)
    {
        _nextAp++;
        if (_nextAp >= _vcpus.Length)
        {
            bsp.SetRegister(Registers.Rbx, 2);
            return;
        }
        Vcpu ap = _vcpus[_nextAp];
        bool warp = Profile.WarpTest && TscUnstable is null && TscKhz > 0;
        long timeout = TscKhz * WarpTestMilliseconds;
        if (warp)
        {
            _pairs++;
        }
        foreach (var cpu in new[] { bsp, ap })
        {
            cpu.SetRegister(Registers.Rcx, timeout);
            cpu.SetRegister(Registers.R13, 2L * _pairs);
        }
        ap.SetRegister(Registers.R12, warp ? 1 : 0);
        bsp.SetRegister(Registers.Rbx, warp ? 1 : 0);
        ap.Wake(at);
    }

    private void WarpResult(SimTime at)
    {
        SharedMemory shared = _vcpus[0].Shared;
        long warps = shared.ReadQword(_nrWarpsAddress);
        long max = shared.ReadQword(_maxWarpAddress);
        shared.WriteQword(_nrWarpsAddress, 0);
        shared.WriteQword(_maxWarpAddress, 0);
        shared.WriteQword(_lastTscAddress, 0); // check_tsc_sync_source resets last_tsc for the next pair
        WarpTests.Add((_nextAp, warps, max));
        if (warps > 0)
        {
            Message(at, $"TSC synchronization [CPU#0 -> CPU#{_nextAp}]: Measured {max} cycles TSC warp between CPUs, turning off TSC clock.");
            MarkTscUnstable(at, "check_tsc_sync_source failed");
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
                Accumulate(e.Time);
            }
            sim.Schedule(e.Time + TickPeriod, _tick);
        }
        else if (e.Kind == _watchdog)
        {
            if (AnyVcpuRunning())
            {
                Watchdog(e.Time);
            }
            if (TscUnstable is null)
            {
                sim.Schedule(e.Time + WatchdogInterval, _watchdog);
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

    /// <summary>
    /// clocksource_watchdog for the TSC (the only MUST_VERIFY clocksource here): compares the
    /// TSC's ns over the interval with the watchdog's (the best clocksource that is not the
    /// TSC). Modern kernels skip it with an invariant TSC (CONSTANT_TSC, NONSTOP_TSC, TSC_ADJUST)
    /// and skip intervals longer than 1 s; a pvclock record with GUEST_STOPPED set makes the
    /// guest touch its watchdogs (the baseline restarts).
    /// </summary>
    private void Watchdog(SimTime at)
    {
        if (TscUnstable is not null || !_ratings.ContainsKey(ClocksourceKind.Tsc) || TscKhz == 0)
        {
            return;
        }
        if (Profile.Watchdog == WatchdogKind.Modern && _machine.InvariantTscExposed)
        {
            return;
        }
        if (ConsumeGuestStopped())
        {
            _wdBaseline = false;
        }
        ClocksourceKind? wd = null;
        int best = int.MinValue;
        foreach (var (kind, _) in Profile.Ratings)
        {
            if (kind != ClocksourceKind.Tsc && Available(kind) && _ratings[kind] > best)
            {
                wd = kind;
                best = _ratings[kind];
            }
        }
        if (wd is not ClocksourceKind source)
        {
            return;
        }
        ulong wdNow = ReadCounter(source, at);
        ulong csNow = ReadCounter(ClocksourceKind.Tsc, at);
        if (!_wdBaseline || source != _wdSource)
        {
            _wdBaseline = true;
            _wdSource = source;
            _wdLastWd = wdNow;
            _wdLastCs = csNow;
            return;
        }
        long wdNs = ToNs(source, Delta(unchecked(wdNow - _wdLastWd), Describe(source).Mask));
        long csNs = ToNs(ClocksourceKind.Tsc, Delta(unchecked(csNow - _wdLastCs), ulong.MaxValue));
        _wdLastWd = wdNow;
        _wdLastCs = csNow;
        long threshold;
        if (Profile.Watchdog == WatchdogKind.Modern)
        {
            if (wdNs > WatchdogIntervalMaxNs || csNs > WatchdogIntervalMaxNs || csNs < 0)
            {
                Message(at, $"clocksource: Long readout interval, skipping watchdog check: cs_nsec: {csNs} wd_nsec: {wdNs}");
                return;
            }
            threshold = Margin(ClocksourceKind.Tsc) + Margin(source);
        }
        else
        {
            threshold = LegacyWatchdogThresholdNs;
        }
        long skew = Math.Abs(csNs - wdNs);
        if (skew > threshold)
        {
            Message(at, $"clocksource: timekeeping watchdog: Marking clocksource 'tsc' as unstable because the skew is too large: "
                + $"'{OsProfiles.NameOf(source)}' wd_nsec: {wdNs}, 'tsc' cs_nsec: {csNs}");
            MarkTscUnstable(at, $"clocksource watchdog (skew {skew} ns over the interval against {OsProfiles.NameOf(source)}, limit {threshold} ns)");
        }
    }

    /// <summary>
    /// clocksource_delta: the masked difference, and 0 for a "negative" one (more than half the
    /// mask) in kernels that check it (modern profiles), so a TSC that stepped back shows as no
    /// time passed: the watchdog then sees the skew (the whole interval) and demotes it.
    /// </summary>
    private ulong Delta(ulong raw, ulong mask)
    {
        ulong d = raw & mask;
        return ClampsNegative && (d & ~(mask >> 1)) != 0 ? 0 : d;
    }

    /// <summary>uncertainty_margin: max(NSEC_PER_SEC / Hz, 2 × WATCHDOG_MAX_SKEW).</summary>
    private long Margin(ClocksourceKind kind) => Math.Max(1_000_000_000 / (long)Math.Max(1UL, Describe(kind).Hz), 2 * WatchdogMaxSkewNs);

    private long ToNs(ClocksourceKind kind, ulong cycles)
    {
        var (mult, shift) = ScaleFor(kind);
        return unchecked((long)(ulong)(((UInt128)cycles * mult) >> shift));
    }

    /// <summary>Clears PVCLOCK_GUEST_STOPPED in every vCPU's record, as the guest's pvclock read does; true if any was set.</summary>
    private bool ConsumeGuestStopped()
    {
        if (!_machine.HasKvmclock || !_ratings.ContainsKey(ClocksourceKind.KvmClock))
        {
            return false;
        }
        byte[] pv = _vcpus[0].Shared.Pvclock;
        bool any = false;
        for (int v = 0; v < _vcpus.Length; v++)
        {
            int o = v * 32 + 29;
            if ((pv[o] & 2) != 0)
            {
                pv[o] &= unchecked((byte)~2);
                any = true;
            }
        }
        return any;
    }

    private void Notified(SimTime at)
    {
        if (Profile.ReactsToNotification && _timekeeping)
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
        if (_cs == ClocksourceKind.Tsc)
        {
            Accumulate(at);
        }
        long old = TscKhz;
        TscKhz = khz;
        if (_cs == ClocksourceKind.Tsc)
        {
            (_mult, _shift) = ScaleFor(ClocksourceKind.Tsc);
            _frac = 0;
        }
        _wdBaseline = false;
        Message(at, $"tsc: notification acknowledged; TSC rate {old} kHz -> {khz} kHz");
    }
}

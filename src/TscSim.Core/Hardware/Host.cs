using System.Collections.Immutable;
using TscSim.Core.Engine;
using TscSim.Core.Time;

namespace TscSim.Core.Hardware;

/// <summary>
/// A physical machine on one <see cref="Simulator"/>: sockets of <see cref="PhysicalCpu"/>
/// cores whose TSCs drift, warp between sockets, stop in C-states and follow P-states; the
/// platform timers; and the host's monotonic clock. Everything is computed on demand from
/// piecewise-linear counters; changes are <see cref="EventBand.Hardware"/> events.
/// </summary>
/// <remarks>
/// Crystals: crystal 0 is the platform crystal (HPET, PM timer, PIT, monotonic clock) and also
/// drives socket 0; socket k &gt; 0 has its own crystal. With <see cref="HostConfig.Walk"/> each
/// crystal walks on its own random stream <c>host.{id}.crystal.{name}</c>.
/// Event kinds (names carry the host id, so several hosts share one simulator): cpufreq,
/// cstate, tsc-write, tsc-adjust-write (subject = core index, payload = the value), and
/// crystal-step (subject = crystal index).
/// </remarks>
public sealed class Host : IEventHandler
{
    private readonly Simulator _sim;

    /// <summary>
    /// The engine scope of this host's own events (frequency and C-state changes, TSC writes,
    /// crystal steps, its scheduler's ticks): only vCPUs on this host need to stop for them
    /// (<see cref="Simulator.NextEventTimeIn"/>).
    /// </summary>
    public int Scope { get; }
    private readonly EventKind _cpufreq;
    private readonly EventKind _cstate;
    private readonly EventKind _tscWrite;
    private readonly EventKind _tscAdjustWrite;
    private readonly EventKind _crystalStep;
    private readonly (LinearCounter Counter, Frequency Nominal)[] _platformCounters;

    /// <summary>Builds the host at the simulator's current instant; its counters start at uptime × rate.</summary>
    /// <exception cref="ArgumentException">The configuration has problems (listed in the message).</exception>
    /// <summary>The simulator this host runs on.</summary>
    public Simulator Simulator => _sim;

    public Host(HostConfig config, Simulator sim)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(sim);
        var problems = config.Problems().ToList();
        if (problems.Count > 0)
        {
            throw new ArgumentException($"host '{config.Id}': " + string.Join("; ", problems), nameof(config));
        }
        Config = config;
        _sim = sim;
        SimTime start = sim.Now;
        string prefix = $"host.{config.Id}.";

        var crystals = new Crystal[config.Sockets];
        for (int s = 0; s < config.Sockets; s++)
        {
            string name = s == 0 ? "platform" : $"socket{s}";
            RandomStream? steps = config.Walk is null ? null : sim.Random.Open($"{prefix}crystal.{name}");
            crystals[s] = new Crystal(name, config.SocketBaseDrift(s), config.Walk, steps);
        }
        Crystals = [.. crystals];

        var cores = new PhysicalCpu[config.Cores];
        for (int s = 0; s < config.Sockets; s++)
        {
            Int128 initial = InitialTicks(crystals[s], config.Frequency) + (Int128)config.SocketSkew.Count * s;
            for (int c = 0; c < config.CoresPerSocket; c++)
            {
                int index = s * config.CoresPerSocket + c;
                cores[index] = new PhysicalCpu(this, index, s, c, crystals[s], start, initial);
            }
        }
        Cores = [.. cores];

        Crystal platform = crystals[0];
        LinearCounter PlatformCounter(Frequency nominal) =>
            new(start, InitialTicks(platform, nominal), platform.Drive(nominal));
        var hpet = PlatformCounter(config.HpetFrequency);
        var pm = PlatformCounter(AcpiPmTimer.NominalFrequency);
        var pit = PlatformCounter(Pit.NominalFrequency);
        var mono = PlatformCounter(HostMonotonicClock.NominalFrequency);
        _platformCounters =
        [
            (hpet, config.HpetFrequency), (pm, AcpiPmTimer.NominalFrequency),
            (pit, Pit.NominalFrequency), (mono, HostMonotonicClock.NominalFrequency),
        ];
        Hpet = new Hpet(hpet, config.HpetFrequency);
        PmTimer = new AcpiPmTimer(pm, config.PmTimer32Bit);
        Pit = new Pit(pit);
        Monotonic = new HostMonotonicClock(mono);

        Scope = sim.NewScope();
        using (sim.EnterScope(Scope))
        {
            _cpufreq = sim.RegisterKind(prefix + "cpufreq", EventBand.Hardware, this);
            _cstate = sim.RegisterKind(prefix + "cstate", EventBand.Hardware, this);
            _tscWrite = sim.RegisterKind(prefix + "tsc-write", EventBand.Hardware, this);
            _tscAdjustWrite = sim.RegisterKind(prefix + "tsc-adjust-write", EventBand.Hardware, this);
            _crystalStep = sim.RegisterKind(prefix + "crystal-step", EventBand.Hardware, this);
        }

        if (config.Walk is not null)
        {
            for (int i = 0; i < crystals.Length; i++)
            {
                sim.Schedule(start + config.Walk.Interval, _crystalStep, i);
            }
        }

        // Every counter began at host boot, `uptime` before the start:
        // a counter's initial value is what it would show after uptime at its starting rate.
        Int128 InitialTicks(Crystal crystal, Frequency nominal) => crystal.Drive(nominal).TicksIn(config.Uptime).Count;
    }

    private readonly List<Action<PhysicalCpu, SimTime>> _frequencyListeners = [];

    /// <summary>
    /// Calls <paramref name="listener"/> after every P-state change, as a cpufreq notifier (KVM
    /// registers one to refresh kvmclock on hosts without a constant TSC).
    /// </summary>
    public void OnFrequencyChange(Action<PhysicalCpu, SimTime> listener) => _frequencyListeners.Add(listener);

    public HostConfig Config { get; }

    /// <summary>The crystals: index 0 = platform (and socket 0), k = socket k.</summary>
    public ImmutableArray<Crystal> Crystals { get; }

    /// <summary>Every core, socket-major.</summary>
    public ImmutableArray<PhysicalCpu> Cores { get; }

    public Hpet Hpet { get; }

    public AcpiPmTimer PmTimer { get; }

    public Pit Pit { get; }

    /// <summary>The host's monotonic clock (the hypervisor's reference).</summary>
    public HostMonotonicClock Monotonic { get; }

    /// <summary>The cores of socket <paramref name="socket"/>.</summary>
    public IEnumerable<PhysicalCpu> SocketCores(int socket) =>
        Cores.Skip(socket * Config.CoresPerSocket).Take(Config.CoresPerSocket);

    /// <summary>P-state change of one core at <paramref name="at"/>.</summary>
    public EventHandle ScheduleFrequencyChange(SimTime at, int core, Frequency frequency)
    {
        CheckCore(core);
        if (frequency <= Frequency.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(frequency), frequency, "A core frequency must be positive.");
        }
        return _sim.Schedule(at, _cpufreq, core, frequency.Millihertz);
    }

    /// <summary>P-state change of a whole package (every core of <paramref name="socket"/>) at the same instant.</summary>
    public void SchedulePackageFrequencyChange(SimTime at, int socket, Frequency frequency)
    {
        if (socket < 0 || socket >= Config.Sockets)
        {
            throw new ArgumentOutOfRangeException(nameof(socket), socket, $"host '{Config.Id}' has {Config.Sockets} sockets.");
        }
        foreach (var core in SocketCores(socket))
        {
            ScheduleFrequencyChange(at, core.Index, frequency);
        }
    }

    /// <summary>A C-state residency: <paramref name="core"/> enters <paramref name="state"/> at <paramref name="at"/> and wakes (C0) after <paramref name="residency"/>.</summary>
    public void ScheduleCState(SimTime at, int core, CState state, Duration residency)
    {
        CheckCore(core);
        if (residency < Duration.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(residency), residency, "A residency cannot be negative.");
        }
        _sim.Schedule(at, _cstate, core, (long)state);
        _sim.Schedule(at + residency, _cstate, core, (long)CState.C0);
    }

    /// <summary>WRMSR IA32_TSC on <paramref name="core"/> at <paramref name="at"/>.</summary>
    public EventHandle ScheduleTscWrite(SimTime at, int core, ulong value)
    {
        CheckCore(core);
        return _sim.Schedule(at, _tscWrite, core, unchecked((long)value));
    }

    /// <summary>WRMSR IA32_TSC_ADJUST on <paramref name="core"/> at <paramref name="at"/>.</summary>
    public EventHandle ScheduleTscAdjustWrite(SimTime at, int core, long value)
    {
        CheckCore(core);
        if (!Config.Cpu.HasTscAdjust)
        {
            throw new InvalidOperationException($"{Config.Cpu.Name} has no IA32_TSC_ADJUST.");
        }
        return _sim.Schedule(at, _tscAdjustWrite, core, value);
    }

    /// <inheritdoc />
    void IEventHandler.OnEvent(Simulator sim, in SimEvent e)
    {
        SimTime now = e.Time;
        if (e.Kind == _cpufreq)
        {
            Cores[e.Subject].SetFrequency(now, Frequency.FromMillihertz(e.Payload));
            foreach (var listener in _frequencyListeners)
            {
                listener(Cores[e.Subject], now);
            }
        }
        else if (e.Kind == _cstate)
        {
            Cores[e.Subject].SetCState(now, (CState)e.Payload);
        }
        else if (e.Kind == _tscWrite)
        {
            Cores[e.Subject].WriteTsc(now, unchecked((ulong)e.Payload));
        }
        else if (e.Kind == _tscAdjustWrite)
        {
            Cores[e.Subject].WriteTscAdjust(now, e.Payload);
        }
        else if (e.Kind == _crystalStep)
        {
            StepCrystal(now, e.Subject);
            sim.Schedule(now + Config.Walk!.Interval, _crystalStep, e.Subject);
        }
    }

    private void StepCrystal(SimTime now, int index)
    {
        Crystal crystal = Crystals[index];
        if (!crystal.Step())
        {
            return;
        }
        foreach (var core in SocketCores(index))
        {
            core.OnCrystalChanged(now);
        }
        if (index == 0)
        {
            foreach (var (counter, nominal) in _platformCounters)
            {
                counter.SetRate(now, crystal.Drive(nominal));
            }
        }
    }

    private void CheckCore(int core)
    {
        if (core < 0 || core >= Cores.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(core), core, $"host '{Config.Id}' has cores 0..{Cores.Length - 1}.");
        }
    }

    public override string ToString() => $"host {Config.Id} ({Config.Cpu.Name}, {Config.Sockets}x{Config.CoresPerSocket} @ {Config.Frequency})";
}

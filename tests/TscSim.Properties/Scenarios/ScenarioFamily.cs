using FsCheck;
using FsCheck.Fluent;

namespace TscSim.Properties.Scenarios;

/// <summary>Kinds of timeline events a family may generate.</summary>
[Flags]
public enum EventKinds
{
    /// <summary>No events.</summary>
    None = 0,

    /// <summary><c>live_migrate</c> (needs two hosts).</summary>
    LiveMigrate = 1,

    /// <summary><c>cpufreq</c>.</summary>
    Cpufreq = 2,

    /// <summary><c>cstate</c>.</summary>
    Cstate = 4,

    /// <summary><c>migrate_vcpu</c>.</summary>
    MigrateVcpu = 8,

    /// <summary><c>tsc_write</c>.</summary>
    TscWrite = 16,

    /// <summary><c>policy</c>.</summary>
    Policy = 32,

    /// <summary>Every kind.</summary>
    All = LiveMigrate | Cpufreq | Cstate | MigrateVcpu | TscWrite | Policy,
}

/// <summary>
/// What a family of scenarios may contain. Every list is a set to pick from uniformly; ranges are
/// inclusive. The defaults describe "anything small": any CPU, policy and guest, one or two hosts,
/// one VM of one to three vCPUs, up to four events of any kind, 100 to 300 ms.
/// </summary>
public sealed record ScenarioSpace
{
    /// <summary>The scenario name (also the stem of a saved counterexample's file name).</summary>
    public string Name { get; init; } = "generated";

    /// <summary>CPU presets.</summary>
    public IReadOnlyList<string> Cpus { get; init; } = ["intel-core2", "intel-nehalem", "intel-skylake", "amd-k8", "amd-zen2"];

    /// <summary>Nominal frequencies to pick from, in MHz.</summary>
    public IReadOnlyList<int> FrequenciesMhz { get; init; } = [1_000, 1_600, 2_000, 2_400, 2_666, 3_000, 3_333];

    /// <summary>Hosts (the second is a live-migration destination).</summary>
    public (int Min, int Max) Hosts { get; init; } = (1, 2);

    /// <summary>Sockets per host.</summary>
    public (int Min, int Max) Sockets { get; init; } = (1, 2);

    /// <summary>Cores per socket.</summary>
    public (int Min, int Max) CoresPerSocket { get; init; } = (1, 4);

    /// <summary>Largest |platform crystal error| in ppb (0 for none).</summary>
    public long MaxDriftPpb { get; init; } = 100_000;

    /// <summary>Largest socket skew in cycles (0 for none).</summary>
    public long MaxSocketSkewCycles { get; init; } = 5_000_000;

    /// <summary>Whether TSC flags (constant, nonstop, scaling) may be overridden per host.</summary>
    public bool FlagOverrides { get; init; } = true;

    /// <summary>Policy presets.</summary>
    public IReadOnlyList<string> Policies { get; init; } = ["kvm-2011", "kvm-modern", "xen-default", "xen-always-emulate", "xen-native", "hyperv"];

    /// <summary>Values of <c>hypervisor.trapping</c>; null leaves the preset's.</summary>
    public IReadOnlyList<string?> Trapping { get; init; } = [null, "auto", "on", "off"];

    /// <summary>Values of kvm-2011's <c>tsc_auto</c> (only set with that policy); null leaves the preset's (true).</summary>
    public IReadOnlyList<bool?> TscAuto { get; init; } = [null, null, null, false];

    /// <summary>Values of <c>rdtscp_passthrough</c>; null leaves the preset's.</summary>
    public IReadOnlyList<bool?> RdtscpPassthrough { get; init; } = [null, true];

    /// <summary>Values of <c>notify_guest</c>; null leaves the preset's.</summary>
    public IReadOnlyList<bool?> NotifyGuest { get; init; } = [null, true];

    /// <summary>Guest profiles.</summary>
    public IReadOnlyList<string> Profiles { get; init; } = ["linux-modern", "linux-2.6.18", "linux-2.6.18-i386", "freebsd-8", "solaris-10", "windows-2008r2"];

    /// <summary>Forced clocksources; null chooses by rating.</summary>
    public IReadOnlyList<string?> Clocksources { get; init; } = [null];

    /// <summary>vCPUs per VM.</summary>
    public (int Min, int Max) Vcpus { get; init; } = (1, 3);

    /// <summary>
    /// Most vCPUs for a linux-modern guest: its boot runs a warp test per AP (2 ms of TSC and
    /// every iteration interpreted), which dominates a short run's cost.
    /// </summary>
    public int MaxLinuxModernVcpus { get; init; } = 2;

    /// <summary>Whether vCPUs are pinned (to distinct cores when there are enough); unpinned vCPUs run on core v mod cores, or under the scheduler.</summary>
    public IReadOnlyList<bool> Pinning { get; init; } = [true];

    /// <summary>Host scheduler slices in µs (null: no scheduler); the scheduler only runs unpinned vCPUs that outnumber the cores.</summary>
    public IReadOnlyList<int?> SchedulerSliceUs { get; init; } = [null];

    /// <summary>Whether a VM may request a <c>tsc_khz</c> and hints.</summary>
    public bool RateAndHints { get; init; } = true;

    /// <summary>When the VM boots, in ms (at most half the run).</summary>
    public (int Min, int Max) StartMs { get; init; } = (0, 0);

    /// <summary>Workloads.</summary>
    public IReadOnlyList<Workload> Workloads { get; init; } = [Workload.ClockLoop, Workload.TscLoop, Workload.TscpLoop, Workload.Mixed];

    /// <summary>Cycles of work between reads.</summary>
    public (int Min, int Max) WorkCycles { get; init; } = (20_000, 200_000);

    /// <summary>Run length in ms.</summary>
    public (int Min, int Max) DurationMs { get; init; } = (100, 300);

    /// <summary>Event kinds.</summary>
    public EventKinds Events { get; init; } = EventKinds.All;

    /// <summary>Number of events.</summary>
    public (int Min, int Max) EventCount { get; init; } = (0, 4);

    /// <summary>Earliest event time in ms (after the guest's boot, for most properties).</summary>
    public int EarliestEventMs { get; init; } = 1;

    /// <summary>Trapping values a <c>policy</c> event may set (null: it leaves trapping alone).</summary>
    public IReadOnlyList<string?> PolicyTrapping { get; init; } = [null, "auto", "on", "off"];

    /// <summary>C-states a <c>cstate</c> event may enter.</summary>
    public IReadOnlyList<string> CStates { get; init; } = ["C1", "C1E", "C3", "C6"];

    /// <summary>The generator of this space (scenarios are normalized, so always valid).</summary>
    public Gen<GeneratedScenario> Generator()
    {
        var host =
            from cpu in Pick(Cpus)
            from mhz in Pick(FrequenciesMhz)
            from sockets in Gen.Choose(Sockets.Min, Sockets.Max)
            from cores in Gen.Choose(CoresPerSocket.Min, CoresPerSocket.Max)
            from drift in MaxDriftPpb == 0 ? Gen.Constant(0L) : Gen.Frequency((1, Gen.Constant(0L)), (2, Gen.Choose(-(int)MaxDriftPpb, (int)MaxDriftPpb).Select(x => (long)x)))
            from skew in MaxSocketSkewCycles == 0 ? Gen.Constant(0L) : Gen.Frequency((1, Gen.Constant(0L)), (1, Gen.Choose(1, (int)MaxSocketSkewCycles).Select(x => (long)x)))
            from uptime in Gen.Frequency((2, Gen.Constant(0)), (1, Gen.Choose(1, 10_000)))
            from constant in FlagOverrides ? Gen.Frequency((4, Gen.Constant((bool?)null)), (1, Gen.Elements<bool?>(true, false))) : Gen.Constant((bool?)null)
            from nonstop in FlagOverrides ? Gen.Frequency((4, Gen.Constant((bool?)null)), (1, Gen.Elements<bool?>(true, false))) : Gen.Constant((bool?)null)
            from scaling in FlagOverrides ? Gen.Frequency((4, Gen.Constant((bool?)null)), (1, Gen.Elements<bool?>(true, false))) : Gen.Constant((bool?)null)
            select new GHost(cpu, mhz, sockets, cores, drift, skew, uptime, constant, nonstop, scaling);

        var hypervisor =
            from policy in Pick(Policies)
            from trapping in Pick(Trapping)
            from passthrough in Pick(RdtscpPassthrough)
            from notify in Pick(NotifyGuest)
            from tscAuto in Pick(TscAuto)
            from slice in Pick(SchedulerSliceUs)
            select new GHypervisor(policy, trapping, policy == "kvm-2011" ? tscAuto : null, notify, passthrough, slice);

        return
            from hosts in Gen.Choose(Hosts.Min, Hosts.Max).SelectMany(n => host.ListOf(n))
            from hv in hypervisor
            from vm in VmGen(hosts)
            from drawn in Gen.Choose(DurationMs.Min, DurationMs.Max)
            let duration = Math.Max(drawn, GeneratedScenario.ShortestDurationMs([vm]))
            from count in Gen.Choose(EventCount.Min, EventCount.Max)
            from events in EventGen(hosts, vm, duration).ListOf(count)
            from seed in Gen.Choose(0, 1_000_000)
            select new GeneratedScenario(Name, (ulong)seed, duration, hosts.ToList(), hv, [vm], events.ToList()).Normalize();
    }

    private static Gen<T> Pick<T>(IReadOnlyList<T> values) => Gen.Elements(values.AsEnumerable());

    private Gen<GVm> VmGen(IList<GHost> hosts)
    {
        int cores = hosts[0].Cores;
        return
            from profile in Pick(Profiles)
            from vcpus in Gen.Choose(Vcpus.Min, profile == "linux-modern" ? Math.Min(Vcpus.Max, MaxLinuxModernVcpus) : Vcpus.Max)
            from offset in Gen.Choose(0, cores - 1)
            from clocksource in Pick(Clocksources)
            from workload in Pick(Workloads)
            from work in Gen.Choose(WorkCycles.Min, WorkCycles.Max)
            from khz in RateAndHints ? Gen.Frequency((3, Gen.Constant((long?)null)), (1, Gen.Choose(1_000_000, 3_500_000).Select(x => (long?)x))) : Gen.Constant((long?)null)
            from fixedRate in RateAndHints ? Gen.Elements(false, false, true) : Gen.Constant(false)
            from smpStable in RateAndHints ? Gen.Elements(false, false, true) : Gen.Constant(false)
            from pinned in Pick(Pinning)
            from start in StartMs.Max == 0 ? Gen.Constant(0) : Gen.Frequency((1, Gen.Constant(StartMs.Min)), (1, Gen.Choose(StartMs.Min, StartMs.Max)))
            from hpet in Gen.Elements(true, true, true, false)
            select new GVm(0, vcpus,
                pinned ? Enumerable.Range(0, vcpus).Select(v => (v + offset) % cores).ToArray() : null,
                khz, fixedRate, smpStable, profile, clocksource, workload, work, start, hpet || clocksource == "hpet");
    }

    private Gen<GEvent> EventGen(IList<GHost> hosts, GVm vm, int durationMs)
    {
        long first = Math.Min(EarliestEventMs, durationMs - 1) * 1000L;
        long last = durationMs * 1000L - 1_000;
        Gen<long> at = Gen.Choose((int)first, (int)Math.Max(first, last)).Select(x => (long)x);
        Gen<int> hostIndex = Gen.Choose(0, hosts.Count - 1);
        int maxCores = hosts.Max(h => h.Cores);
        Gen<IReadOnlyList<int>?> cores = Gen.Frequency(
            (1, Gen.Constant((IReadOnlyList<int>?)null)),
            (3, Gen.Choose(0, maxCores - 1).ListOf(1).Select(l => (IReadOnlyList<int>?)l.ToList())),
            (1, Gen.Choose(0, maxCores - 1).ListOf(2).Select(l => (IReadOnlyList<int>?)l.ToList())));

        var kinds = new List<(int, Gen<GEvent>)>();
        if (Events.HasFlag(EventKinds.LiveMigrate) && hosts.Count > 1)
        {
            kinds.Add((2, from t in at from to in hostIndex from down in Gen.Choose(0, 20) select (GEvent)new GLiveMigrate(t, 0, to, down)));
        }
        if (Events.HasFlag(EventKinds.Cpufreq))
        {
            kinds.Add((3, from t in at from h in hostIndex from c in cores from mhz in Gen.Choose(5, 40) select (GEvent)new GCpufreq(t, h, c, mhz * 100)));
        }
        if (Events.HasFlag(EventKinds.Cstate))
        {
            kinds.Add((3, from t in at from h in hostIndex from c in cores from s in Pick(CStates) from d in Gen.Choose(10, 20_000)
                          select (GEvent)new GCstate(t, h, c, s, d)));
        }
        if (Events.HasFlag(EventKinds.MigrateVcpu))
        {
            kinds.Add((3, from t in at from v in Gen.Choose(0, vm.Vcpus - 1) from c in Gen.Choose(0, maxCores - 1) select (GEvent)new GMigrateVcpu(t, 0, v, c)));
        }
        if (Events.HasFlag(EventKinds.TscWrite))
        {
            kinds.Add((1, from t in at from h in hostIndex from c in cores from v in Gen.Choose(0, 1 << 30) select (GEvent)new GTscWrite(t, h, c, (ulong)v * 1_000)));
        }
        if (Events.HasFlag(EventKinds.Policy))
        {
            kinds.Add((1, from t in at from tr in Pick(PolicyTrapping) from a in Gen.Elements<bool?>(null, true, false) from n in Gen.Elements<bool?>(null, true, false)
                          select (GEvent)new GPolicy(t, tr, a, n)));
        }
        return kinds.Count == 0 ? Gen.Constant((GEvent)new GPolicy(0, null, null, null)) : Gen.Frequency(kinds.ToArray());
    }
}

/// <summary>
/// A family of scenarios for one property: a <see cref="ScenarioSpace"/> to generate from, a
/// rule every member satisfies (shrinking never leaves the family), and the shrinker.
/// </summary>
/// <param name="Space">What to generate.</param>
/// <param name="Accepts">The family's rule; generated scenarios that break it are regenerated, shrunk ones dropped.</param>
public sealed record ScenarioFamily(ScenarioSpace Space, Func<GeneratedScenario, bool> Accepts)
{
    /// <summary>A family of everything <paramref name="space"/> generates.</summary>
    public ScenarioFamily(ScenarioSpace space) : this(space, _ => true)
    {
    }

    /// <summary>
    /// The FsCheck arbitrary: <see cref="ScenarioSpace.Generator"/> filtered by <see cref="Accepts"/>
    /// (and clear of <see cref="KnownModelBugs"/>), shrinking with <see cref="ScenarioShrinker"/>
    /// within the family.
    /// </summary>
    public Arbitrary<GeneratedScenario> Arbitrary() => Arbitrary(Space.Generator());

    /// <summary>The same with another generator of the family's members (e.g. one that adds a required event).</summary>
    public Arbitrary<GeneratedScenario> Arbitrary(Gen<GeneratedScenario> generator)
    {
        bool Member(GeneratedScenario s) => Accepts(s) && !KnownModelBugs.Excluded(s);
        return Arb.From(generator.Where(Member), s => ScenarioShrinker.Shrink(s).Where(Member));
    }
}

using FsCheck;
using FsCheck.Fluent;

namespace TscSim.Properties.Scenarios;

/// <summary>
/// The scenario families of the whole-scenario properties: one per property, each a
/// <see cref="ScenarioSpace"/> (what may vary) and a rule (what every member must keep, also
/// while shrinking). Sizes are chosen so that a property's run stays within seconds.
/// </summary>
public static class Families
{
    /// <summary>Everything small: any CPU, policy, guest and event (determinism).</summary>
    public static ScenarioFamily Anything { get; } = new(new ScenarioSpace
    {
        Name = "determinism",
        Pinning = [true, false],
        SchedulerSliceUs = [null, null, 500, 3_000],
    });

    /// <summary>
    /// Trapping forced on, under any policy preset, any host, any event; policy events never
    /// change trapping, and <c>rdtscp_passthrough</c> is left off (it would leave RDTSCP untrapped
    /// on SVM, by design). Workloads read the TSC. vCPUs pinned, or unpinned under the scheduler.
    /// </summary>
    public static ScenarioFamily TrappedTsc { get; } = new(
        new ScenarioSpace
        {
            Name = "trapped-tsc",
            Hosts = (2, 2),
            Pinning = [true, false],
            SchedulerSliceUs = [null, 1_000],
            Trapping = ["on"],
            RdtscpPassthrough = [null],
            PolicyTrapping = [null],
            Workloads = [Workload.TscLoop, Workload.TscpLoop, Workload.Mixed],
        },
        s => s.Hypervisor.Trapping == "on" && s.Hypervisor.RdtscpPassthrough != true
             && s.Events.OfType<GPolicy>().All(p => p.Trapping is null) && s.Vms.All(v => v.ReadsTsc));

    /// <summary>CPUs whose TSC is invariant (constant and nonstop): a host of one of them, on one socket, is synchronized.</summary>
    public static IReadOnlyList<string> InvariantCpus { get; } = ["intel-nehalem", "intel-skylake", "amd-zen2"];

    /// <summary>
    /// kvm-clock with the master clock: a linux-modern guest of 2 or 3 vCPUs on KVM, on
    /// synchronized hosts (invariant TSC, one crystal, no socket skew, no TSC writes). A second
    /// host, the live-migration destination, has the same CPU and frequency, so the VM's rate is
    /// kept and no catch-up is needed. kvm-modern only: kvm-2011 (2.6.37/38 KVM) has no master
    /// clock and publishes flags 0, so it belongs to <see cref="KvmclockGuarded"/>.
    /// </summary>
    public static ScenarioFamily KvmclockStable { get; } = new(
        new ScenarioSpace
        {
            Name = "kvmclock-stable",
            Cpus = InvariantCpus,
            MaxSocketSkewCycles = 0,
            FlagOverrides = false,
            Policies = ["kvm-modern"],
            Trapping = [null, "off"],
            RdtscpPassthrough = [null],
            NotifyGuest = [null],
            Profiles = ["linux-modern"],
            Clocksources = [null, "kvm-clock"],
            Vcpus = (2, 3),
            MaxLinuxModernVcpus = 3,
            RateAndHints = false,
            Workloads = [Workload.ClockLoop, Workload.Mixed],
            DurationMs = (100, 250),
            Events = EventKinds.Cpufreq | EventKinds.Cstate | EventKinds.MigrateVcpu | EventKinds.LiveMigrate,
        },
        s => s.Hosts.All(h => InvariantCpus.Contains(h.Cpu) && h.SocketSkewCycles == 0 && h.Constant is null && h.Nonstop is null
                              && h.Cpu == s.Hosts[0].Cpu && h.FrequencyMhz == s.Hosts[0].FrequencyMhz && h.DriftPpb == s.Hosts[0].DriftPpb)
             && s.Hypervisor.Policy is "kvm-modern" && s.Hypervisor.Trapping is null or "off"
             && s.Vms.All(v => v.Profile == "linux-modern" && v.Clocksource is null or "kvm-clock" && v.Vcpus >= 2 && v.TscKhz is null)
             && !s.Events.Any(e => e is GTscWrite or GPolicy));

    /// <summary>
    /// kvm-clock without the STABLE flag: a linux-modern guest forced onto kvm-clock, either on a
    /// Xen policy (Xen's pvclock has no stable-bit feature, so the guest always applies its
    /// guard), on kvm-2011 (2.6.37/38 KVM publishes flags 0 on any host), or on KVM with an unsynchronized host (K8, skewed sockets, or a TSC that stops or
    /// follows P-states by override), where the master clock is off; any event, TSC writes
    /// included. Generate with <see cref="KvmclockGuardedArbitrary"/> (half Xen, half KVM).
    /// </summary>
    public static ScenarioFamily KvmclockGuarded { get; } = new(
        new ScenarioSpace
        {
            Name = "kvmclock-guarded",
            Cpus = ["intel-core2", "amd-k8", "intel-nehalem", "amd-zen2"],
            Policies = ["kvm-2011", "kvm-modern", "xen-default", "xen-native", "xen-always-emulate"],
            Profiles = ["linux-modern"],
            Clocksources = ["kvm-clock"],
            Vcpus = (2, 2),
            Workloads = [Workload.ClockLoop, Workload.Mixed],
            DurationMs = (100, 250),
        },
        s => s.Vms.All(v => v.Profile == "linux-modern" && v.Clocksource == "kvm-clock" && v.Vcpus >= 2)
             && s.Hypervisor.Policy != "hyperv"
             && (s.Hypervisor.Policy.StartsWith("xen", StringComparison.Ordinal) || s.Hypervisor.Policy == "kvm-2011" || s.Hosts.All(Unsynchronized)));

    /// <summary>The generator of <see cref="KvmclockGuarded"/>: Xen policies, or KVM on hosts made unsynchronized.</summary>
    public static Arbitrary<GeneratedScenario> KvmclockGuardedArbitrary()
    {
        ScenarioFamily family = KvmclockGuarded;
        ScenarioSpace xen = family.Space with { Policies = ["xen-default", "xen-native", "xen-always-emulate"] };
        ScenarioSpace kvm = family.Space with { Policies = ["kvm-2011", "kvm-modern"], Cpus = ["amd-k8", "intel-nehalem", "intel-skylake", "amd-zen2"] };
        Gen<GeneratedScenario> unsynchronized =
            from s in kvm.Generator()
            from how in Gen.Choose(0, 2).ListOf(s.Hosts.Count)
            from skew in Gen.Choose(1_000, 5_000_000)
            select (s with
            {
                Hosts = s.Hosts.Select((h, i) => Unsynchronized(h) ? h : how[i] switch
                {
                    0 => h with { Sockets = 2, SocketSkewCycles = skew },
                    1 => h with { Nonstop = false },
                    _ => h with { Constant = false },
                }).ToList(),
            }).Normalize();
        ScenarioSpace old = family.Space with { Policies = ["kvm-2011"] }; // 2.6.38: flags 0 on any host
        return family.Arbitrary(Gen.OneOf(xen.Generator(), unsynchronized, old.Generator()));
    }

    /// <summary>
    /// Whether a host's TSCs are not synchronized by construction (KVM keeps the master clock off):
    /// not constant or not nonstop (the preset's flags, or their overrides: Core 2 stops in C3,
    /// K8 follows P-states and stops in C1E), or skewed sockets.
    /// </summary>
    public static bool Unsynchronized(GHost h) =>
        !(h.Constant ?? h.Cpu != "amd-k8") || !(h.Nonstop ?? h.Cpu is not ("intel-core2" or "amd-k8")) || h.Sockets > 1 && h.SocketSkewCycles > 0;

    /// <summary>
    /// A raw-TSC guest (linux-2.6.18-i386 on its TSC clocksource, trapping off; not the x86_64
    /// kernel, which on a multi-CPU K8 never reads the TSC for time, unsynchronized_tsc) of 2 or 3 vCPUs pinned
    /// to distinct cores of a Core 2 or K8 host, and one disturbance of one vCPU's core after
    /// boot: a C-state that stops its TSC (Core 2: C3 and deeper; K8: C1E and deeper) for 2 to
    /// 20 ms, a P-state change of a K8 core (whose TSC follows the core clock), or a host write
    /// of a small value to its TSC.
    /// </summary>
    public static ScenarioFamily RawTscDisturbed { get; } = new(
        new ScenarioSpace
        {
            Name = "raw-tsc-disturbed",
            Cpus = ["intel-core2", "amd-k8"],
            Hosts = (1, 1),
            Sockets = (1, 1),
            CoresPerSocket = (3, 4),
            MaxSocketSkewCycles = 0,
            FlagOverrides = false,
            Policies = ["kvm-2011"],
            Trapping = ["off"],
            RdtscpPassthrough = [null],
            NotifyGuest = [null],
            Profiles = ["linux-2.6.18-i386"],
            Clocksources = ["tsc"],
            Vcpus = (2, 3),
            RateAndHints = false,
            Workloads = [Workload.ClockLoop, Workload.Mixed],
            WorkCycles = (20_000, 100_000),
            DurationMs = (200, 330), // 2.6.18 i386 boots through calculate_cpu_khz's three 30 ms windows first
            Events = EventKinds.None,
        },
        s => s.Vms.Count == 1 && s.Vms[0] is { Profile: "linux-2.6.18-i386", Clocksource: "tsc", Vcpus: >= 2, Pin: not null }
             && s.Vms[0].Pin!.Distinct().Count() == s.Vms[0].Vcpus
             && s.Hypervisor is { Policy: "kvm-2011", Trapping: "off" }
             && s.Events.Any(e => Disturbs(s, e)));

    /// <summary>When a RawTscDisturbed guest has booted (calculate_cpu_khz: 3 × 30 ms of PIT, plus their exits), in ms.</summary>
    private const int BootMs = 120;

    /// <summary>The generator of <see cref="RawTscDisturbed"/>: its space, plus one disturbance.</summary>
    public static Arbitrary<GeneratedScenario> RawTscDisturbedArbitrary()
    {
        var family = RawTscDisturbed;
        Gen<GeneratedScenario> gen =
            from s in family.Space.Generator()
            from v in Gen.Choose(0, s.Vms[0].Vcpus - 1)
            from kind in Gen.Choose(0, 2)
            from atMs in Gen.Choose(BootMs, s.DurationMs - 60)
            from lengthMs in Gen.Choose(2, 20)
            from state in Gen.Elements(s.Hosts[0].Cpu == "amd-k8" ? new[] { "C1E", "C3", "C6" } : ["C3", "C6"])
            from mhz in Gen.Elements(500, 800, 1_200, 4_000)
            from value in Gen.Choose(0, 1_000_000)
            let core = s.Vms[0].Pin![v]
            let at = atMs * 1000L
            let e = kind == 0 || s.Hosts[0].Cpu != "amd-k8" && kind == 1
                ? (GEvent)new GCstate(at, 0, [core], state, lengthMs * 1000L)
                : kind == 1 ? new GCpufreq(at, 0, [core], mhz) : new GTscWrite(at, 0, [core], (ulong)value)
            select (s with { Events = [e] }).Normalize();
        return family.Arbitrary(gen);
    }

    /// <summary>
    /// Whether <paramref name="e"/> disturbs the TSC of the core of some but not all vCPUs, enough
    /// and early enough to be seen by reads every ≤ 100 µs.
    /// </summary>
    public static bool Disturbs(GeneratedScenario s, GEvent e)
    {
        GHost host = s.Hosts[0];
        IReadOnlyList<int> pin = s.Vms[0].Pin!;
        bool SomeButNotAll(IReadOnlyList<int>? cores) => cores is not null && pin.Any(cores.Contains) && !pin.All(cores.Contains);
        bool AfterBoot = e.AtUs >= BootMs * 1000L;
        return e switch
        {
            GCstate c => AfterBoot && SomeButNotAll(c.Cores) && c.DurationUs >= 2_000 && c.AtUs + c.DurationUs <= (s.DurationMs - 20) * 1000L
                         && (host.Cpu == "amd-k8" ? c.State != "C1" : c.State is "C3" or "C6"),
            GCpufreq f => AfterBoot && host.Cpu == "amd-k8" && SomeButNotAll(f.Cores) && e.AtUs <= (s.DurationMs - 40) * 1000L
                          && Math.Abs(f.Mhz - host.FrequencyMhz) * 4 >= host.FrequencyMhz,
            GTscWrite w => AfterBoot && SomeButNotAll(w.Cores) && w.Value <= 1_000_000 && e.AtUs <= (s.DurationMs - 20) * 1000L,
            _ => false,
        };
    }

    /// <summary>
    /// Anything small with pinned vCPUs and no host scheduler (cycle conservation): any CPU,
    /// policy, guest and event, VMs that may start late.
    /// </summary>
    public static ScenarioFamily Conservation { get; } = new(new ScenarioSpace { Name = "cycle-conservation", StartMs = (0, 40) });
}

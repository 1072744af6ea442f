using System.Globalization;
using System.Text;

namespace TscSim.Properties.Scenarios;

/// <summary>
/// The clock-reading programs generated scenarios run on every vCPU. Each loops forever: a read,
/// then <c>work N</c> cycles.
/// </summary>
public enum Workload
{
    /// <summary><c>call clock_gettime</c> (the guest kernel's clock, recorded as a clock read).</summary>
    ClockLoop,

    /// <summary><c>rdtsc</c> (a raw TSC read, recorded as a TSC read).</summary>
    TscLoop,

    /// <summary><c>rdtsc</c> and <c>rdtscp</c> (RDTSCP exits differently on VMX and SVM).</summary>
    TscpLoop,

    /// <summary><c>call clock_gettime</c> and <c>rdtsc</c>.</summary>
    Mixed,
}

/// <summary>One host of a generated scenario (<c>hosts[]</c>). Null flags take the CPU preset's value.</summary>
/// <param name="Cpu">CPU preset.</param>
/// <param name="FrequencyMhz">Nominal core frequency in MHz.</param>
/// <param name="Sockets">1 to 8.</param>
/// <param name="CoresPerSocket">1 or more.</param>
/// <param name="DriftPpb">Platform crystal error in ppb.</param>
/// <param name="SocketSkewCycles">Reset skew between sockets in cycles (not negative).</param>
/// <param name="UptimeMs">Host uptime at the start of the run in ms.</param>
/// <param name="Constant">CONSTANT_TSC override, or null.</param>
/// <param name="Nonstop">NONSTOP_TSC override, or null.</param>
/// <param name="Scaling">TSC scaling override, or null.</param>
public sealed record GHost(string Cpu, int FrequencyMhz, int Sockets, int CoresPerSocket, long DriftPpb, long SocketSkewCycles, int UptimeMs,
    bool? Constant = null, bool? Nonstop = null, bool? Scaling = null)
{
    /// <summary>Cores of the host.</summary>
    public int Cores => Sockets * CoresPerSocket;

    /// <summary>Whether the CPU preset has RDTSCP (Core 2 has none: RDTSCP raises #UD there).</summary>
    public bool HasRdtscp => Cpu != "intel-core2";
}

/// <summary>The <c>hypervisor</c> mapping; null fields take the policy preset's value.</summary>
/// <param name="Policy">Policy preset.</param>
/// <param name="Trapping"><c>auto</c>, <c>on</c>, <c>off</c> or null.</param>
/// <param name="TscAuto">kvm-2011's <c>tsc_auto</c>, or null.</param>
/// <param name="NotifyGuest">Tell the guest about trapping changes, or null.</param>
/// <param name="RdtscpPassthrough">SVM: leave RDTSCP untrapped, or null.</param>
/// <param name="SchedulerSliceUs">The host scheduler's slice in µs (for unpinned vCPUs), or null for no scheduler.</param>
public sealed record GHypervisor(string Policy, string? Trapping = null, bool? TscAuto = null, bool? NotifyGuest = null, bool? RdtscpPassthrough = null,
    int? SchedulerSliceUs = null);

/// <summary>One VM (<c>vms[]</c>).</summary>
/// <param name="Host">Index of the host it starts on.</param>
/// <param name="Vcpus">Number of vCPUs.</param>
/// <param name="Pin">One core index per vCPU, or null (vCPU v on core v mod cores).</param>
/// <param name="TscKhz">Requested virtual TSC rate, or null (the host's).</param>
/// <param name="FixedRate">The <c>fixed_rate</c> hint.</param>
/// <param name="SmpStable">The <c>smp_stable</c> hint.</param>
/// <param name="Profile">Guest OS profile.</param>
/// <param name="Clocksource">Forced clocksource (<c>tsc</c>, <c>kvm-clock</c>, <c>hpet</c>, <c>acpi_pm</c>) or null (by rating).</param>
/// <param name="Workload">The program every vCPU runs.</param>
/// <param name="WorkCycles">Cycles of <c>work</c> between reads.</param>
/// <param name="StartMs">When the VM boots, in ms.</param>
/// <param name="Hpet">The VM has an HPET (the VM key <c>hpet</c>; false only without <c>clocksource: hpet</c>).</param>
public sealed record GVm(int Host, int Vcpus, IReadOnlyList<int>? Pin, long? TscKhz, bool FixedRate, bool SmpStable, string Profile,
    string? Clocksource, Workload Workload, int WorkCycles, int StartMs = 0, bool Hpet = true)
{
    /// <summary>The workload's assembly text.</summary>
    public string Program => Workload switch
    {
        Workload.ClockLoop => $"loop:\n  call clock_gettime\n  work {WorkCycles}cycles\n  jmp loop\n",
        Workload.TscLoop => $"loop:\n  rdtsc\n  work {WorkCycles}cycles\n  jmp loop\n",
        Workload.TscpLoop => $"loop:\n  rdtsc\n  work {WorkCycles / 2}cycles\n  rdtscp\n  work {WorkCycles / 2}cycles\n  jmp loop\n",
        _ => $"loop:\n  call clock_gettime\n  work {WorkCycles / 2}cycles\n  rdtsc\n  work {WorkCycles / 2}cycles\n  jmp loop\n",
    };

    /// <summary>Whether the workload executes RDTSCP.</summary>
    public bool UsesRdtscp => Workload == Workload.TscpLoop;

    /// <summary>Whether the workload reads the TSC directly.</summary>
    public bool ReadsTsc => Workload != Workload.ClockLoop;

    /// <summary>Whether the workload reads the guest clock.</summary>
    public bool ReadsClock => Workload is Workload.ClockLoop or Workload.Mixed;
}

/// <summary>One entry of a generated timeline. Indices (hosts, VMs, cores) are reduced modulo their ranges by <see cref="GeneratedScenario.Normalize"/>.</summary>
/// <param name="AtUs">When, in µs.</param>
public abstract record GEvent(long AtUs);

/// <summary><c>live_migrate</c>.</summary>
public sealed record GLiveMigrate(long AtUs, int Vm, int ToHost, int DowntimeMs) : GEvent(AtUs);

/// <summary><c>cpufreq</c>; <paramref name="Cores"/> null means <c>all</c>.</summary>
public sealed record GCpufreq(long AtUs, int Host, IReadOnlyList<int>? Cores, int Mhz) : GEvent(AtUs);

/// <summary><c>cstate</c>; <paramref name="Cores"/> null means <c>all</c>.</summary>
public sealed record GCstate(long AtUs, int Host, IReadOnlyList<int>? Cores, string State, long DurationUs) : GEvent(AtUs);

/// <summary><c>migrate_vcpu</c>.</summary>
public sealed record GMigrateVcpu(long AtUs, int Vm, int Vcpu, int ToCore) : GEvent(AtUs);

/// <summary><c>tsc_write</c>; <paramref name="Cores"/> null means <c>all</c>.</summary>
public sealed record GTscWrite(long AtUs, int Host, IReadOnlyList<int>? Cores, ulong Value) : GEvent(AtUs);

/// <summary><c>policy</c>; at least one field is set.</summary>
public sealed record GPolicy(long AtUs, string? Trapping, bool? TscAuto, bool? NotifyGuest) : GEvent(AtUs);

/// <summary>
/// A whole scenario as the property generators build it: hosts, a hypervisor, VMs and a timeline,
/// small enough to run in well under a second. It is written as scenario YAML
/// (<see cref="ToYaml"/>) and loaded through <c>ScenarioLoader</c>, so what a property checks is
/// exactly what a user would run with <c>tscsim run</c>, and a counterexample is a file.
/// </summary>
/// <param name="Name">Scenario name (<c>[a-z0-9._-]+</c>).</param>
/// <param name="Seed">The run's seed.</param>
/// <param name="DurationMs">Simulated time in ms.</param>
/// <param name="Hosts">At least one host.</param>
/// <param name="Hypervisor">The hypervisor's policy.</param>
/// <param name="Vms">At least one VM.</param>
/// <param name="Events">The timeline.</param>
public sealed record GeneratedScenario(string Name, ulong Seed, int DurationMs, IReadOnlyList<GHost> Hosts, GHypervisor Hypervisor,
    IReadOnlyList<GVm> Vms, IReadOnlyList<GEvent> Events)
{
    /// <summary>The shortest duration shrinking goes to.</summary>
    public const int MinDurationMs = 100;

    /// <summary>
    /// The shortest run a linux-2.6.18-i386 guest gets: its boot alone is calculate_cpu_khz's three
    /// 30 ms PIT windows (2.6.18 arch/i386/kernel/tsc.c) plus their exits, and an AP of a vCPU
    /// sharing one slow core (and a migration's downtime) may not reach its workload in 100 ms:
    /// a property over its reads would be vacuous (found by the CI seed).
    /// </summary>
    public const int MinI386DurationMs = 200;

    /// <summary>The shortest duration for these VMs' guests (generation and shrinking).</summary>
    public static int ShortestDurationMs(IEnumerable<GVm> vms) =>
        vms.Any(v => v.Profile == "linux-2.6.18-i386") ? MinI386DurationMs : MinDurationMs;

    /// <summary>Writes the scenario as YAML (<c>docs/scenario-format.md</c>), with <paramref name="expect"/> lines if given.</summary>
    public string ToYaml(IEnumerable<string>? expect = null)
    {
        var b = new StringBuilder();
        b.Append("name: ").Append(Name).Append('\n');
        b.Append("seed: ").Append(Seed.ToString(CultureInfo.InvariantCulture)).Append('\n');
        b.Append("duration: ").Append(DurationMs.ToString(CultureInfo.InvariantCulture)).Append("ms\n");
        b.Append("hosts:\n");
        for (int i = 0; i < Hosts.Count; i++)
        {
            GHost h = Hosts[i];
            b.Append("  - id: h").Append(I(i)).Append('\n');
            b.Append("    cpu: ").Append(h.Cpu).Append('\n');
            b.Append("    frequency: ").Append(I(h.FrequencyMhz)).Append("MHz\n");
            b.Append("    sockets: ").Append(I(h.Sockets)).Append('\n');
            b.Append("    cores_per_socket: ").Append(I(h.CoresPerSocket)).Append('\n');
            if (h.UptimeMs != 0)
            {
                b.Append("    uptime: ").Append(I(h.UptimeMs)).Append("ms\n");
            }
            var tsc = new List<string>();
            if (h.DriftPpb != 0)
            {
                tsc.Add($"drift: {I(h.DriftPpb)}ppb");
            }
            if (h.SocketSkewCycles != 0)
            {
                tsc.Add($"socket_skew: {I(h.SocketSkewCycles)}cycles");
            }
            AddFlag(tsc, "constant", h.Constant);
            AddFlag(tsc, "nonstop", h.Nonstop);
            AddFlag(tsc, "scaling", h.Scaling);
            if (tsc.Count > 0)
            {
                b.Append("    tsc: { ").Append(string.Join(", ", tsc)).Append(" }\n");
            }
        }
        b.Append("hypervisor:\n");
        b.Append("  policy: ").Append(Hypervisor.Policy).Append('\n');
        if (Hypervisor.Trapping is { } trapping)
        {
            b.Append("  trapping: ").Append(trapping).Append('\n');
        }
        AppendBool(b, "  tsc_auto", Hypervisor.TscAuto);
        AppendBool(b, "  notify_guest", Hypervisor.NotifyGuest);
        AppendBool(b, "  rdtscp_passthrough", Hypervisor.RdtscpPassthrough);
        if (Hypervisor.SchedulerSliceUs is int slice)
        {
            b.Append("  scheduler_slice: ").Append(I(slice)).Append("us\n");
        }
        b.Append("vms:\n");
        for (int i = 0; i < Vms.Count; i++)
        {
            GVm v = Vms[i];
            b.Append("  - id: vm").Append(I(i)).Append('\n');
            b.Append("    host: h").Append(I(v.Host)).Append('\n');
            b.Append("    vcpus: ").Append(I(v.Vcpus)).Append('\n');
            if (v.Pin is { } pin)
            {
                b.Append("    pin: [").Append(string.Join(", ", pin.Select(I))).Append("]\n");
            }
            if (v.TscKhz is long khz)
            {
                b.Append("    tsc_khz: ").Append(I(khz)).Append('\n');
            }
            if (v.FixedRate || v.SmpStable)
            {
                b.Append("    hints: { fixed_rate: ").Append(B(v.FixedRate)).Append(", smp_stable: ").Append(B(v.SmpStable)).Append(" }\n");
            }
            b.Append("    guest: ").Append(v.Clocksource is { } cs ? $"{{ profile: {v.Profile}, clocksource: {cs} }}" : v.Profile).Append('\n');
            if (!v.Hpet)
            {
                b.Append("    hpet: false\n");
            }
            if (v.StartMs != 0)
            {
                b.Append("    start: ").Append(I(v.StartMs)).Append("ms\n");
            }
            b.Append("    workload: |\n");
            foreach (string line in v.Program.TrimEnd('\n').Split('\n'))
            {
                b.Append("      ").Append(line).Append('\n');
            }
        }
        if (Events.Count > 0)
        {
            b.Append("events:\n");
            foreach (GEvent e in Events)
            {
                b.Append("  - at: ").Append(I(e.AtUs)).Append("us\n    ");
                b.Append(e switch
                {
                    GLiveMigrate m => $"live_migrate: {{ vm: vm{I(m.Vm)}, to: h{I(m.ToHost)}, downtime: {I(m.DowntimeMs)}ms }}",
                    GCpufreq f => $"cpufreq: {{ host: h{I(f.Host)}, cores: {Cores(f.Cores)}, frequency: {I(f.Mhz)}MHz }}",
                    GCstate c => $"cstate: {{ host: h{I(c.Host)}, cores: {Cores(c.Cores)}, state: {c.State}, duration: {I(c.DurationUs)}us }}",
                    GMigrateVcpu mv => $"migrate_vcpu: {{ vm: vm{I(mv.Vm)}, vcpu: {I(mv.Vcpu)}, to_core: {I(mv.ToCore)} }}",
                    GTscWrite w => $"tsc_write: {{ host: h{I(w.Host)}, cores: {Cores(w.Cores)}, value: {w.Value.ToString(CultureInfo.InvariantCulture)} }}",
                    GPolicy p => "policy: { " + string.Join(", ", new[]
                    {
                        p.Trapping is { } t ? $"trapping: {t}" : null,
                        p.TscAuto is { } a ? $"tsc_auto: {B(a)}" : null,
                        p.NotifyGuest is { } n ? $"notify_guest: {B(n)}" : null,
                    }.Where(x => x is not null)) + " }",
                    _ => throw new InvalidOperationException($"unknown event {e}"),
                });
                b.Append('\n');
            }
        }
        if (expect is not null && expect.Any())
        {
            b.Append("expect:\n");
            foreach (string e in expect)
            {
                b.Append("  - ").Append(e).Append('\n');
            }
        }
        return b.ToString();
    }

    /// <summary>The YAML: what FsCheck prints for a generated argument.</summary>
    public override string ToString() => "\n" + ToYaml();

    /// <summary>
    /// Makes every reference valid, as the loader requires (docs/scenario-format.md, "Events"):
    /// indices reduced modulo their ranges, events in time order within the duration, VM events
    /// not before the VM's start nor during its migration downtime, a live migration always to
    /// another host (dropped with one host), <c>to_core</c> a core of the host the VM is on then,
    /// and no RDTSCP in a workload that may run on a CPU without it. Idempotent.
    /// </summary>
    public GeneratedScenario Normalize()
    {
        int duration = Math.Max(1, DurationMs);
        long durationUs = duration * 1000L;
        var hosts = Hosts.Select(h => h with
        {
            Sockets = Math.Clamp(h.Sockets, 1, 8),
            CoresPerSocket = Math.Max(1, h.CoresPerSocket),
            SocketSkewCycles = h.Sockets > 1 ? Math.Max(0, h.SocketSkewCycles) : 0,
        }).ToList();
        bool anyWithoutRdtscp = hosts.Any(h => !h.HasRdtscp);
        var vms = Vms.Select(v =>
        {
            int host = Mod(v.Host, hosts.Count);
            int cores = hosts[host].Cores;
            int vcpus = Math.Max(1, v.Vcpus);
            IReadOnlyList<int>? pin = v.Pin is null ? null
                : Enumerable.Range(0, vcpus).Select(i => Mod(v.Pin.Count > 0 ? v.Pin[i % v.Pin.Count] : i, cores)).ToArray();
            return v with
            {
                Host = host,
                Vcpus = vcpus,
                Pin = pin,
                StartMs = Math.Clamp(v.StartMs, 0, duration / 2),
                WorkCycles = Math.Max(2, v.WorkCycles),
                Workload = v.UsesRdtscp && anyWithoutRdtscp ? Workload.TscLoop : v.Workload,
            };
        }).ToList();

        var where = vms.Select(v => v.Host).ToArray();
        var busyUntilUs = new long[vms.Count]; // a VM is paused until then by a live migration
        var events = new List<GEvent>();
        foreach (GEvent e in Events.Where(e => e.AtUs >= 0 && e.AtUs < durationUs).OrderBy(e => e.AtUs))
        {
            switch (e)
            {
                case GLiveMigrate m:
                {
                    int vm = Mod(m.Vm, vms.Count);
                    if (hosts.Count < 2 || !VmReady(vm, m.AtUs))
                    {
                        continue;
                    }
                    int to = Mod(m.ToHost, hosts.Count);
                    if (to == where[vm])
                    {
                        to = (to + 1) % hosts.Count;
                    }
                    if (!CpuCompatible(hosts[vms[vm].Host].Cpu, hosts[to].Cpu))
                    {
                        continue; // refused like libvirt's CPU check: the guest was shown a feature the destination lacks
                    }
                    where[vm] = to;
                    int downtime = Math.Clamp(m.DowntimeMs, 0, 1000);
                    busyUntilUs[vm] = m.AtUs + downtime * 1000L;
                    events.Add(new GLiveMigrate(m.AtUs, vm, to, downtime));
                    break;
                }
                case GMigrateVcpu mv:
                {
                    int vm = Mod(mv.Vm, vms.Count);
                    if (!VmReady(vm, mv.AtUs))
                    {
                        continue;
                    }
                    events.Add(new GMigrateVcpu(mv.AtUs, vm, Mod(mv.Vcpu, vms[vm].Vcpus), Mod(mv.ToCore, hosts[where[vm]].Cores)));
                    break;
                }
                case GCpufreq f:
                {
                    int h = Mod(f.Host, hosts.Count);
                    events.Add(new GCpufreq(f.AtUs, h, CoreList(f.Cores, hosts[h].Cores), Math.Clamp(f.Mhz, 1, 10_000)));
                    break;
                }
                case GCstate c:
                {
                    int h = Mod(c.Host, hosts.Count);
                    events.Add(new GCstate(c.AtUs, h, CoreList(c.Cores, hosts[h].Cores), c.State, Math.Clamp(c.DurationUs, 1, durationUs)));
                    break;
                }
                case GTscWrite w:
                {
                    int h = Mod(w.Host, hosts.Count);
                    events.Add(new GTscWrite(w.AtUs, h, CoreList(w.Cores, hosts[h].Cores), w.Value));
                    break;
                }
                case GPolicy p when p.Trapping is not null || p.TscAuto is not null || p.NotifyGuest is not null:
                    events.Add(p);
                    break;
            }
        }
        return this with { DurationMs = duration, Hosts = hosts, Vms = vms, Events = events };

        bool VmReady(int vm, long atUs) => atUs >= vms[vm].StartMs * 1000L && atUs > busyUntilUs[vm];
    }

    private static IReadOnlyList<int>? CoreList(IReadOnlyList<int>? cores, int count)
    {
        if (cores is null)
        {
            return null;
        }
        int[] list = cores.Select(c => Mod(c, count)).Distinct().ToArray();
        return list.Length == 0 || list.Length == count && count > 1 ? null : list;
    }

    private static int Mod(int x, int n) => (x % n + n) % n;

    /// <summary>Whether a VM booted on <paramref name="boot"/> may live-migrate to <paramref name="destination"/> (the loader refuses a destination lacking RDTSCP, RDPID or TSC_ADJUST the guest was shown).</summary>
    private static bool CpuCompatible(string boot, string destination)
    {
        var b = TscSim.Core.Hardware.CpuPresets.Find(boot);
        var d = TscSim.Core.Hardware.CpuPresets.Find(destination);
        return b is null || d is null || b.FirstFeatureMissingIn(d) is null;
    }

    private static string I(int x) => x.ToString(CultureInfo.InvariantCulture);

    private static string I(long x) => x.ToString(CultureInfo.InvariantCulture);

    private static string B(bool x) => x ? "true" : "false";

    private static string Cores(IReadOnlyList<int>? cores) => cores is null ? "all" : "[" + string.Join(", ", cores.Select(I)) + "]";

    private static void AddFlag(List<string> list, string key, bool? value)
    {
        if (value is bool v)
        {
            list.Add($"{key}: {B(v)}");
        }
    }

    private static void AppendBool(StringBuilder b, string key, bool? value)
    {
        if (value is bool v)
        {
            b.Append(key).Append(": ").Append(B(v)).Append('\n');
        }
    }
}

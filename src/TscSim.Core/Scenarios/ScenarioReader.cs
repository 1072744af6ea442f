using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Text;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;

namespace TscSim.Core.Scenarios;

/// <summary>
/// Turns a YAML tree into a validated, resolved <see cref="Scenario"/>. Every problem is added
/// to the diagnostics list with the position of the node at fault; reading goes on after an
/// error so one pass reports all of them. Values are read through <see cref="YamlReader"/>,
/// the same front door as sweep files; events are in <c>ScenarioReader.Events.cs</c>.
/// </summary>
internal sealed partial class ScenarioReader(List<ScenarioDiagnostic> diagnostics) : YamlReader(diagnostics)
{
    /// <summary>Ids written in the file, valid or not: a reference to an invalid host or VM is not reported twice.</summary>
    private readonly HashSet<string> _declaredHosts = new(StringComparer.Ordinal);
    private readonly HashSet<string> _declaredVms = new(StringComparer.Ordinal);
    private bool _hostsListed;
    private bool _vmsListed;
    private readonly List<(string Path, SourcePosition Position)> _explicitHpet = []; // VMs that ask for an HPET in so many words

    internal static readonly string[] RootKeys = ["name", "description", "seed", "duration", "hosts", "hypervisor", "vms", "events", "expect", "measurement"];
    internal static readonly string[] HostKeys = ["id", "cpu", "frequency", "sockets", "cores_per_socket", "uptime", "exit_cost", "tsc"];
    internal static readonly string[] TscKeys = ["drift", "socket_skew", "constant", "nonstop", "scaling"];
    internal static readonly string[] HypervisorKeys = ["policy", "tsc_auto", "trapping", "notify_guest", "rdtscp_passthrough", "tolerance_ppm", "scaling", "scheduler_slice", "vmm"];
    internal static readonly string[] VmKeys = ["id", "host", "vcpus", "pin", "tsc_khz", "hints", "guest", "hpet", "workload", "start"];
    internal static readonly string[] HintKeys = ["fixed_rate", "smp_stable"];
    internal static readonly string[] GuestKeys = ["profile", "clocksource", "kvmclock", "hz"];
    internal static readonly string[] MeasurementKeys = ["reads_csv_max_rows", "reads_csv_interval"];
    internal static readonly string[] EventKinds = ["live_migrate", "cpufreq", "cstate", "migrate_vcpu", "tsc_write", "policy"];
    private static readonly string[] EventKeys = ["at", .. EventKinds];
    private static readonly string[] LiveMigrateKeys = ["vm", "to", "downtime"];
    private static readonly string[] CpufreqKeys = ["host", "cores", "frequency"];
    private static readonly string[] CstateKeys = ["host", "cores", "state", "duration"];
    private static readonly string[] MigrateVcpuKeys = ["vm", "vcpu", "to_core"];
    private static readonly string[] TscWriteKeys = ["host", "cores", "value"];
    private static readonly string[] PolicyEventKeys = ["trapping", "tsc_auto", "notify_guest"];
    private static readonly string[] TrappingNames = ["auto", "on", "off"];
    private static readonly string[] ClocksourceNames = ["tsc", "kvm-clock", "hpet", "acpi_pm"];
    private static readonly string[] CStateNames = ["C1", "C1E", "C3", "C6"];

    /// <summary>Longest run: 30 days.</summary>
    internal static readonly Duration MaxDuration = Duration.FromSeconds(30L * 24 * 3600);

    /// <summary>Longest host uptime at the start: 60 days (uptime plus run stay within the 106-day picosecond range).</summary>
    internal static readonly Duration MaxUptime = Duration.FromSeconds(60L * 24 * 3600);

    internal static readonly Frequency MinFrequency = Frequency.FromMegahertz(1);
    internal static readonly Frequency MaxFrequency = Frequency.FromMegahertz(10_000);

    private Frequency? FrequencyValue(YNode node, string path) =>
        Quantity<Frequency>(node, path, "a frequency", "2.4GHz", Time.Quantity.TryParseFrequency, MinFrequency, MaxFrequency, "from 1MHz to 10GHz");

    // ---- the scenario ----------------------------------------------------------------------

    public Scenario? Read(YNode root)
    {
        int errorsBefore = Diagnostics.Count;
        var map = Map(root, "", "a mapping of scenario keys (name, duration, hosts, vms, ...)", RootKeys);
        if (map is null)
        {
            return null;
        }

        string? name = Required(map, "", "name", "the scenario's name, e.g. name: legacy-guest") is { } nameNode
            ? FolderName(nameNode, "name", "scenario")
            : null;

        string? description = Get(map, "description") is { } d ? Text(d, "description", "text") : null;
        ulong seed = Get(map, "seed") is { } seedNode ? Unsigned(seedNode, "seed", "an integer from 0 to 18446744073709551615") ?? 1 : 1;

        Duration? duration = Required(map, "", "duration", "the simulated time to run, e.g. duration: 20s") is { } durNode
            ? DurationValue(durNode, "duration", Duration.FromPicoseconds(1), MaxDuration, "greater than 0 and at most 30 days (720h)", "20s")
            : null;

        var hosts = new List<HostSpec>();
        if (Required(map, "", "hosts", "a list of hosts, each with id, cpu and frequency") is { } hostsNode
            && List(hostsNode, "hosts", "a list of hosts ('- id: ...' items)") is { } hostSeq)
        {
            if (hostSeq.Items.Count == 0)
            {
                Error(hostSeq.Position, "hosts: the list is empty; expected at least one host");
            }
            _hostsListed = true;
            DeclaredIds(hostSeq, _declaredHosts);
            var seen = new Dictionary<string, SourcePosition>(StringComparer.Ordinal);
            for (int i = 0; i < hostSeq.Items.Count; i++)
            {
                if (ReadHost(hostSeq.Items[i], $"hosts[{i}]") is { } host)
                {
                    if (seen.TryGetValue(host.Id, out var first))
                    {
                        Error(host.Position, $"hosts[{i}].id: duplicate host id '{host.Id}' (first at line {first.Line}); expected unique ids");
                        continue;
                    }
                    seen[host.Id] = host.Position;
                    hosts.Add(host);
                }
            }
        }

        var hypervisor = Get(map, "hypervisor") is { } hvNode
            ? ReadHypervisor(hvNode)
            : HypervisorSpec.FromPreset("kvm-2011") with { Position = map.Position };

        var vms = new List<VmSpec>();
        if (Required(map, "", "vms", "a list of VMs, each with id, host and workload") is { } vmsNode
            && List(vmsNode, "vms", "a list of VMs ('- id: ...' items)") is { } vmSeq)
        {
            if (vmSeq.Items.Count == 0)
            {
                Error(vmSeq.Position, "vms: the list is empty; expected at least one VM");
            }
            _vmsListed = true;
            DeclaredIds(vmSeq, _declaredVms);
            var seen = new Dictionary<string, SourcePosition>(StringComparer.Ordinal);
            for (int i = 0; i < vmSeq.Items.Count; i++)
            {
                if (ReadVm(vmSeq.Items[i], $"vms[{i}]", hosts, duration) is { } vm)
                {
                    if (seen.TryGetValue(vm.Id, out var first))
                    {
                        Error(vm.Position, $"vms[{i}].id: duplicate VM id '{vm.Id}' (first at line {first.Line}); expected unique ids");
                        continue;
                    }
                    seen[vm.Id] = vm.Position;
                    vms.Add(vm);
                }
            }
        }

        if (hypervisor is not null && !hypervisor.ToConfig().OffersHpet)
        {
            foreach (var (hpetPath, position) in _explicitHpet)
            {
                Error(position, $"{hpetPath}: true, but policy '{hypervisor.Policy}' offers no HPET (Hyper-V: Linux Documentation/virt/hyperv/clocks.rst); expected false or no hpet key");
            }
        }

        var events = Get(map, "events") is { } eventsNode ? ReadEvents(eventsNode, hosts, vms, duration) : [];

        var expect = new List<Expectation>();
        if (Get(map, "expect") is { } expectNode && List(expectNode, "expect", "a list of expectations ('- vm0.cross_vcpu.violations == 0')") is { } expectSeq)
        {
            for (int i = 0; i < expectSeq.Items.Count; i++)
            {
                string path = $"expect[{i}]";
                if (Scalar(expectSeq.Items[i], path, "an expectation such as 'vm0.vcpu0.skew_ns.max_abs < 200ms'") is not { } s)
                {
                    continue;
                }
                if (Expectation.TryParse(s.Value, s.ContentPosition, out var e, out var diag))
                {
                    expect.Add(e);
                }
                else
                {
                    Error(diag.Position, $"{path}: {diag.Message}");
                }
            }
        }

        var measurement = Get(map, "measurement") is { } mNode ? ReadMeasurement(mNode) : new MeasurementSpec();

        if (Diagnostics.Count > errorsBefore || name is null || duration is null || measurement is null)
        {
            return null;
        }
        return new Scenario
        {
            Name = name,
            Description = description,
            Seed = seed,
            Duration = duration.Value,
            Hosts = ValueList.From(hosts),
            Hypervisor = hypervisor!,
            Vms = ValueList.From(vms),
            Events = ValueList.From(events),
            Expect = ValueList.From(expect),
            Measurement = measurement,
            Position = map.Position,
        };
    }

    private HostSpec? ReadHost(YNode node, string path)
    {
        if (Map(node, path, "a host mapping (id, cpu, frequency, ...)", HostKeys) is not { } map)
        {
            return null;
        }
        int errorsBefore = Diagnostics.Count;
        string? id = Required(map, path, "id", "the host's id, e.g. id: host0") is { } idNode ? Id(idNode, Join(path, "id"), "a host id") : null;
        CpuModel? cpu = null;
        if (Required(map, path, "cpu", $"a CPU preset: {string.Join(", ", CpuPresets.All.Select(c => c.Name))}") is { } cpuNode
            && Choice(cpuNode, Join(path, "cpu"), "CPU preset", [.. CpuPresets.All.Select(c => c.Name)]) is { } cpuName)
        {
            cpu = CpuPresets.Find(cpuName);
        }
        var frequency = Required(map, path, "frequency", "the nominal core frequency, e.g. frequency: 2.4GHz") is { } fNode
            ? FrequencyValue(fNode, Join(path, "frequency"))
            : null;
        long sockets = Get(map, "sockets") is { } sNode ? Integer(sNode, Join(path, "sockets"), 1, 8) ?? 1 : 1;
        long coresPerSocket = Get(map, "cores_per_socket") is { } cNode ? Integer(cNode, Join(path, "cores_per_socket"), 1, 256) ?? 1 : 2;
        var uptime = Get(map, "uptime") is { } uNode
            ? DurationValue(uNode, Join(path, "uptime"), Duration.Zero, MaxUptime, "from 0s to 60 days (1440h)", "1h")
            : Duration.Zero;
        var exitCost = Get(map, "exit_cost") is { } eNode
            ? CyclesValue(eNode, Join(path, "exit_cost"), Cycles.Zero, new Cycles(10_000_000), "from 0cycles to 10000000cycles")
            : null;

        Ppm drift = Ppm.Zero;
        Cycles skew = Cycles.Zero;
        bool? constant = null, nonstop = null, scaling = null;
        if (Get(map, "tsc") is { } tscNode && Map(tscNode, Join(path, "tsc"), "a mapping (drift, socket_skew, constant, nonstop, scaling)", TscKeys) is { } tsc)
        {
            string tp = Join(path, "tsc");
            if (Get(tsc, "drift") is { } dn)
            {
                drift = PpmValue(dn, Join(tp, "drift"), Ppm.FromPartsPerMillion(-10_000), Ppm.FromPartsPerMillion(10_000), "from -10000ppm to 10000ppm") ?? Ppm.Zero;
            }
            if (Get(tsc, "socket_skew") is { } sk)
            {
                skew = CyclesValue(sk, Join(tp, "socket_skew"), new Cycles(-1_000_000_000_000), new Cycles(1_000_000_000_000),
                    "from -1000000000000cycles to 1000000000000cycles") ?? Cycles.Zero;
            }
            constant = Get(tsc, "constant") is { } cn ? Bool(cn, Join(tp, "constant")) : null;
            nonstop = Get(tsc, "nonstop") is { } nn ? Bool(nn, Join(tp, "nonstop")) : null;
            scaling = Get(tsc, "scaling") is { } scn ? Bool(scn, Join(tp, "scaling")) : null;
        }

        if (Diagnostics.Count > errorsBefore || id is null || cpu is null || frequency is null)
        {
            return null;
        }
        var host = new HostSpec
        {
            Id = id,
            Cpu = cpu.Name,
            Frequency = frequency.Value,
            Sockets = (int)sockets,
            CoresPerSocket = (int)coresPerSocket,
            Uptime = uptime ?? Duration.Zero,
            ExitCost = exitCost ?? cpu.ExitRoundTrip,
            Tsc = new TscSpec
            {
                Drift = drift,
                SocketSkew = skew,
                Constant = constant ?? cpu.ConstantTsc,
                Nonstop = nonstop ?? cpu.NonstopTsc,
                Scaling = scaling ?? cpu.Scaling != TscScaling.None,
            },
            Position = map.Position,
        };
        foreach (string problem in host.ToHostConfig().Problems())
        {
            Error(map.Position, $"{path}: {problem}; expected a consistent host");
        }
        return Diagnostics.Count > errorsBefore ? null : host;
    }

    private HypervisorSpec? ReadHypervisor(YNode node)
    {
        const string path = "hypervisor";
        if (Map(node, path, "a mapping (policy, tsc_auto, trapping, ...)", HypervisorKeys) is not { } map)
        {
            return null;
        }
        var names = HypervisorConfig.Presets.Select(p => p.Preset).ToArray();
        string policy = Get(map, "policy") is { } pNode ? Choice(pNode, Join(path, "policy"), "policy preset", names) ?? "kvm-2011" : "kvm-2011";
        var spec = HypervisorSpec.FromPreset(policy) with { Position = map.Position };
        if (Get(map, "tsc_auto") is { } a && Bool(a, Join(path, "tsc_auto")) is { } tscAuto)
        {
            spec = spec with { TscAuto = tscAuto };
        }
        if (Get(map, "trapping") is { } t && Trapping(t, Join(path, "trapping")) is { } trapping)
        {
            spec = spec with { Trapping = trapping };
        }
        if (Get(map, "notify_guest") is { } ng && Bool(ng, Join(path, "notify_guest")) is { } notify)
        {
            spec = spec with { NotifyGuest = notify };
        }
        if (Get(map, "rdtscp_passthrough") is { } rp && Bool(rp, Join(path, "rdtscp_passthrough")) is { } passthrough)
        {
            spec = spec with { RdtscpPassthrough = passthrough };
        }
        if (Get(map, "tolerance_ppm") is { } tp && Integer(tp, Join(path, "tolerance_ppm"), 0, 1_000_000) is { } tolerance)
        {
            spec = spec with { TolerancePpm = tolerance };
        }
        if (Get(map, "scaling") is { } sc && Bool(sc, Join(path, "scaling")) is { } scaling)
        {
            spec = spec with { Scaling = scaling };
        }
        if (Get(map, "vmm") is { } vmmNode)
        {
            switch (Choice(vmmNode, Join(path, "vmm"), "VMM", ["qemu", "direct"]))
            {
                case "qemu": spec = spec with { Vmm = VmmKind.Qemu }; break;
                case "direct": spec = spec with { Vmm = VmmKind.Direct }; break;
            }
        }
        if (Get(map, "scheduler_slice") is { } ss)
        {
            spec = spec with
            {
                SchedulerSlice = DurationValue(ss, Join(path, "scheduler_slice"), Duration.FromMicroseconds(1), Duration.FromSeconds(10),
                    "from 1us to 10s", "10ms"),
            };
        }
        return spec;
    }

    private TrappingOverride? Trapping(YNode node, string path) => Choice(node, path, "trapping override", TrappingNames) switch
    {
        "auto" => TrappingOverride.Auto,
        "on" => TrappingOverride.On,
        "off" => TrappingOverride.Off,
        _ => null,
    };

    private VmSpec? ReadVm(YNode node, string path, List<HostSpec> hosts, Duration? duration)
    {
        if (Map(node, path, "a VM mapping (id, host, vcpus, guest, workload, ...)", VmKeys) is not { } map)
        {
            return null;
        }
        int errorsBefore = Diagnostics.Count;
        string? id = Required(map, path, "id", "the VM's id, e.g. id: vm0") is { } idNode ? Id(idNode, Join(path, "id"), "a VM id") : null;
        HostSpec? host = null;
        if (Required(map, path, "host", "the id of the host the VM starts on") is { } hostNode
            && Text(hostNode, Join(path, "host"), "a host id") is { } hostId)
        {
            host = HostRef(hostNode, Join(path, "host"), hostId, hosts);
        }
        long vcpus = Get(map, "vcpus") is { } vNode ? Integer(vNode, Join(path, "vcpus"), 1, 64) ?? 1 : 1;

        ValueList<int>? pin = null;
        if (Get(map, "pin") is { } pinNode && List(pinNode, Join(path, "pin"), "a list of core indices, one per vCPU, e.g. [0, 1]") is { } pinSeq)
        {
            string pp = Join(path, "pin");
            if (pinSeq.Items.Count != vcpus)
            {
                Error(pinSeq.Position, $"{pp}: {pinSeq.Items.Count} cores for {vcpus} vCPUs; expected one core index per vCPU");
            }
            var cores = new List<int>();
            for (int i = 0; i < pinSeq.Items.Count; i++)
            {
                int maxCore = host is null ? 8 * 256 - 1 : host.Cores - 1;
                if (Integer(pinSeq.Items[i], $"{pp}[{i}]", 0, maxCore, host is null ? "a core index" : $"a core index of host '{host.Id}'") is { } core)
                {
                    cores.Add((int)core);
                }
            }
            pin = ValueList.From(cores);
        }

        long? tscKhz = Get(map, "tsc_khz") is { } kNode ? Integer(kNode, Join(path, "tsc_khz"), 1, 10_000_000, "a rate in kHz") : null;

        var hints = new HintsSpec();
        if (Get(map, "hints") is { } hNode && Map(hNode, Join(path, "hints"), "a mapping (fixed_rate, smp_stable)", HintKeys) is { } hMap)
        {
            hints = new HintsSpec
            {
                FixedRate = Get(hMap, "fixed_rate") is { } fr && (Bool(fr, Join(path, "hints.fixed_rate")) ?? false),
                SmpStable = Get(hMap, "smp_stable") is { } ss && (Bool(ss, Join(path, "hints.smp_stable")) ?? false),
            };
        }

        var guest = Get(map, "guest") is { } gNode ? ReadGuest(gNode, Join(path, "guest")) : new GuestSpec { Profile = OsProfiles.LinuxModern.Name };

        bool? hpet = null;
        if (Get(map, "hpet") is { } hpNode && Bool(hpNode, Join(path, "hpet")) is bool hp)
        {
            hpet = hp;
            if (!hp && guest?.Clocksource == ClocksourceKind.Hpet)
            {
                Error(hpNode.Position, $"{Join(path, "hpet")}: false, but {Join(path, "guest.clocksource")} is hpet; expected hpet: true or another clocksource");
            }
            if (hp)
            {
                _explicitHpet.Add((Join(path, "hpet"), hpNode.Position));
            }
        }

        string? workload = null;
        SourcePosition workloadPosition = SourcePosition.None;
        if (Required(map, path, "workload", "guest assembly, e.g. workload: |  (then the program, indented)") is { } wNode
            && Scalar(wNode, Join(path, "workload"), "guest assembly text (a '|' block)") is { } w)
        {
            if (w.IsFolded)
            {
                Error(w.Position, $"{Join(path, "workload")}: '>' folds the program's lines together; expected a literal block '|'");
            }
            else if (string.IsNullOrWhiteSpace(w.Value))
            {
                Error(w.Position, $"{Join(path, "workload")}: the workload is empty; expected guest assembly");
            }
            else
            {
                workload = w.Value;
                workloadPosition = w.ContentPosition;
            }
        }

        var start = Get(map, "start") is { } stNode
            ? DurationValue(stNode, Join(path, "start"), Duration.Zero, duration is { } d ? d - Duration.FromPicoseconds(1) : MaxDuration,
                "from 0s to before the end of the run", "1s")
            : Duration.Zero;

        if (Diagnostics.Count > errorsBefore || id is null || host is null || guest is null || workload is null || start is null)
        {
            return null;
        }
        return new VmSpec
        {
            Id = id,
            Host = host.Id,
            Vcpus = (int)vcpus,
            Pin = pin,
            TscKhz = tscKhz,
            Hints = hints,
            Guest = guest,
            Workload = workload,
            WorkloadPosition = workloadPosition,
            Start = start.Value,
            Hpet = hpet,
            Position = map.Position,
        };
    }

    private static void DeclaredIds(YSeq seq, HashSet<string> ids)
    {
        foreach (var item in seq.Items)
        {
            if (item is YMap map && map.Get("id") is YScalar { IsNull: false } id)
            {
                ids.Add(id.Value);
            }
        }
    }

    private HostSpec? HostRef(YNode node, string path, string id, List<HostSpec> hosts)
    {
        if (hosts.FirstOrDefault(h => h.Id == id) is { } host)
        {
            return host;
        }
        if (_declaredHosts.Contains(id) || !_hostsListed)
        {
            return null; // the host (or the hosts list) has an error, reported there
        }
        var ids = hosts.Select(h => h.Id).ToList();
        Error(node.Position, $"{path}: no host has the id '{id}'{Suggestions.DidYouMean(id, ids)}expected one of: {string.Join(", ", ids)}");
        return null;
    }

    private VmSpec? VmRef(YNode node, string path, string id, List<VmSpec> vms)
    {
        if (vms.FirstOrDefault(v => v.Id == id) is { } vm)
        {
            return vm;
        }
        if (_declaredVms.Contains(id) || !_vmsListed)
        {
            return null; // the VM (or the vms list) has an error, reported there
        }
        var ids = vms.Select(v => v.Id).ToList();
        Error(node.Position, $"{path}: no VM has the id '{id}'{Suggestions.DidYouMean(id, ids)}expected one of: {string.Join(", ", ids)}");
        return null;
    }

    private GuestSpec? ReadGuest(YNode node, string path)
    {
        var profiles = OsProfiles.All.Select(p => p.Name).Concat(OsProfiles.Aliases.Select(a => a.Alias)).ToArray();
        if (node is YScalar)
        {
            return Choice(node, path, "guest profile", profiles) is { } name ? new GuestSpec { Profile = name } : null;
        }
        if (Map(node, path, "a guest profile name or a mapping (profile, clocksource, kvmclock, hz)", GuestKeys) is not { } map)
        {
            return null;
        }
        string? profile = Required(map, path, "profile", $"a guest profile: {string.Join(", ", profiles)}") is { } pNode
            ? Choice(pNode, Join(path, "profile"), "guest profile", profiles)
            : null;
        ClocksourceKind? clocksource = null;
        bool clocksourceOk = true;
        if (Get(map, "clocksource") is { } cNode)
        {
            clocksource = Choice(cNode, Join(path, "clocksource"), "clocksource", ClocksourceNames) is { } cs ? OsProfiles.ParseClocksource(cs) : null;
            clocksourceOk = clocksource is not null;
        }
        bool kvmclock = true;
        bool kvmclockOk = true;
        if (Get(map, "kvmclock") is { } kNode)
        {
            bool? k = Bool(kNode, Join(path, "kvmclock"));
            kvmclockOk = k is not null;
            kvmclock = k ?? true;
            if (k == false && clocksource == ClocksourceKind.KvmClock)
            {
                Error(kNode.Position, $"{Join(path, "kvmclock")}: false contradicts clocksource: kvm-clock; expected true, or another clocksource");
                kvmclockOk = false;
            }
        }
        int? hz = null;
        bool hzOk = true;
        if (Get(map, "hz") is { } hNode && profile is not null)
        {
            var choices = OsProfiles.Find(profile)!.HzChoices;
            if (choices.IsEmpty)
            {
                Error(hNode.Position, $"{Join(path, "hz")}: the {profile} profile has no selectable tick rate; expected no hz key (its rate is fixed: see tscsim presets)");
                hzOk = false;
            }
            else if (Integer(hNode, Join(path, "hz"), 1, 10_000, "a tick rate in Hz") is long h)
            {
                hzOk = choices.Contains((int)h);
                if (hzOk)
                {
                    hz = (int)h;
                }
                else
                {
                    Error(hNode.Position, $"{Join(path, "hz")}: {h} is not a tick rate of {profile}; expected one of {string.Join(", ", choices)}");
                }
            }
            else
            {
                hzOk = false;
            }
        }
        if (profile is null || !clocksourceOk || !kvmclockOk || !hzOk)
        {
            return null;
        }
        return new GuestSpec { Profile = profile, Clocksource = clocksource ?? OsProfiles.Find(profile)!.Clocksource, Kvmclock = kvmclock, Hz = hz };
    }

    private MeasurementSpec? ReadMeasurement(YNode node)
    {
        const string path = "measurement";
        if (Map(node, path, "a mapping (reads_csv_max_rows, reads_csv_interval)", MeasurementKeys) is not { } map)
        {
            return null;
        }
        int errorsBefore = Diagnostics.Count;
        long rows = Get(map, "reads_csv_max_rows") is { } r ? Integer(r, Join(path, "reads_csv_max_rows"), 0, 10_000_000) ?? 0 : 20_000;
        Duration? interval = Get(map, "reads_csv_interval") is { } i
            ? DurationValue(i, Join(path, "reads_csv_interval"), Duration.FromPicoseconds(1), MaxDuration, "greater than 0 and at most 30 days", "1ms")
            : null;
        return Diagnostics.Count > errorsBefore ? null : new MeasurementSpec { ReadsCsvMaxRows = (int)rows, ReadsCsvInterval = interval };
    }
}

using TscSim.Core.Hardware;
using TscSim.Core.Time;

namespace TscSim.Core.Scenarios;

internal sealed partial class ScenarioReader
{
    /// <summary>What a later cross-check needs of an event besides the event itself.</summary>
    private sealed record EventRefs(ScenarioEvent Event, string Path, YNode? Target);

    private List<ScenarioEvent> ReadEvents(YNode node, List<HostSpec> hosts, List<VmSpec> vms, Duration? duration)
    {
        var events = new List<EventRefs>();
        if (List(node, "events", "a list of events ('- at: 5s' items, each with one event kind)") is not { } seq)
        {
            return [];
        }
        for (int i = 0; i < seq.Items.Count; i++)
        {
            if (ReadEvent(seq.Items[i], $"events[{i}]", i, hosts, vms, duration) is { } e)
            {
                events.Add(e);
            }
        }
        Replay(events, hosts, vms);
        return [.. events.Select(e => e.Event)];
    }

    private EventRefs? ReadEvent(YNode node, string path, int index, List<HostSpec> hosts, List<VmSpec> vms, Duration? duration)
    {
        if (Map(node, path, $"an event mapping: 'at' and one of {string.Join(", ", EventKinds)}", EventKeys) is not { } map)
        {
            return null;
        }
        int errorsBefore = Diagnostics.Count;
        var at = Required(map, path, "at", "when the event happens, e.g. at: 5s") is { } atNode
            ? DurationValue(atNode, Join(path, "at"), Duration.Zero, duration ?? MaxDuration, "from 0s to the scenario's duration", "5s")
            : null;

        var kinds = map.Entries.Where(e => EventKinds.Contains(e.Key.Value)).ToList();
        if (kinds.Count == 0)
        {
            if (map.Entries.Any(e => !EventKeys.Contains(e.Key.Value)))
            {
                return null; // a misspelt kind, already reported with a suggestion
            }
            Error(map.Position, $"{path}: no event kind given; expected exactly one of: {string.Join(", ", EventKinds)}");
            return null;
        }
        if (kinds.Count > 1)
        {
            Error(kinds[1].Key.Position, $"{path}: '{kinds[0].Key.Value}' and '{kinds[1].Key.Value}' in one event; " +
                "expected exactly one event kind per list item (write two events with the same 'at')");
            return null;
        }
        string kind = kinds[0].Key.Value;
        string kp = Join(path, kind);
        var body = kinds[0].Value;
        EventRefs? result = kind switch
        {
            "live_migrate" => ReadLiveMigrate(body, kp, hosts, vms),
            "cpufreq" => ReadCpufreq(body, kp, hosts),
            "cstate" => ReadCstate(body, kp, hosts, duration),
            "migrate_vcpu" => ReadMigrateVcpu(body, kp, vms),
            "tsc_write" => ReadTscWrite(body, kp, hosts),
            _ => ReadPolicyEvent(body, kp),
        };
        if (Diagnostics.Count > errorsBefore || result is null || at is null)
        {
            return null;
        }
        var e = result.Event with { At = at.Value, Index = index, Position = map.Position };
        return result with { Event = e, Path = path };
    }

    private static readonly Duration Placeholder = Duration.Zero;

    private EventRefs? ReadLiveMigrate(YNode node, string path, List<HostSpec> hosts, List<VmSpec> vms)
    {
        if (Map(node, path, "a mapping (vm, to, downtime)", LiveMigrateKeys) is not { } map)
        {
            return null;
        }
        VmSpec? vm = Required(map, path, "vm", "the id of the VM to migrate") is { } vmNode && Text(vmNode, Join(path, "vm"), "a VM id") is { } vmId
            ? VmRef(vmNode, Join(path, "vm"), vmId, vms)
            : null;
        var toNode = Required(map, path, "to", "the id of the destination host");
        HostSpec? to = toNode is not null && Text(toNode, Join(path, "to"), "a host id") is { } toId ? HostRef(toNode, Join(path, "to"), toId, hosts) : null;
        var downtime = Get(map, "downtime") is { } dNode
            ? DurationValue(dNode, Join(path, "downtime"), Duration.Zero, Duration.FromSeconds(3600), "from 0s to 1h", "100ms")
            : Duration.FromMilliseconds(100);
        if (vm is null || to is null || downtime is null)
        {
            return null;
        }
        return new EventRefs(new LiveMigrateEvent { At = Placeholder, Index = 0, Vm = vm.Id, To = to.Id, Downtime = downtime.Value }, path, toNode);
    }

    private EventRefs? ReadCpufreq(YNode node, string path, List<HostSpec> hosts)
    {
        if (Map(node, path, "a mapping (host, cores, frequency)", CpufreqKeys) is not { } map)
        {
            return null;
        }
        var host = EventHost(map, path, hosts);
        var cores = Cores(map, path, host);
        var frequency = Required(map, path, "frequency", "the new core frequency, e.g. frequency: 1GHz") is { } fNode
            ? FrequencyValue(fNode, Join(path, "frequency"))
            : null;
        if (host is null || cores is null || frequency is null)
        {
            return null;
        }
        return new EventRefs(new CpufreqEvent { At = Placeholder, Index = 0, Host = host.Id, Cores = cores, Frequency = frequency.Value }, path, null);
    }

    private EventRefs? ReadCstate(YNode node, string path, List<HostSpec> hosts, Duration? duration)
    {
        if (Map(node, path, "a mapping (host, cores, state, duration)", CstateKeys) is not { } map)
        {
            return null;
        }
        var host = EventHost(map, path, hosts);
        var cores = Cores(map, path, host);
        CState? state = Required(map, path, "state", "a C-state: C1, C1E, C3 or C6") is { } sNode
            ? Choice(sNode, Join(path, "state"), "C-state", CStateNames) switch
            {
                "C1" => CState.C1,
                "C1E" => CState.C1E,
                "C3" => CState.C3,
                "C6" => CState.C6,
                _ => null,
            }
            : null;
        var length = Required(map, path, "duration", "how long the cores stay in the state, e.g. duration: 50ms") is { } dNode
            ? DurationValue(dNode, Join(path, "duration"), Duration.FromPicoseconds(1), duration ?? MaxDuration,
                "greater than 0 and at most the scenario's duration", "50ms")
            : null;
        if (host is null || cores is null || state is null || length is null)
        {
            return null;
        }
        return new EventRefs(new CstateEvent { At = Placeholder, Index = 0, Host = host.Id, Cores = cores, State = state.Value, Duration = length.Value }, path, null);
    }

    private EventRefs? ReadMigrateVcpu(YNode node, string path, List<VmSpec> vms)
    {
        if (Map(node, path, "a mapping (vm, vcpu, to_core)", MigrateVcpuKeys) is not { } map)
        {
            return null;
        }
        VmSpec? vm = Required(map, path, "vm", "the id of the VM") is { } vmNode && Text(vmNode, Join(path, "vm"), "a VM id") is { } vmId
            ? VmRef(vmNode, Join(path, "vm"), vmId, vms)
            : null;
        long? vcpu = Required(map, path, "vcpu", "the vCPU index, e.g. vcpu: 0") is { } vNode
            ? Integer(vNode, Join(path, "vcpu"), 0, vm is null ? 63 : vm.Vcpus - 1, vm is null ? "a vCPU index" : $"a vCPU index of VM '{vm.Id}'")
            : null;
        var coreNode = Required(map, path, "to_core", "the destination core index, e.g. to_core: 1");
        long? core = coreNode is not null ? Integer(coreNode, Join(path, "to_core"), 0, 8 * 256 - 1, "a core index") : null;
        if (vm is null || vcpu is null || core is null)
        {
            return null;
        }
        return new EventRefs(new MigrateVcpuEvent { At = Placeholder, Index = 0, Vm = vm.Id, Vcpu = (int)vcpu, ToCore = (int)core }, path, coreNode);
    }

    private EventRefs? ReadTscWrite(YNode node, string path, List<HostSpec> hosts)
    {
        if (Map(node, path, "a mapping (host, cores, value)", TscWriteKeys) is not { } map)
        {
            return null;
        }
        var host = EventHost(map, path, hosts);
        var cores = Cores(map, path, host);
        ulong? value = Required(map, path, "value", "the TSC value to write, e.g. value: 0") is { } vNode
            ? Unsigned(vNode, Join(path, "value"), "an integer from 0 to 18446744073709551615 (decimal, or hex with 0x)")
            : null;
        if (host is null || cores is null || value is null)
        {
            return null;
        }
        return new EventRefs(new TscWriteEvent { At = Placeholder, Index = 0, Host = host.Id, Cores = cores, Value = value.Value }, path, null);
    }

    private EventRefs? ReadPolicyEvent(YNode node, string path)
    {
        if (Map(node, path, "a mapping (trapping, tsc_auto, notify_guest)", PolicyEventKeys) is not { } map)
        {
            return null;
        }
        int errorsBefore = Diagnostics.Count;
        var trapping = Get(map, "trapping") is { } t ? Trapping(t, Join(path, "trapping")) : null;
        bool? tscAuto = Get(map, "tsc_auto") is { } a ? Bool(a, Join(path, "tsc_auto")) : null;
        bool? notify = Get(map, "notify_guest") is { } n ? Bool(n, Join(path, "notify_guest")) : null;
        if (Diagnostics.Count > errorsBefore)
        {
            return null;
        }
        if (trapping is null && tscAuto is null && notify is null)
        {
            Error(map.Position, $"{path}: nothing to change; expected at least one of: {string.Join(", ", PolicyEventKeys)}");
            return null;
        }
        return new EventRefs(new PolicyEvent { At = Placeholder, Index = 0, Trapping = trapping, TscAuto = tscAuto, NotifyGuest = notify }, path, null);
    }

    private HostSpec? EventHost(YMap map, string path, List<HostSpec> hosts) =>
        Required(map, path, "host", "the id of the host") is { } hNode && Text(hNode, Join(path, "host"), "a host id") is { } id
            ? HostRef(hNode, Join(path, "host"), id, hosts)
            : null;

    /// <summary><c>cores: all</c> (the default) or a list of distinct core indices of <paramref name="host"/>.</summary>
    private CoreSelection? Cores(YMap map, string path, HostSpec? host)
    {
        string cp = Join(path, "cores");
        if (Get(map, "cores") is not { } node)
        {
            return CoreSelection.All;
        }
        if (node is YScalar s)
        {
            if (s.Value == "all")
            {
                return CoreSelection.All;
            }
            Error(s.Position, $"{cp}: expected 'all' or a list of core indices such as [0, 1], got {s.Describe()}");
            return null;
        }
        if (List(node, cp, "'all' or a list of core indices such as [0, 1]") is not { } seq)
        {
            return null;
        }
        if (seq.Items.Count == 0)
        {
            Error(seq.Position, $"{cp}: the list is empty; expected at least one core index, or 'all'");
            return null;
        }
        var cores = new List<int>();
        bool ok = true;
        for (int i = 0; i < seq.Items.Count; i++)
        {
            long max = host is null ? 8 * 256 - 1 : host.Cores - 1;
            if (Integer(seq.Items[i], $"{cp}[{i}]", 0, max, host is null ? "a core index" : $"a core index of host '{host.Id}'") is not { } core)
            {
                ok = false;
                continue;
            }
            if (cores.Contains((int)core))
            {
                Error(seq.Items[i].Position, $"{cp}[{i}]: core {core} is listed twice; expected each core once");
                ok = false;
                continue;
            }
            cores.Add((int)core);
        }
        return ok ? CoreSelection.Of([.. cores]) : null;
    }

    /// <summary>The first CPUID feature of <paramref name="boot"/>'s preset that <paramref name="destination"/>'s lacks, or null.</summary>
    private static string? MissingCpuFeature(string boot, string? destination) =>
        destination is not null && Hardware.CpuPresets.Find(boot) is { } b && Hardware.CpuPresets.Find(destination) is { } d
            ? b.FirstFeatureMissingIn(d)
            : null; // an unknown preset is reported where it is named

    /// <summary>
    /// Replays the events in time order (file order for ties) to check what depends on where
    /// each VM is at that instant: a VM acts only after it starts, a live migration goes to
    /// another host, and a vCPU moves to a core of the host its VM is on then.
    /// </summary>
    private void Replay(List<EventRefs> events, List<HostSpec> hosts, List<VmSpec> vms)
    {
        var where = vms.ToDictionary(v => v.Id, v => v.Host, StringComparer.Ordinal);
        var migratedAt = new Dictionary<string, Duration>(StringComparer.Ordinal);
        foreach (var (e, path, target) in events.OrderBy(x => x.Event.At))
        {
            string? vmId = e switch
            {
                LiveMigrateEvent lm => lm.Vm,
                MigrateVcpuEvent mv => mv.Vm,
                _ => null,
            };
            if (vmId is null || vms.FirstOrDefault(v => v.Id == vmId) is not { } vm)
            {
                continue;
            }
            if (e.At < vm.Start)
            {
                Error(e.Position, $"{path}: VM '{vm.Id}' starts at {vm.Start}, after this event at {e.At}; expected an event at or after the VM's start");
                continue;
            }
            string current = where[vm.Id];
            string since = migratedAt.TryGetValue(vm.Id, out var t) ? $" (since the live migration at {t})" : "";
            switch (e)
            {
                case LiveMigrateEvent lm when lm.To == current:
                    Error(target?.Position ?? e.Position, $"{path}.live_migrate.to: VM '{vm.Id}' is already on host '{current}' at {e.At}{since}; " +
                        "expected a different host");
                    break;
                case LiveMigrateEvent lm:
                    // The guest's CPUID is fixed when the VM is created (QEMU's -cpu model on the
                    // boot host); libvirt's migration CPU check, and QEMU's own when the model is
                    // enforced, refuse a destination that lacks a feature the guest was shown.
                    if (MissingCpuFeature(hosts.First(h => h.Id == vm.Host).Cpu, hosts.FirstOrDefault(h => h.Id == lm.To)?.Cpu) is { } missing)
                    {
                        Error(target?.Position ?? e.Position, $"{path}.live_migrate.to: host '{lm.To}' lacks {missing}, which VM '{vm.Id}' was shown at boot " +
                            $"on host '{vm.Host}'; a migration to a CPU without a feature the guest's CPUID exposes is refused (libvirt's CPU compatibility check); " +
                            "expected a destination whose CPU has every feature of the boot host's");
                        break;
                    }
                    where[vm.Id] = lm.To;
                    migratedAt[vm.Id] = e.At;
                    break;
                case MigrateVcpuEvent mv:
                    var host = hosts.First(h => h.Id == current);
                    if (mv.ToCore >= host.Cores)
                    {
                        Error(target?.Position ?? e.Position, $"{path}.migrate_vcpu.to_core: {mv.ToCore} is not a core of host '{host.Id}', " +
                            $"where VM '{vm.Id}' is at {e.At}{since}; expected a core index from 0 to {host.Cores - 1}");
                    }
                    break;
            }
        }
    }
}

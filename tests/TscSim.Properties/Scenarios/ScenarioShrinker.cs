namespace TscSim.Properties.Scenarios;

/// <summary>
/// Shrinks a <see cref="GeneratedScenario"/> toward a smaller one: fewer events, VMs, hosts and
/// vCPUs, a shorter run, then simpler values (no drift, skew, uptime, hints, requested rate or
/// overrides). Bigger steps come first, so FsCheck's greedy search removes whole events and
/// vCPUs before it polishes numbers. Every candidate is normalized (so it is a valid scenario)
/// and differs from its parent.
/// </summary>
public static class ScenarioShrinker
{
    /// <summary>Smaller variants of <paramref name="s"/>, most aggressive first.</summary>
    public static IEnumerable<GeneratedScenario> Shrink(GeneratedScenario s)
    {
        string original = s.ToYaml();
        var seen = new HashSet<string>(StringComparer.Ordinal) { original };
        foreach (GeneratedScenario candidate in Candidates(s))
        {
            GeneratedScenario n = candidate.Normalize();
            if (seen.Add(n.ToYaml()))
            {
                yield return n;
            }
        }
    }

    private static IEnumerable<GeneratedScenario> Candidates(GeneratedScenario s)
    {
        // The timeline: all of it, then the second half, then one event at a time.
        if (s.Events.Count > 0)
        {
            yield return s with { Events = [] };
        }
        if (s.Events.Count > 1)
        {
            yield return s with { Events = s.Events.Take(s.Events.Count / 2).ToList() };
        }
        for (int i = 0; i < s.Events.Count; i++)
        {
            yield return s with { Events = s.Events.Where((_, j) => j != i).ToList() };
        }

        // Fewer VMs and hosts (a host is removed only when no VM starts on it).
        for (int i = s.Vms.Count - 1; i > 0; i--)
        {
            yield return s with { Vms = s.Vms.Where((_, j) => j != i).ToList() };
        }
        if (s.Hosts.Count > 1 && s.Vms.All(v => v.Host != s.Hosts.Count - 1))
        {
            yield return s with { Hosts = s.Hosts.Take(s.Hosts.Count - 1).ToList() };
        }

        // A shorter run: events past the end are dropped by Normalize.
        int shortest = GeneratedScenario.ShortestDurationMs(s.Vms);
        if (s.DurationMs > shortest)
        {
            yield return s with { DurationMs = Math.Max(shortest, s.DurationMs / 2) };
            yield return s with { DurationMs = Math.Max(shortest, s.DurationMs * 3 / 4) };
        }

        // Fewer vCPUs.
        for (int i = 0; i < s.Vms.Count; i++)
        {
            GVm v = s.Vms[i];
            if (v.Vcpus > 1)
            {
                yield return WithVm(s, i, v with { Vcpus = 1, Pin = v.Pin?.Take(1).ToList() });
                yield return WithVm(s, i, v with { Vcpus = v.Vcpus - 1, Pin = v.Pin?.Take(v.Vcpus - 1).ToList() });
            }
        }

        // Simpler events.
        for (int i = 0; i < s.Events.Count; i++)
        {
            foreach (GEvent simpler in Simpler(s.Events[i]))
            {
                yield return s with { Events = s.Events.Select((e, j) => j == i ? simpler : e).ToList() };
            }
        }

        // Simpler VMs.
        for (int i = 0; i < s.Vms.Count; i++)
        {
            GVm v = s.Vms[i];
            if (v.StartMs != 0)
            {
                yield return WithVm(s, i, v with { StartMs = 0 });
            }
            if (v.TscKhz is not null)
            {
                yield return WithVm(s, i, v with { TscKhz = null });
            }
            if (v.FixedRate || v.SmpStable)
            {
                yield return WithVm(s, i, v with { FixedRate = false, SmpStable = false });
            }
            if (v.Clocksource is not null)
            {
                yield return WithVm(s, i, v with { Clocksource = null });
            }
            if (!v.Hpet)
            {
                yield return WithVm(s, i, v with { Hpet = true });
            }
            if (v.Workload is Workload.Mixed or Workload.TscpLoop)
            {
                yield return WithVm(s, i, v with { Workload = Workload.ClockLoop });
                yield return WithVm(s, i, v with { Workload = Workload.TscLoop });
            }
            if (v.WorkCycles < 100_000)
            {
                // Fewer reads per run: a faster and shorter trace to read.
                yield return WithVm(s, i, v with { WorkCycles = 100_000 });
            }
        }

        // Simpler hosts.
        for (int i = 0; i < s.Hosts.Count; i++)
        {
            GHost h = s.Hosts[i];
            if (h.Sockets > 1)
            {
                yield return WithHost(s, i, h with { Sockets = 1, SocketSkewCycles = 0 });
            }
            if (h.SocketSkewCycles != 0)
            {
                yield return WithHost(s, i, h with { SocketSkewCycles = 0 });
            }
            if (h.CoresPerSocket > 1)
            {
                int needed = NeededCores(s, i);
                int fewer = Math.Max((needed + h.Sockets - 1) / h.Sockets, 1);
                if (fewer < h.CoresPerSocket)
                {
                    yield return WithHost(s, i, h with { CoresPerSocket = fewer });
                }
            }
            if (h.DriftPpb != 0)
            {
                yield return WithHost(s, i, h with { DriftPpb = 0 });
            }
            if (h.UptimeMs != 0)
            {
                yield return WithHost(s, i, h with { UptimeMs = 0 });
            }
            if (h.Constant is not null || h.Nonstop is not null || h.Scaling is not null)
            {
                yield return WithHost(s, i, h with { Constant = null, Nonstop = null, Scaling = null });
            }
        }

        // Policy fields back to the preset's.
        GHypervisor hv = s.Hypervisor;
        if (hv.TscAuto is not null || hv.NotifyGuest is not null || hv.RdtscpPassthrough is not null)
        {
            yield return s with { Hypervisor = hv with { TscAuto = null, NotifyGuest = null, RdtscpPassthrough = null } };
            yield return s with { Hypervisor = hv with { TscAuto = null } };
            yield return s with { Hypervisor = hv with { NotifyGuest = null } };
            yield return s with { Hypervisor = hv with { RdtscpPassthrough = null } };
        }
        if (hv.SchedulerSliceUs is not null)
        {
            yield return s with { Hypervisor = hv with { SchedulerSliceUs = null } };
        }
        if (hv.Trapping is not null)
        {
            yield return s with { Hypervisor = hv with { Trapping = null } };
        }
    }

    private static IEnumerable<GEvent> Simpler(GEvent e)
    {
        switch (e)
        {
            case GLiveMigrate m when m.DowntimeMs > 1:
                yield return m with { DowntimeMs = 1 };
                break;
            case GCpufreq { Cores.Count: > 1 } f:
                yield return f with { Cores = [f.Cores[0]] };
                break;
            case GCstate c:
                if (c.Cores is { Count: > 1 })
                {
                    yield return c with { Cores = [c.Cores[0]] };
                }
                if (c.DurationUs > 1_000)
                {
                    yield return c with { DurationUs = c.DurationUs / 2 };
                }
                break;
            case GTscWrite { Cores.Count: > 1 } w:
                yield return w with { Cores = [w.Cores[0]] };
                break;
            case GPolicy p when (p.Trapping is not null ? 1 : 0) + (p.TscAuto is not null ? 1 : 0) + (p.NotifyGuest is not null ? 1 : 0) > 1:
                yield return p with { TscAuto = null, NotifyGuest = null };
                yield return p with { Trapping = null, NotifyGuest = null };
                break;
        }
    }

    /// <summary>How many cores host <paramref name="host"/> needs so that pins keep their meaning.</summary>
    private static int NeededCores(GeneratedScenario s, int host)
    {
        int needed = 1;
        foreach (GVm v in s.Vms.Where(v => v.Host == host))
        {
            needed = Math.Max(needed, v.Pin is { Count: > 0 } pin ? pin.Max() + 1 : v.Vcpus);
        }
        return needed;
    }

    private static GeneratedScenario WithVm(GeneratedScenario s, int i, GVm v) =>
        s with { Vms = s.Vms.Select((x, j) => j == i ? v : x).ToList() };

    private static GeneratedScenario WithHost(GeneratedScenario s, int i, GHost h) =>
        s with { Hosts = s.Hosts.Select((x, j) => j == i ? h : x).ToList() };
}

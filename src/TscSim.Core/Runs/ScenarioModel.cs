using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Scenarios;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;

namespace TscSim.Core.Runs;

/// <summary>One line of <c>exits.csv</c>: a vCPU's cumulative exits by reason and its cycles at an instant.</summary>
public sealed record ExitSample(long TrueNs, string Vm, int Vcpu, long Rdtsc, long Rdtscp, long Msr, long Mmio, long Pio, long Cpuid, long Hlt,
    long ExitCycles, long GuestCycles);

/// <summary>One line of the timeline (<c>events.csv</c>): what happened, when, and why.</summary>
public sealed record TimelineEntry(SimTime Time, string Kind, string Subject, string Detail);

/// <summary>
/// A scenario built into a runnable model: one engine, the hosts, the hypervisor with its VMs,
/// each VM's guest kernel, the scenario's timeline scheduled, and Measurement attached.
/// </summary>
public sealed class ScenarioModel : IEventHandler
{
    private readonly EventKind _vmStart, _policy, _mark;
    private readonly List<TimelineEntry> _timeline = [];
    private readonly List<PolicyEvent> _policyEvents = [];

    /// <summary>Builds <paramref name="scenario"/>; a workload that does not assemble is a <see cref="ScenarioException"/> at its line in the scenario file.</summary>
    public ScenarioModel(Scenario scenario, ulong? seed = null)
    {
        Scenario = scenario;
        Seed = seed ?? scenario.Seed;
        Sim = new Simulator(Seed);
        _vmStart = Sim.RegisterKind("scenario.vm_start", EventBand.Control, this);
        // A scenario's policy change is hypervisor control: it applies before guest reads of the same
        // picosecond, as EventBand.Hypervisor documents (it was in the Control band, after them).
        _policy = Sim.RegisterKind("scenario.policy", EventBand.Hypervisor, this);
        _mark = Sim.RegisterKind("scenario.event", EventBand.Control, this);
        Observer = new RunObserver(scenario.Measurement.ReadsCsvMaxRows, scenario.Measurement.ReadsCsvInterval, Sim);

        // Workloads first: every error of every VM at once, at its place in the scenario file.
        // VMs with the same workload text share one assembled program (read-only: each vCPU
        // copies its data sections), so a run of many VMs keeps one copy of the kernel library's
        // code in the caches instead of one per VM.
        var programs = new Dictionary<string, GuestProgram>();
        var byText = new Dictionary<string, GuestProgram>(StringComparer.Ordinal);
        var diagnostics = new List<ScenarioDiagnostic>();
        foreach (var vm in scenario.Vms)
        {
            try
            {
                if (!byText.TryGetValue(vm.Workload, out GuestProgram? program))
                {
                    program = GuestKernel.Assemble(vm.Workload, $"{vm.Id} workload");
                    byText.Add(vm.Workload, program);
                }
                programs[vm.Id] = program;
            }
            catch (AssemblyException ex)
            {
                diagnostics.AddRange(ex.Errors.Select(e => ScenarioDiagnostic.At(vm.MapWorkloadPosition(e.Line, e.Column), $"workload of vm '{vm.Id}': {e.Message}")));
            }
        }
        if (diagnostics.Count > 0)
        {
            throw new ScenarioException(diagnostics);
        }

        foreach (var h in scenario.Hosts)
        {
            Hosts[h.Id] = new Host(h.ToHostConfig(), Sim);
        }
        Policy = scenario.Hypervisor.ToConfig();
        Hypervisor = new Hypervisor(new GuestExecutor(Sim), Policy);
        if (scenario.Hypervisor.SchedulerSlice is Duration slice)
        {
            foreach (var host in Hosts.Values)
            {
                Hypervisor.EnableScheduler(host, slice);
            }
        }
        foreach (var spec in scenario.Vms)
        {
            Vm vm;
            try
            {
                vm = Hypervisor.CreateVm(spec.ToVmConfig(), Hosts[spec.Host], programs[spec.Id], Observer, spec.Pin?.ToArray());
            }
            catch (InvalidOperationException ex)
            {
                // The VMM or KVM refuses the VM (e.g. QEMU: a tsc_khz the host cannot serve): at the VM's line.
                throw new ScenarioException([ScenarioDiagnostic.At(spec.Position, ex.Message)]) { Refused = true };
            }
            var kernel = vm.InScope(() => new GuestKernel(spec.GuestProfile(Policy.OffersHpet), null, new VmGuestMachine(vm), Sim, programs[spec.Id]));
            Vms.Add((spec, vm, kernel));
            Observer.AddVm(spec.Id, vm.Vcpus);
            if (spec.Start == Duration.Zero)
            {
                vm.Start(SimTime.Zero);
            }
            else
            {
                Sim.Schedule(SimTime.FromDuration(spec.Start), _vmStart, Vms.Count - 1);
            }
            _timeline.Add(new TimelineEntry(SimTime.FromDuration(spec.Start), "vm_start", spec.Id,
                $"{spec.Vcpus} vCPUs on {spec.Host}, guest {spec.Guest.Profile}"));
        }
        foreach (var e in scenario.EventsInTimeOrder)
        {
            ScheduleEvent(e);
        }
    }

    public Scenario Scenario { get; }

    public ulong Seed { get; }

    public Simulator Sim { get; }

    public HypervisorConfig Policy { get; private set; }

    public Hypervisor Hypervisor { get; }

    public Dictionary<string, Host> Hosts { get; } = new(StringComparer.Ordinal);

    /// <summary>The VMs in scenario order with their specs and guest kernels.</summary>
    public List<(VmSpec Spec, Vm Vm, GuestKernel Kernel)> Vms { get; } = [];

    public RunObserver Observer { get; }

    /// <summary>Cumulative exits per vCPU sampled at each run step (for <c>exits.csv</c>).</summary>
    public List<ExitSample> ExitSamples { get; } = [];

    /// <summary>Samples every vCPU's cumulative exit counts now.</summary>
    public void SampleExits()
    {
        long ns = Sim.Now.Picoseconds / 1000;
        foreach (var (spec, vm, _) in Vms)
        {
            for (int v = 0; v < vm.Vcpus.Length; v++)
            {
                var x = vm.Platforms[v].Exits;
                ExitSamples.Add(new ExitSample(ns, spec.Id, v, x.Rdtsc, x.Rdtscp, x.Msr, x.Mmio, x.Pio, x.Cpuid, x.Hlt,
                    vm.Vcpus[v].ExitCycles, vm.Vcpus[v].GuestCycles));
            }
        }
    }

    private Vm VmById(string id) => Vms.First(v => v.Spec.Id == id).Vm;

    /// <summary>Applies <paramref name="schedule"/> to each selected core of host <paramref name="hostId"/>.</summary>
    private void ForCores(string hostId, CoreSelection cores, Action<Host, int> schedule)
    {
        Host host = Hosts[hostId];
        foreach (int core in cores.Expand(host.Cores.Length))
        {
            schedule(host, core);
        }
    }

    private void ScheduleEvent(ScenarioEvent e)
    {
        var at = SimTime.FromDuration(e.At);
        string detail;
        string subject;
        switch (e)
        {
            case LiveMigrateEvent m:
                Hypervisor.ScheduleLiveMigration(at, VmById(m.Vm), Hosts[m.To], m.Downtime);
                subject = m.Vm;
                detail = $"live migration to {m.To}, downtime {QuantityFormat.Duration(m.Downtime.Picoseconds)}";
                break;
            case CpufreqEvent f:
                ForCores(f.Host, f.Cores, (h, c) => h.ScheduleFrequencyChange(at, c, f.Frequency));
                subject = f.Host;
                detail = $"cores {f.Cores} to {QuantityFormat.Frequency(f.Frequency.Millihertz)}";
                break;
            case CstateEvent c:
                ForCores(c.Host, c.Cores, (h, core) => h.ScheduleCState(at, core, c.State, c.Duration));
                subject = c.Host;
                detail = $"cores {c.Cores} enter {c.State} for {QuantityFormat.Duration(c.Duration.Picoseconds)}";
                break;
            case MigrateVcpuEvent mv:
                Hypervisor.ScheduleMigrateVcpu(at, VmById(mv.Vm), mv.Vcpu, mv.ToCore);
                subject = mv.Vm;
                detail = $"vcpu{mv.Vcpu} to core {mv.ToCore}";
                break;
            case TscWriteEvent w:
                ForCores(w.Host, w.Cores, (h, core) => h.ScheduleTscWrite(at, core, w.Value));
                subject = w.Host;
                detail = $"cores {w.Cores} TSC := {w.Value}";
                break;
            case PolicyEvent p:
                _policyEvents.Add(p);
                Sim.Schedule(at, _policy, _policyEvents.Count - 1);
                subject = "hypervisor";
                detail = string.Join(", ", new[]
                {
                    p.Trapping is { } t ? $"trapping={t.ToString().ToLowerInvariant()}" : null,
                    p.TscAuto is { } a ? $"tsc_auto={(a ? "true" : "false")}" : null,
                    p.NotifyGuest is { } n ? $"notify_guest={(n ? "true" : "false")}" : null,
                }.Where(x => x is not null));
                break;
            default:
                throw new InvalidOperationException($"unknown event kind {e.Kind}");
        }
        _timeline.Add(new TimelineEntry(at, e.Kind, subject, detail));
    }

    /// <inheritdoc />
    void IEventHandler.OnEvent(Simulator sim, in SimEvent e)
    {
        if (e.Kind == _vmStart)
        {
            Vms[e.Subject].Vm.Start(e.Time);
        }
        else if (e.Kind == _policy)
        {
            var p = _policyEvents[e.Subject];
            Policy = Policy with
            {
                Trapping = p.Trapping ?? Policy.Trapping,
                TscAuto = p.TscAuto ?? Policy.TscAuto,
                NotifyGuest = p.NotifyGuest ?? Policy.NotifyGuest,
            };
            foreach (var (_, vm, _) in Vms)
            {
                vm.ChangePolicy(Policy, "policy changed by the scenario");
            }
        }
    }

    /// <summary>The timeline as it happened: scenario events, trapping changes, clocksource switches, kernel messages and warnings, by time.</summary>
    public List<TimelineEntry> Timeline()
    {
        var all = new List<TimelineEntry>(_timeline.Where(t => t.Time <= Sim.Now));
        foreach (var (spec, vm, kernel) in Vms)
        {
            foreach (var c in vm.Changes)
            {
                all.Add(new TimelineEntry(c.Time, c.Trapping ? "trap_on" : "trap_off", spec.Id, c.Reason));
            }
            foreach (var s in kernel.Switches)
            {
                all.Add(new TimelineEntry(s.Time, "clocksource", spec.Id,
                    $"{(s.From is { } f ? OsProfiles.NameOf(f) : "none")} -> {OsProfiles.NameOf(s.To)}: {s.Reason}"));
            }
            foreach (var (t, m) in kernel.Log)
            {
                all.Add(new TimelineEntry(t, "kernel", spec.Id, m));
            }
            foreach (var (t, m) in vm.Warnings)
            {
                all.Add(new TimelineEntry(t, "warning", spec.Id, m));
            }
        }
        // Stable: equal times keep the order above.
        return [.. all.Select((e, i) => (e, i)).OrderBy(x => x.e.Time).ThenBy(x => x.i).Select(x => x.e)];
    }
}

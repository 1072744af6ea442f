using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Time;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;

namespace TscSim.Core.Virtualization;

/// <summary>The hypervisor on one simulator: creates VMs on hosts under one policy.</summary>
public sealed class Hypervisor : IEventHandler
{
    private readonly List<Vm> _vms = [];
    private readonly List<(Vm Vm, int Vcpu, int Core)> _moves = [];
    private readonly EventKind _moveEvent;
    private readonly EventKind _pauseEvent;
    private readonly EventKind _restoreEvent;
    private readonly List<(Vm Vm, Host To, Duration Downtime)> _migrations = [];
    private readonly Dictionary<int, (ulong Tsc, long KvmclockNs)> _saved = [];

    public Hypervisor(GuestExecutor executor, HypervisorConfig policy)
    {
        Executor = executor;
        Policy = policy;
        _moveEvent = executor.Simulator.RegisterKind("hv.migrate-vcpu", EventBand.Hypervisor, this);
        _pauseEvent = executor.Simulator.RegisterKind("hv.live-migrate-pause", EventBand.Hypervisor, this);
        _restoreEvent = executor.Simulator.RegisterKind("hv.live-migrate-resume", EventBand.Hypervisor, this);
    }

    /// <summary>
    /// Live-migrates <paramref name="vm"/> to <paramref name="to"/>: paused at <paramref name="at"/>,
    /// resumed on the destination after <paramref name="downtime"/> (see <see cref="Vm"/>'s restore).
    /// </summary>
    public void ScheduleLiveMigration(SimTime at, Vm vm, Host to, Duration downtime)
    {
        if (downtime < Duration.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(downtime), downtime, "Downtime cannot be negative.");
        }
        _migrations.Add((vm, to, downtime));
        Executor.Simulator.Schedule(at, _pauseEvent, _vms.IndexOf(vm), _migrations.Count - 1);
    }

    private readonly Dictionary<Host, HostScheduler> _schedulers = [];

    /// <summary>
    /// Schedules the unpinned vCPUs of VMs on <paramref name="host"/> round robin in slices of
    /// <paramref name="slice"/> (when they outnumber the cores); their VMs' <c>Start</c> hands
    /// them to the scheduler.
    /// </summary>
    public HostScheduler EnableScheduler(Host host, Duration slice)
    {
        var s = new HostScheduler(this, host, slice);
        _schedulers.Add(host, s);
        return s;
    }

    /// <summary>The scheduler of <paramref name="host"/>, if one was enabled.</summary>
    public HostScheduler? SchedulerOf(Host host) => _schedulers.GetValueOrDefault(host);

    private readonly HashSet<Host> _watched = [];

    /// <summary>
    /// KVM's cpufreq notifier: on a host without a constant TSC, a P-state change requests a
    /// clock update for every vCPU on that core, so kvmclock's rate follows the TSC's.
    /// </summary>
    internal void Watch(Host host)
    {
        if (!_watched.Add(host) || host.Config.Cpu.ConstantTsc)
        {
            return;
        }
        host.OnFrequencyChange((core, at) =>
        {
            foreach (var vm in _vms.Where(v => v.Host == host))
            {
                for (int i = 0; i < vm.Vcpus.Length; i++)
                {
                    if (vm.Vcpus[i].Core == core)
                    {
                        vm.Kvmclock.RequestUpdate(i, at);
                    }
                }
            }
        });
    }

    /// <summary>Host-wide: hosts whose TSC the hypervisor found going backwards, with the reason.</summary>
    public Dictionary<Host, string> UnstableHosts { get; } = [];

    /// <summary>Moves vCPU <paramref name="vcpu"/> of <paramref name="vm"/> to core <paramref name="core"/> at <paramref name="at"/>.</summary>
    public void ScheduleMigrateVcpu(SimTime at, Vm vm, int vcpu, int core)
    {
        if (vcpu < 0 || vcpu >= vm.Vcpus.Length || core < 0 || core >= vm.Host.Cores.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(core), $"vm '{vm.Config.Id}' has vCPUs 0..{vm.Vcpus.Length - 1}; host '{vm.Host.Config.Id}' has cores 0..{vm.Host.Cores.Length - 1}");
        }
        _moves.Add((vm, vcpu, core));
        Executor.Simulator.Schedule(at, _moveEvent, vcpu, _moves.Count - 1);
    }

    void IEventHandler.OnEvent(Simulator sim, in SimEvent e)
    {
        if (e.Kind == _pauseEvent)
        {
            var (vm, to, downtime) = _migrations[(int)e.Payload];
            SchedulerOf(vm.Host)?.Remove(vm);
            _saved[(int)e.Payload] = vm.SaveForMigration(e.Time);
            sim.Schedule(e.Time + downtime, _restoreEvent, e.Subject, e.Payload);
            return;
        }
        if (e.Kind == _restoreEvent)
        {
            var (vm, to, _) = _migrations[(int)e.Payload];
            vm.RestoreAfterMigration(e.Time, to, _saved[(int)e.Payload], UnstableHosts.GetValueOrDefault(to));
            Watch(to);
            _saved.Remove((int)e.Payload);
            if (!vm.Pinned && SchedulerOf(to) is HostScheduler scheduler)
            {
                scheduler.Add(vm, e.Time);
            }
            return;
        }
        var (mvm, vcpu, core) = _moves[(int)e.Payload];
        MigrateVcpu(mvm, vcpu, core, e.Time);
    }

    /// <summary>
    /// <c>kvm_arch_vcpu_put</c> on the old core and <c>kvm_arch_vcpu_load</c> on the new one at
    /// <paramref name="at"/> (arch/x86/kvm/x86.c): a host TSC seen going backwards marks the
    /// host TSC unstable for every VM on it ("KVM discovered backwards TSC"); on an unstable host the guest TSC resumes where it was last
    /// seen and catch-up is set; without a master clock a global clock update is requested; the
    /// trapping policy is re-evaluated.
    /// </summary>
    public void MigrateVcpu(Vm vm, int vcpu, int core, SimTime at)
    {
        HypervisorPlatform p = vm.Platforms[vcpu];
        Vcpu v = p.Vcpu;
        PhysicalCpu from = v.Core;
        PhysicalCpu to = vm.Host.Cores[core];
        if (vm.Policy.Kind is PolicyKind.XenDefault or PolicyKind.XenAlwaysEmulate or PolicyKind.XenNative)
        {
            // Xen HVM never re-offsets a vCPU that changes pCPU (hvm_migrate_timers only moves the
            // RTC and periodic timers; hvm_set_tsc_offset's callers are init, AP reset, TSC and
            // TSC_ADJUST writes, restore, nested entry and tsc_set_info): the raw guest TSC steps by
            // the difference between the two pCPUs' TSCs.
            p.ClearPut();
            v.Core = to;
            vm.RequestReevaluation($"{v.Name} placed on cpu{to.Index}");
            return;
        }
        // vcpu_put's values: recorded when the vCPU was descheduled, else taken now (a move of a
        // running vCPU is put and load at the same instant).
        var (lastHostTsc, lastGuestTsc) = p.PutState ?? (from.ReadTsc(at).Raw, p.NativeGuestTsc(at));
        p.ClearPut();
        v.Core = to;
        if (from == to && !vm.HostTscUnstable)
        {
            return;
        }
        long delta = unchecked((long)(to.ReadTsc(at).Raw - lastHostTsc));
        if (delta < 0 && !UnstableHosts.ContainsKey(vm.Host))
        {
            string reason = $"KVM discovered backwards TSC ({delta} cycles moving {v.Name} from cpu{from.Index} to cpu{to.Index})";
            UnstableHosts[vm.Host] = reason;
            foreach (var other in _vms.Where(x => x.Host == vm.Host))
            {
                other.MarkHostTscUnstable(reason);
            }
        }
        var (stable, _) = TscPolicy.HostTsc(vm.Host, vm.HostMarkedUnstable);
        if (!stable)
        {
            p.ResumeNativeAfter(at, lastGuestTsc); // resumes exactly where it was last seen
            p.CatchUpPending = true;
        }
        if (vm.Kvmclock.Legacy)
        {
            // 2.6.37/38 kvm_arch_vcpu_load: KVM_REQ_CLOCK_UPDATE for this vCPU, only on an unstable host.
            if (!stable)
            {
                vm.Kvmclock.RequestUpdate(vcpu, at);
            }
        }
        else if (!vm.Kvmclock.MasterClock)
        {
            vm.Kvmclock.RequestGlobalUpdate(vcpu, at);
        }
        vm.RequestReevaluation($"{v.Name} placed on cpu{to.Index}");
    }

    public HypervisorConfig Policy { get; }

    public GuestExecutor Executor { get; }

    public IReadOnlyList<Vm> Vms => _vms;

    /// <summary>
    /// Where an unpinned VM's vCPU threads start: each on the core of <paramref name="host"/> that
    /// holds the fewest vCPUs of the VMs created so far (lowest index on a tie), as Linux's load
    /// balancer spreads runnable threads over idle CPUs (kernel/sched/fair.c select_idle_sibling,
    /// find_idlest_cpu; a deterministic simplification: one placement at creation, no rebalancing
    /// unless the host scheduler is on). A first VM gets vCPU v on core v mod cores, as before;
    /// further VMs no longer stack onto cores 0, 1, ... while other cores idle.
    /// </summary>
    private int[] Place(Host host, int vcpus)
    {
        var load = new int[host.Cores.Length];
        foreach (var other in _vms.Where(v => v.Host == host))
        {
            foreach (var c in other.Vcpus)
            {
                load[c.Core.Index]++;
            }
        }
        var placement = new int[vcpus];
        for (int v = 0; v < vcpus; v++)
        {
            int best = 0;
            for (int c = 1; c < load.Length; c++)
            {
                if (load[c] < load[best])
                {
                    best = c;
                }
            }
            placement[v] = best;
            load[best]++;
        }
        return placement;
    }

    /// <summary>
    /// Creates a VM at the simulator's current instant: vCPU v runs <paramref name="program"/> on
    /// core <c>pin[v]</c> (default: the least-loaded core, see <see cref="Place"/>), with rdi = v and TSC_AUX = v; the policy is evaluated now.
    /// </summary>
    public Vm CreateVm(VmConfig config, Host host, GuestProgram program, IExecutionObserver? observer = null, IReadOnlyList<int>? pin = null)
    {
        if (pin is not null && (pin.Count != config.Vcpus || pin.Any(c => c < 0 || c >= host.Cores.Length)))
        {
            throw new ArgumentException($"vm '{config.Id}': pin must list {config.Vcpus} cores of host '{host.Config.Id}' (0..{host.Cores.Length - 1})");
        }
        if (config.Vcpus > SharedMemory.MaxPvclockVcpus)
        {
            throw new ArgumentException($"vm '{config.Id}': at most {SharedMemory.MaxPvclockVcpus} vCPUs (the pvclock area's size)");
        }
        var vm = new Vm(config, Policy, host, Executor, program, observer, pin ?? Place(host, config.Vcpus), UnstableHosts.GetValueOrDefault(host)) { Hypervisor = this, Pinned = pin is not null };
        _vms.Add(vm);
        Watch(host);
        return vm;
    }
}

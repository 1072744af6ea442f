using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>
/// A deterministic host scheduler for vCPUs that are not pinned: round robin over the host's
/// cores in fixed time slices when vCPUs outnumber cores. A descheduled vCPU does not run, but
/// true time and the TSCs go on; placing a vCPU on another core goes through the hypervisor's
/// vCPU move (vcpu_put / vcpu_load), with everything that implies for its TSC and kvmclock.
/// </summary>
public sealed class HostScheduler : IEventHandler
{
    private readonly Hypervisor _hypervisor;
    private readonly Simulator _sim;
    private readonly EventKind _tick;
    private readonly List<(Vm Vm, int Vcpu)> _queue = [];
    private readonly List<int> _cores;
    private int _rotation;
    private bool _ticking;

    internal HostScheduler(Hypervisor hypervisor, Host host, Duration slice)
    {
        if (slice <= Duration.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(slice), slice, "A time slice must be positive.");
        }
        _hypervisor = hypervisor;
        _sim = hypervisor.Executor.Simulator;
        Host = host;
        Slice = slice;
        _cores = Enumerable.Range(0, host.Cores.Length).ToList();
        using (_sim.EnterScope(host.Scope))
        {
            _tick = _sim.RegisterKind($"host.{host.Config.Id}.sched-tick", EventBand.Hypervisor, this);
        }
    }

    public Host Host { get; }

    /// <summary>The time slice.</summary>
    public Duration Slice { get; }

    /// <summary>Context switches so far (a vCPU taken off or put on a core).</summary>
    public int Switches { get; private set; }

    /// <summary>Adds the vCPUs of <paramref name="vm"/> and places them at <paramref name="at"/>.</summary>
    internal void Add(Vm vm, SimTime at)
    {
        for (int v = 0; v < vm.Vcpus.Length; v++)
        {
            _queue.Add((vm, v));
            vm.Vcpus[v].Pause();
        }
        Place(at);
    }

    /// <summary>Removes the vCPUs of <paramref name="vm"/> (it leaves the host).</summary>
    internal void Remove(Vm vm) => _queue.RemoveAll(q => q.Vm == vm);

    void IEventHandler.OnEvent(Simulator sim, in SimEvent e)
    {
        _ticking = false;
        Place(e.Time);
    }

    private void Place(SimTime at)
    {
        _queue.RemoveAll(q => q.Vm.Vcpus[q.Vcpu].Halted);
        int count = _queue.Count;
        if (count == 0)
        {
            return;
        }
        int n = Math.Min(_cores.Count, count);
        var running = new HashSet<(Vm, int)>();
        for (int i = 0; i < n; i++)
        {
            running.Add(_queue[(_rotation + i) % count]);
        }
        foreach (var q in _queue)
        {
            Vcpu v = q.Vm.Vcpus[q.Vcpu];
            if (!running.Contains(q) && !v.Paused)
            {
                v.Pause();
                q.Vm.Platforms[q.Vcpu].Put(at);
                Switches++;
            }
        }
        for (int i = 0; i < n; i++)
        {
            var (vm, index) = _queue[(_rotation + i) % count];
            Vcpu v = vm.Vcpus[index];
            PhysicalCpu core = Host.Cores[_cores[i]];
            if (v.Core != core || vm.Platforms[index].PutState is not null)
            {
                _hypervisor.MigrateVcpu(vm, index, core.Index, at); // vcpu_load (after a put, even on the same core)
            }
            if (v.Paused)
            {
                v.Start(at);
                Switches++;
            }
        }
        _rotation = (_rotation + n) % count;
        if (count > _cores.Count && !_ticking)
        {
            _ticking = true;
            _sim.Schedule(at + Slice, _tick);
        }
    }
}

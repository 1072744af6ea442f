using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;

namespace TscSim.Core.Virtualization;

/// <summary>The hypervisor on one simulator: creates VMs on hosts under one policy.</summary>
public sealed class Hypervisor(GuestExecutor executor, HypervisorConfig policy)
{
    private readonly List<Vm> _vms = [];

    public HypervisorConfig Policy { get; } = policy;

    public GuestExecutor Executor { get; } = executor;

    public IReadOnlyList<Vm> Vms => _vms;

    /// <summary>
    /// Creates a VM at the simulator's current instant: vCPU v runs <paramref name="program"/> on
    /// core <c>pin[v]</c> (default v), with rdi = v and TSC_AUX = v; the policy is evaluated now.
    /// </summary>
    public Vm CreateVm(VmConfig config, Host host, GuestProgram program, IExecutionObserver? observer = null, IReadOnlyList<int>? pin = null)
    {
        if (pin is not null && (pin.Count != config.Vcpus || pin.Any(c => c < 0 || c >= host.Cores.Length)))
        {
            throw new ArgumentException($"vm '{config.Id}': pin must list {config.Vcpus} cores of host '{host.Config.Id}' (0..{host.Cores.Length - 1})");
        }
        var vm = new Vm(config, Policy, host, Executor, program, observer, pin);
        _vms.Add(vm);
        return vm;
    }
}

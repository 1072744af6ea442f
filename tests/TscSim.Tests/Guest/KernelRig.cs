using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;
using TscSim.Tests.Isa;

namespace TscSim.Tests.Guest;

/// <summary>One VM with a guest kernel on a hypervisor with any number of hosts; the VM boots on the first host at 0.</summary>
internal sealed class KernelRig
{
    public const string ReadLoop = """
        loop:   call clock_gettime
                work 200000cycles
                jmp loop
        """;

    public KernelRig(OsProfile profile, HypervisorConfig policy, HostConfig[] hosts, int vcpus = 1, string workload = ReadLoop,
        ClocksourceKind? clocksource = null, VmConfig? vm = null, int[]? pin = null, IExecutionObserver? observer = null)
    {
        Observer = observer ?? Log;
        Sim = new Simulator(1);
        Hosts = hosts.Select(h => new Host(h, Sim)).ToArray();
        Hv = new Hypervisor(new GuestExecutor(Sim), policy);
        var program = GuestKernel.Assemble(workload, "workload");
        Vm = Hv.CreateVm(vm ?? new VmConfig { Id = "vm0", Vcpus = vcpus }, Hosts[0], program, Observer, pin);
        Kernel = new GuestKernel(profile, clocksource, new VmGuestMachine(Vm), Sim, program);
        Vm.Start(SimTime.Zero);
    }

    public static HostConfig Host(string id, long mhz, CpuModel? cpu = null, int cores = 2, int sockets = 1) =>
        new() { Id = id, Cpu = cpu ?? CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(mhz), CoresPerSocket = cores, Sockets = sockets };

    public Simulator Sim { get; }
    public Host[] Hosts { get; }
    public Hypervisor Hv { get; }
    public Vm Vm { get; }
    public GuestKernel Kernel { get; }
    public ObservationLog Log { get; } = new();

    /// <summary>What the vCPUs report to (<see cref="Log"/> unless the test brought its own).</summary>
    public IExecutionObserver Observer { get; }

    public void RunUntil(Duration d) => Sim.Run(SimTime.FromDuration(d));

    /// <summary>Clock reads of one vCPU: (true ns, guest ns).</summary>
    public List<(long TrueNs, long Ns)> Reads(string vcpu = "vm0.vcpu0") =>
        Log.ClockReads.Where(r => r.Vcpu == vcpu).Select(r => (r.TimePs / 1000, r.Nanoseconds)).ToList();

    /// <summary>Skew (guest ns − true ns) of the last read at or before <paramref name="trueNs"/>.</summary>
    public long SkewAt(long trueNs, string vcpu = "vm0.vcpu0")
    {
        var r = Reads(vcpu).Last(x => x.TrueNs <= trueNs);
        return r.Ns - r.TrueNs;
    }
}

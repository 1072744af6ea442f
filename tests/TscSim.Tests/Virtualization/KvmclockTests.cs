using TscSim.Core.Abi;
using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;
using TscSim.Tests.Isa;

namespace TscSim.Tests.Virtualization;

public class KvmclockTests
{
    private static (Simulator Sim, Vm Vm, ObservationLog Log) Build(string program, CpuModel? cpu = null, int vcpus = 1,
        Func<HostConfig, HostConfig>? host = null, HypervisorConfig? policy = null)
    {
        var sim = new Simulator(1);
        var hc = new HostConfig { Id = "h", Cpu = cpu ?? CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000), CoresPerSocket = 2 };
        var h = new Host(host is null ? hc : host(hc), sim);
        var hv = new Hypervisor(new GuestExecutor(sim), policy ?? HypervisorConfig.Find("kvm-modern")!);
        var log = new ObservationLog();
        var vm = hv.CreateVm(new VmConfig { Id = "vm0", Vcpus = vcpus }, h, Assembler.Assemble(program), log);
        return (sim, vm, log);
    }

    [Fact]
    public void The_first_publication_describes_a_2GHz_tsc_from_zero_with_the_stable_flag()
    {
        var (sim, vm, _) = Build("hlt");
        vm.Start(SimTime.Zero);
        sim.Run(SimTime.FromDuration(Duration.FromMicroseconds(1)));
        PvclockTimeInfo p = vm.Kvmclock.Published(0);
        Assert.True(vm.Kvmclock.MasterClock);
        Assert.Equal(2u, p.Version);          // odd 1 at the begin, even 2 at the end
        Assert.Equal(0UL, p.TscTimestamp);     // guest TSC 0 at creation
        Assert.Equal(0UL, p.SystemTime);       // kvmclock counts from creation
        Assert.Equal(0x8000_0000u, p.Mul);
        Assert.Equal((sbyte)0, p.Shift);
        Assert.Equal(PvclockAbi.TscStableBit, p.Flags);
        Assert.Equal(1_000_000UL, p.Read(2_000_000)); // 2,000,000 ticks at 2 GHz = 1 ms
    }

    private const string Reader = """
            work 2040cycles
        retry:
            mov eax, [0x4000000]
            mov rbx, rax
            and rbx, 1
            jne odd
            probe rax
            hlt
        odd:
            inc r12
            pause
            jmp retry
        """;

    [Fact]
    public void A_reader_that_starts_in_the_odd_window_retries_until_the_version_is_even()
    {
        // An update begins at 1 us; its odd window lasts 100 ns. The reader first loads the
        // version at 2,040 cycles = 1.02 us, inside the window, and must retry until 1.1 us.
        var (sim, vm, log) = Build(Reader);
        vm.Start(SimTime.Zero);
        vm.Kvmclock.RequestUpdate(0, SimTime.FromDuration(Duration.FromMicroseconds(1)));
        sim.Run(SimTime.FromDuration(Duration.FromMicroseconds(5)));
        Vcpu v = vm.Vcpus[0];
        Assert.Null(v.Fault);
        Assert.True(v.Register(12) >= 1, "the reader saw the odd version and retried");
        var probe = Assert.Single(log.Probes);
        Assert.Equal(4, probe.Value);
        Assert.True(probe.TimePs >= 1_100_000, $"the even version appears at 1.1 us, read at {probe.TimePs} ps");
    }

    [Fact]
    public void A_reader_outside_the_window_reads_once()
    {
        var (sim, vm, log) = Build(Reader);
        vm.Start(SimTime.Zero);
        sim.Run(SimTime.FromDuration(Duration.FromMicroseconds(5)));
        Assert.Equal(0, vm.Vcpus[0].Register(12));
        Assert.Equal(2, Assert.Single(log.Probes).Value);
    }

    [Fact]
    public void The_master_clock_is_on_for_a_matched_vm_on_a_synchronized_host_and_off_after_a_backwards_tsc()
    {
        var (sim, vm, _) = Build("loop: work 1000cycles\njmp loop", vcpus: 2);
        vm.Start(SimTime.Zero);
        sim.Run(SimTime.FromDuration(Duration.FromMicroseconds(1)));
        Assert.True(vm.Kvmclock.MasterClock);
        Assert.All(Enumerable.Range(0, 2), v => Assert.Equal(PvclockAbi.TscStableBit, vm.Kvmclock.Published(v).Flags));

        vm.MarkHostTscUnstable("KVM discovered backwards TSC");
        sim.Run(SimTime.FromDuration(Duration.FromMicroseconds(2)));
        Assert.False(vm.Kvmclock.MasterClock);
        Assert.All(Enumerable.Range(0, 2), v => Assert.Equal(0, vm.Kvmclock.Published(v).Flags & PvclockAbi.TscStableBit));
    }

    [Fact]
    public void On_a_host_without_constant_tsc_a_pstate_change_refreshes_kvmclock_at_the_new_rate()
    {
        var sim = new Simulator(1);
        var h = new Host(new HostConfig { Id = "h", Cpu = CpuPresets.AmdK8, Frequency = Frequency.FromMegahertz(2_000) }, sim);
        var hv = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find("kvm-modern")!);
        var vm = hv.CreateVm(new VmConfig { Id = "vm0" }, h, Assembler.Assemble("loop: work 1000cycles\njmp loop"));
        vm.Start(SimTime.Zero);
        h.ScheduleFrequencyChange(SimTime.FromDuration(Duration.FromMicroseconds(10)), 0, Frequency.FromMegahertz(1_000));
        sim.Run(SimTime.FromDuration(Duration.FromMicroseconds(20)));
        Assert.Equal(2, vm.Kvmclock.Updates);
        var p = vm.Kvmclock.Published(0);
        Assert.Equal(1_000_000UL, PvclockAbi.TscKhz(p.Mul, p.Shift)); // 1 GHz now
    }

    [Fact]
    public void No_master_clock_on_an_unsynchronized_host()
    {
        var (sim, vm, _) = Build("hlt", host: c => c with { Sockets = 2, SocketSkew = new Cycles(10_000) });
        vm.Start(SimTime.Zero);
        sim.Run(SimTime.FromDuration(Duration.FromMicroseconds(1)));
        Assert.False(vm.Kvmclock.MasterClock);
        Assert.Equal(0, vm.Kvmclock.Published(0).Flags & PvclockAbi.TscStableBit);
    }

    [Fact]
    public void A_scaled_vm_publishes_the_scaled_rate_and_a_notified_trap_publishes_the_trapped_flag()
    {
        var sim = new Simulator(1);
        var h = new Host(new HostConfig { Id = "h", Cpu = CpuPresets.IntelSkylake, Frequency = Frequency.FromMegahertz(3_000) }, sim);
        var hv = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find("kvm-modern")!);
        var vm = hv.CreateVm(new VmConfig { Id = "vm0", TscKhz = 1_500_000 }, h, Assembler.Assemble("hlt"));
        vm.Start(SimTime.Zero);
        sim.Run(SimTime.FromDuration(Duration.FromMicroseconds(1)));
        // tgt = 3,000,000 kHz x 2^47 / 2^48 = 1,500,000 kHz. Worked by hand: 1.5e9 needs no
        // shift (1.5e9 <= 2 x 1e9 and > 1e9), mul = 1e9 x 2^32 / 1.5e9 = 0xAAAA_AAAA.
        PvclockTimeInfo p = vm.Kvmclock.Published(0);
        Assert.Equal((sbyte)0, p.Shift);
        Assert.Equal(0xAAAA_AAAAu, p.Mul);
        Assert.Equal(1_500_000UL, PvclockAbi.TscKhz(p.Mul, p.Shift));

        var (sim2, trapped, _) = Build("loop: work 1000cycles\njmp loop", policy: HypervisorConfig.Find("kvm-2011")! with { NotifyGuest = true });
        trapped.Start(SimTime.Zero);
        trapped.MarkHostTscUnstable("test");
        sim2.Run(SimTime.FromDuration(Duration.FromMicroseconds(1)));
        Assert.True(trapped.Trapping);
        Assert.Equal(PvclockAbi.TscTrappedBit, trapped.Kvmclock.Published(0).Flags & PvclockAbi.TscTrappedBit);
    }
}

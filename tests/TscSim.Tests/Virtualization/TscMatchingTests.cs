using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;

namespace TscSim.Tests.Virtualization;

/// <summary>kvm_synchronize_tsc: generations, the one-second window, matched vCPUs (arch/x86/kvm/x86.c).</summary>
public class TscMatchingTests
{
    private static (Simulator Sim, Vm Vm) Build(Func<HostConfig, HostConfig>? host = null, int vcpus = 3)
    {
        var sim = new Simulator(1);
        var hc = new HostConfig { Id = "h", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000), CoresPerSocket = 2, Sockets = 2 };
        var h = new Host(host is null ? hc : host(hc), sim);
        var hv = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find("kvm-modern")!);
        var vm = hv.CreateVm(new VmConfig { Id = "vm0", Vcpus = vcpus }, h, Assembler.Assemble("hlt"), pin: [0, 1, 2]);
        return (sim, vm);
    }

    [Fact]
    public void Creation_writes_match_into_one_generation_with_one_offset_on_a_stable_host()
    {
        var (_, vm) = Build();
        Assert.Equal(1, vm.TscGeneration);
        Assert.Equal(3, vm.MatchedVcpus);
        Assert.True(vm.AllVcpusMatched);
        Assert.Single(vm.Platforms.Select(p => p.Controls.TscOffset).Distinct());
    }

    [Fact]
    public void On_an_unstable_host_matched_writes_get_offsets_of_their_own_cores()
    {
        var (_, vm) = Build(c => c with { SocketSkew = new Cycles(1_000_000) });
        Assert.True(vm.AllVcpusMatched);
        long[] offsets = vm.Platforms.Select(p => p.Controls.TscOffset).ToArray();
        Assert.Equal(offsets[0], offsets[1]);            // same socket
        Assert.Equal(-1_000_000L, offsets[2] - offsets[0]); // socket 1 is 1,000,000 ahead: its offset hides it
        Assert.All(vm.Platforms, p => Assert.Equal(0UL, p.NativeGuestTsc(SimTime.Zero)));
    }

    [Fact]
    public void A_write_within_one_second_of_the_expected_tsc_matches_and_one_beyond_starts_a_generation()
    {
        var (sim, vm) = Build();
        var at = SimTime.FromDuration(Duration.FromMilliseconds(1));
        sim.Run(at);
        // Userspace restores 5,000,000 on vCPU 0: a user value, not matched (first one) -> generation 2.
        vm.SynchronizeTsc(0, at, 5_000_000, userValue: true);
        Assert.Equal(2, vm.TscGeneration);
        Assert.Equal(1, vm.MatchedVcpus);
        // vCPU 1 gets 5,000,000 + 1,999,999,999 (just under 1 s of 2 GHz cycles off): matched.
        vm.SynchronizeTsc(1, at, 5_000_000 + 1_999_999_999, userValue: true);
        Assert.Equal(2, vm.TscGeneration);
        Assert.Equal(2, vm.MatchedVcpus);
        Assert.Equal(vm.Platforms[0].Controls.TscOffset, vm.Platforms[1].Controls.TscOffset); // stable host: the exact offset
        // vCPU 2 gets a value 2 s off: a new generation, and the VM is no longer all matched.
        vm.SynchronizeTsc(2, at, 5_000_000 + 4_000_000_000, userValue: true);
        Assert.Equal(3, vm.TscGeneration);
        Assert.False(vm.AllVcpusMatched);
        Assert.False(vm.Kvmclock.MasterClock); // the new generation re-evaluated the master clock
        Assert.Equal(4_005_000_000UL, vm.Platforms[2].NativeGuestTsc(at));
    }

    [Fact]
    public void Migration_restore_writes_match_so_the_master_clock_survives()
    {
        var sim = new Simulator(1);
        var a = new Host(new HostConfig { Id = "a", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000), CoresPerSocket = 2 }, sim);
        var b = new Host(new HostConfig { Id = "b", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000), CoresPerSocket = 2, Uptime = Duration.FromSeconds(9) }, sim);
        var hv = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find("kvm-modern")!);
        var vm = hv.CreateVm(new VmConfig { Id = "vm0", Vcpus = 2 }, a, Assembler.Assemble("loop: work 100cycles\njmp loop"));
        vm.Start(SimTime.Zero);
        hv.ScheduleLiveMigration(SimTime.FromDuration(Duration.FromMilliseconds(1)), vm, b, Duration.FromMilliseconds(5));
        sim.Run(SimTime.FromDuration(Duration.FromMilliseconds(7)));
        Assert.Equal(2, vm.TscGeneration);
        Assert.True(vm.AllVcpusMatched);
        Assert.True(vm.Kvmclock.MasterClock);
    }
}

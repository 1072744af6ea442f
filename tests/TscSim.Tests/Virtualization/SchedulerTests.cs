using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;
using TscSim.Tests.Isa;

namespace TscSim.Tests.Virtualization;

public class SchedulerTests
{
    private static SimTime Ms(long ms) => SimTime.FromDuration(Duration.FromMilliseconds(ms));

    [Fact]
    public void Four_vcpus_on_two_cores_take_turns_and_the_tsc_runs_on_while_they_wait()
    {
        var sim = new Simulator(1);
        var host = new Host(new HostConfig { Id = "h", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000), CoresPerSocket = 2 }, sim);
        var hv = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find("kvm-modern")!);
        var scheduler = hv.EnableScheduler(host, Duration.FromMilliseconds(1));
        var log = new ObservationLog();
        var vm = hv.CreateVm(new VmConfig { Id = "vm0", Vcpus = 4 }, host, Assembler.Assemble("loop: rdtsc\nwork 19975cycles\njmp loop"), log);
        vm.Start(SimTime.Zero);
        sim.Run(Ms(8) - Duration.FromPicoseconds(1));

        // Each vCPU ran 4 of the 8 ms: slices [0,1), [2,3), [4,5), [6,7) for vCPUs 0 and 1; the
        // others in between. An iteration is rdtsc 24 + work 19,975 + jmp 1 = 20,000 cycles = 10 us.
        foreach (var v in vm.Vcpus)
        {
            Assert.InRange(v.Instructions, 3L * 400, 3L * 401 + 3);
        }
        // vCPU 2 first runs at 1 ms: its first read shows the TSC that ran while it waited.
        var firstOf2 = log.TscReads.First(r => r.Vcpu == "vm0.vcpu2");
        Assert.Equal(1_000_000_000L, firstOf2.TimePs);
        Assert.Equal(2_000_000UL, firstOf2.Value);
        // vCPU 0's reads jump by a whole slice of ticks (1 ms = 2,000,000) across its wait.
        var reads0 = log.TscReads.Where(r => r.Vcpu == "vm0.vcpu0").Select(r => (long)r.Value).ToList();
        Assert.Contains(reads0.Zip(reads0.Skip(1)), p => p.Second - p.First >= 2_000_000);
        Assert.True(scheduler.Switches >= 16);
        Assert.All(vm.Vcpus, v => Assert.Null(v.Fault));
    }

    [Fact]
    public void A_scheduled_vm_live_migrates_and_does_not_run_during_the_downtime()
    {
        var sim = new Simulator(1);
        var a = new Host(new HostConfig { Id = "a", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000), CoresPerSocket = 1 }, sim);
        var b = new Host(new HostConfig { Id = "b", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000), CoresPerSocket = 1 }, sim);
        var hv = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find("kvm-modern")!);
        hv.EnableScheduler(a, Duration.FromMilliseconds(1));
        var sb = hv.EnableScheduler(b, Duration.FromMilliseconds(1));
        var log = new ObservationLog();
        var vm = hv.CreateVm(new VmConfig { Id = "vm0", Vcpus = 2 }, a, Assembler.Assemble("loop: rdtsc\nwork 2000cycles\njmp loop"), log);
        vm.Start(SimTime.Zero);
        hv.ScheduleLiveMigration(Ms(3), vm, b, Duration.FromMilliseconds(3));
        sim.Run(Ms(10));
        Assert.DoesNotContain(log.TscReads, r => r.TimePs > 3_000_000_000 && r.TimePs < 6_000_000_000);
        Assert.Contains(log.TscReads, r => r.TimePs > 6_000_000_000 && r.Vcpu == "vm0.vcpu0");
        Assert.Contains(log.TscReads, r => r.TimePs > 6_000_000_000 && r.Vcpu == "vm0.vcpu1");
        Assert.True(sb.Switches > 2); // the destination's scheduler took the VM over
        Assert.Empty(hv.UnstableHosts); // put at deschedule, load a slice later: no false backwards TSC
    }

    [Fact]
    public void With_enough_cores_the_scheduler_places_once_and_never_ticks()
    {
        var sim = new Simulator(1);
        var host = new Host(new HostConfig { Id = "h", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000), CoresPerSocket = 4 }, sim);
        var hv = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find("kvm-modern")!);
        var scheduler = hv.EnableScheduler(host, Duration.FromMilliseconds(1));
        var vm = hv.CreateVm(new VmConfig { Id = "vm0", Vcpus = 2 }, host, Assembler.Assemble("loop: work 1000cycles\njmp loop"));
        vm.Start(SimTime.Zero);
        sim.Run(Ms(5));
        Assert.Equal(2, scheduler.Switches); // each vCPU put on a core once
        // Never descheduled: 5 ms at 2 GHz = 10,000,000 cycles of 1,001-cycle iterations. Work i
        // issues at 1,001 i and jmp i at 1,001 i + 1,000; the 9,991st work is still running at the
        // run's end, so 9,990 of each retired.
        Assert.All(vm.Vcpus, v => Assert.Equal(19_980, v.Instructions));
    }
}

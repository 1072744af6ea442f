using TscSim.Core.Abi;
using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;
using TscSim.Tests.Isa;

namespace TscSim.Tests.Virtualization;

public class LiveMigrationTests
{
    private static SimTime Us(long us) => SimTime.FromDuration(Duration.FromMicroseconds(us));

    private sealed record Setup(Simulator Sim, Hypervisor Hv, Vm Vm, Host Slow, Host Fast, ObservationLog Log);

    private static Setup Build(HypervisorConfig policy, CpuModel? fastCpu = null, long fromMhz = 2_000, long toMhz = 3_000)
    {
        var sim = new Simulator(1);
        var slow = new Host(new HostConfig { Id = "slow", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(fromMhz) }, sim);
        var fast = new Host(new HostConfig { Id = "fast", Cpu = fastCpu ?? CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(toMhz), Uptime = Duration.FromSeconds(3) }, sim);
        var hv = new Hypervisor(new GuestExecutor(sim), policy);
        var log = new ObservationLog();
        var vm = hv.CreateVm(new VmConfig { Id = "vm0" }, slow, Assembler.Assemble("loop: rdtsc\nwork 10000cycles\njmp loop"), log);
        vm.Start(SimTime.Zero);
        hv.ScheduleLiveMigration(Us(1_000), vm, fast, Duration.FromMicroseconds(100));
        sim.Run(Us(2_000));
        return new Setup(sim, hv, vm, slow, fast, log);
    }

    /// <summary>Ticks per second between two reads after the migration, from their exact instants.</summary>
    private static double RateAfter(ObservationLog log)
    {
        var after = log.TscReads.Where(r => r.TimePs > 1_200_000_000).ToList();
        var (a, b) = (after[0], after[^1]);
        return (double)(b.Value - a.Value) / (b.TimePs - a.TimePs) * 1e12;
    }

    [Fact]
    public void From_2GHz_to_3GHz_without_scaling_kvm_keeps_the_tsc_continuous_and_then_runs_it_at_3GHz()
    {
        var direct = Build(HypervisorConfig.Find("kvm-modern")! with { Vmm = VmmKind.Direct });
        Assert.Contains(direct.Vm.Warnings, w => w.Message.Contains("below the host's 3000000 kHz", StringComparison.Ordinal));
        Assert.Equal(3_000_000, direct.Vm.VirtualTscKhz);
        var s = Build(HypervisorConfig.Find("kvm-modern")!);
        Assert.Same(s.Fast, s.Vm.Host);
        Assert.Equal(1, s.Vm.Migrations);
        Assert.False(s.Vm.Trapping);
        // QEMU does not ask KVM (no scaling hardware): its warning, and the destination's rate.
        var warning = Assert.Single(s.Vm.Warnings);
        Assert.Equal(Us(1_100), warning.Time);
        Assert.StartsWith("qemu-system-x86_64: warning: TSC frequency mismatch between VM (2000000 kHz) and host (3000000 kHz), and TSC scaling unavailable",
            warning.Message, StringComparison.Ordinal);
        Assert.Equal(3_000_000, s.Vm.VirtualTscKhz);
        // Saved at the pause (1 ms): guest TSC 2,000,000. Restored at 1.1 ms by a host-initiated
        // write, so the first read after the resume is 2,000,000 plus its distance from 1.1 ms at 3 GHz.
        var first = s.Log.TscReads.First(r => r.TimePs >= 1_100_000_000);
        long sinceResumePs = first.TimePs - 1_100_000_000;
        Assert.Equal(2_000_000UL + (ulong)(sinceResumePs * 3 / 1_000), first.Value);
        Assert.InRange(RateAfter(s.Log), 2.999e9, 3.001e9);
        Assert.All(s.Log.TscReads, r => Assert.False(r.Exited));
    }

    [Fact]
    public void Under_the_2011_proposal_the_faster_host_traps_and_keeps_2GHz_without_telling_the_guest()
    {
        var s = Build(HypervisorConfig.Find("kvm-2011")!);
        Assert.True(s.Vm.Trapping);
        Assert.StartsWith("tsc_auto: host TSC (3000000 kHz) faster than the VM's (2000000 kHz)", s.Vm.TrappingReason, StringComparison.Ordinal);
        var change = s.Vm.Changes[^1];
        Assert.True(change.Trapping);
        Assert.Equal(Us(1_100), change.Time);
        Assert.False(s.Vm.GuestToldTrapped);
        Assert.Equal(0, s.Vm.Kvmclock.Published(0).Flags & PvclockAbi.TscTrappedBit);
        Assert.InRange(RateAfter(s.Log), 1.999e9, 2.001e9);
        Assert.All(s.Log.TscReads.Where(r => r.TimePs > 1_100_000_000), r => Assert.True(r.Exited));
        var before = s.Log.TscReads.Last(r => r.TimePs < 1_000_000_000);
        var after = s.Log.TscReads.First(r => r.TimePs >= 1_100_000_000);
        Assert.True(after.Value > before.Value);
        Assert.InRange((long)(after.Value - before.Value), 1L, 30_000L); // the downtime is not counted
    }

    [Fact]
    public void A_destination_with_tsc_scaling_keeps_2GHz_natively()
    {
        var s = Build(HypervisorConfig.Find("kvm-modern")!, CpuPresets.IntelSkylake);
        Assert.True(s.Vm.ScalingActive);
        Assert.Equal(TscScalingMath.RatioFor(TscScaling.VmxMultiplier16_48, 2_000_000, 3_000_000), s.Vm.Ratio);
        Assert.False(s.Vm.Trapping);
        Assert.InRange(RateAfter(s.Log), 1.999e9, 2.001e9);
        Assert.All(s.Log.TscReads, r => Assert.False(r.Exited));
    }

    [Fact]
    public void To_a_slower_host_direct_kvm_catches_up_and_keeps_the_master_clock()
    {
        // No KVM code turns the master clock off for catch-up (pvclock_update_vm_gtod_copy).
        var s = Build(HypervisorConfig.Find("kvm-modern")! with { Vmm = VmmKind.Direct }, fromMhz: 3_000, toMhz: 2_000);
        Assert.True(s.Vm.CatchUp);
        Assert.True(s.Vm.Kvmclock.MasterClock);
    }

    [Fact]
    public void Notify_guest_tells_the_guest_after_the_migration()
    {
        var s = Build(HypervisorConfig.Find("kvm-2011")! with { NotifyGuest = true });
        Assert.True(s.Vm.GuestToldTrapped);
        Assert.Equal(1, s.Vm.Notifications);
        Assert.Equal(PvclockAbi.TscTrappedBit, s.Vm.Kvmclock.Published(0).Flags & PvclockAbi.TscTrappedBit);

        var hyperv = Build(HypervisorConfig.Find("hyperv")!);
        Assert.True(hyperv.Vm.Trapping);
        Assert.StartsWith("hyperv re-enlightenment", hyperv.Vm.TrappingReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Guest_stopped_is_published_after_a_migration_and_stays_until_the_guest_clears_it()
    {
        var sim = new Simulator(1);
        var a = new Host(new HostConfig { Id = "a", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000) }, sim);
        var b = new Host(new HostConfig { Id = "b", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000) }, sim);
        var hv = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find("kvm-modern")!);
        var vm = hv.CreateVm(new VmConfig { Id = "vm0" }, a, Assembler.Assemble("loop: work 100cycles\njmp loop"));
        vm.Start(SimTime.Zero);
        hv.ScheduleLiveMigration(Us(100), vm, b, Duration.FromMicroseconds(10));
        sim.Run(Us(111));
        Assert.Equal(PvclockAbi.GuestStoppedBit, vm.Kvmclock.Published(0).Flags & PvclockAbi.GuestStoppedBit);
        vm.Kvmclock.RequestUpdate(0, Us(200));
        sim.Run(Us(300));
        Assert.Equal(PvclockAbi.GuestStoppedBit, vm.Kvmclock.Published(0).Flags & PvclockAbi.GuestStoppedBit); // not consumed yet
        vm.Shared.Pvclock[PvclockAbi.FlagsOffset] &= unchecked((byte)~PvclockAbi.GuestStoppedBit);           // the guest consumes it
        vm.Kvmclock.RequestUpdate(0, Us(400));
        sim.Run(Us(500));
        Assert.Equal(0, vm.Kvmclock.Published(0).Flags & PvclockAbi.GuestStoppedBit);
    }

    [Fact]
    public void While_trapped_kvmclock_describes_the_emulated_tsc_and_keeps_true_speed()
    {
        // kvm-2011 traps after the 2 -> 3 GHz migration. kvmclock was restored to 1 ms at 1.1 ms;
        // 0.4 ms later a reader using the emulated TSC must get 1.4 ms, not 1.0 + 0.4 x 2/3.
        var s = Build(HypervisorConfig.Find("kvm-2011")!);
        Assert.True(s.Vm.Trapping);
        PvclockTimeInfo p = s.Vm.Kvmclock.Published(0);
        Assert.Equal(0x8000_0000u, p.Mul); // 2 GHz, the VM's rate, not the host's 3 GHz
        long ns = s.Fast.Monotonic.NanosecondsAt(Us(1_500));
        ulong kvmclock = p.Read(s.Vm.Emulated.AtNs(ns).Raw);
        Assert.InRange((long)kvmclock, 1_400_000L - 2, 1_400_000L + 2);
    }

    [Fact]
    public void Emulated_hpet_counts_on_across_a_migration_to_a_host_booted_later()
    {
        var sim = new Simulator(1);
        var a = new Host(new HostConfig { Id = "a", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000), Uptime = Duration.FromSeconds(10) }, sim);
        var b = new Host(new HostConfig { Id = "b", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000) }, sim);
        var hv = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find("kvm-modern")!);
        var log = new ObservationLog();
        var vm = hv.CreateVm(new VmConfig { Id = "vm0" }, a, Assembler.Assemble("loop: mov rax, [0xfed000f0]\nprobe rax\nwork 20000cycles\njmp loop"), log);
        vm.Start(SimTime.Zero);
        hv.ScheduleLiveMigration(Us(100), vm, b, Duration.FromMicroseconds(50));
        sim.Run(Us(300));
        var values = log.Probes.Select(p => p.Value).ToList();
        Assert.True(values.Count > 10);
        Assert.All(values.Zip(values.Skip(1)), pair => Assert.True(pair.Second >= pair.First, $"{pair.Second} after {pair.First}"));
        Assert.True(values[0] >= 100_000_000); // 10 s of uptime at 100 MHz
    }

    [Fact]
    public void Migrating_back_starts_tsc_matching_afresh_and_keeps_the_tsc_continuous()
    {
        var sim = new Simulator(1);
        var a = new Host(new HostConfig { Id = "a", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000) }, sim);
        var b = new Host(new HostConfig { Id = "b", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000), Uptime = Duration.FromMilliseconds(500) }, sim);
        var hv = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find("kvm-modern")!);
        var log = new ObservationLog();
        var vm = hv.CreateVm(new VmConfig { Id = "vm0" }, a, Assembler.Assemble("loop: rdtsc\nwork 2000cycles\njmp loop"), log);
        vm.Start(SimTime.Zero);
        hv.ScheduleLiveMigration(Us(1_000), vm, b, Duration.FromMicroseconds(50));
        hv.ScheduleLiveMigration(Us(2_000), vm, a, Duration.FromMicroseconds(50));
        sim.Run(Us(3_000));
        Assert.Same(a, vm.Host);
        var values = log.TscReads.Select(r => r.Value).ToList();
        Assert.All(values.Zip(values.Skip(1)), pair => Assert.InRange((long)(pair.Second - pair.First), 1L, 3_000L));
    }

    [Fact]
    public void Kvmclock_continues_from_the_saved_value_without_the_downtime()
    {
        var s = Build(HypervisorConfig.Find("kvm-modern")!);
        // KVM_SET_CLOCK restores the 1 ms kvmclock at 1.1 ms: kvmclock at resume = 1,000,000 ns.
        Assert.Equal(1_000_000L, s.Fast.Monotonic.NanosecondsAt(Us(1_100)) + s.Vm.Kvmclock.KvmclockOffset);
    }
}

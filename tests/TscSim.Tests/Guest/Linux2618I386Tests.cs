using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;

namespace TscSim.Tests.Guest;

/// <summary>Linux 2.6.18 i386 (GENERIC_TIME, vanilla arch/i386/kernel/tsc.c and kernel/time/clocksource.h).</summary>
public class Linux2618I386Tests
{
    [Fact]
    public void A_tsc_read_behind_cycle_last_wraps_about_2_to_the_42_ns_forward()
    {
        // read_tsc has no cycle_last clamp; cyc2ns = ((now − cycle_last) & CLOCKSOURCE_MASK(64)) × mult >> 22 in u64.
        // With vCPU 1's TSC 1 ms behind vCPU 0's (whose TSC the tick accumulates from), the delta is
        // 2^64 − d and the product wraps: (2^64 − d·mult) mod 2^64 >> 22 = 2^42 − ⌈d·mult / 2^22⌉ ns ≈ 73.3 min ahead.
        var policy = HypervisorConfig.Find("kvm-2011")! with { Trapping = TrappingOverride.Off };
        var rig = new KernelRig(OsProfiles.Linux2618, policy, [KernelRig.Host("a", 2_000)], vcpus: 2, pin: [0, 1]);
        rig.RunUntil(Duration.FromMilliseconds(200));
        Assert.Equal(22, rig.Kernel.Scale.Shift);
        long khz = rig.Kernel.TscKhz;
        Assert.Equal((uint)(((1_000_000L << 22) + khz / 2) / khz), rig.Kernel.Scale.Mult); // clocksource_khz2mult(tsc_khz, 22)
        SimTime now = rig.Sim.Now;
        PhysicalCpu core1 = rig.Hosts[0].Cores[1];
        core1.WriteTsc(now, core1.ReadTsc(now).Raw - 4_000_000UL); // 2 ms of cycles behind: always behind cycle_last
        rig.RunUntil(Duration.FromMilliseconds(230));
        var after = rig.Reads("vm0.vcpu1").Where(r => r.TrueNs > 201_000_000).ToList();
        Assert.NotEmpty(after);
        const long twoTo42 = 1L << 42;
        Assert.Contains(after, r => r.Ns - r.TrueNs > twoTo42 - 3_000_000 && r.Ns - r.TrueNs < twoTo42);
        // vCPU 0 is unaffected.
        Assert.All(rig.Reads("vm0.vcpu0"), r => Assert.InRange(r.Ns - r.TrueNs, -1_000_000, 1_000_000));
    }

    [Theory]
    [InlineData(1_000, true)]   // r = 0.5 < 3/4: caught at the second comparison
    [InlineData(1_600, false)]  // r = 0.8: verify_tsc_freq lets it pass
    public void Verify_tsc_freq_marks_a_tsc_slower_than_three_quarters_unstable_at_its_second_run(long mhz, bool caught)
    {
        // Timer at boot + 10 s records; at + 20 s: interval_tsc = Δtsc × HZ / (cpu_khz × 1000) against
        // interval_jiffies × 3/4. Migrated at 1 s (1 ms downtime) untrapped to a slower host.
        var policy = HypervisorConfig.Find("kvm-2011")! with { Trapping = TrappingOverride.Off };
        var rig = new KernelRig(OsProfiles.Linux2618, policy, [KernelRig.Host("a", 2_000), KernelRig.Host("b", mhz)],
            workload: "loop: call clock_gettime\nwork 20000000cycles\njmp loop\n");
        rig.Hv.ScheduleLiveMigration(SimTime.FromDuration(Duration.FromMilliseconds(1_000)), rig.Vm, rig.Hosts[1], Duration.FromMilliseconds(1));
        rig.RunUntil(Duration.FromMilliseconds(21_000));
        SimTime boot = rig.Kernel.Switches[0].Time;
        if (caught)
        {
            Assert.Equal("verify_tsc_freq: TSC running slowly", rig.Kernel.TscUnstable);
            Assert.Contains(rig.Kernel.Log, m => m.Message == "TSC appears to be running slowly. Marking it as unstable");
            // verify_tsc_freq runs from the timer wheel at jiffies 20,000 (IRQ0 every 999,847 ns after the PIT was armed
            // just after timekeeping init); mark_tsc_unstable only sets the flag, and the next IRQ0's update_wall_time →
            // tsc_update_callback lowers the TSC to 50 and reselects: the HPET (250) takes over one tick later.
            var sw = rig.Kernel.Switches[^1];
            Assert.Equal(ClocksourceKind.Hpet, sw.To);
            Assert.Equal(50, rig.Kernel.RatingOf(ClocksourceKind.Tsc));
            Assert.InRange((sw.Time - boot).Picoseconds, 20_001L * 999_847_000, 20_001L * 999_847_000 + 5_000_000_000L);
        }
        else
        {
            Assert.Null(rig.Kernel.TscUnstable);
            Assert.Equal(ClocksourceKind.Tsc, rig.Kernel.Clocksource);
        }
    }

    [Fact]
    public void Calculate_cpu_khz_takes_three_30ms_pit_windows_and_rounds_the_last_one()
    {
        // CALIBRATE_LATCH = (1,193,182 × 30 + 500) / 1000 = 35,795 PIT counts = 29.99961 ms: at 2 GHz
        // Δ = 35,795 × 2×10^9 / 1,193,182 = 59,999,228.9 cycles, and (Δ + 15) / 30 = 1,999,974 kHz; the polling loop
        // (inb_p = in 0x61 + out 0x80: two PIO exits a loop) can only add up to one loop's cycles, and outb_p's
        // slow-down write to port 0x80 after the MSB (the PIT already counting) delays rdtscll(start) by one
        // userspace PIO exit, which the kernel's measurement loses (≈ 570 cycles: 19 kHz here).
        var policy = HypervisorConfig.Find("kvm-2011")! with { Trapping = TrappingOverride.Off };
        var rig = new KernelRig(OsProfiles.Linux2618, policy, [KernelRig.Host("a", 2_000)]);
        rig.RunUntil(Duration.FromMilliseconds(300));
        Assert.Equal(35_795, KernelLibrary.CalibrateLatch386);
        Assert.Equal(3, rig.Kernel.Calibration!.Attempts);
        Assert.StartsWith("calculate_cpu_khz", rig.Kernel.Calibration.Method, StringComparison.Ordinal);
        Assert.InRange(rig.Kernel.TscKhz, 1_999_974 - 30, 2_000_300);
        // Three windows: boot takes at least 90 ms before timekeeping starts.
        Assert.True(rig.Kernel.Switches[0].Time.Picoseconds >= 3 * 29_999_000_000L);
        Assert.Equal(ClocksourceKind.Tsc, rig.Kernel.Clocksource);
        Assert.Equal(300, rig.Kernel.RatingOf(ClocksourceKind.Tsc));
    }

    [Fact]
    public void An_amd_smp_guest_registers_the_tsc_at_rating_50_and_boots_on_the_hpet()
    {
        // i386 unsynchronized_tsc(): non-Intel and num_possible_cpus() > 1 → init_tsc_clocksource marks it unstable
        // and registers it at 50; select_clocksource takes the HPET (250).
        var policy = HypervisorConfig.Find("kvm-2011")! with { Trapping = TrappingOverride.Off };
        var rig = new KernelRig(OsProfiles.Linux2618, policy, [KernelRig.Host("a", 2_000, CpuPresets.AmdZen2)], vcpus: 2);
        rig.RunUntil(Duration.FromMilliseconds(300));
        Assert.Equal(50, rig.Kernel.RatingOf(ClocksourceKind.Tsc));
        Assert.Equal(ClocksourceKind.Hpet, rig.Kernel.Clocksource);
        Assert.Equal(ClocksourceKind.Hpet, rig.Kernel.Switches[0].To);
    }

    [Fact]
    public void Each_pit_tick_advances_jiffies_and_accumulates_the_clocksource()
    {
        // IRQ0 every LATCH = 1193 PIT counts = 999,847 ns (KVM's PIT); update_wall_time reads the TSC once per tick.
        var policy = HypervisorConfig.Find("kvm-2011")! with { Trapping = TrappingOverride.On };
        var rig = new KernelRig(OsProfiles.Linux2618, policy, [KernelRig.Host("a", 2_000)], workload: "loop: work 100000cycles\njmp loop\n");
        rig.RunUntil(Duration.FromMilliseconds(500));
        long j0 = rig.Kernel.Jiffies386, r0 = rig.Vm.Platforms[0].Exits.Rdtsc;
        rig.RunUntil(Duration.FromMilliseconds(1_500));
        long ticks = rig.Kernel.Jiffies386 - j0;
        Assert.InRange(ticks, 1_000, 1_001); // 10^9 / 999,847 = 1000.15
        Assert.Equal(ticks, rig.Vm.Platforms[0].Exits.Rdtsc - r0); // one trapped RDTSC per tick, nothing else reads the TSC
    }
}

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
            var sw = rig.Kernel.Switches[^1];
            Assert.Equal(ClocksourceKind.Hpet, sw.To);
            Assert.Equal(boot + Duration.FromSeconds(20), sw.Time);
        }
        else
        {
            Assert.Null(rig.Kernel.TscUnstable);
            Assert.Equal(ClocksourceKind.Tsc, rig.Kernel.Clocksource);
        }
    }
}

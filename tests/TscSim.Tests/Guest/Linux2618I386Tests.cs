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
}

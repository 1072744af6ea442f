using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;
using Xunit.Abstractions;

namespace TscSim.Tests.Guest;

/// <summary>
/// The periodic local APIC tick of the FreeBSD 8, Solaris 10 and Windows profiles (rates from
/// their sources; the mechanism is an assumption stated in each profile's <c>Tick</c>).
/// </summary>
public class PeriodicTickTests(ITestOutputHelper output)
{
    private static Duration Ms(long ms) => Duration.FromMilliseconds(ms);

    [Theory]
    [InlineData("freebsd-8", 1000)]
    [InlineData("solaris-10", 100)]
    [InlineData("windows-2008r2", 64)]
    [InlineData("windows-2016", 64)]
    public void Each_vcpu_takes_hz_ticks_per_second_and_the_clock_owner_reads_its_time_source_once_per_tick(string name, int hz)
    {
        // KVM's APIC timer: initial count 10^9 / hz bus cycles of 1 ns, periodic, so exactly hz expiries per second
        // of the host's clock (10^9 / 64 = 15,625,000 ns). Exits per tick on Nehalem (no APIC virtualization) under
        // kvm-modern, busy: 1 external interrupt + 1 x2APIC EOI write (apic); vCPU 0 also reads its time source once
        // (ACPI PM timer: 1 PIO exit; TSC: no exit, untrapped).
        var profile = OsProfiles.Find(name)!;
        var policy = HypervisorConfig.Find("kvm-modern")! with { Trapping = TrappingOverride.Off };
        var rig = new KernelRig(profile, policy, [KernelRig.Host("a", 2_000)], vcpus: 2, workload: "loop: work 100000cycles\njmp loop\n");
        rig.RunUntil(Ms(1_000));
        long[] i0 = [.. rig.Vm.Vcpus.Select(v => v.InterruptsDelivered(InterruptSource.LapicTimer))];
        var e0 = rig.Vm.Platforms.Select(p => (p.Exits.ExternalInterrupt, p.Exits.Apic, p.Exits.Pio, p.Exits.Total)).ToArray();
        rig.RunUntil(Ms(2_000));
        bool pmTimer = rig.Kernel.Clocksource == ClocksourceKind.AcpiPm;
        for (int v = 0; v < 2; v++)
        {
            long ticks = rig.Vm.Vcpus[v].InterruptsDelivered(InterruptSource.LapicTimer) - i0[v];
            var e = rig.Vm.Platforms[v].Exits;
            output.WriteLine($"{name} vcpu{v}: {ticks} ticks, ext {e.ExternalInterrupt - e0[v].ExternalInterrupt}, apic {e.Apic - e0[v].Apic}, pio {e.Pio - e0[v].Pio}");
            Assert.Equal(hz, ticks);
            Assert.Equal(hz, e.ExternalInterrupt - e0[v].ExternalInterrupt);
            Assert.Equal(hz, e.Apic - e0[v].Apic);
            Assert.Equal(v == 0 && pmTimer ? hz : 0, e.Pio - e0[v].Pio);
            Assert.Equal((v == 0 && pmTimer ? 3 : 2) * hz, e.Total - e0[v].Total);
        }
    }

    [Fact]
    public void An_idle_vcpu_sleeps_from_tick_to_tick()
    {
        // hlt waits for the next tick: one HLT exit per tick, the tick itself finds the vCPU out of guest mode (no
        // external-interrupt exit): per tick 1 apic (EOI) + 1 hlt on vCPU 1; Solaris at 100 Hz.
        var policy = HypervisorConfig.Find("kvm-modern")! with { Trapping = TrappingOverride.Off };
        var rig = new KernelRig(OsProfiles.Solaris10, policy, [KernelRig.Host("a", 2_000)], vcpus: 2, workload: "idle: hlt\njmp idle\n");
        rig.RunUntil(Ms(1_000));
        var e = rig.Vm.Platforms[1].Exits;
        long hlt0 = e.Hlt, apic0 = e.Apic, ext0 = e.ExternalInterrupt;
        rig.RunUntil(Ms(2_000));
        Assert.Equal(100, e.Hlt - hlt0);
        Assert.Equal(100, e.Apic - apic0);
        Assert.Equal(0, e.ExternalInterrupt - ext0);
    }
}

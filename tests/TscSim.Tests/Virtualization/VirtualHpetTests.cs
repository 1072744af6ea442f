using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;

namespace TscSim.Tests.Virtualization;

/// <summary>
/// QEMU's HPET (QEMU 0.14 hw/hpet.c) driven register by register as Linux 2.6.18's
/// hpet_timer_stop_set_go does; the expected values follow hpet_ram_writel / hpet_timer by hand
/// (10 ns per count: HPET_CLK_PERIOD 10^7 fs; the host crystal exact, so the virtual clock is true time).
/// </summary>
public class VirtualHpetTests
{
    private const long Cfg = 0x010, Counter = 0x0F0, T0Cfg = 0x100, T0Cmp = 0x108;

    private static (Simulator Sim, Vm Vm) NewVm()
    {
        var sim = new Simulator(1);
        var host = new Host(new HostConfig { Id = "h", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000) }, sim);
        var hv = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find("kvm-2011")!);
        var vm = hv.CreateVm(new VmConfig { Id = "vm0", Vcpus = 1 }, host, Assembler.Assemble("idle: hlt\njmp idle", "idle"));
        return (sim, vm);
    }

    private static SimTime Ns(long ns) => SimTime.FromPicoseconds(ns * 1000);

    [Fact]
    public void The_2618_setup_sequence_halts_zeroes_and_restarts_the_counter_and_timer_0_ticks_every_hpet_tick()
    {
        var (sim, vm) = NewVm();
        VirtualHpet hpet = vm.Hpet;
        sim.Run(Ns(1_000));
        Assert.Equal(1u, hpet.ReadLong(Cfg, Ns(1_000)));             // the model's assumption: enabled from VM creation
        Assert.Equal(100u, hpet.ReadLong(Counter, Ns(1_000)));       // 1 µs / 10 ns
        hpet.WriteLong(Cfg, 0, Ns(1_000));                           // halt: hpet_counter = ticks = 100
        Assert.Equal(100u, hpet.ReadLong(Counter, Ns(1_500)));
        hpet.WriteLong(Counter, 0, Ns(1_500));
        hpet.WriteLong(Counter + 4, 0, Ns(1_500));
        Assert.Equal(0u, hpet.ReadLong(Counter, Ns(1_600)));
        hpet.WriteLong(T0Cfg, 0x14C, Ns(1_600));                     // ENABLE | PERIODIC | SETVAL | 32BIT
        Assert.Equal(0x17Cu, hpet.ReadLong(T0Cfg, Ns(1_600)));       // | PERIODIC_CAP | SIZE_CAP from hpet_reset
        Assert.Equal(0xFFFF_FFFFu, hpet.ReadLong(T0Cmp, Ns(1_600))); // ~0 truncated by 32BIT
        hpet.WriteLong(T0Cmp, 100_000, Ns(1_700));                   // SETVAL: comparator and period
        hpet.WriteLong(T0Cmp, 100_000, Ns(1_700));                   // period only
        Assert.Equal(0x13Cu, hpet.ReadLong(T0Cfg, Ns(1_700)));       // SETVAL cleared
        Assert.Equal(100_000UL, hpet.Timer0Comparator);
        Assert.Equal(100_000UL, hpet.Timer0Period);
        hpet.WriteLong(Cfg, 3, Ns(2_000));                           // LEGACY | ENABLE: hpet_offset = 0 − vm_clock
        Assert.True(hpet.Legacy);
        Assert.Equal(0u, hpet.ReadLong(Counter, Ns(2_000)));
        Assert.Equal(99_999u, hpet.ReadLong(Counter, Ns(1_001_999)));
        // Ticks when the counter passes k × 100,000: at 2 µs + k ms + 10 ns.
        sim.Run(Ns(2_000 + 10_000_000 + 9));
        Assert.Equal(9, hpet.Timer0Interrupts);
        sim.Run(Ns(2_000 + 10_000_000 + 10));
        Assert.Equal(10, hpet.Timer0Interrupts);
        Assert.Equal(1_100_000UL, hpet.Timer0Comparator);            // advanced past the counter once per tick
        // Halting stops the timer (hpet_del_timer) and freezes the counter.
        hpet.WriteLong(Cfg, 2, Ns(10_500_000));
        sim.Run(Ns(20_000_000));
        Assert.Equal(10, hpet.Timer0Interrupts);
        Assert.Equal(1_049_800u, hpet.ReadLong(Counter, Ns(20_000_000))); // (10.5 ms − 2 µs) / 10 ns
        Assert.Equal(0, vm.Timers.PitTicks);
    }
}

using System.Collections.Immutable;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;

namespace TscSim.Tests.Guest;

public class GuestKernelTests
{
    private static Duration Ms(long ms) => Duration.FromMilliseconds(ms);

    private static HypervisorConfig Policy(string name, TrappingOverride trapping = TrappingOverride.Auto, bool notify = false) =>
        HypervisorConfig.Find(name)! with { Trapping = trapping, NotifyGuest = notify };

    /// <summary>A kernel with Linux's pit_hpet_ptimer_calibrate_cpu (PIT windows, HPET reference) and no modelled tick.</summary>
    private static readonly OsProfile PitHpetCalibrated = OsProfiles.Linux2618 with
    {
        Calibration = CalibrationKind.Pit,
        TickKind = TickKind.KernelTimer,
        Hz = 0,
        HzChoices = [],
    };

    /// <summary>A Linux without kvm-clock (booted with no-kvmclock), so the TSC's fallback is the HPET.</summary>
    private static readonly OsProfile LinuxModernNoKvmclock = OsProfiles.LinuxModern with
    {
        Ratings = OsProfiles.LinuxModern.Ratings.RemoveAll(r => r.Kind == ClocksourceKind.KvmClock),
    };

    /// <summary>Migrates the VM at 1 s to the second host (100 ms downtime) and runs to 3 s.</summary>
    private static KernelRig Migrated(OsProfile profile, HypervisorConfig policy, ClocksourceKind? cs = null)
    {
        var rig = new KernelRig(profile, policy, [KernelRig.Host("slow", 2_000), KernelRig.Host("fast", 3_000)], clocksource: cs);
        rig.Hv.ScheduleLiveMigration(SimTime.FromDuration(Ms(1_000)), rig.Vm, rig.Hosts[1], Ms(100));
        rig.RunUntil(Ms(3_000));
        return rig;
    }

    [Theory]
    [InlineData(2_000, 2_000_000)]
    [InlineData(2_400, 2_400_000)]
    [InlineData(3_000, 3_000_000)]
    public void Pit_calibration_agrees_with_the_hpet_reference_and_takes_the_reference_value(long mhz, long khz)
    {
        // (A profile with the modern pit_hpet_ptimer_calibrate_cpu and no tick: 2.6.18 i386 now has its own calculate_cpu_khz.)
        // The HPET reference measures Δtsc × 10^6 / Δns over ~10 ms; QEMU's HPET ticks every
        // 10 ns, so Δns is known to ±10 ns: the result is within 1 ppm (+ truncation) of the rate.
        var rig = new KernelRig(PitHpetCalibrated, Policy("kvm-2011"), [KernelRig.Host("a", mhz)]);
        rig.RunUntil(Ms(100));
        Assert.InRange(rig.Kernel.TscKhz, khz - khz / 1_000_000 - 1, khz + khz / 1_000_000 + 1);
        Assert.Equal("PIT calibration matches HPET", rig.Kernel.Calibration!.Method);
        Assert.Equal(1, rig.Kernel.Calibration.Attempts);
        // The PIT window is 11,931 ticks of 1.193182 MHz (9.99931 ms): boot takes at least that long.
        Assert.True(rig.Kernel.Switches[0].Time >= SimTime.FromDuration(Duration.FromMicroseconds(9_999)));
    }

    [Fact]
    public void A_kvmclock_guest_takes_its_tsc_rate_from_pvclock_without_calibrating()
    {
        var rig = new KernelRig(OsProfiles.LinuxModern, Policy("kvm-modern"), [KernelRig.Host("a", 2_400)]);
        rig.RunUntil(Ms(50));
        Assert.Equal("pvclock", rig.Kernel.Calibration!.Method);
        // pvclock_tsc_khz of kvm_get_time_scale(10^9, 2.4 GHz) recovers 2,400,000 kHz up to truncation.
        Assert.InRange(rig.Kernel.TscKhz, 2_399_999, 2_400_000);
        Assert.Equal(ClocksourceKind.KvmClock, rig.Kernel.Clocksource);
        Assert.Equal("boot: rating 400", rig.Kernel.Switches[0].Reason);
    }

    [Fact]
    public void Mult_and_shift_are_clocks_calc_mult_shift()
    {
        // 1 GHz to ns with 600 s of headroom: mult = 2^shift exactly.
        var (m1, s1) = Clocksources.CalcMultShift(1_000_000_000, 1_000_000_000, 600);
        Assert.Equal(1UL << s1, m1);
        // The ACPI PM timer (24-bit mask, 4 s): 10^9/3,579,545 × 2^shift rounded.
        var (m2, s2) = Clocksources.CalcMultShift(3_579_545, 1_000_000_000, 4);
        Assert.Equal((ulong)Math.Round(1e9 / 3_579_545 * Math.Pow(2, s2)), m2);
        // The product of the largest delta (4 s of ticks) and mult fits 64 bits.
        Assert.True((UInt128)(4UL * 3_579_545) * m2 < UInt128.One << 64);
    }

    [Fact]
    public void Legacy_tsc_guest_migrated_to_a_faster_host_without_trapping_gains_half_a_second_per_second()
    {
        var rig = Migrated(OsProfiles.Linux2618, Policy("kvm-2011", TrappingOverride.Off));
        Assert.False(rig.Vm.Trapping);
        // Calibrated at 2 GHz, counting 3 GHz: each true second shows as 1.5 guest seconds.
        long gain = rig.SkewAt(2_900_000_000) - rig.SkewAt(1_900_000_000);
        Assert.InRange(gain, 500_000_000 - 200_000, 500_000_000 + 200_000); // ±1 read period (100 µs at 2 GHz)
    }

    [Fact]
    public void Legacy_tsc_guest_migrated_with_trapping_keeps_its_skew_within_the_downtime()
    {
        var rig = Migrated(OsProfiles.Linux2618, Policy("kvm-2011"));
        Assert.True(rig.Vm.Trapping);
        foreach (var (trueNs, ns) in rig.Reads())
        {
            // The guest's TSC stood still for the 100 ms downtime; calculate_cpu_khz's own error (±1 kHz steps, the
            // slow-down outb before rdtscll(start): some ppm) adds up to tens of µs over the 3 s.
            Assert.InRange(ns - trueNs, -100_000_000 - 100_000, 100_000);
        }
        Assert.True(rig.SkewAt(2_900_000_000) < -99_000_000);
        // And every clock read after the migration exits (RDTSC is trapped).
        // (A read that IRQ0 enters also counts the tick's exits: its RDTSC, the 8259 EOI, the local APIC EOI.)
        var after = rig.Log.ClockReads.Where(r => r.TimePs > 1_200_000_000_000).ToList();
        Assert.All(after, r => Assert.True(r.Exits >= 1));
        Assert.True(after.Count(r => r.Exits == 1) >= after.Count * 95 / 100);
    }

    [Fact]
    public void Modern_kvmclock_guest_keeps_its_rate_across_the_same_migration()
    {
        var rig = Migrated(OsProfiles.LinuxModern, Policy("kvm-modern"));
        long drift = rig.SkewAt(2_900_000_000) - rig.SkewAt(1_200_000_000);
        Assert.InRange(drift, -2_000, 2_000); // kvm-clock follows the new host's rate: no gain
        Assert.Equal(ClocksourceKind.KvmClock, rig.Kernel.Clocksource);
    }

    private static KernelRig SkewedSockets(HypervisorConfig policy, OsProfile profile, ClocksourceKind? cs = null, long work = 200_000)
    {
        var host = KernelRig.Host("numa", 2_000, cores: 1, sockets: 2) with { SocketDrift = [Ppm.Zero, Ppm.FromPartsPerBillion(200_000)] };
        string workload = $"loop: call clock_gettime\nwork {work}cycles\njmp loop";
        var rig = new KernelRig(profile, policy, [host], vcpus: 2, workload: workload, clocksource: cs, pin: [0, 1]);
        rig.RunUntil(Ms(1_000));
        return rig;
    }

    /// <summary>Backward steps of the VM's clock reads taken in true-time order, and how many equal their predecessor.</summary>
    private static (int Violations, int Stalls) CrossVcpu(KernelRig rig)
    {
        int violations = 0, stalls = 0;
        long last = long.MinValue;
        foreach (var r in rig.Log.ClockReads)
        {
            if (r.Nanoseconds < last)
            {
                violations++;
            }
            else if (r.Nanoseconds == last)
            {
                stalls++;
            }
            last = Math.Max(last, r.Nanoseconds);
        }
        return (violations, stalls);
    }

    [Fact]
    public void Raw_tsc_guest_on_drifting_sockets_sees_cross_vcpu_warps_that_a_trapped_tsc_removes()
    {
        var raw = SkewedSockets(Policy("kvm-2011", TrappingOverride.Off), OsProfiles.Linux2618);
        Assert.Equal(ClocksourceKind.Tsc, raw.Kernel.Clocksource);
        Assert.True(CrossVcpu(raw).Violations > 100, $"{CrossVcpu(raw).Violations} violations");

        var trapped = SkewedSockets(Policy("kvm-2011", TrappingOverride.On), OsProfiles.Linux2618);
        Assert.True(trapped.Vm.Trapping);
        Assert.Equal(0, CrossVcpu(trapped).Violations);
        Assert.True(trapped.Log.ClockReads.Count > 1_000);
    }

    [Fact]
    public void The_warp_test_finds_drifting_sockets_and_turns_the_tsc_off()
    {
        var rig = SkewedSockets(Policy("kvm-2011", TrappingOverride.Off), OsProfiles.LinuxModern, ClocksourceKind.Tsc);
        var (vcpu, warps, max) = Assert.Single(rig.Kernel.WarpTests);
        Assert.Equal(1, vcpu);
        Assert.True(warps > 0 && max > 0);
        Assert.Equal("check_tsc_sync_source failed", rig.Kernel.TscUnstable);
        Assert.Equal(ClocksourceKind.KvmClock, rig.Kernel.Clocksource);
    }

    [Fact]
    public void The_warp_test_of_a_vms_aps_runs_loop_timeouts_2_ms_as_each_has_the_boot_cpu_in_its_package()
    {
        // Linux 6.18 tsc_sync.c loop_timeout: 2 ms when topology_core_cpumask(cpu) holds another
        // CPU. A VM's vCPUs are cores of one package (QEMU's -smp default since machine type
        // 6.2), so each AP's mask holds at least the boot CPU. check_tsc_warp loops until its
        // TSC passes start + tsc_khz * 2: on a 2 GHz host, 4,000,000 cycles = 2 ms, plus the
        // rendezvous around it (well under 0.1 ms of guest instructions).
        var rig = new KernelRig(OsProfiles.LinuxModern, Policy("kvm-modern", TrappingOverride.Off),
            [KernelRig.Host("h", 2_000, cores: 4)], vcpus: 3, pin: [0, 1, 2]);
        rig.RunUntil(Ms(300));
        Assert.Equal(2, rig.Kernel.WarpTestSpans.Count);
        foreach (var (start, end, timeout) in rig.Kernel.WarpTestSpans)
        {
            Assert.Equal(SmpBringUp.SiblingWarpTestMilliseconds, timeout);
            long spanNs = (end - start).Picoseconds / 1_000;
            Assert.InRange(spanNs, 2_000_000, 2_100_000);
        }
    }

    [Fact]
    public void The_watchdog_moves_a_guest_from_a_tsc_running_1pct_fast_to_the_hpet_within_two_periods()
    {
        // An AMD K8 TSC follows P-states: at 1 s the core goes from 2.0 to 2.02 GHz, and a guest
        // calibrated at 2 GHz sees its TSC run 1% fast against the HPET (5 ms per 0.5 s interval,
        // far over the modern margins of 2 × 124 µs).
        var rig = new KernelRig(LinuxModernNoKvmclock, Policy("kvm-2011", TrappingOverride.Off),
            [KernelRig.Host("k8", 2_000, CpuPresets.AmdK8)], clocksource: ClocksourceKind.Tsc);
        var change = SimTime.FromDuration(Ms(1_000));
        foreach (var core in rig.Hosts[0].Cores)
        {
            rig.Hosts[0].ScheduleFrequencyChange(change, core.Index, Frequency.FromMegahertz(2_020));
        }
        rig.RunUntil(Ms(3_000));
        var sw = rig.Kernel.Switches.Single(s => s.From == ClocksourceKind.Tsc);
        Assert.Equal(ClocksourceKind.Hpet, sw.To);
        Assert.StartsWith("TSC unstable: clocksource watchdog", sw.Reason, StringComparison.Ordinal);
        Assert.InRange(sw.Time.Picoseconds, change.Picoseconds, (change + ClocksourceWatchdog.Interval + ClocksourceWatchdog.Interval).Picoseconds);
        // Every HPET read is an MMIO exit to the userspace device model.
        var after = rig.Log.ClockReads.Where(r => r.TimePs > sw.Time.Picoseconds).ToList();
        Assert.NotEmpty(after);
        long exitCycles = CpuPresets.AmdK8.ExitRoundTrip.Count + HypervisorConfig.Find("kvm-2011")!.HandlerCosts.UserspaceIo.Count;
        // (A read that the tick interrupt enters also counts the tick's exits: external interrupt, EOI, deadline.)
        Assert.All(after, r => Assert.True(r.Exits == 1 || r.Exits == 4, $"{r.Exits} exits"));
        Assert.True(after.Count(r => r.Exits == 1) >= after.Count * 95 / 100);
        Assert.All(after, r => Assert.True(r.Cycles > exitCycles, $"{r.Cycles} cycles"));
        Assert.True(rig.Vm.Platforms[0].Exits.Mmio >= after.Count);
    }

    [Fact]
    public void The_watchdog_leaves_a_good_tsc_alone()
    {
        var rig = new KernelRig(LinuxModernNoKvmclock, Policy("kvm-2011", TrappingOverride.Off),
            [KernelRig.Host("a", 2_000)], clocksource: ClocksourceKind.Tsc);
        rig.RunUntil(Ms(3_000));
        Assert.Null(rig.Kernel.TscUnstable);
        Assert.Single(rig.Kernel.Switches);
    }

    [Fact]
    public void Kvmclock_without_the_stable_flag_never_goes_back_across_vcpus_but_stalls()
    {
        // Drifting sockets: KVM has no master clock, so no PVCLOCK_TSC_STABLE_BIT, and the guest
        // clamps every read to the global last_value.
        var rig = SkewedSockets(Policy("kvm-modern"), OsProfiles.LinuxModern, work: 2_000);
        Assert.False(rig.Vm.Kvmclock.MasterClock);
        Assert.Equal(ClocksourceKind.KvmClock, rig.Kernel.Clocksource);
        var (violations, stalls) = CrossVcpu(rig);
        Assert.Equal(0, violations);
        Assert.True(stalls > 0, "expected stalls");
    }

    [Fact]
    public void A_notified_guest_adopts_the_new_rate_and_trapping_ends_after_its_delay()
    {
        var rig = Migrated(OsProfiles.LinuxNotifyAware, Policy("kvm-2011", notify: true), ClocksourceKind.Tsc);
        // Told twice: trapping started (the migration), trapping ended (after its acknowledgement).
        Assert.Equal(2, rig.Kernel.NotificationsHandled);
        Assert.False(rig.Vm.Trapping);
        Assert.Equal(3_000_000, rig.Vm.VirtualTscKhz);
        Assert.Equal(3_000_000, rig.Kernel.TscKhz);
        var interval = Assert.Single(rig.Vm.TrappedIntervals());
        // Trapped from the migration's end (1.1 s) until the guest's answer 100 ms later.
        Assert.Equal(SimTime.FromDuration(Ms(1_100)), interval.From);
        Assert.Equal(SimTime.FromDuration(Ms(1_200)), interval.To);
        // Its clock keeps the right rate afterwards.
        long drift = rig.SkewAt(2_900_000_000) - rig.SkewAt(1_300_000_000);
        Assert.InRange(drift, -5_000, 5_000);
    }

    [Fact]
    public void A_legacy_guest_ignores_the_notification_and_stays_trapped()
    {
        var rig = Migrated(OsProfiles.Linux2618, Policy("kvm-2011", notify: true));
        Assert.Equal(0, rig.Kernel.NotificationsHandled);
        Assert.True(rig.Vm.Trapping);
    }

    [Fact]
    public void Profiles_select_their_clocksource_by_rating()
    {
        foreach (var (profile, expected) in new[]
        {
            (OsProfiles.LinuxModern, ClocksourceKind.KvmClock), (OsProfiles.Linux2618, ClocksourceKind.Tsc),
            (OsProfiles.FreeBsd8, ClocksourceKind.AcpiPm), (OsProfiles.Solaris10, ClocksourceKind.Tsc),
            (OsProfiles.Windows2008R2, ClocksourceKind.AcpiPm),
        })
        {
            var rig = new KernelRig(profile, Policy("kvm-2011"), [KernelRig.Host("a", 2_000)], vcpus: 2);
            rig.RunUntil(Ms(200));
            Assert.Equal(expected, rig.Kernel.Clocksource);
            Assert.True(rig.Reads("vm0.vcpu1").Count > 100, profile.Name);
            Assert.All(rig.Reads(), r => Assert.InRange(r.Ns - r.TrueNs, -20_000, 20_000));
        }
    }

    [Fact]
    public void Invariant_tsc_lowers_kvmclock_to_299_so_linux_uses_the_tsc()
    {
        var rig = new KernelRig(OsProfiles.LinuxModern, Policy("kvm-modern"), [KernelRig.Host("a", 2_000, CpuPresets.IntelSkylake)],
            vm: new VmConfig { Id = "vm0", FixedRate = true });
        rig.RunUntil(Ms(100));
        Assert.Equal(ClocksourceKind.Tsc, rig.Kernel.Clocksource);
    }

    [Fact]
    public void A_workload_without_instructions_is_rejected()
    {
        var ex = Assert.Throws<TscSim.Core.Isa.AssemblyException>(() => GuestKernel.Assemble("; nothing\n", "w"));
        Assert.Contains("no instruction", ex.Errors[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Workload_errors_keep_the_workload_line_numbers()
    {
        var ex = Assert.Throws<TscSim.Core.Isa.AssemblyException>(() => GuestKernel.Assemble("nop\nnop\nfrob rax\n", "w"));
        Assert.Equal(3, ex.Errors[0].Line);
    }

    [Theory]
    [InlineData("loop: kcall 9\njmp loop", 1, 7, "'kcall' belongs to the guest kernel's own code, not to a workload; a workload enters the kernel with 'call' to one of its entry points: clock_gettime")]
    [InlineData("nop\nkend", 2, 1, "'kend' belongs to the guest kernel's own code")]
    [InlineData("nop\njmp start", 2, 5, "'start' is internal to the guest kernel; a workload may refer to its own labels and call the kernel's entry points: clock_gettime")]
    [InlineData("call __k_warp\nhlt", 1, 6, "'__k_warp' is internal to the guest kernel")]
    [InlineData("mov rax, [__k_lock]\nhlt", 1, 10, "'__k_lock' is internal to the guest kernel")]
    [InlineData("nop\n  start: hlt", 2, 3, "'start' is a label of the guest kernel; choose another name")]
    [InlineData("clock_gettime: hlt", 1, 1, "'clock_gettime' is a label of the guest kernel; choose another name")]
    public void A_workload_may_not_use_the_kernels_instructions_or_internals(string workload, int line, int column, string message)
    {
        var ex = Assert.Throws<TscSim.Core.Isa.AssemblyException>(() => GuestKernel.Assemble(workload, "w"));
        var e = Assert.Single(ex.Errors);
        Assert.Equal((line, column), (e.Line, e.Column));
        Assert.StartsWith(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_workload_calls_clock_gettime_and_the_kernel_still_assembles_its_own_kcalls()
    {
        var program = GuestKernel.Assemble("loop: call clock_gettime\njmp loop", "w");
        Assert.Contains(Enumerable.Range(0, program.Length), k => program[k].Op == TscSim.Core.Isa.Opcode.Kcall);
        Assert.Equal(TscSim.Core.Isa.Opcode.Kend, program[2].Op); // right after the workload's two instructions
    }

    [Fact]
    public void Running_past_the_end_of_the_workload_is_a_fault_not_a_reboot()
    {
        var rig = new KernelRig(OsProfiles.LinuxModern, Policy("kvm-modern"), [KernelRig.Host("a", 2_000)],
            workload: "nop\nnop\n");
        rig.RunUntil(Ms(200));
        var fault = Assert.IsType<GuestFault>(rig.Vm.Vcpus[0].Fault);
        Assert.Equal(GuestFaultKind.RanPastEnd, fault.Kind);
        Assert.Equal(2, fault.Line); // the workload's last instruction
        Assert.True(GuestKernel.IsWorkloadLine(rig.Vm.Vcpus[0].Program, fault.Line));
        Assert.Single(rig.Kernel.Switches); // booted once: no second boot
    }
}

public class GuestKernelReviewTests
{
    private static Duration Ms(long ms) => Duration.FromMilliseconds(ms);

    private static readonly OsProfile NoKvmclock = OsProfiles.LinuxModern with
    {
        Ratings = OsProfiles.LinuxModern.Ratings.RemoveAll(r => r.Kind == ClocksourceKind.KvmClock),
    };

    [Fact]
    public void A_guest_without_kvmclock_calibrates_against_the_pit()
    {
        var rig = new KernelRig(NoKvmclock, HypervisorConfig.Find("kvm-2011")!, [KernelRig.Host("a", 2_000)]);
        rig.RunUntil(Ms(100));
        Assert.Equal("PIT calibration matches HPET", rig.Kernel.Calibration!.Method);
    }

    [Fact]
    public void The_modern_watchdog_demotes_a_tsc_that_stepped_back()
    {
        // A host TSC write at 1.2 s sends the TSC back 200 M cycles (100 ms at 2 GHz): the watchdog's
        // interval holds 100 ms less TSC than HPET, and the TSC is marked unstable. (A step back of the
        // whole 1.2 s would stall the guest's TSC-deadline timer, its ticks and jiffies with it, until the
        // TSC caught up with the deadline: linux-modern's timers run on the TSC.)
        var rig = new KernelRig(NoKvmclock, HypervisorConfig.Find("kvm-2011")! with { Trapping = TrappingOverride.Off },
            [KernelRig.Host("k8", 2_000, CpuPresets.AmdK8)], clocksource: ClocksourceKind.Tsc);
        foreach (var core in rig.Hosts[0].Cores)
        {
            rig.Hosts[0].ScheduleTscWrite(SimTime.FromDuration(Ms(1_200)), core.Index, 2_200_000_000);
        }
        rig.RunUntil(Ms(2_500));
        Assert.NotNull(rig.Kernel.TscUnstable);
        Assert.StartsWith("clocksource watchdog", rig.Kernel.TscUnstable, StringComparison.Ordinal);
        Assert.Equal(ClocksourceKind.Hpet, rig.Kernel.Clocksource);
    }
}

public class GuestKernelAllocationTests
{
    [Fact]
    public void Clock_reads_allocate_nothing_in_steady_state()
    {
        // tsc clocksource, a read every 2,000 cycles: after boot the run is read after read
        // (kcall services, the timekeeper, the observer) and must not allocate.
        var rig = new KernelRig(OsProfiles.Linux2618, HypervisorConfig.Find("kvm-2011")!, [KernelRig.Host("a", 2_000)],
            workload: "loop: call clock_gettime\nwork 2000cycles\njmp loop", observer: new CountingObserver());
        rig.RunUntil(Duration.FromMilliseconds(150)); // after calculate_cpu_khz's three 30 ms windows; PIT and local APIC ticks included
        long before = GC.GetAllocatedBytesForCurrentThread();
        rig.RunUntil(Duration.FromMilliseconds(160));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(((CountingObserver)rig.Observer).Reads > 4_000);
        Assert.Equal(0, allocated);
    }

    private sealed class CountingObserver : TscSim.Core.Guest.IExecutionObserver
    {
        public long Reads;
        public void OnTscRead(TscSim.Core.Guest.Vcpu vcpu, SimTime at, TscValue value, bool exited, long cycles) { }
        public void OnProbe(TscSim.Core.Guest.Vcpu vcpu, SimTime at, int line, long value) { }
        public void OnFault(TscSim.Core.Guest.Vcpu vcpu, TscSim.Core.Guest.GuestFault fault) { }
        public void OnClockRead(TscSim.Core.Guest.Vcpu vcpu, SimTime at, long nanoseconds, long cycles, int exits) => Reads++;
    }
}

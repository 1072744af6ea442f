using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;
using Xunit.Abstractions;

namespace TscSim.Tests.Guest;

/// <summary>
/// Linux 2.6.18 x86_64 (vanilla arch/x86_64/kernel/time.c) under KVM: the expected numbers come
/// from the kernel's own integer arithmetic (main_timer_handler's VXTIME_TSC branch,
/// handle_lost_ticks, include/linux/jiffies.h), computed by hand or with a 20-line script
/// (/work/research/linux-ticks.md §1.7 has the same table), not from this model.
/// </summary>
public class Linux2618TickTests(ITestOutputHelper output)
{
    private const long PitPeriodNs = 999_847;   // KVM PIT: ⌊LATCH × 10^9 / 1,193,182⌋, LATCH = 1193
    private const long TickNsec = 999_848;      // TICK_NSEC = SH_DIV(10^9, ACTHZ = 256,039, 8)
    // With QEMU's HPET (LEGSUP, 10^7 fs): hpet_tick = (10^12 + 5·10^6) / 10^7 = 100,000 counts = 1 ms of the
    // virtual clock; TICK_NSEC_HPET = SH_DIV(10^9, ACTHZ_HPET = SH_DIV(10^8, LATCH_HPET = 100,000, 8) = 256,000, 8)
    // = 3906 << 8 + (64,000 << 8 + 128,000) / 256,000 = 999,936 + 64 = 1,000,000 ns.
    private const long HpetPeriodNs = 1_000_000;
    private const long TickNsecHpet = 1_000_000;
    private const long DowntimeNs = 1_000_000;  // Migrated's downtime: QEMU's virtual clock, and so the HPET, stops

    private static Duration Ms(long ms) => Duration.FromMilliseconds(ms);

    private static HypervisorConfig Untrapped => HypervisorConfig.Find("kvm-2011")! with { Trapping = TrappingOverride.Off };

    private static readonly OsProfile NoHpet = OsProfiles.Linux2618X64 with
    {
        Ratings = [(ClocksourceKind.Tsc, 300), (ClocksourceKind.AcpiPm, 200)],
    };

    /// <summary>Boots on a 2 GHz host, live-migrates at 1 s (1 ms downtime) to <paramref name="mhz"/>, runs to <paramref name="endMs"/>.</summary>
    private static KernelRig Migrated(OsProfile profile, long mhz, long endMs)
    {
        var rig = new KernelRig(profile, Untrapped, [KernelRig.Host("a", 2_000), KernelRig.Host("b", mhz)]);
        rig.Hv.ScheduleLiveMigration(SimTime.FromDuration(Ms(1_000)), rig.Vm, rig.Hosts[1], Ms(1));
        rig.RunUntil(Ms(endMs));
        return rig;
    }

    private const long ResumeNs = 1_001_000_000;

    [Fact]
    public void Constants_follow_jiffies_h()
    {
        var rig = new KernelRig(OsProfiles.Linux2618X64, Untrapped, [KernelRig.Host("a", 2_000)]);
        var t = rig.Kernel.Tick2618!;
        Assert.Equal(1000, t.Hz);
        Assert.Equal(1193, t.Latch);          // (1193182 + 500) / 1000
        Assert.Equal(TickNsec, t.TickNsec);
        var r250 = new KernelRig(OsProfiles.Linux2618X64 with { Hz = 250 }, Untrapped, [KernelRig.Host("a", 2_000)]);
        Assert.Equal(4773, r250.Kernel.Tick2618!.Latch);            // (1193182 + 125) / 250
        Assert.Equal(4_000_250, r250.Kernel.Tick2618.TickNsec);       // ACTHZ = 63,996
        Assert.Same(OsProfiles.Linux2618X64, OsProfiles.Find("linux-2.6.18"));
        // QEMU's HPET advertises LEGSUP, so time_init takes hpet_use_timer and TICK_NSEC_HPET.
        rig.RunUntil(Ms(100));
        Assert.True(t.HpetTimer);
        Assert.Equal(100_000, t.HpetTick);
        Assert.Equal(TickNsecHpet, t.TickNsec);
        r250.RunUntil(Ms(100));
        Assert.Equal(400_000, r250.Kernel.Tick2618.HpetTick);   // (4·10^12 + 5·10^6) / 10^7
        Assert.Equal(4_000_000, r250.Kernel.Tick2618.TickNsec);  // SH_DIV(10^9, SH_DIV(2.5·10^7, 100,000, 8) = 64,000, 8)
        var r100 = new KernelRig(OsProfiles.Linux2618X64 with { Hz = 100 }, Untrapped, [KernelRig.Host("a", 2_000)]);
        r100.RunUntil(Ms(100));
        Assert.Equal(10_000_000, r100.Kernel.Tick2618!.TickNsec); // 39,062 << 8 + (12,800 << 8 + 12,800) / 25,600 = 9,999,872 + 128
    }

    [Fact]
    public void With_qemus_hpet_time_init_calibrates_against_it_and_its_timer_0_is_irq0_with_three_hpet_reads_per_tick()
    {
        var rig = new KernelRig(OsProfiles.Linux2618X64, Untrapped, [KernelRig.Host("a", 2_000)]);
        rig.RunUntil(Ms(1_000));
        var t = rig.Kernel.Tick2618!;
        var hpet = rig.Vm.Hpet;
        // hpet_calibrate_tsc: until 10^8 TSC cycles (50 ms at 2 GHz; 5·10^6 HPET counts), Δtsc·10^9 / (Δhpet·10^7/1000);
        // each iteration is one HPET MMIO exit, so the pair is read a few µs apart: within 1 kHz.
        Assert.InRange(rig.Kernel.TscKhz, 1_999_999, 2_000_001);
        Assert.StartsWith("hpet_calibrate_tsc", rig.Kernel.Calibration!.Method, StringComparison.Ordinal);
        Assert.DoesNotContain(rig.Kernel.Log, m => m.Message.Contains("pit_calibrate_tsc", StringComparison.Ordinal));
        // hpet_timer_stop_set_go: counter reset to 0, timer 0 periodic 32-bit, comparator and period hpet_tick, legacy on.
        Assert.True(hpet.Legacy);
        Assert.Equal(100_000UL, hpet.Timer0Period);
        Assert.Equal(0UL, hpet.Timer0Comparator % 100_000);
        // The enable came in the boot's first microseconds: 1 tick per ms of the virtual clock, 999 by 1 s.
        Assert.Equal(999, hpet.Timer0Interrupts);
        Assert.Equal(0, rig.Vm.Timers.PitTicks); // no pit_init
        // Those before the 8259 setup are dropped; each delivered one adds exactly TICK_NSEC_HPET to xtime.
        Assert.Equal(t.Interrupts, rig.Vm.Vcpus[0].InterruptsDelivered(InterruptSource.Hpet));
        Assert.InRange(t.Interrupts, 940, 960);
        long startNs = rig.Kernel.Switches[0].Time.NanosecondsFloor;
        Assert.Equal(startNs + t.Interrupts * TickNsecHpet, t.XtimeNs);
        Assert.Equal(0, t.LostTickEvents);
        // Per tick: HPET_COUNTER, HPET_T0_CMP, HPET_COUNTER (main_timer_handler) = 3 MMIO exits; the read loop's own
        // clock reads are TSC reads (untrapped: no exit).
        long mmioPerTick = rig.Vm.Platforms[0].Exits.Mmio;
        rig.RunUntil(Ms(1_100));
        Assert.Equal(3 * 100, rig.Vm.Platforms[0].Exits.Mmio - mmioPerTick);
    }

    [Fact]
    public void Under_xen_the_hpet_counts_guest_ns_over_16_so_hpet_tick_is_62_500()
    {
        // xen/arch/x86/hvm/hpet.c (4.1): period S_TO_FS × STIME_PER_HPET_TICK / 10^9 = 16,000,000 fs;
        // hpet_tick = (10^12 + 8·10^6) / 1.6·10^7 = 62,500 (62,500.5 truncated); 62,500 × 16 ns = 1 ms per tick.
        var rig = new KernelRig(OsProfiles.Linux2618X64, HypervisorConfig.Find("xen-native")!, [KernelRig.Host("a", 2_000)]);
        rig.RunUntil(Ms(1_000));
        var t = rig.Kernel.Tick2618!;
        Assert.Equal(16_000_000u, rig.Vm.HpetPeriodFemtoseconds);
        Assert.Equal(62_500, t.HpetTick);
        Assert.Equal(62_500UL, rig.Vm.Hpet.Timer0Period);
        Assert.Equal(TickNsecHpet, t.TickNsec);
        Assert.Equal(999, rig.Vm.Hpet.Timer0Interrupts); // one per ms from the enable in the boot's first µs
        Assert.InRange(rig.Kernel.TscKhz, 1_999_999, 2_000_001);
        Assert.Equal(rig.Kernel.Switches[0].Time.NanosecondsFloor + t.Interrupts * TickNsecHpet, t.XtimeNs);
    }

    [Fact]
    public void Hpet_ticks_missed_in_a_migration_downtime_are_never_caught_up_so_the_guest_loses_the_downtime()
    {
        // QEMU's HPET runs on the virtual clock, which stops while the VM is stopped (VMSTATE_TIMER keeps timer 0's
        // expiry in virtual-clock ns): no ticks arrive for the 100 ms downtime and none are reinjected; the TSC
        // is restored continuous, so main_timer_handler sees no lost ticks either. xtime stays 100 ms behind.
        var rig = new KernelRig(OsProfiles.Linux2618X64, Untrapped, [KernelRig.Host("a", 2_000), KernelRig.Host("b", 2_000)]);
        rig.Hv.ScheduleLiveMigration(SimTime.FromDuration(Ms(1_000)), rig.Vm, rig.Hosts[1], Ms(100));
        rig.RunUntil(Ms(1_500));
        var t = rig.Kernel.Tick2618!;
        Assert.Equal(1_499 - 100, rig.Vm.Hpet.Timer0Interrupts);
        Assert.Equal(0, t.LostTickEvents);
        Assert.All(rig.Reads().Where(r => r.TrueNs > 1_110_000_000), r => Assert.InRange(r.Ns - r.TrueNs, -101_000_000, -99_000_000));
    }

    [Fact]
    public void Without_an_hpet_one_50ms_pit_window_calibrates_and_each_interrupt_adds_one_tick_nsec_to_xtime()
    {
        var rig = new KernelRig(NoHpet, Untrapped, [KernelRig.Host("a", 2_000)]);
        rig.RunUntil(Ms(1_000));
        var t = rig.Kernel.Tick2618!;
        // 59,659 PIT counts = 49.99993 ms = 99,999,866 cycles at 2 GHz, / 50, plus the polling granularity.
        Assert.InRange(rig.Kernel.TscKhz, 1_999_997, 2_000_050);
        Assert.Equal(1, rig.Kernel.Calibration!.Attempts);
        Assert.Equal(ClocksourceKind.Tsc, rig.Kernel.Clocksource);
        long startNs = rig.Kernel.Switches[0].Time.NanosecondsFloor;
        Assert.Equal(startNs + t.Interrupts * TickNsec, t.XtimeNs);
        // The PIT was armed right after boot (≈ 50 ms): ⌊(1 s − t_arm) / 999,847 ns⌋ interrupts.
        Assert.InRange(t.Interrupts, (1_000_000_000 - startNs) / PitPeriodNs - 1, (1_000_000_000 - startNs) / PitPeriodNs);
        Assert.Equal(t.Interrupts, t.Jiffies);
        Assert.Equal(0, t.LostTickEvents);
    }

    [Fact]
    public void Fast_tsc_gains_jiffies_not_wall_time_and_falls_back_to_the_hpet_after_the_1001st_lost_tick_event()
    {
        var rig = Migrated(OsProfiles.Linux2618X64, 3_000, 3_500);
        var t = rig.Kernel.Tick2618!;
        // r = 3 GHz / 2 GHz = 1.5: the TSC offset beyond one tick grows 500 µs per 1 ms HPET interrupt, the
        // remainder is carried (last_tsc moved back), and an interrupt whose offset exceeds one more tick
        // (strictly > USEC_PER_TICK) counts lost = 1 — every 2nd interrupt (carry 500, 1000, then 1500 > 1000).
        // handle_lost_ticks switches when lost_count == 1000, i.e. on the 1001st event: ≈ the 2002nd interrupt
        // after the TSC sped up (±3 for where the carry starts and the µs truncations).
        Assert.NotNull(t.FellBackToHpet);
        double interruptsToFallback = (t.FellBackToHpet!.Value.NanosecondsFloor - ResumeNs) / (double)HpetPeriodNs;
        output.WriteLine($"fallback after {interruptsToFallback} interrupts; events {t.LostTickEvents}, lost {t.LostTicks}");
        Assert.InRange(interruptsToFallback, 2_002 - 3, 2_002 + 3);
        Assert.Contains(rig.Kernel.Log, m => m.Message == "Falling back to HPET" && m.Time == t.FellBackToHpet);
        Assert.Equal(ClocksourceKind.Hpet, rig.Kernel.Clocksource);
        Assert.Equal(ClocksourceKind.Hpet, rig.Kernel.Switches[^1].To);
        // Jiffies gained the 1001 lost ticks (≈ 1 s); xtime gained nothing: one tick_nsec per interrupt.
        Assert.Equal(1_001, t.LostTicks);
        Assert.Equal(t.Interrupts + t.LostTicks, t.Jiffies);
        long startNs = rig.Kernel.Switches[0].Time.NanosecondsFloor;
        Assert.Equal(startNs + t.Interrupts * TickNsecHpet, t.XtimeNs);
        // gettimeofday: xtime (behind by the downtime, which the HPET did not tick through) + the uncapped TSC
        // offset (carried remainder < 1 tick + 1.5 × elapsed): within [−1, +2] ticks of true time − downtime;
        // after the fallback the HPET offset is capped at one tick.
        foreach (var (trueNs, ns) in rig.Reads().Where(r => r.TrueNs > ResumeNs + 5_000_000))
        {
            Assert.InRange(ns - trueNs + DowntimeNs, -1_000_000, 2_000_000);
            if (trueNs > t.FellBackToHpet.Value.NanosecondsFloor + 1_000_000)
            {
                Assert.InRange(ns - trueNs + DowntimeNs, -1_000_000, 1_000_000);
            }
        }
    }

    [Fact]
    public void Without_an_hpet_the_lost_tick_events_continue_on_the_tsc_and_wall_time_still_does_not_gain()
    {
        var rig = Migrated(NoHpet, 3_000, 3_500);
        var t = rig.Kernel.Tick2618!;
        Assert.Null(t.FellBackToHpet);
        Assert.DoesNotContain(rig.Kernel.Log, m => m.Message == "Falling back to HPET");
        Assert.Contains(rig.Kernel.Log, m => m.Message.StartsWith("warning: many lost ticks.", StringComparison.Ordinal));
        Assert.Equal(ClocksourceKind.Tsc, rig.Kernel.Clocksource);
        // One event every 2nd interrupt for 2.499 s: ≈ 1250 events, each one lost tick.
        Assert.InRange(t.LostTickEvents, 1_240, 1_260);
        Assert.Equal(t.LostTickEvents, t.LostTicks);
        Assert.Equal(t.Interrupts + t.LostTicks, t.Jiffies);
        foreach (var (trueNs, ns) in rig.Reads().Where(r => r.TrueNs > ResumeNs + 5_000_000))
        {
            Assert.InRange(ns - trueNs, -1_000_000, 2_000_000);
        }
    }

    [Fact]
    public void Slow_tsc_loses_nothing_and_reads_never_step_back()
    {
        // r = 0.5: offset − one tick < 0 is clamped to 0, no lost ticks; the interpolation under-reads by
        // at most half a tick and the next interrupt jumps forward: |skew| ≤ 1 tick around the lag the
        // downtime left (the HPET's virtual clock stopped for it), no drift, monotonic reads.
        var rig = Migrated(OsProfiles.Linux2618X64, 1_000, 5_000);
        var t = rig.Kernel.Tick2618!;
        Assert.Equal(0, t.LostTickEvents);
        Assert.Equal(t.Interrupts, t.Jiffies);
        var reads = rig.Reads();
        foreach (var (trueNs, ns) in reads.Where(r => r.TrueNs > ResumeNs + 5_000_000))
        {
            Assert.InRange(ns - trueNs + DowntimeNs, -1_000_000, 1_000_000);
        }
        // Without an HPET (the PIT, reinjected by KVM) the downtime is caught up: no lag at all.
        var pit = Migrated(NoHpet, 1_000, 5_000);
        Assert.All(pit.Reads().Where(r => r.TrueNs > ResumeNs + 5_000_000), r => Assert.InRange(r.Ns - r.TrueNs, -1_000_000, 1_000_000));
        for (int i = 1; i < reads.Count; i++)
        {
            Assert.True(reads[i].Ns >= reads[i - 1].Ns, $"read {i} at {reads[i].TrueNs} ns stepped back");
        }
        Assert.All(reads, r => Assert.Equal(0, r.Ns % 1_000)); // µs resolution
    }

    [Fact]
    public void With_a_fast_tsc_the_only_step_back_is_the_lost_tick_sawtooth_of_at_most_one_tick()
    {
        // The rule of the real code: a read returns xtime + an uncapped TSC offset; at a lost-tick event the
        // interrupt adds one tick to xtime but drops a tick from the carried offset, so the next read can be
        // up to USEC_PER_TICK below the last one (never more); in HPET mode the offset is capped at one tick
        // (1000 µs) while xtime advances 1000 µs, so a step back there is under 1 µs; at the fallback itself
        // the uncapped TSC offset (up to 2.5 ticks) gives way to the capped HPET one: a step back of up to 1.5 ticks.
        var rig = Migrated(OsProfiles.Linux2618X64, 3_000, 3_500);
        long fallback = rig.Kernel.Tick2618!.FellBackToHpet!.Value.NanosecondsFloor;
        var reads = rig.Reads();
        int stepsBack = 0;
        for (int i = 1; i < reads.Count; i++)
        {
            long back = reads[i - 1].Ns - reads[i].Ns;
            if (back <= 0)
            {
                continue;
            }
            stepsBack++;
            Assert.True(reads[i].TrueNs > ResumeNs, "no step back before the TSC ran fast");
            long limit = reads[i - 1].TrueNs > fallback ? 1_000          // HPET mode: capped offset
                : reads[i].TrueNs > fallback ? 2_000_000                  // the pair straddling the switch: uncapped TSC offset (≤ carry + 1.5 ticks) → capped HPET offset
                : 1_000_000;                                              // TSC mode: the lost-tick sawtooth
            Assert.True(back <= limit, $"step back of {back} ns at {reads[i].TrueNs}");
        }
        Assert.True(stepsBack > 100); // the sawtooth is there (about one per lost-tick event the reads straddle)
    }

    [Fact]
    public void An_idle_guest_exits_per_tick_as_modelled()
    {
        // Idle 2-vCPU guest, HZ = 1000, kvm-2011 on Nehalem (no APIC virtualization), TSC not trapped.
        // Per local APIC tick (every vCPU, 1 ms of the host clock): wake from HLT (no exit: already out),
        //   EOI write to the xAPIC page (1 apic exit), hlt again (1 hlt exit)            → 2 exits.
        // Per HPET timer-0 tick (vCPU 0, every 1 ms of the virtual clock): HPET_COUNTER, HPET_T0_CMP and
        //   HPET_COUNTER reads (3 mmio exits), RDTSC (0: untrapped), 8259 EOI outb (1 pio exit), hlt again
        //   (1 hlt exit)                                                                  → 5 exits.
        // exits/s: AP = 2 × 1000; BSP = 2 × 1000 + 5 × 1000 = 7000, less a few where both ticks arrive
        // while one handler runs (then one hlt serves both).
        const string idle = "idle: hlt\njmp idle\n";
        var rig = new KernelRig(OsProfiles.Linux2618X64, Untrapped, [KernelRig.Host("a", 2_000)], vcpus: 2, workload: idle);
        rig.RunUntil(Ms(1_000));
        var bsp0 = Snapshot(rig.Vm.Platforms[0].Exits);
        var ap0 = Snapshot(rig.Vm.Platforms[1].Exits);
        rig.RunUntil(Ms(2_000));
        var bsp = Diff(Snapshot(rig.Vm.Platforms[0].Exits), bsp0);
        var ap = Diff(Snapshot(rig.Vm.Platforms[1].Exits), ap0);
        output.WriteLine($"bsp {bsp} ap {ap}");
        Assert.InRange(ap.Apic, 999, 1_001);
        Assert.InRange(ap.Hlt, 999, 1_001);
        Assert.Equal(ap.Apic + ap.Hlt, ap.Total);
        Assert.Equal(3 * 1_000, bsp.Mmio);
        Assert.Equal(1_000, bsp.Pio);
        Assert.InRange(bsp.Apic, 999, 1_001);
        Assert.InRange(bsp.Total, 6_900, 7_001);
        Assert.Equal(0, bsp.Rdtsc + ap.Rdtsc);
    }

    [Fact]
    public void An_amd_smp_guest_takes_the_tsc_away_from_gettimeofday_and_an_amd_up_guest_reads_cpuid_before_rdtsc()
    {
        // unsynchronized_tsc(): non-Intel with more than one CPU → notsc → VXTIME_HPET (an HPET exists).
        var smp = new KernelRig(OsProfiles.Linux2618X64, Untrapped, [KernelRig.Host("a", 2_000, CpuPresets.AmdZen2)], vcpus: 2);
        smp.RunUntil(Ms(200));
        Assert.Equal(ClocksourceKind.Hpet, smp.Kernel.Clocksource);
        Assert.Equal(ClocksourceKind.Hpet, smp.Kernel.Switches[0].To);
        var reads = smp.Reads();
        Assert.NotEmpty(reads);
        // One HPET MMIO exit per read (a read that a timer interrupt enters counts the handler's exits too).
        Assert.All(smp.Log.ClockReads, r => Assert.True(r.Exits >= 1));
        Assert.True(smp.Log.ClockReads.Count(r => r.Exits == 1) >= smp.Log.ClockReads.Count * 99 / 100);
        // UP: the TSC stays, and get_cycles_sync runs CPUID first (X86_FEATURE_SYNC_RDTSC is Intel's only):
        // with RDTSC trapped, every read is 1 CPUID + 1 RDTSC exit.
        var up = new KernelRig(OsProfiles.Linux2618X64, HypervisorConfig.Find("kvm-2011")! with { Trapping = TrappingOverride.On },
            [KernelRig.Host("a", 2_000, CpuPresets.AmdZen2)]);
        up.RunUntil(Ms(200));
        Assert.Equal(ClocksourceKind.Tsc, up.Kernel.Clocksource);
        Assert.All(up.Log.ClockReads, r => Assert.True(r.Exits >= 2));
        Assert.True(up.Log.ClockReads.Count(r => r.Exits == 2) >= up.Log.ClockReads.Count * 99 / 100);
        var e = up.Vm.Platforms[0].Exits;
        // Every TSC read of the time code runs CPUID first (reads, ticks, hpet_calibrate_tsc's loop) but one:
        // hpet_calibrate_tsc's rdtscl(tsc_start).
        Assert.Equal(e.Rdtsc, e.Cpuid + 1);
    }

    [Fact]
    public void At_hz_250_the_pit_ticks_every_4_000_227_ns_and_xtime_advances_4_000_250_ns_per_tick()
    {
        var rig = new KernelRig(NoHpet with { Hz = 250 }, Untrapped, [KernelRig.Host("a", 2_000)]);
        rig.RunUntil(Ms(1_000));
        var t = rig.Kernel.Tick2618!;
        Assert.Equal(4_000_227, rig.Vm.Timers.PitIntervalNs); // ⌊4773 × 10^9 / 1,193,182⌋
        long startNs = rig.Kernel.Switches[0].Time.NanosecondsFloor;
        Assert.InRange(t.Interrupts, (1_000_000_000 - startNs) / 4_000_227 - 1, (1_000_000_000 - startNs) / 4_000_227);
        Assert.Equal(startNs + t.Interrupts * 4_000_250, t.XtimeNs);
        Assert.InRange(rig.Vm.Vcpus[0].InterruptsDelivered(InterruptSource.LapicTimer), 235, 238); // the local APIC at HZ too
    }

    [Fact]
    public void Kvm_reinjects_the_pit_ticks_missed_during_a_migration_downtime_back_to_back_so_xtime_catches_up()
    {
        // i8254.c reinject mode: pending++ per expiry while the VM is paused; after the resume one tick per
        // guest EOI (kvm_pit_ack_irq), so the ≈ 100 ticks of a 100 ms downtime arrive within a few ms and
        // each adds tick_nsec to xtime (main_timer_handler sees no TSC time between them: offset 0).
        var rig = new KernelRig(NoHpet, Untrapped, [KernelRig.Host("a", 2_000), KernelRig.Host("b", 2_000)]);
        rig.Hv.ScheduleLiveMigration(SimTime.FromDuration(Ms(1_000)), rig.Vm, rig.Hosts[1], Ms(100));
        rig.RunUntil(Ms(1_100));
        long before = rig.Vm.Vcpus[0].InterruptsDelivered(InterruptSource.Pit);
        Assert.InRange(rig.Vm.Timers.PitPending, 99, 102);
        rig.RunUntil(Ms(1_105));
        long burst = rig.Vm.Vcpus[0].InterruptsDelivered(InterruptSource.Pit) - before;
        Assert.InRange(burst, 100, 108); // the missed ticks plus the ≤ 5 due in these 5 ms
        Assert.InRange(rig.Vm.Timers.PitPending, 0, 1);
        rig.RunUntil(Ms(1_500));
        var t = rig.Kernel.Tick2618!;
        long startNs = rig.Kernel.Switches[0].Time.NanosecondsFloor;
        Assert.InRange(t.Interrupts, (1_500_000_000 - startNs) / PitPeriodNs - 2, (1_500_000_000 - startNs) / PitPeriodNs);
        Assert.Equal(rig.Vm.Timers.PitTicks, t.Interrupts); // every expiry was delivered: none lost to the pause
        Assert.All(rig.Reads().Where(r => r.TrueNs > 1_110_000_000), r => Assert.InRange(r.Ns - r.TrueNs, -1_000_000, 1_000_000));
    }

    private readonly record struct Counts(long Apic, long Hlt, long Mmio, long Pio, long Rdtsc, long Total);

    private static Counts Snapshot(ExitStats e) => new(e.Apic, e.Hlt, e.Mmio, e.Pio, e.Rdtsc, e.Total);

    private static Counts Diff(Counts a, Counts b) =>
        new(a.Apic - b.Apic, a.Hlt - b.Hlt, a.Mmio - b.Mmio, a.Pio - b.Pio, a.Rdtsc - b.Rdtsc, a.Total - b.Total);
}

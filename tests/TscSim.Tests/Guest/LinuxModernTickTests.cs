using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;
using Xunit.Abstractions;

namespace TscSim.Tests.Guest;

/// <summary>
/// linux-modern's tick (NO_HZ_IDLE, TSC-deadline local APIC timer, x2APIC) under KVM: the
/// expected numbers come from Linux 6.18's arithmetic (kernel/time/tick-sched.c
/// tick_nohz_handler's hrtimer_forward by TICK_NSEC, kernel/time/timer.c calc_index's bucket
/// rounding, kernel/time/clocksource.c's WATCHDOG_INTERVAL), not from the model.
/// </summary>
public class LinuxModernTickTests(ITestOutputHelper output)
{
    private const long TickNsec = 1_000_000; // TICK_NSEC = (10^9 + HZ/2) / HZ at HZ = 1000

    private static Duration Ms(long ms) => Duration.FromMilliseconds(ms);

    private static HypervisorConfig KvmModern => HypervisorConfig.Find("kvm-modern")!;

    private const string Busy = """
        loop:   call clock_gettime
                work 200000cycles
                jmp loop
        """;

    private const string Idle = "idle: hlt\njmp idle\n";

    private readonly record struct Counts(long Apic, long Hlt, long Ext, long Preempt, long Rdtsc, long Total);

    private static Counts Snap(ExitStats e) => new(e.Apic, e.Hlt, e.ExternalInterrupt, e.PreemptionTimer, e.Rdtsc, e.Total);

    private static Counts Diff(Counts a, Counts b) =>
        new(a.Apic - b.Apic, a.Hlt - b.Hlt, a.Ext - b.Ext, a.Preempt - b.Preempt, a.Rdtsc - b.Rdtsc, a.Total - b.Total);

    [Fact]
    public void A_busy_guest_takes_exactly_hz_timer_interrupts_per_second_per_vcpu_with_three_exits_each()
    {
        // Busy: tick_nohz_handler re-arms the tick with hrtimer_forward(timer, now, TICK_NSEC): the expiries
        // are E0 + k × TICK_NSEC of the guest's clock, which here (kvm-clock, a constant host, no migration)
        // runs at true rate. Interrupts in a window of T ns = T / TICK_NSEC = 1000 per second per vCPU.
        // Exits per tick on Nehalem (no APIC virtualization, no VMX preemption timer) under kvm-modern:
        //   the host hrtimer's interrupt while the vCPU runs (1 external_interrupt)
        //   + apic_eoi: x2APIC WRMSR 0x80B (1 apic) + lapic_next_deadline: WRMSR 0x6E0 (1 apic); its RDTSC does not exit (untrapped)
        //   = 3 exits per tick: exits/s per vCPU = 3 × HZ = 3000.
        var rig = new KernelRig(OsProfiles.LinuxModern, KvmModern, [KernelRig.Host("a", 2_000)], vcpus: 2, workload: Busy);
        rig.RunUntil(Ms(1_000));
        long[] before = [.. rig.Vm.Vcpus.Select(v => v.InterruptsDelivered(InterruptSource.LapicTimer))];
        var e0 = rig.Vm.Platforms.Select(p => Snap(p.Exits)).ToArray();
        rig.RunUntil(Ms(2_000));
        for (int v = 0; v < 2; v++)
        {
            long interrupts = rig.Vm.Vcpus[v].InterruptsDelivered(InterruptSource.LapicTimer) - before[v];
            var d = Diff(Snap(rig.Vm.Platforms[v].Exits), e0[v]);
            output.WriteLine($"vcpu{v}: {interrupts} interrupts, exits {d}");
            Assert.Equal(1_000, interrupts);
            Assert.Equal(1_000, d.Ext);
            Assert.Equal(2_000, d.Apic);
            Assert.Equal(0, d.Hlt);
            Assert.Equal(3 * 1_000, d.Total);
            Assert.Equal(0, rig.Vm.Vcpus[v].InterruptsDelivered(InterruptSource.Ipi));
        }
        Assert.True(rig.Kernel.NoHz!.Jiffies >= 1_990); // tick_do_update_jiffies64 on the do_timer CPU
    }

    [Fact]
    public void With_the_vmx_preemption_timer_the_tick_expiry_is_a_preemption_timer_exit_and_a_trapped_tsc_adds_one_rdtsc_exit()
    {
        // Skylake under kvm-modern: KVM's hv timer; TSC trapped: lapic_next_deadline's rdtsc() exits too.
        // Exits per tick = 1 preemption_timer + 2 apic + 1 rdtsc = 4; the workload's clock reads through kvm-clock add their own RDTSC exits.
        var policy = KvmModern with { Trapping = TrappingOverride.On };
        var rig = new KernelRig(OsProfiles.LinuxModern, policy, [KernelRig.Host("a", 2_000, CpuPresets.IntelSkylake)], workload: "loop: work 100000cycles\njmp loop\n");
        rig.RunUntil(Ms(500));
        var e0 = Snap(rig.Vm.Platforms[0].Exits);
        long i0 = rig.Vm.Vcpus[0].InterruptsDelivered(InterruptSource.LapicTimer);
        rig.RunUntil(Ms(1_500));
        var d = Diff(Snap(rig.Vm.Platforms[0].Exits), e0);
        output.WriteLine($"exits {d}");
        Assert.Equal(1_000, rig.Vm.Vcpus[0].InterruptsDelivered(InterruptSource.LapicTimer) - i0);
        Assert.Equal(1_000, d.Preempt);
        Assert.Equal(0, d.Ext);
        Assert.Equal(2_000, d.Apic);
        Assert.Equal(1_000, d.Rdtsc);
        Assert.Equal(4 * 1_000, d.Total);
    }

    [Fact]
    public void An_idle_guest_takes_only_the_watchdogs_timer_interrupts()
    {
        // Idle (the workload halts), 1 vCPU, the TSC not exempt from the watchdog (Nehalem: no TSC_ADJUST → no
        // invariant-TSC exemption in the model). The tick stops at the first hlt; the only timer is the clocksource
        // watchdog's timer_list: expires = J0 + 500 k jiffies (WATCHDOG_INTERVAL = HZ/2), queued 500 − δ jiffies
        // ahead → wheel level 1 (63 ≤ Δ < 504), run at ((expires >> 3) + 1) << 3. One interrupt per run:
        // exactly 2 per second on average, each wake at a jiffies-grid instant.
        // Exits per wake (vCPU in HLT: no external-interrupt exit), all x2APIC WRMSRs (apic) but the last:
        //   EOI (1); the stopped sched_timer does not restart, so hrtimer_interrupt programs KTIME_MAX: the
        //   clockevent goes ONESHOT_STOPPED (lapic_timer_shutdown: LVT masked, TMICT 0: 2);
        //   the workload resumes: tick_nohz_idle_exit restarts the tick (lapic_timer_set_oneshot's LVT write,
        //   then the deadline: 2); its hlt: tick_nohz_idle_stop_tick programs the next watchdog run (1), HLT (1 hlt)
        //   = 6 apic + 1 hlt = 7 exits per wake.
        var rig = new KernelRig(OsProfiles.LinuxModern, KvmModern, [KernelRig.Host("a", 2_000)], workload: Idle);
        rig.RunUntil(Ms(1_000));
        var nohz = rig.Kernel.NoHz!;
        long runs0 = nohz.WatchdogRuns, int0 = rig.Vm.Vcpus[0].InterruptsDelivered(InterruptSource.LapicTimer);
        var e0 = Snap(rig.Vm.Platforms[0].Exits);
        rig.RunUntil(Ms(11_000));
        long runs = nohz.WatchdogRuns - runs0, interrupts = rig.Vm.Vcpus[0].InterruptsDelivered(InterruptSource.LapicTimer) - int0;
        var d = Diff(Snap(rig.Vm.Platforms[0].Exits), e0);
        output.WriteLine($"{runs} watchdog runs, {interrupts} interrupts, exits {d}");
        Assert.Equal(20, runs);                 // 10 s / 0.5 s
        Assert.Equal(runs, interrupts);         // nothing else wakes it
        Assert.Equal(6 * runs, d.Apic);
        Assert.Equal(runs, d.Hlt);
        Assert.Equal(7 * runs, d.Total);
        Assert.True(nohz.Stopped(0));
    }

    [Fact]
    public void On_an_idle_smp_guest_the_watchdog_rotates_over_the_vcpus_and_an_ipi_wakes_the_next_one()
    {
        // add_timer_on(&watchdog_timer, cpumask_next_wrap(cpu)): each run queues the next on the other vCPU, whose
        // idle timer base makes trigger_dyntick_cpu send a reschedule IPI. Per run: 1 timer interrupt on the CPU it
        // ran on + 1 IPI to the next. 2 vCPUs, 10 s: 20 runs, 10 per vCPU, 20 IPIs (one per run).
        var rig = new KernelRig(OsProfiles.LinuxModern, KvmModern, [KernelRig.Host("a", 2_000)], vcpus: 2, workload: Idle);
        rig.RunUntil(Ms(1_000));
        var nohz = rig.Kernel.NoHz!;
        long runs0 = nohz.WatchdogRuns;
        long[] t0 = [.. rig.Vm.Vcpus.Select(v => v.InterruptsDelivered(InterruptSource.LapicTimer))];
        long[] i0 = [.. rig.Vm.Vcpus.Select(v => v.InterruptsDelivered(InterruptSource.Ipi))];
        rig.RunUntil(Ms(11_000));
        Assert.Equal(20, nohz.WatchdogRuns - runs0);
        for (int v = 0; v < 2; v++)
        {
            long timers = rig.Vm.Vcpus[v].InterruptsDelivered(InterruptSource.LapicTimer) - t0[v];
            long ipis = rig.Vm.Vcpus[v].InterruptsDelivered(InterruptSource.Ipi) - i0[v];
            output.WriteLine($"vcpu{v}: {timers} timer interrupts, {ipis} IPIs");
            Assert.Equal(10, timers);
            Assert.Equal(10, ipis);
        }
    }

    [Fact]
    public void The_watchdog_timer_runs_at_the_wheel_bucket_of_each_expiry()
    {
        // calc_index: level 0 (Δ < 63) rounds to expires + 1; level 1 (63 ≤ Δ < 504) to ((expires >> 3) + 1) << 3.
        Assert.Equal(501, NoHzTick.BucketExpiry(500, 450));
        Assert.Equal(504, NoHzTick.BucketExpiry(500, 0));
        Assert.Equal(1_008, NoHzTick.BucketExpiry(1_000, 504));
        Assert.Equal(1_512, NoHzTick.BucketExpiry(1_504, 1_008)); // 1504 = 8 × 188: still rounded up past it
        Assert.Equal(576, NoHzTick.BucketExpiry(520, 0));        // level 2 (Δ ≥ 504): granularity 64
    }

    [Fact]
    public void A_halting_workload_keeps_its_registers_and_flags_across_the_idle_routine()
    {
        const string w = """
                mov rax, 7
                mov rcx, 11
                mov rdx, 13
                cmp rax, rcx        ; CF = 1, ZF = 0
                hlt
                probe rax
                probe rcx
                probe rdx
                jb below
                mov rbx, 0
                probe rbx
                hlt
                jmp done
        below:  mov rbx, 1
                probe rbx
        done:   hlt
                jmp done
        """;
        var rig = new KernelRig(OsProfiles.LinuxModern, KvmModern, [KernelRig.Host("a", 2_000)], workload: w);
        rig.RunUntil(Ms(3_000));
        var probes = rig.Log.Probes.Select(p => p.Value).ToArray();
        Assert.Equal([7L, 11, 13, 1], probes);
    }

    [Fact]
    public void An_idle_vcpu_with_no_timer_shuts_its_clockevent_down_and_is_not_woken_by_the_deadline_it_had()
    {
        // vCPU 1 works 100 µs, then halts: at that hlt its tick deadline (the next grid point) is still armed; with no
        // timer of its own (the watchdog's is elsewhere, it is not the do_timer CPU) tick_nohz_stop_tick cancels the
        // sched_timer and the clockevent is shut down (LVT masked): the armed deadline expires masked and wakes
        // nothing. Between watchdog visits (one every 2 × 0.5 s with 2 vCPUs, each bringing an IPI) it sleeps.
        const string w = """
            loop:   work 200000cycles
                    test rdi, rdi
                    jz loop
                    hlt
                    jmp loop
            """;
        var rig = new KernelRig(OsProfiles.LinuxModern, KvmModern, [KernelRig.Host("a", 2_000)], vcpus: 2, workload: w);
        rig.RunUntil(Ms(1_000));
        var nohz = rig.Kernel.NoHz!;
        long runs0 = nohz.WatchdogRuns;
        long t0 = rig.Vm.Vcpus[1].InterruptsDelivered(InterruptSource.LapicTimer), i0 = rig.Vm.Vcpus[1].InterruptsDelivered(InterruptSource.Ipi);
        rig.RunUntil(Ms(11_000));
        long timers = rig.Vm.Vcpus[1].InterruptsDelivered(InterruptSource.LapicTimer) - t0;
        long ipis = rig.Vm.Vcpus[1].InterruptsDelivered(InterruptSource.Ipi) - i0;
        output.WriteLine($"{nohz.WatchdogRuns - runs0} runs; vcpu1: {timers} timer interrupts, {ipis} IPIs");
        Assert.Equal(20, nohz.WatchdogRuns - runs0);
        Assert.Equal(10, ipis);   // the runs on vCPU 0 queue the next on vCPU 1
        Assert.Equal(10, timers); // its own runs (vCPU 0 busy keeps ticking and runs the others from its tick)
    }
}

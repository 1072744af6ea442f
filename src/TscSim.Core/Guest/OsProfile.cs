using System.Collections.Immutable;

namespace TscSim.Core.Guest;

/// <summary>The clocksources a guest kernel can read (Linux names; other OSes map onto them).</summary>
public enum ClocksourceKind
{
    /// <summary>The raw TSC with the guest's own calibration (mult/shift).</summary>
    Tsc,
    /// <summary>kvm-clock: the pvclock page plus the TSC.</summary>
    KvmClock,
    /// <summary>The HPET main counter (MMIO: an exit to the userspace device model in a VM).</summary>
    Hpet,
    /// <summary>The ACPI PM timer (port I/O, 24 bits).</summary>
    AcpiPm,
}

/// <summary>How a guest measures its TSC rate at boot.</summary>
public enum CalibrationKind
{
    /// <summary>Against the PIT (10 ms then 50 ms windows) with an HPET or PM-timer reference read around it (Linux pit_calibrate_tsc + tsc_read_refs).</summary>
    Pit,
    /// <summary>From the pvclock page (kvm_get_tsc_khz): no measurement, exact.</summary>
    Pvclock,
    /// <summary>
    /// 2.6.18 x86_64 time_init: hpet_calibrate_tsc (10^8 TSC cycles against the HPET) when the HPET has
    /// legacy replacement, else pit_calibrate_tsc: one 50 ms window of PIT channel 2 (latch 59,659),
    /// (end − start) / 50 kHz, no check.
    /// </summary>
    PitOnce50Ms,
    /// <summary>2.6.18 i386 calculate_cpu_khz: three 30 ms windows of PIT channel 2 (latch 35,795), the last counts, (Δ + 15) / 30 kHz.</summary>
    Pit3x30Ms,
}

/// <summary>How the kernel keeps wall time.</summary>
public enum TimekeepingKind
{
    /// <summary>Generic timekeeping: a clocksource counter accumulated onto a base (Linux since 2.6.18 i386 / 2.6.21 x86_64; the other OS profiles by analogy).</summary>
    Clocksource,
    /// <summary>
    /// Linux 2.6.18 x86_64 (arch/x86_64/kernel/time.c, no CONFIG_GENERIC_TIME): xtime advances one
    /// tick_nsec per timer interrupt, the TSC (or HPET) only interpolates since the last one.
    /// </summary>
    Tick2618X64,
}

/// <summary>Where the profile's timer interrupt comes from and what it does.</summary>
public enum TickKind
{
    /// <summary>No timer interrupt: time is accumulated by a 10 ms kernel timer (the model before issue 16).</summary>
    KernelTimer,
    /// <summary>Linux 2.6.18 x86_64: PIT channel 0 (IRQ0 through the 8259) on vCPU 0 plus every vCPU's periodic local APIC timer (<see cref="TickTimekeeping"/>).</summary>
    Pit2618,
    /// <summary>Modern Linux: NO_HZ_IDLE, the periodic tick while busy, the local APIC timer in TSC-deadline mode (<see cref="NoHzTick"/>).</summary>
    NoHzIdle,
    /// <summary>A periodic local APIC timer at <see cref="OsProfile.Hz"/> on every vCPU, whose handler accumulates the clocksource (update_wall_time or the OS's equivalent).</summary>
    PeriodicLapic,
}

/// <summary>Which clocksource watchdog the guest runs.</summary>
public enum WatchdogKind
{
    /// <summary>None: a clocksource, once chosen, is kept.</summary>
    None,
    /// <summary>The 2.6.21–5.x watchdog: every 0.5 s, skew threshold WATCHDOG_THRESHOLD = 62.5 ms.</summary>
    Legacy,
    /// <summary>The modern watchdog: every 0.5 s, per-source uncertainty margins (≈124 µs each for MHz-class sources).</summary>
    Modern,
}

/// <summary>
/// A guest operating system as far as timekeeping goes: which clocksources it has and how it
/// rates them, how it calibrates the TSC, whether it checks TSCs across vCPUs at boot and with
/// a watchdog, whether it honours pvclock's STABLE flag, and whether it reacts when the
/// hypervisor tells it that its TSC is trapped or changed rate. Facts and assumptions per
/// profile are in docs/model.md ("Guest kernel").
/// </summary>
public sealed record OsProfile
{
    /// <summary>Preset name (<c>linux-modern</c>, …).</summary>
    public required string Name { get; init; }

    /// <summary>One line for <c>tscsim presets</c>.</summary>
    public required string Description { get; init; }

    /// <summary>Where the choices come from.</summary>
    public required string Source { get; init; }

    /// <summary>Clocksources the OS has, with their ratings (higher wins).</summary>
    public required ImmutableArray<(ClocksourceKind Kind, int Rating)> Ratings { get; init; }

    /// <summary>The kernel lowers kvm-clock to this rating when the TSC is invariant (Linux: 299), or null.</summary>
    public int? KvmclockRatingWithInvariantTsc { get; init; }

    /// <summary>A forced clocksource (the kernel's <c>clocksource=</c> option), or null to select by rating.</summary>
    public ClocksourceKind? Clocksource { get; init; }

    public CalibrationKind Calibration { get; init; } = CalibrationKind.Pit;

    /// <summary>
    /// tsc_read_refs' bracket limit in TSC cycles during the PIT calibration: 2.6.37's
    /// SMI_TRESHOLD 50,000 by default (also for the non-Linux profiles, whose calibration is
    /// modelled on Linux's), today's TSC_DEFAULT_THRESHOLD 0x20000 for linux-modern.
    /// </summary>
    public long ReadRefsThresholdCycles { get; init; } = KernelLibrary.SmiThresholdCycles;

    /// <summary>Runs check_tsc_warp between vCPU 0 and each other vCPU at bring-up.</summary>
    public bool WarpTest { get; init; }

    public WatchdogKind Watchdog { get; init; }

    /// <summary>Accepts PVCLOCK_TSC_STABLE_BIT and then skips the global last_value guard.</summary>
    public bool HonoursStableFlag { get; init; }

    /// <summary>Reacts to a notification from the hypervisor (recomputes its TSC rate, acknowledges).</summary>
    public bool ReactsToNotification { get; init; }

    /// <summary>
    /// Registers for Hyper-V re-enlightenment (writes REENLIGHTENMENT_CONTROL and
    /// TSC_EMULATION_CONTROL) and so answers one: re-reads the TSC frequency and writes 0 to
    /// TSC_EMULATION_STATUS. In Linux only a KVM host on Hyper-V registers (set_hv_tscchange_cb's
    /// one caller is kvm_x86_vendor_init), so no plain Linux profile has it.
    /// </summary>
    public bool RegistersReenlightenment { get; init; }

    /// <summary>Delay between the notification and the guest's response (Linux's re-enlightenment work: HZ/10).</summary>
    public Time.Duration NotificationDelay { get; init; } = Time.Duration.FromMilliseconds(100);

    /// <summary>
    /// Linux 2.6.18 i386's read (kernel/time/clocksource.h <c>cyc2ns</c>, arch/i386/kernel/tsc.c
    /// <c>read_tsc</c> without a cycle_last clamp): <c>((now − cycle_last) &amp; mask) × mult &gt;&gt; shift</c>
    /// in u64, so a TSC behind cycle_last wraps to ≈ 2^(64 − shift) ns forward (2^42 ns ≈ 73 min with
    /// the TSC's shift 22), and the TSC is registered with clocksource_khz2mult(tsc_khz, 22).
    /// </summary>
    public bool UnsignedReadWraps { get; init; }

    /// <summary>
    /// Linux 2.6.18 i386's verify_tsc_freq (arch/i386/kernel/tsc.c): every 10 s it compares the
    /// TSC's progress with jiffies and marks the TSC unstable when it ran below 3/4 of the rate.
    /// </summary>
    public bool VerifiesTscFrequency { get; init; }

    /// <summary>
    /// The TSC's rating once marked unstable, when it stays registered (2.6.18 i386
    /// tsc_update_callback: 50), or null: an unstable TSC is no longer usable (modern kernels, 0).
    /// </summary>
    public int? UnstableTscRating { get; init; }

    /// <summary>How wall time is kept.</summary>
    public TimekeepingKind Timekeeping { get; init; } = TimekeepingKind.Clocksource;

    /// <summary>The timer-interrupt rate (the guest key <c>hz</c>; 0 = the profile takes no modelled tick).</summary>
    public int Hz { get; init; }

    /// <summary>Where the timer interrupt comes from.</summary>
    public TickKind TickKind { get; init; } = TickKind.KernelTimer;

    /// <summary>The tick rates the profile accepts for <see cref="Hz"/> (empty: <c>hz</c> cannot be set).</summary>
    public ImmutableArray<int> HzChoices { get; init; } = [];

    /// <summary>What the profile's tick is, for <c>tscsim presets</c> (with its sources; UNCONFIRMED marks assumptions).</summary>
    public string Tick { get; init; } = "no timer interrupt modelled: time is accumulated by a 10 ms kernel timer";

    /// <summary>The clocksource this profile would use with nothing ruled out.</summary>
    public ClocksourceKind Preferred => Ratings.MaxBy(r => r.Rating).Kind;
}

/// <summary>The guest OS presets.</summary>
public static class OsProfiles
{
    public static OsProfile LinuxModern { get; } = new()
    {
        Name = "linux-modern",
        Description = "Linux 5.x/6.x: kvm-clock (400; 299 with invariant TSC), STABLE honoured, modern watchdog, warp test; ignores notifications and Hyper-V re-enlightenment (no Linux path rescales a running tsc clocksource)",
        Tick = "NO_HZ_IDLE at HZ 1000 (hz: 300, 250 or 100 selectable; the distribution's HZ is UNCONFIRMED: 1000 Ubuntu, 250 Debian/RHEL): "
            + "while busy the tick hrtimer every TICK_NSEC, each a TSC-deadline interrupt, x2APIC EOI (WRMSR 0x80B), rdtsc + WRMSR 0x6E0 "
            + "(kernel/time/tick-sched.c tick_nohz_handler, apic.c lapic_next_deadline); a workload's hlt is the idle loop: the tick stops "
            + "and the next event is the next timer (the clocksource watchdog's 0.5 s timer_list, rotating over the CPUs, an IPI waking an "
            + "idle one; capped at timekeeping_max_deferment on the last do_timer CPU); ASSUMPTIONS: no other kernel timer (RCU, vmstat, "
            + "writeback) is modelled, PV-EOI is not used",
        TickKind = TickKind.NoHzIdle,
        Hz = 1000,
        HzChoices = [1000, 300, 250, 100],
        Source = "arch/x86/kernel/kvmclock.c, tsc.c, tsc_sync.c, kernel/time/clocksource.c; arch/x86/hyperv/hv_init.c set_hv_tscchange_cb (only caller: KVM as a host)",
        Ratings = [(ClocksourceKind.KvmClock, 400), (ClocksourceKind.Tsc, 300), (ClocksourceKind.Hpet, 250), (ClocksourceKind.AcpiPm, 200)],
        KvmclockRatingWithInvariantTsc = 299,
        Calibration = CalibrationKind.Pvclock,
        ReadRefsThresholdCycles = KernelLibrary.TscDefaultThresholdCycles, // without kvm-clock it calibrates on the PIT
        WarpTest = true,
        Watchdog = WatchdogKind.Modern,
        HonoursStableFlag = true,
    };

    /// <summary>
    /// HYPOTHETICAL: linux-modern plus an answer to the 2011 thread's <c>notify_guest</c> (Graf's
    /// suggestion): re-reads its TSC rate and acknowledges. No real Linux does this.
    /// </summary>
    public static OsProfile LinuxNotifyAware { get; } = LinuxModern with
    {
        Name = "linux-notify-aware",
        Description = "HYPOTHETICAL (not real Linux): linux-modern that answers the proposal's notify_guest by re-reading its TSC rate and acknowledging",
        Source = "the 2011 thread's notify_guest proposal; no Linux code",
        ReactsToNotification = true,
    };

    /// <summary>
    /// Linux 2.6.18 x86_64 (vanilla, arch/x86_64/kernel/time.c): the tick-driven kernel most 2011
    /// RHEL5/CentOS5 guests ran; also what <c>linux-2.6.18</c> names.
    /// </summary>
    public static OsProfile Linux2618X64 { get; } = new()
    {
        Name = "linux-2.6.18-x86_64",
        Description = "Linux 2.6.18 x86_64 (RHEL 5 era; also 'linux-2.6.18'): xtime += tick_nsec per timer interrupt, TSC interpolation "
            + "clamped at last_tsc, lost ticks only advance jiffies, 'Falling back to HPET' after 1000 lost-tick events, hpet_calibrate_tsc with an HPET (else one 50 ms PIT calibration)",
        Source = "vanilla 2.6.18 arch/x86_64/kernel/time.c (main_timer_handler, handle_lost_ticks, do_gettimeoffset_tsc/_hpet, "
            + "pit_calibrate_tsc, hpet_init, hpet_timer_stop_set_go, hpet_calibrate_tsc, time_init, unsynchronized_tsc), kernel/timer.c (do_timer, update_wall_time, current_tick_length), include/linux/jiffies.h (LATCH, TICK_NSEC, TICK_NSEC_HPET), include/asm-x86_64/hpet.h (HPET_TICK_RATE); QEMU 0.14 hw/hpet.c",
        Ratings = [(ClocksourceKind.Tsc, 300), (ClocksourceKind.Hpet, 250), (ClocksourceKind.AcpiPm, 200)],
        Calibration = CalibrationKind.PitOnce50Ms,
        WarpTest = false,
        Watchdog = WatchdogKind.None,
        Timekeeping = TimekeepingKind.Tick2618X64,
        TickKind = TickKind.Pit2618,
        Hz = 1000,
        HzChoices = [1000, 250, 100],
        Tick = "HZ 1000 (assumed distribution setting, RHEL5 x86_64: UNCONFIRMED; upstream Kconfig.hz default was 250; hz: 250 or 100 selectable): "
            + "with an HPET that has legacy replacement (QEMU's does), time_init sets hpet_use_timer: IRQ0 is HPET timer 0, periodic "
            + "every hpet_tick counts, xtime += TICK_NSEC_HPET (1 ms at HZ 1000), TSC calibrated by hpet_calibrate_tsc, main_timer_handler "
            + "reads HPET_COUNTER, HPET_T0_CMP, HPET_COUNTER (3 MMIO exits), 1 RDTSC (+CPUID on AMD), 8259 EOI; without an HPET, "
            + "PIT channel 0 mode 2, LATCH = (1193182 + HZ/2)/HZ, pit_calibrate_tsc, 1 RDTSC (+CPUID on AMD), 8259 EOI; IRQ0 through the "
            + "8259 (the IO-APIC route is not modelled) on vCPU 0; every vCPU's local APIC timer periodic at HZ (xAPIC EOI); idle vCPUs "
            + "halt until the next interrupt; Hyper-V VMs have no HPET; Xen VMs get Xen's period (16 ns) with QEMU's HPET logic (ASSUMPTION)",
    };

    /// <summary>
    /// Windows Server 2016 that registers for Hyper-V re-enlightenment and answers it. The TLFS
    /// documents re-enlightenment for an L1 hypervisor (nested virtualization: Windows with the
    /// Hyper-V role); that a plain Windows guest registers is an ASSUMPTION.
    /// </summary>
    public static OsProfile Windows2016 { get; } = new()
    {
        Name = "windows-2016",
        Description = "Windows Server 2016: QPC on the invariant TSC; registers for Hyper-V re-enlightenment and acknowledges it (TLFS nested-virtualization case; a plain guest registering is an ASSUMPTION)",
        Source = "Hyper-V TLFS \"Nested Virtualization\" (re-enlightenment, TSC emulation control/status MSRs 0x40000106-0x40000108); assumptions in docs/model.md",
        Ratings = [(ClocksourceKind.Tsc, 300), (ClocksourceKind.AcpiPm, 200)],
        Calibration = CalibrationKind.Pit,
        Watchdog = WatchdogKind.None,
        RegistersReenlightenment = true,
        TickKind = TickKind.PeriodicLapic,
        Hz = 64,
        Tick = "64 Hz clock interrupt as windows-2008r2 (secondary sources: UNCONFIRMED); ASSUMPTION: a periodic local APIC timer on "
            + "every CPU, the dynamic tick of Windows 8 and later (idle CPUs skipping ticks) not modelled; CPU 0 reads the TSC once per tick",
    };

    /// <summary>
    /// Linux 2.6.18 with the clocksource framework (i386's GENERIC_TIME): the TSC clocksource's
    /// elapsed cycles advance time. The profile TscSim called <c>linux-2.6.18</c> before issue 16.
    /// </summary>
    public static OsProfile Linux2618 { get; } = new()
    {
        Name = "linux-2.6.18-i386",
        Description = "Linux 2.6.18 i386 (GENERIC_TIME): no kvm-clock, tsc (300; 50 once unstable, tsc_update_callback) clocksource calibrated by "
            + "calculate_cpu_khz (3 x 30 ms PIT windows, (delta + 15) / 30), no watchdog, no warp test; verify_tsc_freq every 10 s; "
            + "a TSC read behind cycle_last wraps ≈ 2^42 ns (73 min) forward",
        UnsignedReadWraps = true,
        VerifiesTscFrequency = true,
        UnstableTscRating = 50,
        TickKind = TickKind.Pit2618,
        Hz = 1000,
        HzChoices = [1000, 250, 100],
        Tick = "HZ 1000 (assumed distribution setting: UNCONFIRMED; upstream default 250; hz: 250 or 100 selectable): PIT channel 0 mode 2 "
            + "(LATCH), IRQ0 through the 8259 on vCPU 0: timer_interrupt → do_timer → update_wall_time reads the clocksource once "
            + "(1 RDTSC, HPET or PM-timer read), 8259 EOI; every vCPU's local APIC timer periodic at HZ (xAPIC EOI); idle vCPUs halt "
            + "until the next interrupt (arch/i386/kernel/time.c, kernel/timer.c)",
        Source = "vanilla 2.6.18 arch/i386/kernel/tsc.c (calculate_cpu_khz, clocksource_tsc, tsc_update_callback, mark_tsc_unstable, "
            + "verify_tsc_freq, unsynchronized_tsc), include/asm-i386/mach-default/mach_timer.h, kernel/timer.c (update_wall_time); "
            + "no watchdog (2.6.21) and no tsc_sync.c in 2.6.18",
        Ratings = [(ClocksourceKind.Tsc, 300), (ClocksourceKind.Hpet, 250), (ClocksourceKind.AcpiPm, 200)],
        Calibration = CalibrationKind.Pit3x30Ms,
        WarpTest = false,
        Watchdog = WatchdogKind.None,
    };

    public static OsProfile FreeBsd8 { get; } = new()
    {
        Name = "freebsd-8",
        Description = "FreeBSD 8: timecounters by quality, ACPI-fast (900; the first registered wins the tie) = HPET (900) > TSC (-100 on SMP); no kvm-clock",
        Source = "sys/dev/acpica/acpi_timer.c (ACPI-fast 900, ACPI-safe 850), sys/amd64 tsc.c of 7.x/8.x (TSC -100 on SMP unless "
            + "kern.timecounter.smp_tsc); HPET 900 in 8.x UNCONFIRMED; see /work/research/linux-ticks.md §4.1",
        Ratings = [(ClocksourceKind.AcpiPm, 900), (ClocksourceKind.Hpet, 900), (ClocksourceKind.Tsc, -100)],
        Tick = "kern.hz = 1000 (HZ default on x86, sys/kern/subr_param.c; 100 in a VM if 8.x already had HZ_VM: UNCONFIRMED, so 1000 "
            + "is an ASSUMPTION): each CPU's local APIC timer periodic at hz (ASSUMPTION: the 8.x event-timer code and any stathz/profhz "
            + "interrupts are not modelled), EOI per tick; CPU 0's hardclock → tc_windup reads the timecounter once per tick (ACPI-fast: a "
            + "PM-timer PIO read; tc_tick = 1 at hz 1000: ASSUMPTION)",
        TickKind = TickKind.PeriodicLapic,
        Hz = 1000,
        Calibration = CalibrationKind.Pit,
        Watchdog = WatchdogKind.None,
    };

    public static OsProfile Solaris10 { get; } = new()
    {
        Name = "solaris-10",
        Description = "Solaris 10: gethrtime from the TSC calibrated against the PIT, no fallback, no watchdog",
        Tick = "100 Hz (hz: 1000 = hires_tick=1; Solaris Tunable Parameters Reference Manual 817-0404): ASSUMPTION that every CPU's "
            + "local APIC timer is periodic at hz (Solaris's cyclic subsystem programs it one-shot per cyclic; not modelled) and that "
            + "clock() on CPU 0 reads the TSC (gethrtime) once per tick; EOI per tick",
        TickKind = TickKind.PeriodicLapic,
        Hz = 100,
        HzChoices = [100, 1000],
        Source = "OpenSolaris i86pc tsc.c (tsc_gethrtime); assumptions in docs/model.md",
        Ratings = [(ClocksourceKind.Tsc, 300)],
        Calibration = CalibrationKind.Pit,
        Watchdog = WatchdogKind.None,
    };

    public static OsProfile Windows2008R2 { get; } = new()
    {
        Name = "windows-2008r2",
        Description = "Windows Server 2008 R2 without enlightenments: QueryPerformanceCounter on the ACPI PM timer (3.579545 MHz)",
        Tick = "64 Hz clock interrupt (15.625 ms; timeBeginPeriod can raise it to 1 kHz; secondary sources: UNCONFIRMED): ASSUMPTION "
            + "that it is a periodic local APIC timer on every CPU (the platform clock source, RTC or HPET, is not modelled) and that "
            + "the clock owner (CPU 0) reads the QPC source (PM timer) once per tick; EOI per tick",
        TickKind = TickKind.PeriodicLapic,
        Hz = 64,
        Source = "QPC frequency 3,579,545 Hz on multiprocessor systems without invariant TSC; assumptions in docs/model.md",
        Ratings = [(ClocksourceKind.AcpiPm, 200), (ClocksourceKind.Tsc, 100)],
        Calibration = CalibrationKind.Pit,
        Watchdog = WatchdogKind.None,
    };

    /// <summary>Every preset, in the order <c>tscsim presets</c> lists them.</summary>
    public static ImmutableArray<OsProfile> All { get; } = [LinuxModern, LinuxNotifyAware, Linux2618X64, Linux2618, FreeBsd8, Solaris10, Windows2008R2, Windows2016];

    /// <summary>Names accepted for a preset besides its own: <c>linux-2.6.18</c> is the x86_64 kernel (most 2011 RHEL5/CentOS5 guests were x86_64).</summary>
    public static IReadOnlyList<(string Alias, string Name)> Aliases { get; } = [("linux-2.6.18", "linux-2.6.18-x86_64")];

    /// <summary>A preset by name or alias, or null.</summary>
    public static OsProfile? Find(string name)
    {
        foreach (var (alias, target) in Aliases)
        {
            if (alias == name)
            {
                name = target;
            }
        }
        return All.FirstOrDefault(p => p.Name == name);
    }

    /// <summary>The clocksource names used in scenario files (<c>tsc</c>, <c>kvm-clock</c>, <c>hpet</c>, <c>acpi_pm</c>).</summary>
    public static string NameOf(ClocksourceKind kind) => kind switch
    {
        ClocksourceKind.Tsc => "tsc",
        ClocksourceKind.KvmClock => "kvm-clock",
        ClocksourceKind.Hpet => "hpet",
        _ => "acpi_pm",
    };

    /// <summary>Parses a clocksource name, or null.</summary>
    public static ClocksourceKind? ParseClocksource(string name) => name switch
    {
        "tsc" => ClocksourceKind.Tsc,
        "kvm-clock" => ClocksourceKind.KvmClock,
        "hpet" => ClocksourceKind.Hpet,
        "acpi_pm" => ClocksourceKind.AcpiPm,
        _ => null,
    };
}

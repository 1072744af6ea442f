using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// Linux 2.6.18 x86_64 timekeeping (vanilla <c>arch/x86_64/kernel/time.c</c>; x86_64 did not
/// select CONFIG_GENERIC_TIME in 2.6.18): wall time (xtime) advances by exactly
/// <see cref="TickNsec"/> per timer interrupt (<c>do_timer</c> → <c>update_times</c> →
/// <c>update_wall_time</c>, which without GENERIC_TIME accumulates one <c>cycle_interval</c> of
/// the jiffies clocksource per call, kernel/timer.c); the TSC (mode VXTIME_TSC) or the HPET
/// (VXTIME_HPET) only interpolates since the last interrupt. Lost ticks detected from the TSC
/// advance jiffies only (<c>jiffies += lost</c>; wall_jiffies catches up in the same
/// <c>update_times</c>), so they never reach xtime; after 1000 lost-tick events
/// <c>handle_lost_ticks</c> falls back to the HPET when one exists.
/// </summary>
/// <remarks>
/// Integer arithmetic with the kernel's types (unsigned long products modulo 2^64, int offsets).
/// Modelled simplifications: the jiffies clocksource's NTP error feedback
/// (<c>clocksource_adjust</c>), which keeps xtime within a few ns of n × tick_nsec, is replaced by
/// exactly n × tick_nsec. With an HPET that has legacy replacement (LEGSUP, as QEMU's and chipsets'),
/// time_init sets <c>hpet_use_timer</c> (<see cref="UseHpetTimer"/>): IRQ0 is the HPET's timer 0,
/// xtime advances TICK_NSEC_HPET per interrupt, and main_timer_handler takes
/// <c>offset = hpet_readl(HPET_T0_CMP) − hpet_tick</c> (when the interrupt was due) and
/// <c>delay = hpet_readl(HPET_COUNTER) − offset</c> (how late it is handled), moving last_tsc back by
/// <c>quot × delay / tsc_quot</c> TSC cycles. Without it, IRQ0 is the PIT and delay is 0 (a PM timer
/// is present, so the PIT is not latched).
/// </remarks>
public sealed class TickTimekeeping : ITimekeeping
{
    /// <summary>US_SCALE (time.c): tsc_quot and quot are 32.32 fixed point.</summary>
    public const int UsScale = 32;

    /// <summary>CLOCK_TICK_RATE = PIT_TICK_RATE (include/asm-x86_64/timex.h).</summary>
    public const long ClockTickRate = 1_193_182;

    /// <summary>handle_lost_ticks: the lost_count at which it warns (and falls back).</summary>
    public const long LostCountLimit = 1000;

    private enum VxtimeMode { Tsc = 1, Hpet = 2, Pmtmr = 3 }

    private readonly GuestKernel _kernel;
    private readonly IGuestMachine _machine;
    private readonly bool _hasHpet;
    private readonly Snapshot[] _readSnapshot;
    private VxtimeMode _mode;
    private long _cpuKhz;
    private long _tscQuot;      // vxtime.tsc_quot = (USEC_PER_MSEC << US_SCALE) / cpu_khz
    private long _quot;         // vxtime.quot = (USEC_PER_SEC << US_SCALE) / vxtime_hz
    private ulong _lastTsc;     // vxtime.last_tsc
    private int _last;          // vxtime.last (HPET counter at the last interrupt)
    private long _lastPm;       // PM-timer mode: the PM timer at the last interrupt
    private long _xtimeNs;      // xtime, as ns
    private long _lostCount;    // handle_lost_ticks' static lost_count
    private bool _warned;       // handle_lost_ticks' static warned

    private readonly record struct Snapshot(VxtimeMode Mode, long XtimeNs, long Quot, long TscQuot);

    /// <summary>HPET_TICK_RATE = HZ × 100000 (include/asm-x86_64/hpet.h, 2.6.18): the nominal rate TICK_NSEC_HPET assumes, whatever the HPET's period.</summary>
    public static long HpetTickRate(int hz) => hz * 100_000L;

    /// <summary>Timekeeping of a kernel at <paramref name="hz"/> with or without an HPET.</summary>
    internal TickTimekeeping(GuestKernel kernel, IGuestMachine machine, int vcpus, int hz, bool hasHpet)
    {
        _kernel = kernel;
        _machine = machine;
        _hasHpet = hasHpet;
        _readSnapshot = new Snapshot[vcpus];
        Hz = hz;
        UsecPerTick = 1_000_000 / hz;
        Latch = (ClockTickRate + hz / 2) / hz;
        long actHz = ShDiv(ClockTickRate, Latch, 8);
        TickNsec = ShDiv(1_000_000_000, actHz, 8);
        HpetTick = (1_000_000_000_000_000L / hz + machine.HpetPeriodFemtoseconds / 2) / machine.HpetPeriodFemtoseconds;
    }

    /// <summary>SH_DIV(NOM, DEN, LSH) (include/linux/jiffies.h).</summary>
    public static long ShDiv(long nom, long den, int lsh) => ((nom / den) << lsh) + (((nom % den) << lsh) + den / 2) / den;

    /// <summary>HZ.</summary>
    public int Hz { get; }

    /// <summary>USEC_PER_TICK = USEC_PER_SEC / HZ.</summary>
    public int UsecPerTick { get; }

    /// <summary>LATCH = (CLOCK_TICK_RATE + HZ/2) / HZ: PIT channel 0's count.</summary>
    public long Latch { get; }

    /// <summary>
    /// xtime's advance per interrupt: TICK_NSEC from ACTHZ (999,848 ns at HZ = 1000) with the PIT,
    /// TICK_NSEC_HPET from ACTHZ_HPET (exactly 1,000,000 ns at HZ = 1000) with the HPET's timer.
    /// </summary>
    public long TickNsec { get; private set; }

    /// <summary>hpet_use_timer: IRQ0 is the HPET's timer 0 (set by <see cref="UseHpetTimer"/>).</summary>
    public bool HpetTimer { get; private set; }

    /// <summary>
    /// time_init with hpet_use_timer: tick_nsec = TICK_NSEC_HPET = SH_DIV(10^9, ACTHZ_HPET, 8),
    /// ACTHZ_HPET = SH_DIV(HPET_TICK_RATE, LATCH_HPET, 8), LATCH_HPET = (HPET_TICK_RATE + HZ/2) / HZ
    /// (include/linux/jiffies.h, 2.6.18).
    /// </summary>
    internal void UseHpetTimer()
    {
        long rate = HpetTickRate(Hz);
        long latchHpet = (rate + Hz / 2) / Hz;
        TickNsec = ShDiv(1_000_000_000, ShDiv(rate, latchHpet, 8), 8);
        HpetTimer = true;
    }

    /// <summary>vxtime.last as time_init_gtod and handle_lost_ticks set it: HPET_T0_CMP − hpet_tick with the HPET's timer, else HPET_COUNTER.</summary>
    private int HpetLast(SimTime at) => unchecked(HpetTimer ? (int)((uint)_machine.PeekHpetComparator0 - (uint)HpetTick) : (int)_machine.PeekHpetCounter(at));

    /// <summary>hpet_tick = (FSEC_PER_TICK + hpet_period/2) / hpet_period: HPET counts per tick.</summary>
    public long HpetTick { get; }

    /// <summary>jiffies since timekeeping started (interrupts + lost ticks).</summary>
    public long Jiffies { get; private set; }

    /// <summary>Timer interrupts handled (each advanced xtime by one tick).</summary>
    public long Interrupts { get; private set; }

    /// <summary>Calls of handle_lost_ticks (interrupts that saw at least one lost tick).</summary>
    public long LostTickEvents { get; private set; }

    /// <summary>Ticks added to jiffies as lost.</summary>
    public long LostTicks { get; private set; }

    /// <summary>The instant of "Falling back to HPET", or null.</summary>
    public SimTime? FellBackToHpet { get; private set; }

    /// <summary>xtime in ns.</summary>
    public long XtimeNs => _xtimeNs;

    /// <summary>vxtime.tsc_quot.</summary>
    public long TscQuot => _tscQuot;

    /// <inheritdoc />
    public ClocksourceKind Clocksource => _mode switch
    {
        VxtimeMode.Tsc => ClocksourceKind.Tsc,
        VxtimeMode.Hpet => ClocksourceKind.Hpet,
        _ => ClocksourceKind.AcpiPm,
    };

    /// <inheritdoc />
    public (uint Mult, int Shift) Scale => (_mode == VxtimeMode.Tsc ? (uint)_tscQuot : (uint)_quot, UsScale);

    /// <summary>
    /// time_init: xtime from the RTC (here: true time, as the other timekeeping), vxtime.mode from
    /// <paramref name="cs"/> (time_init_gtod: TSC, or HPET / PM timer when notsc), quot and
    /// tsc_quot from cpu_khz, last_tsc = get_cycles_sync().
    /// </summary>
    public void Start(SimTime at, ClocksourceKind cs)
    {
        _xtimeNs = at.NanosecondsFloor;
        _cpuKhz = Math.Max(1, _kernel.TscKhz);
        _mode = cs switch
        {
            ClocksourceKind.Tsc => VxtimeMode.Tsc,
            ClocksourceKind.Hpet => VxtimeMode.Hpet,
            _ => VxtimeMode.Pmtmr,
        };
        long vxtimeHz = _hasHpet
            ? (1_000_000_000_000_000L + _machine.HpetPeriodFemtoseconds / 2) / _machine.HpetPeriodFemtoseconds
            : 3_579_545; // PM_TIMER_FREQUENCY (pmtmr_ioport && !hpet_address)
        _quot = (1_000_000L << UsScale) / vxtimeHz;
        _tscQuot = (1000L << UsScale) / _cpuKhz;
        _lastTsc = _machine.PeekTsc(0, at);
        _last = _hasHpet ? HpetLast(at) : 0;
        _lastPm = _machine.PeekPmTimer(at);
    }

    /// <summary>Ticks come from timer interrupts (<see cref="Interrupt"/>), not from a kernel timer.</summary>
    public void Tick(SimTime at)
    {
    }

    /// <summary>Only <see cref="Interrupt"/>'s fallback changes the mode.</summary>
    public void Switch(SimTime at, ClocksourceKind to)
    {
    }

    /// <summary>2.6.18 x86_64 keeps tsc_quot (only its cpufreq notifier would change it).</summary>
    public void TscRateChanged(SimTime at)
    {
    }

    /// <summary>
    /// main_timer_handler (time.c, 2.6.18) at <paramref name="at"/> with the TSC value
    /// <paramref name="tsc"/> its get_cycles_sync() returned and the HPET counter
    /// <paramref name="hpetCounter"/> it read first (when an HPET exists; with the HPET's timer:
    /// HPET_T0_CMP, and <paramref name="hpetCounterLate"/> its second HPET_COUNTER read), then do_timer.
    /// </summary>
    internal void Interrupt(SimTime at, ulong tsc, uint hpetCounter, uint hpetCounterLate)
    {
        unchecked
        {
            int offset = _hasHpet ? (int)hpetCounter : 0;
            int delay = 0;
            if (HpetTimer)
            {
                offset = (int)(hpetCounter - (uint)HpetTick);   // hpet_readl(HPET_T0_CMP) - hpet_tick
                delay = (int)hpetCounterLate - offset;           // hpet_readl(HPET_COUNTER) - offset
            }
            int lost = 0;
            switch (_mode)
            {
                case VxtimeMode.Hpet:
                    {
                        ulong diff = (ulong)(long)(offset - _last); // int converted to unsigned long
                        if (diff > (ulong)HpetTick)
                        {
                            lost = (int)(diff / (ulong)HpetTick - 1);
                        }
                        _last = offset;
                        break;
                    }
                case VxtimeMode.Pmtmr:
                    {
                        // pmtimer_mark_offset (arch/x86_64/kernel/pmtimer.c), without its offset_delay carry: ticks by the PM timer.
                        long pm = _machine.PeekPmTimer(at);
                        long delta = (pm - _lastPm) & 0xFF_FFFF;
                        _lastPm = pm;
                        long us = delta * 1_000_000 / 3_579_545;
                        lost = (int)(us / UsecPerTick) - 1;
                        _lastTsc = tsc;
                        break;
                    }
                default:
                    {
                        ulong x = ((tsc - _lastTsc) * (ulong)_tscQuot) >> UsScale;
                        offset = (int)(x - (ulong)UsecPerTick);
                        if (offset < 0)
                        {
                            offset = 0;
                        }
                        if (offset > UsecPerTick)
                        {
                            lost = offset / UsecPerTick;
                            offset %= UsecPerTick;
                        }
                        _lastTsc = tsc - (ulong)(_quot * delay / _tscQuot); // vxtime.quot * delay / vxtime.tsc_quot (long)
                        if ((((tsc - _lastTsc) * (ulong)_tscQuot) >> UsScale) < (ulong)offset)
                        {
                            _lastTsc = tsc - (ulong)(((long)offset << UsScale) / _tscQuot) - 1; // carry the remainder
                        }
                        break;
                    }
            }
            if (lost > 0)
            {
                HandleLostTicks(at);
                Jiffies += lost;
                LostTicks += lost;
            }
            // do_timer: jiffies_64++, update_times → update_wall_time: one tick into xtime.
            Jiffies++;
            Interrupts++;
            _xtimeNs += TickNsec;
        }
    }

    private void HandleLostTicks(SimTime at)
    {
        LostTickEvents++;
        if (_lostCount == LostCountLimit && !_warned)
        {
            _kernel.Message(at, "warning: many lost ticks. Your time source seems to be instable or some driver is hogging interupts");
            if (_mode == VxtimeMode.Tsc && _hasHpet)
            {
                _kernel.Message(at, "Falling back to HPET");
                _last = HpetLast(at); // hpet_readl(HPET_T0_CMP) - hpet_tick, or hpet_readl(HPET_COUNTER)
                _mode = VxtimeMode.Hpet;
                FellBackToHpet = at;
                _kernel.RecordSwitch(at, ClocksourceKind.Tsc, ClocksourceKind.Hpet, "Falling back to HPET (1000 lost-tick events)");
            }
            _warned = true; // else "should fall back to PIT, but code missing"
        }
        else
        {
            _lostCount++;
        }
    }

    /// <summary>xtime (the tick-driven kernel's timers count jiffies, not ns).</summary>
    public long NowNs(SimTime at) => _xtimeNs;

    /// <inheritdoc />
    public void BeginRead(Vcpu vcpu, int v, int readFlags)
    {
        _readSnapshot[v] = new Snapshot(_mode, _xtimeNs, _quot, _tscQuot);
        switch (_mode)
        {
            case VxtimeMode.Tsc:
                vcpu.SetRegister(Registers.R8, KernelLibrary.CsTsc);
                vcpu.SetRegister(Registers.R9, unchecked((long)_lastTsc));
                break;
            case VxtimeMode.Hpet:
                vcpu.SetRegister(Registers.R8, KernelLibrary.CsHpet);
                vcpu.SetRegister(Registers.R9, (uint)_last);
                break;
            default:
                vcpu.SetRegister(Registers.R8, KernelLibrary.CsAcpiPm);
                vcpu.SetRegister(Registers.R9, _lastPm);
                break;
        }
        vcpu.SetRegister(Registers.Rbx, readFlags);
    }

    /// <summary>
    /// do_gettimeofday: µs = xtime.tv_nsec / 1000 + do_gettimeoffset() (the jiffies − wall_jiffies
    /// term is 0 after every interrupt), reported in ns; rcx = the counter delta the guest code
    /// computed (TSC: already clamped at last_tsc).
    /// </summary>
    public long EndRead(Vcpu vcpu, int v)
    {
        unchecked
        {
            Snapshot s = _readSnapshot[v];
            ulong delta = (ulong)vcpu.Register(Registers.Rcx);
            uint offsetUs = s.Mode switch
            {
                // do_gettimeoffset_tsc: ((t − last_tsc) × tsc_quot) >> US_SCALE, returned as unsigned int.
                VxtimeMode.Tsc => (uint)((delta * (ulong)s.TscQuot) >> UsScale),
                // do_gettimeoffset_hpet: min(counter − last, hpet_tick) × quot >> US_SCALE (capped at one tick).
                VxtimeMode.Hpet => (uint)((Math.Min((ulong)(uint)delta, (ulong)HpetTick) * (ulong)s.Quot) >> UsScale),
                // do_gettimeoffset_pm: PM-timer cycles since the last interrupt in µs (offset_delay not modelled).
                _ => (uint)((long)(delta & 0xFF_FFFF) * 1_000_000 / 3_579_545),
            };
            return (s.XtimeNs / 1000 + offsetUs) * 1000;
        }
    }
}

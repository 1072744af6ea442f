using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// The tick of a modern Linux (CONFIG_NO_HZ_IDLE, high-resolution timers, the local APIC timer
/// in TSC-deadline mode), as Linux 6.18 does it:
/// <list type="bullet">
/// <item>Busy, each CPU's <c>sched_timer</c> hrtimer fires every TICK_NSEC on one grid
/// (<c>tick_nohz_handler</c>: <c>hrtimer_forward(timer, now, TICK_NSEC)</c>, kernel/time/tick-sched.c),
/// and <c>hrtimer_interrupt</c> programs the next expiry through <c>clockevents_program_event</c>
/// (kernel/time/clockevents.c: <c>clc = delta × mult &gt;&gt; shift</c>) and
/// <c>lapic_next_deadline</c> (arch/x86/kernel/apic/apic.c: <c>rdtsc()</c>, then
/// <c>wrmsrq(MSR_IA32_TSC_DEADLINE, tsc + clc × TSC_DIVISOR)</c>, TSC_DIVISOR = 8).</item>
/// <item>Idle, <c>tick_nohz_idle_stop_tick</c> → <c>tick_nohz_next_event</c> keeps the tick when
/// the next timer is within one tick, else stops it and programs the next timer-wheel event
/// (capped at <c>timekeeping_max_deferment()</c> on the CPU that had the do_timer duty last);
/// <c>tick_nohz_stop_tick</c> skips the write when that expiry is already programmed. Leaving
/// idle, <c>tick_nohz_restart_sched_tick</c> updates jiffies and restarts the tick on its grid.</item>
/// <item>jiffies and wall time advance in <c>tick_do_update_jiffies64</c> (by whole TICK_NSEC
/// periods since <c>last_jiffies_update</c>, then <c>update_wall_time</c>) on the do_timer CPU,
/// which gives the duty up when it stops its tick (TICK_DO_TIMER_NONE: the next ticking CPU takes it).</item>
/// <item>The clocksource watchdog's <c>timer_list</c> (kernel/time/clocksource.c): expires every
/// WATCHDOG_INTERVAL = HZ/2 jiffies (<c>expires += WATCHDOG_INTERVAL</c>), queued with
/// <c>add_timer_on</c> on the next online CPU in turn; the wheel rounds it up to its level's
/// granularity (kernel/time/timer.c <c>calc_index</c>: <c>((expires &gt;&gt; LVL_SHIFT(lvl)) + 1) &lt;&lt; LVL_SHIFT(lvl)</c>);
/// queued on an idle CPU it wakes it with a reschedule IPI (<c>trigger_dyntick_cpu</c> →
/// <c>wake_up_nohz_cpu</c>).</item>
/// </list>
/// Simplifications (docs/model.md "Linux modern: the tick"): no other kernel timer is modelled
/// (RCU, vmstat, writeback…); the EOI is an x2APIC write (PV-EOI not modelled). With no event
/// left the clockevent goes ONESHOT_STOPPED (lapic_timer_shutdown: LVT masked, TMICT 0) and comes
/// back with lapic_timer_set_oneshot's LVT write before the next deadline.
/// </summary>
internal sealed class NoHzTick
{
    /// <summary>TSC_DIVISOR (arch/x86/kernel/apic/apic.c): the TSC-deadline clockevent counts TSC / 8.</summary>
    public const int TscDivisor = 8;

    /// <summary>LVL_CLK_SHIFT (kernel/time/timer.c): each wheel level is 8× coarser.</summary>
    private const int LvlClkShift = 3;

    /// <summary>LVL_BITS (timer.c): 64 buckets per level.</summary>
    private const int LvlBits = 6;

    private const long None = long.MaxValue;     // KTIME_MAX: no expiry
    private const int NoCpu = -1;                // TICK_DO_TIMER_NONE

    private readonly GuestKernel _kernel;
    private readonly Func<SimTime, long> _now;   // ktime_get at an instant
    private readonly Action<SimTime> _updateWallTime;
    private readonly ClocksourceWatchdog _watchdog;
    private readonly int _vcpus;
    private readonly TickSched[] _ts;            // per CPU, as Linux's struct tick_sched
    private int _tickCpu;                        // tick_do_timer_cpu
    private long _lastJiffiesUpdate;             // last_jiffies_update (guest ns)
    private uint _ceMult;                        // the clockevent's mult/shift
    private int _ceShift;
    private long _minDeltaNs, _maxDeltaNs;
    private bool _wdArmed;                       // the watchdog's timer_list is queued
    private long _wdExpires;                     // watchdog_timer.expires (jiffies)
    private long _wdBucket;                      // the wheel bucket it sits in (jiffies)
    private int _wdCpu;                          // the CPU it is queued on

    /// <summary>A tick of <paramref name="hz"/> for <paramref name="vcpus"/> CPUs.</summary>
    public NoHzTick(GuestKernel kernel, int vcpus, int hz, Func<SimTime, long> now, Action<SimTime> updateWallTime, ClocksourceWatchdog watchdog)
    {
        _kernel = kernel;
        _vcpus = vcpus;
        _now = now;
        _updateWallTime = updateWallTime;
        _watchdog = watchdog;
        Hz = hz;
        TickNsec = (1_000_000_000L + hz / 2) / hz;
        _ts = new TickSched[vcpus];
        Array.Fill(_ts, new TickSched { TimerAt = None });
    }

    /// <summary>HZ.</summary>
    public int Hz { get; }

    /// <summary>TICK_NSEC = (NSEC_PER_SEC + HZ/2) / HZ (include/vdso/jiffies.h).</summary>
    public long TickNsec { get; }

    /// <summary>jiffies since timekeeping started.</summary>
    public long Jiffies { get; private set; }

    /// <summary>WATCHDOG_INTERVAL = HZ &gt;&gt; 1 jiffies.</summary>
    public long WatchdogIntervalJiffies => Hz >> 1;

    /// <summary>Watchdog timer runs (each one ran clocksource_watchdog on the CPU it was queued on).</summary>
    public long WatchdogRuns { get; private set; }

    /// <summary>Reschedule IPIs sent to wake an idle CPU for a timer queued on it.</summary>
    public long WakeIpis { get; private set; }

    /// <summary>The clockevent's mult and shift (clockevents_config with freq = tsc_khz × 1000 / TSC_DIVISOR, maxsec 600).</summary>
    public (uint Mult, int Shift) ClockeventScale => (_ceMult, _ceShift);

    /// <summary>Whether CPU <paramref name="v"/>'s tick is stopped (idle).</summary>
    public bool Stopped(int v) => _ts[v].Stopped;

    /// <summary>
    /// tick_init_jiffy_update and clocksource_start_watchdog at timekeeping init: the jiffies grid
    /// starts now; the watchdog's timer is queued for jiffies + WATCHDOG_INTERVAL on CPU 0.
    /// </summary>
    public void Start(SimTime at, long tscKhz)
    {
        _lastJiffiesUpdate = _now(at);
        Jiffies = 0;
        _tickCpu = 0;
        SetTscKhz(tscKhz);
        if (_watchdog.Verifies)
        {
            _wdArmed = true;
            _wdCpu = 0;
            _wdExpires = Jiffies + WatchdogIntervalJiffies;
            _wdBucket = BucketExpiry(_wdExpires, Jiffies);
        }
    }

    /// <summary>
    /// clockevents_config_and_register(levt, tsc_khz × (1000 / TSC_DIVISOR), 0xF, ~0UL) at boot, and
    /// lapic_update_tsc_freq → clockevents_update_freq when the kernel adopts a new tsc_khz: the
    /// clockevent's mult/shift (maxsec 600: max_delta_ticks &gt; UINT_MAX).
    /// </summary>
    public void SetTscKhz(long tscKhz)
    {
        ulong freq = (ulong)Math.Max(1, tscKhz) * (1000 / TscDivisor);
        (_ceMult, _ceShift) = Clocksources.CalcMultShift(1_000_000_000, freq, 600);
        _minDeltaNs = (long)(((UInt128)0xF << _ceShift) + _ceMult - 1) / _ceMult; // cev_delta2ns(0xF, …, false), rounded up
        _maxDeltaNs = (long)Math.Min((ulong)long.MaxValue, ulong.MaxValue / _ceMult); // cev_delta2ns(~0UL): the shifted latch overflows → ~0ULL / mult
    }

    /// <summary>Flags of a programming for the guest's arm routine: unmask the LVT first (back to ONESHOT), or shut the clockevent down.</summary>
    public const int FlagUnmask = 1, FlagShutdown = 2;

    /// <summary>tick_setup_sched_timer on CPU <paramref name="v"/>: the first tick on the jiffies grid.</summary>
    public (long TscDelta, int Flags) Setup(int v, SimTime at)
    {
        long now = _now(at);
        _ts[v].TimerAt = Forward(_lastJiffiesUpdate, now);
        return Program(v, _ts[v].TimerAt, now);
    }

    /// <summary>
    /// tick_program_event: an expiry programs the deadline (after switching a stopped clockevent
    /// back to ONESHOT: lapic_timer_set_oneshot's LVT write); KTIME_MAX switches it to
    /// ONESHOT_STOPPED (lapic_timer_shutdown: LVT masked, TMICT 0) unless it already is.
    /// </summary>
    private (long TscDelta, int Flags) Program(int v, long expires, long now)
    {
        if (expires == None)
        {
            if (_ts[v].CeStopped)
            {
                return (0, 0);
            }
            _ts[v].CeStopped = true;
            return (0, FlagShutdown);
        }
        int flags = _ts[v].CeStopped ? FlagUnmask : 0;
        _ts[v].CeStopped = false;
        return (DeadlineDelta(expires, now), flags);
    }

    /// <summary>
    /// The local APIC timer interrupt on CPU <paramref name="v"/> (sysvec_apic_timer_interrupt →
    /// hrtimer_interrupt): runs the sched_timer if it expired (tick_nohz_handler, and the
    /// timer-wheel timers due on this CPU), then programs the next expiry. Returns the TSC delta
    /// to write with the arm routine's flags, and the CPU to wake with an IPI (−1: none).
    /// </summary>
    public (long TscDelta, int Flags, int WakeCpu) Interrupt(int v, SimTime at)
    {
        _ts[v].Timers++;
        long now = _now(at);
        int wake = -1;
        if (_ts[v].Stopped)
        {
            UpdateJiffies(now, at); // tick_nohz_irq_enter → tick_nohz_update_jiffies
        }
        if (_ts[v].TimerAt <= now)
        {
            // tick_nohz_handler: tick_sched_do_timer, tick_sched_handle → update_process_times → run_local_timers.
            if (_tickCpu == NoCpu)
            {
                _tickCpu = v;
            }
            if (_tickCpu == v)
            {
                UpdateJiffies(now, at);
            }
            wake = RunTimers(v, at);
            _ts[v].TimerAt = _ts[v].Stopped ? None : Forward(_ts[v].TimerAt, now); // HRTIMER_NORESTART when stopped
            if (_ts[v].Stopped)
            {
                _ts[v].NextTick = 0; // tick_sched_handle: "make sure we don't bypass the next clock reprogramming"
            }
        }
        var (delta, flags) = Program(v, _ts[v].TimerAt, now); // hrtimer_interrupt: tick_program_event(expires_next)
        return (delta, flags, wake);
    }

    /// <summary>
    /// The CPU goes idle (the workload's <c>hlt</c>): tick_nohz_idle_enter and
    /// tick_nohz_idle_stop_tick. Returns the TSC delta to write (0: nothing reprogrammed) and the arm flags.
    /// </summary>
    public (long TscDelta, int Flags) IdleEnter(int v, SimTime at)
    {
        long now = _now(at);
        // tick_nohz_next_event
        long basemono = _lastJiffiesUpdate;
        long nextTmr = _wdArmed && _wdCpu == v ? basemono + Math.Max(0, _wdBucket - Jiffies) * TickNsec : None;
        if (nextTmr != None && nextTmr - basemono <= TickNsec && !_ts[v].Stopped)
        {
            return (0, 0); // a timer in the next period: keep the tick
        }
        bool capped = _tickCpu == v || (_tickCpu == NoCpu && _ts[v].DoTimerLast);
        long expires = capped ? basemono + _kernel.MaxDefermentNs() : None;
        expires = Math.Min(expires, nextTmr);
        // tick_nohz_stop_tick
        if (_tickCpu == v)
        {
            _tickCpu = NoCpu;
            _ts[v].DoTimerLast = true;
        }
        else if (_tickCpu != NoCpu)
        {
            _ts[v].DoTimerLast = false;
        }
        if (_ts[v].Stopped && expires == _ts[v].NextTick && (expires == None || _ts[v].TimerAt == expires))
        {
            return (0, 0); // skip reprogram of an unchanged event
        }
        if (!_ts[v].Stopped)
        {
            _ts[v].LastTick = _ts[v].TimerAt;
            _ts[v].Stopped = true;
        }
        _ts[v].NextTick = expires;
        _ts[v].TimerAt = expires;
        return Program(v, expires, now); // hrtimer_start, or hrtimer_cancel → tick_program_event(KTIME_MAX)
    }

    /// <summary>
    /// The CPU leaves idle (the workload resumes after its <c>hlt</c>): tick_nohz_idle_exit →
    /// tick_nohz_restart_sched_tick. Returns the TSC delta to write (0 when the tick was not stopped) and the arm flags.
    /// </summary>
    public (long TscDelta, int Flags) IdleExit(int v, SimTime at)
    {
        if (!_ts[v].Stopped)
        {
            return (0, 0);
        }
        long now = _now(at);
        UpdateJiffies(now, at);
        _ts[v].Stopped = false;
        _ts[v].TimerAt = Forward(_ts[v].LastTick, now);
        _ts[v].NextTick = 0;
        return Program(v, _ts[v].TimerAt, now);
    }

    /// <summary>The watchdog stopped verifying (the TSC was marked unstable): clocksource_stop_watchdog deletes its timer.</summary>
    public void StopWatchdog() => _wdArmed = false;

    /// <summary>tick_do_update_jiffies64: whole TICK_NSEC periods since last_jiffies_update, then update_wall_time.</summary>
    private void UpdateJiffies(long now, SimTime at)
    {
        long delta = now - _lastJiffiesUpdate;
        if (delta < TickNsec)
        {
            return;
        }
        long ticks = delta / TickNsec;
        _lastJiffiesUpdate += ticks * TickNsec;
        Jiffies += ticks;
        _updateWallTime(at);
    }

    /// <summary>run_local_timers → the timer softirq: the watchdog's timer when it is due on this CPU; returns a CPU to wake, or −1.</summary>
    private int RunTimers(int v, SimTime at)
    {
        if (!_wdArmed || _wdCpu != v || Jiffies < _wdBucket)
        {
            return -1;
        }
        WatchdogRuns++;
        _watchdog.Check(at);
        if (!_watchdog.Verifies)
        {
            _wdArmed = false; // the TSC left the watchdog list: clocksource_stop_watchdog
            return -1;
        }
        _wdExpires += WatchdogIntervalJiffies;
        _wdCpu = (v + 1) % _vcpus; // cpumask_next_wrap(raw_smp_processor_id(), cpu_online_mask)
        _wdBucket = BucketExpiry(_wdExpires, Jiffies);
        if (_wdCpu != v && _ts[_wdCpu].Stopped)
        {
            WakeIpis++;
            return _wdCpu; // trigger_dyntick_cpu: the target's timer base is idle
        }
        return -1;
    }

    /// <summary>
    /// calc_wheel_index / calc_index (kernel/time/timer.c): the jiffy at which a timer expiring at
    /// <paramref name="expires"/> runs when queued at wheel clock <paramref name="clk"/>: rounded up
    /// past <paramref name="expires"/> to its level's granularity (LVL_START(n) = 63 &lt;&lt; 3(n−1)).
    /// </summary>
    public static long BucketExpiry(long expires, long clk)
    {
        long delta = expires - clk;
        if (delta < 0)
        {
            return clk;
        }
        int lvl = 0;
        while (lvl < 8 && delta >= (((1L << LvlBits) - 1) << (lvl * LvlClkShift)))
        {
            lvl++;
        }
        int shift = lvl * LvlClkShift;
        return ((expires >> shift) + 1) << shift;
    }

    /// <summary>hrtimer_forward(timer, now, TICK_NSEC): the first grid point after <paramref name="now"/> (unchanged if still ahead).</summary>
    private long Forward(long expires, long now)
    {
        if (now < expires)
        {
            return expires;
        }
        return expires + ((now - expires) / TickNsec + 1) * TickNsec;
    }

    /// <summary>
    /// clockevents_program_event + lapic_next_deadline: delta = expires − ktime_get() clamped to
    /// [min_delta_ns, max_delta_ns] (a past expiry programs the minimum), clc = delta × mult &gt;&gt; shift,
    /// and the deadline is rdtsc() + clc × TSC_DIVISOR: the TSC delta returned here.
    /// </summary>
    private long DeadlineDelta(long expires, long now)
    {
        long delta = Math.Clamp(expires - now, _minDeltaNs, _maxDeltaNs);
        ulong clc = (ulong)(((UInt128)(ulong)delta * _ceMult) >> _ceShift);
        return (long)Math.Max(1UL, clc * TscDivisor);
    }

    /// <summary>Local timer interrupts CPU <paramref name="v"/> has taken.</summary>
    public long TimerInterrupts(int v) => _ts[v].Timers;

    /// <summary>One CPU's tick state (Linux 6.18 kernel/time/tick-sched.h struct tick_sched, the fields modelled).</summary>
    private struct TickSched
    {
        public long TimerAt;      // the sched_timer hrtimer's expiry (guest ns), or None
        public long LastTick;     // ts->last_tick: the tick's expiry when it was stopped
        public long NextTick;     // ts->next_tick: the expiry programmed while stopped (0: none)
        public bool Stopped;      // TS_FLAG_STOPPED
        public bool DoTimerLast;  // TS_FLAG_DO_TIMER_LAST
        public bool CeStopped;    // the clockevent is CLOCK_EVT_STATE_ONESHOT_STOPPED (LVT masked)
        public long Timers;       // interrupts taken from the local timer
    }
}

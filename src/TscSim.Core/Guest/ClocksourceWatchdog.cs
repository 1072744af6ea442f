using TscSim.Core.Abi;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// clocksource_watchdog (kernel/time/clocksource.c) for the TSC, the only
/// CLOCK_SOURCE_MUST_VERIFY clocksource here: every <see cref="Interval"/> it compares the
/// TSC's ns over the interval with the watchdog's (the best clocksource that is not the TSC)
/// and marks the TSC unstable when they differ by more than the threshold.
/// </summary>
internal sealed class ClocksourceWatchdog(GuestKernel kernel, IGuestMachine machine, Clocksources sources, SharedMemory shared, int vcpus)
{
    /// <summary>WATCHDOG_INTERVAL: HZ/2.</summary>
    public static readonly Duration Interval = Duration.FromMilliseconds(500);

    /// <summary>
    /// WATCHDOG_THRESHOLD = NSEC_PER_SEC &gt;&gt; 4 = 62.5 ms, the skew limit from 2.6.21 (when the
    /// watchdog arrived) until per-clocksource uncertainty margins replaced it during 5.x.
    /// </summary>
    public const long LegacyThresholdNs = 1_000_000_000 >> 4;

    /// <summary>WATCHDOG_MAX_SKEW: MAX_SKEW_USEC = 125 × WATCHDOG_INTERVAL / HZ = 62 µs.</summary>
    public const long MaxSkewNs = 62_000;

    /// <summary>WATCHDOG_INTERVAL_MAX_NS: a longer interval means a delayed watchdog; the check is skipped.</summary>
    public const long IntervalMaxNs = 1_000_000_000;

    private bool _baseline;                 // the last readings below are valid
    private ulong _lastWd, _lastCs;         // watchdog and TSC counter cycles at the last check
    private ClocksourceKind _source;        // the watchdog clocksource those readings are of

    /// <summary>
    /// Whether the TSC is on the watchdog list: registered with CLOCK_SOURCE_MUST_VERIFY and not
    /// yet unstable, and not exempted (modern kernels: tsc_disable_clocksource_watchdog with an
    /// invariant TSC). Without it the watchdog's timer is not queued (clocksource_start_watchdog
    /// returns on an empty list; clocksource_stop_watchdog deletes it).
    /// </summary>
    public bool Verifies =>
        kernel.Profile.Watchdog != WatchdogKind.None && kernel.TscUnstable is null && sources.Has(ClocksourceKind.Tsc) && kernel.TscKhz != 0
        && !(kernel.Profile.Watchdog == WatchdogKind.Modern && machine.InvariantTscExposed);

    /// <summary>Forgets the baseline: the next check only takes readings (clocksource_reset_watchdog).</summary>
    public void Restart() => _baseline = false;

    /// <summary>
    /// One watchdog run at <paramref name="at"/>. Modern kernels skip it with an invariant TSC
    /// (CONSTANT_TSC, NONSTOP_TSC, TSC_ADJUST: tsc.c) and skip intervals longer than 1 s; a
    /// pvclock record with GUEST_STOPPED set makes the guest touch its watchdogs (the baseline
    /// restarts).
    /// </summary>
    public void Check(SimTime at)
    {
        OsProfile profile = kernel.Profile;
        if (kernel.TscUnstable is not null || !sources.Has(ClocksourceKind.Tsc) || kernel.TscKhz == 0)
        {
            return;
        }
        if (profile.Watchdog == WatchdogKind.Modern && machine.InvariantTscExposed)
        {
            return;
        }
        if (ConsumeGuestStopped())
        {
            _baseline = false;
        }
        if (sources.Highest(except: ClocksourceKind.Tsc) is not ClocksourceKind source)
        {
            return;
        }
        ulong wdNow = sources.ReadCounter(source, at);
        ulong csNow = sources.ReadCounter(ClocksourceKind.Tsc, at);
        if (!_baseline || source != _source)
        {
            _baseline = true;
            _source = source;
            _lastWd = wdNow;
            _lastCs = csNow;
            return;
        }
        long wdNs = sources.ToNs(source, Delta(unchecked(wdNow - _lastWd), sources.Describe(source).Mask));
        long csNs = sources.ToNs(ClocksourceKind.Tsc, Delta(unchecked(csNow - _lastCs), ulong.MaxValue));
        _lastWd = wdNow;
        _lastCs = csNow;
        long threshold;
        if (profile.Watchdog == WatchdogKind.Modern)
        {
            if (wdNs > IntervalMaxNs || csNs > IntervalMaxNs || csNs < 0)
            {
                kernel.Message(at, $"clocksource: Long readout interval, skipping watchdog check: cs_nsec: {csNs} wd_nsec: {wdNs}");
                return;
            }
            threshold = Margin(ClocksourceKind.Tsc) + Margin(source);
        }
        else
        {
            threshold = LegacyThresholdNs;
        }
        long skew = Math.Abs(csNs - wdNs);
        if (skew > threshold)
        {
            kernel.Message(at, $"clocksource: timekeeping watchdog: Marking clocksource 'tsc' as unstable because the skew is too large: "
                + $"'{OsProfiles.NameOf(source)}' wd_nsec: {wdNs}, 'tsc' cs_nsec: {csNs}");
            kernel.MarkTscUnstable(at, $"clocksource watchdog (skew {skew} ns over the interval against {OsProfiles.NameOf(source)}, limit {threshold} ns)");
        }
    }

    /// <summary>
    /// clocksource_delta: the masked difference, and 0 for a "negative" one (more than half the
    /// mask) in kernels that check it (modern profiles), so a TSC that stepped back shows as no
    /// time passed: the watchdog then sees the skew (the whole interval) and demotes it.
    /// </summary>
    private ulong Delta(ulong raw, ulong mask)
    {
        ulong d = raw & mask;
        return kernel.ClampsNegative && (d & ~(mask >> 1)) != 0 ? 0 : d;
    }

    /// <summary>uncertainty_margin: max(NSEC_PER_SEC / Hz, 2 × WATCHDOG_MAX_SKEW).</summary>
    private long Margin(ClocksourceKind kind) => Math.Max(1_000_000_000 / (long)Math.Max(1UL, sources.Describe(kind).Hz), 2 * MaxSkewNs);

    /// <summary>Clears PVCLOCK_GUEST_STOPPED in every vCPU's record, as the guest's pvclock read does; true if any was set.</summary>
    private bool ConsumeGuestStopped()
    {
        if (!machine.HasKvmclock || !sources.Has(ClocksourceKind.KvmClock))
        {
            return false;
        }
        bool any = false;
        for (int v = 0; v < vcpus; v++)
        {
            any |= PvclockAbi.ClearFlag(PvclockAbi.Record(shared.Pvclock, v), PvclockAbi.GuestStoppedBit);
        }
        return any;
    }
}

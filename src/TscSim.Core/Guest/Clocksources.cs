using TscSim.Core.Abi;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// The clocksources a guest kernel has registered (Linux <c>kernel/time/clocksource.c</c>):
/// their ratings, which are usable now, the best one, each one's rate and mask, the mult/shift
/// it is registered with, and its counter as the kernel's own timers read it.
/// </summary>
internal sealed class Clocksources
{
    private readonly GuestKernel _kernel;
    private readonly IGuestMachine _machine;
    private readonly Dictionary<ClocksourceKind, int> _ratings = [];

    public Clocksources(GuestKernel kernel, IGuestMachine machine)
    {
        _kernel = kernel;
        _machine = machine;
        foreach (var (kind, rating) in kernel.Profile.Ratings)
        {
            _ratings[kind] = rating;
        }
    }

    /// <summary>The kernel has this clocksource (its profile lists it).</summary>
    public bool Has(ClocksourceKind kind) => _ratings.ContainsKey(kind);

    /// <summary>The clocksource's rating now.</summary>
    public int Rating(ClocksourceKind kind) => _ratings[kind];

    /// <summary>Changes a clocksource's rating (kvmclock_init lowering kvm-clock with an invariant TSC).</summary>
    public void SetRating(ClocksourceKind kind, int rating) => _ratings[kind] = rating;

    /// <summary>Registered and usable now: the TSC while stable and calibrated, kvm-clock when the machine offers it.</summary>
    public bool Available(ClocksourceKind kind) => kind switch
    {
        ClocksourceKind.Tsc => Has(kind) && (_kernel.TscUnstable is null || _kernel.Profile.UnstableTscRating is not null) && _kernel.TscKhz > 0,
        ClocksourceKind.KvmClock => Has(kind) && _machine.HasKvmclock,
        _ => Has(kind),
    };

    /// <summary>The best available clocksource: the requested one if usable, else the highest rated.</summary>
    public ClocksourceKind? Best() =>
        _kernel.RequestedClocksource is ClocksourceKind wanted && Available(wanted) ? wanted : Highest(except: null);

    /// <summary>
    /// The highest-rated available clocksource other than <paramref name="except"/> (the first
    /// in the profile's order among equals), or null: clocksource_select, and the watchdog's
    /// choice of reference.
    /// </summary>
    public ClocksourceKind? Highest(ClocksourceKind? except)
    {
        ClocksourceKind? best = null;
        int bestRating = int.MinValue;
        foreach (var (kind, _) in _kernel.Profile.Ratings)
        {
            if (kind != except && Available(kind) && _ratings[kind] > bestRating)
            {
                best = kind;
                bestRating = _ratings[kind];
            }
        }
        return best;
    }

    /// <summary>The clocksource's counting rate and mask (CLOCKSOURCE_MASK of its width).</summary>
    public (ulong Hz, ulong Mask) Describe(ClocksourceKind kind) => kind switch
    {
        ClocksourceKind.Tsc => ((ulong)_kernel.TscKhz * 1000, ulong.MaxValue),
        ClocksourceKind.KvmClock => (1_000_000_000, ulong.MaxValue),
        ClocksourceKind.Hpet => (1_000_000_000_000_000UL / _machine.HpetPeriodFemtoseconds, PlatformTimerRates.HpetMask),
        _ => ((ulong)PlatformTimerRates.AcpiPmHz, PlatformTimerRates.AcpiPmMask),
    };

    /// <summary>
    /// The scale Linux registers a clocksource with (<c>__clocksource_update_freq_scale</c>):
    /// maxsec = mask / Hz, at least 1, at most 600 for wide counters.
    /// </summary>
    public (uint Mult, int Shift) ScaleFor(ClocksourceKind kind)
    {
        if (kind == ClocksourceKind.Tsc && _kernel.Profile.UnsignedReadWraps && _kernel.TscKhz > 0)
        {
            // 2.6.18 i386 tsc.c: mult = clocksource_khz2mult(tsc_khz, 22) = ((10^6 << 22) + khz/2) / khz, shift 22.
            long khz = _kernel.TscKhz;
            return ((uint)(((1_000_000L << 22) + khz / 2) / khz), 22);
        }
        var (hz, mask) = Describe(kind);
        ulong sec = mask / hz;
        if (sec == 0)
        {
            sec = 1;
        }
        else if (sec > 600 && mask > uint.MaxValue)
        {
            sec = 600;
        }
        return CalcMultShift(hz, 1_000_000_000, sec);
    }

    /// <summary>Counter cycles of <paramref name="kind"/> in ns at its registered scale.</summary>
    public long ToNs(ClocksourceKind kind, ulong cycles)
    {
        var (mult, shift) = ScaleFor(kind);
        return unchecked((long)(ulong)(((UInt128)cycles * mult) >> shift));
    }

    /// <summary>The clocksource's counter as the kernel's own timers read it (vCPU 0's view), masked.</summary>
    public ulong ReadCounter(ClocksourceKind kind, SimTime at) => kind switch
    {
        ClocksourceKind.Tsc => _machine.PeekTsc(0, at),
        ClocksourceKind.KvmClock => _machine.PeekKvmclock(0, at),
        ClocksourceKind.Hpet => _machine.PeekHpetCounter(at) & PlatformTimerRates.HpetMask,
        _ => (ulong)_machine.PeekPmTimer(at) & PlatformTimerRates.AcpiPmMask,
    };

    /// <summary>
    /// clocks_calc_mult_shift (kernel/time/clocksource.c): the largest shift (≤ 32) whose mult
    /// converts <paramref name="fromHz"/> to <paramref name="toHz"/> without overflowing 64 bits
    /// for <paramref name="maxSeconds"/> of cycles.
    /// </summary>
    public static (uint Mult, int Shift) CalcMultShift(ulong fromHz, ulong toHz, ulong maxSeconds)
    {
        // How many bits the product may use beyond 32: fewer the more cycles maxSeconds holds.
        int headroom = 32;
        ulong t = (ulong)(((UInt128)maxSeconds * fromHz) >> 32);
        while (t != 0)
        {
            t >>= 1;
            headroom--;
        }
        ulong mult = 0;
        int shift;
        for (shift = 32; shift > 0; shift--)
        {
            mult = (ulong)((((UInt128)toHz << shift) + fromHz / 2) / fromHz);
            if ((mult >> headroom) == 0)
            {
                break;
            }
        }
        return ((uint)mult, shift);
    }
}

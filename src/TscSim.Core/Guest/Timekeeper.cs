using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// How a guest kernel keeps time: what the periodic tick does, what a clock read returns, how a
/// clocksource change or a new TSC rate is absorbed. One implementation per kind of kernel:
/// <see cref="ClocksourceTimekeeping"/> (Linux since 2.6.21's generic timekeeping: a
/// clocksource counter scaled by mult/shift onto an accumulated base). A tick-driven kind (2.6.18
/// x86_64 <c>arch/x86_64/kernel/time.c</c>: time advanced by timer interrupts, the TSC only
/// interpolating since the last one) is a second implementation beside it.
/// </summary>
internal interface ITimekeeping
{
    /// <summary>The clocksource time is read from.</summary>
    ClocksourceKind Clocksource { get; }

    /// <summary>mult and shift of the current clocksource.</summary>
    (uint Mult, int Shift) Scale { get; }

    /// <summary><c>timekeeping_init</c> at <paramref name="at"/> with <paramref name="cs"/>: the clock starts at true time (as from a perfect RTC).</summary>
    void Start(SimTime at, ClocksourceKind cs);

    /// <summary>The periodic tick: accumulates the time since the last one into the base.</summary>
    void Tick(SimTime at);

    /// <summary>A clocksource change at <paramref name="at"/>: time stays continuous.</summary>
    void Switch(SimTime at, ClocksourceKind to);

    /// <summary>The kernel adopted a new TSC rate at <paramref name="at"/>: time so far is kept, later time counts at the new rate.</summary>
    void TscRateChanged(SimTime at);

    /// <summary>
    /// The start of a clock read on vCPU <paramref name="v"/>: loads the registers the kernel
    /// library's read routine expects (<paramref name="readFlags"/> are <see cref="KernelLibrary"/>'s
    /// Flag* bits) and keeps what the read will finish with.
    /// </summary>
    void BeginRead(Vcpu vcpu, int v, int readFlags);

    /// <summary>The end of vCPU <paramref name="v"/>'s clock read: the guest nanoseconds it returns.</summary>
    long EndRead(Vcpu vcpu, int v);

    /// <summary>ktime_get at <paramref name="at"/> as the kernel's own timers compute it (vCPU 0's counter, no side effect).</summary>
    long NowNs(SimTime at);
}

/// <summary>
/// The clocksource timekeeper's state, after Linux's <c>struct timekeeper</c> and its
/// <c>struct tk_read_base</c> (include/linux/timekeeper_internal.h): ns = base + ((delta × mult
/// + frac) &gt;&gt; shift), delta = (cycles − cycle_last) &amp; mask. A value: a snapshot is a copy.
/// </summary>
internal struct Timekeeper
{
    /// <summary>tkr.clock: the clocksource read.</summary>
    public ClocksourceKind Clocksource;

    /// <summary>tkr.cycle_last: counter cycles at the last accumulation (masked).</summary>
    public ulong CycleLast;

    /// <summary>tkr.base (with xtime): guest ns at <see cref="CycleLast"/>.</summary>
    public long BaseNs;

    /// <summary>tkr.xtime_nsec's fraction: ns &lt;&lt; <see cref="Shift"/> not yet in <see cref="BaseNs"/>.</summary>
    public ulong Frac;

    /// <summary>tkr.mult: ns per cycle, times 2^<see cref="Shift"/>.</summary>
    public uint Mult;

    /// <summary>tkr.shift: bits of <see cref="Mult"/> that are fraction.</summary>
    public int Shift;

    /// <summary>tkr.mask: the counter's width (cycles wrap at mask + 1).</summary>
    public ulong Mask;

    /// <summary>Continues from <paramref name="now"/> counter cycles with a new scale (the base is kept; the fraction restarts).</summary>
    public void Continue(ClocksourceKind cs, (uint Mult, int Shift) scale, ulong mask, ulong now)
    {
        Clocksource = cs;
        (Mult, Shift) = scale;
        Mask = mask;
        CycleLast = now;
        Frac = 0;
    }

    /// <summary>
    /// timekeeping_advance: moves the base to <paramref name="now"/> counter cycles. A 64-bit
    /// counter behind cycle_last (another CPU's TSC behind the one the last tick read) adds nothing.
    /// </summary>
    public void Accumulate(ulong now)
    {
        ulong delta = unchecked(now - CycleLast) & Mask;
        if (Mask == ulong.MaxValue && unchecked((long)delta) < 0)
        {
            return; // behind cycle_last: no time passed for this reader
        }
        UInt128 p = (UInt128)delta * Mult + Frac;
        BaseNs = unchecked(BaseNs + (long)(ulong)(p >> Shift));
        Frac = (ulong)(p & ((UInt128.One << Shift) - 1));
        CycleLast = now;
    }
}

/// <summary>
/// Linux's clocksource timekeeping (kernel/time/timekeeping.c): one <see cref="Timekeeper"/>
/// accumulated every tick (10 ms), so masked counters never wrap between accumulations; the read
/// is guest code up to the multiply (the kernel library's <c>clock_gettime</c>) and finishes here
/// with the snapshot it started with.
/// </summary>
internal sealed class ClocksourceTimekeeping : ITimekeeping
{
    private readonly Clocksources _sources;
    private readonly IGuestMachine _machine;
    private readonly bool _clampsNegative;
    private readonly bool _wraps;
    private readonly Timekeeper[] _readSnapshot;
    private Timekeeper _tk;

    /// <summary>Timekeeping over <paramref name="sources"/> for a VM of <paramref name="vcpus"/> vCPUs.</summary>
    /// <param name="sources">The kernel's clocksources.</param>
    /// <param name="machine">The VM (the pvclock address of each vCPU).</param>
    /// <param name="vcpus">How many vCPUs read the clock (one snapshot each).</param>
    /// <param name="clampsNegative">A delta "behind" cycle_last counts as no time (modern kernels), not as negative time (old ones).</param>
    /// <param name="wraps">A delta behind cycle_last is multiplied as an unsigned 64-bit value (2.6.18 i386: ≈ 2^42 ns forward), not as negative time.</param>
    public ClocksourceTimekeeping(Clocksources sources, IGuestMachine machine, int vcpus, bool clampsNegative, bool wraps = false)
    {
        _wraps = wraps;
        _sources = sources;
        _machine = machine;
        _clampsNegative = clampsNegative;
        _readSnapshot = new Timekeeper[vcpus];
    }

    /// <inheritdoc />
    public ClocksourceKind Clocksource => _tk.Clocksource;

    /// <inheritdoc />
    public (uint Mult, int Shift) Scale => (_tk.Mult, _tk.Shift);

    /// <inheritdoc />
    public void Start(SimTime at, ClocksourceKind cs)
    {
        _tk.BaseNs = at.NanosecondsFloor; // the clock starts at true time, as from the RTC
        Use(cs, at);
    }

    /// <inheritdoc />
    public void Tick(SimTime at) => _tk.Accumulate(_sources.ReadCounter(_tk.Clocksource, at));

    /// <inheritdoc />
    public void Switch(SimTime at, ClocksourceKind to)
    {
        Tick(at);
        Use(to, at);
    }

    /// <inheritdoc />
    public void TscRateChanged(SimTime at)
    {
        if (_tk.Clocksource != ClocksourceKind.Tsc)
        {
            return;
        }
        Tick(at); // with the old scale
        (_tk.Mult, _tk.Shift) = _sources.ScaleFor(ClocksourceKind.Tsc);
        _tk.Frac = 0;
    }

    private void Use(ClocksourceKind cs, SimTime at) =>
        _tk.Continue(cs, _sources.ScaleFor(cs), _sources.Describe(cs).Mask, _sources.ReadCounter(cs, at));

    /// <inheritdoc />
    public void BeginRead(Vcpu vcpu, int v, int readFlags)
    {
        int cs = _tk.Clocksource switch
        {
            ClocksourceKind.Tsc => KernelLibrary.CsTsc,
            ClocksourceKind.KvmClock => KernelLibrary.CsKvmclock,
            ClocksourceKind.Hpet => KernelLibrary.CsHpet,
            _ => KernelLibrary.CsAcpiPm,
        };
        vcpu.SetRegister(Registers.R8, cs);
        vcpu.SetRegister(Registers.R9, unchecked((long)_tk.CycleLast));
        vcpu.SetRegister(Registers.R10, _tk.Mult);
        vcpu.SetRegister(Registers.Rsi, unchecked((long)_tk.Mask));
        vcpu.SetRegister(Registers.Rbx, readFlags);
        vcpu.SetRegister(Registers.R11, _machine.PvclockAddress(v));
        // The read completes with the timekeeper it started with (what the vDSO's seqcount
        // retry guarantees): a tick between begin and end must not mix old cycle_last with a new base.
        _readSnapshot[v] = _tk;
    }

    /// <inheritdoc />
    public long NowNs(SimTime at)
    {
        unchecked
        {
            ulong delta = (_sources.ReadCounter(_tk.Clocksource, at) - _tk.CycleLast) & _tk.Mask;
            if (_tk.Mask == ulong.MaxValue && (long)delta < 0)
            {
                return _tk.BaseNs;
            }
            return _tk.BaseNs + (long)(ulong)((((UInt128)delta * _tk.Mult) + _tk.Frac) >> _tk.Shift);
        }
    }

    /// <summary>ReadEnd: rdx:rax = delta × mult (from guest code), rcx = delta; returns base + ((product + frac) >> shift).</summary>
    public long EndRead(Vcpu vcpu, int v)
    {
        unchecked
        {
            ref readonly Timekeeper tk = ref _readSnapshot[v];
            ulong delta = (ulong)vcpu.Register(Registers.Rcx);
            if (_wraps && !_clampsNegative && tk.Mask == ulong.MaxValue && (long)delta < 0)
            {
                // 2.6.18 i386 cyc2ns: (cycles × mult) >> shift in u64: the product wraps, the result is ≈ 2^(64−shift) ns ahead.
                return tk.BaseNs + (long)((delta * tk.Mult) >> tk.Shift);
            }
            if (!_clampsNegative && tk.Mask == ulong.MaxValue && (long)delta < 0)
            {
                // An old kernel computes a negative delta as negative time: the clock steps back.
                UInt128 back = (UInt128)(ulong)(-(long)delta) * tk.Mult;
                return tk.BaseNs - (long)(ulong)(back >> tk.Shift);
            }
            UInt128 product = ((UInt128)(ulong)vcpu.Register(Registers.Rdx) << 64) | (ulong)vcpu.Register(Registers.Rax);
            return tk.BaseNs + (long)(ulong)((product + tk.Frac) >> tk.Shift);
        }
    }
}

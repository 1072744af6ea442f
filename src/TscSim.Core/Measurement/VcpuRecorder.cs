namespace TscSim.Core.Measurement;

/// <summary>
/// Everything the summary reports about one vCPU's clock and TSC reads, in constant memory:
/// read counts, skew statistics, drift and steps, per-vCPU monotonicity of the clock and of the TSC, and
/// read latency. Receives plain numbers, in exact true-time order per kind of read.
/// </summary>
/// <remarks>
/// <see cref="OnClockRead"/> and <see cref="OnTscRead"/> are called once per read (millions of
/// times per run): they take constant time and do not allocate. A read whose true time is before
/// the previous read's of the same kind is a caller bug and throws.
/// </remarks>
public sealed class VcpuRecorder
{
    private readonly StreamingStats _skew = new();
    private readonly StreamingStats _readCycles = new();
    private readonly PiecewiseDrift _drift = new();
    private readonly MonotonicityChecker _clock = new();
    private readonly MonotonicityChecker _tsc = new();
    private long _clockReadExits;
    private long _exitedClockReads;
    private long _tscExitedReads;
    private long _tscCycles;
    private long _lastClockTrueNs = long.MinValue;
    private long _lastTscTrueNs = long.MinValue;

    /// <summary>A recorder for vCPU <paramref name="id"/> (its index in the VM, from 0).</summary>
    public VcpuRecorder(int id)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(id);
        Id = id;
    }

    /// <summary>The vCPU's index in its VM (the summary's <c>id</c>).</summary>
    public int Id { get; }

    /// <summary>Guest clock reads recorded (<c>reads</c>), wild ones included.</summary>
    public long Reads => _skew.Count + _wildReads;

    /// <summary>Skew statistics in ns, skew = clock − true time (<c>skew_ns</c>).</summary>
    public StatsSummary SkewNs => _skew.Summarize();

    /// <summary>
    /// The clock's drift in ppm, the least-squares slope of skew against true time × 10^6 fitted
    /// piecewise between steps (<see cref="PiecewiseDrift"/>, <c>drift_ppm</c>); null without two
    /// reads at different true times between two steps.
    /// </summary>
    public double? DriftPpm => _drift.Ppm;

    /// <summary>Steps of the clock between consecutive reads (<see cref="SkewStep"/>, <c>steps</c>).</summary>
    public long Steps => _drift.Steps;

    /// <summary>The step of the largest magnitude in ns, signed; 0 if none (<c>largest_step_ns</c>).</summary>
    public long LargestStepNs => _drift.LargestStepNs;

    /// <summary>Clock reads that returned less than this vCPU's previous read (<c>violations</c>).</summary>
    public long Violations => _clock.Violations;

    /// <summary>Clock reads that returned the same value as this vCPU's previous read.</summary>
    public long Stalls => _clock.Stalls;

    /// <summary>The largest backward step of this vCPU's clock in ns, 0 if none (<c>worst_backstep_ns</c>).</summary>
    public ulong WorstBackstepNs => _clock.WorstBackstep;

    /// <summary>What the clock reads cost, in cycles (guest and exit) (<c>read_cycles</c>).</summary>
    public StatsSummary ReadCycles => _readCycles.Summarize();

    /// <summary>The total number of exits taken by clock reads.</summary>
    public long ClockReadExits => _clockReadExits;

    /// <summary>Clock reads that took at least one exit.</summary>
    public long ExitedClockReads => _exitedClockReads;

    /// <summary>TSC reads recorded (<c>tsc_reads</c>).</summary>
    public long TscReads => _tsc.Count;

    /// <summary>TSC reads that exited to the hypervisor.</summary>
    public long TscExitedReads => _tscExitedReads;

    /// <summary>The total cost of the TSC reads in cycles (guest and exit).</summary>
    public long TscCycles => _tscCycles;

    /// <summary>TSC reads below this vCPU's previous TSC read, compared as u64 (<c>tsc_violations</c>).</summary>
    public long TscViolations => _tsc.Violations;

    /// <summary>TSC reads equal to this vCPU's previous TSC read.</summary>
    public long TscStalls => _tsc.Stalls;

    /// <summary>The largest backward step of this vCPU's TSC in ticks, 0 if none (<c>tsc_worst_backstep_cycles</c>).</summary>
    public ulong TscWorstBackstepCycles => _tsc.WorstBackstep;

    /// <summary>
    /// A guest clock read at true time <paramref name="trueNs"/> (ns since start) returned
    /// <paramref name="clockNs"/> (guest ns), costing <paramref name="cycles"/> cycles and
    /// <paramref name="exits"/> exits. Returns true when the value went backwards on this vCPU.
    /// </summary>
    public bool OnClockRead(long trueNs, long clockNs, long cycles, int exits)
    {
        if (trueNs < _lastClockTrueNs)
        {
            throw OutOfOrder(trueNs, _lastClockTrueNs);
        }
        _lastClockTrueNs = trueNs;
        _readCycles.Add(cycles);
        _clockReadExits += exits;
        if (exits > 0)
        {
            _exitedClockReads++;
        }
        if (IsWild(clockNs, trueNs))
        {
            _wildReads++;
        }
        else
        {
            long skew = clockNs - trueNs;
            _skew.Add(skew);
            _drift.Add(trueNs, skew);
        }
        return _clock.Observe(clockNs);
    }

    /// <summary>
    /// |clock − true| beyond which a read is <em>wild</em>: 2^52 ns, about 52 days. A guest clock
    /// is a u64 of ns that a kernel can really wrap: a pvclock read whose TSC is behind
    /// <c>tsc_timestamp</c> scales the u64 difference (pvclock.h <c>__pvclock_read_cycles</c>)
    /// into a jump of the order of 2^63 ns, which <c>last_value</c> accepts as larger; an old
    /// kernel's unsigned delta jumps by ~2^42 ns (below the limit: an ordinary, huge skew). A wild
    /// read is counted (<see cref="WildReads"/>) and checked for monotonicity like any other, but
    /// kept out of the skew, drift and step statistics, whose sums it would overflow.
    /// </summary>
    public const long WildSkewNs = 1L << 52;

    /// <summary>Whether a read of <paramref name="clockNs"/> at <paramref name="trueNs"/> is wild (<see cref="WildSkewNs"/>).</summary>
    public static bool IsWild(long clockNs, long trueNs)
    {
        // The exact difference in 64 bits: when it overflows, its magnitude is at least 2^63,
        // beyond the limit; otherwise compare it (per read: no 128-bit arithmetic).
        long skew = unchecked(clockNs - trueNs);
        bool overflow = ((clockNs ^ trueNs) & (clockNs ^ skew)) < 0;
        return overflow || skew > WildSkewNs || skew < -WildSkewNs;
    }

    /// <summary>clock − true in ns, saturated at the ends of a long (for rows of reads.csv, wild ones included).</summary>
    public static long SaturatedSkew(long clockNs, long trueNs)
    {
        Int128 skew = (Int128)clockNs - trueNs;
        return skew > long.MaxValue ? long.MaxValue : skew < long.MinValue ? long.MinValue : (long)skew;
    }

    private long _wildReads;

    /// <summary>Clock reads whose skew was beyond <see cref="WildSkewNs"/> (kept out of the skew statistics).</summary>
    public long WildReads => _wildReads;

    /// <summary>
    /// A TSC read at true time <paramref name="trueNs"/> returned <paramref name="tscValue"/>
    /// (guest TSC ticks); <paramref name="exited"/> whether it exited, <paramref name="cycles"/>
    /// what it cost. Returns true when the value went backwards (as u64) on this vCPU.
    /// </summary>
    public bool OnTscRead(long trueNs, ulong tscValue, bool exited, long cycles)
    {
        if (trueNs < _lastTscTrueNs)
        {
            throw OutOfOrder(trueNs, _lastTscTrueNs);
        }
        _lastTscTrueNs = trueNs;
        if (exited)
        {
            _tscExitedReads++;
        }
        _tscCycles += cycles;
        return _tsc.ObserveUnsigned(tscValue);
    }

    internal static InvalidOperationException OutOfOrder(long trueNs, long previous) =>
        new($"Reads must arrive in true-time order: {trueNs} ns after {previous} ns.");
}

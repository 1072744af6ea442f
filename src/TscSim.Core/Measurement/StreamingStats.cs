namespace TscSim.Core.Measurement;

/// <summary>
/// Statistics of a long sequence of integer samples (skew in ns, cycles) in constant memory:
/// count, exact minimum, maximum and mean, the largest magnitude, the last value, and the median
/// and 99th percentile estimated by <see cref="P2Quantile"/>.
/// </summary>
/// <remarks>
/// The mean is exact up to the final conversion: the sum is kept as an <see cref="Int128"/>
/// (no overflow for fewer than 2^63 samples of any <see cref="long"/> values) and divided only
/// when read. <see cref="Add"/> does not allocate. Same sequence in, bit-identical results out.
/// </remarks>
public sealed class StreamingStats
{
    private readonly P2Quantile _p50 = new(0.5);
    private readonly P2Quantile _p99 = new(0.99);
    private long _count;
    private long _min = long.MaxValue;
    private long _max = long.MinValue;
    private Int128 _sum;
    private long _last;

    /// <summary>How many samples have been added.</summary>
    public long Count => _count;

    /// <summary>The exact sum of the samples (0 when empty).</summary>
    public Int128 Sum => _sum;

    /// <summary>The smallest sample; null when empty.</summary>
    public long? Min => _count == 0 ? null : _min;

    /// <summary>The largest sample; null when empty.</summary>
    public long? Max => _count == 0 ? null : _max;

    /// <summary>The most recent sample; null when empty.</summary>
    public long? Final => _count == 0 ? null : _last;

    /// <summary>
    /// The largest |sample| (= max(|min|, |max|)), as an unsigned value so that
    /// |<see cref="long.MinValue"/>| is representable; null when empty.
    /// </summary>
    public ulong? MaxAbs => _count == 0 ? null : Math.Max(Magnitude(_min), Magnitude(_max));

    /// <summary>
    /// The mean, sum / count, computed from the exact <see cref="Int128"/> sum as quotient plus
    /// remainder / count, so it is within one rounding of the true mean for any run length;
    /// null when empty.
    /// </summary>
    public double? Mean
    {
        get
        {
            if (_count == 0)
            {
                return null;
            }
            (Int128 quotient, Int128 remainder) = Int128.DivRem(_sum, _count);
            return (double)quotient + ((double)remainder / _count);
        }
    }

    /// <summary>The P² estimate of the median; null when empty (exact up to five samples).</summary>
    public double? P50 => _p50.Estimate;

    /// <summary>The P² estimate of the 99th percentile; null when empty (exact up to five samples).</summary>
    public double? P99 => _p99.Estimate;

    /// <summary>Adds one sample. Constant time, no allocation.</summary>
    public void Add(long value)
    {
        _count++;
        if (value < _min)
        {
            _min = value;
        }
        if (value > _max)
        {
            _max = value;
        }
        _sum += value;
        _last = value;
        _p50.Add(value);
        _p99.Add(value);
    }

    /// <summary>A copy of every statistic as it is now.</summary>
    public StatsSummary Summarize() => new(Count, Min, Max, Mean, P50, P99, MaxAbs, Final);

    /// <summary>|v| as an unsigned value; exact for <see cref="long.MinValue"/> too.</summary>
    internal static ulong Magnitude(long v) => v >= 0 ? (ulong)v : unchecked(0UL - (ulong)v);
}

/// <summary>
/// The statistics of a <see cref="StreamingStats"/> at one moment. Every value but
/// <see cref="Count"/> is null when there were no samples.
/// </summary>
/// <param name="Count">How many samples.</param>
/// <param name="Min">The smallest sample (exact).</param>
/// <param name="Max">The largest sample (exact).</param>
/// <param name="Mean">The mean (from the exact sum).</param>
/// <param name="P50">The median (P² estimate beyond five samples).</param>
/// <param name="P99">The 99th percentile (P² estimate beyond five samples).</param>
/// <param name="MaxAbs">The largest magnitude (exact).</param>
/// <param name="Final">The last sample.</param>
public readonly record struct StatsSummary(
    long Count, long? Min, long? Max, double? Mean, double? P50, double? P99, ulong? MaxAbs, long? Final);

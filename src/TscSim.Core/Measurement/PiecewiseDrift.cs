using System.Numerics;

namespace TscSim.Core.Measurement;

/// <summary>
/// The drift of a guest clock fitted piecewise: the reads are cut into segments at every
/// <see cref="SkewStep">step</see> (a discontinuity between consecutive reads), and one common
/// rate is fitted by least squares with a free offset per segment. Steps are counted and the
/// largest is kept, instead of being read as a slope. Streaming, in constant memory.
/// </summary>
/// <remarks>
/// <para>The rate is Σₛ Sxyₛ / Σₛ Sxxₛ over the segments s, where Sxyₛ = Σ(x − x̄ₛ)(y − ȳₛ) and
/// Sxxₛ = Σ(x − x̄ₛ)² within segment s (x true time, y skew, both ns): the least-squares slope of
/// skew against true time when each segment may have its own offset. Each segment weighs by its
/// spread in time (about its reads × its length²), so a long segment counts more than a short
/// one, and a segment of one read not at all. Without steps it is exactly
/// <see cref="DriftEstimator.Slope"/>. A clock ticking at the right rate with a 100 ms step has
/// drift 0 (the single least-squares line read the step as a slope).</para>
/// <para>Exactness: the current segment is a <see cref="DriftEstimator"/> (exact Int128 sums);
/// a segment's Sxy and Sxx, exact rationals, are truncated towards zero to integer ns² when a step
/// closes it (an error below 1 ns² per step, against sums of 10^5 ns² and more for any segment of
/// two reads 1 µs apart). Closing a segment allocates (it is rare); <see cref="Add"/> otherwise
/// does not.</para>
/// </remarks>
public sealed class PiecewiseDrift
{
    private readonly DriftEstimator _segment = new();
    private Int128 _closedSxy, _closedSxx;
    private long _count;
    private long _steps;
    private long _largestStep;
    private long _lastTrueNs, _lastSkewNs;

    /// <summary>How many samples have been added.</summary>
    public long Count => _count;

    /// <summary>How many steps were found between consecutive samples (<c>steps</c>).</summary>
    public long Steps => _steps;

    /// <summary>
    /// The step of the largest magnitude, signed (skew after − skew before, ns: a pause the clock
    /// did not see is negative); 0 when there was none (<c>largest_step_ns</c>).
    /// </summary>
    public long LargestStepNs => _largestStep;

    /// <summary>
    /// Adds a sample: <paramref name="trueNs"/> true time (not before the previous sample's),
    /// <paramref name="skewNs"/> the skew then. A step from the previous sample closes the segment.
    /// </summary>
    public void Add(long trueNs, long skewNs)
    {
        if (_count > 0)
        {
            if (trueNs < _lastTrueNs)
            {
                throw new ArgumentOutOfRangeException(nameof(trueNs), trueNs, $"Samples must come in true-time order (previous {_lastTrueNs} ns).");
            }
            long deltaSkew = checked(skewNs - _lastSkewNs);
            if (SkewStep.IsStep(trueNs - _lastTrueNs, deltaSkew))
            {
                _steps++;
                if (Int128.Abs(deltaSkew) > Int128.Abs(_largestStep))
                {
                    _largestStep = deltaSkew;
                }
                CloseSegment();
            }
        }
        _segment.Add(trueNs, skewNs);
        _count++;
        _lastTrueNs = trueNs;
        _lastSkewNs = skewNs;
    }

    private void CloseSegment()
    {
        if (_segment.Count >= 2)
        {
            (BigInteger sxy, BigInteger sxx) = _segment.ScaledCentered();
            BigInteger n = _segment.Count;
            _closedSxy = checked(_closedSxy + (Int128)(sxy / n));
            _closedSxx = checked(_closedSxx + (Int128)(sxx / n));
        }
        _segment.Reset();
    }

    /// <summary>
    /// The common rate (ns of skew per ns of true time); null when no segment has two samples at
    /// different true times (the rate is undefined).
    /// </summary>
    public double? Slope
    {
        get
        {
            (BigInteger sxy, BigInteger sxx) = _segment.ScaledCentered();
            BigInteger n = _segment.Count;
            BigInteger denominator = (n * (BigInteger)_closedSxx) + sxx;
            if (denominator.IsZero)
            {
                return null;
            }
            BigInteger numerator = (n * (BigInteger)_closedSxy) + sxy;
            return (double)numerator / (double)denominator;
        }
    }

    /// <summary>The rate in parts per million (slope × 10^6); null when the slope is.</summary>
    public double? Ppm => Slope * 1e6;
}

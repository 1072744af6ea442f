using System.Numerics;

namespace TscSim.Core.Measurement;

/// <summary>
/// The drift of a guest clock: the ordinary least-squares slope of skew (ns) against true time
/// (ns), streaming, in constant memory. A clock that gains 0.5 s per second has slope 0.5, i.e.
/// 500 000 ppm.
/// </summary>
/// <remarks>
/// Precision over long runs: every sample is shifted by the first sample (dx = x − x₀,
/// dy = y − y₀; the slope does not change) and the four sums Σdx, Σdy, Σdx², Σdx·dy are kept
/// exactly as <see cref="Int128"/>. The slope
/// (n·Σdx·dy − Σdx·Σdy) / (n·Σdx² − (Σdx)²) is then formed exactly with
/// <see cref="BigInteger"/> and rounded once, when it is read. Nothing is lost to cancellation,
/// however large the true-time offset or span: a 10^13 ns span with 10^9 samples keeps Σdx² near
/// 10^35, below the Int128 limit of 1.7·10^38 (beyond it checked arithmetic throws rather than
/// wrapping). <see cref="Add"/> does not allocate; reading the slope does (report time only).
/// </remarks>
public sealed class DriftEstimator
{
    private long _count;
    private long _x0, _y0;
    private Int128 _sx, _sy, _sxx, _sxy;

    /// <summary>How many samples have been added.</summary>
    public long Count => _count;

    /// <summary>Adds a sample: <paramref name="trueNs"/> true time, <paramref name="skewNs"/> the skew then.</summary>
    public void Add(long trueNs, long skewNs)
    {
        if (_count == 0)
        {
            _x0 = trueNs;
            _y0 = skewNs;
        }
        long dx = checked(trueNs - _x0);
        long dy = checked(skewNs - _y0);
        _count++;
        _sx += dx;
        _sy += dy;
        _sxx += (Int128)dx * dx;
        _sxy += (Int128)dx * dy;
    }

    /// <summary>
    /// The least-squares slope (ns of skew per ns of true time); null with fewer than two
    /// samples or when every sample has the same true time (the slope is undefined).
    /// </summary>
    public double? Slope
    {
        get
        {
            if (_count < 2)
            {
                return null;
            }
            (BigInteger numerator, BigInteger denominator) = ScaledCentered();
            if (denominator.IsZero)
            {
                return null;
            }
            // Both are below 2^200 (Int128 sums times a long count), far inside the double range:
            // each conversion rounds once.
            return (double)numerator / (double)denominator;
        }
    }

    /// <summary>The slope in parts per million (slope × 10^6); null when the slope is.</summary>
    public double? Ppm => Slope * 1e6;

    /// <summary>
    /// The centered sums times the count, exactly: (n·Σdx·dy − Σdx·Σdy, n·Σdx² − (Σdx)²), i.e.
    /// n·Σ(x − x̄)(y − ȳ) and n·Σ(x − x̄)². Both 0 with fewer than two samples. Allocates.
    /// </summary>
    internal (BigInteger Sxy, BigInteger Sxx) ScaledCentered()
    {
        BigInteger n = _count;
        BigInteger sx = (BigInteger)_sx, sy = (BigInteger)_sy;
        return ((n * (BigInteger)_sxy) - (sx * sy), (n * (BigInteger)_sxx) - (sx * sx));
    }

    /// <summary>Forgets every sample (as new).</summary>
    internal void Reset()
    {
        _count = 0;
        _x0 = _y0 = 0;
        _sx = _sy = _sxx = _sxy = 0;
    }
}

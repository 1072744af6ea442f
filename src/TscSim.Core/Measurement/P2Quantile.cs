namespace TscSim.Core.Measurement;

/// <summary>
/// A streaming estimate of one quantile with the P² algorithm (R. Jain and I. Chlamtac, "The P²
/// algorithm for dynamic calculation of quantiles and histograms without storing observations",
/// CACM 28(10), 1985): five markers whose heights approximate the minimum, the p/2, p and
/// (1+p)/2 quantiles and the maximum; each observation moves the markers' positions and, when a
/// middle marker drifts a whole position from where it should be, adjusts its height with a
/// piecewise-parabolic (P²) formula, or linearly when the parabola would leave its neighbours.
/// Memory and time per observation are constant.
/// </summary>
/// <remarks>
/// <para>Deterministic: the same sequence of observations gives bit-identical estimates (only
/// IEEE double arithmetic, no randomness, no accumulated increments: a marker's desired position
/// is recomputed from the count each time as 1 + (n − 1)·f instead of summing f once per
/// observation as the paper does, which gives the same positions without rounding drift).</para>
/// <para>Up to five observations the estimate is exact: linear interpolation between order
/// statistics at rank h = (n − 1)·p (Hyndman and Fan's definition 7, as R and Excel use).
/// After that it is the P² estimate, which is not guaranteed to be within any bound of the true
/// quantile; on smooth distributions it is typically within a fraction of a percent of the range
/// (see the tests for measured cases). Values are held as doubles: integers beyond ±2^53 are
/// rounded.</para>
/// </remarks>
public sealed class P2Quantile
{
    private readonly double _p;
    // Marker heights q[0..4] and positions n[0..4] (1-based positions, as in the paper). Until
    // five observations have arrived, q holds them (sorted) and n is unused.
    private readonly double[] _q = new double[5];
    private readonly long[] _n = new long[5];
    // Desired position of marker i is 1 + (count − 1) × _f[i].
    private readonly double[] _f;
    private long _count;

    /// <summary>An estimator of the <paramref name="p"/>-quantile, 0 &lt; p &lt; 1 (0.5 is the median).</summary>
    public P2Quantile(double p)
    {
        if (!(p > 0 && p < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(p), p, "The quantile must be strictly between 0 and 1.");
        }
        _p = p;
        _f = [0, p / 2, p, (1 + p) / 2, 1];
    }

    /// <summary>The quantile being estimated (between 0 and 1).</summary>
    public double P => _p;

    /// <summary>How many observations have been added.</summary>
    public long Count => _count;

    /// <summary>
    /// The current estimate; null before the first observation. Exact for up to five
    /// observations, the P² estimate (the middle marker's height) after.
    /// </summary>
    public double? Estimate
    {
        get
        {
            if (_count == 0)
            {
                return null;
            }
            if (_count > 5)
            {
                return _q[2];
            }
            // Exact, definition 7: the initial observations are kept sorted in _q[0.._count).
            double h = (_count - 1) * _p;
            int lo = (int)Math.Floor(h);
            if (lo >= _count - 1)
            {
                return _q[_count - 1];
            }
            return _q[lo] + ((h - lo) * (_q[lo + 1] - _q[lo]));
        }
    }

    /// <summary>Adds one observation. Constant time, no allocation.</summary>
    public void Add(double x)
    {
        double[] q = _q;
        long[] n = _n;
        if (_count < 5)
        {
            // Insertion into the sorted initial buffer.
            int j = (int)_count;
            while (j > 0 && q[j - 1] > x)
            {
                q[j] = q[j - 1];
                j--;
            }
            q[j] = x;
            _count++;
            if (_count == 5)
            {
                for (int i = 0; i < 5; i++)
                {
                    n[i] = i + 1;
                }
            }
            return;
        }

        _count++;

        // Find the cell k with q[k] <= x < q[k+1]; extend the extremes.
        int k;
        if (x < q[0])
        {
            q[0] = x;
            k = 0;
        }
        else if (x < q[1])
        {
            k = 0;
        }
        else if (x < q[2])
        {
            k = 1;
        }
        else if (x < q[3])
        {
            k = 2;
        }
        else if (x <= q[4])
        {
            k = 3;
        }
        else
        {
            q[4] = x;
            k = 3;
        }
        for (int i = k + 1; i < 5; i++)
        {
            n[i]++;
        }

        // Adjust the three middle markers if they are off their desired position by one or more.
        double countMinusOne = _count - 1;
        for (int i = 1; i <= 3; i++)
        {
            double desired = 1 + (countMinusOne * _f[i]);
            double d = desired - n[i];
            if ((d >= 1 && n[i + 1] - n[i] > 1) || (d <= -1 && n[i - 1] - n[i] < -1))
            {
                int s = d >= 0 ? 1 : -1;
                double candidate = Parabolic(i, s);
                if (q[i - 1] < candidate && candidate < q[i + 1])
                {
                    q[i] = candidate;
                }
                else
                {
                    q[i] = Linear(i, s);
                }
                n[i] += s;
            }
        }
    }

    // The P² (piecewise-parabolic) prediction of marker i's height when it moves by s (±1).
    private double Parabolic(int i, int s)
    {
        double[] q = _q;
        long[] n = _n;
        double nPrev = n[i - 1], nI = n[i], nNext = n[i + 1];
        return q[i] + (s / (nNext - nPrev) * (
            ((nI - nPrev + s) * (q[i + 1] - q[i]) / (nNext - nI)) +
            ((nNext - nI - s) * (q[i] - q[i - 1]) / (nI - nPrev))));
    }

    // Linear prediction towards the neighbour in direction s.
    private double Linear(int i, int s)
    {
        double[] q = _q;
        long[] n = _n;
        return q[i] + (s * (q[i + s] - q[i]) / (n[i + s] - n[i]));
    }
}

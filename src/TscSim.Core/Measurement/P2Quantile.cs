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
    // Marker heights q0..q4 and positions n0..n4 (1-based positions, as in the paper), in fields
    // rather than arrays: Add is called four times per clock read, and fields cost no bounds
    // checks and no indirection. Until five observations have arrived, q0..q4 hold them (sorted)
    // and n0..n4 are unused.
    private double _q0, _q1, _q2, _q3, _q4;
    private long _n0, _n1, _n2, _n3, _n4;
    // Desired position of marker i is 1 + (count − 1) × f_i (f_0 = 0 and f_4 = 1 are not needed).
    private readonly double _f1, _f2, _f3;
    private long _count;

    /// <summary>An estimator of the <paramref name="p"/>-quantile, 0 &lt; p &lt; 1 (0.5 is the median).</summary>
    public P2Quantile(double p)
    {
        if (!(p > 0 && p < 1))
        {
            throw new ArgumentOutOfRangeException(nameof(p), p, "The quantile must be strictly between 0 and 1.");
        }
        _p = p;
        _f1 = p / 2;
        _f2 = p;
        _f3 = (1 + p) / 2;
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
                return _q2;
            }
            // Exact, definition 7: the initial observations are kept sorted in q0..q(count − 1).
            double h = (_count - 1) * _p;
            int lo = (int)Math.Floor(h);
            if (lo >= _count - 1)
            {
                return Height((int)_count - 1);
            }
            return Height(lo) + ((h - lo) * (Height(lo + 1) - Height(lo)));
        }
    }

    private double Height(int i) => i switch { 0 => _q0, 1 => _q1, 2 => _q2, 3 => _q3, _ => _q4 };

    /// <summary>Adds one observation. Constant time, no allocation.</summary>
    public void Add(double x)
    {
        if (_count < 5)
        {
            AddInitial(x);
            return;
        }

        _count++;

        // Find the cell k with q[k] <= x < q[k+1]; extend the extremes; markers above the cell move up.
        if (x < _q1)
        {
            if (x < _q0)
            {
                _q0 = x;
            }
            _n1++;
            _n2++;
            _n3++;
        }
        else if (x < _q2)
        {
            _n2++;
            _n3++;
        }
        else if (x < _q3)
        {
            _n3++;
        }
        else if (!(x <= _q4))
        {
            _q4 = x;
        }
        _n4++;

        // Adjust the three middle markers, in order, if they are off their desired position by one or more.
        double countMinusOne = _count - 1;
        Adjust(1 + (countMinusOne * _f1), _q0, ref _q1, _q2, _n0, ref _n1, _n2);
        Adjust(1 + (countMinusOne * _f2), _q1, ref _q2, _q3, _n1, ref _n2, _n3);
        Adjust(1 + (countMinusOne * _f3), _q2, ref _q3, _q4, _n2, ref _n3, _n4);
    }

    /// <summary>The first five observations: insertion into the sorted initial buffer.</summary>
    private void AddInitial(double x)
    {
        Span<double> q = [_q0, _q1, _q2, _q3, _q4];
        int j = (int)_count;
        while (j > 0 && q[j - 1] > x)
        {
            q[j] = q[j - 1];
            j--;
        }
        q[j] = x;
        (_q0, _q1, _q2, _q3, _q4) = (q[0], q[1], q[2], q[3], q[4]);
        _count++;
        if (_count == 5)
        {
            (_n0, _n1, _n2, _n3, _n4) = (1, 2, 3, 4, 5);
        }
    }

    /// <summary>
    /// Moves a middle marker (height <paramref name="q"/>, position <paramref name="n"/>, between
    /// its neighbours' heights and positions) one position towards its desired position when it is
    /// off by one or more and the neighbour leaves room: the P² (piecewise-parabolic) height if it
    /// stays strictly between the neighbours' heights, else the linear one.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Adjust(double desired, double qPrev, ref double q, double qNext, long nPrev, ref long n, long nNext)
    {
        double d = desired - n;
        if ((d >= 1 && nNext - n > 1) || (d <= -1 && nPrev - n < -1))
        {
            int s = d >= 0 ? 1 : -1;
            // No height lies strictly between equal neighbours: then the parabola cannot be taken
            // and is not computed (the result is the same, three divisions fewer).
            double candidate = qPrev < qNext ? Parabolic(qPrev, q, qNext, nPrev, n, nNext, s) : qPrev;
            if (qPrev < candidate && candidate < qNext)
            {
                q = candidate;
            }
            else
            {
                q = s > 0 ? Linear(q, qNext, n, nNext, s) : Linear(q, qPrev, n, nPrev, s);
            }
            n += s;
        }
    }

    // The P² (piecewise-parabolic) prediction of a marker's height when it moves by s (±1).
    private static double Parabolic(double qPrev, double q, double qNext, long nPrevL, long nL, long nNextL, int s)
    {
        double nPrev = nPrevL, nI = nL, nNext = nNextL;
        return q + (s / (nNext - nPrev) * (
            ((nI - nPrev + s) * (qNext - q) / (nNext - nI)) +
            ((nNext - nI - s) * (q - qPrev) / (nI - nPrev))));
    }

    // Linear prediction towards the neighbour (height qTo, position nTo) in direction s.
    private static double Linear(double q, double qTo, long n, long nTo, int s) =>
        q + (s * (qTo - q) / (nTo - n));
}

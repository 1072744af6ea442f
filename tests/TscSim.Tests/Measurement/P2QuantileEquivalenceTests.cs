namespace TscSim.Tests.Measurement;

/// <summary>
/// <see cref="TscSim.Core.Measurement.P2Quantile"/> keeps its markers in fields and skips the
/// parabola when it cannot be taken: its estimates must be bit-identical to the array-based
/// implementation it replaced (kept here verbatim as the reference), on every kind of sequence.
/// </summary>
public class P2QuantileEquivalenceTests
{
    public static TheoryData<string> Sequences => new() { "uniform", "constant", "two-valued", "skewed", "ramp", "spikes" };

    private static IEnumerable<long> Sequence(string kind, int count)
    {
        var random = new Random(kind.Length * 7919);
        for (int i = 0; i < count; i++)
        {
            yield return kind switch
            {
                "uniform" => random.NextInt64(-1_000_000, 1_000_000),
                "constant" => 92,
                "two-valued" => random.Next(10) == 0 ? -38 : -37,
                "skewed" => (long)Math.Floor(-Math.Log(1 - random.NextDouble()) * 1_000),
                "ramp" => i / 3,
                _ => random.Next(1_000) == 0 ? -1_430 : -37 - random.Next(2),
            };
        }
    }

    [Theory]
    [MemberData(nameof(Sequences))]
    public void Estimates_are_bit_identical_to_the_array_based_reference(string kind)
    {
        foreach (double p in new[] { 0.5, 0.99, 0.01, 0.9 })
        {
            var fast = new TscSim.Core.Measurement.P2Quantile(p);
            var reference = new ReferenceP2(p);
            int n = 0;
            foreach (long x in Sequence(kind, 50_000))
            {
                fast.Add(x);
                reference.Add(x);
                n++;
                if (n < 100 || n % 997 == 0)
                {
                    Assert.Equal(reference.Estimate is double r ? BitConverter.DoubleToInt64Bits(r) : (long?)null,
                        fast.Estimate is double f ? BitConverter.DoubleToInt64Bits(f) : (long?)null);
                }
            }
            Assert.Equal(BitConverter.DoubleToInt64Bits(reference.Estimate!.Value), BitConverter.DoubleToInt64Bits(fast.Estimate!.Value));
        }
    }

    /// <summary>The implementation before the change (TscSim main, Measurement/P2Quantile.cs), verbatim.</summary>
    private sealed class ReferenceP2
    {
        public ReferenceP2(double p)
        {
            _p = p;
            _f = [0, p / 2, p, (1 + p) / 2, 1];
        }

        private readonly double _p;
        // Marker heights q[0..4] and positions n[0..4] (1-based positions, as in the paper). Until
        // five observations have arrived, q holds them (sorted) and n is unused.
        private readonly double[] _q = new double[5];
        private readonly long[] _n = new long[5];
        // Desired position of marker i is 1 + (count − 1) × _f[i].
        private readonly double[] _f;
        private long _count;

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
}

using MathNet.Numerics;
using MathNet.Numerics.LinearRegression;
using TscSim.Core.Engine;
using TscSim.Core.Measurement;

namespace TscSim.Tests.Measurement;

public class DriftEstimatorTests
{
    [Fact]
    public void A_clock_gaining_half_a_second_per_second_drifts_500000_ppm_over_a_1e13_ns_span()
    {
        var d = new DriftEstimator();
        const long start = 10_000_000_000_000; // 10^13 ns offset as well as a 10^13 ns span
        for (long t = 0; t <= 10_000_000_000_000; t += 1_000_000_000)
        {
            long trueNs = start + t;
            long clockNs = trueNs + (t / 2); // the guest clock runs 1.5 s per second
            d.Add(trueNs, clockNs - trueNs);
        }
        Assert.Equal(10_001, d.Count);
        double ppm = d.Ppm!.Value;
        Assert.True(Math.Abs(ppm - 500_000) <= 500_000 * 1e-6, $"drift {ppm} ppm");
    }

    [Fact]
    public void Slope_of_three_points_worked_by_hand()
    {
        // (0,0) (1,1) (2,4): (3*9 - 3*5) / (3*5 - 3^2) = 12 / 6 = 2, wherever x starts.
        foreach (long x0 in new long[] { 0, 1_000_000_000_000_000 })
        {
            var d = new DriftEstimator();
            d.Add(x0, 0);
            d.Add(x0 + 1, 1);
            d.Add(x0 + 2, 4);
            Assert.Equal(2.0, d.Slope);
            Assert.Equal(2_000_000.0, d.Ppm);
        }
    }

    [Fact]
    public void Slope_is_undefined_for_one_sample_or_one_instant()
    {
        var d = new DriftEstimator();
        Assert.Null(d.Slope);
        d.Add(5, 1);
        Assert.Null(d.Ppm);
        d.Add(5, 9);
        Assert.Null(d.Slope);
        d.Add(6, 9);
        Assert.NotNull(d.Slope);
    }

    [Fact]
    public void Matches_mathnet_least_squares_on_a_stored_noisy_sample()
    {
        // 5 ppm drift plus ±2 µs noise, irregular spacing, true time far from zero.
        var rng = RandomStreams.Derive(5, "measurement.tests.drift");
        const int n = 20_000;
        var xs = new double[n];
        var ys = new double[n];
        var d = new DriftEstimator();
        long t = 7_000_000_000_000;
        for (int i = 0; i < n; i++)
        {
            t += rng.NextInt64(1, 2_000_000_000);
            long skew = 123_456 + ((t - 7_000_000_000_000) / 200_000) + rng.NextInt64(-2_000, 2_001);
            d.Add(t, skew);
            xs[i] = t;
            ys[i] = skew;
        }
        (double _, double slope) = SimpleRegression.Fit(xs, ys);
        (double _, double slopeLine) = Fit.Line(xs, ys);
        Assert.Equal(slope, slopeLine, 12);
        Assert.True(Math.Abs(d.Slope!.Value - slope) <= Math.Abs(slope) * 1e-9, $"{d.Slope} vs MathNet {slope}");
        Assert.InRange(d.Ppm!.Value, 4.99, 5.01);
    }

    [Fact]
    public void Precision_holds_for_a_short_window_far_from_time_zero()
    {
        // 100 000 reads 100 µs apart (a 10 s window) after 10^15 ns (11.6 days): plain double sums
        // of x and x² cancel catastrophically here ((10^15 / 10^10)² = 10^10 lost to cancellation).
        const long start = 1_000_000_000_000_000;
        var rng = RandomStreams.Derive(6, "measurement.tests.drift.late");
        var exact = new DriftEstimator();
        var noisy = new DriftEstimator();
        var xs = new double[100_000];
        var ys = new double[100_000];
        for (int i = 0; i < xs.Length; i++)
        {
            long t = start + (i * 100_000L);
            exact.Add(t, t / 2);
            long skew = -40_000 + ((t - start) / 200_000) + rng.NextInt64(-500, 501);
            noisy.Add(t, skew);
            xs[i] = t;
            ys[i] = skew;
        }
        Assert.True(Math.Abs(exact.Ppm!.Value - 500_000) <= 500_000 * 1e-9, $"drift {exact.Ppm} ppm");
        (double _, double slope) = SimpleRegression.Fit(xs, ys);
        Assert.True(Math.Abs(noisy.Slope!.Value - slope) <= Math.Abs(slope) * 1e-9, $"{noisy.Slope} vs MathNet {slope}");
    }
}

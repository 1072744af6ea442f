using TscSim.Core.Engine;
using TscSim.Core.Measurement;

namespace TscSim.Tests.Measurement;

public class StreamingStatsTests
{
    /// <summary>1..n in an order fixed by the seed (Fisher–Yates over a named stream).</summary>
    internal static long[] Shuffled(int n, ulong seed)
    {
        var values = new long[n];
        for (int i = 0; i < n; i++)
        {
            values[i] = i + 1;
        }
        var rng = RandomStreams.Derive(seed, "measurement.tests.shuffle");
        for (int i = n - 1; i > 0; i--)
        {
            int j = (int)rng.NextUInt64((ulong)i + 1);
            (values[i], values[j]) = (values[j], values[i]);
        }
        return values;
    }

    [Fact]
    public void Empty_stats_are_null()
    {
        var s = new StreamingStats();
        Assert.Equal(new StatsSummary(0, null, null, null, null, null, null, null), s.Summarize());
    }

    [Fact]
    public void Five_samples_give_exact_values_worked_by_hand()
    {
        var s = new StreamingStats();
        foreach (long v in new long[] { 5, -3, 10, 0, -7 })
        {
            s.Add(v);
        }
        // Sorted: -7 -3 0 5 10. Definition 7: p50 at rank 2 -> 0; p99 at rank 3.96 -> 5 + 0.96 * 5.
        Assert.Equal(5, s.Count);
        Assert.Equal(-7L, s.Min);
        Assert.Equal(10L, s.Max);
        Assert.Equal((Int128)5, s.Sum);
        Assert.Equal(1.0, s.Mean);
        Assert.Equal(10UL, s.MaxAbs);
        Assert.Equal(-7L, s.Final);
        Assert.Equal(0.0, s.P50);
        Assert.Equal(9.8, s.P99!.Value, 12);
    }

    [Fact]
    public void Max_abs_takes_the_larger_magnitude_of_either_sign()
    {
        var s = new StreamingStats();
        s.Add(3);
        s.Add(-12);
        s.Add(7);
        Assert.Equal(12UL, s.MaxAbs);
        s.Add(long.MinValue);
        Assert.Equal(9_223_372_036_854_775_808UL, s.MaxAbs); // |long.MinValue|, not an overflow
    }

    [Fact]
    public void Mean_is_exact_where_a_double_sum_loses_the_small_terms()
    {
        // A double accumulator gives 2^53 + 1 = 2^53, then 0: mean 0 instead of 1/3.
        var s = new StreamingStats();
        s.Add(1L << 53);
        s.Add(1);
        s.Add(-(1L << 53));
        Assert.Equal(1.0 / 3.0, s.Mean);
    }

    [Fact]
    public void Sum_beyond_the_long_range_does_not_overflow()
    {
        var s = new StreamingStats();
        s.Add(long.MaxValue);
        s.Add(long.MaxValue);
        s.Add(-1);
        Assert.Equal(((Int128)1 << 64) - 3, s.Sum);
        // (2^64 - 3) / 3 = 6148914691236517204.33..., nearest double 6148914691236516864.
        Assert.Equal(6148914691236516864.0, s.Mean);
    }

    [Fact]
    public void Constant_samples_give_that_constant_for_every_quantile()
    {
        var s = new StreamingStats();
        for (int i = 0; i < 10_000; i++)
        {
            s.Add(42);
        }
        Assert.Equal(42.0, s.P50);
        Assert.Equal(42.0, s.P99);
        Assert.Equal(42.0, s.Mean);
    }

    [Fact]
    public void P2_estimates_a_shuffled_uniform_range_within_a_tenth_of_a_percent()
    {
        // Exact (definition 7) for 1..100000: p50 = 50000.5, p99 = 1 + 99999 * 0.99 = 99000.01.
        // Stated tolerance: 0.1% of the range (100). Measured: p50 off by 12.4 and p99 by 0.6 with
        // this seed; over seeds 1-9 the p50 error stayed below 32 and the p99 error below 7.
        var s = new StreamingStats();
        foreach (long v in Shuffled(100_000, 7))
        {
            s.Add(v);
        }
        Assert.Equal(1L, s.Min);
        Assert.Equal(100_000L, s.Max);
        Assert.Equal(50_000.5, s.Mean);
        Assert.InRange(s.P50!.Value, 50_000.5 - 100, 50_000.5 + 100);
        Assert.InRange(s.P99!.Value, 99_000.01 - 100, 99_000.01 + 100);
    }

    [Fact]
    public void P2_estimates_a_skewed_distribution_within_half_a_percent()
    {
        // Exponential-like latencies (mean 1000), heavy right tail; exact quantiles from the
        // sorted sample with MathNet's definition 7. Measured relative error: p50 0.04%, p99 0.08%.
        var rng = RandomStreams.Derive(11, "measurement.tests.exponential");
        var data = new double[200_000];
        var s = new StreamingStats();
        for (int i = 0; i < data.Length; i++)
        {
            double u = (rng.NextUInt64() >> 11) * (1.0 / (1UL << 53));
            long v = 100 + (long)(-1000 * Math.Log(1 - u));
            data[i] = v;
            s.Add(v);
        }
        double p50 = MathNet.Numerics.Statistics.Statistics.QuantileCustom(data, 0.5, MathNet.Numerics.Statistics.QuantileDefinition.R7);
        double p99 = MathNet.Numerics.Statistics.Statistics.QuantileCustom(data, 0.99, MathNet.Numerics.Statistics.QuantileDefinition.R7);
        Assert.InRange(s.P50!.Value, p50 * 0.995, p50 * 1.005);
        Assert.InRange(s.P99!.Value, p99 * 0.995, p99 * 1.005);
    }

    [Fact]
    public void Same_input_gives_bit_identical_results()
    {
        var a = new StreamingStats();
        var b = new StreamingStats();
        var other = new StreamingStats();
        foreach (long v in Shuffled(50_000, 3))
        {
            a.Add(v * 37 - 900_000);
            b.Add(v * 37 - 900_000);
        }
        foreach (long v in Shuffled(50_000, 4))
        {
            other.Add(v * 37 - 900_000);
        }
        Assert.Equal(BitConverter.DoubleToInt64Bits(a.P50!.Value), BitConverter.DoubleToInt64Bits(b.P50!.Value));
        Assert.Equal(BitConverter.DoubleToInt64Bits(a.P99!.Value), BitConverter.DoubleToInt64Bits(b.P99!.Value));
        Assert.Equal(a.Summarize(), b.Summarize());
        // The estimate does depend on order (P² is not order-free), so the check above is not vacuous.
        Assert.NotEqual(a.P50, other.P50);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(-0.5)]
    [InlineData(double.NaN)]
    public void A_quantile_outside_0_1_is_rejected(double p) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new P2Quantile(p));

    [Fact]
    public void P2_quantile_is_exact_for_up_to_five_observations()
    {
        var q = new P2Quantile(0.25);
        Assert.Null(q.Estimate);
        q.Add(40);
        Assert.Equal(40.0, q.Estimate);
        q.Add(10);
        Assert.Equal(17.5, q.Estimate); // rank 0.25 between 10 and 40
        q.Add(30);
        q.Add(20);
        Assert.Equal(17.5, q.Estimate); // 10 20 30 40: rank 0.75 -> 10 + 0.75 * 10
    }
}

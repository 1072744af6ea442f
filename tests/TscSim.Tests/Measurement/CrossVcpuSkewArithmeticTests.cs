using TscSim.Core.Measurement;

namespace TscSim.Tests.Measurement;

/// <summary>
/// <see cref="CrossVcpuSkew"/>'s 64-bit path (operands below 2^30) and its 128-bit path give the
/// definition's value: |s_b − ŝ| rounded half up, ŝ = s′ + (s − s′)(t_b − t′)/(t − t′),
/// computed here independently in <see cref="Int128"/>, on both sides of the 2^30 boundary.
/// </summary>
public class CrossVcpuSkewArithmeticTests
{
    private static ulong Expected(long tFrom, long sFrom, long t, long s, long tb, long sb)
    {
        Int128 span = t - tFrom;
        Int128 scaled = (Int128)sb * span - (Int128)sFrom * span - ((Int128)s - sFrom) * (tb - tFrom);
        return (ulong)((Int128.Abs(scaled) + span / 2) / span);
    }

    [Theory]
    [InlineData(1_000L, 5L, 11_000L, 7L, 6_000L, -3L)]                                  // small: 64-bit path
    [InlineData(0L, (1L << 30) - 1, (1L << 30) - 1, (1L << 30) - 2, 12_345L, -(1L << 30) + 1)] // just inside
    [InlineData(0L, 1L << 30, 1L << 30, (1L << 30) + 999_999, 777_777L, -(1L << 30))]      // just outside: 128-bit path
    [InlineData(5L, 3_000_000_000L, 4_000_000_005L, 3_000_500_000L, 2_000_000_005L, -3_000_000_000L)] // far outside
    public void The_candidate_is_the_interpolated_skew_difference_rounded_half_up(long tFrom, long sFrom, long t, long s, long tb, long sb)
    {
        var skew = new CrossVcpuSkew(2);
        Assert.Null(skew.Observe(0, tFrom, sFrom));
        Assert.Null(skew.Observe(1, tb, sb)); // vCPU 0's single read at tFrom is no bracket around tb
        Assert.Equal(Expected(tFrom, sFrom, t, s, tb, sb), skew.Observe(0, t, s));
    }

    [Fact]
    public void Random_brackets_on_both_paths_match_the_definition()
    {
        var rng = new Random(20261130);
        for (int i = 0; i < 20_000; i++)
        {
            int bits = rng.Next(4, 40); // magnitudes from tiny to well past 2^30
            long range = 1L << bits;
            long tFrom = rng.NextInt64(0, range);
            long span = rng.NextInt64(1, range);
            long sFrom = rng.NextInt64(-range, range);
            long s = sFrom + rng.NextInt64(-999_999, 1_000_000); // not a step: within 1 ms
            long tb = tFrom + rng.NextInt64(0, span + 1);
            long sb = rng.NextInt64(-range, range);
            var skew = new CrossVcpuSkew(2);
            skew.Observe(0, tFrom, sFrom);
            skew.Observe(1, tb, sb);
            Assert.Equal(Expected(tFrom, sFrom, tFrom + span, s, tb, sb), skew.Observe(0, tFrom + span, s));
        }
    }

    [Fact]
    public void Record_keeps_the_same_maximum_as_Observe_on_long_random_runs()
    {
        // Record skips the division of a candidate that cannot beat the maximum so far; the
        // maximum after every read must be Observe's, on small skews (the 64-bit path, where the
        // skip applies) and large ones, with steps and several vCPUs.
        var rng = new Random(19);
        foreach (int bits in new[] { 6, 12, 20, 34 })
        {
            var observed = new CrossVcpuSkew(4);
            var recorded = new CrossVcpuSkew(4);
            long t = 0;
            var skews = new long[4];
            for (int i = 0; i < 50_000; i++)
            {
                int v = rng.Next(4);
                t += rng.NextInt64(0, 20_000);
                skews[v] += rng.Next(100) == 0 ? rng.NextInt64(-(1L << bits), 1L << bits) : rng.NextInt64(-50, 51);
                observed.Observe(v, t, skews[v]);
                recorded.Record(v, t, skews[v]);
                Assert.Equal(observed.MaxSkew, recorded.MaxSkew);
            }
        }
    }
}

using TscSim.Core.Measurement;

namespace TscSim.Tests.Measurement;

/// <summary>
/// A clock read whose skew exceeds 2^52 ns is wild: counted and checked for monotonicity, kept out
/// of the skew statistics (a wrapped u64 pvclock difference reads as ~2^63 ns and used to overflow
/// clock − true).
/// </summary>
public class WildReadTests
{
    [Fact]
    public void The_wild_limit_is_two_to_the_52_ns_either_way()
    {
        Assert.False(VcpuRecorder.IsWild(1L << 52, 0));
        Assert.True(VcpuRecorder.IsWild((1L << 52) + 1, 0));
        Assert.False(VcpuRecorder.IsWild(0, 1L << 52));
        Assert.True(VcpuRecorder.IsWild(-1, 1L << 52));
        // The read that overflowed: clock = 2^63 + 10,398,393 ns as a u64 (negative as a long).
        Assert.True(VcpuRecorder.IsWild(-9_223_372_036_844_377_415, 11_002_394));
        Assert.Equal(long.MinValue, VcpuRecorder.SaturatedSkew(-9_223_372_036_844_377_415, 11_002_394));
        Assert.Equal(long.MaxValue, VcpuRecorder.SaturatedSkew(long.MaxValue, -1));
        Assert.Equal(-5, VcpuRecorder.SaturatedSkew(5, 10));
    }

    [Fact]
    public void A_wild_read_counts_as_a_read_but_not_in_the_skew_statistics_and_a_later_ordinary_read_is_fine()
    {
        var recorder = new VcpuRecorder(0);
        recorder.OnClockRead(11_002_394, -9_223_372_036_844_377_415, 200, 1);
        recorder.OnClockRead(12_000_000, 12_000_050, 200, 1);
        Assert.Equal(2, recorder.Reads);
        Assert.Equal(1, recorder.WildReads);
        Assert.Equal(50UL, recorder.SkewNs.MaxAbs);
    }
}

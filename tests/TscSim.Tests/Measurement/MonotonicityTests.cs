using TscSim.Core.Measurement;

namespace TscSim.Tests.Measurement;

public class MonotonicityTests
{
    [Fact]
    public void A_backward_step_of_5_is_one_violation_of_5_and_a_repeat_is_a_stall()
    {
        var m = new MonotonicityChecker();
        Assert.False(m.Observe(10));
        Assert.False(m.Observe(20));
        Assert.True(m.Observe(15));
        Assert.False(m.Observe(15));
        Assert.False(m.Observe(30));
        Assert.Equal(5, m.Count);
        Assert.Equal(1, m.Violations);
        Assert.Equal(5UL, m.WorstBackstep);
        Assert.Equal(1, m.Stalls);
    }

    [Fact]
    public void Worst_backstep_is_the_largest_of_several()
    {
        var m = new MonotonicityChecker();
        foreach (long v in new long[] { 100, 90, 95, 80, 85, 84 })
        {
            m.Observe(v);
        }
        Assert.Equal(3, m.Violations); // 90 (10), 80 (15), 84 (1)
        Assert.Equal(15UL, m.WorstBackstep);
        Assert.Equal(0, m.Stalls);
    }

    [Fact]
    public void The_first_value_is_never_a_violation_or_stall()
    {
        var m = new MonotonicityChecker();
        Assert.False(m.Observe(long.MinValue));
        Assert.Equal(0, m.Violations);
        Assert.Equal(0, m.Stalls);
        Assert.Equal(0UL, m.WorstBackstep);
    }

    [Fact]
    public void Backward_steps_are_exact_across_the_whole_signed_range()
    {
        var m = new MonotonicityChecker();
        m.Observe(long.MaxValue);
        Assert.True(m.Observe(long.MinValue));
        Assert.Equal(ulong.MaxValue, m.WorstBackstep);
        Assert.False(m.Observe(-1));
        Assert.False(m.Observe(0)); // -1 -> 0 is forward, not a wrap
    }

    [Fact]
    public void Tsc_values_are_compared_as_unsigned_64_bit()
    {
        var m = new MonotonicityChecker();
        Assert.False(m.ObserveUnsigned(1UL << 63)); // negative as a long, large as a u64
        Assert.False(m.ObserveUnsigned(ulong.MaxValue - 1));
        Assert.True(m.ObserveUnsigned(5)); // a wrap is a backward step, as the guest sees it
        Assert.Equal(ulong.MaxValue - 6, m.WorstBackstep);
    }
}

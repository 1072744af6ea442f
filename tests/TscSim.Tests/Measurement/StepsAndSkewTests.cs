using TscSim.Core.Measurement;

namespace TscSim.Tests.Measurement;

/// <summary>
/// Drift fitted between steps, steps reported apart, and skew between vCPUs at one instant:
/// synthetic read sequences with values worked by hand.
/// </summary>
public class StepsAndSkewTests
{
    private const long Ms = 1_000_000;
    private const long Us = 1_000;

    [Theory]
    [InlineData(10 * Ms, 1 * Ms, false)]      // 1 ms is not more than the threshold
    [InlineData(10 * Ms, 5 * Ms, false)]      // a clock at 3/2 speed drifts, reads 10 ms apart
    [InlineData(10 * Ms, 10 * Ms, false)]     // twice the true rate is still ticking
    [InlineData(10 * Ms, 10 * Ms + 1, true)]  // just over twice: a jump
    [InlineData(10 * Ms, -5 * Ms, false)]     // half the true rate is still ticking
    [InlineData(10 * Ms, -5 * Ms - 1, true)]  // just under half
    [InlineData(100 * Ms, -99 * Ms, true)]    // a 100 ms pause the clock did not see
    [InlineData(1 * Us, -2 * Ms, true)]       // the clock set back
    [InlineData(0, 500_000, false)]           // jitter below 1 ms at one instant
    public void A_step_is_a_change_above_1ms_at_a_rate_outside_half_to_twice(long deltaTrue, long deltaSkew, bool step)
    {
        Assert.Equal(step, SkewStep.IsStep(deltaTrue, deltaSkew));
    }

    [Fact]
    public void Reads_at_one_instant_more_than_1ms_apart_are_a_step()
    {
        Assert.True(SkewStep.IsStep(0, 2 * Ms));
        Assert.True(SkewStep.IsStep(0, -2 * Ms));
    }

    [Fact]
    public void A_clock_at_the_right_rate_with_one_100ms_step_drifts_0_ppm_with_one_step()
    {
        var piecewise = new PiecewiseDrift();
        var single = new DriftEstimator();
        for (long t = 0; t < 1000 * Ms; t += Ms)
        {
            long skew = t >= 500 * Ms ? 100 * Ms : 0; // the clock jumps 100 ms forward at 500 ms
            piecewise.Add(t, skew);
            single.Add(t, skew);
        }
        Assert.Equal(0.0, piecewise.Ppm);
        Assert.Equal(1, piecewise.Steps);
        Assert.Equal(100 * Ms, piecewise.LargestStepNs);
        // One least-squares line through the step reads it as a slope of about 0.15 (150,000 ppm).
        Assert.True(single.Ppm > 149_000, $"{single.Ppm}");
    }

    [Fact]
    public void The_rate_is_one_least_squares_slope_with_an_offset_per_segment()
    {
        var d = new PiecewiseDrift();
        // Segment 1: slope 0.01, Sxx = 2·1000² = 2e6, Sxy = 2e4.
        d.Add(0, 0);
        d.Add(1000, 10);
        d.Add(2000, 20);
        // A 5 ms jump in 1 µs, then segment 2: slope 0.03, Sxx = 2e6, Sxy = 6e4.
        d.Add(3000, 5 * Ms);
        d.Add(4000, (5 * Ms) + 30);
        d.Add(5000, (5 * Ms) + 60);
        Assert.Equal(1, d.Steps);
        Assert.Equal((5 * Ms) - 20, d.LargestStepNs);
        Assert.Equal(20_000.0, d.Ppm!.Value, 9); // (2e4 + 6e4) / (2e6 + 2e6) = 0.02
    }

    [Fact]
    public void The_largest_step_keeps_its_sign_and_the_largest_magnitude()
    {
        var d = new PiecewiseDrift();
        d.Add(0, 0);
        d.Add(1 * Us, 3 * Ms);        // +3 ms
        d.Add(2 * Us, -2 * Ms);       // -5 ms
        d.Add(3 * Us, 2 * Ms);        // +4 ms
        Assert.Equal(3, d.Steps);
        Assert.Equal(-5 * Ms, d.LargestStepNs);
        Assert.Null(d.Ppm); // every segment is one read: no rate
    }

    [Fact]
    public void A_clock_at_three_halves_speed_drifts_500000_ppm_without_steps_even_with_sparse_reads()
    {
        var d = new PiecewiseDrift();
        for (long t = 0; t <= 1000 * Ms; t += 10 * Ms)
        {
            d.Add(t, t / 2); // 5 ms more skew per read
        }
        Assert.Equal(0, d.Steps);
        Assert.Equal(0L, d.LargestStepNs);
        Assert.Equal(500_000.0, d.Ppm!.Value, 6);
    }

    [Fact]
    public void A_vcpu_recorder_reports_a_pause_as_a_step_not_as_drift()
    {
        // The legacy-guest case: the clock stops during a 100 ms pause, then ticks right again.
        var r = new VcpuRecorder(0);
        long clock = 0;
        for (long t = 0; t < 2000 * Ms; t += Ms)
        {
            if (t == 1000 * Ms)
            {
                t += 100 * Ms; // paused: true time goes on, the clock does not
            }
            r.OnClockRead(t, clock, 100, 0);
            clock += Ms;
        }
        Assert.Equal(1, r.Steps);
        Assert.Equal(-100 * Ms, r.LargestStepNs);
        Assert.Equal(0.0, r.DriftPpm);
    }

    /// <summary>
    /// Two vCPUs read alternately every 1 ms, vCPU 1 half a millisecond after vCPU 0, its clock
    /// <paramref name="offset"/> ns ahead; both clocks ticking at <paramref name="rateNum"/> /
    /// <paramref name="rateDen"/> of true time; optionally a pause from 100 ms to 200 ms that
    /// both clocks do not see.
    /// </summary>
    private static VmRecorder Alternating(long offset, long rateNum = 1, long rateDen = 1, bool pause = false, bool clocksSeePause = false)
    {
        var vm = new VmRecorder("vm0", 2);
        for (long t = 0; t < 300 * Ms; t += Ms)
        {
            if (pause && t == 100 * Ms)
            {
                t = 200 * Ms;
            }
            foreach ((int vcpu, long at) in new[] { (0, t), (1, t + (Ms / 2)) })
            {
                long running = pause && !clocksSeePause && at >= 200 * Ms ? at - (100 * Ms) : at;
                long clock = (running * rateNum / rateDen) + (vcpu == 1 ? offset : 0);
                vm.OnClockRead(vcpu, at - 200, at, clock, 100, 0);
            }
        }
        return vm;
    }

    [Fact]
    public void Two_vcpus_50us_apart_reading_alternately_have_a_max_skew_of_50us()
    {
        Assert.Equal(50 * Us, (long)Alternating(50 * Us).CrossMaxSkewNs!.Value);
        Assert.Equal(50 * Us, (long)Alternating(-50 * Us).CrossMaxSkewNs!.Value);
    }

    [Fact]
    public void A_100ms_pause_on_both_vcpus_leaves_the_max_skew_unchanged()
    {
        VmRecorder unseen = Alternating(50 * Us, pause: true);
        Assert.Equal(-100 * Ms, unseen.Vcpus[0].LargestStepNs); // the clocks did lose the pause
        Assert.Equal(50 * Us, (long)unseen.CrossMaxSkewNs!.Value);
        Assert.Equal(50 * Us, (long)Alternating(50 * Us, pause: true, clocksSeePause: true).CrossMaxSkewNs!.Value);
    }

    [Fact]
    public void Synchronized_clocks_at_three_halves_speed_have_no_skew_between_them()
    {
        // Reads 0.5 ms apart of clocks gaining 0.5 ns per ns: a nearest-read comparison would say 250 µs.
        Assert.Equal(0UL, Alternating(0, 3, 2).CrossMaxSkewNs);
        Assert.Equal(50 * Us, (long)Alternating(50 * Us, 3, 2).CrossMaxSkewNs!.Value);
    }

    [Fact]
    public void A_vcpu_that_stopped_reading_is_not_compared_with_later_reads()
    {
        var vm = new VmRecorder("vm0", 2);
        for (long t = 0; t < 20 * Ms; t += Ms)
        {
            long clock = t >= 10 * Ms ? t + (5 * Ms) : t; // vCPU 0's clock is set 5 ms ahead at 10 ms
            vm.OnClockRead(0, t, clock, 10, 0);
            if (t == 0)
            {
                vm.OnClockRead(1, 500 * Us, 500 * Us, 10, 0); // vCPU 1 reads once, in sync, and idles
            }
        }
        Assert.Equal(0UL, vm.CrossMaxSkewNs); // compared once, at 0.5 ms, in sync; never with the stale read
        Assert.Equal(1, vm.Vcpus[0].Steps);
    }

    [Fact]
    public void Interpolated_differences_round_to_the_nearest_ns_halves_up()
    {
        var half = new CrossVcpuSkew(2);
        half.Observe(0, 0, 0);
        half.Observe(1, 1, 0);
        half.Observe(0, 2, 1); // vCPU 0 at 1 is 0.5: |0 - 0.5| rounds to 1
        Assert.Equal(1UL, half.MaxSkew);

        var third = new CrossVcpuSkew(2);
        third.Observe(0, 0, 0);
        third.Observe(1, 1, 0);
        third.Observe(0, 3, 1); // vCPU 0 at 1 is 1/3: rounds to 0
        Assert.Equal(0UL, third.MaxSkew);
    }

    [Fact]
    public void First_reads_at_one_instant_are_compared_directly_and_a_lone_vcpu_never()
    {
        var s = new CrossVcpuSkew(3);
        s.Observe(0, 100, 5);
        Assert.Null(s.MaxSkew);
        s.Observe(0, 200, 50);
        Assert.Null(s.MaxSkew); // a vCPU is never compared with itself
        s.Observe(1, 200, -3);
        Assert.Equal(53UL, s.MaxSkew); // the same instant as vCPU 0's latest: |-3 - 50|
        s.Observe(2, 250, 0);
        Assert.Equal(53UL, s.MaxSkew); // a first read, and nobody else's latest read is at 250
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Observe(3, 300, 0));
    }
}

using TscSim.Core.Hardware;
using TscSim.Core.Time;

namespace TscSim.Tests.Hardware;

public class LinearCounterTests
{
    private const long Unit = ExactMath.PicosecondMillihertzPerCycle;

    /// <summary>The counter's value by definition: ⌊(ticks0 × 10^15 + (t − start) × rate) / 10^15⌋ mod 2^64, in 128 bits.</summary>
    private static ulong Expected(Int128 phase0, long start, long rate, long t) =>
        unchecked((ulong)ExactMath.FloorDiv(phase0 + ((Int128)(t - start) * rate), Unit));

    [Fact]
    public void Reads_in_any_order_within_a_segment_equal_the_exact_value()
    {
        // Readers at different instants take turns (a vCPU ahead, then the hypervisor at the
        // engine's now): reads step forward and back around the cache. Every read, in whatever
        // order, is the exact floor of the 128-bit phase, wrapping at 2^64.
        var random = new Random(19);
        foreach (long rate in new[] { 2_000_000_000_000L, 2_100_000_123_457L, 3_333_333_333_333L, 1L })
        {
            foreach (Int128 initial in new Int128[] { 0, 123_456_789, ulong.MaxValue - 5_000_000UL })
            {
                long start = 1_000_000;
                var counter = new LinearCounter(SimTime.FromPicoseconds(start), initial, Frequency.FromMillihertz(rate));
                long t = start;
                for (int i = 0; i < 20_000; i++)
                {
                    long step = random.Next(5) switch
                    {
                        0 => random.Next(0, 1_000),                   // a little later
                        1 => -random.Next(0, 20_000),                 // a little earlier
                        2 => random.NextInt64(0, 50_000_000_000),     // much later
                        3 => random.NextInt64(0, 200_000_000),        // a few cache steps later (up to 200 µs)
                        _ => -random.NextInt64(0, 50_000_000_000),    // much earlier
                    };
                    t = Math.Max(start, t + step);
                    Assert.Equal(Expected(initial * Unit, start, rate, t), counter.ValueAt(SimTime.FromPicoseconds(t)));
                }
            }
        }
    }

    [Fact]
    public void A_read_stepping_back_across_ticks_borrows_whole_ticks()
    {
        // 2 GHz: 500 ps per tick. At 1,250 ps the counter has 2 ticks (remainder half a tick);
        // 600 ps earlier (650 ps) it has 1; at 499 ps, 0; at 0, 0.
        var counter = new LinearCounter(SimTime.Zero, 0, Frequency.FromMegahertz(2_000));
        Assert.Equal(2UL, counter.ValueAt(SimTime.FromPicoseconds(1_250)));
        Assert.Equal(1UL, counter.ValueAt(SimTime.FromPicoseconds(650)));
        Assert.Equal(0UL, counter.ValueAt(SimTime.FromPicoseconds(499)));
        Assert.Equal(1UL, counter.ValueAt(SimTime.FromPicoseconds(500)));
        Assert.Equal(0UL, counter.ValueAt(SimTime.Zero));
    }

    [Fact]
    public void A_read_before_the_segment_still_throws_after_a_later_read()
    {
        var counter = new LinearCounter(SimTime.FromPicoseconds(1_000), 0, Frequency.FromMegahertz(2_000));
        counter.SetRate(SimTime.FromPicoseconds(5_000), Frequency.FromMegahertz(1_000));
        Assert.Equal(10UL, counter.ValueAt(SimTime.FromPicoseconds(7_000))); // 8 ticks by 5,000 ps, then 2 at 1 GHz
        Assert.Throws<ArgumentOutOfRangeException>(() => counter.ValueAt(SimTime.FromPicoseconds(4_999)));
    }
}

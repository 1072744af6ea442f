using TscSim.Core.Guest;
using TscSim.Core.Time;
using Xunit;

namespace TscSim.Tests.Guest;

/// <summary>The slice clock's 64-bit fast arithmetic against the 128-bit definition.</summary>
public class SliceClockTests
{
    private const long Unit = ExactMath.PicosecondMillihertzPerCycle;

    [Theory]
    [InlineData(0UL, 0UL)]
    [InlineData(0UL, 999_999_999_999_999UL)]
    [InlineData(0UL, 1_000_000_000_000_000UL)]
    [InlineData(0UL, ulong.MaxValue)]
    [InlineData(1UL, 0UL)]
    [InlineData(30_517_578_125UL * 32768 - 1, ulong.MaxValue)] // the largest numerator with a 64-bit quotient
    public void Divide_by_unit_is_the_128_bit_floor_division(ulong hi, ulong lo)
    {
        UInt128 n = ((UInt128)hi << 64) | lo;
        Assert.Equal((ulong)(n / Unit), SliceClock.DivideByUnit(hi, lo));
    }

    [Fact]
    public void Divide_by_unit_matches_on_random_numerators()
    {
        var rng = new System.Random(12345);
        for (int i = 0; i < 100_000; i++)
        {
            ulong hi = (ulong)rng.NextInt64() % (30_517_578_125UL << 15);
            ulong lo = (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40);
            if (i % 3 == 0)
            {
                hi >>= rng.Next(0, 50); // small quotients too
            }
            UInt128 n = ((UInt128)hi << 64) | lo;
            Assert.Equal((ulong)(n / Unit), SliceClock.DivideByUnit(hi, lo));
        }
    }

    [Theory]
    [InlineData(2_000_000_000_000L, 0L, 1L)]                // 2 GHz: 500 ps a cycle
    [InlineData(2_000_000_000_000L, 1_999_999_999_999L, 1_000_000_000L)]
    [InlineData(2_900_000_000_000L, 123_456_789L, 987_654_321_000L)]
    [InlineData(1L, 0L, 1L)]                                  // 1 mHz
    [InlineData(17_000_000_000_000L, 5L, long.MaxValue - 10)] // 17 GHz, the farthest horizon
    [InlineData(3_333_333_333_333L, 3_333_333_333_332L, 4_611_686_018_427_387_903L)]
    public void Cycles_until_is_the_smallest_k_whose_instant_reaches_the_horizon(long f, long carry, long horizon)
    {
        var clock = new SliceClock();
        clock.Start(SimTime.Zero, Frequency.FromMillihertz(f), carry);
        long k = clock.CyclesUntil(horizon);
        Int128 exact = (((Int128)horizon * f - carry) + Unit - 1) / Unit; // ⌈(span f − c) / 10^15⌉
        Assert.Equal(exact > long.MaxValue / 2 ? long.MaxValue / 2 : (long)exact, k);
        if (k < long.MaxValue / 2)
        {
            // t(k) ≥ horizon > t(k − 1): t(k) = ⌊(c + k × 10^15) / f⌋
            Assert.True(((Int128)k * Unit + carry) / f >= horizon);
            Assert.True(k == 0 || ((Int128)(k - 1) * Unit + carry) / f < horizon);
        }
    }
}

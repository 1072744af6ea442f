using TscSim.Core.Abi;
using TscSim.Core.Virtualization;

namespace TscSim.Tests.Virtualization;

/// <summary>kvm_get_time_scale and the pvclock formula, against values worked by hand from the algorithm (arch/x86/kvm/x86.c, asm/pvclock.h).</summary>
public class PvclockTests
{
    [Theory]
    // TSC Hz -> (shift, mul, what one second of ticks converts to)
    [InlineData(2_000_000_000UL, 0, 0x8000_0000u, 1_000_000_000UL)] // exactly 1/2: no truncation
    [InlineData(3_000_000_000UL, -1, 0xAAAA_AAAAu, 999_999_999UL)]  // 2/3 truncated: loses 1 ns per second
    [InlineData(2_400_000_000UL, -1, 0xD555_5555u, 999_999_999UL)]
    [InlineData(1_000_000_000UL, 1, 0x8000_0000u, 1_000_000_000UL)]
    [InlineData(14_318_180UL, 7, 0x8BAE_BC15u, 999_999_999UL)]     // an HPET-rate counter
    [InlineData(3_579_545UL, 9, 0x8BAE_BC15u, 999_999_999UL)]      // the PM timer: 1/4 of it, same mul
    [InlineData(100_000_000UL, 4, 0xA000_0000u, 1_000_000_000UL)]
    [InlineData(4_294_967_296UL, -2, 0xEE6B_2800u, 1_000_000_000UL)] // 2^32 Hz: the tps64 >= 2^32 branch
    public void Get_time_scale_matches_the_hand_worked_algorithm(ulong tscHz, int shift, uint mul, ulong nsPerSecondOfTicks)
    {
        var (s, m) = Pvclock.GetTimeScale(1_000_000_000, tscHz);
        Assert.Equal((sbyte)shift, s);
        Assert.Equal(mul, m);
        Assert.Equal(nsPerSecondOfTicks, PvclockAbi.ScaleDelta(tscHz, m, s));
        Assert.InRange(m, 0x8000_0000u, 0xFFFF_FFFFu); // normalised
    }

    [Fact]
    public void Nanoseconds_to_cycles_uses_the_same_algorithm_the_other_way()
    {
        var (s, m) = Pvclock.GetTimeScale(3_000_000_000, 1_000_000_000);
        Assert.Equal((sbyte)2, s);
        Assert.Equal(0xC000_0000u, m);
        Assert.Equal(3_000_000_000UL, PvclockAbi.ScaleDelta(1_000_000_000, m, s));
    }

    [Fact]
    public void A_guest_recovers_the_tsc_rate_from_mul_and_shift()
    {
        Assert.Equal(3_000_000UL, PvclockAbi.TscKhz(0xAAAA_AAAAu, -1));
        Assert.Equal(2_000_000UL, PvclockAbi.TscKhz(0x8000_0000u, 0));
    }

    [Fact]
    public void A_read_adds_the_scaled_delta_to_system_time_across_a_tsc_wrap()
    {
        var info = new PvclockTimeInfo(2, ulong.MaxValue - 999, 5_000, 0x8000_0000u, 0, PvclockAbi.TscStableBit);
        Assert.Equal(5_000UL + 1_000, info.Read(1_000)); // 2,000 ticks later across the wrap, at 2 GHz = 1,000 ns
        Assert.Throws<ArgumentOutOfRangeException>(() => Pvclock.GetTimeScale(1, 0));
    }
}

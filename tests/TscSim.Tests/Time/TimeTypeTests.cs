using TscSim.Core.Time;

namespace TscSim.Tests.Time;

public class TimeTypeTests
{
    [Fact]
    public void Every_time_type_obeys_the_comparison_and_equality_laws()
    {
        Laws.Comparison(Duration.FromPicoseconds(-5), Duration.FromPicoseconds(-5), Duration.FromPicoseconds(7));
        Laws.Comparison(SimTime.FromPicoseconds(5), SimTime.FromPicoseconds(5), SimTime.FromPicoseconds(6));
        Laws.Comparison(new Cycles(-1), new Cycles(-1), new Cycles(0));
        Laws.Comparison(Frequency.FromHertz(1), Frequency.FromMillihertz(1000), Frequency.FromMillihertz(1001));
        Laws.Comparison(Ppm.FromPartsPerMillion(-1), Ppm.FromPartsPerBillion(-1000), Ppm.Zero);
        Laws.Comparison(new GuestNanoseconds(-3), new GuestNanoseconds(-3), new GuestNanoseconds(3));
    }

    [Fact]
    public void Duration_addition_and_subtraction_are_inverse_and_zero_is_identity()
    {
        var a = Duration.FromPicoseconds(123_456_789);
        var b = Duration.FromNanoseconds(-42);
        Assert.Equal(a, a + Duration.Zero);
        Assert.Equal(a, a - Duration.Zero);
        Assert.Equal(a + b, b + a);
        Assert.Equal(a, a + b - b);
        Assert.Equal(Duration.Zero, a + -a);
        Assert.Equal(-42_000, b.Picoseconds);
    }

    [Fact]
    public void Duration_unit_constructors_scale_exactly()
    {
        Assert.Equal(1_000L, Duration.FromNanoseconds(1).Picoseconds);
        Assert.Equal(1_000_000L, Duration.FromMicroseconds(1).Picoseconds);
        Assert.Equal(1_000_000_000L, Duration.FromMilliseconds(1).Picoseconds);
        Assert.Equal(1_000_000_000_000L, Duration.FromSeconds(1).Picoseconds);
        Assert.Equal(4, Duration.FromMilliseconds(1) / Duration.FromMicroseconds(250));
        Assert.Equal(-1, Duration.FromPicoseconds(-1) / Duration.FromSeconds(1)); // floor, not truncation
        Assert.Equal(-2, Duration.FromPicoseconds(-1_500).NanosecondsFloor);
    }

    [Fact]
    public void Overflow_throws_instead_of_wrapping()
    {
        Assert.Throws<OverflowException>(() => Duration.MaxValue + Duration.FromPicoseconds(1));
        Assert.Throws<OverflowException>(() => -Duration.FromPicoseconds(long.MinValue));
        Assert.Throws<OverflowException>(() => Duration.FromSeconds(10_000_000));
        Assert.Throws<OverflowException>(() => SimTime.MaxValue + Duration.FromPicoseconds(1));
        Assert.Throws<OverflowException>(() => SimTime.Zero - Duration.FromPicoseconds(1));
        Assert.Throws<OverflowException>(() => SimTime.FromPicoseconds(-1));
        Assert.Throws<OverflowException>(() => new Cycles(long.MaxValue) + new Cycles(1));
        Assert.Throws<OverflowException>(() => Frequency.FromMegahertz(long.MaxValue / 1000));
    }

    [Fact]
    public void SimTime_differences_are_durations_and_round_trip()
    {
        var t0 = SimTime.FromPicoseconds(1_000);
        var t1 = t0 + Duration.FromNanoseconds(5);
        Assert.Equal(Duration.FromPicoseconds(5_000), t1 - t0);
        Assert.Equal(Duration.FromPicoseconds(-5_000), t0 - t1);
        Assert.Equal(t0, t1 - Duration.FromNanoseconds(5));
        Assert.Equal(6, t1.NanosecondsFloor);
        Assert.Equal(t1, SimTime.Max(t0, t1));
        Assert.Equal(t0, SimTime.Min(t0, t1));
    }

    [Fact]
    public void Maximum_span_is_about_106_days()
    {
        // 2^63 - 1 ps = 9,223,372 s = 106 days 17 h (the "~106 days").
        Assert.Equal(106, Duration.MaxValue.Picoseconds / Duration.FromSeconds(86_400).Picoseconds);
    }

    [Fact]
    public void Thousand_cycles_at_3GHz_last_333333_ps_rounded_down()
    {
        var f = Frequency.FromMegahertz(3_000);
        Assert.Equal(333_333L, f.DurationOf(new Cycles(1_000)).Picoseconds);
        Assert.Equal(333_334L, f.DurationOfCeiling(new Cycles(1_000)).Picoseconds);
        Assert.Equal(333_333L, (new Cycles(1_000) / f).Picoseconds);
        // Exact multiples need no rounding: 3 cycles at 3 GHz = 1 ns.
        Assert.Equal(1_000L, f.DurationOf(new Cycles(3)).Picoseconds);
        Assert.Equal(1_000L, f.DurationOfCeiling(new Cycles(3)).Picoseconds);
    }

    [Fact]
    public void Negative_cycle_counts_round_toward_negative_infinity()
    {
        var f = Frequency.FromMegahertz(3_000);
        Assert.Equal(-333_334L, f.DurationOf(new Cycles(-1_000)).Picoseconds);
        Assert.Equal(-333_333L, f.DurationOfCeiling(new Cycles(-1_000)).Picoseconds);
    }

    [Fact]
    public void Ticks_in_a_duration_round_down()
    {
        var hpet = Quantity.ParseFrequency("14.31818MHz");
        // 1 ms x 14,318,180 Hz = 14,318.18 ticks -> 14,318.
        Assert.Equal(14_318L, hpet.TicksIn(Duration.FromMilliseconds(1)).Count);
        // 1 s at 2.4 GHz is exactly 2.4e9 ticks.
        Assert.Equal(2_400_000_000L, Quantity.ParseFrequency("2.4GHz").TicksIn(Duration.FromSeconds(1)).Count);
        // One picosecond less than a tick at 1 GHz (1000 ps) is zero ticks.
        Assert.Equal(0L, Frequency.FromMegahertz(1_000).TicksIn(Duration.FromPicoseconds(999)).Count);
        Assert.Equal(-1L, Frequency.FromMegahertz(1_000).TicksIn(Duration.FromPicoseconds(-1)).Count);
    }

    [Fact]
    public void Conversions_survive_a_100_day_run_at_5GHz_without_overflow()
    {
        // 100 days at 5 GHz = 4.32e16 cycles; cycles x 10^15 needs the 128-bit intermediate.
        var f = Frequency.FromMegahertz(5_000);
        var span = Duration.FromSeconds(100L * 86_400);
        Cycles c = f.TicksIn(span);
        Assert.Equal(43_200_000_000_000_000L, c.Count);
        Assert.Equal(span, f.DurationOf(c));
    }

    [Fact]
    public void Ppm_drift_changes_a_frequency_exactly()
    {
        // 2 GHz + 5 ppm = 2,000,010,000 Hz.
        Assert.Equal(Frequency.FromHertz(2_000_010_000), Frequency.FromMegahertz(2_000).WithDrift(Ppm.FromPartsPerMillion(5)));
        // 14.31818 MHz - 1 ppb = 14,318,180,000 mHz - 14.31818 mHz -> floor = 14,318,179,985 mHz.
        Assert.Equal(14_318_179_985L, Quantity.ParseFrequency("14.31818MHz").WithDrift(Ppm.FromPartsPerBillion(-1)).Millihertz);
        Assert.Equal(Frequency.FromMegahertz(100), Frequency.FromMegahertz(100).WithDrift(Ppm.Zero));
        Assert.Throws<ArgumentOutOfRangeException>(() => Frequency.FromHertz(1).WithDrift(Ppm.FromPartsPerMillion(-1_000_001)));
    }

    [Fact]
    public void A_stopped_counter_never_reaches_a_cycle_but_counts_zero_ticks()
    {
        Assert.Throws<DivideByZeroException>(() => Frequency.Zero.DurationOf(new Cycles(1)));
        Assert.Equal(Cycles.Zero, Frequency.Zero.TicksIn(Duration.FromSeconds(1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Frequency.FromMillihertz(-1));
    }

    [Fact]
    public void Frequency_reports_whole_hertz_and_kilohertz()
    {
        var f = Quantity.ParseFrequency("2.4GHz");
        Assert.Equal(2_400_000_000L, f.HertzFloor);
        Assert.Equal(2_400_000L, f.KilohertzFloor);
        Assert.Equal(Frequency.FromKilohertz(2_400_000), f);
    }

    [Fact]
    public void TscValue_wraps_modulo_2_to_the_64_like_the_hardware()
    {
        var nearTop = new TscValue(ulong.MaxValue - 1);
        TscValue wrapped = nearTop + 3;
        Assert.Equal(1UL, wrapped.Raw);
        Assert.Equal(3L, wrapped - nearTop);   // later across the wrap: still +3
        Assert.Equal(-3L, nearTop - wrapped);
        Assert.Equal(nearTop, wrapped - 3);
        Assert.Equal(new TscValue(ulong.MaxValue), new TscValue(0) + -1);
        var v = new TscValue(0x0123_4567_89AB_CDEFUL);
        Assert.Equal(0x89AB_CDEFu, v.Low);
        Assert.Equal(0x0123_4567u, v.High);
        Assert.Equal("0x0123456789abcdef", v.ToString());
        Laws.Equality(v, new TscValue(v.Raw), wrapped);
    }

    [Fact]
    public void Guest_nanoseconds_give_exact_skew_against_true_time()
    {
        var read = new GuestNanoseconds(1_000_000);
        var trueTime = SimTime.FromPicoseconds(999_999_500);
        Assert.Equal(Duration.FromPicoseconds(500), read.SkewAgainst(trueTime));
        Assert.Equal(-1L, new GuestNanoseconds(4) - new GuestNanoseconds(5));
    }

    [Theory]
    [InlineData(0L, "0s")]
    [InlineData(1L, "1ps")]
    [InlineData(333_333L, "333.333ns")]
    [InlineData(1_500_000_000L, "1.5ms")]
    [InlineData(20_000_000_000_000L, "20s")]
    [InlineData(-250_000_000_000L, "-250ms")]
    [InlineData(long.MaxValue, "9223372.036854775807s")]
    public void Duration_text_is_exact_and_parses_back(long ps, string text)
    {
        var d = Duration.FromPicoseconds(ps);
        Assert.Equal(text, d.ToString());
        Assert.Equal(d, Quantity.ParseDuration(text));
    }

    [Theory]
    [InlineData(14_318_180_000L, "14.31818MHz")]
    [InlineData(2_400_000_000_000L, "2.4GHz")]
    [InlineData(1L, "1mHz")]
    [InlineData(0L, "0GHz")]
    [InlineData(3_579_545_000L, "3.579545MHz")]
    public void Frequency_text_is_exact_and_parses_back(long mHz, string text)
    {
        var f = Frequency.FromMillihertz(mHz);
        Assert.Equal(text, f.ToString());
        Assert.Equal(f, Quantity.ParseFrequency(text));
    }

    [Fact]
    public void Other_types_print_text_the_parser_reads_back()
    {
        Assert.Equal("1200cycles", new Cycles(1200).ToString());
        Assert.Equal(new Cycles(1200), Quantity.ParseCycles(new Cycles(1200).ToString()));
        Assert.Equal("-0.125ppm", Ppm.FromPartsPerBillion(-125).ToString());
        Assert.Equal(Ppm.FromPartsPerBillion(-125), Quantity.ParsePpm("-0.125ppm"));
        Assert.Equal("t=1us", SimTime.FromPicoseconds(1_000_000).ToString());
    }
}

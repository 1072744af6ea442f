namespace TscSim.Core.Time;

/// <summary>
/// Integer helpers shared by the time types: floor and ceiling division through 128-bit
/// intermediates, and narrowing back to 64 bits with overflow detection. No floating point.
/// </summary>
public static class ExactMath
{
    /// <summary>Picoseconds in one second (10^12).</summary>
    public const long PicosecondsPerSecond = 1_000_000_000_000L;

    /// <summary>
    /// Picoseconds-per-second times millihertz-per-hertz (10^15): the constant that turns
    /// (cycles, millihertz) into picoseconds and (picoseconds, millihertz) into cycles.
    /// </summary>
    public const long PicosecondMillihertzPerCycle = 1_000_000_000_000_000L;

    /// <summary>floor(a / b) for b &gt; 0, rounding toward negative infinity (not toward zero).</summary>
    public static Int128 FloorDiv(Int128 a, Int128 b)
    {
        if (b <= 0)
        {
            throw new DivideByZeroException("FloorDiv needs a positive divisor.");
        }
        Int128 q = a / b;
        if (a % b != 0 && a < 0)
        {
            q -= 1;
        }
        return q;
    }

    /// <summary>ceil(a / b) for b &gt; 0, rounding toward positive infinity.</summary>
    public static Int128 CeilDiv(Int128 a, Int128 b)
    {
        if (b <= 0)
        {
            throw new DivideByZeroException("CeilDiv needs a positive divisor.");
        }
        Int128 q = a / b;
        if (a % b != 0 && a > 0)
        {
            q += 1;
        }
        return q;
    }

    /// <summary>Narrows a 128-bit intermediate to <see cref="long"/>, throwing on overflow.</summary>
    public static long ToInt64Checked(Int128 value, string what)
    {
        if (value > long.MaxValue || value < long.MinValue)
        {
            throw new OverflowException($"{what} does not fit in 64 bits ({value}).");
        }
        return (long)value;
    }
}

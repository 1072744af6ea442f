using System.Globalization;
using System.Numerics;
using System.Text;

namespace TscSim.Core.Time;

/// <summary>
/// Exact decimal text for the time types: the largest unit whose integer part is non-zero,
/// fractional digits trimmed (<c>333.333ns</c>, <c>14.31818MHz</c>). Every string it makes
/// parses back to the same value with <see cref="Quantity"/>.
/// </summary>
public static class QuantityFormat
{
    private static readonly (string Unit, int Decimals)[] DurationUnits =
        [("s", 12), ("ms", 9), ("us", 6), ("ns", 3), ("ps", 0)];

    private static readonly (string Unit, int Decimals)[] FrequencyUnits =
        [("GHz", 12), ("MHz", 9), ("kHz", 6), ("Hz", 3), ("mHz", 0)];

    public static string Duration(long ps) => WithLargestUnit(ps, DurationUnits);

    public static string Frequency(long mHz) => WithLargestUnit(mHz, FrequencyUnits);

    private static string WithLargestUnit(long value, (string Unit, int Decimals)[] units)
    {
        if (value == 0)
        {
            return "0" + units[0].Unit;
        }
        BigInteger magnitude = BigInteger.Abs(value);
        foreach (var (unit, decimals) in units)
        {
            if (magnitude >= BigInteger.Pow(10, decimals))
            {
                return Decimal(value, decimals) + unit;
            }
        }
        return Decimal(value, 0) + units[^1].Unit;
    }

    /// <summary><paramref name="value"/> / 10^<paramref name="decimals"/> as exact decimal text, trailing zeros trimmed.</summary>
    public static string Decimal(long value, int decimals)
    {
        BigInteger v = value;
        var sb = new StringBuilder();
        if (v < 0)
        {
            sb.Append('-');
            v = -v;
        }
        BigInteger scale = BigInteger.Pow(10, decimals);
        BigInteger whole = BigInteger.DivRem(v, scale, out BigInteger frac);
        sb.Append(whole.ToString(CultureInfo.InvariantCulture));
        if (!frac.IsZero)
        {
            string digits = frac.ToString(CultureInfo.InvariantCulture).PadLeft(decimals, '0').TrimEnd('0');
            sb.Append('.').Append(digits);
        }
        return sb.ToString();
    }
}

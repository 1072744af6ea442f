using System.Numerics;

namespace TscSim.Core.Time;

/// <summary>Where and why a quantity did not parse. <see cref="Column"/> is 1-based within the text.</summary>
public readonly record struct QuantityError(int Column, string Message)
{
    public override string ToString() => $"column {Column}: {Message}";
}

/// <summary>A quantity that did not parse; the message says what was expected.</summary>
public sealed class QuantityFormatException(QuantityError error) : FormatException(error.Message)
{
    public QuantityError Error { get; } = error;
}

/// <summary>
/// Parses quantities with units as scenario files write them: <c>20s</c>, <c>250ms</c>,
/// <c>3us</c>, <c>2.4GHz</c>, <c>14.31818MHz</c>, <c>5ppm</c>, <c>1200cycles</c>.
/// </summary>
/// <remarks>
/// Grammar: optional sign, digits (an <c>_</c> may separate digits), optional <c>.</c> and
/// more digits, optional spaces, a unit. Units are case-sensitive (<c>mHz</c> is millihertz,
/// <c>MHz</c> megahertz). The value is computed exactly with big integers; a value finer than
/// the type's resolution (1 ps, 1 mHz, 1 cycle, 1 ppb) or outside its 64-bit range is
/// rejected, never rounded. No floating point.
/// </remarks>
public static class Quantity
{
    private sealed record Unit(string Name, long Factor);

    private sealed record Kind(string Name, string Examples, string Resolution, bool AllowNegative, Unit[] Units);

    private static readonly Kind DurationKind = new("duration", "250ms or 20s", "1 ps", AllowNegative: true,
    [
        new("ps", 1), new("ns", 1_000), new("us", 1_000_000), new("µs", 1_000_000), new("μs", 1_000_000),
        new("ms", 1_000_000_000), new("s", 1_000_000_000_000), new("min", 60_000_000_000_000),
        new("h", 3_600_000_000_000_000),
    ]);

    private static readonly Kind FrequencyKind = new("frequency", "2.4GHz or 14.31818MHz", "1 mHz", AllowNegative: false,
    [
        new("mHz", 1), new("Hz", 1_000), new("kHz", 1_000_000), new("MHz", 1_000_000_000),
        new("GHz", 1_000_000_000_000),
    ]);

    private static readonly Kind CyclesKind = new("cycle count", "1200cycles", "1 cycle", AllowNegative: true,
    [
        new("cycles", 1), new("cycle", 1),
    ]);

    private static readonly Kind PpmKind = new("frequency error", "5ppm or -0.25ppm", "1 ppb", AllowNegative: true,
    [
        new("ppm", Ppm.PpbPerPpm), new("ppb", 1),
    ]);

    private static readonly Kind[] AllKinds = [DurationKind, FrequencyKind, CyclesKind, PpmKind];

    public static bool TryParseDuration(string? text, out Duration value, out QuantityError error)
    {
        bool ok = TryParse(text, DurationKind, out long raw, out error);
        value = Duration.FromPicoseconds(raw);
        return ok;
    }

    public static bool TryParseFrequency(string? text, out Frequency value, out QuantityError error)
    {
        bool ok = TryParse(text, FrequencyKind, out long raw, out error);
        value = ok ? Frequency.FromMillihertz(raw) : default;
        return ok;
    }

    public static bool TryParseCycles(string? text, out Cycles value, out QuantityError error)
    {
        bool ok = TryParse(text, CyclesKind, out long raw, out error);
        value = new Cycles(raw);
        return ok;
    }

    public static bool TryParsePpm(string? text, out Ppm value, out QuantityError error)
    {
        bool ok = TryParse(text, PpmKind, out long raw, out error);
        value = Ppm.FromPartsPerBillion(raw);
        return ok;
    }

    /// <exception cref="QuantityFormatException">The text is not a duration.</exception>
    public static Duration ParseDuration(string text) =>
        TryParseDuration(text, out var v, out var e) ? v : throw new QuantityFormatException(e);

    /// <exception cref="QuantityFormatException">The text is not a frequency.</exception>
    public static Frequency ParseFrequency(string text) =>
        TryParseFrequency(text, out var v, out var e) ? v : throw new QuantityFormatException(e);

    /// <exception cref="QuantityFormatException">The text is not a cycle count.</exception>
    public static Cycles ParseCycles(string text) =>
        TryParseCycles(text, out var v, out var e) ? v : throw new QuantityFormatException(e);

    /// <exception cref="QuantityFormatException">The text is not a frequency error.</exception>
    public static Ppm ParsePpm(string text) =>
        TryParsePpm(text, out var v, out var e) ? v : throw new QuantityFormatException(e);

    private static bool TryParse(string? text, Kind kind, out long value, out QuantityError error)
    {
        value = 0;
        string expected = $"expected a {kind.Name} such as {kind.Examples}";
        if (string.IsNullOrWhiteSpace(text))
        {
            error = new QuantityError(1, $"{expected}, got an empty value");
            return false;
        }

        int i = 0;
        while (i < text.Length && char.IsWhiteSpace(text[i]))
        {
            i++;
        }
        int end = text.Length;
        while (end > i && char.IsWhiteSpace(text[end - 1]))
        {
            end--;
        }

        bool negative = false;
        if (text[i] is '+' or '-')
        {
            negative = text[i] == '-';
            if (negative && !kind.AllowNegative)
            {
                error = new QuantityError(i + 1, $"a {kind.Name} cannot be negative; {expected}");
                return false;
            }
            i++;
        }

        BigInteger mantissa = BigInteger.Zero;
        int fractionDigits = 0;
        int integerDigits = 0;
        bool inFraction = false;
        for (; i < end; i++)
        {
            char c = text[i];
            if (c is >= '0' and <= '9')
            {
                mantissa = mantissa * 10 + (c - '0');
                if (inFraction)
                {
                    fractionDigits++;
                }
                else
                {
                    integerDigits++;
                }
            }
            else if (c == '_')
            {
                bool digitBefore = i > 0 && char.IsAsciiDigit(text[i - 1]);
                bool digitAfter = i + 1 < end && char.IsAsciiDigit(text[i + 1]);
                if (!digitBefore || !digitAfter)
                {
                    error = new QuantityError(i + 1, $"'_' may only separate digits; {expected}");
                    return false;
                }
            }
            else if (c == '.' && !inFraction)
            {
                if (integerDigits == 0)
                {
                    error = new QuantityError(i + 1, $"expected a digit before '.'; {expected}");
                    return false;
                }
                if (i + 1 >= end || !char.IsAsciiDigit(text[i + 1]))
                {
                    error = new QuantityError(i + 2, $"expected a digit after '.'; {expected}");
                    return false;
                }
                inFraction = true;
            }
            else
            {
                break;
            }
        }

        if (integerDigits == 0)
        {
            error = new QuantityError(i + 1, $"{expected}, got '{text.Trim()}'");
            return false;
        }

        while (i < end && text[i] == ' ')
        {
            i++;
        }
        int unitColumn = i + 1;
        string unitText = text[i..end];
        if (unitText.Length == 0)
        {
            error = new QuantityError(unitColumn, $"missing unit; {expected} (units: {UnitList(kind)})");
            return false;
        }

        Unit? unit = Array.Find(kind.Units, u => u.Name == unitText);
        if (unit is null)
        {
            error = new QuantityError(unitColumn, UnknownUnitMessage(unitText, kind, expected));
            return false;
        }

        BigInteger scaled = mantissa * unit.Factor;
        BigInteger divisor = BigInteger.Pow(10, fractionDigits);
        BigInteger whole = BigInteger.DivRem(scaled, divisor, out BigInteger remainder);
        if (!remainder.IsZero)
        {
            error = new QuantityError(1, $"'{text.Trim()}' is finer than the resolution of a {kind.Name} ({kind.Resolution})");
            return false;
        }
        if (negative)
        {
            whole = -whole;
        }
        if (whole > long.MaxValue || whole < long.MinValue)
        {
            error = new QuantityError(1, $"'{text.Trim()}' is out of range for a {kind.Name} (at most {long.MaxValue} × {kind.Resolution})");
            return false;
        }
        value = (long)whole;
        error = default;
        return true;
    }

    private static string UnitList(Kind kind) => string.Join(", ", kind.Units.Select(u => u.Name));

    private static string UnknownUnitMessage(string unitText, Kind kind, string expected)
    {
        if (unitText.Any(char.IsAsciiDigit) || unitText.StartsWith('e') && unitText.Length > 1 && char.IsAsciiDigit(unitText[1]))
        {
            return $"unexpected '{unitText}': exponents and embedded digits are not supported, write the digits out; {expected}";
        }
        var sameLetters = kind.Units.Where(u => string.Equals(u.Name, unitText, StringComparison.OrdinalIgnoreCase)).ToList();
        if (sameLetters.Count > 0)
        {
            string options = string.Join(" or ", sameLetters.Select(u => $"'{u.Name}'"));
            return $"unknown unit '{unitText}' (units are case-sensitive); did you mean {options}?";
        }
        Kind? other = Array.Find(AllKinds, k => k != kind && k.Units.Any(u => u.Name == unitText));
        if (other is not null)
        {
            return $"'{unitText}' is a unit of {other.Name}, but a {kind.Name} is expected here; {expected} (units: {UnitList(kind)})";
        }
        return $"unknown unit '{unitText}'; {expected} (units: {UnitList(kind)})";
    }
}

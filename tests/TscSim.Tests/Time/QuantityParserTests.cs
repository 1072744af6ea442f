using System.Globalization;
using TscSim.Core.Time;

namespace TscSim.Tests.Time;

/// <summary>The quantity parser against the text vectors in quantities.txt (one theory case per line).</summary>
public class QuantityParserTests
{
    public static TheoryData<int, string, string, string> Vectors()
    {
        var data = new TheoryData<int, string, string, string>();
        string path = Path.Combine(AppContext.BaseDirectory, "Time", "quantities.txt");
        string[] lines = File.ReadAllLines(path);
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            if (line.TrimStart().StartsWith('#') || line.Trim().Length == 0)
            {
                continue;
            }
            string[] parts = line.Split('|');
            Assert.True(parts.Length == 3, $"quantities.txt:{i + 1}: expected 'kind | input | expected'");
            // The input keeps inner spaces; one space of padding either side of '|' is layout.
            string input = parts[1].Length >= 2 ? parts[1][1..^1] : parts[1];
            data.Add(i + 1, parts[0].Trim(), input.TrimEnd(), parts[2].Trim());
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Parses_or_rejects_as_the_vector_says(int line, string kind, string input, string expected)
    {
        bool ok;
        long value;
        QuantityError error;
        switch (kind)
        {
            case "duration":
                ok = Quantity.TryParseDuration(input, out var d, out error);
                value = d.Picoseconds;
                break;
            case "frequency":
                ok = Quantity.TryParseFrequency(input, out var f, out error);
                value = f.Millihertz;
                break;
            case "cycles":
                ok = Quantity.TryParseCycles(input, out var c, out error);
                value = c.Count;
                break;
            case "ppm":
                ok = Quantity.TryParsePpm(input, out var p, out error);
                value = p.PartsPerBillion;
                break;
            default:
                throw new InvalidOperationException($"quantities.txt:{line}: unknown kind '{kind}'");
        }

        if (expected.StartsWith('!'))
        {
            Assert.False(ok, $"quantities.txt:{line}: '{input}' should be rejected but parsed as {value}");
            int colon = expected.IndexOf(':', StringComparison.Ordinal);
            int column = int.Parse(expected[1..colon].Trim(), CultureInfo.InvariantCulture);
            string fragment = expected[(colon + 1)..].Trim();
            Assert.True(error.Message.Contains(fragment, StringComparison.Ordinal),
                $"quantities.txt:{line}: message '{error.Message}' lacks '{fragment}'");
            Assert.True(column == error.Column, $"quantities.txt:{line}: column {error.Column}, expected {column} ({error.Message})");
        }
        else
        {
            Assert.True(ok, $"quantities.txt:{line}: '{input}' rejected: {error}");
            Assert.Equal(long.Parse(expected, CultureInfo.InvariantCulture), value);
        }
    }

    [Fact]
    public void Parse_methods_throw_a_format_exception_carrying_the_error()
    {
        var ex = Assert.Throws<QuantityFormatException>(() => Quantity.ParseDuration("20 parsecs"));
        Assert.Equal(4, ex.Error.Column);
        Assert.Contains("expected a duration such as 250ms or 20s", ex.Message, StringComparison.Ordinal);
        Assert.Throws<QuantityFormatException>(() => Quantity.ParseFrequency("fast"));
        Assert.Throws<QuantityFormatException>(() => Quantity.ParseCycles("12"));
        Assert.Throws<QuantityFormatException>(() => Quantity.ParsePpm("5"));
    }
}

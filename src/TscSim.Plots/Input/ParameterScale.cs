using System.Globalization;
using System.Text.RegularExpressions;
using TscSim.Core.Time;

namespace TscSim.Plots.Input;

/// <summary>
/// How the values of one swept parameter are placed on an axis. Numeric when every value is a
/// number or a quantity (<c>3GHz</c>, <c>250ms</c>): each value's position is its number in
/// <see cref="Unit"/> (values written with different units of one kind, such as <c>500MHz</c> and
/// <c>3GHz</c>, are converted exactly to the unit of the first value). Otherwise categorical:
/// words such as <c>on</c>/<c>off</c>/<c>auto</c>, placed at 0, 1, 2… in order of first appearance.
/// </summary>
public sealed partial class ParameterScale
{
    private readonly Dictionary<string, double> _positions;

    private ParameterScale(string name, bool numeric, string unit, Dictionary<string, double> positions, IReadOnlyList<string> ordered)
    {
        Name = name;
        IsNumeric = numeric;
        Unit = unit;
        _positions = positions;
        Values = ordered;
    }

    /// <summary>The parameter's path, e.g. <c>hosts[1].frequency</c>.</summary>
    public string Name { get; }

    /// <summary>Whether every value has a number.</summary>
    public bool IsNumeric { get; }

    /// <summary>The unit of the numeric positions (<c>GHz</c>), empty for plain numbers and categories.</summary>
    public string Unit { get; }

    /// <summary>The distinct value texts: ascending by position when numeric, else in order of first appearance.</summary>
    public IReadOnlyList<string> Values { get; }

    /// <summary>The axis label: the name, with the unit in parentheses when there is one.</summary>
    public string Label => Unit.Length == 0 ? Name : $"{Name} ({Unit})";

    /// <summary>Where <paramref name="text"/> (one of <see cref="Values"/>) goes on the axis.</summary>
    public double Position(string text) => _positions[text];

    /// <summary>The scale of parameter <paramref name="name"/> whose values (in file order, repeats allowed) are <paramref name="texts"/>.</summary>
    public static ParameterScale Of(string name, IEnumerable<string> texts)
    {
        var distinct = texts.Distinct(StringComparer.Ordinal).ToList();
        var numbers = Numeric(distinct);
        if (numbers is null)
        {
            var positions = new Dictionary<string, double>(StringComparer.Ordinal);
            for (int i = 0; i < distinct.Count; i++)
            {
                positions[distinct[i]] = i;
            }
            return new ParameterScale(name, false, "", positions, distinct);
        }
        var (values, unit) = numbers.Value;
        var map = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int i = 0; i < distinct.Count; i++)
        {
            map[distinct[i]] = values[i];
        }
        var ordered = distinct.OrderBy(t => map[t]).ThenBy(t => t, StringComparer.Ordinal).ToList();
        return new ParameterScale(name, true, unit, map, ordered);
    }

    [GeneratedRegex(@"^\s*([+-]?(?:\d[\d_]*)?\.?\d+(?:[eE][+-]?\d+)?)\s*((?:\p{L}|%)\S*)?\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex NumberAndUnit();

    /// <summary>The numbers of <paramref name="texts"/> in one unit, or null when they are not all numeric in a common unit.</summary>
    private static (double[] Values, string Unit)? Numeric(List<string> texts)
    {
        if (texts.Count == 0)
        {
            return null;
        }
        var numbers = new double[texts.Count];
        var units = new string[texts.Count];
        for (int i = 0; i < texts.Count; i++)
        {
            var m = NumberAndUnit().Match(texts[i]);
            if (!m.Success || !double.TryParse(m.Groups[1].Value.Replace("_", "", StringComparison.Ordinal),
                    NumberStyles.Float, CultureInfo.InvariantCulture, out numbers[i]))
            {
                return null;
            }
            units[i] = m.Groups[2].Value;
        }
        if (units.All(u => u == units[0]))
        {
            return (numbers, units[0]);
        }
        // Mixed units: convert through the exact quantity parsers when every value is one kind.
        var bases = Bases(texts);
        if (bases is null)
        {
            return null;
        }
        int reference = Array.FindIndex(numbers, n => n != 0);
        if (reference < 0)
        {
            return null;
        }
        double basePerUnit = bases[reference] / numbers[reference];
        return ([.. bases.Select(b => b / basePerUnit)], units[reference]);
    }

    /// <summary>Every text as one quantity kind in its base unit (ps, mHz, ppb, cycles), or null.</summary>
    private static double[]? Bases(List<string> texts)
    {
        Func<string, double?>[] kinds =
        [
            t => Quantity.TryParseFrequency(t, out var f, out _) ? f.Millihertz : null,
            t => Quantity.TryParseDuration(t, out var d, out _) ? d.Picoseconds : null,
            t => Quantity.TryParsePpm(t, out var p, out _) ? p.PartsPerBillion : null,
            t => Quantity.TryParseCycles(t, out var c, out _) ? c.Count : null,
        ];
        foreach (var kind in kinds)
        {
            var values = texts.Select(t => kind(t.Trim())).ToArray();
            if (values.All(v => v is not null))
            {
                return [.. values.Select(v => v!.Value)];
            }
        }
        return null;
    }
}

using System.Globalization;
using System.Numerics;
using System.Text.RegularExpressions;
using TscSim.Core.Text;
using TscSim.Core.Time;

namespace TscSim.Core.Scenarios;

/// <summary>
/// The one front door for reading TscSim's YAML files (scenarios, sweeps): typed values taken
/// from a <see cref="YamlTree"/> with every problem added to the diagnostics as
/// <c>FILE:LINE:COL: what is wrong; expected what</c>, at the node at fault. Unknown keys are
/// errors with a did-you-mean hint (<see cref="Suggestions"/>) and the list of valid keys.
/// Reading goes on after an error, so one pass reports all of them.
/// </summary>
internal abstract partial class YamlReader(List<ScenarioDiagnostic> diagnostics)
{
    [GeneratedRegex("^[a-z0-9._-]+$")]
    private static partial Regex NamePattern();

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_-]*$")]
    private static partial Regex IdPattern();

    [GeneratedRegex(@"^[+-]?[0-9][0-9_]*(\.[0-9_]+)?$")]
    private static partial Regex BareNumber();

    /// <summary>Every problem found, in the order found.</summary>
    protected List<ScenarioDiagnostic> Diagnostics { get; } = diagnostics;

    protected void Error(SourcePosition position, string message) => Diagnostics.Add(ScenarioDiagnostic.At(position, message));

    /// <summary>
    /// A name that names a results folder (a scenario's, a sweep's <c>name:</c>): lowercase
    /// letters, digits, '.', '_' and '-', at most 100 characters, not only dots; or null after an
    /// error. <paramref name="kind"/> is what the name names ("scenario", "sweep").
    /// </summary>
    protected string? FolderName(YNode node, string path, string kind)
    {
        if (Text(node, path, "a name of lowercase letters, digits, '.', '_' and '-'") is not { } n)
        {
            return null;
        }
        if (!NamePattern().IsMatch(n) || n.Length > 100 || n.All(c => c == '.'))
        {
            Error(node.Position, $"{path}: '{n}' is not a valid {kind} name; expected lowercase letters, digits, '.', '_' and '-' " +
                "(at most 100, not only dots: it names the results folder)");
            return null;
        }
        return n;
    }

    protected static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";

    protected static string Where(string path) => path.Length == 0 ? "at the top level" : $"in {path}";

    // ---- generic node access -------------------------------------------------------------

    /// <summary>The node as a mapping whose keys are all in <paramref name="keys"/>, or null after an error.</summary>
    protected YMap? Map(YNode node, string path, string what, IReadOnlyList<string> keys)
    {
        if (node is not YMap map)
        {
            Error(node.Position, $"{Label(path)}expected {what}, got {node.Describe()}");
            return null;
        }
        foreach (var (key, _) in map.Entries)
        {
            if (!keys.Contains(key.Value))
            {
                Error(key.Position, $"unknown key '{key.Value}' {Where(path)}{Suggestions.DidYouMean(key.Value, keys)}" +
                    $"expected one of: {string.Join(", ", keys)}");
            }
        }
        return map;
    }

    protected static string Label(string path) => path.Length == 0 ? "" : path + ": ";

    /// <summary>The value of <paramref name="key"/>, or null when absent or written as null (<c>~</c>, empty).</summary>
    protected static YNode? Get(YMap map, string key) =>
        map.Get(key) is { } node && !(node is YScalar { IsNull: true }) ? node : null;

    /// <summary>The value of a required key, or null after an error naming what was expected.</summary>
    protected YNode? Required(YMap map, string path, string key, string expected)
    {
        if (Get(map, key) is { } node)
        {
            return node;
        }
        var keyNode = map.KeyNode(key);
        Error(keyNode?.Position ?? map.Position, keyNode is null
            ? $"{Label(path)}missing required key '{key}'; expected {expected}"
            : $"{Join(path, key)}: no value given; expected {expected}");
        return null;
    }

    protected YScalar? Scalar(YNode node, string path, string expected)
    {
        if (node is YScalar s)
        {
            return s;
        }
        Error(node.Position, $"{path}: expected {expected}, got {node.Describe()}");
        return null;
    }

    protected YSeq? List(YNode node, string path, string expected)
    {
        if (node is YSeq seq)
        {
            return seq;
        }
        Error(node.Position, $"{path}: expected {expected}, got {node.Describe()}");
        return null;
    }

    // ---- typed scalars ---------------------------------------------------------------------

    protected string? Text(YNode node, string path, string expected) => Scalar(node, path, expected)?.Value;

    protected string? Id(YNode node, string path, string what)
    {
        string expected = $"{what}: a letter or digit, then letters, digits, '_' or '-'";
        if (Text(node, path, expected) is not { } id)
        {
            return null;
        }
        if (!IdPattern().IsMatch(id) || id.Length > 64)
        {
            Error(node.Position, $"{path}: '{id}' is not a valid id; expected {expected} (at most 64 characters)");
            return null;
        }
        return id;
    }

    protected long? Integer(YNode node, string path, long min, long max, string? what = null)
    {
        string expected = $"{what ?? "an integer"} from {min} to {max}";
        if (Scalar(node, path, expected) is not { } s)
        {
            return null;
        }
        string t = s.Value.Trim();
        if (!BareNumber().IsMatch(t) || t.Contains('.', StringComparison.Ordinal))
        {
            Error(s.Position, $"{path}: expected {expected}, got {s.Describe()}");
            return null;
        }
        var big = BigInteger.Parse(t.Replace("_", "", StringComparison.Ordinal), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        if (big < min || big > max)
        {
            Error(s.Position, $"{path}: {t} is out of range; expected {expected}");
            return null;
        }
        return (long)big;
    }

    protected ulong? Unsigned(YNode node, string path, string expected)
    {
        if (Scalar(node, path, expected) is not { } s)
        {
            return null;
        }
        string t = s.Value.Trim().Replace("_", "", StringComparison.Ordinal);
        bool hex = t.StartsWith("0x", StringComparison.OrdinalIgnoreCase);
        bool ok = hex
            ? ulong.TryParse(t.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong v)
            : ulong.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out v);
        if (!ok)
        {
            bool digits = t.Length > 0 && t.TrimStart('-', '+').All(char.IsAsciiDigit);
            Error(s.Position, digits
                ? $"{path}: {s.Value.Trim()} is out of range; expected {expected}"
                : $"{path}: expected {expected}, got {s.Describe()}");
            return null;
        }
        return v;
    }

    protected bool? Bool(YNode node, string path)
    {
        const string expected = "true or false";
        if (Scalar(node, path, expected) is not { } s)
        {
            return null;
        }
        switch (s.Value)
        {
            case "true" or "True" or "TRUE":
                return true;
            case "false" or "False" or "FALSE":
                return false;
            default:
                Error(s.Position, $"{path}: expected {expected}, got {s.Describe()}");
                return null;
        }
    }

    /// <summary>One of <paramref name="names"/> (case-sensitive), with a did-you-mean hint.</summary>
    protected string? Choice(YNode node, string path, string what, IReadOnlyList<string> names)
    {
        string expected = $"{what}: one of {string.Join(", ", names)}";
        if (Scalar(node, path, expected) is not { } s)
        {
            return null;
        }
        if (names.Contains(s.Value))
        {
            return s.Value;
        }
        Error(s.Position, $"{path}: unknown {what} {s.Describe()}{Suggestions.DidYouMean(s.Value, names)}expected one of: {string.Join(", ", names)}");
        return null;
    }

    protected delegate bool QuantityParser<T>(string text, out T value, out QuantityError error);

    protected T? Quantity<T>(YNode node, string path, string kind, string example, QuantityParser<T> parse,
        T min, T max, string range) where T : struct, IComparable<T>
    {
        string expected = $"{kind} with a unit, e.g. {example}";
        if (Scalar(node, path, expected) is not { } s)
        {
            return null;
        }
        string t = s.Value;
        if (BareNumber().IsMatch(t.Trim()))
        {
            Error(s.Position, $"{path}: '{t.Trim()}' has no unit; expected {expected}");
            return null;
        }
        if (!parse(t, out T value, out QuantityError error))
        {
            var at = s.IsBlock ? s.Position : s.ContentPosition.Shift(error.Column - 1);
            Error(at, $"{path}: {error.Message}");
            return null;
        }
        if (value.CompareTo(min) < 0 || value.CompareTo(max) > 0)
        {
            Error(s.Position, $"{path}: {t.Trim()} is out of range; expected {kind} {range}");
            return null;
        }
        return value;
    }

    protected Duration? DurationValue(YNode node, string path, Duration min, Duration max, string range, string example = "10s") =>
        Quantity<Duration>(node, path, "a duration", example, Time.Quantity.TryParseDuration, min, max, range);

    protected Cycles? CyclesValue(YNode node, string path, Cycles min, Cycles max, string range) =>
        Quantity<Cycles>(node, path, "a cycle count", "1200cycles", Time.Quantity.TryParseCycles, min, max, range);

    protected Ppm? PpmValue(YNode node, string path, Ppm min, Ppm max, string range) =>
        Quantity<Ppm>(node, path, "a frequency error", "5ppm", Time.Quantity.TryParsePpm, min, max, range);
}

using System.Globalization;

namespace TscSim.Core.Scenarios;

/// <summary>
/// A <c>--set path=value</c> override: <c>path</c> is keys separated by dots with <c>[i]</c>
/// list indices (<c>hypervisor.trapping</c>, <c>vms[0].vcpus</c>, <c>hosts[1].tsc.drift</c>);
/// <c>value</c> is YAML (<c>on</c>, <c>4</c>, <c>5s</c>, <c>[0, 1]</c>, <c>{ profile: linux-modern }</c>;
/// empty means "not given", so the default applies). Missing mappings on the way are created;
/// list items must exist. Positions of what a <c>--set</c> adds name it as the file
/// (<c>--set vms[0].vcpus=4:1:13</c>), so a later error points at the override.
/// </summary>
internal static class SetOverride
{
    private readonly record struct Segment(string? Key, int Index, int Column);

    /// <summary>The tree with the override applied, or null after adding a diagnostic.</summary>
    public static YNode? Apply(YNode root, string set, List<ScenarioDiagnostic> diagnostics)
    {
        string file = $"--set {set}";
        int eq = set.IndexOf('=', StringComparison.Ordinal);
        if (eq < 0)
        {
            diagnostics.Add(new ScenarioDiagnostic(file, 1, 1, $"'{set}' has no '='; expected path=value, e.g. hypervisor.trapping=on"));
            return null;
        }
        var segments = ParsePath(set, eq, file, diagnostics);
        if (segments is null)
        {
            return null;
        }

        // The value is parsed as YAML with its text at its column in the argument, so positions in it are columns of the --set.
        string valueText = new string(' ', eq + 1) + set[(eq + 1)..];
        int errorsBefore = diagnostics.Count;
        var value = YamlTree.Parse(valueText, file, diagnostics, allowEmpty: true);
        if (diagnostics.Count > errorsBefore)
        {
            return null;
        }
        var valuePosition = new SourcePosition(file, 1, eq + 2);
        value ??= new YScalar(valuePosition, "", false, false, valuePosition);

        string? error = null;
        SourcePosition errorAt = default;
        var result = SetAt(root, segments, 0, value, "");
        if (error is not null)
        {
            diagnostics.Add(ScenarioDiagnostic.At(errorAt, error));
            return null;
        }
        return result;

        YNode SetAt(YNode? node, List<Segment> path, int i, YNode newValue, string done)
        {
            if (i == path.Count || error is not null)
            {
                return newValue;
            }
            var seg = path[i];
            var pos = new SourcePosition(file, 1, seg.Column);
            if (seg.Key is { } key)
            {
                string here = done.Length == 0 ? key : $"{done}.{key}";
                switch (node)
                {
                    case YMap map:
                    {
                        var entries = new List<KeyValuePair<YScalar, YNode>>(map.Entries);
                        int at = entries.FindIndex(e => e.Key.Value == key);
                        var child = at >= 0 ? entries[at].Value : null;
                        var keyNode = at >= 0 ? entries[at].Key : new YScalar(pos, key, false, false, pos);
                        var updated = SetAt(child, path, i + 1, newValue, here);
                        if (at >= 0)
                        {
                            entries[at] = new(keyNode, updated);
                        }
                        else
                        {
                            entries.Add(new(keyNode, updated));
                        }
                        return new YMap(map.Position, entries);
                    }
                    case null or YScalar { IsNull: true }:
                    {
                        var keyNode = new YScalar(pos, key, false, false, pos);
                        return new YMap(pos, [new(keyNode, SetAt(null, path, i + 1, newValue, here))]);
                    }
                    default:
                        error = $"{(done.Length == 0 ? "the scenario" : $"'{done}'")} is {node.Describe()}, not a mapping, so it has no key '{key}'; " +
                            "expected a path of mapping keys and [index] list items, e.g. vms[0].vcpus";
                        errorAt = pos;
                        return node;
                }
            }
            string indexed = $"{done}[{seg.Index}]";
            if (node is not YSeq seq)
            {
                error = $"'{done}' is {node?.Describe() ?? "not given"}, not a list, so [{seg.Index}] selects nothing; expected a path to an existing list item";
                errorAt = pos;
                return node ?? newValue;
            }
            if (seg.Index >= seq.Items.Count)
            {
                error = $"'{done}' has {seq.Items.Count} item{(seq.Items.Count == 1 ? "" : "s")}, so [{seg.Index}] does not exist; " +
                    (seq.Items.Count == 0 ? "expected a list with items" : $"expected an index from 0 to {seq.Items.Count - 1}");
                errorAt = pos;
                return node;
            }
            var items = new List<YNode>(seq.Items);
            items[seg.Index] = SetAt(items[seg.Index], path, i + 1, newValue, indexed);
            return new YSeq(seq.Position, items);
        }
    }

    private static List<Segment>? ParsePath(string set, int end, string file, List<ScenarioDiagnostic> diagnostics)
    {
        var segments = new List<Segment>();
        int i = 0;
        List<Segment>? Fail(int at, string message)
        {
            diagnostics.Add(new ScenarioDiagnostic(file, 1, at + 1, message));
            return null;
        }
        const string Expected = "expected keys separated by '.' with [index] for list items, e.g. vms[0].vcpus=4";
        if (end == 0)
        {
            return Fail(0, $"the path before '=' is empty; {Expected}");
        }
        while (i < end)
        {
            if (set[i] == '[')
            {
                int close = set.IndexOf(']', i);
                if (close < 0 || close > end)
                {
                    return Fail(i, $"'[' without ']'; {Expected}");
                }
                string digits = set[(i + 1)..close];
                if (digits.Length == 0 || !digits.All(char.IsAsciiDigit)
                    || !int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int index))
                {
                    return Fail(i + 1, $"'{digits}' is not a list index; expected a whole number from 0 in [ ]");
                }
                if (segments.Count == 0)
                {
                    return Fail(i, $"the path starts with an index; {Expected}");
                }
                segments.Add(new Segment(null, index, i + 1));
                i = close + 1;
                if (i < end && set[i] is not ('.' or '['))
                {
                    return Fail(i, $"unexpected '{set[i]}' after ']'; {Expected}");
                }
                if (i < end && set[i] == '.')
                {
                    i++;
                    if (i >= end)
                    {
                        return Fail(i, $"the path ends with '.'; {Expected}");
                    }
                }
                continue;
            }
            int start = i;
            while (i < end && (char.IsAsciiLetterOrDigit(set[i]) || set[i] is '_' or '-'))
            {
                i++;
            }
            if (i == start)
            {
                return Fail(i, $"unexpected '{set[i]}' in the path; {Expected}");
            }
            segments.Add(new Segment(set[start..i], 0, start + 1));
            if (i < end && set[i] == '.')
            {
                i++;
                if (i >= end)
                {
                    return Fail(i, $"the path ends with '.'; {Expected}");
                }
            }
            else if (i < end && set[i] != '[')
            {
                return Fail(i, $"unexpected '{set[i]}' in the path; {Expected}");
            }
        }
        return segments;
    }
}

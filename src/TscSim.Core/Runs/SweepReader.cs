using System.Globalization;
using System.Text.RegularExpressions;
using TscSim.Core.Scenarios;

namespace TscSim.Core.Runs;

/// <summary>
/// Reads a sweep file through the same front door as scenarios (<see cref="YamlTree"/> and
/// <see cref="YamlReader"/>): positions <c>FILE:LINE:COL</c>, unknown keys with a did-you-mean
/// hint, the scenario's rule for <c>name:</c>. Checks everything the file alone decides: keys,
/// names, the base file, the grid's size and the <c>${name}</c> placeholders. Whether every point
/// loads is checked by <see cref="SweepSpec.Load"/>.
/// </summary>
internal sealed partial class SweepReader(List<ScenarioDiagnostic> diagnostics) : YamlReader(diagnostics)
{
    internal static readonly string[] RootKeys = ["name", "base", "vary", "repeat"];
    internal static readonly string[] ParameterKeys = ["name", "path", "values"];

    /// <summary>Most runs per grid point.</summary>
    public const int MaxRepeat = 10_000;

    private const string BaseExpected = "the path of the base scenario, relative to the sweep file";

    [GeneratedRegex(@"^[A-Za-z0-9_.\[\]-]+$")]
    private static partial Regex ParameterName();

    /// <summary>The sweep in <paramref name="text"/> (the file <paramref name="file"/>), or null after adding diagnostics.</summary>
    public SweepSpec? Read(string file, string text)
    {
        int errorsBefore = Diagnostics.Count;
        var root = YamlTree.Parse(text, file, Diagnostics, allowEmpty: true);
        if (root is null)
        {
            if (Diagnostics.Count == errorsBefore)
            {
                Error(new SourcePosition(file, 1, 1), "the file holds no YAML document; expected a mapping with name, base, vary and repeat");
            }
            return null;
        }
        if (Map(root, "", "a mapping with name, base, vary and repeat", RootKeys) is not { } map)
        {
            return null;
        }
        string? name = Required(map, "", "name", "the sweep's name, e.g. name: skew-vs-frequency-ratio") is { } nameNode
            ? FolderName(nameNode, "name", "sweep")
            : null;
        string? basePath = Required(map, "", "base", BaseExpected) is { } baseNode ? BasePath(baseNode, file) : null;
        int repeat = Get(map, "repeat") is { } repeatNode
            ? (int)(Integer(repeatNode, "repeat", 1, MaxRepeat, "a whole number of runs per point") ?? 1)
            : 1;
        YSeq? vary = Get(map, "vary") is { } varyNode ? List(varyNode, "vary", "a list of parameters, each { name, path, values }") : null;
        var parameters = new List<(SweepParameter Parameter, YNode Item)>();
        for (int i = 0; vary is not null && i < vary.Items.Count; i++)
        {
            string path = $"vary[{i}]";
            if (ReadParameter(vary.Items[i], path) is not { } p)
            {
                continue;
            }
            if (parameters.Any(q => q.Parameter.Name == p.Name))
            {
                Error(vary.Items[i].Position, $"{path}: parameter '{p.Name}' is listed twice; expected each name once");
                continue;
            }
            parameters.Add((p, vary.Items[i]));
        }
        if (Diagnostics.Count > errorsBefore)
        {
            return null;
        }
        CheckGrid(vary ?? (YNode)map, [.. parameters.Select(p => p.Parameter)], repeat);
        if (Diagnostics.Count == errorsBefore)
        {
            CheckPlaceholders(file, basePath!, parameters);
        }
        return Diagnostics.Count > errorsBefore ? null : new SweepSpec(file, name!, basePath!, [.. parameters.Select(p => p.Parameter)], repeat);
    }

    /// <summary>The base scenario's full path, relative to the sweep file; null after an error.</summary>
    private string? BasePath(YNode node, string file)
    {
        if (Text(node, "base", BaseExpected) is not { } relative)
        {
            return null;
        }
        string full = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file)) ?? ".", relative);
        if (!File.Exists(full))
        {
            Error(node.Position, $"base: '{full}' does not exist; expected {BaseExpected}");
            return null;
        }
        return full;
    }

    private SweepParameter? ReadParameter(YNode item, string path)
    {
        if (Map(item, path, "a parameter mapping { name, path, values }", ParameterKeys) is not { } map)
        {
            return null;
        }
        int errorsBefore = Diagnostics.Count;
        string? name = null;
        if (Required(map, path, "name", "the parameter's name: its column in sweep.csv") is { } nameNode
            && Text(nameNode, Join(path, "name"), "a parameter name") is { } n)
        {
            if (ParameterName().IsMatch(n))
            {
                name = n;
            }
            else
            {
                Error(nameNode.Position, $"{Join(path, "name")}: '{n}' is not a valid parameter name; " +
                    "expected letters, digits, '_', '-', '.', '[' and ']' (it heads a column of sweep.csv)");
            }
        }
        string? setPath = Get(map, "path") is { } pathNode
            ? Text(pathNode, Join(path, "path"), "a scenario path as --set takes it, e.g. hosts[0].frequency")
            : null;
        var values = new List<string>();
        if (Required(map, path, "values", "a non-empty list of values, e.g. values: [1GHz, 2GHz]") is { } valuesNode
            && List(valuesNode, Join(path, "values"), "a list of values, e.g. [1GHz, 2GHz]") is { } list)
        {
            if (list.Items.Count == 0)
            {
                Error(list.Position, $"{Join(path, "values")}: the list is empty; expected at least one value");
            }
            for (int j = 0; j < list.Items.Count; j++)
            {
                if (Scalar(list.Items[j], $"{Join(path, "values")}[{j}]", "a single value") is { } value)
                {
                    values.Add(value.Value);
                }
            }
        }
        return Diagnostics.Count > errorsBefore || name is null ? null : new SweepParameter(name, setPath, values);
    }

    /// <summary>The grid's size (points × repeats), counted without overflow, must be at most <see cref="SweepSpec.MaxRuns"/>.</summary>
    private void CheckGrid(YNode vary, List<SweepParameter> parameters, int repeat)
    {
        long runs = repeat;
        foreach (var p in parameters)
        {
            runs = runs > SweepSpec.MaxRuns ? runs : runs * p.Values.Count; // stops growing past the limit: never overflows
        }
        if (runs > SweepSpec.MaxRuns)
        {
            string sizes = string.Join(" × ", parameters.Select(p => p.Values.Count.ToString(CultureInfo.InvariantCulture)));
            Error(vary.Position, $"vary: the grid has {sizes} points × {repeat} repeat(s), more than {SweepSpec.MaxRuns:N0} runs; " +
                "expected a smaller grid (fewer values, or several sweeps)");
        }
    }

    /// <summary>
    /// Every <c>${name}</c> in the base text must have a parameter without a path named so, and
    /// every such parameter must appear in the base text (else its values would change nothing).
    /// </summary>
    private void CheckPlaceholders(string sweepFile, string basePath, List<(SweepParameter Parameter, YNode Item)> parameters)
    {
        string text;
        try
        {
            text = File.ReadAllText(basePath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Error(new SourcePosition(basePath, 1, 1), $"cannot read the base scenario: {ex.Message}");
            return;
        }
        var textual = parameters.Where(p => p.Parameter.Path is null).Select(p => p.Parameter.Name).ToHashSet(StringComparer.Ordinal);
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (Match m in Placeholder().Matches(text))
        {
            string placeholder = m.Groups[1].Value;
            used.Add(placeholder);
            if (!textual.Contains(placeholder))
            {
                int line = 1 + text.AsSpan(0, m.Index).Count('\n');
                int column = m.Index - (text.LastIndexOf('\n', Math.Max(0, m.Index - 1)) + 1) + 1;
                bool hasPath = parameters.Any(p => p.Parameter.Name == placeholder);
                Error(new SourcePosition(basePath, line, column), hasPath
                    ? $"placeholder '${{{placeholder}}}': the sweep's parameter '{placeholder}' has a path, so it sets that path and replaces no text; " +
                      $"expected a parameter without 'path' in {sweepFile}"
                    : $"placeholder '${{{placeholder}}}' has no 'vary' entry in {sweepFile}; expected - {{ name: {placeholder}, values: [...] }}");
            }
        }
        foreach (var (parameter, item) in parameters.Where(p => textual.Contains(p.Parameter.Name) && !used.Contains(p.Parameter.Name)))
        {
            Error(item.Position, $"vary: parameter '{parameter.Name}' has no path, and the base scenario has no '${{{parameter.Name}}}' to replace; " +
                "expected a 'path' or a placeholder in the base scenario");
        }
    }

    [GeneratedRegex(@"\$\{([^}\n]*)\}")]
    private static partial Regex Placeholder();
}

namespace TscSim.Core.Scenarios;

/// <summary>
/// Reads scenario files: YAML with positions, <c>extends</c>, <c>--set</c> overrides,
/// validation and preset resolution. Every problem in a file is reported at once in one
/// <see cref="ScenarioException"/>; nothing else escapes for bad input.
/// </summary>
/// <remarks>
/// Order of work: parse the file (and, through <c>extends</c>, its bases, merged mapping by
/// mapping with lists replaced whole), apply the <c>--set</c> overrides in order, then
/// validate and resolve into a <see cref="Scenario"/>. The format is in
/// <c>docs/scenario-format.md</c>.
/// </remarks>
public static class ScenarioLoader
{
    /// <summary>Longest chain of <c>extends</c>.</summary>
    public const int MaxExtendsDepth = 16;

    /// <summary>At most this many diagnostics are reported (the rest are counted).</summary>
    public const int MaxDiagnostics = 100;

    /// <summary>The key that names a base file.</summary>
    public const string ExtendsKey = "extends";

    /// <summary>
    /// Loads the scenario file at <paramref name="path"/>, applies <paramref name="sets"/>
    /// (<c>path=value</c> strings such as <c>hypervisor.trapping=on</c> or <c>vms[0].vcpus=4</c>),
    /// validates and resolves it.
    /// </summary>
    /// <exception cref="ScenarioException">The file cannot be read or is not a valid scenario.</exception>
    public static Scenario Load(string path, IReadOnlyList<string>? sets = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var diagnostics = new List<ScenarioDiagnostic>();
        string? text = ReadFile(path, new SourcePosition(path, 1, 1), diagnostics, isBase: false);
        if (text is null)
        {
            throw new ScenarioException(diagnostics);
        }
        return LoadText(text, path, sets);
    }

    /// <summary>
    /// Loads a scenario from <paramref name="text"/>; <paramref name="fileName"/> names it in
    /// diagnostics and is the base of a relative <c>extends</c> path.
    /// </summary>
    /// <exception cref="ScenarioException">The text is not a valid scenario.</exception>
    public static Scenario LoadText(string text, string fileName, IReadOnlyList<string>? sets = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(fileName);
        var diagnostics = new List<ScenarioDiagnostic>();
        var chain = new List<string> { FullPath(fileName) };
        var root = LoadTree(text, fileName, chain, diagnostics);
        if (root is null)
        {
            throw Failure(diagnostics);
        }
        if (sets is not null)
        {
            for (int i = 0; i < sets.Count; i++)
            {
                root = SetOverride.Apply(root, sets[i], diagnostics) ?? root;
            }
        }
        var scenario = new ScenarioReader(diagnostics).Read(root);
        if (diagnostics.Count > 0 || scenario is null)
        {
            throw Failure(diagnostics);
        }
        return scenario;
    }

    /// <summary>
    /// Checks a scenario file and returns its diagnostics (empty when it is valid), for
    /// <c>tscsim validate</c>.
    /// </summary>
    public static IReadOnlyList<ScenarioDiagnostic> Validate(string path, IReadOnlyList<string>? sets = null)
    {
        try
        {
            Load(path, sets);
            return [];
        }
        catch (ScenarioException ex)
        {
            return ex.Diagnostics;
        }
    }

    private static ScenarioException Failure(List<ScenarioDiagnostic> diagnostics)
    {
        if (diagnostics.Count == 0)
        {
            diagnostics.Add(new ScenarioDiagnostic("scenario", 1, 1, "the scenario could not be read; expected a valid scenario file"));
        }
        var ordered = diagnostics
            .Distinct()
            .Select((d, i) => (d, i))
            .OrderBy(x => x.d.File, StringComparer.Ordinal).ThenBy(x => x.d.Line).ThenBy(x => x.d.Column).ThenBy(x => x.i)
            .Select(x => x.d)
            .ToList();
        if (ordered.Count > MaxDiagnostics)
        {
            int more = ordered.Count - MaxDiagnostics;
            var last = ordered[MaxDiagnostics - 1];
            ordered = [.. ordered.Take(MaxDiagnostics), last with { Message = $"... and {more} more problems; expected fewer errors (fix these first)" }];
        }
        return new ScenarioException(ordered);
    }

    private static string FullPath(string fileName)
    {
        try
        {
            return Path.GetFullPath(fileName);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException or System.Security.SecurityException)
        {
            return fileName;
        }
    }

    private static string? ReadFile(string path, SourcePosition referencedAt, List<ScenarioDiagnostic> diagnostics, bool isBase)
    {
        string what = isBase ? $"{ExtendsKey}: cannot read the base file '{path}'" : $"cannot read the scenario file '{path}'";
        try
        {
            if (Directory.Exists(path))
            {
                diagnostics.Add(ScenarioDiagnostic.At(referencedAt, $"{what}: it is a directory; expected a YAML file"));
                return null;
            }
            if (!File.Exists(path))
            {
                diagnostics.Add(ScenarioDiagnostic.At(referencedAt, $"{what}: no such file; expected an existing YAML file" +
                    (isBase ? " (a path relative to the file that extends it)" : "")));
                return null;
            }
            return SourceFile.ReadText(path);
        }
        catch (ScenarioException ex)
        {
            diagnostics.AddRange(ex.Diagnostics); // invalid UTF-8 or NUL bytes, at their places
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException or System.Security.SecurityException)
        {
            diagnostics.Add(ScenarioDiagnostic.At(referencedAt, $"{what}: {ex.Message.TrimEnd('.')}; expected a readable YAML file"));
            return null;
        }
    }

    /// <summary>
    /// Parses one file and, through <c>extends</c>, its bases; returns the merged tree, or null
    /// when a file is malformed or the chain is broken (validating a half-merged tree would only
    /// add confusing "missing key" errors).
    /// </summary>
    private static YNode? LoadTree(string text, string fileName, List<string> chain, List<ScenarioDiagnostic> diagnostics)
    {
        var root = YamlTree.Parse(text, fileName, diagnostics);
        if (root is not YMap map || map.Get(ExtendsKey) is not { } extendsNode)
        {
            return root;
        }
        var child = new YMap(map.Position, [.. map.Entries.Where(e => e.Key.Value != ExtendsKey)]);
        if (extendsNode is not YScalar { IsNull: false } target || string.IsNullOrWhiteSpace(target.Value))
        {
            diagnostics.Add(ScenarioDiagnostic.At(extendsNode.Position,
                $"{ExtendsKey}: expected the path of a base scenario file (relative to this file), got {extendsNode.Describe()}"));
            return null;
        }
        string basePath = Path.Combine(Path.GetDirectoryName(fileName) ?? "", target.Value);
        string full = FullPath(basePath);
        if (chain.Contains(full, StringComparer.Ordinal))
        {
            var names = chain.Append(full).Select(Path.GetFileName);
            diagnostics.Add(ScenarioDiagnostic.At(target.Position,
                $"{ExtendsKey}: cycle {string.Join(" -> ", names)}; expected a chain of base files that ends"));
            return null;
        }
        if (chain.Count >= MaxExtendsDepth)
        {
            diagnostics.Add(ScenarioDiagnostic.At(target.Position,
                $"{ExtendsKey}: more than {MaxExtendsDepth} files extend each other; expected a shorter chain"));
            return null;
        }
        string? baseText = ReadFile(basePath, target.Position, diagnostics, isBase: true);
        if (baseText is null)
        {
            return null;
        }
        chain.Add(full);
        var baseRoot = LoadTree(baseText, basePath, chain, diagnostics);
        chain.RemoveAt(chain.Count - 1);
        if (baseRoot is null)
        {
            return null;
        }
        if (baseRoot is not YMap baseMap)
        {
            diagnostics.Add(ScenarioDiagnostic.At(baseRoot.Position,
                $"the base file '{basePath}' (extended from {fileName}:{target.Position.Line}) holds {baseRoot.Describe()}; expected a mapping of scenario keys"));
            return null;
        }
        return Merge(baseMap, child);
    }

    /// <summary>
    /// The child's mapping laid over the base's: keys of both are merged recursively when both
    /// values are mappings, otherwise the child's value (list, scalar or null) replaces the base's.
    /// </summary>
    internal static YMap Merge(YMap baseMap, YMap child)
    {
        var entries = new List<KeyValuePair<YScalar, YNode>>();
        foreach (var (key, value) in baseMap.Entries)
        {
            var over = child.Entries.FirstOrDefault(e => e.Key.Value == key.Value);
            if (over.Key is null)
            {
                entries.Add(new(key, value));
            }
            else if (value is YMap bm && over.Value is YMap cm)
            {
                entries.Add(new(over.Key, Merge(bm, cm)));
            }
            else
            {
                entries.Add(over);
            }
        }
        foreach (var entry in child.Entries)
        {
            if (baseMap.Get(entry.Key.Value) is null)
            {
                entries.Add(entry);
            }
        }
        return new YMap(child.Position, entries);
    }
}

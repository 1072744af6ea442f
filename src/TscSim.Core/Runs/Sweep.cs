using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TscSim.Core.Scenarios;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace TscSim.Core.Runs;

/// <summary>One swept parameter: a scenario path set with <c>--set</c> semantics, or a <c>${name}</c> placeholder in the base text.</summary>
public sealed record SweepParameter(string Name, string? Path, IReadOnlyList<string> Values);

/// <summary>One point of a sweep's grid: its values (in parameter order), the repeat, and its seed.</summary>
public sealed record SweepPoint(int Index, int Point, int Repeat, ulong Seed, IReadOnlyList<string> Values)
{
    /// <summary>The folder name of the point's results: <c>p0003-r01</c>.</summary>
    public string Folder => string.Create(CultureInfo.InvariantCulture, $"p{Point:D4}-r{Repeat:D2}");
}

/// <summary>
/// A sweep file: a base scenario and a grid.
/// <code>
/// name: skew-vs-frequency-ratio
/// base: base.yaml                  # relative to the sweep file
/// vary:                             # the grid is the product, first parameter slowest
///   - { name: trapping, path: hypervisor.trapping, values: [on, off, auto] }
///   - { name: work, values: [2000, 20000] }   # no path: replaces ${work} in the base text
/// repeat: 2                         # seeds: the base scenario's seed, +1, ...
/// </code>
/// </summary>
public sealed class SweepSpec
{
    private SweepSpec(string file, string name, string basePath, IReadOnlyList<SweepParameter> parameters, int repeat)
    {
        File = file;
        Name = name;
        BasePath = basePath;
        Parameters = parameters;
        Repeat = repeat;
    }

    /// <summary>The sweep file.</summary>
    public string File { get; }

    public string Name { get; }

    /// <summary>The base scenario's path.</summary>
    public string BasePath { get; }

    public IReadOnlyList<SweepParameter> Parameters { get; }

    /// <summary>Runs per grid point (seeds base, base + 1, ...).</summary>
    public int Repeat { get; }

    /// <summary>
    /// Whether <paramref name="path"/> is a sweep file rather than a scenario: its top level is a
    /// mapping with <c>base</c> or <c>vary</c> (keys a scenario never has). False for anything
    /// unreadable or malformed (the scenario loader then reports it).
    /// </summary>
    public static bool IsSweepFile(string path)
    {
        try
        {
            return YamlTree.Parse(System.IO.File.ReadAllText(path), path, []) is YMap root
                && root.Entries.Any(e => e.Key.Value is "base" or "vary");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            return false;
        }
    }

    /// <summary>Reads and checks a sweep file; errors as positioned diagnostics (<see cref="ScenarioException"/>).</summary>
    public static SweepSpec Load(string path)
    {
        var errors = new List<ScenarioDiagnostic>();
        string text;
        try
        {
            text = SourceFile.ReadText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ScenarioException([new ScenarioDiagnostic(path, 1, 1, $"cannot read the sweep file: {ex.Message}")]);
        }
        // Our own parser first: it reports malformed YAML (and alias bombs) with positions and never throws.
        var syntax = new List<ScenarioDiagnostic>();
        if (YamlTree.Parse(text, path, syntax) is null)
        {
            throw new ScenarioException(syntax.Count > 0 ? syntax : [new ScenarioDiagnostic(path, 1, 1, "expected one YAML mapping with name, base, vary and repeat")]);
        }
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (Exception ex) when (ex is YamlException or InvalidOperationException)
        {
            var (line, column) = ex is YamlException y ? ((int)y.Start.Line, (int)y.Start.Column) : (1, 1);
            throw new ScenarioException([new ScenarioDiagnostic(path, Math.Max(1, line), Math.Max(1, column), $"malformed YAML: {ex.Message}")]);
        }
        if (stream.Documents.Count != 1 || stream.Documents[0].RootNode is not YamlMappingNode root)
        {
            throw new ScenarioException([new ScenarioDiagnostic(path, 1, 1, "expected one YAML mapping with name, base, vary and repeat")]);
        }
        ScenarioDiagnostic At(YamlNode n, string message) => new(path, (int)n.Start.Line, (int)n.Start.Column, message);
        string? name = null, basePath = null;
        int repeat = 1;
        var parameters = new List<SweepParameter>();
        foreach (var (k, v) in root.Children)
        {
            string key = ((YamlScalarNode)k).Value ?? "";
            switch (key)
            {
                case "name":
                    name = (v as YamlScalarNode)?.Value;
                    if (name is null || name.Length == 0 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
                    {
                        errors.Add(At(v, "name: expected a name of letters, digits, '-', '_' or '.'"));
                    }
                    break;
                case "base":
                    basePath = (v as YamlScalarNode)?.Value;
                    if (basePath is null)
                    {
                        errors.Add(At(v, "base: expected the path of the base scenario, relative to the sweep file"));
                    }
                    else
                    {
                        basePath = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? ".", basePath);
                        if (!System.IO.File.Exists(basePath))
                        {
                            errors.Add(At(v, $"base: '{basePath}' does not exist; expected the path of the base scenario, relative to the sweep file"));
                        }
                    }
                    break;
                case "repeat":
                    if (v is not YamlScalarNode { Value: { } r } || !int.TryParse(r, NumberStyles.None, CultureInfo.InvariantCulture, out repeat) || repeat is < 1 or > 10_000)
                    {
                        errors.Add(At(v, "repeat: expected a whole number of runs per point from 1 to 10000"));
                        repeat = 1;
                    }
                    break;
                case "vary":
                    if (v is not YamlSequenceNode list)
                    {
                        errors.Add(At(v, "vary: expected a list of { name, path, values }"));
                        break;
                    }
                    foreach (var item in list)
                    {
                        if (ReadParameter(item, At, errors) is { } p)
                        {
                            if (parameters.Any(q => q.Name == p.Name))
                            {
                                errors.Add(At(item, $"vary: parameter '{p.Name}' is listed twice"));
                            }
                            parameters.Add(p);
                        }
                    }
                    break;
                default:
                    errors.Add(At(k, $"unknown key '{key}'; expected one of: name, base, vary, repeat"));
                    break;
            }
        }
        if (name is null && !errors.Any(e => e.Message.StartsWith("name:", StringComparison.Ordinal)))
        {
            errors.Add(At(root, "missing key 'name'"));
        }
        if (basePath is null && !errors.Any(e => e.Message.StartsWith("base:", StringComparison.Ordinal)))
        {
            errors.Add(At(root, "missing key 'base'"));
        }
        if (errors.Count == 0)
        {
            CheckGrid(root, parameters, repeat, At, errors);
        }
        if (errors.Count == 0)
        {
            CheckPlaceholders(path, basePath!, root, parameters, At, errors);
        }
        if (errors.Count > 0)
        {
            throw new ScenarioException(errors);
        }
        var spec = new SweepSpec(path, name!, basePath!, parameters, repeat);
        // Every point must load: check them all now, so a bad value is reported before anything runs.
        var pointErrors = new List<ScenarioDiagnostic>();
        foreach (var point in spec.Points().Where(p => p.Repeat == 0))
        {
            try
            {
                spec.LoadPoint(point);
            }
            catch (ScenarioException ex)
            {
                pointErrors.AddRange(ex.Diagnostics.Select(d => d with
                {
                    Message = $"point {point.Point} ({spec.Describe(point)}): {d.Message}",
                }));
            }
            if (pointErrors.Count > 50)
            {
                break;
            }
        }
        if (pointErrors.Count > 0)
        {
            throw new ScenarioException(pointErrors);
        }
        return spec;
    }

    /// <summary>Most (point, repeat) runs a sweep may have.</summary>
    public const long MaxRuns = 1_000_000;

    /// <summary>The grid's size (points × repeats), counted without overflow, must be at most <see cref="MaxRuns"/>.</summary>
    private static void CheckGrid(YamlMappingNode root, List<SweepParameter> parameters, int repeat,
        Func<YamlNode, string, ScenarioDiagnostic> at, List<ScenarioDiagnostic> errors)
    {
        long runs = repeat;
        foreach (var p in parameters)
        {
            runs = runs > MaxRuns ? runs : runs * p.Values.Count; // stops growing past the limit: never overflows
        }
        if (runs > MaxRuns)
        {
            var where = root.Children.FirstOrDefault(kv => (kv.Key as YamlScalarNode)?.Value == "vary").Value ?? root;
            string sizes = string.Join(" × ", parameters.Select(p => p.Values.Count.ToString(CultureInfo.InvariantCulture)));
            errors.Add(at(where, $"vary: the grid has {sizes} points × {repeat} repeat(s), more than {MaxRuns:N0} runs; " +
                "expected a smaller grid (fewer values, or several sweeps)"));
        }
    }

    /// <summary>
    /// Every <c>${name}</c> in the base text must have a parameter without a path named so, and
    /// every such parameter must appear in the base text (else its values would change nothing).
    /// </summary>
    private static void CheckPlaceholders(string sweepFile, string basePath, YamlMappingNode root, List<SweepParameter> parameters,
        Func<YamlNode, string, ScenarioDiagnostic> at, List<ScenarioDiagnostic> errors)
    {
        string text;
        try
        {
            text = System.IO.File.ReadAllText(basePath);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            errors.Add(new ScenarioDiagnostic(basePath, 1, 1, $"cannot read the base scenario: {ex.Message}"));
            return;
        }
        var textual = parameters.Where(p => p.Path is null).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(text, @"\$\{([^}\n]*)\}"))
        {
            string placeholder = m.Groups[1].Value;
            used.Add(placeholder);
            if (!textual.Contains(placeholder))
            {
                int line = 1 + text.AsSpan(0, m.Index).Count('\n');
                int column = m.Index - (text.LastIndexOf('\n', Math.Max(0, m.Index - 1)) + 1) + 1;
                bool hasPath = parameters.Any(p => p.Name == placeholder);
                errors.Add(new ScenarioDiagnostic(basePath, line, column, hasPath
                    ? $"placeholder '${{{placeholder}}}': the sweep's parameter '{placeholder}' has a path, so it sets that path and replaces no text; " +
                      $"expected a parameter without 'path' in {sweepFile}"
                    : $"placeholder '${{{placeholder}}}' has no 'vary' entry in {sweepFile}; expected - {{ name: {placeholder}, values: [...] }}"));
            }
        }
        var vary = root.Children.FirstOrDefault(kv => (kv.Key as YamlScalarNode)?.Value == "vary").Value;
        foreach (string name in textual.Where(n => !used.Contains(n)))
        {
            var item = (vary as YamlSequenceNode)?.Children.FirstOrDefault(i =>
                i is YamlMappingNode mm && mm.Children.Any(kv => (kv.Key as YamlScalarNode)?.Value == "name" && (kv.Value as YamlScalarNode)?.Value == name));
            errors.Add(at(item ?? root, $"vary: parameter '{name}' has no path, and the base scenario has no '${{{name}}}' to replace; " +
                "expected a 'path' or a placeholder in the base scenario"));
        }
    }

    private static SweepParameter? ReadParameter(YamlNode item, Func<YamlNode, string, ScenarioDiagnostic> at, List<ScenarioDiagnostic> errors)
    {
        if (item is not YamlMappingNode map)
        {
            errors.Add(at(item, "vary: expected { name, path, values }"));
            return null;
        }
        string? name = null, path = null;
        List<string>? values = null;
        foreach (var (k, v) in map.Children)
        {
            switch (((YamlScalarNode)k).Value)
            {
                case "name": name = (v as YamlScalarNode)?.Value; break;
                case "path": path = (v as YamlScalarNode)?.Value; break;
                case "values":
                    if (v is YamlSequenceNode seq && seq.All(x => x is YamlScalarNode))
                    {
                        values = [.. seq.Select(x => ((YamlScalarNode)x).Value ?? "")];
                    }
                    else
                    {
                        errors.Add(at(v, "values: expected a list of scalar values"));
                    }
                    break;
                default:
                    errors.Add(at(k, $"unknown key '{((YamlScalarNode)k).Value}'; expected name, path or values"));
                    break;
            }
        }
        if (name is null || name.Length == 0 || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or '[' or ']')))
        {
            errors.Add(at(item, "vary: each parameter needs a 'name' (letters, digits, '_', '-', '.', '[', ']'): its column in sweep.csv"));
            return null;
        }
        if (values is null || values.Count == 0)
        {
            errors.Add(at(item, $"vary: parameter '{name}' needs a non-empty 'values' list"));
            return null;
        }
        return new SweepParameter(name, path, values);
    }

    /// <summary>Every (point, repeat) of the grid, in order: the first parameter varies slowest, repeats fastest.</summary>
    public IReadOnlyList<SweepPoint> Points()
    {
        ulong baseSeed = _baseSeed ??= ScenarioLoader.LoadText(Substitute(BaseText(), Parameters.Select(p => p.Values[0]).ToList()), BasePath).Seed;
        var result = new List<SweepPoint>();
        int count = Parameters.Aggregate(1, (n, p) => checked(n * p.Values.Count));
        for (int point = 0; point < count; point++)
        {
            var values = new string[Parameters.Count];
            int rest = point;
            for (int i = Parameters.Count - 1; i >= 0; i--)
            {
                values[i] = Parameters[i].Values[rest % Parameters[i].Values.Count];
                rest /= Parameters[i].Values.Count;
            }
            for (int r = 0; r < Repeat; r++)
            {
                result.Add(new SweepPoint(result.Count, point, r, unchecked(baseSeed + (ulong)r), values));
            }
        }
        return result;
    }

    private string? _baseText;
    private ulong? _baseSeed;
    private string? _digest;

    /// <summary>The sweep as its manifest (<c>sweep.json</c>) describes it: enough to list its points and merge shards, not to run.</summary>
    public static SweepSpec FromManifest(JsonObject manifest)
    {
        var parameters = manifest["parameters"]!.AsArray().Select(n => new SweepParameter(
            (string)n!["name"]!, (string?)n["path"], [.. n["values"]!.AsArray().Select(v => (string)v!)])).ToList();
        return new SweepSpec((string)manifest["sweep_file"]!, (string)manifest["name"]!, "", parameters, (int)manifest["repeat"]!)
        {
            _baseSeed = (ulong)manifest["base_seed"]!,
            _digest = (string)manifest["digest"]!,
        };
    }

    private string BaseText() => _baseText ??= SourceFile.ReadText(BasePath);

    private string Substitute(string text, IReadOnlyList<string> values)
    {
        for (int i = 0; i < Parameters.Count; i++)
        {
            if (Parameters[i].Path is null)
            {
                text = text.Replace("${" + Parameters[i].Name + "}", values[i], StringComparison.Ordinal);
            }
        }
        return text;
    }

    /// <summary>The scenario of <paramref name="point"/>: placeholders replaced, path parameters set, the point's seed.</summary>
    public Scenario LoadPoint(SweepPoint point)
    {
        var sets = new List<string>();
        for (int i = 0; i < Parameters.Count; i++)
        {
            if (Parameters[i].Path is { } p)
            {
                sets.Add($"{p}={point.Values[i]}");
            }
        }
        sets.Add(string.Create(CultureInfo.InvariantCulture, $"seed={point.Seed}"));
        return ScenarioLoader.LoadText(Substitute(BaseText(), point.Values), BasePath, sets);
    }

    /// <summary>"trapping=on, work=2000".</summary>
    public string Describe(SweepPoint point) =>
        string.Join(", ", Parameters.Select((p, i) => $"{p.Name}={point.Values[i]}"));

    /// <summary>A digest of the sweep's definition (name, base text, grid, repeat): shards of one sweep share it.</summary>
    public string Digest()
    {
        if (_digest is not null)
        {
            return _digest;
        }
        var sb = new StringBuilder(Name).Append('\n').Append(BaseText()).Append('\n').Append(Repeat);
        foreach (var p in Parameters)
        {
            sb.Append('\n').Append(p.Name).Append('|').Append(p.Path).Append('|').Append(string.Join("|", p.Values));
        }
        return _digest = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..16];
    }
}

/// <summary>
/// Runs a sweep: each (point, repeat) into <c>OUT/points/pNNNN-rRR/</c> (a results folder,
/// written atomically, so a complete folder means a finished point), skipping points already
/// complete (resumable), optionally only the shard I of N (points whose index mod N = I), in
/// parallel; then writes <c>sweep.csv</c> from every complete point folder, in point order, so
/// the file is the same whatever the parallelism, sharding or interruptions.
/// </summary>
public static class SweepRunner
{
    /// <summary>The sweep.csv columns before and after the parameter columns.</summary>
    public const string LeadColumns = "point,repeat,seed,fingerprint,complete",
        TailColumns = "vm,vcpu,reads,skew_max_abs_ns,skew_final_ns,drift_ppm,violations,exits_total,exits_rdtsc,exits_rdtscp,overhead_pct";

    /// <summary>
    /// Runs the sweep into <paramref name="outDir"/> (locked while it runs; see
    /// <see cref="OutputFolder.Check"/> for which existing folders are resumed or refused).
    /// A point folder is reused only when it is complete and was written by this build from
    /// this point's scenario (same digest); any other is run again, with a note to
    /// <paramref name="note"/>. Returns (points run now, points skipped as already complete,
    /// points left undone by a cancellation).
    /// </summary>
    /// <exception cref="OutputFolderException">The folder may not be written (before anything is written).</exception>
    /// <exception cref="InvalidOperationException">The folder holds another sweep.</exception>
    public static (int Ran, int Skipped, int Undone) Run(SweepSpec spec, string outDir, int jobs, int shard, int shards,
        Action<SweepPoint, RunResult>? done = null, CancellationToken cancel = default, bool force = false, Action<string>? note = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string full = OutputFolder.Normalize(outDir);
        using var held = OutputLock.Acquire(full);
        var plan = OutputFolder.Check(full, ResultKind.Sweep, force);
        if (plan == OutputFolder.Plan.Replace && ResultMarker.Read(full)?.SweepDigest is { } d && d != spec.Digest())
        {
            throw new InvalidOperationException($"{full} holds a different sweep (digest {d}, this one {spec.Digest()}); use another --out");
        }
        var mine = spec.Points().Where(p => p.Index % shards == shard).ToList();
        var todo = new List<SweepPoint>();
        foreach (var point in mine)
        {
            string folder = Path.Combine(full, "points", point.Folder);
            if (plan == OutputFolder.Plan.Replace)
            {
                if (Reusable(spec, point, folder, out string? why))
                {
                    continue;
                }
                if (why is not null)
                {
                    note?.Invoke($"{folder}: {why}; running it again");
                }
                OutputFolder.Check(folder, ResultKind.Run, force: true); // a user's file in it stops us here, before anything runs
            }
            todo.Add(point);
        }
        if (plan == OutputFolder.Plan.ReplaceOther)
        {
            OutputFolder.Clear(full);
        }
        Directory.CreateDirectory(Path.Combine(full, "points"));
        new ResultMarker(ResultKind.Sweep, ResultMarker.CurrentBuild, null, spec.Digest()).WriteTo(full);
        WriteManifest(spec, full, shard, shards);
        int ran = 0, undone = 0;
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, jobs) };
        Parallel.ForEach(todo, options, point =>
        {
            if (cancel.IsCancellationRequested)
            {
                Interlocked.Increment(ref undone);
                return;
            }
            var model = new ScenarioModel(spec.LoadPoint(point));
            var result = ScenarioRun.Execute(model, null, cancel);
            if (!result.Complete)
            {
                Interlocked.Increment(ref undone); // redone by the next run
                return;
            }
            ResultsWriter.Write(Path.Combine(full, "points", point.Folder), model, result, force: true, sweepDigest: spec.Digest());
            Interlocked.Increment(ref ran);
            done?.Invoke(point, result);
        });
        WriteCsv(spec, [full], Path.Combine(full, "sweep.csv"), allowMissing: true);
        return (ran, mine.Count - todo.Count, undone);
    }

    /// <summary>
    /// Whether the point folder can stand for <paramref name="point"/>: complete, written by this
    /// build, from this point's scenario. <paramref name="why"/> says why not (null when there is
    /// nothing there worth a note: no folder, or an incomplete one).
    /// </summary>
    private static bool Reusable(SweepSpec spec, SweepPoint point, string folder, out string? why)
    {
        why = null;
        if (!IsComplete(folder))
        {
            return false;
        }
        var marker = ResultMarker.Read(folder);
        if (marker is null || marker.Kind != ResultKind.Run)
        {
            why = "has no TscSim marker (written by an older TscSim)";
            return false;
        }
        if (marker.Build != ResultMarker.CurrentBuild)
        {
            why = $"was written by another build of TscSim ({marker.Build}; this is {ResultMarker.CurrentBuild})";
            return false;
        }
        if (marker.ScenarioDigest != ResultsWriter.ScenarioDigest(spec.LoadPoint(point)))
        {
            why = "was written from a different scenario than this point's";
            return false;
        }
        return true;
    }

    /// <summary>
    /// <c>tscsim merge</c>: checks that <paramref name="dirs"/> hold shards of one sweep (same
    /// digest) and writes their joint <c>sweep.csv</c> to <paramref name="csvPath"/>: never a
    /// sweep folder's own <c>sweep.csv</c>, and never over a file that is not a sweep table.
    /// A point missing from every folder is an error unless <paramref name="allowMissing"/>.
    /// </summary>
    public static (int Rows, int Points, int Missing) Merge(IReadOnlyList<string> dirs, string csvPath, bool allowMissing = false)
    {
        ArgumentNullException.ThrowIfNull(dirs);
        SweepSpec? spec = null;
        foreach (var dir in dirs)
        {
            string path = Path.Combine(dir, "sweep.json");
            if (!File.Exists(path))
            {
                throw new InvalidOperationException($"{dir} is not a sweep output folder (no sweep.json)");
            }
            SweepSpec s;
            try
            {
                s = SweepSpec.FromManifest(JsonNode.Parse(File.ReadAllText(path))!.AsObject());
            }
            catch (Exception ex) when (ex is JsonException or NullReferenceException or InvalidOperationException or InvalidCastException or FormatException)
            {
                throw new InvalidOperationException($"{path} is not a sweep manifest as TscSim writes it ({ex.Message})", ex);
            }
            if (spec is not null && s.Digest() != spec.Digest())
            {
                throw new InvalidOperationException($"{dir} holds another sweep ({s.Name}, digest {s.Digest()}) than {dirs[0]} ({spec.Name}, digest {spec.Digest()})");
            }
            spec ??= s;
        }
        string target = Path.GetFullPath(csvPath);
        if (Directory.Exists(target))
        {
            throw new InvalidOperationException($"--out {csvPath} is a folder; expected the path of the merged CSV file, e.g. {Path.Combine(csvPath, "sweep.csv")}");
        }
        if (ResultMarker.Read(Path.GetDirectoryName(target)!)?.Kind == ResultKind.Sweep)
        {
            throw new InvalidOperationException($"{csvPath} is inside the sweep folder {Path.GetDirectoryName(target)}: merge never writes into a shard; choose another --out");
        }
        if (File.Exists(target) && !File.ReadLines(target).FirstOrDefault("").StartsWith(LeadColumns + ",", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{csvPath} exists and is not a sweep table written by TscSim; merge will not overwrite it: choose another --out");
        }
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        return WriteCsv(spec!, dirs, target, allowMissing);
    }

    /// <summary>A results folder whose summary says complete.</summary>
    public static bool IsComplete(string folder)
    {
        string summary = Path.Combine(folder, "summary.json");
        if (!File.Exists(summary))
        {
            return false;
        }
        try
        {
            return JsonNode.Parse(File.ReadAllText(summary))?["complete"]?.GetValue<bool>() == true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static void WriteManifest(SweepSpec spec, string outDir, int shard, int shards)
    {
        var manifest = new JsonObject
        {
            ["schema"] = "tscsim.sweep/1",
            ["name"] = spec.Name,
            ["digest"] = spec.Digest(),
            ["sweep_file"] = Path.GetFullPath(spec.File),
            ["parameters"] = new JsonArray([.. spec.Parameters.Select(p => (JsonNode)new JsonObject
            {
                ["name"] = p.Name,
                ["path"] = p.Path,
                ["values"] = new JsonArray([.. p.Values.Select(v => (JsonNode)v)]),
            })]),
            ["repeat"] = spec.Repeat,
            ["base_seed"] = spec.Points()[0].Seed,
            ["points"] = spec.Points().Count,
            ["shard"] = shard,
            ["shards"] = shards,
        };
        string path = Path.Combine(outDir, "sweep.json");
        File.WriteAllText(path, manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>
    /// Writes <c>sweep.csv</c> from the complete point folders found in <paramref name="dirs"/>
    /// (one sweep's output folders: shards, or one folder), in (point, repeat) order. A point found
    /// twice must have the same fingerprint. Returns (rows, points, missing points).
    /// </summary>
    public static (int Rows, int Points, int Missing) WriteCsv(SweepSpec spec, IReadOnlyList<string> dirs, string csvPath, bool allowMissing)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(dirs);
        var folders = new SortedDictionary<int, (SweepPoint Point, string Folder, string Fingerprint)>();
        var points = spec.Points();
        string? build = null, buildFolder = null;
        foreach (var point in points)
        {
            foreach (var dir in dirs)
            {
                string folder = Path.Combine(dir, "points", point.Folder);
                // Only a complete point written for this sweep (its marker names the sweep's digest) counts.
                var marker = IsComplete(folder) ? ResultMarker.Read(folder) : null;
                if (marker is not { Kind: ResultKind.Run } || marker.SweepDigest != spec.Digest())
                {
                    continue;
                }
                if (build is not null && marker.Build != build)
                {
                    throw new InvalidOperationException($"{folder} was written by another build of TscSim ({marker.Build}) than {buildFolder} ({build}); " +
                        "run every shard with one build (a rerun of the sweep redoes the points of another build)");
                }
                (build, buildFolder) = (marker.Build, folder);
                string fp = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "summary.json")))!["fingerprint"]!.GetValue<string>();
                if (folders.TryGetValue(point.Index, out var seen))
                {
                    if (seen.Fingerprint != fp)
                    {
                        throw new InvalidOperationException($"point {point.Folder} differs between {seen.Folder} ({seen.Fingerprint}) and {folder} ({fp})");
                    }
                    continue;
                }
                folders[point.Index] = (point, folder, fp);
            }
        }
        var sb = new StringBuilder(LeadColumns);
        foreach (var p in spec.Parameters)
        {
            sb.Append(',').Append(Csv(p.Name));
        }
        sb.Append(',').Append(TailColumns).Append('\n');
        int rows = 0;
        foreach (var (_, (point, folder, fp)) in folders)
        {
            var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "summary.json")))!.AsObject();
            string lead = string.Create(CultureInfo.InvariantCulture, $"{point.Point},{point.Repeat},{point.Seed},{fp},true");
            string values = string.Concat(point.Values.Select(v => "," + Csv(v)));
            foreach (var vm in summary["vms"]!.AsArray())
            {
                foreach (var c in vm!["vcpus"]!.AsArray())
                {
                    sb.Append(lead).Append(values).Append(',').Append(Csv((string)vm["id"]!)).Append(',')
                      .Append(Num(c!["id"])).Append(',').Append(Num(c["reads"])).Append(',')
                      .Append(Num(c["skew_ns"]!["max_abs"])).Append(',').Append(Num(c["skew_ns"]!["final"])).Append(',')
                      .Append(Num(c["drift_ppm"])).Append(',').Append(Num(c["violations"])).Append(',')
                      .Append(Num(c["exits"]!["total"])).Append(',').Append(Num(c["exits"]!["rdtsc"])).Append(',')
                      .Append(Num(c["exits"]!["rdtscp"])).Append(',').Append(Num(c["overhead_pct"])).Append('\n');
                    rows++;
                }
            }
        }
        var missing = points.Where(p => !folders.ContainsKey(p.Index)).ToList();
        if (missing.Count > 0 && !allowMissing)
        {
            string shown = string.Join(", ", missing.Take(10).Select(p => p.Folder)) + (missing.Count > 10 ? $" and {missing.Count - 10} more" : "");
            throw new InvalidOperationException($"{missing.Count} of {points.Count} point(s) are in none of the folders: {shown}; " +
                "run the missing shards (or rerun them), or pass --allow-missing to merge what there is");
        }
        string temp = csvPath + $".tmp-{Environment.ProcessId}";
        File.WriteAllText(temp, sb.ToString());
        File.Move(temp, csvPath, overwrite: true);
        int distinct = folders.Count;
        return (rows, distinct, points.Count - distinct);
    }

    private static string Num(JsonNode? n) => n is null ? "" : n.ToJsonString();

    private static string Csv(string s) =>
        s.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;
}

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
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException ex)
        {
            throw new ScenarioException([new ScenarioDiagnostic(path, (int)ex.Start.Line, (int)ex.Start.Column, $"malformed YAML: {ex.Message}")]);
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

    /// <summary>Runs the sweep. Returns (points run now, points skipped as already complete, points left undone by a cancellation).</summary>
    public static (int Ran, int Skipped, int Undone) Run(SweepSpec spec, string outDir, int jobs, int shard, int shards,
        Action<SweepPoint, RunResult>? done = null, CancellationToken cancel = default)
    {
        Directory.CreateDirectory(Path.Combine(outDir, "points"));
        WriteManifest(spec, outDir, shard, shards);
        var mine = spec.Points().Where(p => p.Index % shards == shard).ToList();
        var todo = mine.Where(p => !IsComplete(Path.Combine(outDir, "points", p.Folder))).ToList();
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
            ResultsWriter.Write(Path.Combine(outDir, "points", point.Folder), model, result);
            Interlocked.Increment(ref ran);
            done?.Invoke(point, result);
        });
        WriteCsv(spec, [outDir], Path.Combine(outDir, "sweep.csv"));
        return (ran, mine.Count - todo.Count, undone);
    }

    /// <summary>
    /// <c>tscsim merge</c>: checks that <paramref name="dirs"/> hold shards of one sweep (same
    /// digest) and writes their joint <c>sweep.csv</c> to <paramref name="csvPath"/>.
    /// </summary>
    public static (int Rows, int Points, int Missing) Merge(IReadOnlyList<string> dirs, string csvPath)
    {
        SweepSpec? spec = null;
        foreach (var dir in dirs)
        {
            string path = Path.Combine(dir, "sweep.json");
            if (!File.Exists(path))
            {
                throw new InvalidOperationException($"{dir} is not a sweep output folder (no sweep.json)");
            }
            var manifest = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            var s = SweepSpec.FromManifest(manifest);
            if (spec is not null && s.Digest() != spec.Digest())
            {
                throw new InvalidOperationException($"{dir} holds another sweep ({s.Name}, digest {s.Digest()}) than {dirs[0]} ({spec.Name}, digest {spec.Digest()})");
            }
            spec ??= s;
        }
        return WriteCsv(spec!, dirs, csvPath);
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
        string existing = File.Exists(path) ? File.ReadAllText(path) : "";
        if (existing.Length > 0 && JsonNode.Parse(existing)?["digest"]?.GetValue<string>() is string d && d != spec.Digest())
        {
            throw new InvalidOperationException($"{outDir} holds a different sweep (digest {d}, this one {spec.Digest()}); use another --out");
        }
        File.WriteAllText(path, manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>
    /// Writes <c>sweep.csv</c> from the complete point folders found in <paramref name="dirs"/>
    /// (one sweep's output folders: shards, or one folder), in (point, repeat) order. A point found
    /// twice must have the same fingerprint. Returns (rows, points, missing points).
    /// </summary>
    public static (int Rows, int Points, int Missing) WriteCsv(SweepSpec spec, IReadOnlyList<string> dirs, string csvPath)
    {
        var folders = new SortedDictionary<int, (SweepPoint Point, string Folder, string Fingerprint)>();
        var points = spec.Points();
        foreach (var point in points)
        {
            foreach (var dir in dirs)
            {
                string folder = Path.Combine(dir, "points", point.Folder);
                if (!IsComplete(folder))
                {
                    continue;
                }
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

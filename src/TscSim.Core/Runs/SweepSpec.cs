using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using TscSim.Core.Scenarios;

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
    internal SweepSpec(string file, string name, string basePath, IReadOnlyList<SweepParameter> parameters, int repeat)
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

    /// <summary>
    /// Reads and checks a sweep file (<see cref="SweepReader"/>), then loads every point, so a bad
    /// value is reported before anything runs; errors as positioned diagnostics (<see cref="ScenarioException"/>).
    /// </summary>
    public static SweepSpec Load(string path)
    {
        string text;
        try
        {
            text = SourceFile.ReadText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ScenarioException([new ScenarioDiagnostic(path, 1, 1, $"cannot read the sweep file: {ex.Message}")]);
        }
        var errors = new List<ScenarioDiagnostic>();
        var spec = new SweepReader(errors).Read(path, text);
        if (spec is null)
        {
            throw new ScenarioException(errors);
        }
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


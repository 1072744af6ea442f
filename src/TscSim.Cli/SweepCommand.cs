using System.Globalization;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;

namespace TscSim.Cli;

/// <summary><c>tscsim sweep</c> and <c>tscsim merge</c>.</summary>
public static class SweepCommand
{
    /// <summary>Parses <c>I/N</c> (0 ≤ I &lt; N).</summary>
    public static bool TryParseShard(string? text, out int shard, out int shards)
    {
        shard = 0;
        shards = 1;
        if (text is null)
        {
            return true;
        }
        var parts = text.Split('/');
        return parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out shard)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out shards)
            && shards >= 1 && shard < shards;
    }

    /// <summary>Loads a sweep file and builds every point's model, printing every problem; null if there is one.</summary>
    private static SweepSpec? LoadChecked(string file, TextWriter error, bool checkExpectations)
    {
        SweepSpec spec;
        try
        {
            spec = SweepSpec.Load(file);
        }
        catch (ScenarioException ex)
        {
            foreach (var d in ex.Diagnostics)
            {
                error.WriteLine(d.ToString());
            }
            return null;
        }
        // Every point must also build (workloads assemble, the model accepts it): checked before anything is written.
        int problems = 0;
        foreach (var point in spec.Points().Where(p => p.Repeat == 0))
        {
            string prefix = $"point {point.Point} ({spec.Describe(point)}): ";
            try
            {
                var model = new ScenarioModel(spec.LoadPoint(point));
                if (checkExpectations && !RunCommand.CheckExpectationPaths(model, error, prefix))
                {
                    problems++;
                }
            }
            catch (ScenarioException ex)
            {
                foreach (var d in ex.Diagnostics)
                {
                    error.WriteLine((d with { Message = prefix + d.Message }).ToString());
                }
                problems++;
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
            {
                error.WriteLine($"{spec.BasePath}:1:1: {prefix}the scenario cannot be built: {ex.Message}");
                problems++;
            }
            if (problems >= 20)
            {
                error.WriteLine($"{file}: stopping after {problems} points with problems");
                break;
            }
        }
        return problems == 0 ? spec : null;
    }

    /// <summary><c>tscsim validate</c> of a sweep file: the sweep and every point. True when valid.</summary>
    internal static bool ValidateSweep(string file, TextWriter output, TextWriter error)
    {
        var spec = LoadChecked(file, error, checkExpectations: true);
        if (spec is null)
        {
            return false;
        }
        int points = spec.Points().Count / spec.Repeat;
        output.WriteLine($"{file}: ok (sweep {spec.Name}: {points} point(s) × {spec.Repeat} repeat(s) of {Path.GetFileName(spec.BasePath)}, " +
            $"varying {string.Join(", ", spec.Parameters.Select(p => p.Name))})");
        return true;
    }

    /// <summary><c>tscsim sweep FILE [--out DIR] [--jobs N] [--shard I/N] [--force]</c>.</summary>
    public static int Sweep(string file, string? outDir, int? jobs, string? shardText, bool quiet, TextWriter output, TextWriter error, bool force = false)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        if (file.Trim().Length == 0)
        {
            error.WriteLine("tscsim sweep: an empty path was given; expected the path of a sweep file (YAML)");
            return ExitCodes.BadInput;
        }
        if (!TryParseShard(shardText, out int shard, out int shards))
        {
            error.WriteLine($"tscsim sweep: --shard '{shardText}': expected I/N with 0 <= I < N, e.g. 0/4");
            return ExitCodes.BadInput;
        }
        if (jobs is < 1)
        {
            error.WriteLine("tscsim sweep: --jobs must be at least 1");
            return ExitCodes.BadInput;
        }
        var spec = LoadChecked(file, error, checkExpectations: false);
        if (spec is null)
        {
            return ExitCodes.BadInput;
        }
        string dir = outDir ?? DefaultFolder(spec.Name);
        int total = spec.Points().Count(p => p.Index % shards == shard);
        int finished = 0;
        var gate = new Lock();
        using var interruption = new Interruption();
        try
        {
            var (ran, skipped, undone) = SweepRunner.Run(spec, dir, jobs ?? Environment.ProcessorCount, shard, shards, (point, result) =>
            {
                lock (gate)
                {
                    finished++;
                    if (!quiet)
                    {
                        // Progress: stderr, so stdout carries only the result line.
                        error.WriteLine($"[{finished}] {point.Folder} ({spec.Describe(point)}, seed {point.Seed}): fingerprint {result.Fingerprint}, " +
                            $"expectations {(result.Passed ? "held" : "FAILED")}");
                    }
                }
            }, interruption.Token, force, note => error.WriteLine($"tscsim sweep: {note}"));
            if (interruption.Signal is { } signal)
            {
                error.WriteLine($"tscsim sweep: {signal} received; stopped between points, the next run carries on");
            }
            output.WriteLine($"sweep {spec.Name}: {ran} point(s) run, {skipped} already complete, {undone} left undone of {total} in this shard; {Path.Combine(dir, "sweep.csv")}");
            return undone > 0 ? ExitCodes.Interrupted : ExitCodes.Success;
        }
        catch (Exception ex) when (ex is OutputFolderException or InvalidOperationException)
        {
            error.WriteLine($"tscsim sweep: {ex.Message}");
            return ExitCodes.BadInput;
        }
    }

    /// <summary>A sweep's default folder, <c>results/sweeps/NAME/</c>: never a run's default <c>results/NAME/</c>.</summary>
    public static string DefaultFolder(string name) => Path.Combine("results", "sweeps", name);

    /// <summary><c>tscsim merge DIR... [--out FILE] [--allow-missing]</c>.</summary>
    public static int Merge(IReadOnlyList<string> dirs, string? outFile, TextWriter output, TextWriter error, bool allowMissing = false)
    {
        ArgumentNullException.ThrowIfNull(dirs);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        if (dirs.Count == 0 || dirs.Any(d => d.Trim().Length == 0) || outFile?.Trim().Length == 0)
        {
            error.WriteLine("tscsim merge: an empty path was given; expected the shard folders of one sweep (and --out FILE.csv)");
            return ExitCodes.BadInput;
        }
        try
        {
            string csv = outFile ?? DefaultMergeFile(dirs[0]);
            var (rows, points, missing) = SweepRunner.Merge(dirs, csv, allowMissing);
            output.WriteLine($"merged {dirs.Count} folder(s): {points} point(s), {rows} row(s), {missing} point(s) missing; {csv}");
            return ExitCodes.Success;
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            error.WriteLine($"tscsim merge: {ex.Message}");
            return ExitCodes.BadInput;
        }
    }

    /// <summary>Merge's default output: <c>NAME.merged.csv</c> beside the first shard folder (NAME from its manifest).</summary>
    private static string DefaultMergeFile(string firstDir)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(firstDir));
        string manifest = Path.Combine(full, "sweep.json");
        if (!File.Exists(manifest))
        {
            throw new InvalidOperationException($"{firstDir} is not a sweep output folder (no sweep.json)");
        }
        string name = (string?)System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(manifest))?["name"] ?? Path.GetFileName(full);
        return Path.Combine(Path.GetDirectoryName(full) ?? ".", $"{name}.merged.csv");
    }
}

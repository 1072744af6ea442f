using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TscSim.Core.Scenarios;

namespace TscSim.Core.Runs;

/// <summary>
/// Writes a results folder atomically: every file goes into a temporary sibling folder, which
/// replaces the destination only when complete, so a reader never sees half a folder. The
/// destination is replaced only as <see cref="OutputFolder.Check"/> allows (a folder TscSim wrote
/// as a run's results); the caller holds the folder's <see cref="OutputLock"/> (or is its only
/// writer, as a sweep's points are under the sweep's lock).
/// </summary>
public static class ResultsWriter
{
    // Makes temporary names unique within a process (parallel sweep points); the process id across processes.
    private static long _writes;

    /// <summary>The digest of a resolved scenario (16 hex digits of the SHA-256 of its YAML): equal digests, equal scenarios.</summary>
    public static string ScenarioDigest(Scenario resolved) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(ScenarioWriter.ToYaml(resolved))))[..16];

    /// <summary>
    /// Writes <paramref name="result"/> of <paramref name="model"/> to <paramref name="directory"/>,
    /// with a marker naming this build, the resolved scenario's digest and, for a sweep's point,
    /// the sweep's digest. Returns notes for the user (a <c>plots/</c> folder of the replaced
    /// results that was removed).
    /// </summary>
    /// <exception cref="OutputFolderException">The destination may not be replaced.</exception>
    public static IReadOnlyList<string> Write(string directory, ScenarioModel model, RunResult result, bool force = false, string? sweepDigest = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(result);
        string full = OutputFolder.Normalize(directory);
        string parent = Path.GetDirectoryName(full)!;
        string name = Path.GetFileName(full);
        Directory.CreateDirectory(parent);
        // Leftovers of an earlier writer of this folder that was killed (the caller holds the
        // folder's lock, so no live writer owns them): temporary copies go; an ".old" copy is the
        // previous complete result, put back if the folder itself is missing.
        foreach (var stale in Directory.GetDirectories(parent, $".{name}.*"))
        {
            string n = Path.GetFileName(stale);
            if (n.StartsWith($".{name}.old-", StringComparison.Ordinal) && !Directory.Exists(full))
            {
                Directory.Move(stale, full);
            }
            else if (n.StartsWith($".{name}.tmp-", StringComparison.Ordinal) || n.StartsWith($".{name}.old-", StringComparison.Ordinal))
            {
                Directory.Delete(stale, recursive: true);
            }
        }
        OutputFolder.Check(full, ResultKind.Run, force);
        string temp = Path.Combine(parent, $".{name}.tmp-{Environment.ProcessId}-{Interlocked.Increment(ref _writes)}");
        Directory.CreateDirectory(temp);
        try
        {
            var options = new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
            File.WriteAllText(Path.Combine(temp, "summary.json"), result.Summary.ToJsonString(options) + "\n");
            using (var w = new StreamWriter(Path.Combine(temp, "reads.csv"), false, new UTF8Encoding(false)))
            {
                model.Observer.Series.WriteCsv(w);
            }
            File.WriteAllText(Path.Combine(temp, "events.csv"), ScenarioRun.TimelineCsv(model));
            File.WriteAllText(Path.Combine(temp, "exits.csv"), ScenarioRun.ExitsCsv(model));
            var resolved = model.Seed == model.Scenario.Seed ? model.Scenario : model.Scenario with { Seed = model.Seed };
            File.WriteAllText(Path.Combine(temp, "scenario.resolved.yaml"), ScenarioWriter.ToYaml(resolved));
            new ResultMarker(ResultKind.Run, ResultMarker.CurrentBuild, ScenarioDigest(resolved), sweepDigest).WriteTo(temp);
        }
        catch
        {
            Directory.Delete(temp, recursive: true);
            throw;
        }
        var notes = new List<string>();
        if (Directory.Exists(full))
        {
            if (Directory.Exists(Path.Combine(full, "plots")))
            {
                notes.Add($"removed {Path.Combine(full, "plots")}: the figures of the results this run replaced (draw them again with 'tscsim plot {full}')");
            }
            string old = Path.Combine(parent, $".{name}.old-{Environment.ProcessId}-{Interlocked.Increment(ref _writes)}");
            Directory.Move(full, old);
            Directory.Move(temp, full);
            Directory.Delete(old, recursive: true);
        }
        else
        {
            Directory.Move(temp, full);
        }
        return notes;
    }
}

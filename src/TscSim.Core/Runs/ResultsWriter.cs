using System.Text;
using System.Text.Json;
using TscSim.Core.Scenarios;

namespace TscSim.Core.Runs;

/// <summary>
/// Writes a results folder atomically: every file goes into a temporary sibling folder, which
/// replaces the destination only when complete, so a reader never sees half a folder.
/// </summary>
public static class ResultsWriter
{
    // Makes temporary names unique within a process (parallel sweep points); the process id across processes.
    private static long _writes;

    /// <summary>Writes <paramref name="result"/> of <paramref name="model"/> to <paramref name="directory"/>.</summary>
    public static void Write(string directory, ScenarioModel model, RunResult result)
    {
        string full = Path.GetFullPath(directory);
        string parent = Path.GetDirectoryName(full) ?? ".";
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Interlocked.Increment(ref _writes)}");
        // Leftovers of an earlier writer of this folder that was killed: temporary copies go; an
        // ".old" copy is the previous complete result, put back if the folder itself is missing.
        foreach (var stale in Directory.GetDirectories(parent, $".{Path.GetFileName(full)}.*"))
        {
            string n = Path.GetFileName(stale);
            if (n.Contains(".old-", StringComparison.Ordinal) && !Directory.Exists(full))
            {
                Directory.Move(stale, full);
            }
            else if (n.Contains(".tmp-", StringComparison.Ordinal) || n.Contains(".old-", StringComparison.Ordinal))
            {
                Directory.Delete(stale, recursive: true);
            }
        }
        Directory.CreateDirectory(temp);
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
        if (Directory.Exists(full))
        {
            string old = Path.Combine(parent, $".{Path.GetFileName(full)}.old-{Environment.ProcessId}-{Interlocked.Increment(ref _writes)}");
            Directory.Move(full, old);
            Directory.Move(temp, full);
            Directory.Delete(old, recursive: true);
        }
        else
        {
            Directory.Move(temp, full);
        }
    }
}

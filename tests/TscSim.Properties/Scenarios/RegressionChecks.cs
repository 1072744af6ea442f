using TscSim.Core.Runs;
using TscSim.Core.Scenarios;

namespace TscSim.Properties.Scenarios;

/// <summary>
/// The checks every saved scenario file must pass, whatever property found it: it loads and
/// builds, no vCPU faults, every <c>expect:</c> line holds, a second run gives the same
/// fingerprint and summary, the resolved scenario reproduces them, and (without a host
/// scheduler) every vCPU's cycles account for its time (<see cref="CycleConservation"/>).
/// </summary>
public static class RegressionChecks
{
    /// <summary>The header line that marks a file as the reproducer of a known, unfixed model bug.</summary>
    public const string KnownBugMarker = "# known-bug:";

    /// <summary>The header line giving the text a known bug's failure contains.</summary>
    public const string FailsWithMarker = "# fails-with:";

    /// <summary>Whether the file's leading comments mark it as a known bug's reproducer.</summary>
    public static bool IsKnownBug(string text) => Header(text, KnownBugMarker) is not null;

    /// <summary>The text after <paramref name="marker"/> in the file's leading comment lines, or null.</summary>
    public static string? Header(string text, string marker) =>
        text.Split('\n').TakeWhile(l => l.TrimStart().StartsWith('#') || l.Trim().Length == 0)
            .Select(l => l.Trim())
            .Where(l => l.StartsWith(marker, StringComparison.Ordinal))
            .Select(l => l[marker.Length..].Trim())
            .FirstOrDefault();

    /// <summary>Runs every check on the scenario file at <paramref name="path"/>; returns what failed (empty when all pass).</summary>
    public static List<string> Run(string path)
    {
        var failures = new List<string>();
        Scenario scenario;
        ScenarioModel model;
        try
        {
            scenario = ScenarioLoader.Load(path);
            model = new ScenarioModel(scenario);
        }
        catch (ScenarioException ex)
        {
            failures.Add("invalid scenario: " + string.Join("; ", ex.Diagnostics));
            return failures;
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            failures.Add("the scenario cannot be built: " + ex.Message);
            return failures;
        }

        RunOutcome first = ScenarioHarness.Run(scenario, model);
        if (ScenarioHarness.NoFaults(first) is { } faults)
        {
            failures.Add(faults);
        }
        failures.AddRange(first.Result.Expectations.Where(e => !e.Passed).Select(e => $"expectation failed: {e.Message}"));

        RunOutcome again = ScenarioHarness.Run(scenario);
        if (again.Result.Fingerprint != first.Result.Fingerprint || ScenarioHarness.StableSummary(again.Result) != ScenarioHarness.StableSummary(first.Result))
        {
            failures.Add($"not deterministic: fingerprints {first.Result.Fingerprint} and {again.Result.Fingerprint}, or different summaries");
        }
        Scenario resolved = ScenarioLoader.LoadText(ScenarioWriter.ToYaml(scenario), "scenario.resolved.yaml");
        RunOutcome replay = ScenarioHarness.Run(resolved);
        if (resolved != scenario || replay.Result.Fingerprint != first.Result.Fingerprint)
        {
            failures.Add($"the resolved scenario does not reproduce the run (fingerprint {replay.Result.Fingerprint})");
        }
        if (CycleConservation.Check(first) is { } conservation)
        {
            failures.Add("cycle conservation: " + conservation);
        }
        return failures;
    }
}

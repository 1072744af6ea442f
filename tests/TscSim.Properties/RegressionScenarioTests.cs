using TscSim.Properties.Scenarios;

namespace TscSim.Properties;

/// <summary>
/// Every scenario file under <c>scenarios/regressions/</c> (counterexamples the properties found,
/// saved as they printed them) passes <see cref="RegressionChecks"/>; a file marked
/// <c># known-bug:</c> must still fail them with the text of its <c># fails-with:</c> line, so a
/// fix is noticed and the mark removed. Folders
/// named in <c>TSCSIM_PROPERTY_SCENARIOS</c> (separated by the platform's path separator) are
/// checked the same way: that is how users run the invariants on their own scenario files.
/// </summary>
public class RegressionScenarioTests
{
    /// <summary>Marks an empty folder in the theory data, so an empty folder is still a passing, named case.</summary>
    private const string NoFiles = "(no scenario files)";

    /// <summary>The environment variable naming extra folders of scenario files to check.</summary>
    public const string ExtraFoldersVariable = "TSCSIM_PROPERTY_SCENARIOS";

    internal static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "TscSim.sln")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new InvalidOperationException("TscSim.sln not found above the test binaries");
    }

    /// <summary>The folder of saved counterexamples.</summary>
    public static string Folder => Path.Combine(RepoRoot(), "scenarios", "regressions");

    private static IEnumerable<string> Folders()
    {
        yield return Folder;
        foreach (string extra in (Environment.GetEnvironmentVariable(ExtraFoldersVariable) ?? "")
                     .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            yield return Path.GetFullPath(extra);
        }
    }

    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (string folder in Folders().Where(Directory.Exists))
        {
            foreach (string file in Directory.EnumerateFiles(folder, "*.yaml").Concat(Directory.EnumerateFiles(folder, "*.yml")).Order(StringComparer.Ordinal))
            {
                data.Add(Path.GetRelativePath(RepoRoot(), file));
            }
        }
        if (data.Count == 0)
        {
            data.Add(NoFiles);
        }
        return data;
    }

    [Fact]
    public void The_regressions_folder_exists_and_says_what_it_is_for()
    {
        Assert.True(Directory.Exists(Folder), $"{Folder} is missing");
        string readme = Path.Combine(Folder, "README.md");
        Assert.True(File.Exists(readme), $"{readme} is missing");
        Assert.Contains("RegressionScenarioTests", File.ReadAllText(readme), StringComparison.Ordinal);
        foreach (string folder in Folders())
        {
            Assert.True(Directory.Exists(folder), $"{ExtraFoldersVariable} names {folder}, which does not exist");
        }
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Saved_scenario_passes_every_invariant_or_still_shows_its_known_bug(string file)
    {
        if (file == NoFiles)
        {
            Assert.True(Directory.Exists(Folder));
            return;
        }
        string path = Path.Combine(RepoRoot(), file);
        List<string> failures = RegressionChecks.Run(path);
        string text = File.ReadAllText(path);
        if (RegressionChecks.IsKnownBug(text))
        {
            string symptom = RegressionChecks.Header(text, RegressionChecks.FailsWithMarker) ?? "";
            Assert.True(failures.Any(f => f.Contains(symptom, StringComparison.Ordinal)),
                $"{file} is marked '{RegressionChecks.KnownBugMarker}' (failing with '{symptom}') but does not fail that way now: " +
                $"the bug looks fixed. Remove the mark (and its rule in tests/TscSim.Properties/Scenarios/KnownModelBugs.cs, if any) " +
                $"so the file guards the fix. Checks that failed: [{string.Join("; ", failures)}]");
            return;
        }
        Assert.True(failures.Count == 0, $"{file}:\n  " + string.Join("\n  ", failures));
    }
}

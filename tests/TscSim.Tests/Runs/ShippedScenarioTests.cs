using System.Globalization;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;

namespace TscSim.Tests.Runs;

/// <summary>
/// Every shipped scenario runs, meets its own expectations and reproduces the fingerprint pinned
/// in tests/fingerprints.csv. To re-pin on purpose (after a model change that is meant to change
/// results), run the tests with TSCSIM_UPDATE_FINGERPRINTS=1 and commit the rewritten file.
/// </summary>
public class ShippedScenarioTests
{
    internal static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "TscSim.sln")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new InvalidOperationException("TscSim.sln not found above the test binaries");
    }

    /// <summary>
    /// Shipped scenarios too long for the Debug test run: datacenter.yaml (100 hosts, 800 VMs,
    /// 10 s) takes about 100 s in Release and several minutes in Debug, and its events cannot be
    /// cut to a shorter <c>--set duration</c> (its migrations run until 9.4 s).
    /// <c>tscsim bench --datacenter</c> runs and times it instead; its shape is checked below.
    /// </summary>
    internal static readonly string[] TooSlowForTests = ["datacenter.yaml"];

    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(Path.Combine(RepoRoot(), "scenarios"), "*.yaml").Order(StringComparer.Ordinal))
        {
            if (!TooSlowForTests.Contains(Path.GetFileName(f)))
            {
                data.Add(Path.GetFileName(f));
            }
        }
        return data;
    }

    [Fact]
    public void The_datacenter_scenario_is_100_hosts_of_8_two_vcpu_vms_with_a_rolling_migration_over_10_s()
    {
        var scenario = ScenarioLoader.Load(Path.Combine(RepoRoot(), "scenarios", "datacenter.yaml"));
        Assert.Equal(TscSim.Core.Time.Duration.FromSeconds(10), scenario.Duration);
        Assert.Equal(100, scenario.Hosts.Count);
        Assert.Equal(800, scenario.Vms.Count);
        Assert.All(scenario.Hosts, h => Assert.Equal(8, scenario.Vms.Count(v => v.Host == h.Id)));
        Assert.All(scenario.Vms, v => Assert.Equal(2, v.Vcpus));
        Assert.True(scenario.Hosts.Select(h => h.Cpu).Distinct().Count() >= 3);
        Assert.True(scenario.Vms.Select(v => v.Guest.Profile).Distinct().Count() >= 5);
        // Rolling: one live migration out of every host, one at a time, spread over the run.
        var migrations = scenario.EventsInTimeOrder.OfType<TscSim.Core.Scenarios.LiveMigrateEvent>().ToList();
        Assert.Equal(100, migrations.Count);
        Assert.True(migrations.Zip(migrations.Skip(1)).All(p => p.Second.At - p.First.At > p.First.Downtime));
        Assert.True(migrations[^1].At > TscSim.Core.Time.Duration.FromSeconds(9));
        Assert.NotEmpty(scenario.Expect);
    }

    private static readonly Lock FingerprintLock = new();

    private static Dictionary<string, string> Pinned()
    {
        string path = Path.Combine(RepoRoot(), "tests", "fingerprints.csv");
        return File.Exists(path)
            ? File.ReadAllLines(path).Skip(1).Where(l => l.Length > 0).Select(l => l.Split(',')).ToDictionary(p => p[0], p => p[1])
            : [];
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Shipped_scenario_meets_its_expectations_and_its_pinned_fingerprint(string file)
    {
        var scenario = ScenarioLoader.Load(Path.Combine(RepoRoot(), "scenarios", file));
        var model = new ScenarioModel(scenario);
        var result = ScenarioRun.Execute(model);
        Assert.True(result.Complete);
        Assert.NotEmpty(result.Expectations);
        Assert.All(result.Expectations, e => Assert.True(e.Passed, $"{file}: {e.Expectation.Text}: {e.Message}"));
        Assert.Empty(model.Observer.Faults);

        if (Environment.GetEnvironmentVariable("TSCSIM_UPDATE_FINGERPRINTS") == "1")
        {
            lock (FingerprintLock)
            {
                var pins = Pinned();
                pins[scenario.Name] = result.Fingerprint;
                File.WriteAllLines(Path.Combine(RepoRoot(), "tests", "fingerprints.csv"),
                    ["scenario,fingerprint", .. pins.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key},{p.Value}")]);
            }
            return;
        }
        Assert.True(Pinned().TryGetValue(scenario.Name, out var pinned), $"no fingerprint pinned for {scenario.Name} in tests/fingerprints.csv");
        Assert.Equal(pinned, result.Fingerprint);
    }

    [Fact]
    public void The_resolved_scenario_reproduces_the_run_exactly()
    {
        var scenario = ScenarioLoader.Load(Path.Combine(RepoRoot(), "scenarios", "legacy-guest-to-faster-host.yaml"));
        var first = ScenarioRun.Execute(new ScenarioModel(scenario));
        var again = ScenarioLoader.LoadText(ScenarioWriter.ToYaml(scenario), "scenario.resolved.yaml");
        var second = ScenarioRun.Execute(new ScenarioModel(again));
        Assert.Equal(first.Fingerprint, second.Fingerprint);
        Assert.Equal(Strip(first), Strip(second));
    }

    [Fact]
    public void A_different_seed_is_recorded_and_a_results_folder_is_written_whole()
    {
        var scenario = ScenarioLoader.Load(Path.Combine(RepoRoot(), "scenarios", "tsc-khz-far-from-host.yaml"));
        var model = new ScenarioModel(scenario, seed: 7);
        var result = ScenarioRun.Execute(model);
        string dir = Path.Combine(Path.GetTempPath(), $"tscsim-results-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            ResultsWriter.Write(dir, model, result);
            Assert.Equal([".tscsim-result", "events.csv", "exits.csv", "reads.csv", "scenario.resolved.yaml", "summary.json"],
                Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            Assert.Contains("seed: 7", File.ReadAllText(Path.Combine(dir, "scenario.resolved.yaml")), StringComparison.Ordinal);
            Assert.StartsWith("true_ns,vm,vcpu,core,host,clock_ns,skew_ns,exited,cycles\n", File.ReadAllText(Path.Combine(dir, "reads.csv")), StringComparison.Ordinal);
            Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(dir)!, $".{Path.GetFileName(dir)}*"));
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, true);
            }
        }
    }

    /// <summary>The summary without its one non-deterministic field (wall_seconds).</summary>
    private static string Strip(RunResult r)
    {
        var copy = r.Summary.DeepClone().AsObject();
        copy.Remove("wall_seconds");
        return copy.ToJsonString();
    }
}

public class InterruptionTests
{
    [Fact]
    public void A_cancelled_run_stops_between_steps_and_says_it_is_incomplete()
    {
        var scenario = ScenarioLoader.Load(Path.Combine(ShippedScenarioTests.RepoRoot(), "scenarios", "tsc-khz-far-from-host.yaml"));
        var model = new ScenarioModel(scenario);
        using var cts = new CancellationTokenSource();
        int steps = 0;
        var result = ScenarioRun.Execute(model, _ =>
        {
            if (++steps == 10)
            {
                cts.Cancel();
            }
        }, cts.Token);
        Assert.False(result.Complete);
        Assert.False((bool)result.Summary["complete"]!);
        // Ten of the 200 steps ran: the simulation stopped at 10/200 of the 2 s duration.
        Assert.Equal(100_000_000L, (long)result.Summary["simulated_ns"]!);
    }
}

using TscSim.Core.Engine;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;

namespace TscSim.Tests.Runs;

/// <summary>
/// The run fingerprint covers results, not only the event trajectory: runs whose summaries
/// differ never share a fingerprint (issue 14, item 12).
/// </summary>
public class FingerprintTests
{
    [Fact]
    public void A_result_word_follows_the_documented_definition()
    {
        // Expected value computed independently (Python) from Fingerprint's definition:
        // fold(tag = 1<<56 | 3, then 42) from the initial value.
        var sim = new Simulator(1);
        sim.FoldResult(ResultWord.Tag(ResultWord.ClockRead, subject: 3, detail: 0));
        sim.FoldResult(42);
        Assert.Equal("585312271f831cf5", sim.Fingerprint.ToString());
    }

    [Fact]
    public void The_same_events_with_a_different_read_value_give_a_different_fingerprint()
    {
        var a = new Simulator(1);
        var b = new Simulator(1);
        a.FoldResult(ResultWord.Tag(ResultWord.TscRead, 0, 0));
        b.FoldResult(ResultWord.Tag(ResultWord.TscRead, 0, 0));
        a.FoldResult(1_000);
        b.FoldResult(1_001);
        Assert.NotEqual(a.Fingerprint, b.Fingerprint);
    }

    public static TheoryData<string, string, string> Pairs() => new()
    {
        // The hostile trial's pair: a 4 GHz destination, trapping off vs auto (+900 ms vs -50 ms skew, one fingerprint before)
        { "sweeps/skew-vs-frequency-ratio.base.yaml", "hosts[1].frequency=4GHz;hypervisor.trapping=off", "hosts[1].frequency=4GHz;hypervisor.trapping=auto" },
        // trapping forced off vs the policy's choice on a faster host: the events are alike, the skew is not
        { "legacy-guest-to-faster-host.yaml", "hypervisor.trapping=off", "hypervisor.trapping=auto" },
        { "legacy-guest-to-faster-host.yaml", "hypervisor.trapping=off", "hypervisor.trapping=on" },
        { "tsc-khz-far-from-host.yaml", "hypervisor.trapping=off", "hypervisor.trapping=auto" },
    };

    [Theory]
    [MemberData(nameof(Pairs))]
    public void Runs_with_different_results_have_different_fingerprints(string file, string setA, string setB)
    {
        string path = Path.Combine(ShippedScenarioTests.RepoRoot(), "scenarios", file);
        var a = ScenarioRun.Execute(new ScenarioModel(ScenarioLoader.Load(path, [.. setA.Split(';')])));
        var b = ScenarioRun.Execute(new ScenarioModel(ScenarioLoader.Load(path, [.. setB.Split(';')])));
        Assert.NotEqual(Strip(a), Strip(b)); // the pair is meaningful: the results differ
        Assert.NotEqual(a.Fingerprint, b.Fingerprint);
    }

    [Fact]
    public void Two_shipped_scenarios_with_different_outcomes_no_longer_share_a_fingerprint()
    {
        // Before results were folded in, these two shared 3effcb615e01d211 although their skews differ.
        string dir = Path.Combine(ShippedScenarioTests.RepoRoot(), "scenarios");
        var a = ScenarioRun.Execute(new ScenarioModel(ScenarioLoader.Load(Path.Combine(dir, "legacy-guest-to-faster-host.yaml"))));
        var b = ScenarioRun.Execute(new ScenarioModel(ScenarioLoader.Load(Path.Combine(dir, "xen-default-migration.yaml"))));
        Assert.NotEqual(Strip(a), Strip(b));
        Assert.NotEqual(a.Fingerprint, b.Fingerprint);
    }

    private static string Strip(RunResult r)
    {
        var copy = r.Summary.DeepClone().AsObject();
        copy.Remove("wall_seconds");
        copy.Remove("fingerprint");
        copy.Remove("scenario");
        return copy.ToJsonString();
    }
}

using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;

namespace TscSim.Properties.Scenarios;

/// <summary>A scenario that ran: its model (hosts, VMs, recorders), its result (the summary) and every clock read.</summary>
/// <param name="Scenario">The loaded scenario.</param>
/// <param name="Model">The model after the run.</param>
/// <param name="Result">What the run produced.</param>
/// <param name="ClockReads">Per VM (scenario order), every clock read with its start and end.</param>
public sealed record RunOutcome(Scenario Scenario, ScenarioModel Model, RunResult Result, IReadOnlyList<ClockReadLog> ClockReads);

/// <summary>
/// Runs generated scenarios in-process exactly as <c>tscsim run</c> does (YAML through
/// <see cref="ScenarioLoader"/>, <see cref="ScenarioModel"/>, <see cref="ScenarioRun"/>), and
/// turns a check's verdict into an FsCheck property whose failure label is a file ready to save
/// under <c>scenarios/regressions/</c>.
/// </summary>
public static class ScenarioHarness
{
    /// <summary>Loads <paramref name="yaml"/> as a scenario file named <paramref name="fileName"/>.</summary>
    public static Scenario Load(string yaml, string fileName) => ScenarioLoader.LoadText(yaml, fileName);

    /// <summary>Builds and runs <paramref name="scenario"/> to its duration with <paramref name="seed"/> (default: the scenario's).</summary>
    public static RunOutcome Run(Scenario scenario, ulong? seed = null) => Run(scenario, new ScenarioModel(scenario, seed));

    /// <summary>Runs a built <paramref name="model"/> of <paramref name="scenario"/>, logging its clock reads.</summary>
    public static RunOutcome Run(Scenario scenario, ScenarioModel model)
    {
        var logs = model.Vms.Select(v => new ClockReadLog(v.Vm.Vcpus)).ToList();
        return new RunOutcome(scenario, model, ScenarioRun.Execute(model), logs);
    }

    /// <summary>The summary without <c>wall_seconds</c>, the one field that differs between identical runs.</summary>
    public static string StableSummary(RunResult result)
    {
        var copy = result.Summary.DeepClone().AsObject();
        copy.Remove("wall_seconds");
        return copy.ToJsonString();
    }

    /// <summary>
    /// Checks <paramref name="generated"/>: runs it with <paramref name="expect"/> as its
    /// <c>expect:</c> lines, then fails on a guest fault, on an expectation that does not hold, or
    /// when <paramref name="check"/> returns a message (null: the property holds). A failure,
    /// including an exception anywhere in loading or running, is labelled with the property and a
    /// regression file (see <see cref="RegressionFile"/>). A scenario the model refuses to build
    /// (as <c>tscsim validate</c> would, e.g. KVM refusing a <c>tsc_khz</c> below the host's
    /// without scaling) is discarded, not failed. <paramref name="classify"/> adds FsCheck
    /// classifications (shown in the test output) so a run shows what it covered.
    /// </summary>
    public static Property Check(GeneratedScenario generated, string property, IReadOnlyList<string> expect,
        Func<RunOutcome, string?> check, Func<RunOutcome, IEnumerable<(bool When, string Label)>>? classify = null)
    {
        string yaml = generated.ToYaml(expect);
        string? failure;
        var labels = new List<(bool, string)>();
        try
        {
            Scenario scenario = Load(yaml, generated.Name + ".yaml");
            ScenarioModel model;
            try
            {
                model = new ScenarioModel(scenario);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException || ex is ScenarioException { Refused: true })
            {
                // The model refuses to build it (e.g. KVM refusing a tsc_khz below the host's
                // without scaling), as `tscsim validate` does: not a member of the family.
                return Prop.When(false, () => true);
            }
            RunOutcome outcome = Run(scenario, model);
            failure = NoFaults(outcome) ?? FailedExpectations(outcome) ?? check(outcome);
            if (classify is not null)
            {
                labels.AddRange(classify(outcome));
            }
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            failure = $"the run threw {ex.GetType().Name}: {ex.Message}\n{ex.StackTrace}";
        }
        Property p = (failure is null).Label(failure is null ? "ok" : Describe(generated, property, failure, expect));
        foreach (var (when, label) in labels)
        {
            p = p.Classify(when, label);
        }
        return p;
    }

    /// <summary>A failure message naming the faults of the run, or null if no vCPU faulted.</summary>
    public static string? NoFaults(RunOutcome o) =>
        o.Model.Observer.Faults.Count == 0 ? null : "guest faults: " + string.Join("; ", o.Model.Observer.Faults);

    /// <summary>A failure message listing the expectations that did not hold, or null.</summary>
    public static string? FailedExpectations(RunOutcome o)
    {
        var failed = o.Result.Expectations.Where(e => !e.Passed).Select(e => e.Message).ToList();
        return failed.Count == 0 ? null : "expectations failed: " + string.Join("; ", failed);
    }

    /// <summary>The failure label: what broke, then the scenario as a file to save under <c>scenarios/regressions/</c>.</summary>
    public static string Describe(GeneratedScenario generated, string property, string failure, IReadOnlyList<string> expect)
    {
        var (file, text) = RegressionFile(generated, property, failure, expect);
        return $"{property} failed: {failure}\n---- save as scenarios/regressions/{file} ----\n{text}---- end of {file} ----";
    }

    /// <summary>
    /// A regression file for <paramref name="generated"/>: a header naming the property and the
    /// failure, the scenario renamed after the file, and <paramref name="expect"/> lines stating the
    /// property where the summary can express it. The file's name is the property's short name
    /// and a hash of the scenario, so two different counterexamples never collide.
    /// </summary>
    public static (string FileName, string Text) RegressionFile(GeneratedScenario generated, string property, string failure, IReadOnlyList<string> expect)
    {
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(generated.ToYaml())))[..8];
        string stem = $"{generated.Name}-{hash}";
        var b = new StringBuilder();
        b.Append("# Found by the property suite (tests/TscSim.Properties): ").Append(property).Append('\n');
        foreach (string line in failure.Split('\n').Take(3))
        {
            b.Append("# ").Append(line.TrimEnd()).Append('\n');
        }
        b.Append("# Every file in scenarios/regressions/ is run by RegressionScenarioTests (see its README.md).\n");
        b.Append((generated with { Name = stem }).ToYaml(expect));
        return (stem + ".yaml", b.ToString());
    }

    /// <summary>Formats <paramref name="x"/> for a message.</summary>
    public static string N(long x) => x.ToString("N0", CultureInfo.InvariantCulture);
}

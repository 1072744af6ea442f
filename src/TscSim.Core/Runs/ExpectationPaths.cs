using System.Globalization;
using System.Text.Json.Nodes;
using TscSim.Core.Scenarios;
using TscSim.Core.Text;

namespace TscSim.Core.Runs;

/// <summary>
/// Checks a scenario's expectation paths against the shape of its summary before anything runs:
/// <c>vm0.vcpu7.reads</c> for a VM of 2 vCPUs, or a misspelt field, is an error at the
/// expectation's position (what <c>tscsim validate</c> reports), not a failed run.
/// </summary>
public static class ExpectationPaths
{
    /// <summary>
    /// Diagnostics for every expectation of <paramref name="model"/>'s scenario whose path names no
    /// value of its summary. The shape is that of the summary the run would write (built from the
    /// model before it runs, so VM ids and vCPU counts are the scenario's own).
    /// </summary>
    public static IReadOnlyList<ScenarioDiagnostic> Check(ScenarioModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Scenario.Expect.Count == 0)
        {
            return [];
        }
        var summary = ScenarioRun.Summarize(model, complete: false, wallSeconds: 0).Summary;
        var known = Known(summary);
        var problems = new List<ScenarioDiagnostic>();
        foreach (var e in model.Scenario.Expect)
        {
            if (known.Contains(e.Path))
            {
                continue;
            }
            string message = $"{e.Text}: no result is named '{e.Path}'";
            string[] parts = e.Path.Split('.');
            var vm = summary["vms"]!.AsArray().FirstOrDefault(v => (string?)v!["id"] == parts[0]);
            if (vm is not null && parts.Length > 1 && parts[1].StartsWith("vcpu", StringComparison.Ordinal)
                && int.TryParse(parts[1].AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out int index)
                && vm["vcpus"] is JsonArray cpus && index >= cpus.Count)
            {
                message += $": {parts[0]} has {cpus.Count} vCPU(s), {(cpus.Count == 1 ? "vcpu0" : $"vcpu0 to vcpu{cpus.Count - 1}")}";
            }
            string hint = Suggestions.Hint(e.Path, known, 3);
            message += hint.Length > 0 ? hint : "; expected a path of summary.json such as vm0.vcpu0.skew_ns.max_abs";
            problems.Add(ScenarioDiagnostic.At(e.Position.IsKnown ? e.Position : new SourcePosition(model.Scenario.Name, 1, 1), message));
        }
        return problems;
    }

    /// <summary>Every path an expectation may name: top-level values, and each VM's values (vCPUs as <c>vcpuN</c>), null values included.</summary>
    private static HashSet<string> Known(JsonObject summary)
    {
        var known = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, value) in summary)
        {
            if (value is null or JsonValue)
            {
                known.Add(key);
            }
        }
        foreach (var vm in summary["vms"]!.AsArray())
        {
            Add(vm!, (string)vm!["id"]!, known);
        }
        return known;
    }

    private static void Add(JsonNode node, string prefix, HashSet<string> known)
    {
        if (node is not JsonObject o)
        {
            return;
        }
        foreach (var (key, value) in o)
        {
            if (key == "vcpus" && value is JsonArray cpus)
            {
                for (int i = 0; i < cpus.Count; i++)
                {
                    Add(cpus[i]!, $"{prefix}.vcpu{i}", known);
                }
            }
            else if (value is JsonObject)
            {
                Add(value, $"{prefix}.{key}", known);
            }
            else if (value is null or JsonValue)
            {
                known.Add($"{prefix}.{key}");
            }
        }
    }
}

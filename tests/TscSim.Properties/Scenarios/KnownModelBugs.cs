namespace TscSim.Properties.Scenarios;

/// <summary>
/// Model bugs the properties found that are not fixed yet. Each gets a rule here, which keeps
/// every family away from it (so the suite stays green and keeps finding other things), and its
/// minimal scenario is saved under <c>scenarios/regressions/</c> with <c># known-bug:</c> and
/// <c># fails-with:</c> header lines, which <c>RegressionScenarioTests</c> expects to still fail.
/// When the bug is fixed: delete its rule here and the two header lines in its file; the file
/// then guards the fix.
/// </summary>
/// <remarks>
/// None at the moment. The four found so far were fixed (docs/properties.md, "Findings"); their
/// scenarios are plain regression files now. A rule looks like
/// <c>s.Vms.Any(v =&gt; v.Profile == "linux-modern") &amp;&amp; s.Hosts.Any(h =&gt; !h.HasRdtscp)</c>
/// (the RDTSCP-on-Core-2 bug, while it lasted).
/// </remarks>
public static class KnownModelBugs
{
    /// <summary>Whether <paramref name="s"/> runs into a known, unfixed model bug.</summary>
    public static bool Excluded(GeneratedScenario s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return false; // no known, unfixed model bug
    }
}

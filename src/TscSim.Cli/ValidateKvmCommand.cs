using System.Globalization;
using TscSim.Core.Scenarios;
using TscSim.Kvm;

namespace TscSim.Cli;

/// <summary>
/// <c>tscsim validate-kvm [SCENARIO...]</c>: runs the comparison cases (none given) or the given
/// scenarios' workloads (<see cref="ScenarioCases"/>) against the real KVM of this machine
/// (issue 17) and TscSim's model, prints the table, writes it as CSV. Exit 0 when every row agrees,
/// disagrees in a known, listed way (docs/validation.md), was not measured or cannot run on real
/// KVM (each says why); 1 on a new disagreement or a failed real run; 2 on bad usage or a bad
/// scenario file (file:line:col, as <c>tscsim validate</c>); 0 with one line and no claim of a pass
/// when there is no usable KVM.
/// </summary>
internal static class ValidateKvmCommand
{
    public const string DefaultOut = "results/validate-kvm.csv";

    public static int Run(string? outPath, IReadOnlyList<string> scenarioFiles, TextWriter output, TextWriter error)
    {
        outPath ??= DefaultOut;
        // Every scenario file first: bad input is exit 2 whether or not this machine has KVM.
        var scenarios = new List<Scenario>();
        bool bad = false;
        foreach (string file in scenarioFiles)
        {
            try
            {
                Scenario scenario = ScenarioLoader.Load(file);
                ScenarioCases.CheckWorkloads(scenario);
                scenarios.Add(scenario);
            }
            catch (ScenarioException ex)
            {
                foreach (var d in ex.Diagnostics)
                {
                    error.WriteLine(d.ToString());
                }
                bad = true;
            }
        }
        if (bad)
        {
            return ExitCodes.BadInput;
        }
        if (File.Exists(outPath) && !WrittenByTscSim(outPath))
        {
            error.WriteLine($"{outPath}:1:1: exists and is not a validate-kvm table (its first line is not '{ValidationCsv.Header}'); refusing to overwrite it");
            return ExitCodes.BadInput;
        }
        using KvmSystem? kvm = KvmSystem.TryOpen(out string why);
        if (kvm is null)
        {
            output.WriteLine($"validate-kvm: no usable KVM here ({why}); nothing was validated.");
            return ExitCodes.Success;
        }

        IReadOnlyList<ValidationRow> rows;
        HostFacts host;
        try
        {
            host = ValidationCases.ReadHost(kvm);
            if (scenarios.Count == 0)
            {
                rows = new ValidationCases(kvm, host).RunAll();
            }
            else
            {
                var cases = new ScenarioCases(kvm, host);
                rows = [.. scenarios.SelectMany(cases.Run)];
            }
        }
        catch (Exception ex) when (ex is KvmException or InvalidOperationException or LoweringException)
        {
            error.WriteLine($"validate-kvm: the real-KVM run failed: {ex.Message}");
            return ExitCodes.ExpectationFailed;
        }

        output.WriteLine($"validate-kvm: real KVM on this machine (kernel {host.Kernel}, TSC {host.TscKhz:N0} kHz, " +
            $"TSC scaling {(host.TscScaling ? "yes" : "no")}, {host.Vendor}, backend {host.Backend}) vs TscSim (kvm-modern, {host.ModelCpu.Name} at the same rate)" +
            (scenarios.Count == 0 ? "" : $"; {scenarios.Count} scenario{(scenarios.Count == 1 ? "" : "s")}, workloads run bare (no guest kernel) on both sides"));
        WriteTable(rows, output);

        string csv = ValidationCsv.Write(rows, host.Kernel, DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        string? dir = Path.GetDirectoryName(Path.GetFullPath(outPath));
        if (dir is not null)
        {
            Directory.CreateDirectory(dir);
        }
        string temp = outPath + ".tmp";
        File.WriteAllText(temp, csv);
        File.Move(temp, outPath, overwrite: true);

        int agree = rows.Count(r => r.Verdict == Verdict.Agree), open = rows.Count(r => r.Verdict == Verdict.Open),
            disagree = rows.Count(r => r.Verdict == Verdict.Disagree), skipped = rows.Count(r => r.Verdict == Verdict.NotMeasured),
            notRunnable = rows.Count(r => r.Verdict == Verdict.NotRunnable);
        output.WriteLine($"{agree} agree, {open} open (known, docs/validation.md), {disagree} new disagreements, {skipped} not measured" +
            (notRunnable > 0 ? $", {notRunnable} cannot run on real KVM" : "") + $"; table in {outPath}");
        foreach (var r in rows.Where(r => r.Verdict == Verdict.NotRunnable))
        {
            output.WriteLine($"validate-kvm: {r.Id}: {r.Real}");
        }
        foreach (var r in rows.Where(r => r.Verdict == Verdict.Disagree))
        {
            error.WriteLine($"validate-kvm: {r.Id}: real KVM {r.Real}, TscSim {r.Model}: a disagreement not listed as open");
        }
        foreach (var r in rows.Where(r => r.Verdict == Verdict.Agree && KnownDisagreements.All.ContainsKey(r.Id)))
        {
            output.WriteLine($"validate-kvm: {r.Id} is listed as open but now agrees: remove it from the open list");
        }
        return disagree > 0 ? ExitCodes.ExpectationFailed : ExitCodes.Success;
    }

    private static bool WrittenByTscSim(string path)
    {
        using var reader = new StreamReader(path);
        return reader.ReadLine() == ValidationCsv.Header;
    }

    private static void WriteTable(IReadOnlyList<ValidationRow> rows, TextWriter output)
    {
        int w1 = Math.Min(60, rows.Max(r => r.Fact.Length)), w2 = Math.Min(48, rows.Max(r => r.Real.Length)), w3 = Math.Min(48, rows.Max(r => r.Model.Length));
        static string Cut(string s, int w) => s.Length <= w ? s.PadRight(w) : s[..(w - 1)] + "…";
        output.WriteLine($"{Cut("fact", w1)}  {Cut("real KVM", w2)}  {Cut("TscSim", w3)}  agree?");
        foreach (var r in rows)
        {
            output.WriteLine($"{Cut(r.Fact, w1)}  {Cut(r.Real, w2)}  {Cut(r.Model, w3)}  {r.VerdictText}");
        }
    }
}

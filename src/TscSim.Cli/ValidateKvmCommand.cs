using System.Globalization;
using TscSim.Kvm;

namespace TscSim.Cli;

/// <summary>
/// <c>tscsim validate-kvm</c>: runs the comparison cases against the real KVM of this machine
/// (issue 17) and TscSim's model, prints the table, writes it as CSV. Exit 0 when every row agrees
/// or disagrees in a known, listed way (docs/validation.md), 1 on a new disagreement or a failed
/// real run, 2 on bad usage; 0 with one line and no claim of a pass when there is no usable KVM.
/// </summary>
internal static class ValidateKvmCommand
{
    public const string DefaultOut = "results/validate-kvm.csv";

    public static int Run(string? outPath, TextWriter output, TextWriter error)
    {
        outPath ??= DefaultOut;
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
            rows = new ValidationCases(kvm, host).RunAll();
        }
        catch (Exception ex) when (ex is KvmException or InvalidOperationException or LoweringException)
        {
            error.WriteLine($"validate-kvm: the real-KVM run failed: {ex.Message}");
            return ExitCodes.ExpectationFailed;
        }

        output.WriteLine($"validate-kvm: real KVM on this machine (kernel {host.Kernel}, TSC {host.TscKhz:N0} kHz, " +
            $"TSC scaling {(host.TscScaling ? "yes" : "no")}, {host.Vendor}, backend {host.Backend}) vs TscSim (kvm-modern, {host.ModelCpu.Name} at the same rate)");
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
            bad = rows.Count(r => r.Verdict == Verdict.Disagree), skipped = rows.Count(r => r.Verdict == Verdict.NotMeasured);
        output.WriteLine($"{agree} agree, {open} open (known, docs/validation.md), {bad} new disagreements, {skipped} not measured; table in {outPath}");
        foreach (var r in rows.Where(r => r.Verdict == Verdict.Disagree))
        {
            error.WriteLine($"validate-kvm: {r.Id}: real KVM {r.Real}, TscSim {r.Model}: a disagreement not listed as open");
        }
        foreach (var r in rows.Where(r => r.Verdict == Verdict.Agree && KnownDisagreements.All.ContainsKey(r.Id)))
        {
            output.WriteLine($"validate-kvm: {r.Id} is listed as open but now agrees: remove it from the open list");
        }
        return bad > 0 ? ExitCodes.ExpectationFailed : ExitCodes.Success;
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

using System.Globalization;
using System.Text;

namespace TscSim.Kvm;

/// <summary>How a row came out.</summary>
public enum Verdict
{
    /// <summary>TscSim and real KVM agree.</summary>
    Agree,
    /// <summary>They disagree, and the disagreement is a known, listed one (<see cref="KnownDisagreements"/>).</summary>
    Open,
    /// <summary>They disagree and nobody listed it: a failure.</summary>
    Disagree,
    /// <summary>Not measured on this machine (the reason is in the row); not a pass.</summary>
    NotMeasured,
    /// <summary>A scenario feature real KVM on this machine cannot run (the reason is in the row); not a pass.</summary>
    NotRunnable,
}

/// <summary>One compared fact.</summary>
public sealed record ValidationRow(string Id, string Fact, string Real, string Model, Verdict Verdict, string Comparable)
{
    public string VerdictText => Verdict switch
    {
        Verdict.Agree => "agree",
        Verdict.Open => "open",
        Verdict.Disagree => "DISAGREE",
        Verdict.NotRunnable => "cannot run on real KVM",
        _ => "not measured",
    };
}

/// <summary>
/// Disagreements between the model and real KVM that are known and listed (mirrored in
/// docs/validation.md): each is what the model does and what KVM does. A row that disagrees
/// and is not here fails <c>tscsim validate-kvm</c>. The hypervisor-eras work fixes them.
/// </summary>
public static class KnownDisagreements
{
    public static IReadOnlyDictionary<string, (string Model, string Kvm)> All { get; } = new Dictionary<string, (string, string)>(StringComparer.Ordinal)
    {
        ["set-tsc-khz.slow.get"] = (
            "the model's vmm: direct treats the refused KVM_SET_TSC_KHZ as fatal (no VM, scenario exit 2), so there is no rate to read",
            "KVM_SET_TSC_KHZ fails, yet KVM_GET_TSC_KHZ then reports the requested rate: kvm_set_tsc_khz stores virtual_tsc_khz before set_tsc_khz refuses (6.18 x86.c, source-confirmed); the harness carries on"),
        ["tsc-rate.slow"] = (
            "refuses to create the VM (the model's vmm: direct stops; QEMU never asks, see vmm: qemu)",
            "the harness's VM runs after the refused KVM_SET_TSC_KHZ, its TSC at the host's rate (the multiplier is left at the default)"),
        ["initial-tsc.first-vcpu"] = (
            "every VM starts with guest TSC 0, as mainline x86.c does (6.6.47, 6.18.2, 6.19: the first vCPU's write is unmatched since last_tsc_khz is 0)",
            "this vendor kernel (6.18.44-fc, not mainline) starts the guest TSC at the host's TSC (offset 0: the first vCPU treated as matched)"),
        ["wrmsr-tsc.self"] = (
            "a guest WRMSR IA32_TSC moves the vCPU's offset: the vCPU then reads the written value (6.18 x86.c kvm_set_msr_common MSR_IA32_TSC: adjust_tsc_offset_guest; VMX and SVM agree)",
            "on this machine's kvm_pvm backend the vCPU keeps reading the old timeline (so does KVM_GET_MSRS IA32_TSC), though IA32_TSC_ADJUST takes the write's delta"),
        ["tsc-adjust.self"] = (
            "a guest WRMSR IA32_TSC_ADJUST moves the vCPU's TSC by the change (6.18 x86.c MSR_IA32_TSC_ADJUST: adjust_tsc_offset_guest + KVM_REQ_CLOCK_UPDATE)",
            "on this machine's kvm_pvm backend the TSC does not move"),
    };
}

/// <summary>Writes the table as CSV (invariant culture, RFC 4180 quoting, LF line ends).</summary>
public static class ValidationCsv
{
    public const string Header = "id,fact,real_kvm,tscsim,verdict,comparable_because,kernel,measured_on";

    public static string Write(IEnumerable<ValidationRow> rows, string kernel, string measuredOn)
    {
        var sb = new StringBuilder();
        sb.Append(Header).Append('\n');
        foreach (var r in rows)
        {
            sb.Append(string.Join(',', new[] { r.Id, r.Fact, r.Real, r.Model, r.VerdictText, r.Comparable, kernel, measuredOn }.Select(Quote))).Append('\n');
        }
        return sb.ToString();
    }

    public static string Quote(string field) =>
        field.AsSpan().IndexOfAny(",\"\n\r") >= 0 ? "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : field;

    internal static string Num(long v) => v.ToString("N0", CultureInfo.InvariantCulture);

    internal static string Num(double v, int decimals) => v.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
}

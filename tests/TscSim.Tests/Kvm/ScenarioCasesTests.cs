using TscSim.Core.Scenarios;
using TscSim.Kvm;
using TscSim.Tests.Cli;

namespace TscSim.Tests.Kvm;

/// <summary>What <c>validate-kvm SCENARIO...</c> decides before touching /dev/kvm: which scenarios real KVM can run, and bad files.</summary>
public class ScenarioCasesTests() : CliTestBase("validate-kvm-scenarios")
{
    private static string Scenario(string hypervisor, string vm, string extra = "") => $"""
        name: t
        duration: 1s
        hosts:
          - id: h
            cpu: intel-skylake
            frequency: 2GHz
        hypervisor:
        {hypervisor}
        vms:
          - id: vm0
            host: h
            vcpus: 1
            guest: linux-modern
            workload: |
        {vm}
        {extra}
        """;

    private const string Bare = "      rdtsc\n      hlt";

    [Fact]
    public void Today_s_kvm_without_a_timeline_is_runnable()
    {
        var s = ScenarioLoader.LoadText(Scenario("  policy: kvm-modern", Bare), "t.yaml");
        Assert.Null(ScenarioCases.WhyNotRunnable(s));
    }

    [Theory]
    [InlineData("  policy: kvm-2011", "", "hypervisor policy 'kvm-2011' at t.yaml:8:3", "Linux 2.6.37/38's KVM")]
    [InlineData("  policy: xen-default", "", "hypervisor policy 'xen-default'", "not Xen")]
    [InlineData("  policy: kvm-modern\n  trapping: on", "", "sets trapping", "no control for")]
    [InlineData("  policy: kvm-modern", "events:\n  - at: 500ms\n    cpufreq: { host: h, cores: all, frequency: 1GHz }", "the first 'Cpufreq' at 500ms (t.yaml:18:5)", "no migration, frequency change")]
    public void What_real_kvm_cannot_run_is_named_with_its_place(string hypervisor, string extra, string where, string why)
    {
        var s = ScenarioLoader.LoadText(Scenario(hypervisor, Bare, extra), "t.yaml");
        string? reason = ScenarioCases.WhyNotRunnable(s);
        Assert.NotNull(reason);
        Assert.Contains(where, reason);
        Assert.Contains(why, reason);
    }

    [Fact]
    public void A_bad_scenario_file_is_exit_2_at_its_line_and_column_with_or_without_kvm()
    {
        string bad = Write("bad.yaml", Scenario("  policy: kvm-modern", Bare).Replace("vcpus: 1", "vcpus: many", StringComparison.Ordinal));
        var (code, _, err) = Run("validate-kvm", bad, "--out", Path.Combine(Dir, "out.csv"));
        Assert.Equal(TscSim.Cli.ExitCodes.BadInput, code);
        Assert.Contains($"{bad}:12:", err);
        Assert.False(File.Exists(Path.Combine(Dir, "out.csv")));
    }

    [Fact]
    public void A_workload_that_does_not_assemble_is_exit_2_at_its_place_in_the_scenario_file()
    {
        string bad = Write("asm.yaml", Scenario("  policy: kvm-modern", "      rdtsc\n      frobnicate rax\n      hlt"));
        var (code, _, err) = Run("validate-kvm", bad, "--out", Path.Combine(Dir, "out.csv"));
        Assert.Equal(TscSim.Cli.ExitCodes.BadInput, code);
        Assert.Contains($"{bad}:16:7: workload of vm 'vm0': unknown mnemonic 'frobnicate'", err);
    }

    [Fact]
    public void A_missing_scenario_file_is_exit_2()
    {
        var (code, _, err) = Run("validate-kvm", Path.Combine(Dir, "nope.yaml"), "--out", Path.Combine(Dir, "out.csv"));
        Assert.Equal(TscSim.Cli.ExitCodes.BadInput, code);
        Assert.Contains("nope.yaml", err);
    }

    [Theory]
    [InlineData(1_000UL, 1_000UL, 2_000UL, true)]               // the whole TSC, at the span's start
    [InlineData(2_001UL, 1_000UL, 2_000UL, false)]              // after the run
    [InlineData(0x1_0000_0010UL, 0x1_0000_0000UL, 0x1_0000_0100UL, true)]
    [InlineData(0x10UL, 0x1_0000_0000UL, 0x1_0000_0100UL, true)] // its low half (RDTSC's eax)
    [InlineData(0x200UL, 0x1_0000_0000UL, 0x1_0000_0100UL, false)]
    [InlineData(0x5UL, 0x1_FFFF_FFF0UL, 0x2_0000_0010UL, true)]   // a low half that wrapped during the run
    [InlineData(0x1234_5678UL, 0UL, 0x2_0000_0000UL, true)]      // a span of 2^32 or more holds every low half
    public void A_tsc_reading_is_recognised_whole_or_by_its_low_half(ulong value, ulong low, ulong high, bool inSpan) =>
        Assert.Equal(inSpan, ScenarioCases.InSpan(value, low, high));
}

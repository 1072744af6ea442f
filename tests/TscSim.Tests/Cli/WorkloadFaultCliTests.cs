using System.Text.Json.Nodes;
using TscSim.Cli;

namespace TscSim.Tests.Cli;

/// <summary>
/// Workloads as a user writes them: the kernel's own instructions are refused at load, and a
/// guest fault (a division by zero, running past the end) shows in the table, on stderr with
/// its scenario line and in <c>summary.json</c>, and fails the run unless it is expected.
/// </summary>
public sealed class WorkloadFaultCliTests() : CliTestBase("faults")
{
    /// <summary>A scenario whose workload is <paramref name="workload"/> (lines indented by the caller's block), plus expectations.</summary>
    private static string Scenario(string workload, params string[] expect) =>
        """
        name: faulty
        duration: 50ms
        hosts:
          - id: h
            cpu: intel-nehalem
            frequency: 2GHz
        vms:
          - id: vm0
            host: h
            vcpus: 1
            guest: linux-modern
            workload: |

        """ + string.Concat(workload.Split('\n').Select(l => "      " + l + "\n"))
        + (expect.Length == 0 ? "" : "expect:\n" + string.Concat(expect.Select(e => $"  - {e}\n")));

    /// <summary>The 1-based line of <paramref name="text"/> that contains <paramref name="fragment"/>.</summary>
    private static int LineOf(string text, string fragment) =>
        text.Split('\n').ToList().FindIndex(l => l.Contains(fragment, StringComparison.Ordinal)) + 1;

    private const string DivideByZero = "call clock_gettime\nxor rcx, rcx\nmov rax, 1\ndiv rcx\nhlt";

    [Theory]
    [InlineData("validate")]
    [InlineData("run")]
    public void Kcall_in_a_workload_is_refused_at_load_with_its_scenario_position(string verb)
    {
        string text = Scenario("loop: kcall 9\njmp loop");
        string file = Write("kcall.yaml", text);
        string outDir = Path.Combine(Dir, "out");
        var (code, _, err) = verb == "run" ? Run("run", file, "--out", outDir) : Run("validate", file);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains($"kcall.yaml:{LineOf(text, "kcall 9")}:13: workload of vm 'vm0': 'kcall' belongs to the guest kernel's own code", err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void A_bare_work_count_is_refused_with_the_unit_to_write()
    {
        string text = Scenario("loop: work 1000\njmp loop");
        var (code, _, err) = Run("validate", Write("bare.yaml", text));
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains($"bare.yaml:{LineOf(text, "work 1000")}:18: workload of vm 'vm0': '1000' has no unit; expected a cycle count with its unit: write 1000cycles",
            err, StringComparison.Ordinal);
    }

    [Fact]
    public void A_guest_fault_fails_the_run_and_is_reported_with_its_scenario_line()
    {
        string text = Scenario(DivideByZero, "vm0.vcpu0.reads >= 1");
        string file = Write("div.yaml", text);
        string outDir = Path.Combine(Dir, "out");
        var (code, stdout, err) = Run("run", file, "--out", outDir);

        Assert.Equal(ExitCodes.ExpectationFailed, code);
        int line = LineOf(text, "div rcx");
        Assert.Contains($"div.yaml:{line}:7: vm0.vcpu0 stopped by a guest fault (divide_error) at ", err, StringComparison.Ordinal);
        Assert.Contains("PASS  vm0.vcpu0.reads >= 1", stdout, StringComparison.Ordinal);
        Assert.Contains("FAIL  no guest faults", stdout, StringComparison.Ordinal);
        Assert.Contains("vm0.vcpu0.faults == 1", stdout, StringComparison.Ordinal);
        Assert.Matches(@"faults\s", stdout);            // the table's column
        Assert.Contains("1 (divide_error)", stdout, StringComparison.Ordinal);

        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!;
        Assert.Equal(1, (int)summary["faults"]!);
        var vm = summary["vms"]![0]!;
        Assert.Equal(1, (int)vm["faults"]!);
        var cpu = vm["vcpus"]![0]!;
        Assert.Equal(1, (int)cpu["faults"]!);
        var fault = cpu["fault"]!;
        Assert.Equal("divide_error", (string)fault["kind"]!);
        Assert.Equal(line, (int)fault["line"]!);
        Assert.Equal(file, (string)fault["file"]!);
        Assert.InRange((long)fault["true_ns"]!, 1, 50_000_000);
        Assert.False(string.IsNullOrEmpty((string)fault["message"]!));
    }

    [Fact]
    public void Even_quiet_runs_print_faults_on_stderr()
    {
        var (code, stdout, err) = Run("run", Write("div.yaml", Scenario(DivideByZero)), "--out", Path.Combine(Dir, "out"), "--quiet");
        Assert.Equal(ExitCodes.ExpectationFailed, code);
        Assert.Equal("", stdout);
        Assert.Contains("divide_error", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("vm0.vcpu0.faults == 1")]
    [InlineData("faults == 1")]
    [InlineData("vm0.vcpu0.fault.kind == divide_error")]
    public void An_expected_fault_passes(string expectation)
    {
        var (code, stdout, err) = Run("run", Write("div.yaml", Scenario(DivideByZero, expectation)), "--out", Path.Combine(Dir, "out"));
        Assert.True(code == ExitCodes.Success, stdout + err);
        Assert.Contains($"PASS  {expectation}", stdout, StringComparison.Ordinal);
        Assert.Contains("divide_error", err, StringComparison.Ordinal); // still reported
    }

    [Fact]
    public void A_run_without_faults_reports_zero()
    {
        string outDir = Path.Combine(Dir, "out");
        var (code, _, err) = Run("run", Write("ok.yaml", Scenario("loop: call clock_gettime\nwork 100000cycles\njmp loop", "vm0.vcpu0.faults == 0")),
            "--out", outDir, "--quiet");
        Assert.True(code == ExitCodes.Success, err);
        Assert.Equal("", err);
        var cpu = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!["vms"]![0]!["vcpus"]![0]!;
        Assert.Equal(0, (int)cpu["faults"]!);
        Assert.Null(cpu["fault"]);
    }

    [Fact]
    public void Running_past_the_end_of_the_workload_is_a_fault_at_its_last_line()
    {
        string text = Scenario("nop\nnop");
        string outDir = Path.Combine(Dir, "out");
        var (code, _, err) = Run("run", Write("off.yaml", text), "--out", outDir, "--quiet");
        Assert.Equal(ExitCodes.ExpectationFailed, code);
        int last = LineOf(text, "nop") + 1;
        Assert.Contains($"off.yaml:{last}:7: vm0.vcpu0 stopped by a guest fault (ran_past_end)", err, StringComparison.Ordinal);
        var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!;
        var vm = summary["vms"]![0]!;
        Assert.Equal("ran_past_end", (string)vm["vcpus"]![0]!["fault"]!["kind"]!);
        Assert.Single(vm["clocksource_switches"]!.AsArray()); // booted once, not again and again
        Assert.InRange((long)summary["guest_instructions"]!, 1, 1_000_000);
    }
}

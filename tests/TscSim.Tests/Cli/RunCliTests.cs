using TscSim.Cli;
using TscSim.Tests.Runs;

namespace TscSim.Tests.Cli;

/// <summary><c>tscsim run</c> and <c>validate</c>: exit codes, messages, and no results folder for bad input.</summary>
public sealed class RunCliTests() : CliTestBase("cli")
{
    private const string Good = """
        name: tiny
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
              loop:
                call clock_gettime
                work 100000cycles
                jmp loop
        expect:
          - vm0.vcpu0.reads > 10
        """;

    [Fact]
    public void Run_writes_the_results_folder_and_exits_0_when_expectations_hold()
    {
        string outDir = Path.Combine(Dir, "out");
        var (code, stdout, err) = Run("run", Write("tiny.yaml", Good), "--out", outDir);
        Assert.True(code == ExitCodes.Success, err);
        Assert.Contains("PASS  vm0.vcpu0.reads > 10", stdout, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(outDir, "summary.json")));
        Assert.Contains("\"complete\": true", File.ReadAllText(Path.Combine(outDir, "summary.json")), StringComparison.Ordinal);
    }

    [Fact]
    public void A_failed_expectation_exits_1_and_still_writes_results()
    {
        string outDir = Path.Combine(Dir, "out");
        var (code, stdout, _) = Run("run", Write("tiny.yaml", Good.Replace("reads > 10", "reads > 100000000", StringComparison.Ordinal)), "--out", outDir);
        Assert.Equal(ExitCodes.ExpectationFailed, code);
        Assert.Contains("FAIL  vm0.vcpu0.reads > 100000000", stdout, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(outDir, "summary.json")));
    }

    [Fact]
    public void Seed_and_set_overrides_are_applied()
    {
        string outDir = Path.Combine(Dir, "out");
        var (code, _, err) = Run("run", Write("tiny.yaml", Good), "--out", outDir, "--seed", "9", "--set", "vms[0].vcpus=2", "--quiet");
        Assert.True(code == ExitCodes.Success, err);
        string summary = File.ReadAllText(Path.Combine(outDir, "summary.json"));
        Assert.Contains("\"seed\": 9", summary, StringComparison.Ordinal);
        Assert.Contains("vcpus: 2", File.ReadAllText(Path.Combine(outDir, "scenario.resolved.yaml")), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("duration: 50ms", "duration: 50", "duration")]
    [InlineData("frequency: 2GHz", "frequency: 2.4Gz", "unknown unit 'Gz'")]
    [InlineData("host: h", "host: nowhere", "nowhere")]
    [InlineData("        work 100000cycles", "        wrok 100000cycles", "wrok")]
    [InlineData("vcpus: 1", "vcpus: 1000000000", "vcpus")]
    [InlineData("name: tiny", "name: [tiny", "")]
    public void Bad_input_exits_2_with_a_positioned_message_and_no_results(string from, string to, string mentions)
    {
        string file = Write("bad.yaml", Good.Replace(from, to, StringComparison.Ordinal));
        string outDir = Path.Combine(Dir, "out");
        var (code, _, err) = Run("run", file, "--out", outDir);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Matches(@"bad\.yaml:\d+:\d+: ", err);
        Assert.Contains(mentions, err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal); // no stack trace
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void Workload_errors_point_at_the_scenario_file_line()
    {
        string file = Write("bad.yaml", Good.Replace("        work 100000cycles", "        wrok 100000cycles", StringComparison.Ordinal));
        var (_, _, err) = Run("validate", file);
        int line = Good.Split('\n').ToList().FindIndex(l => l.Contains("work 100000cycles", StringComparison.Ordinal)) + 1;
        Assert.Contains($"bad.yaml:{line}:", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_accepts_every_shipped_scenario()
    {
        var files = Directory.GetFiles(Path.Combine(ShippedScenarioTests.RepoRoot(), "scenarios"), "*.yaml");
        var (code, stdout, err) = Run(["validate", .. files]);
        Assert.True(code == ExitCodes.Success, err);
        Assert.Equal(files.Length, stdout.Split('\n').Count(l => l.Contains(": ok (", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_missing_file_exits_2()
    {
        var (code, _, err) = Run("run", Path.Combine(Dir, "nope.yaml"));
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("nope.yaml", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_checks_expectation_paths_against_the_scenarios_shape()
    {
        string file = Write("paths.yaml", Good.Replace("vm0.vcpu0.reads > 10", "vm0.vcpu7.reads > 10", StringComparison.Ordinal));
        int line = Good.Split('\n').ToList().FindIndex(l => l.Contains("vm0.vcpu0.reads > 10", StringComparison.Ordinal)) + 1;

        var (code, _, err) = Run("validate", file);

        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains($"paths.yaml:{line}:5: vm0.vcpu7.reads > 10: no result is named 'vm0.vcpu7.reads': vm0 has 1 vCPU(s), vcpu0; did you mean 'vm0.vcpu0.reads'",
            err, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_knows_values_that_are_null_before_the_run()
    {
        string file = Write("ok.yaml", Good.Replace("- vm0.vcpu0.reads > 10", "- vm0.vcpu0.reads > 10\n  - vm0.clocksource == tsc\n  - events > 0", StringComparison.Ordinal));

        var (code, _, err) = Run("validate", file);

        Assert.True(code == ExitCodes.Success, err);
    }
}


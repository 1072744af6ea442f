using System.Text.Json.Nodes;
using TscSim.Cli;
using TscSim.Core.Runs;

namespace TscSim.Tests.Cli;

/// <summary>
/// A user's data is never lost: <c>run --out</c> replaces only a folder TscSim wrote as a run's
/// results, checks the destination before simulating, and two writers of one folder never
/// corrupt each other.
/// </summary>
public sealed class OutputSafetyTests() : CliTestBase("out")
{
    internal const string Tiny = """
        name: tiny
        duration: 20ms
        hosts:
          - id: h
            cpu: intel-nehalem
            frequency: 2GHz
        vms:
          - id: vm0
            host: h
            vcpus: 2
            guest: freebsd-8
            workload: |
              loop:
                call clock_gettime
                work 100000cycles
                jmp loop
        expect:
          - vm0.vcpu1.reads > 10
        """;

    [Fact]
    public void A_folder_holding_user_files_is_never_replaced_not_even_with_force()
    {
        string thesis = Path.Combine(Dir, "thesis");
        string scenario = Write("thesis/s.yaml", Tiny);
        Write("thesis/chapter1.tex", "\\chapter{One}");

        var (code, _, err) = Run("run", scenario, "--out", thesis + "/", "--quiet");
        var (forced, _, forcedErr) = Run("run", scenario, "--out", thesis, "--quiet", "--force");

        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("holds files TscSim did not write (chapter1.tex, s.yaml)", err, StringComparison.Ordinal);
        Assert.Contains("--out", err, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.BadInput, forced);
        Assert.Contains("not even with --force", forcedErr, StringComparison.Ordinal);
        Assert.Equal(["chapter1.tex", "s.yaml"], Directory.GetFileSystemEntries(thesis).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(Tiny, File.ReadAllText(scenario));
    }

    [Fact]
    public void A_run_replaces_its_own_results_folder_and_marks_it()
    {
        string scenario = Write("s.yaml", Tiny);
        string outDir = Path.Combine(Dir, "out");

        var first = Run("run", scenario, "--out", outDir, "--quiet");
        var second = Run("run", scenario, "--out", outDir, "--quiet", "--seed", "2");

        Assert.True(first.Code == ExitCodes.Success, first.Err);
        Assert.True(second.Code == ExitCodes.Success, second.Err);
        var marker = ResultMarker.Read(outDir)!;
        Assert.Equal(ResultKind.Run, marker.Kind);
        Assert.Equal(ResultMarker.CurrentBuild, marker.Build);
        Assert.Matches("^[0-9a-f]{16}$", marker.ScenarioDigest);
        Assert.Contains("\"seed\": 2", File.ReadAllText(Path.Combine(outDir, "summary.json")), StringComparison.Ordinal);
    }

    [Fact]
    public void A_run_refuses_a_sweep_folder_unless_forced()
    {
        string scenario = Write("s.yaml", Tiny);
        string sweepDir = Path.Combine(Dir, "sw");
        Directory.CreateDirectory(Path.Combine(sweepDir, "points"));
        File.WriteAllText(Path.Combine(sweepDir, "sweep.csv"), "point\n");
        new ResultMarker(ResultKind.Sweep, ResultMarker.CurrentBuild, null, "0123456789abcdef").WriteTo(sweepDir);

        var (code, _, err) = Run("run", scenario, "--out", sweepDir, "--quiet");

        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("holds a sweep written by TscSim, not a run's results", err, StringComparison.Ordinal);
        Assert.Contains("--force", err, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(sweepDir, "sweep.csv")));

        var forced = Run("run", scenario, "--out", sweepDir, "--quiet", "--force");
        Assert.True(forced.Code == ExitCodes.Success, forced.Err);
        Assert.False(File.Exists(Path.Combine(sweepDir, "sweep.csv")));
        Assert.Equal(ResultKind.Run, ResultMarker.Read(sweepDir)!.Kind);
    }

    [Fact]
    public void A_folder_without_a_marker_is_replaced_only_with_force()
    {
        string scenario = Write("s.yaml", Tiny);
        string old = Path.Combine(Dir, "old");
        Write("old/summary.json", "{}");

        var (code, _, err) = Run("run", scenario, "--out", old, "--quiet");
        var forced = Run("run", scenario, "--out", old, "--quiet", "--force");

        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("has no TscSim marker", err, StringComparison.Ordinal);
        Assert.True(forced.Code == ExitCodes.Success, forced.Err);
    }

    [Fact]
    public void Sweeps_and_runs_have_different_default_folders()
    {
        Assert.Equal(Path.Combine("results", "sweeps", "tiny"), SweepCommand.DefaultFolder("tiny"));
        Assert.NotEqual(Path.Combine("results", "tiny"), SweepCommand.DefaultFolder("tiny"));
    }

    [Fact]
    public void A_rerun_says_that_it_removed_the_old_plots()
    {
        string scenario = Write("s.yaml", Tiny);
        string outDir = Path.Combine(Dir, "out");
        Assert.Equal(ExitCodes.Success, Run("run", scenario, "--out", outDir, "--quiet").Code);
        Write("out/plots/skew.png", "png");

        var (code, _, err) = Run("run", scenario, "--out", outDir, "--quiet");

        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains($"removed {Path.Combine(outDir, "plots")}", err, StringComparison.Ordinal);
        Assert.Contains("tscsim plot", err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(outDir, "plots")));
    }

    [Fact]
    public void The_destination_is_checked_before_simulating()
    {
        // 600 s simulated would take minutes: a quick exit 2 shows nothing was simulated.
        string scenario = Write("s.yaml", Tiny.Replace("duration: 20ms", "duration: 600s", StringComparison.Ordinal));
        string file = Write("taken.txt", "mine");
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var onFile = Run("run", scenario, "--out", file, "--quiet");
        var underFile = Run("run", scenario, "--out", Path.Combine(file, "sub"), "--quiet");

        Assert.Equal(ExitCodes.BadInput, onFile.Code);
        Assert.Contains("is a file", onFile.Err, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.BadInput, underFile.Code);
        Assert.Contains("cannot create the folder", underFile.Err, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"took {clock.Elapsed}");
        Assert.Equal("mine", File.ReadAllText(file));
        Assert.Empty(Directory.GetDirectories(Dir, "*tmp*", SearchOption.AllDirectories));
    }

    [Fact]
    public void A_second_writer_of_a_locked_folder_is_refused_with_the_holders_pid()
    {
        string scenario = Write("s.yaml", Tiny);
        string outDir = Path.Combine(Dir, "out");

        using (OutputLock.Acquire(OutputFolder.Normalize(outDir)))
        {
            var (code, _, err) = Run("run", scenario, "--out", outDir, "--quiet");

            Assert.Equal(ExitCodes.BadInput, code);
            Assert.Contains($"is being written by another tscsim (pid {Environment.ProcessId})", err, StringComparison.Ordinal);
        }
        Assert.Equal(ExitCodes.Success, Run("run", scenario, "--out", outDir, "--quiet").Code);
    }

    [Fact]
    public void Concurrent_writers_of_one_folder_never_crash_and_leave_a_whole_folder()
    {
        string scenario = Write("s.yaml", Tiny);
        string outDir = Path.Combine(Dir, "out");
        var codes = new int[8];
        var errors = new string[8];

        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var (code, _, err) = Run("run", scenario, "--out", outDir, "--quiet", "--seed", $"{i + 1}");
            codes[i] = code;
            errors[i] = err;
        });

        Assert.All(Enumerable.Range(0, 8), i => Assert.True(codes[i] is ExitCodes.Success or ExitCodes.BadInput, errors[i]));
        Assert.All(Enumerable.Range(0, 8).Where(i => codes[i] == ExitCodes.BadInput),
            i => Assert.Contains("is being written by another tscsim", errors[i], StringComparison.Ordinal));
        Assert.Contains(ExitCodes.Success, codes);
        Assert.DoesNotContain(errors, e => e.Contains("Exception", StringComparison.Ordinal));
        Assert.True(SweepRunner.IsComplete(outDir));
        Assert.Empty(Directory.GetDirectories(Dir, ".out.*"));
    }

    [Fact]
    public void Leftover_temporary_folders_are_removed_only_under_the_lock()
    {
        string scenario = Write("s.yaml", Tiny);
        string outDir = Path.Combine(Dir, "out");
        string leftover = Path.Combine(Dir, ".out.tmp-999999-1");
        Directory.CreateDirectory(leftover);

        using (OutputLock.Acquire(OutputFolder.Normalize(outDir)))
        {
            Assert.Equal(ExitCodes.BadInput, Run("run", scenario, "--out", outDir, "--quiet").Code);
            Assert.True(Directory.Exists(leftover)); // its writer may be alive: it holds the lock
        }
        Assert.Equal(ExitCodes.Success, Run("run", scenario, "--out", outDir, "--quiet").Code);
        Assert.False(Directory.Exists(leftover)); // no one holds the lock: a dead writer's leftover
    }

    [Fact]
    public void Progress_goes_to_stderr_and_hex_seeds_are_accepted()
    {
        string scenario = Write("s.yaml", Tiny);
        string outDir = Path.Combine(Dir, "out");

        var (code, stdout, err) = Run("run", scenario, "--out", outDir, "--seed", "0x10");

        Assert.True(code == ExitCodes.Success, err);
        Assert.Contains("tiny: 100% of 20ms simulated", err, StringComparison.Ordinal);
        Assert.DoesNotContain("% of", stdout, StringComparison.Ordinal);
        Assert.Equal(16UL, (ulong)JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!["seed"]!);
    }

    [Theory]
    [InlineData("run", "s.yaml", "--seed", "abc", "--seed 'abc'")]
    [InlineData("run", "s.yaml", "--seed", "-1", "--seed '-1'")]
    [InlineData("sweep", "s.yaml", "--jobs", "many", "--jobs 'many'")]
    [InlineData("bench", "--events", "lots", "", "--events 'lots'")]
    [InlineData("bench", "--rounds", "1.5", "", "--rounds '1.5'")]
    public void Option_errors_name_no_dotnet_types(string verb, string a, string b, string c, string mentions)
    {
        string[] args = [verb, .. new[] { a, b, c }.Where(x => x.Length > 0)];

        var (code, _, err) = Run(args);

        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains(mentions, err, StringComparison.Ordinal);
        Assert.DoesNotContain("System.", err, StringComparison.Ordinal);
        Assert.DoesNotContain("`1", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("validate", "")]
    [InlineData("merge", "")]
    [InlineData("run", "")]
    [InlineData("sweep", "")]
    [InlineData("plot", "")]
    public void Empty_paths_exit_2_with_a_message(string verb, string path)
    {
        var (code, _, err) = Run(verb, path);

        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("an empty path was given", err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
    }

    private sealed class BrokenWriter : StringWriter
    {
        public override void Write(char value) => throw new InvalidOperationException("the writer broke");

        public override void Write(string? value) => throw new InvalidOperationException("the writer broke");

        public override void WriteLine(string? value) => throw new InvalidOperationException("the writer broke");
    }

    [Fact]
    public void An_unexpected_exception_exits_70_with_one_line_and_a_crash_file()
    {
        var error = new StringWriter();

        int code = TscSimCli.Run(["presets"], new BrokenWriter(), error);

        Assert.Equal(ExitCodes.InternalError, code);
        Assert.Equal(70, code);
        string line = Assert.Single(error.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("this is a bug in TscSim", line, StringComparison.Ordinal);
        var path = System.Text.RegularExpressions.Regex.Match(line, @"details are in (\S+tscsim-crash-\d+-\d+\.txt)").Groups[1].Value;
        Assert.True(File.Exists(path), line);
        try
        {
            string details = File.ReadAllText(path);
            Assert.Contains("arguments: presets", details, StringComparison.Ordinal);
            Assert.Contains("System.InvalidOperationException: the writer broke", details, StringComparison.Ordinal);
            Assert.Contains("   at ", details, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}

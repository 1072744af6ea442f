using TscSim.Cli;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;

namespace TscSim.Tests.Runs;

public sealed class SweepTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"tscsim-sweep-{Environment.ProcessId}-{Guid.NewGuid():N}");

    public SweepTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Shipped(string name) => Path.Combine(ShippedScenarioTests.RepoRoot(), "scenarios", "sweeps", name);

    /// <summary>A small sweep: 2 × 2 points, 2 repeats, 60 ms each.</summary>
    private string SmallSweep()
    {
        File.WriteAllText(Path.Combine(_dir, "base.yaml"), File.ReadAllText(Shipped("trap-overhead.base.yaml")).Replace("duration: 200ms", "duration: 60ms", StringComparison.Ordinal));
        string path = Path.Combine(_dir, "small.yaml");
        File.WriteAllText(path, """
            name: small
            base: base.yaml
            vary:
              - { name: work, values: [200000cycles, 20000cycles] }
              - { name: cpu, path: "hosts[0].cpu", values: [intel-nehalem, amd-zen2] }
            repeat: 2
            """);
        return path;
    }

    [Fact]
    public void The_grid_is_the_product_with_the_first_parameter_slowest_and_repeats_fastest()
    {
        var spec = SweepSpec.Load(SmallSweep());
        var points = spec.Points();
        Assert.Equal(8, points.Count);
        Assert.Equal(["200000cycles", "intel-nehalem"], points[0].Values);
        Assert.Equal(["200000cycles", "amd-zen2"], points[2].Values);
        Assert.Equal(["20000cycles", "intel-nehalem"], points[4].Values);
        Assert.Equal([1UL, 2UL], points.Take(2).Select(p => p.Seed));
        Assert.Equal("p0003-r01", points[7].Folder);
        var scenario = spec.LoadPoint(points[7]);
        Assert.Equal("amd-zen2", scenario.Hosts[0].Cpu);
        Assert.Contains("work 20000cycles", scenario.Vms[0].Workload, StringComparison.Ordinal);
        Assert.Equal(2UL, scenario.Seed);
    }

    [Fact]
    public void One_job_and_two_jobs_give_the_same_sweep_csv()
    {
        string spec = SmallSweep();
        SweepRunner.Run(SweepSpec.Load(spec), Path.Combine(_dir, "j1"), jobs: 1, 0, 1);
        SweepRunner.Run(SweepSpec.Load(spec), Path.Combine(_dir, "j2"), jobs: 2, 0, 1);
        string a = File.ReadAllText(Path.Combine(_dir, "j1", "sweep.csv"));
        Assert.Equal(a, File.ReadAllText(Path.Combine(_dir, "j2", "sweep.csv")));
        Assert.Equal(9, a.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length); // header + 8 points × 1 vCPU
        Assert.StartsWith(SweepRunner.LeadColumns + ",work,cpu," + SweepRunner.TailColumns, a, StringComparison.Ordinal);
    }

    [Fact]
    public void Shards_merged_equal_the_unsharded_run()
    {
        string spec = SmallSweep();
        SweepRunner.Run(SweepSpec.Load(spec), Path.Combine(_dir, "all"), jobs: 2, 0, 1);
        for (int i = 0; i < 3; i++)
        {
            var (ran, _, _) = SweepRunner.Run(SweepSpec.Load(spec), Path.Combine(_dir, $"s{i}"), jobs: 1, i, 3);
            Assert.Equal(i == 2 ? 2 : 3, ran); // points 0..7 by index mod 3
        }
        var o = new StringWriter();
        var e = new StringWriter();
        int code = TscSimCli.Run(["merge", Path.Combine(_dir, "s0"), Path.Combine(_dir, "s1"), Path.Combine(_dir, "s2"), "--out", Path.Combine(_dir, "merged.csv")], o, e);
        Assert.True(code == ExitCodes.Success, e.ToString());
        Assert.Equal(File.ReadAllText(Path.Combine(_dir, "all", "sweep.csv")), File.ReadAllText(Path.Combine(_dir, "merged.csv")));
    }

    [Fact]
    public void An_interrupted_sweep_rerun_completes_with_nothing_lost_or_duplicated()
    {
        string spec = SmallSweep();
        string out1 = Path.Combine(_dir, "resumed");
        using (var cts = new CancellationTokenSource())
        {
            int seen = 0;
            var (ran, _, undone) = SweepRunner.Run(SweepSpec.Load(spec), out1, jobs: 1, 0, 1, (_, _) =>
            {
                if (++seen == 3)
                {
                    cts.Cancel();
                }
            }, cts.Token);
            Assert.Equal(3, ran);
            Assert.Equal(5, undone);
        }
        // A point killed half-way leaves at most a temporary folder: simulate one.
        Directory.CreateDirectory(Path.Combine(out1, "points", ".p0003-r01.tmp-999"));
        var (ran2, skipped, undone2) = SweepRunner.Run(SweepSpec.Load(spec), out1, jobs: 2, 0, 1);
        Assert.Equal((5, 3, 0), (ran2, skipped, undone2));
        SweepRunner.Run(SweepSpec.Load(spec), Path.Combine(_dir, "straight"), jobs: 2, 0, 1);
        Assert.Equal(File.ReadAllText(Path.Combine(_dir, "straight", "sweep.csv")), File.ReadAllText(Path.Combine(out1, "sweep.csv")));
    }

    [Fact]
    public void Merging_two_different_sweeps_is_refused()
    {
        string spec = SmallSweep();
        SweepRunner.Run(SweepSpec.Load(spec), Path.Combine(_dir, "a"), jobs: 1, 0, 4);
        File.WriteAllText(spec, File.ReadAllText(spec).Replace("repeat: 2", "repeat: 1", StringComparison.Ordinal));
        SweepRunner.Run(SweepSpec.Load(spec), Path.Combine(_dir, "b"), jobs: 1, 1, 4);
        var e = new StringWriter();
        int code = TscSimCli.Run(["merge", Path.Combine(_dir, "a"), Path.Combine(_dir, "b")], new StringWriter(), e);
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("holds another sweep", e.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("vary:\n  - { name: cpu, path: \"hosts[0].cpu\", values: [intel-nehalme] }", "intel-nehalme")]
    [InlineData("repeat: 0", "repeat")]
    [InlineData("bogus: 1", "unknown key 'bogus'")]
    public void Bad_sweep_files_are_errors_with_positions(string extra, string mentions)
    {
        File.WriteAllText(Path.Combine(_dir, "base.yaml"), File.ReadAllText(Shipped("trap-overhead.base.yaml")).Replace("${work}", "1000cycles", StringComparison.Ordinal));
        string path = Path.Combine(_dir, "bad.yaml");
        File.WriteAllText(path, "name: bad\nbase: base.yaml\n" + extra + "\n");
        var ex = Assert.Throws<ScenarioException>(() => SweepSpec.Load(path));
        Assert.Contains(ex.Diagnostics, d => d.ToString().Contains(mentions, StringComparison.Ordinal));
        var e = new StringWriter();
        Assert.Equal(ExitCodes.BadInput, TscSimCli.Run(["sweep", path, "--out", Path.Combine(_dir, "o")], new StringWriter(), e));
        Assert.False(Directory.Exists(Path.Combine(_dir, "o")));
    }

    /// <summary>The diagnostics of a sweep file with <paramref name="body"/> over a valid base, one per line.</summary>
    private string SweepErrors(string body)
    {
        File.WriteAllText(Path.Combine(_dir, "base.yaml"), File.ReadAllText(Shipped("trap-overhead.base.yaml")).Replace("${work}", "1000", StringComparison.Ordinal));
        string path = Path.Combine(_dir, "bad.yaml");
        File.WriteAllText(path, body);
        var ex = Assert.Throws<ScenarioException>(() => SweepSpec.Load(path));
        return string.Join("\n", ex.Diagnostics.Select(d => d.ToString().Replace(path, "bad.yaml", StringComparison.Ordinal)));
    }

    [Fact]
    public void A_misspelt_sweep_key_is_an_error_at_its_position_with_a_hint()
    {
        Assert.Equal("bad.yaml:3:1: unknown key 'vray' at the top level; did you mean 'vary'? expected one of: name, base, vary, repeat",
            SweepErrors("name: bad\nbase: base.yaml\nvray:\n  - { name: work, values: [1] }\n"));
    }

    [Fact]
    public void A_misspelt_parameter_key_is_an_error_at_its_position_with_a_hint()
    {
        Assert.Equal("bad.yaml:4:19: unknown key 'value' in vary[0]; did you mean 'values'? expected one of: name, path, values\n" +
            "bad.yaml:4:5: vary[0]: missing required key 'values'; expected a non-empty list of values, e.g. values: [1GHz, 2GHz]",
            SweepErrors("name: bad\nbase: base.yaml\nvary:\n  - { name: seed, value: [1], path: seed }\n"));
    }

    [Theory]
    [InlineData("repeat: lots", "bad.yaml:3:9: repeat: expected a whole number of runs per point from 1 to 10000, got 'lots'")]
    [InlineData("repeat: 20000", "bad.yaml:3:9: repeat: 20000 is out of range; expected a whole number of runs per point from 1 to 10000")]
    [InlineData("vary:\n  - { name: seed, path: seed, values: [1, [2]] }",
        "bad.yaml:4:43: vary[0].values[1]: expected a single value, got a list")]
    [InlineData("vary:\n  - { name: a b, path: seed, values: [1] }",
        "bad.yaml:4:13: vary[0].name: 'a b' is not a valid parameter name; expected letters, digits, '_', '-', '.', '[' and ']' (it heads a column of sweep.csv)")]
    public void A_bad_sweep_value_is_reported_at_the_value(string extra, string expected) =>
        Assert.Equal(expected, SweepErrors("name: bad\nbase: base.yaml\n" + extra + "\n"));

    [Fact]
    public void A_sweep_name_follows_the_scenario_name_rule()
    {
        Assert.Equal("bad.yaml:1:7: name: 'Skew' is not a valid sweep name; expected lowercase letters, digits, '.', '_' and '-' " +
            "(at most 100, not only dots: it names the results folder)",
            SweepErrors("name: Skew\nbase: base.yaml\n"));
    }

    [Fact]
    public void An_empty_sweep_file_says_what_a_sweep_holds() =>
        Assert.Equal("bad.yaml:1:1: the file holds no YAML document; expected a mapping with name, base, vary and repeat", SweepErrors("# nothing\n"));

    [Fact]
    public void Shipped_sweeps_load()
    {
        foreach (var f in new[] { "trap-overhead-vs-rdtsc-rate.yaml", "skew-vs-frequency-ratio.yaml" })
        {
            Assert.NotEmpty(SweepSpec.Load(Shipped(f)).Points());
        }
    }

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = TscSimCli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void A_placeholder_without_a_vary_entry_is_refused_before_anything_is_written()
    {
        string spec = SmallSweep();
        File.AppendAllText(Path.Combine(_dir, "base.yaml"), "# ${typo}\n");
        string outDir = Path.Combine(_dir, "o");

        var (code, _, err) = Cli("sweep", spec, "--out", outDir);

        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Matches(@"base\.yaml:\d+:3: placeholder '\$\{typo\}' has no 'vary' entry", err);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void A_huge_grid_is_refused_with_its_size_before_anything_is_written()
    {
        File.WriteAllText(Path.Combine(_dir, "base.yaml"), File.ReadAllText(Shipped("trap-overhead.base.yaml")));
        string values = "[" + string.Join(", ", Enumerable.Range(1, 100)) + "]";
        string path = Path.Combine(_dir, "huge.yaml");
        File.WriteAllText(path, "name: huge\nbase: base.yaml\nvary:\n  - { name: work, values: " + values + " }\n" +
            string.Concat(Enumerable.Range(0, 4).Select(i => $"  - {{ name: p{i}, path: seed, values: {values} }}\n")));
        string outDir = Path.Combine(_dir, "o");

        var (code, _, err) = Cli("sweep", path, "--out", outDir);

        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("huge.yaml:4:3: vary: the grid has 100 × 100 × 100 × 100 × 100 points × 1 repeat(s), more than 1,000,000 runs", err, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void A_sweep_folder_is_marked_and_a_run_folder_is_not_swept_into()
    {
        string spec = SmallSweep();
        string runDir = Path.Combine(_dir, "run");
        Directory.CreateDirectory(runDir);
        File.WriteAllText(Path.Combine(runDir, "summary.json"), "{}");
        new ResultMarker(ResultKind.Run, ResultMarker.CurrentBuild, "0123456789abcdef", null).WriteTo(runDir);

        var (code, _, err) = Cli("sweep", spec, "--out", runDir, "--quiet");

        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("holds a run's results written by TscSim, not a sweep", err, StringComparison.Ordinal);
        Assert.Contains("--force", err, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(runDir, "summary.json")));
    }

    [Fact]
    public void A_point_written_by_another_build_or_scenario_is_run_again()
    {
        string spec = SmallSweep();
        string outDir = Path.Combine(_dir, "o");
        SweepRunner.Run(SweepSpec.Load(spec), outDir, jobs: 2, 0, 1);
        string p1 = Path.Combine(outDir, "points", "p0001-r00"), p2 = Path.Combine(outDir, "points", "p0002-r00");
        var m1 = ResultMarker.Read(p1)!;
        (m1 with { Build = "0.0.1 (old)" }).WriteTo(p1);
        var m2 = ResultMarker.Read(p2)!;
        (m2 with { ScenarioDigest = "ffffffffffffffff" }).WriteTo(p2);
        var notes = new List<string>();

        var (ran, skipped, _) = SweepRunner.Run(SweepSpec.Load(spec), outDir, jobs: 2, 0, 1, note: notes.Add);

        Assert.Equal((2, 6), (ran, skipped));
        Assert.Contains(notes, n => n.Contains("p0001-r00: was written by another build of TscSim (0.0.1 (old)", StringComparison.Ordinal));
        Assert.Contains(notes, n => n.Contains("p0002-r00: was written from a different scenario", StringComparison.Ordinal));
        Assert.Equal(ResultMarker.CurrentBuild, ResultMarker.Read(p1)!.Build);
        Assert.Equal(m2.ScenarioDigest, ResultMarker.Read(p2)!.ScenarioDigest);
    }

    [Fact]
    public void Merge_refuses_a_missing_shard_unless_allowed_and_never_writes_into_a_shard()
    {
        string spec = SmallSweep();
        for (int i = 0; i < 2; i++)
        {
            SweepRunner.Run(SweepSpec.Load(spec), Path.Combine(_dir, $"s{i}"), jobs: 1, i, 3);
        }
        string shardCsv = File.ReadAllText(Path.Combine(_dir, "s0", "sweep.csv"));

        var missing = Cli("merge", Path.Combine(_dir, "s0"), Path.Combine(_dir, "s1"));
        var intoShard = Cli("merge", Path.Combine(_dir, "s0"), Path.Combine(_dir, "s1"), "--allow-missing", "--out", Path.Combine(_dir, "s0", "sweep.csv"));
        File.WriteAllText(Path.Combine(_dir, "notes.csv"), "my,own,data\n");
        var overUserFile = Cli("merge", Path.Combine(_dir, "s0"), Path.Combine(_dir, "s1"), "--allow-missing", "--out", Path.Combine(_dir, "notes.csv"));
        var allowed = Cli("merge", Path.Combine(_dir, "s0"), Path.Combine(_dir, "s1"), "--allow-missing");

        Assert.Equal(ExitCodes.BadInput, missing.Code);
        Assert.Contains("2 of 8 point(s) are in none of the folders: p0001-r00, p0002-r01", missing.Err, StringComparison.Ordinal);
        Assert.Contains("--allow-missing", missing.Err, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.BadInput, intoShard.Code);
        Assert.Contains("merge never writes into a shard", intoShard.Err, StringComparison.Ordinal);
        Assert.Equal(ExitCodes.BadInput, overUserFile.Code);
        Assert.Equal("my,own,data\n", File.ReadAllText(Path.Combine(_dir, "notes.csv")));
        Assert.True(allowed.Code == ExitCodes.Success, allowed.Err);
        Assert.Contains("2 point(s) missing", allowed.Out, StringComparison.Ordinal);
        Assert.Equal(7, File.ReadAllLines(Path.Combine(_dir, "small.merged.csv")).Length); // header + 6 points
        Assert.Equal(shardCsv, File.ReadAllText(Path.Combine(_dir, "s0", "sweep.csv")));
    }

    [Fact]
    public void Validate_accepts_the_shipped_sweeps_and_checks_each_point()
    {
        var files = Directory.GetFiles(Path.Combine(ShippedScenarioTests.RepoRoot(), "scenarios", "sweeps"), "*.yaml")
            .Where(f => !f.EndsWith(".base.yaml", StringComparison.Ordinal)).ToArray();
        string bad = SmallSweep();
        File.WriteAllText(Path.Combine(_dir, "base.yaml"), File.ReadAllText(Path.Combine(_dir, "base.yaml")) + "expect:\n  - vm0.vcpu3.reads > 0\n");

        var (code, stdout, err) = Cli(["validate", .. files]);
        var (badCode, _, badErr) = Cli("validate", bad);

        Assert.True(code == ExitCodes.Success, err);
        Assert.Equal(files.Length, stdout.Split('\n').Count(l => l.Contains(": ok (sweep ", StringComparison.Ordinal)));
        Assert.Equal(ExitCodes.BadInput, badCode);
        Assert.Matches(@"base\.yaml:\d+:5: point 0 \(work=200000(cycles)?, cpu=intel-nehalem\): vm0\.vcpu3\.reads > 0: no result is named 'vm0\.vcpu3\.reads': vm0 has 1 vCPU\(s\), vcpu0", badErr);
    }
}


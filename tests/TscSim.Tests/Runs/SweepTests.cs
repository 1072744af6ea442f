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

    [Fact]
    public void Shipped_sweeps_load()
    {
        foreach (var f in new[] { "trap-overhead-vs-rdtsc-rate.yaml", "skew-vs-frequency-ratio.yaml" })
        {
            Assert.NotEmpty(SweepSpec.Load(Shipped(f)).Points());
        }
    }
}

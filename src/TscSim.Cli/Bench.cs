using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;
using TscSim.Core.Time;

namespace TscSim.Cli;

/// <summary>
/// <c>tscsim bench</c>: quick built-in performance figures on the real engine and interpreter. Wall-clock
/// timing lives here, at the edge, never in the model. For rigorous numbers use
/// tests/TscSim.Benchmarks (BenchmarkDotNet).
/// </summary>
internal static class Bench
{
    /// <summary>Queue sizes of the hold model, as in the issue's reference figures.</summary>
    public static readonly int[] HoldSizes = [1_000, 100_000];

    /// <summary>Where the C++ reference is looked for below a repository root (built by its build.sh).</summary>
    public const string CxxReferencePath = "tests/TscSim.Benchmarks/reference/hold";

    /// <summary>The environment variable that names the C++ reference binary explicitly.</summary>
    public const string CxxReferenceVariable = "TSCSIM_CXX_HOLD";

    /// <summary>One hold-model figure: the C# engine's rate and, when the reference ran, the bare C++ loop's.</summary>
    public readonly record struct HoldFigure(double EventsPerSecond, double? CxxEventsPerSecond)
    {
        /// <summary>C# rate / C++ rate, both medians of rounds interleaved in the same run.</summary>
        public double? Ratio => CxxEventsPerSecond is double cxx && cxx > 0 ? EventsPerSecond / cxx : null;
    }

    /// <summary>
    /// The C++ reference binary: <c>$TSCSIM_CXX_HOLD</c> if set, else <see cref="CxxReferencePath"/>
    /// under the current folder or one of its parents, else under the tscsim binary's folder or
    /// one of its parents (a build in the repository's bin/ folder finds the repository's copy).
    /// Null when none exists (run tests/TscSim.Benchmarks/reference/build.sh to build it).
    /// </summary>
    public static string? FindCxxReference() => ReferenceBinary.Find(CxxReferencePath, CxxReferenceVariable);

    /// <summary>
    /// One hold-model measurement: the median of <paramref name="rounds"/> timed rounds of the C#
    /// engine and, when <paramref name="cxx"/> is given, of as many rounds of the C++ reference,
    /// interleaved (C#, C++, C#, C++, …) so both see the same machine load.
    /// </summary>
    public static HoldFigure HoldEventsPerSecond(int pending, long eventsPerRound, int rounds, string? cxx = null)
    {
        var model = new HoldModel(pending, seed: 1);
        model.Run(Math.Max(eventsPerRound / 2, 4L * pending)); // warm-up: JIT tiers, caches, steady-state queue shape
        var rates = new double[rounds];
        var cxxRates = new double[rounds];
        bool cxxOk = cxx is not null;
        for (int r = 0; r < rounds; r++)
        {
            long before = Stopwatch.GetTimestamp();
            model.Run(eventsPerRound);
            double seconds = Stopwatch.GetElapsedTime(before).TotalSeconds;
            rates[r] = eventsPerRound / Math.Max(seconds, 1e-9);
            if (cxxOk)
            {
                double? rate = CxxRound(cxx!, pending, eventsPerRound);
                cxxOk = rate is not null;
                cxxRates[r] = rate ?? 0;
            }
        }
        Array.Sort(rates);
        Array.Sort(cxxRates);
        return new HoldFigure(rates[rounds / 2], cxxOk ? cxxRates[rounds / 2] : null);
    }

    /// <summary>One timed round of the C++ reference (its own warm-up first); null if it failed.</summary>
    private static double? CxxRound(string binary, int pending, long events) =>
        ReferenceBinary.RunForThirdField(binary, pending, events, 1) is double seconds ? events / Math.Max(seconds, 1e-9) : null;

    /// <summary>
    /// Guest instructions (or, with <paramref name="perIteration"/> = 2, RDTSCs of the two-instruction
    /// RDTSC loop) per wall second: the median of <paramref name="rounds"/> rounds of
    /// <paramref name="simulated"/> simulated time each, after a warm-up.
    /// </summary>
    public static double InterpreterPerSecond(string source, Duration simulated, int rounds, int perIteration)
    {
        var bench = new InterpreterBench(source);
        bench.Run(simulated); // warm-up: tiered JIT, first slice
        var rates = new double[rounds];
        for (int r = 0; r < rounds; r++)
        {
            long before = bench.Vcpu.Instructions;
            long start = Stopwatch.GetTimestamp();
            bench.Run(simulated);
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            rates[r] = (bench.Vcpu.Instructions - before) / (double)perIteration / Math.Max(seconds, 1e-9);
        }
        Array.Sort(rates);
        return rates[rounds / 2];
    }

    /// <summary>Builds <paramref name="scenario"/> and runs it in process without writing results; only the run is timed.</summary>
    private static (double WallSeconds, ScenarioModel Model, RunResult Result) TimedRun(Scenario scenario)
    {
        var model = new ScenarioModel(scenario);
        long start = Stopwatch.GetTimestamp();
        RunResult result = ScenarioRun.Execute(model);
        return (Stopwatch.GetElapsedTime(start).TotalSeconds, model, result);
    }

    /// <summary>
    /// Simulated time of the reference scenario by which all 4 vCPUs have booted: the linux-modern
    /// boot brings 3 APs online, each after a warp test of loop_timeout's 2 ms (tsc_sync.c), and
    /// the last vCPU's first clock read comes at about 6.0 ms.
    /// </summary>
    public static readonly Duration ReferenceBoot = Duration.FromMilliseconds(7);

    /// <summary>Wall milliseconds of the reference scenario's boot (<see cref="ReferenceBoot"/>), warm: the median of rounds after one warm-up run.</summary>
    public static double ReferenceBootWallMilliseconds(int rounds)
    {
        string text = ReferenceScenario.Text(ReferenceBoot);
        var walls = new double[rounds];
        for (int r = -1; r < rounds; r++)
        {
            double seconds = TimedRun(ScenarioLoader.LoadText(text, "bench-reference-boot.yaml")).WallSeconds;
            if (r >= 0)
            {
                walls[r] = seconds * 1e3;
            }
        }
        Array.Sort(walls);
        return walls[rounds / 2];
    }

    /// <summary>Simulated seconds per wall second for the reference scenario (median of rounds).</summary>
    public static double SimulatedToWallRatio(Duration simulated, int rounds) => SimulatedToWallAndCpuRatio(simulated, rounds).Wall;

    /// <summary>
    /// Simulated seconds per wall second and per second of the running thread's CPU time
    /// (<see cref="ThreadCpuClock"/>; null where unavailable) for the reference scenario, each the
    /// median of the same rounds. On a machine shared with other work the CPU figure is the stable one.
    /// </summary>
    public static (double Wall, double? Cpu) SimulatedToWallAndCpuRatio(Duration simulated, int rounds)
    {
        string text = ReferenceScenario.Text(simulated);
        var ratios = new double[rounds];
        var cpuRatios = new double[rounds];
        bool cpuOk = true;
        double seconds = simulated.Picoseconds / 1e12;
        for (int r = 0; r < rounds; r++)
        {
            Scenario scenario = ScenarioLoader.LoadText(text, "bench-reference.yaml");
            double? cpuBefore = ThreadCpuClock.Seconds();
            double wall = TimedRun(scenario).WallSeconds;
            double? cpuAfter = ThreadCpuClock.Seconds();
            ratios[r] = seconds / wall;
            cpuOk &= cpuBefore is not null && cpuAfter is not null;
            cpuRatios[r] = cpuOk ? seconds / Math.Max(cpuAfter!.Value - cpuBefore!.Value, 1e-9) : 0;
        }
        Array.Sort(ratios);
        Array.Sort(cpuRatios);
        return (ratios[rounds / 2], cpuOk ? cpuRatios[rounds / 2] : null);
    }

    /// <summary>Where the datacenter scenario is looked for below a repository root.</summary>
    public const string DatacenterPath = "scenarios/datacenter.yaml";

    /// <summary>The datacenter scenario's figures: one run, timed at the edge.</summary>
    public sealed record DatacenterFigure(string File, double WallSeconds, double PeakWorkingSetMb, long Events, double SimulatedSeconds, bool Passed);

    /// <summary>
    /// Runs <paramref name="file"/> (default: <see cref="DatacenterPath"/> under the current
    /// folder or a parent, or under the tscsim binary's folder or a parent) once, in process,
    /// without writing results. Peak memory is the process's peak working set after the run
    /// (the hold and interpreter figures before it use a few MB).
    /// </summary>
    public static DatacenterFigure? RunDatacenter(string? file)
    {
        file ??= ReferenceBinary.FindUp(DatacenterPath);
        if (file is null || !File.Exists(file))
        {
            return null;
        }
        var (wall, model, result) = TimedRun(ScenarioLoader.Load(file));
        using var self = Process.GetCurrentProcess();
        self.Refresh();
        return new DatacenterFigure(Path.GetFullPath(file), wall, self.PeakWorkingSet64 / 1e6, model.Sim.ExecutedEvents,
            model.Sim.Now.Picoseconds / 1e12, result.Passed);
    }

    /// <summary>One point of the scale series: its shape and wall seconds per simulated vCPU-second.</summary>
    public sealed record ScalePoint(int Hosts, int VmsPerHost, double WallSeconds, long Events, double WallPerVcpuSecond);

    /// <summary>
    /// The scale series' scenario: <paramref name="hosts"/> hosts (intel-skylake, 2.0, 2.1, 2.2,
    /// 2.3 GHz in turn, so their timers do not tick in step) with <paramref name="vmsPerHost"/>
    /// VMs each of 2 vCPUs (linux-modern, kvm-clock, a clock read every 10 µs of guest time as in
    /// the reference scenario), one core per vCPU, kvm-modern, <paramref name="simulated"/> long.
    /// </summary>
    public static string ScaleScenario(int hosts, int vmsPerHost, Duration simulated)
    {
        var text = new System.Text.StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"name: scale\nduration: {simulated.Picoseconds}ps\nhosts:\n");
        for (int h = 0; h < hosts; h++)
        {
            text.Append(CultureInfo.InvariantCulture,
                $"  - {{ id: h{h}, cpu: intel-skylake, frequency: {2000 + (100 * (h % 4))}MHz, cores_per_socket: {Math.Max(2, 2 * vmsPerHost)} }}\n");
        }
        text.Append("hypervisor:\n  policy: kvm-modern\nvms:\n");
        for (int h = 0; h < hosts; h++)
        {
            for (int v = 0; v < vmsPerHost; v++)
            {
                text.Append(CultureInfo.InvariantCulture,
                    $"  - {{ id: h{h}v{v}, host: h{h}, vcpus: 2, guest: linux-modern, workload: \"loop:\\n  call clock_gettime\\n  work 20000cycles\\n  jmp loop\\n\" }}\n");
            }
        }
        return text.ToString();
    }

    /// <summary>Wall seconds per simulated vCPU-second of <see cref="ScaleScenario"/> (one run, after a warm-up run of one VM).</summary>
    public static ScalePoint MeasureScale(int hosts, int vmsPerHost, Duration simulated)
    {
        var (wall, model, _) = TimedRun(ScenarioLoader.LoadText(ScaleScenario(hosts, vmsPerHost, simulated), "bench-scale.yaml"));
        double vcpuSeconds = hosts * vmsPerHost * 2 * (simulated.Picoseconds / 1e12);
        return new ScalePoint(hosts, vmsPerHost, wall, model.Sim.ExecutedEvents, wall / vcpuSeconds);
    }

    /// <summary>VMs per host (on one host) and hosts (one VM each) of the scale series.</summary>
    public static readonly int[] ScaleVmsPerHost = [1, 4, 16, 64];

    /// <inheritdoc cref="ScaleVmsPerHost"/>
    public static readonly int[] ScaleHosts = [1, 2, 4, 8, 16];

    /// <summary>The parts <c>--only</c> can select: the hold model, the interpreter loops, the reference scenario (simulated/wall and boot).</summary>
    public static readonly string[] Parts = ["engine", "interpreter", "reference"];

    public static int Run(TextWriter output, bool json, long? eventsOverride, int rounds, bool scale = false, bool datacenter = false, string? datacenterFile = null,
        IReadOnlyCollection<string>? only = null)
    {
        bool Selected(string part) => only is null || only.Count == 0 || only.Contains(part);
        string? cxx = Selected("engine") ? FindCxxReference() : null;
        var hold = new SortedDictionary<string, double>(StringComparer.Ordinal);
        var versus = new SortedDictionary<string, SortedDictionary<string, double>>(StringComparer.Ordinal);
        foreach (int n in Selected("engine") ? HoldSizes : [])
        {
            long events = eventsOverride ?? (n <= 1_000 ? 5_000_000 : 2_000_000);
            HoldFigure figure = HoldEventsPerSecond(n, events, rounds, cxx);
            string key = n.ToString(CultureInfo.InvariantCulture);
            hold[key] = Math.Round(figure.EventsPerSecond);
            if (figure.Ratio is double r)
            {
                versus[key] = new SortedDictionary<string, double>(StringComparer.Ordinal)
                {
                    ["csharp_events_per_s"] = Math.Round(figure.EventsPerSecond),
                    ["cxx_events_per_s"] = Math.Round(figure.CxxEventsPerSecond!.Value),
                    ["ratio"] = Math.Round(r, 3),
                };
            }
        }
        // 2 GHz guest: 100 ms of simulated ALU loop is 200 M instructions; scaled down with --events.
        Duration simulated = eventsOverride is long e
            ? Duration.FromPicoseconds(Math.Max(1, e) * 500)
            : Duration.FromMilliseconds(100);
        bool interpreter = Selected("interpreter"), referenceRun = Selected("reference");
        double instructions = interpreter ? Math.Round(InterpreterPerSecond(InterpreterBench.AluLoop, simulated, rounds, 1)) : 0;
        double rdtsc = interpreter ? Math.Round(InterpreterPerSecond(InterpreterBench.RdtscLoop, simulated, rounds, 2)) : 0;
        double? realRdtsc = interpreter ? RdtscReference.RatePerSecond(rounds, eventsOverride is long e4 ? Math.Max(1_000, e4) : 50_000_000) : null;
        Duration reference = eventsOverride is long e2 ? Duration.FromPicoseconds(Math.Max(1_000_000_000, e2 * 20_000)) : Duration.FromSeconds(2);
        var (wallRatio, cpuRatio) = referenceRun ? SimulatedToWallAndCpuRatio(reference, rounds) : (0, null);
        double ratio = Math.Round(wallRatio, 3);
        double bootMs = referenceRun ? Math.Round(ReferenceBootWallMilliseconds(rounds), 1) : 0;

        List<ScalePoint>? series = null;
        if (scale)
        {
            Duration span = eventsOverride is long e3 ? Duration.FromPicoseconds(Math.Max(1_000_000_000, e3 * 5_000)) : Duration.FromMilliseconds(100);
            MeasureScale(1, 1, span); // warm-up: JIT tiers of the guest and hypervisor paths
            // The single-VM reference is short (a fraction of a second): the median of three runs.
            ScalePoint[] singles = [MeasureScale(1, 1, span), MeasureScale(1, 1, span), MeasureScale(1, 1, span)];
            series = [singles.OrderBy(p => p.WallSeconds).ElementAt(1)];
            foreach (int v in ScaleVmsPerHost.Where(v => v > 1))
            {
                series.Add(MeasureScale(1, v, span));
            }
            foreach (int h in ScaleHosts.Where(h => h > 1))
            {
                series.Add(MeasureScale(h, 1, span));
            }
        }
        DatacenterFigure? dc = datacenter || datacenterFile is not null ? RunDatacenter(datacenterFile) : null;

        if (json)
        {
            var doc = new SortedDictionary<string, object>(StringComparer.Ordinal);
            if (Selected("engine"))
            {
                doc["engine_hold_events_per_s"] = hold;
                doc["engine_vs_cxx"] = versus.Count == HoldSizes.Length ? versus : null!;
            }
            if (interpreter)
            {
                doc["interpreter_instructions_per_s"] = instructions;
                doc["interpreter_rdtsc_per_s"] = rdtsc;
                doc["real_rdtsc_per_s"] = realRdtsc is double real ? Math.Round(real) : null!;
                doc["interpreter_rdtsc_vs_real"] = realRdtsc is double real2 && real2 > 0 ? Math.Round(rdtsc / real2, 3) : null!;
            }
            if (referenceRun)
            {
                doc["simulated_to_wall_ratio"] = ratio;
                doc["simulated_to_thread_cpu_ratio"] = cpuRatio is double c ? Math.Round(c, 3) : null!;
                doc["reference_boot_wall_ms"] = bootMs;
            }
            if (series is not null)
            {
                double single = series[0].WallPerVcpuSecond;
                doc["scale"] = series.Select(p => new SortedDictionary<string, object>(StringComparer.Ordinal)
                {
                    ["hosts"] = p.Hosts,
                    ["vms_per_host"] = p.VmsPerHost,
                    ["vcpus"] = p.Hosts * p.VmsPerHost * 2,
                    ["events"] = p.Events,
                    ["wall_s"] = Math.Round(p.WallSeconds, 3),
                    ["wall_s_per_vcpu_s"] = Math.Round(p.WallPerVcpuSecond, 3),
                    ["vs_single_vm"] = Math.Round(p.WallPerVcpuSecond / single, 3),
                }).ToList();
            }
            if (datacenter || datacenterFile is not null)
            {
                doc["datacenter"] = dc is null ? null! : new SortedDictionary<string, object>(StringComparer.Ordinal)
                {
                    ["file"] = dc.File,
                    ["wall_s"] = Math.Round(dc.WallSeconds, 2),
                    ["peak_working_set_mb"] = Math.Round(dc.PeakWorkingSetMb),
                    ["events"] = dc.Events,
                    ["simulated_s"] = dc.SimulatedSeconds,
                    ["expectations_passed"] = dc.Passed,
                };
            }
            output.WriteLine(JsonSerializer.Serialize(doc));
        }
        else
        {
            if (Selected("engine"))
            {
                output.WriteLine("engine, hold model (each event schedules one at now + U[0, 2 us)):");
                foreach (var (n, rate) in hold)
                {
                    string line = string.Create(CultureInfo.InvariantCulture, $"  N = {n,7} pending: {rate / 1e6,8:F2} M events/s");
                    if (versus.TryGetValue(n, out var v))
                    {
                        line += string.Create(CultureInfo.InvariantCulture,
                            $"   C++ std::priority_queue: {v["cxx_events_per_s"] / 1e6,6:F2} M/s   ratio {v["ratio"],5:F2}x");
                    }
                    output.WriteLine(line);
                }
                if (versus.Count == 0)
                {
                    output.WriteLine($"  (no C++ reference: build it with tests/TscSim.Benchmarks/reference/build.sh, or set {CxxReferenceVariable})");
                }
            }
            if (interpreter)
            {
                output.WriteLine("interpreter, one vCPU on bare metal (intel-skylake, 2 GHz):");
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  register ALU/branch loop: {instructions / 1e6,8:F2} M instructions/s"));
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  rdtsc loop (not exiting): {rdtsc / 1e6,8:F2} M rdtsc/s"));
                if (realRdtsc is double real)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  real RDTSC loop (C, gcc -O2): {real / 1e6,8:F2} M rdtsc/s (TscSim / real = {rdtsc / real:F3})"));
                }
            }
            if (referenceRun)
            {
                output.WriteLine("reference scenario (1 VM, 4 vCPUs, kvm-clock, a clock read every 10 us of guest time):");
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  simulated/wall: {ratio,8:F2} simulated s per wall s"));
                if (cpuRatio is double c)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  simulated/CPU:  {c,8:F2} simulated s per CPU s of the running thread (not counting waits for a core)"));
                }
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  boot (4 vCPUs online, first {ReferenceBoot.Picoseconds / 1_000_000_000} ms simulated, warm): {bootMs,8:F1} ms wall"));
            }
            if (series is not null)
            {
                output.WriteLine("scale (2-vCPU linux-modern VMs, kvm-modern; wall s per simulated vCPU-second, boot included):");
                foreach (ScalePoint p in series)
                {
                    output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"  {p.Hosts,2} host(s) x {p.VmsPerHost,2} VM(s): {p.WallPerVcpuSecond,8:F3}  ({p.WallPerVcpuSecond / series[0].WallPerVcpuSecond:F2}x one VM, {p.Events:N0} events)"));
                }
            }
            if (datacenter || datacenterFile is not null)
            {
                output.WriteLine(dc is null
                    ? $"datacenter: {datacenterFile ?? DatacenterPath} not found"
                    : string.Create(CultureInfo.InvariantCulture,
                        $"datacenter ({dc.File}): {dc.WallSeconds:F1} s wall for {dc.SimulatedSeconds:G} s simulated, peak working set {dc.PeakWorkingSetMb:F0} MB, {dc.Events:N0} events"));
            }
        }
        return ExitCodes.Success;
    }
}

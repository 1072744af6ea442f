using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Time;

namespace TscSim.Cli;

/// <summary>
/// <c>tscsim bench</c>: quick built-in performance figures on the real engine and interpreter. Wall-clock
/// timing lives here, at the edge, never in the model. For rigorous numbers use
/// tests/TscSim.Benchmarks (BenchmarkDotNet).
/// </summary>
internal static class Bench
{
    /// <summary>Queue sizes of the hold model, as in the reference figures.</summary>
    public static readonly int[] HoldSizes = [1_000, 100_000];

    /// <summary>One hold-model measurement: the median of <paramref name="rounds"/> timed rounds.</summary>
    public static double HoldEventsPerSecond(int pending, long eventsPerRound, int rounds)
    {
        var model = new HoldModel(pending, seed: 1);
        model.Run(Math.Max(eventsPerRound / 2, 4L * pending)); // warm-up: JIT tiers, caches, steady-state queue shape
        var rates = new double[rounds];
        for (int r = 0; r < rounds; r++)
        {
            long before = Stopwatch.GetTimestamp();
            model.Run(eventsPerRound);
            double seconds = Stopwatch.GetElapsedTime(before).TotalSeconds;
            rates[r] = eventsPerRound / Math.Max(seconds, 1e-9);
        }
        Array.Sort(rates);
        return rates[rounds / 2];
    }

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

    /// <summary>Simulated seconds per wall second for the reference scenario (median of rounds).</summary>
    public static double SimulatedToWallRatio(Duration simulated, int rounds)
    {
        string text = TscSim.Core.Runs.ReferenceScenario.Text(simulated);
        var ratios = new double[rounds];
        for (int r = 0; r < rounds; r++)
        {
            var model = new TscSim.Core.Runs.ScenarioModel(TscSim.Core.Scenarios.ScenarioLoader.LoadText(text, "bench-reference.yaml"));
            var sw = System.Diagnostics.Stopwatch.StartNew();
            TscSim.Core.Runs.ScenarioRun.Execute(model);
            ratios[r] = simulated.Picoseconds / 1e12 / sw.Elapsed.TotalSeconds;
        }
        Array.Sort(ratios);
        return ratios[rounds / 2];
    }

    public static int Run(TextWriter output, bool json, long? eventsOverride, int rounds)
    {
        var hold = new SortedDictionary<string, double>(StringComparer.Ordinal);
        foreach (int n in HoldSizes)
        {
            long events = eventsOverride ?? (n <= 1_000 ? 5_000_000 : 2_000_000);
            hold[n.ToString(CultureInfo.InvariantCulture)] = Math.Round(HoldEventsPerSecond(n, events, rounds));
        }
        // 2 GHz guest: 100 ms of simulated ALU loop is 200 M instructions; scaled down with --events.
        Duration simulated = eventsOverride is long e
            ? Duration.FromPicoseconds(Math.Max(1, e) * 500)
            : Duration.FromMilliseconds(100);
        double instructions = Math.Round(InterpreterPerSecond(InterpreterBench.AluLoop, simulated, rounds, 1));
        double rdtsc = Math.Round(InterpreterPerSecond(InterpreterBench.RdtscLoop, simulated, rounds, 2));
        double? realRdtsc = RdtscReference.RatePerSecond(rounds, eventsOverride is long e3 ? Math.Max(1_000, e3) : 50_000_000);
        Duration reference = eventsOverride is long e2 ? Duration.FromPicoseconds(Math.Max(1_000_000_000, e2 * 20_000)) : Duration.FromSeconds(2);
        double ratio = Math.Round(SimulatedToWallRatio(reference, rounds), 3);

        if (json)
        {
            var doc = new SortedDictionary<string, object>(StringComparer.Ordinal)
            {
                ["engine_hold_events_per_s"] = hold,
                ["interpreter_instructions_per_s"] = instructions,
                ["interpreter_rdtsc_per_s"] = rdtsc,
                ["real_rdtsc_per_s"] = realRdtsc is double real ? Math.Round(real) : null!,
                ["interpreter_rdtsc_vs_real"] = realRdtsc is double real2 && real2 > 0 ? Math.Round(rdtsc / real2, 3) : null!,
                ["simulated_to_wall_ratio"] = ratio,
            };
            output.WriteLine(JsonSerializer.Serialize(doc));
        }
        else
        {
            output.WriteLine("engine, hold model (each event schedules one at now + U[0, 2 us)):");
            foreach (var (n, rate) in hold)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  N = {n,7} pending: {rate / 1e6,8:F2} M events/s"));
            }
            output.WriteLine("interpreter, one vCPU on bare metal (intel-skylake, 2 GHz):");
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  register ALU/branch loop: {instructions / 1e6,8:F2} M instructions/s"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  rdtsc loop (not exiting): {rdtsc / 1e6,8:F2} M rdtsc/s"));
            if (realRdtsc is double real)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  real RDTSC loop (C, gcc -O2): {real / 1e6,8:F2} M rdtsc/s (TscSim / real = {rdtsc / real:F3})"));
            }
            output.WriteLine("reference scenario (1 VM, 4 vCPUs, kvm-clock, a clock read every 10 us of guest time):");
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  simulated/wall: {ratio,8:F2} simulated s per wall s"));
        }
        return ExitCodes.Success;
    }
}

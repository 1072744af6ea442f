using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using TscSim.Core.Engine;

namespace TscSim.Cli;

/// <summary>
/// <c>tscsim bench</c>: quick built-in performance figures on the real engine. Wall-clock
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

    public static int Run(TextWriter output, bool json, long? eventsOverride, int rounds)
    {
        var results = new SortedDictionary<string, double>(StringComparer.Ordinal);
        foreach (int n in HoldSizes)
        {
            long events = eventsOverride ?? (n <= 1_000 ? 5_000_000 : 2_000_000);
            results[n.ToString(CultureInfo.InvariantCulture)] = Math.Round(HoldEventsPerSecond(n, events, rounds));
        }

        if (json)
        {
            var doc = new SortedDictionary<string, object>(StringComparer.Ordinal)
            {
                ["engine_hold_events_per_s"] = results,
            };
            output.WriteLine(JsonSerializer.Serialize(doc));
        }
        else
        {
            output.WriteLine("engine, hold model (each event schedules one at now + U[0, 2 us)):");
            foreach (var (n, rate) in results)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  N = {n,7} pending: {rate / 1e6,8:F2} M events/s"));
            }
        }
        return ExitCodes.Success;
    }
}

using System.Globalization;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;

namespace TscSim.Cli;

/// <summary><c>tscsim sweep</c> and <c>tscsim merge</c>.</summary>
public static class SweepCommand
{
    /// <summary>Parses <c>I/N</c> (0 ≤ I &lt; N).</summary>
    public static bool TryParseShard(string? text, out int shard, out int shards)
    {
        shard = 0;
        shards = 1;
        if (text is null)
        {
            return true;
        }
        var parts = text.Split('/');
        return parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out shard)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out shards)
            && shards >= 1 && shard < shards;
    }

    /// <summary><c>tscsim sweep FILE [--out DIR] [--jobs N] [--shard I/N]</c>.</summary>
    public static int Sweep(string file, string? outDir, int? jobs, string? shardText, bool quiet, TextWriter output, TextWriter error)
    {
        if (!TryParseShard(shardText, out int shard, out int shards))
        {
            error.WriteLine($"tscsim sweep: --shard '{shardText}': expected I/N with 0 <= I < N, e.g. 0/4");
            return ExitCodes.BadInput;
        }
        if (jobs is < 1)
        {
            error.WriteLine("tscsim sweep: --jobs must be at least 1");
            return ExitCodes.BadInput;
        }
        SweepSpec spec;
        try
        {
            spec = SweepSpec.Load(file);
        }
        catch (ScenarioException ex)
        {
            foreach (var d in ex.Diagnostics)
            {
                error.WriteLine(d.ToString());
            }
            return ExitCodes.BadInput;
        }
        string dir = outDir ?? Path.Combine("results", spec.Name);
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            cts.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        int total = spec.Points().Count(p => p.Index % shards == shard);
        int finished = 0;
        var gate = new Lock();
        try
        {
            var (ran, skipped, undone) = SweepRunner.Run(spec, dir, jobs ?? Environment.ProcessorCount, shard, shards, (point, result) =>
            {
                lock (gate)
                {
                    finished++;
                    if (!quiet)
                    {
                        output.WriteLine($"[{finished}] {point.Folder} ({spec.Describe(point)}, seed {point.Seed}): fingerprint {result.Fingerprint}, " +
                            $"expectations {(result.Passed ? "held" : "FAILED")}");
                    }
                }
            }, cts.Token);
            output.WriteLine($"sweep {spec.Name}: {ran} point(s) run, {skipped} already complete, {undone} left undone of {total} in this shard; {Path.Combine(dir, "sweep.csv")}");
            return undone > 0 ? ExitCodes.Interrupted : ExitCodes.Success;
        }
        catch (InvalidOperationException ex)
        {
            error.WriteLine($"tscsim sweep: {ex.Message}");
            return ExitCodes.BadInput;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary><c>tscsim merge DIR... [--out FILE]</c>.</summary>
    public static int Merge(IReadOnlyList<string> dirs, string? outFile, TextWriter output, TextWriter error)
    {
        try
        {
            string csv = outFile ?? Path.Combine(dirs[0], "sweep.csv");
            var (rows, points, missing) = SweepRunner.Merge(dirs, csv);
            output.WriteLine($"merged {dirs.Count} folder(s): {points} point(s), {rows} row(s), {missing} point(s) missing; {csv}");
            return ExitCodes.Success;
        }
        catch (Exception ex) when (ex is InvalidOperationException or IOException or System.Text.Json.JsonException)
        {
            error.WriteLine($"tscsim merge: {ex.Message}");
            return ExitCodes.BadInput;
        }
    }
}

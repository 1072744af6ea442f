using System.Text.Json;
using System.Text.Json.Nodes;

namespace TscSim.Core.Runs;

/// <summary>
/// Runs a sweep: each (point, repeat) into <c>OUT/points/pNNNN-rRR/</c> (a results folder,
/// written atomically, so a complete folder means a finished point), skipping points already
/// complete (resumable), optionally only the shard I of N (points whose index mod N = I), in
/// parallel; then writes <c>sweep.csv</c> from every complete point folder, in point order, so
/// the file is the same whatever the parallelism, sharding or interruptions.
/// </summary>
public static partial class SweepRunner
{
    /// <summary>
    /// Runs the sweep into <paramref name="outDir"/> (locked while it runs; see
    /// <see cref="OutputFolder.Check"/> for which existing folders are resumed or refused).
    /// A point folder is reused only when it is complete and was written by this build from
    /// this point's scenario (same digest); any other is run again, with a note to
    /// <paramref name="note"/>. Returns (points run now, points skipped as already complete,
    /// points left undone by a cancellation).
    /// </summary>
    /// <exception cref="OutputFolderException">The folder may not be written (before anything is written).</exception>
    /// <exception cref="InvalidOperationException">The folder holds another sweep.</exception>
    public static (int Ran, int Skipped, int Undone) Run(SweepSpec spec, string outDir, int jobs, int shard, int shards,
        Action<SweepPoint, RunResult>? done = null, CancellationToken cancel = default, bool force = false, Action<string>? note = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string full = OutputFolder.Normalize(outDir);
        using var held = OutputLock.Acquire(full);
        var plan = OutputFolder.Check(full, ResultKind.Sweep, force);
        if (plan == OutputFolder.Plan.Replace && ResultMarker.Read(full)?.SweepDigest is { } d && d != spec.Digest())
        {
            throw new InvalidOperationException($"{full} holds a different sweep (digest {d}, this one {spec.Digest()}); use another --out");
        }
        var mine = spec.Points().Where(p => p.Index % shards == shard).ToList();
        var todo = new List<SweepPoint>();
        foreach (var point in mine)
        {
            string folder = Path.Combine(full, "points", point.Folder);
            if (plan == OutputFolder.Plan.Replace)
            {
                if (Reusable(spec, point, folder, out string? why))
                {
                    continue;
                }
                if (why is not null)
                {
                    note?.Invoke($"{folder}: {why}; running it again");
                }
                OutputFolder.Check(folder, ResultKind.Run, force: true); // a user's file in it stops us here, before anything runs
            }
            todo.Add(point);
        }
        if (plan == OutputFolder.Plan.ReplaceOther)
        {
            OutputFolder.Clear(full);
        }
        Directory.CreateDirectory(Path.Combine(full, "points"));
        new ResultMarker(ResultKind.Sweep, ResultMarker.CurrentBuild, null, spec.Digest()).WriteTo(full);
        WriteManifest(spec, full, shard, shards);
        int ran = 0, undone = 0;
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, jobs) };
        Parallel.ForEach(todo, options, point =>
        {
            if (cancel.IsCancellationRequested)
            {
                Interlocked.Increment(ref undone);
                return;
            }
            var model = new ScenarioModel(spec.LoadPoint(point));
            var result = ScenarioRun.Execute(model, null, cancel);
            if (!result.Complete)
            {
                Interlocked.Increment(ref undone); // redone by the next run
                return;
            }
            ResultsWriter.Write(Path.Combine(full, "points", point.Folder), model, result, force: true, sweepDigest: spec.Digest());
            Interlocked.Increment(ref ran);
            done?.Invoke(point, result);
        });
        WriteCsv(spec, [full], Path.Combine(full, "sweep.csv"), allowMissing: true);
        return (ran, mine.Count - todo.Count, undone);
    }

    /// <summary>
    /// Whether the point folder can stand for <paramref name="point"/>: complete, written by this
    /// build, from this point's scenario. <paramref name="why"/> says why not (null when there is
    /// nothing there worth a note: no folder, or an incomplete one).
    /// </summary>
    private static bool Reusable(SweepSpec spec, SweepPoint point, string folder, out string? why)
    {
        why = null;
        if (!IsComplete(folder))
        {
            return false;
        }
        var marker = ResultMarker.Read(folder);
        if (marker is null || marker.Kind != ResultKind.Run)
        {
            why = "has no TscSim marker (written by an older TscSim)";
            return false;
        }
        if (marker.Build != ResultMarker.CurrentBuild)
        {
            why = $"was written by another build of TscSim ({marker.Build}; this is {ResultMarker.CurrentBuild})";
            return false;
        }
        if (marker.ScenarioDigest != ResultsWriter.ScenarioDigest(spec.LoadPoint(point)))
        {
            why = "was written from a different scenario than this point's";
            return false;
        }
        return true;
    }

    /// <summary>A results folder whose summary says complete.</summary>
    public static bool IsComplete(string folder)
    {
        string summary = Path.Combine(folder, "summary.json");
        if (!File.Exists(summary))
        {
            return false;
        }
        try
        {
            return JsonNode.Parse(File.ReadAllText(summary))?["complete"]?.GetValue<bool>() == true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static void WriteManifest(SweepSpec spec, string outDir, int shard, int shards)
    {
        var manifest = new JsonObject
        {
            ["schema"] = "tscsim.sweep/1",
            ["name"] = spec.Name,
            ["digest"] = spec.Digest(),
            ["sweep_file"] = Path.GetFullPath(spec.File),
            ["parameters"] = new JsonArray([.. spec.Parameters.Select(p => (JsonNode)new JsonObject
            {
                ["name"] = p.Name,
                ["path"] = p.Path,
                ["values"] = new JsonArray([.. p.Values.Select(v => (JsonNode)v)]),
            })]),
            ["repeat"] = spec.Repeat,
            ["base_seed"] = spec.Points()[0].Seed,
            ["points"] = spec.Points().Count,
            ["shard"] = shard,
            ["shards"] = shards,
        };
        string path = Path.Combine(outDir, "sweep.json");
        File.WriteAllText(path, manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }
}

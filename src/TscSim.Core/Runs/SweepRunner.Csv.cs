using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TscSim.Core.Runs;

// Part of SweepRunner: the sweep's table, sweep.csv written from point folders, and tscsim merge
// of shards.
public static partial class SweepRunner
{
    /// <summary>The sweep.csv columns before and after the parameter columns.</summary>
    public const string LeadColumns = "point,repeat,seed,fingerprint,complete",
        TailColumns = "vm,vcpu,reads,skew_max_abs_ns,skew_final_ns,drift_ppm,violations,exits_total,exits_rdtsc,exits_rdtscp,overhead_pct";

    /// <summary>
    /// <c>tscsim merge</c>: checks that <paramref name="dirs"/> hold shards of one sweep (same
    /// digest) and writes their joint <c>sweep.csv</c> to <paramref name="csvPath"/>: never a
    /// sweep folder's own <c>sweep.csv</c>, and never over a file that is not a sweep table.
    /// A point missing from every folder is an error unless <paramref name="allowMissing"/>.
    /// </summary>
    public static (int Rows, int Points, int Missing) Merge(IReadOnlyList<string> dirs, string csvPath, bool allowMissing = false)
    {
        ArgumentNullException.ThrowIfNull(dirs);
        SweepSpec? spec = null;
        foreach (var dir in dirs)
        {
            string path = Path.Combine(dir, "sweep.json");
            if (!File.Exists(path))
            {
                throw new InvalidOperationException($"{dir} is not a sweep output folder (no sweep.json)");
            }
            SweepSpec s;
            try
            {
                s = SweepSpec.FromManifest(JsonNode.Parse(File.ReadAllText(path))!.AsObject());
            }
            catch (Exception ex) when (ex is JsonException or NullReferenceException or InvalidOperationException or InvalidCastException or FormatException)
            {
                throw new InvalidOperationException($"{path} is not a sweep manifest as TscSim writes it ({ex.Message})", ex);
            }
            if (spec is not null && s.Digest() != spec.Digest())
            {
                throw new InvalidOperationException($"{dir} holds another sweep ({s.Name}, digest {s.Digest()}) than {dirs[0]} ({spec.Name}, digest {spec.Digest()})");
            }
            spec ??= s;
        }
        string target = Path.GetFullPath(csvPath);
        if (Directory.Exists(target))
        {
            throw new InvalidOperationException($"--out {csvPath} is a folder; expected the path of the merged CSV file, e.g. {Path.Combine(csvPath, "sweep.csv")}");
        }
        if (ResultMarker.Read(Path.GetDirectoryName(target)!)?.Kind == ResultKind.Sweep)
        {
            throw new InvalidOperationException($"{csvPath} is inside the sweep folder {Path.GetDirectoryName(target)}: merge never writes into a shard; choose another --out");
        }
        if (File.Exists(target) && !File.ReadLines(target).FirstOrDefault("").StartsWith(LeadColumns + ",", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{csvPath} exists and is not a sweep table written by TscSim; merge will not overwrite it: choose another --out");
        }
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        return WriteCsv(spec!, dirs, target, allowMissing);
    }

    /// <summary>
    /// Writes <c>sweep.csv</c> from the complete point folders found in <paramref name="dirs"/>
    /// (one sweep's output folders: shards, or one folder), in (point, repeat) order. A point found
    /// twice must have the same fingerprint. Returns (rows, points, missing points).
    /// </summary>
    public static (int Rows, int Points, int Missing) WriteCsv(SweepSpec spec, IReadOnlyList<string> dirs, string csvPath, bool allowMissing)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(dirs);
        var folders = new SortedDictionary<int, (SweepPoint Point, string Folder, string Fingerprint)>();
        var points = spec.Points();
        string? build = null, buildFolder = null;
        foreach (var point in points)
        {
            foreach (var dir in dirs)
            {
                string folder = Path.Combine(dir, "points", point.Folder);
                // Only a complete point written for this sweep (its marker names the sweep's digest) counts.
                var marker = IsComplete(folder) ? ResultMarker.Read(folder) : null;
                if (marker is not { Kind: ResultKind.Run } || marker.SweepDigest != spec.Digest())
                {
                    continue;
                }
                if (build is not null && marker.Build != build)
                {
                    throw new InvalidOperationException($"{folder} was written by another build of TscSim ({marker.Build}) than {buildFolder} ({build}); " +
                        "run every shard with one build (a rerun of the sweep redoes the points of another build)");
                }
                (build, buildFolder) = (marker.Build, folder);
                string fp = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "summary.json")))!["fingerprint"]!.GetValue<string>();
                if (folders.TryGetValue(point.Index, out var seen))
                {
                    if (seen.Fingerprint != fp)
                    {
                        throw new InvalidOperationException($"point {point.Folder} differs between {seen.Folder} ({seen.Fingerprint}) and {folder} ({fp})");
                    }
                    continue;
                }
                folders[point.Index] = (point, folder, fp);
            }
        }
        var sb = new StringBuilder(LeadColumns);
        foreach (var p in spec.Parameters)
        {
            sb.Append(',').Append(Csv(p.Name));
        }
        sb.Append(',').Append(TailColumns).Append('\n');
        int rows = 0;
        foreach (var (_, (point, folder, fp)) in folders)
        {
            var summary = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "summary.json")))!.AsObject();
            string lead = string.Create(CultureInfo.InvariantCulture, $"{point.Point},{point.Repeat},{point.Seed},{fp},true");
            string values = string.Concat(point.Values.Select(v => "," + Csv(v)));
            foreach (var vm in summary["vms"]!.AsArray())
            {
                foreach (var c in vm!["vcpus"]!.AsArray())
                {
                    sb.Append(lead).Append(values).Append(',').Append(Csv((string)vm["id"]!)).Append(',')
                      .Append(Num(c!["id"])).Append(',').Append(Num(c["reads"])).Append(',')
                      .Append(Num(c["skew_ns"]!["max_abs"])).Append(',').Append(Num(c["skew_ns"]!["final"])).Append(',')
                      .Append(Num(c["drift_ppm"])).Append(',').Append(Num(c["violations"])).Append(',')
                      .Append(Num(c["exits"]!["total"])).Append(',').Append(Num(c["exits"]!["rdtsc"])).Append(',')
                      .Append(Num(c["exits"]!["rdtscp"])).Append(',').Append(Num(c["overhead_pct"])).Append('\n');
                    rows++;
                }
            }
        }
        var missing = points.Where(p => !folders.ContainsKey(p.Index)).ToList();
        if (missing.Count > 0 && !allowMissing)
        {
            string shown = string.Join(", ", missing.Take(10).Select(p => p.Folder)) + (missing.Count > 10 ? $" and {missing.Count - 10} more" : "");
            throw new InvalidOperationException($"{missing.Count} of {points.Count} point(s) are in none of the folders: {shown}; " +
                "run the missing shards (or rerun them), or pass --allow-missing to merge what there is");
        }
        string temp = csvPath + $".tmp-{Environment.ProcessId}";
        File.WriteAllText(temp, sb.ToString());
        File.Move(temp, csvPath, overwrite: true);
        int distinct = folders.Count;
        return (rows, distinct, points.Count - distinct);
    }

    private static string Num(JsonNode? n) => n is null ? "" : n.ToJsonString();

    private static string Csv(string s) =>
        s.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;
}

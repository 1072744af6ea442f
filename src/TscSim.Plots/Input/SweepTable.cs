using System.Text.Json;

namespace TscSim.Plots.Input;

/// <summary>One row of <c>sweep.csv</c>: one vCPU of one repeat of one grid point.</summary>
/// <param name="Point">The grid point's number.</param>
/// <param name="Repeat">The repeat's number.</param>
/// <param name="Complete">Whether the point's run completed.</param>
/// <param name="Parameters">The point's parameter values as written, in <see cref="SweepTable.Parameters"/> order.</param>
/// <param name="Vm">The VM's id.</param>
/// <param name="Vcpu">The vCPU's index.</param>
/// <param name="SkewMaxAbsNs">Max |skew| of the vCPU's clock reads, ns; null when it made none.</param>
/// <param name="OverheadPct">Exit cycles / (guest + exit cycles) × 100; null when absent.</param>
public sealed record SweepRow(long Point, long Repeat, bool Complete, IReadOnlyList<string> Parameters, string Vm, long Vcpu,
    double? SkewMaxAbsNs, double? OverheadPct);

/// <summary>
/// A sweep folder's <c>sweep.csv</c> in long form: columns <c>point,repeat,seed,fingerprint,complete</c>,
/// then one column per swept parameter (named by the parameter's name in the sweep file), then <c>vm,vcpu,reads,skew_max_abs_ns,…</c>.
/// The parameter columns are exactly those between <c>complete</c> and <c>vm</c>.
/// </summary>
public sealed class SweepTable
{
    /// <summary>The file that marks a sweep folder.</summary>
    public const string SweepFile = "sweep.csv";

    private static readonly string[] Expected =
        ["point", "repeat", "seed", "fingerprint", "complete", "PARAMETERS...", "vm", "vcpu", "reads", "skew_max_abs_ns",
         "skew_final_ns", "drift_ppm", "violations", "exits_total", "exits_rdtsc", "exits_rdtscp", "overhead_pct"];

    private SweepTable(string path, string name, IReadOnlyList<string> parameters, IReadOnlyList<SweepRow> rows)
    {
        Path = path;
        Name = name;
        Parameters = parameters;
        Rows = rows;
    }

    /// <summary>The sweep folder.</summary>
    public string Path { get; }

    /// <summary>
    /// The sweep's name for titles: <c>sweep.json</c>'s <c>name</c>; without one, the <c>scenario</c> of
    /// the first <c>summary.json</c> found one or two levels below the folder (ordinal order of folder
    /// names, e.g. <c>points/p0000-r00/</c>); else the folder's own name.
    /// </summary>
    public string Name { get; }

    /// <summary>The swept parameters' paths, in column order.</summary>
    public IReadOnlyList<string> Parameters { get; }

    /// <summary>The rows, in file order.</summary>
    public IReadOnlyList<SweepRow> Rows { get; }

    /// <summary>Whether <paramref name="dir"/> looks like a sweep folder (it has <c>sweep.csv</c>).</summary>
    public static bool IsSweepFolder(string dir) => File.Exists(System.IO.Path.Combine(dir, SweepFile));

    /// <summary>Reads and checks <c>sweep.csv</c> of the sweep folder <paramref name="dir"/>.</summary>
    /// <exception cref="PlotInputException">The file is missing or malformed.</exception>
    public static SweepTable Load(string dir)
    {
        ArgumentNullException.ThrowIfNull(dir);
        var t = CsvTable.Read(System.IO.Path.Combine(dir, SweepFile));
        int cPoint = t.Column("point", Expected), cRepeat = t.Column("repeat", Expected), cComplete = t.Column("complete", Expected),
            cVm = t.Column("vm", Expected), cVcpu = t.Column("vcpu", Expected), cSkew = t.Column("skew_max_abs_ns", Expected),
            cOverhead = t.Column("overhead_pct", Expected);
        if (cVm < cComplete)
        {
            throw PlotInputException.At(t.File, 1, 1, "column 'vm' comes before 'complete': the swept parameters are the columns between them");
        }
        var parameterColumns = Enumerable.Range(cComplete + 1, cVm - cComplete - 1).ToArray();
        var rows = new List<SweepRow>(t.Rows.Count);
        foreach (var row in t.Rows)
        {
            bool complete = row[cComplete].Text.ToLowerInvariant() switch
            {
                "true" or "1" => true,
                "false" or "0" => false,
                _ => throw t.Error(row, cComplete, $"complete '{row[cComplete].Text}' is not true or false"),
            };
            rows.Add(new SweepRow(t.Long(row, cPoint), t.Long(row, cRepeat), complete,
                [.. parameterColumns.Select(c => row[c].Text)], row[cVm].Text, t.Long(row, cVcpu),
                t.OptionalDouble(row, cSkew), t.OptionalDouble(row, cOverhead)));
        }
        return new SweepTable(dir, NameOf(dir), [.. parameterColumns.Select(c => t.Header[c])], rows);
    }

    private static string NameOf(string dir)
    {
        try
        {
            // sweep.json (the manifest written by 'tscsim sweep') names the sweep.
            string manifest = System.IO.Path.Combine(dir, "sweep.json");
            if (File.Exists(manifest) && StringMember(manifest, "name") is { } name)
            {
                return name;
            }
            // Else the scenario of the first point folder (points/pNNNN-rRR/summary.json, or one level down).
            var candidates = Directory.GetDirectories(dir).Order(StringComparer.Ordinal)
                .SelectMany(sub => new[] { sub }.Concat(Directory.GetDirectories(sub).Order(StringComparer.Ordinal)));
            foreach (var folder in candidates)
            {
                string summary = System.IO.Path.Combine(folder, ResultsFolder.SummaryFile);
                if (File.Exists(summary) && StringMember(summary, "scenario") is { } scenario)
                {
                    return scenario;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException)
        {
            // A title is not worth failing for: fall back to the folder's name.
        }
        return System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(System.IO.Path.GetFullPath(dir)));
    }

    private static string? StringMember(string jsonFile, string key)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(jsonFile));
        return doc.RootElement.ValueKind == JsonValueKind.Object &&
            doc.RootElement.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    }
}

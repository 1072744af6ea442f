using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TscSim.Core.Runs;

/// <summary>What TscSim wrote into a folder: one run's results, or a sweep (its points are runs).</summary>
public enum ResultKind
{
    /// <summary>A results folder of <c>tscsim run</c> (or one point of a sweep).</summary>
    Run,

    /// <summary>A sweep folder of <c>tscsim sweep</c>.</summary>
    Sweep,
}

/// <summary>
/// An output folder TscSim may not write: it holds files TscSim did not write, another kind of
/// result, or another tscsim is writing it. The message says why and what to do; the CLI prints
/// it and exits 2.
/// </summary>
public sealed class OutputFolderException(string message) : Exception(message);

/// <summary>
/// The marker file <c>.tscsim-result</c> that TscSim writes into every results and sweep folder:
/// the kind of result, the simulator build that wrote it and a digest of what it was written
/// from. A folder is replaced only when it carries the marker of the same kind.
/// </summary>
public sealed record ResultMarker(ResultKind Kind, string Build, string? ScenarioDigest, string? SweepDigest)
{
    /// <summary>The marker's file name.</summary>
    public const string FileName = ".tscsim-result";

    /// <summary>The marker's schema.</summary>
    public const string Schema = "tscsim.result/1";

    /// <summary>
    /// This simulator build: the informational version of TscSim.Core and its module version id
    /// (deterministic builds: it changes exactly when the simulator's code does).
    /// </summary>
    public static string CurrentBuild { get; } = BuildId();

    private static string BuildId()
    {
        var assembly = typeof(ResultMarker).Assembly;
        string version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        return $"{version} ({assembly.ManifestModule.ModuleVersionId.ToString("N")[..12]})";
    }

    /// <summary>The marker as its file holds it.</summary>
    public string ToJson() => new JsonObject
    {
        ["schema"] = Schema,
        ["kind"] = Kind == ResultKind.Run ? "run" : "sweep",
        ["build"] = Build,
        ["scenario_digest"] = ScenarioDigest,
        ["sweep_digest"] = SweepDigest,
    }.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) + "\n";

    /// <summary>Writes the marker into <paramref name="folder"/>.</summary>
    public void WriteTo(string folder) => File.WriteAllText(Path.Combine(folder, FileName), ToJson());

    /// <summary>The marker of <paramref name="folder"/>, or null when it has none (or an unreadable one).</summary>
    public static ResultMarker? Read(string folder)
    {
        string path = Path.Combine(folder, FileName);
        try
        {
            if (!File.Exists(path) || JsonNode.Parse(File.ReadAllText(path)) is not JsonObject o || (string?)o["schema"] != Schema)
            {
                return null;
            }
            ResultKind? kind = (string?)o["kind"] switch { "run" => ResultKind.Run, "sweep" => ResultKind.Sweep, _ => null };
            return kind is { } k ? new ResultMarker(k, (string?)o["build"] ?? "", (string?)o["scenario_digest"], (string?)o["sweep_digest"]) : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or JsonException or InvalidOperationException)
        {
            return null;
        }
    }
}

/// <summary>
/// The rules for writing an output folder: which existing folders TscSim may replace (or resume),
/// and the lock that keeps two writers of one folder apart.
/// </summary>
/// <remarks>
/// An existing folder is replaced only when every entry in it is one TscSim writes and it carries
/// the marker of the same kind. <c>--force</c> also replaces a folder of TscSim's of another kind,
/// or one without a marker (written by an older TscSim), but never a folder holding anything
/// TscSim does not write: a user's files are never deleted, whatever the options.
/// </remarks>
public static class OutputFolder
{
    /// <summary>The entries of a run's results folder (a <c>plots/</c> folder is what <c>tscsim plot</c> writes into it).</summary>
    public static IReadOnlyList<string> RunEntries { get; } =
        ["summary.json", "reads.csv", "events.csv", "exits.csv", "scenario.resolved.yaml", ResultMarker.FileName, "plots"];

    /// <summary>The entries of a sweep folder.</summary>
    public static IReadOnlyList<string> SweepEntries { get; } =
        ["sweep.json", "sweep.csv", "points", ResultMarker.FileName, "plots"];

    /// <summary>The absolute path of <paramref name="directory"/> without a trailing separator, refusing a root or an empty path.</summary>
    public static string Normalize(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (directory.Trim().Length == 0)
        {
            throw new OutputFolderException("the output folder is an empty path; expected a folder name such as results/run1");
        }
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        if (Path.GetDirectoryName(full) is null || Path.GetFileName(full).Length == 0)
        {
            throw new OutputFolderException($"{directory}: cannot write results over a file system root; expected a folder such as results/run1");
        }
        return full;
    }

    /// <summary>What writing a result into an existing folder will do.</summary>
    public enum Plan
    {
        /// <summary>The folder does not exist or is empty: written fresh.</summary>
        Create,

        /// <summary>The folder holds TscSim's result of this kind (or --force allowed another): replaced (a run) or resumed (a sweep).</summary>
        Replace,

        /// <summary>--force on a folder of TscSim's of the other kind or without a marker: its content is removed first.</summary>
        ReplaceOther,
    }

    /// <summary>
    /// Checks that a <paramref name="kind"/> result may be written to <paramref name="full"/>
    /// (normalized), before anything is simulated or written.
    /// </summary>
    /// <exception cref="OutputFolderException">It may not; the message says why and what to do.</exception>
    public static Plan Check(string full, ResultKind kind, bool force)
    {
        string what = kind == ResultKind.Run ? "run's results" : "sweep";
        if (File.Exists(full))
        {
            throw new OutputFolderException($"{full} is a file; expected a folder for the {what} (choose another --out)");
        }
        if (!Directory.Exists(full))
        {
            return Plan.Create;
        }
        string[] entries;
        try
        {
            entries = [.. Directory.EnumerateFileSystemEntries(full).Select(e => Path.GetFileName(e)!).Order(StringComparer.Ordinal)];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OutputFolderException($"{full}: cannot read the folder ({ex.Message}); choose another --out");
        }
        if (entries.Length == 0)
        {
            return Plan.Create;
        }
        var marker = ResultMarker.Read(full);
        var known = marker is null ? RunEntries.Union(SweepEntries) : marker.Kind == ResultKind.Run ? RunEntries : SweepEntries;
        var foreign = entries.Where(e => !known.Contains(e, StringComparer.Ordinal) && !IsOwnLeftover(e)).ToList();
        if (foreign.Count > 0)
        {
            string shown = string.Join(", ", foreign.Take(5)) + (foreign.Count > 5 ? $" and {foreign.Count - 5} more" : "");
            throw new OutputFolderException(
                $"{full} holds files TscSim did not write ({shown}); TscSim replaces only a folder it wrote itself, never a folder " +
                "with other files in it (not even with --force): choose another --out, e.g. a new or empty folder");
        }
        if (marker?.Kind == kind)
        {
            return Plan.Replace;
        }
        if (force)
        {
            return Plan.ReplaceOther;
        }
        string found = marker is null
            ? "has no TscSim marker (" + ResultMarker.FileName + "; an older TscSim wrote it, or it was edited)"
            : $"holds a {(marker.Kind == ResultKind.Run ? "run's results" : "sweep")} written by TscSim";
        throw new OutputFolderException($"{full} {found}, not a {what}; choose another --out, or pass --force to replace it");
    }

    /// <summary>Files TscSim itself leaves while writing (<c>sweep.csv.tmp-PID</c>).</summary>
    private static bool IsOwnLeftover(string entry) => entry.StartsWith("sweep.csv.tmp-", StringComparison.Ordinal);

    /// <summary>Removes the content of a folder <see cref="Check"/> allowed to be replaced (TscSim's own entries only).</summary>
    public static void Clear(string full)
    {
        foreach (var entry in Directory.EnumerateFileSystemEntries(full).ToList())
        {
            if (Directory.Exists(entry))
            {
                Directory.Delete(entry, recursive: true);
            }
            else
            {
                File.Delete(entry);
            }
        }
    }
}

/// <summary>
/// An exclusive lock on an output folder: the file <c>.NAME.lock</c> beside it, held open with
/// <see cref="FileShare.None"/> (an OS lock, released when the process dies), and the holder's
/// process id in <c>.NAME.lock.owner</c>. A second writer of the same folder, in this process or
/// another, is refused with the holder's id. While it is held, temporary folders of earlier
/// writers of the folder are leftovers of dead writers and may be removed.
/// </summary>
public sealed class OutputLock : IDisposable
{
    private readonly FileStream _stream;

    private OutputLock(FileStream stream, string path)
    {
        _stream = stream;
        Path = path;
    }

    /// <summary>The lock file.</summary>
    public string Path { get; }

    /// <summary>Locks <paramref name="full"/> (normalized; its parent is created if needed).</summary>
    /// <exception cref="OutputFolderException">Another writer holds it, or the parent cannot be written.</exception>
    public static OutputLock Acquire(string full)
    {
        string parent = System.IO.Path.GetDirectoryName(full)!;
        string name = System.IO.Path.GetFileName(full);
        try
        {
            Directory.CreateDirectory(parent);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OutputFolderException($"cannot create the folder {parent} for {full}: {ex.Message}; choose another --out");
        }
        string path = System.IO.Path.Combine(parent, $".{name}.lock");
        string owner = path + ".owner";
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new OutputFolderException($"cannot write in {parent} ({ex.Message}); choose another --out");
        }
        catch (IOException ex) when (IsLockedByOther(ex))
        {
            string pid = "";
            try
            {
                pid = File.ReadAllText(owner).Trim();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // the holder has not written its id yet
            }
            throw new OutputFolderException(
                $"{full} is being written by another tscsim{(pid.Length > 0 ? $" (pid {pid})" : "")}; wait for it to finish, or choose another --out");
        }
        catch (IOException ex)
        {
            throw new OutputFolderException($"cannot write in {parent} ({ex.Message}); choose another --out");
        }
        try
        {
            File.WriteAllText(owner, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\n");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            stream.Dispose();
            throw new OutputFolderException($"cannot write in {parent} ({ex.Message}); choose another --out");
        }
        return new OutputLock(stream, path);
    }

    // EWOULDBLOCK from flock (Linux 11, macOS 35), or a Windows sharing or lock violation.
    private static bool IsLockedByOther(IOException ex) =>
        ex.HResult is 11 or 35 or unchecked((int)0x80070020) or unchecked((int)0x80070021);

    /// <summary>Releases the lock (the lock files stay: deleting them would let two writers lock different files).</summary>
    public void Dispose() => _stream.Dispose();
}

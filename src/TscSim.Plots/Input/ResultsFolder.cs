using System.Text.Json;
using TscSim.Core.Scenarios;

namespace TscSim.Plots.Input;

/// <summary>One row of <c>reads.csv</c>: a guest clock read (times in true nanoseconds since the run's start).</summary>
/// <param name="TrueNs">True time of the read, ns.</param>
/// <param name="Vm">The VM's id.</param>
/// <param name="Vcpu">The vCPU's index in its VM.</param>
/// <param name="Core">The physical core it ran on.</param>
/// <param name="Host">The host it ran on.</param>
/// <param name="SkewNs">Guest clock − true time, ns.</param>
/// <param name="Cycles">Core cycles the read cost, exits included.</param>
public sealed record ClockRead(long TrueNs, string Vm, int Vcpu, int Core, string Host, long SkewNs, long Cycles);

/// <summary>One row of <c>exits.csv</c>: a vCPU's cumulative exit counts at one sampling instant.</summary>
/// <param name="TrueNs">Sampling instant, true ns since the run's start.</param>
/// <param name="Vm">The VM's id.</param>
/// <param name="Vcpu">The vCPU's index in its VM.</param>
/// <param name="Counts">Cumulative exits since the run's start, indexed like <see cref="ExitSample.Reasons"/>.</param>
public sealed record ExitSample(long TrueNs, string Vm, int Vcpu, IReadOnlyList<long> Counts)
{
    /// <summary>The exit reasons of <c>exits.csv</c>, in its column order.</summary>
    public static IReadOnlyList<string> Reasons { get; } = ["rdtsc", "rdtscp", "msr", "mmio", "pio", "cpuid", "hlt"];
}

/// <summary>A clocksource switch of a VM's guest kernel (from <c>summary.json</c>); the first is the boot choice.</summary>
/// <param name="TimeNs">When, true ns.</param>
/// <param name="From">The previous clocksource, null at boot.</param>
/// <param name="To">The new clocksource.</param>
/// <param name="Reason">Why, as the kernel said.</param>
public sealed record ClocksourceSwitch(long TimeNs, string? From, string To, string Reason);

/// <summary>An interval during which a VM's TSC reads were trapped (from <c>summary.json</c>).</summary>
/// <param name="FromNs">Start, true ns.</param>
/// <param name="ToNs">End, true ns, or null when still trapped at the end of the run.</param>
/// <param name="Reason">The policy's reason.</param>
public sealed record TrappingInterval(long FromNs, long? ToNs, string Reason);

/// <summary>A VM as <c>summary.json</c> describes it (the parts the figures use).</summary>
/// <param name="Id">The VM's id.</param>
/// <param name="VcpuCount">Number of vCPUs (<c>vcpus[]</c>).</param>
/// <param name="Switches">Clocksource switches in time order.</param>
/// <param name="Trapping">Trapping intervals in time order.</param>
public sealed record VmSummary(string Id, int VcpuCount, IReadOnlyList<ClocksourceSwitch> Switches, IReadOnlyList<TrappingInterval> Trapping);

/// <summary>
/// A results folder written by <c>tscsim run</c> (see <c>docs/results-format.md</c>), read whole:
/// <c>summary.json</c>, <c>reads.csv</c>, <c>exits.csv</c> and <c>scenario.resolved.yaml</c>.
/// Everything is read and checked by <see cref="Load"/>, so a bad folder fails before any figure is drawn.
/// </summary>
public sealed class ResultsFolder
{
    /// <summary>The file that marks a results folder.</summary>
    public const string SummaryFile = "summary.json";

    private static readonly string[] ReadColumns = ["true_ns", "vm", "vcpu", "core", "host", "clock_ns", "skew_ns", "exited", "cycles"];
    private static readonly string[] ExitColumns = ["true_ns", "vm", "vcpu", "rdtsc", "rdtscp", "msr", "mmio", "pio", "cpuid", "hlt", "exit_cycles", "guest_cycles"];

    private ResultsFolder(string path, string scenarioName, long simulatedNs, IReadOnlyList<VmSummary> vms,
        IReadOnlyList<ClockRead> reads, IReadOnlyList<ExitSample> exits, Scenario scenario)
    {
        Path = path;
        ScenarioName = scenarioName;
        SimulatedNs = simulatedNs;
        Vms = vms;
        Reads = reads;
        Exits = exits;
        Scenario = scenario;
    }

    /// <summary>The folder.</summary>
    public string Path { get; }

    /// <summary><c>summary.json</c>'s <c>scenario</c>: the scenario's name.</summary>
    public string ScenarioName { get; }

    /// <summary>Simulated time of the run, ns (the end of the time axis).</summary>
    public long SimulatedNs { get; }

    /// <summary>The VMs, in <c>summary.json</c> order.</summary>
    public IReadOnlyList<VmSummary> Vms { get; }

    /// <summary>The rows of <c>reads.csv</c>, in file order.</summary>
    public IReadOnlyList<ClockRead> Reads { get; }

    /// <summary>The rows of <c>exits.csv</c>, in file order.</summary>
    public IReadOnlyList<ExitSample> Exits { get; }

    /// <summary><c>scenario.resolved.yaml</c>, loaded: hosts (frequencies, core counts) and the timeline.</summary>
    public Scenario Scenario { get; }

    /// <summary>Whether <paramref name="dir"/> looks like a results folder (it has <c>summary.json</c>).</summary>
    public static bool IsResultsFolder(string dir) => File.Exists(System.IO.Path.Combine(dir, SummaryFile));

    /// <summary>Reads and checks the results folder <paramref name="dir"/>.</summary>
    /// <exception cref="PlotInputException">A file is missing or malformed.</exception>
    public static ResultsFolder Load(string dir)
    {
        ArgumentNullException.ThrowIfNull(dir);
        var (name, simulated, vms) = ReadSummary(System.IO.Path.Combine(dir, SummaryFile));
        var reads = ReadReads(Required(dir, "reads.csv"));
        var exits = ReadExits(Required(dir, "exits.csv"));
        var scenario = ReadScenario(Required(dir, "scenario.resolved.yaml"));
        return new ResultsFolder(dir, name, simulated, vms, reads, exits, scenario);
    }

    private static string Required(string dir, string file)
    {
        string path = System.IO.Path.Combine(dir, file);
        if (!File.Exists(path))
        {
            throw new PlotInputException($"{path}: missing (a results folder written by 'tscsim run' has summary.json, reads.csv, exits.csv, events.csv and scenario.resolved.yaml)");
        }
        return path;
    }

    private static (string Name, long SimulatedNs, IReadOnlyList<VmSummary> Vms) ReadSummary(string path)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException ex)
        {
            throw PlotInputException.At(path, (ex.LineNumber ?? 0) + 1, (ex.BytePositionInLine ?? 0) + 1, $"not valid JSON: {ex.Message}");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PlotInputException($"{path}: cannot be read: {ex.Message}", ex);
        }
        using (doc)
        {
            var json = new JsonPath(path);
            var root = doc.RootElement;
            string name = json.String(root, "scenario", "");
            long simulated = json.Long(root, "simulated_ns", "");
            var vms = new List<VmSummary>();
            var vmArray = json.Array(root, "vms", "");
            for (int v = 0; v < vmArray.Count; v++)
            {
                var vm = vmArray[v];
                string at = $"vms[{v}]";
                string id = json.String(vm, "id", at);
                int vcpus = json.Array(vm, "vcpus", at).Count;
                var switches = new List<ClocksourceSwitch>();
                var sw = json.Array(vm, "clocksource_switches", at);
                for (int i = 0; i < sw.Count; i++)
                {
                    string sat = $"{at}.clocksource_switches[{i}]";
                    switches.Add(new ClocksourceSwitch(json.Long(sw[i], "time_ns", sat), json.OptionalString(sw[i], "from", sat),
                        json.String(sw[i], "to", sat), json.OptionalString(sw[i], "reason", sat) ?? ""));
                }
                var trapping = new List<TrappingInterval>();
                var tr = json.Array(vm, "trapping", at);
                for (int i = 0; i < tr.Count; i++)
                {
                    string tat = $"{at}.trapping[{i}]";
                    trapping.Add(new TrappingInterval(json.Long(tr[i], "from_ns", tat), json.OptionalLong(tr[i], "to_ns", tat),
                        json.OptionalString(tr[i], "reason", tat) ?? ""));
                }
                vms.Add(new VmSummary(id, vcpus, switches, trapping));
            }
            return (name, simulated, vms);
        }
    }

    private static List<ClockRead> ReadReads(string path)
    {
        var t = CsvTable.Read(path);
        int cTrue = t.Column("true_ns", ReadColumns), cVm = t.Column("vm", ReadColumns), cVcpu = t.Column("vcpu", ReadColumns),
            cCore = t.Column("core", ReadColumns), cHost = t.Column("host", ReadColumns), cSkew = t.Column("skew_ns", ReadColumns),
            cCycles = t.Column("cycles", ReadColumns);
        var reads = new List<ClockRead>(t.Rows.Count);
        foreach (var row in t.Rows)
        {
            reads.Add(new ClockRead(t.Long(row, cTrue), row[cVm].Text, Index(t, row, cVcpu), Index(t, row, cCore),
                row[cHost].Text, t.Long(row, cSkew), t.Long(row, cCycles)));
        }
        return reads;
    }

    private static List<ExitSample> ReadExits(string path)
    {
        var t = CsvTable.Read(path);
        int cTrue = t.Column("true_ns", ExitColumns), cVm = t.Column("vm", ExitColumns), cVcpu = t.Column("vcpu", ExitColumns);
        int[] reasonColumns = [.. ExitSample.Reasons.Select(r => t.Column(r, ExitColumns))];
        var samples = new List<ExitSample>(t.Rows.Count);
        foreach (var row in t.Rows)
        {
            long[] counts = [.. reasonColumns.Select(c => t.Long(row, c))];
            samples.Add(new ExitSample(t.Long(row, cTrue), row[cVm].Text, Index(t, row, cVcpu), counts));
        }
        return samples;
    }

    private static int Index(CsvTable t, CsvField[] row, int column)
    {
        long v = t.Long(row, column);
        if (v < 0 || v > int.MaxValue)
        {
            throw t.Error(row, column, $"{t.Header[column]} {v} is out of range");
        }
        return (int)v;
    }

    private static Scenario ReadScenario(string path)
    {
        try
        {
            return ScenarioLoader.Load(path);
        }
        catch (ScenarioException ex)
        {
            throw new PlotInputException(string.Join(Environment.NewLine, ex.Diagnostics), ex);
        }
    }

    /// <summary>Typed access to JSON members with messages naming the file and the key path.</summary>
    private sealed class JsonPath(string file)
    {
        private JsonElement Member(JsonElement obj, string key, string at, bool optional, out bool found)
        {
            found = obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;
            if (!found && !optional)
            {
                throw Fail(key, at, "is missing");
            }
            return found ? obj.GetProperty(key) : default;
        }

        private PlotInputException Fail(string key, string at, string what) =>
            new($"{file}: \"{(at.Length == 0 ? key : at + "." + key)}\" {what}");

        public string String(JsonElement obj, string key, string at) =>
            OptionalString(obj, key, at) ?? throw Fail(key, at, "is missing");

        public string? OptionalString(JsonElement obj, string key, string at)
        {
            var e = Member(obj, key, at, optional: true, out bool found);
            if (!found)
            {
                return null;
            }
            return e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Fail(key, at, "is not a string");
        }

        public long Long(JsonElement obj, string key, string at) =>
            OptionalLong(obj, key, at) ?? throw Fail(key, at, "is missing");

        public long? OptionalLong(JsonElement obj, string key, string at)
        {
            var e = Member(obj, key, at, optional: true, out bool found);
            if (!found)
            {
                return null;
            }
            return e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out long v) ? v : throw Fail(key, at, "is not an integer");
        }

        public IReadOnlyList<JsonElement> Array(JsonElement obj, string key, string at)
        {
            var e = Member(obj, key, at, optional: false, out _);
            return e.ValueKind == JsonValueKind.Array ? [.. e.EnumerateArray()] : throw Fail(key, at, "is not an array");
        }
    }
}

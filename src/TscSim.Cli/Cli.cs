using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Reflection;

namespace TscSim.Cli;

/// <summary>The <c>tscsim</c> command line (verbs and exit codes per docs/DESIGN contracts).</summary>
public static class TscSimCli
{
    private static int _crashes;

    /// <summary>
    /// Runs the command line and returns the process exit code. An exception nobody expected ends
    /// with <see cref="ExitCodes.InternalError"/>, one line on <paramref name="error"/> and the
    /// details in a crash file (never exit 1, which means "an expectation failed").
    /// </summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(error);
        try
        {
            return RunVerb(args, output, error);
        }
#pragma warning disable CA1031 // the one place that catches everything: a crash must end as exit 70, not a stack trace
        catch (Exception ex)
#pragma warning restore CA1031
        {
            return Crash(ex, args, error);
        }
    }

    private static int RunVerb(string[] args, TextWriter output, TextWriter error)
    {
        RootCommand root = Build();
        ParseResult parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors)
            {
                error.WriteLine($"tscsim: {e.Message}");
            }
            error.WriteLine("Run 'tscsim --help' (or 'tscsim VERB --help') for usage.");
            return ExitCodes.BadInput;
        }
        // No exception handler of System.CommandLine's (it would print a stack trace and return 1),
        // no termination handling of its own (run and sweep handle SIGINT and SIGTERM themselves).
        return parse.Invoke(new InvocationConfiguration
        {
            Output = output,
            Error = error,
            EnableDefaultExceptionHandler = false,
            ProcessTerminationTimeout = null,
        });
    }

    /// <summary>The build of the <c>tscsim</c> command (informational version).</summary>
    public static string Version { get; } =
        typeof(TscSimCli).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>Writes the details of an unexpected exception to a crash file and says where, in one line.</summary>
    internal static int Crash(Exception ex, IReadOnlyList<string> args, TextWriter error)
    {
        string details = string.Join('\n',
            "tscsim crashed: this is a bug in TscSim. Please report it with this file.",
            $"version: {Version}",
            $"simulator build: {Core.Runs.ResultMarker.CurrentBuild}",
            $"runtime: {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription} on {System.Runtime.InteropServices.RuntimeInformation.OSDescription}",
            $"arguments: {string.Join(' ', args.Select(a => a.Length == 0 || a.Any(char.IsWhiteSpace) ? $"\"{a}\"" : a))}",
            $"working directory: {Environment.CurrentDirectory}",
            "",
            ex.ToString(),
            "");
        string? path = null;
        for (int attempt = 0; attempt < 100 && path is null; attempt++)
        {
            string candidate = Path.Combine(Path.GetTempPath(),
                string.Create(CultureInfo.InvariantCulture, $"tscsim-crash-{Environment.ProcessId}-{Interlocked.Increment(ref _crashes)}.txt"));
            try
            {
                using var stream = new FileStream(candidate, FileMode.CreateNew, FileAccess.Write);
                using var writer = new StreamWriter(stream);
                writer.Write(details);
                path = candidate;
            }
            catch (IOException) when (File.Exists(candidate))
            {
                // taken by an earlier process of the same id: try the next number
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                break;
            }
        }
        string what = $"{ex.GetType().Name}: {ex.Message}".ReplaceLineEndings(" ");
        error.WriteLine(path is not null
            ? $"tscsim: internal error ({what}); this is a bug in TscSim: the details are in {path}, please report them"
            : $"tscsim: internal error ({what}); this is a bug in TscSim, please report it (the crash file could not be written in {Path.GetTempPath()})");
        return ExitCodes.InternalError;
    }

    /// <summary>An unsigned 64-bit option value: decimal, or hexadecimal with 0x, '_' allowed between digits (as in a scenario file).</summary>
    internal static ulong? ParseUnsigned(ArgumentResult result, string name)
    {
        string text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
        string t = text.Trim().Replace("_", "", StringComparison.Ordinal);
        bool ok = t.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.TryParse(t.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong v)
            : ulong.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out v);
        if (!ok)
        {
            result.AddError($"{name} '{text}': expected an integer from 0 to 18446744073709551615 (decimal, or hex with 0x)");
            return null;
        }
        return v;
    }

    /// <summary>A whole-number option value (its range is checked by the verb, with its own message).</summary>
    internal static long? ParseWhole(ArgumentResult result, string name)
    {
        string text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
        if (!long.TryParse(text.Trim().Replace("_", "", StringComparison.Ordinal), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v))
        {
            result.AddError($"{name} '{text}': expected a whole number");
            return null;
        }
        return v;
    }

    internal static RootCommand Build()
    {
        var root = new RootCommand(
            "TscSim: a deterministic, cycle-accurate simulator of guest timekeeping in virtual machines " +
            "whose TSC may be trapped.");

        var file = new Argument<string>("FILE") { Description = "The scenario file (YAML)." };
        var outOpt = new Option<string>("--out") { Description = "Results folder (default results/<scenario-name>/). An existing folder is replaced only if TscSim wrote it as a run's results." };
        var seedOpt = new Option<ulong?>("--seed") { Description = "Overrides the scenario's seed (decimal, or hex with 0x).", CustomParser = r => ParseUnsigned(r, "--seed") };
        var setOpt = new Option<string[]>("--set") { Description = "Overrides a scenario value: path=value (repeatable).", AllowMultipleArgumentsPerToken = false };
        var quietOpt = new Option<bool>("--quiet") { Description = "No progress output and no result table." };
        var forceOpt = new Option<bool>("--force") { Description = "Also replace a folder TscSim wrote as another kind of result (a sweep) or without its marker; never a folder holding other files." };
        var run = new Command("run", "Run a scenario and write its results folder.") { file, outOpt, seedOpt, setOpt, quietOpt, forceOpt };
        run.SetAction(parse => RunCommand.Run(parse.GetValue(file)!,
            parse.GetValue(outOpt), parse.GetValue(seedOpt), parse.GetValue(setOpt) ?? [], parse.GetValue(quietOpt),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, parse.GetValue(forceOpt)));
        root.Add(run);
        var files = new Argument<string[]>("FILE") { Description = "Scenario or sweep files.", Arity = ArgumentArity.OneOrMore };
        var validate = new Command("validate", "Parse and validate scenario and sweep files without running them.") { files };
        validate.SetAction(parse => RunCommand.Validate(parse.GetValue(files)!,
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error));
        root.Add(validate);
        var sweepFile = new Argument<string>("FILE") { Description = "The sweep file (YAML): a base scenario and a grid." };
        var sweepOut = new Option<string>("--out") { Description = "Output folder (default results/sweeps/<sweep-name>/). An existing sweep folder of the same sweep is resumed." };
        var jobsOpt = new Option<int?>("--jobs") { Description = "Points run in parallel (default: the core count).", CustomParser = r => ParseWhole(r, "--jobs") is { } j ? (int)Math.Clamp(j, int.MinValue, int.MaxValue) : null };
        var shardOpt = new Option<string>("--shard") { Description = "Run only shard I of N (I/N, 0 <= I < N), for batch systems." };
        var sweepQuiet = new Option<bool>("--quiet") { Description = "No line per point." };
        var sweepForce = new Option<bool>("--force") { Description = "Also replace a folder TscSim wrote as another kind of result (a run) or without its marker; never a folder holding other files." };
        var sweep = new Command("sweep", "Run a parameter grid: one results folder per point and sweep.csv; resumable.") { sweepFile, sweepOut, jobsOpt, shardOpt, sweepQuiet, sweepForce };
        sweep.SetAction(parse => SweepCommand.Sweep(parse.GetValue(sweepFile)!, parse.GetValue(sweepOut),
            parse.GetValue(jobsOpt), parse.GetValue(shardOpt), parse.GetValue(sweepQuiet),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, parse.GetValue(sweepForce)));
        root.Add(sweep);
        var mergeDirs = new Argument<string[]>("DIR") { Description = "Shard output folders of one sweep.", Arity = ArgumentArity.OneOrMore };
        var mergeOut = new Option<string>("--out") { Description = "Where the merged CSV goes (default: <sweep-name>.merged.csv beside DIR[0]); never a shard's own sweep.csv." };
        var allowMissing = new Option<bool>("--allow-missing") { Description = "Merge even if some points are in none of the folders." };
        var merge = new Command("merge", "Merge the shard outputs of one sweep into one CSV.") { mergeDirs, mergeOut, allowMissing };
        merge.SetAction(parse => SweepCommand.Merge(parse.GetValue(mergeDirs)!, parse.GetValue(mergeOut),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, parse.GetValue(allowMissing)));
        root.Add(merge);
        var plotDir = new Argument<string>("DIR") { Description = "A results folder (summary.json) or a sweep folder (sweep.csv)." };
        var plotOut = new Option<string>("--out") { Description = "Where the figures go (default DIR/plots/)." };
        var plot = new Command("plot", "Draw the figures of a results or sweep folder as PNG and SVG.") { plotDir, plotOut };
        plot.SetAction(parse => PlotCommand.Run(parse.GetValue(plotDir)!, parse.GetValue(plotOut),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error));
        root.Add(plot);
        var presets = new Command("presets", "List CPU models, guest OS profiles and policy presets with their parameters and sources.");
        presets.SetAction(parse => Presets.Run(parse.InvocationConfiguration.Output));
        root.Add(presets);
        // validate-kvm (issue 17): the real KVM of this machine against the model.
        var validateKvmOut = new Option<FileInfo>("--out") { Description = $"Where the CSV table goes (default {ValidateKvmCommand.DefaultOut}); never overwrites a file validate-kvm did not write." };
        var validateKvmScenarios = new Argument<string[]>("SCENARIO")
        {
            Description = "Scenario files whose workloads to run on real KVM and in TscSim (none: the built-in comparison cases).",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var validateKvm = new Command("validate-kvm", "Run the same workloads on this machine's real KVM (/dev/kvm) and in TscSim; print and write the comparison table.") { validateKvmScenarios, validateKvmOut };
        validateKvm.SetAction(parse => ValidateKvmCommand.Run(parse.GetValue(validateKvmOut)?.ToString(), parse.GetValue(validateKvmScenarios) ?? [],
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error));
        root.Add(validateKvm);

        var bench = new Command("bench", "Quick built-in performance figures: engine events/s (hold model), guest instructions/s and RDTSC/s.");
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text." };
        var events = new Option<long?>("--events") { Description = "Work per timed round: engine events (default 5,000,000 at N=1,000 and 2,000,000 at N=100,000), and as many guest cycles (default 100 ms of a 2 GHz guest).", CustomParser = r => ParseWhole(r, "--events") };
        var rounds = new Option<int>("--rounds") { Description = "Timed rounds per figure; the median is reported.", DefaultValueFactory = _ => 3, CustomParser = r => ParseWhole(r, "--rounds") is { } n ? (int)Math.Clamp(n, int.MinValue, int.MaxValue) : 0 };
        var scaleOption = new Option<bool>("--scale") { Description = "Also measure wall time per simulated vCPU-second for 1, 4, 16, 64 VMs on one host and 1 to 16 hosts (about a minute)." };
        var datacenterOption = new Option<bool>("--datacenter") { Description = $"Also run {Bench.DatacenterPath} (100 hosts, 800 VMs, 10 s simulated; one to two minutes) and report its wall time and peak memory." };
        var datacenterFile = new Option<FileInfo?>("--datacenter-file") { Description = "Run this scenario instead of the shipped datacenter (implies --datacenter)." };
        bench.Add(json);
        bench.Add(events);
        bench.Add(rounds);
        bench.Add(scaleOption);
        bench.Add(datacenterOption);
        bench.Add(datacenterFile);
        var only = new Option<string[]>("--only") { Description = $"Measure only these parts ({string.Join(", ", Bench.Parts)}; repeatable or comma-separated); default all. --scale and --datacenter are separate.", AllowMultipleArgumentsPerToken = true };
        bench.Add(only);
        bench.SetAction(parse =>
        {
            long? n = parse.GetValue(events);
            int r = parse.GetValue(rounds);
            var err = parse.InvocationConfiguration.Error;
            if (n is <= 0 || r <= 0)
            {
                err.WriteLine("tscsim bench: --events and --rounds must be positive.");
                return ExitCodes.BadInput;
            }
            string[] parts = [.. (parse.GetValue(only) ?? []).SelectMany(p => p.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))];
            if (parts.FirstOrDefault(p => !Bench.Parts.Contains(p)) is string unknown)
            {
                err.WriteLine($"tscsim bench: --only: unknown part '{unknown}' (parts: {string.Join(", ", Bench.Parts)}).");
                return ExitCodes.BadInput;
            }
            string? dcFile = parse.GetValue(datacenterFile)?.ToString();
            if (dcFile is not null && !File.Exists(dcFile))
            {
                err.WriteLine($"tscsim bench: --datacenter-file: no such file: {dcFile}");
                return ExitCodes.BadInput;
            }
            try
            {
                return Bench.Run(parse.InvocationConfiguration.Output, parse.GetValue(json), n, r,
                    parse.GetValue(scaleOption), parse.GetValue(datacenterOption), dcFile, parts);
            }
            catch (TscSim.Core.Scenarios.ScenarioException ex)
            {
                foreach (var d in ex.Diagnostics)
                {
                    err.WriteLine(d.ToString());
                }
                return ExitCodes.BadInput;
            }
        });
        root.Add(bench);
        return root;
    }
}

using System.Globalization;
using Spectre.Console;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;

namespace TscSim.Cli;

/// <summary><c>tscsim run</c> and <c>tscsim validate</c>.</summary>
public static class RunCommand
{
    /// <summary>Loads a scenario, or prints its diagnostics and returns null.</summary>
    private static Scenario? Load(string file, IReadOnlyList<string> sets, TextWriter error)
    {
        try
        {
            return ScenarioLoader.Load(file, sets);
        }
        catch (ScenarioException ex)
        {
            foreach (var d in ex.Diagnostics)
            {
                error.WriteLine(d.ToString());
            }
            return null;
        }
    }

    /// <summary>Builds the model, or prints why not (workload errors at their scenario lines; refusals of the model).</summary>
    private static ScenarioModel? Build(string file, Scenario scenario, ulong? seed, TextWriter error)
    {
        try
        {
            return new ScenarioModel(scenario, seed);
        }
        catch (ScenarioException ex)
        {
            foreach (var d in ex.Diagnostics)
            {
                error.WriteLine(d.ToString());
            }
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            error.WriteLine($"{file}:1:1: the scenario cannot be built: {ex.Message}");
        }
        return null;
    }

    /// <summary><c>tscsim validate FILE...</c>: scenario and sweep files; 0 when every file is valid, else 2.</summary>
    public static int Validate(IReadOnlyList<string> files, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        bool ok = true;
        foreach (string file in files)
        {
            if (file.Trim().Length == 0)
            {
                error.WriteLine("tscsim validate: an empty path was given; expected the path of a scenario or sweep file (YAML)");
                ok = false;
                continue;
            }
            if (SweepSpec.IsSweepFile(file))
            {
                ok &= SweepCommand.ValidateSweep(file, output, error);
                continue;
            }
            var scenario = Load(file, [], error);
            var model = scenario is null ? null : Build(file, scenario, null, error);
            if (scenario is null || model is null || !CheckExpectationPaths(model, error))
            {
                ok = false;
                continue;
            }
            output.WriteLine($"{file}: ok ({scenario.Name}: {scenario.Hosts.Count} host(s), {scenario.Vms.Count} VM(s), {scenario.Events.Count} event(s), {scenario.Expect.Count} expectation(s))");
        }
        return ok ? ExitCodes.Success : ExitCodes.BadInput;
    }

    /// <summary>Prints a diagnostic for every expectation whose path names no result of the model's shape; true when there is none.</summary>
    internal static bool CheckExpectationPaths(ScenarioModel model, TextWriter error, string? prefix = null)
    {
        var problems = ExpectationPaths.Check(model);
        foreach (var d in problems)
        {
            error.WriteLine(prefix is null ? d.ToString() : (d with { Message = prefix + d.Message }).ToString());
        }
        return problems.Count == 0;
    }

    /// <summary><c>tscsim run FILE</c>.</summary>
    public static int Run(string file, string? outDir, ulong? seed, IReadOnlyList<string> sets, bool quiet, TextWriter output, TextWriter error, bool force = false)
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        if (file.Trim().Length == 0)
        {
            error.WriteLine("tscsim run: an empty path was given; expected the path of a scenario file (YAML)");
            return ExitCodes.BadInput;
        }
        if (SweepSpec.IsSweepFile(file))
        {
            error.WriteLine($"tscsim run: {file} is a sweep file (it has 'base' and 'vary'); run it with 'tscsim sweep {file}'");
            return ExitCodes.BadInput;
        }
        var scenario = Load(file, sets, error);
        if (scenario is null)
        {
            return ExitCodes.BadInput;
        }
        var model = Build(file, scenario, seed, error);
        if (model is null)
        {
            return ExitCodes.BadInput;
        }
        string dir = outDir ?? Path.Combine("results", scenario.Name);
        // The destination is checked and locked before anything is simulated: a folder that may not
        // be replaced, a file in the way or an unwritable place is reported now, not after the run.
        OutputLock held;
        string full;
        try
        {
            full = OutputFolder.Normalize(dir);
            held = OutputLock.Acquire(full);
        }
        catch (OutputFolderException ex)
        {
            error.WriteLine($"tscsim run: {ex.Message}");
            return ExitCodes.BadInput;
        }
        using (held)
        {
            try
            {
                OutputFolder.Check(full, ResultKind.Run, force);
            }
            catch (OutputFolderException ex)
            {
                error.WriteLine($"tscsim run: {ex.Message}");
                return ExitCodes.BadInput;
            }
            return RunLocked(scenario, model, dir, full, quiet, force, output, error);
        }
    }

    private static int RunLocked(Scenario scenario, ScenarioModel model, string dir, string full, bool quiet, bool force, TextWriter output, TextWriter error)
    {
        RunResult result;
        using (var interruption = new Interruption())
        {
            // Progress goes to stderr: a bar when stderr is a terminal, plain lines otherwise (never on stdout, which carries the result).
            bool interactive = !quiet && ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected;
            var console = interactive ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) }) : null;
            if (console is not null && console.Profile.Capabilities.Interactive)
            {
                RunResult? r = null;
                console.Progress().AutoClear(true).Start(ctx =>
                {
                    var task = ctx.AddTask($"{scenario.Name} ({Format(scenario.Duration.Picoseconds)} simulated)", maxValue: 1.0);
                    r = ScenarioRun.Execute(model, f => task.Value = f, interruption.Token);
                });
                result = r!;
            }
            else
            {
                int lastDecile = 0;
                result = ScenarioRun.Execute(model, f =>
                {
                    int decile = (int)(f * 10);
                    if (!quiet && decile > lastDecile)
                    {
                        lastDecile = decile;
                        error.WriteLine($"{scenario.Name}: {decile * 10}% of {Format(scenario.Duration.Picoseconds)} simulated");
                    }
                }, interruption.Token);
            }
            if (interruption.Signal is { } signal && !result.Complete)
            {
                error.WriteLine($"tscsim run: {signal} received; stopping and writing the partial results");
            }
        }

        try
        {
            foreach (var note in ResultsWriter.Write(full, model, result, force))
            {
                error.WriteLine($"tscsim run: {note}");
            }
        }
        catch (OutputFolderException ex)
        {
            // Someone put a file into the folder while the run was simulating.
            error.WriteLine($"tscsim run: {ex.Message}");
            return ExitCodes.BadInput;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"tscsim run: cannot write the results to {dir}: {ex.Message}");
            return ExitCodes.BadInput;
        }
        if (!quiet)
        {
            Report(output, result, dir);
        }
        ReportFaults(error, result);
        if (!result.Complete)
        {
            error.WriteLine($"tscsim run: interrupted at {Format(model.Sim.Now.Picoseconds)}; partial results in {dir} (\"complete\": false)");
            return ExitCodes.Interrupted;
        }
        return result.Passed ? ExitCodes.Success : ExitCodes.ExpectationFailed;
    }

    private static string Format(long ps) => Core.Time.QuantityFormat.Duration(ps);

    /// <summary>The result table: per vCPU the headline numbers, then the expectations.</summary>
    private static void Report(TextWriter output, RunResult result, string dir)
    {
        var s = result.Summary;
        bool terminal = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
        });
        if (!terminal)
        {
            console.Profile.Width = 160; // a log or a pipe: do not wrap the table
        }
        console.WriteLine($"{(string)s["scenario"]!}  seed {(ulong)s["seed"]!}  fingerprint {(string)s["fingerprint"]!}  " +
            $"{(long)s["events"]!:N0} events  {(double)s["wall_seconds"]!:0.###} s wall");
        var table = new Table().Border(TableBorder.Simple);
        foreach (var col in new[] { "vCPU", "clocksource", "reads", "skew max|.| ns", "skew final ns", "drift ppm", "violations", "exits", "overhead %", "trapped", "faults" })
        {
            table.AddColumn(new TableColumn(col).RightAligned());
        }
        foreach (var vm in s["vms"]!.AsArray())
        {
            string id = (string)vm!["id"]!;
            string cs = (string?)vm["clocksource"] ?? "-";
            bool trapped = vm["trapping"]!.AsArray().Count > 0;
            int v = 0;
            foreach (var c in vm["vcpus"]!.AsArray())
            {
                table.AddRow(
                    $"{id}.vcpu{v++}", cs, N(c!["reads"]), N(c["skew_ns"]!["max_abs"]), N(c["skew_ns"]!["final"]),
                    N(c["drift_ppm"]), N(c["violations"]), N(c["exits"]!["total"]), N(c["overhead_pct"]), trapped ? "yes" : "no",
                    c["fault"] is { } f ? $"1 ({(string)f["kind"]!})" : "0");
            }
            var x = vm["cross_vcpu"]!;
            table.AddRow($"{id} (across)", "", "", N(x["max_skew_ns"]), "", "", N(x["violations"]), "", "", "", "");
        }
        console.Write(table);
        foreach (var e in result.Expectations)
        {
            console.WriteLine($"  {(e.Passed ? "PASS" : "FAIL")}  {e.Expectation.Text}   (value: {e.Value?.ToString() ?? "none"}{(e.Passed ? "" : "; " + e.Message)})");
        }
        if (result.UnexpectedFaults)
        {
            console.WriteLine($"  FAIL  no guest faults   ({result.Faults.Count} vCPU(s) stopped by a fault; " +
                $"if that is intended, expect it, e.g. {result.Faults[0].Vm}.vcpu{result.Faults[0].Vcpu}.faults == 1)");
        }
        console.WriteLine($"results: {dir}");
    }

    /// <summary>One line per guest fault on stderr, at its place in the scenario file (printed even with <c>--quiet</c>).</summary>
    private static void ReportFaults(TextWriter error, RunResult result)
    {
        foreach (var f in result.Faults)
        {
            error.WriteLine(f.ToString());
        }
    }

    private static string N(System.Text.Json.Nodes.JsonNode? n) => n switch
    {
        null => "-",
        System.Text.Json.Nodes.JsonValue v when v.TryGetValue(out long l) => l.ToString("N0", CultureInfo.InvariantCulture),
        System.Text.Json.Nodes.JsonValue v when v.TryGetValue(out double d) => d.ToString("0.###", CultureInfo.InvariantCulture),
        _ => n.ToJsonString(),
    };
}

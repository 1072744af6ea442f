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

    /// <summary><c>tscsim validate FILE...</c>: 0 when every file is valid, else 2.</summary>
    public static int Validate(IReadOnlyList<string> files, TextWriter output, TextWriter error)
    {
        bool ok = true;
        foreach (string file in files)
        {
            var scenario = Load(file, [], error);
            if (scenario is null || Build(file, scenario, null, error) is null)
            {
                ok = false;
                continue;
            }
            output.WriteLine($"{file}: ok ({scenario.Name}: {scenario.Hosts.Count} host(s), {scenario.Vms.Count} VM(s), {scenario.Events.Count} event(s), {scenario.Expect.Count} expectation(s))");
        }
        return ok ? ExitCodes.Success : ExitCodes.BadInput;
    }

    /// <summary><c>tscsim run FILE</c>.</summary>
    public static int Run(string file, string? outDir, ulong? seed, IReadOnlyList<string> sets, bool quiet, TextWriter output, TextWriter error)
    {
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

        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true; // finish the current step, write what we have
            cts.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        RunResult result;
        try
        {
            bool interactive = !quiet && ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
            if (interactive)
            {
                RunResult? r = null;
                AnsiConsole.Progress().AutoClear(true).Start(ctx =>
                {
                    var task = ctx.AddTask($"{scenario.Name} ({Format(scenario.Duration.Picoseconds)} simulated)", maxValue: 1.0);
                    r = ScenarioRun.Execute(model, f => task.Value = f, cts.Token);
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
                        output.WriteLine($"{scenario.Name}: {decile * 10}% of {Format(scenario.Duration.Picoseconds)} simulated");
                    }
                }, cts.Token);
            }
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }

        ResultsWriter.Write(dir, model, result);
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

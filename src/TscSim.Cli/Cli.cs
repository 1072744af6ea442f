using System.CommandLine;

namespace TscSim.Cli;

/// <summary>The <c>tscsim</c> command line (verbs and exit codes per docs/DESIGN contracts).</summary>
public static class TscSimCli
{
    /// <summary>Runs the command line and returns the process exit code.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
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
        return parse.Invoke(new InvocationConfiguration { Output = output, Error = error });
    }

    internal static RootCommand Build()
    {
        var root = new RootCommand(
            "TscSim: a deterministic, cycle-accurate simulator of guest timekeeping in virtual machines " +
            "whose TSC may be trapped.");

        var file = new Argument<FileInfo>("FILE") { Description = "The scenario file (YAML)." };
        var outOpt = new Option<DirectoryInfo>("--out") { Description = "Results folder (default results/<scenario-name>/)." };
        var seedOpt = new Option<ulong?>("--seed") { Description = "Overrides the scenario's seed." };
        var setOpt = new Option<string[]>("--set") { Description = "Overrides a scenario value: path=value (repeatable).", AllowMultipleArgumentsPerToken = false };
        var quietOpt = new Option<bool>("--quiet") { Description = "No progress output and no result table." };
        var run = new Command("run", "Run a scenario and write its results folder.") { file, outOpt, seedOpt, setOpt, quietOpt };
        run.SetAction(parse => RunCommand.Run(parse.GetValue(file)!.ToString(),
            parse.GetValue(outOpt)?.ToString(), parse.GetValue(seedOpt), parse.GetValue(setOpt) ?? [], parse.GetValue(quietOpt),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error));
        root.Add(run);
        var files = new Argument<FileInfo[]>("FILE") { Description = "Scenario files.", Arity = ArgumentArity.OneOrMore };
        var validate = new Command("validate", "Parse and validate scenario files without running them.") { files };
        validate.SetAction(parse => RunCommand.Validate([.. parse.GetValue(files)!.Select(f => f.ToString())],
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error));
        root.Add(validate);
        root.Add(Pending("sweep", "Run a parameter grid: one results folder per point and sweep.csv; resumable.", "#9", cmd =>
        {
            cmd.Add(new Argument<FileInfo>("FILE") { Description = "The sweep file (YAML)." });
            cmd.Add(new Option<DirectoryInfo>("--out") { Description = "Output folder." });
            cmd.Add(new Option<int?>("--jobs") { Description = "Points run in parallel (default: the core count)." });
            cmd.Add(new Option<string>("--shard") { Description = "Run shard I of N (I/N), for batch systems." });
        }));
        root.Add(Pending("merge", "Merge the shard outputs of one sweep into one sweep.csv.", "#9", cmd =>
            cmd.Add(new Argument<DirectoryInfo[]>("DIR") { Description = "Shard output folders.", Arity = ArgumentArity.OneOrMore })));
        root.Add(Pending("plot", "Draw the figures of a results or sweep folder as PNG and SVG.", "#9", cmd =>
        {
            cmd.Add(new Argument<DirectoryInfo>("DIR") { Description = "A results or sweep folder." });
            cmd.Add(new Option<DirectoryInfo>("--out") { Description = "Where the figures go." });
        }));
        var presets = new Command("presets", "List CPU models, guest OS profiles and policy presets with their parameters and sources.");
        presets.SetAction(parse => Presets.Run(parse.InvocationConfiguration.Output));
        root.Add(presets);

        var bench = new Command("bench", "Quick built-in performance figures: engine events/s (hold model), guest instructions/s and RDTSC/s.");
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of text." };
        var events = new Option<long?>("--events") { Description = "Work per timed round: engine events (default 5,000,000 at N=1,000 and 2,000,000 at N=100,000), and as many guest cycles (default 100 ms of a 2 GHz guest)." };
        var rounds = new Option<int>("--rounds") { Description = "Timed rounds per figure; the median is reported.", DefaultValueFactory = _ => 3 };
        bench.Add(json);
        bench.Add(events);
        bench.Add(rounds);
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
            return Bench.Run(parse.InvocationConfiguration.Output, parse.GetValue(json), n, r);
        });
        root.Add(bench);
        return root;
    }

    /// <summary>A verb whose options are defined but whose work lands with a later issue: it says so and exits 2.</summary>
    private static Command Pending(string name, string description, string issue, Action<Command> define)
    {
        var cmd = new Command(name, description);
        define(cmd);
        cmd.SetAction(parse =>
        {
            parse.InvocationConfiguration.Error.WriteLine(
                $"tscsim {name}: not built yet (planned in issue {issue}); nothing was done.");
            return ExitCodes.BadInput;
        });
        return cmd;
    }
}

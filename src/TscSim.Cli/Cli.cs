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
        var sweepFile = new Argument<FileInfo>("FILE") { Description = "The sweep file (YAML): a base scenario and a grid." };
        var sweepOut = new Option<DirectoryInfo>("--out") { Description = "Output folder (default results/<sweep-name>/)." };
        var jobsOpt = new Option<int?>("--jobs") { Description = "Points run in parallel (default: the core count)." };
        var shardOpt = new Option<string>("--shard") { Description = "Run only shard I of N (I/N, 0 <= I < N), for batch systems." };
        var sweepQuiet = new Option<bool>("--quiet") { Description = "No line per point." };
        var sweep = new Command("sweep", "Run a parameter grid: one results folder per point and sweep.csv; resumable.") { sweepFile, sweepOut, jobsOpt, shardOpt, sweepQuiet };
        sweep.SetAction(parse => SweepCommand.Sweep(parse.GetValue(sweepFile)!.ToString(), parse.GetValue(sweepOut)?.ToString(),
            parse.GetValue(jobsOpt), parse.GetValue(shardOpt), parse.GetValue(sweepQuiet),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error));
        root.Add(sweep);
        var mergeDirs = new Argument<DirectoryInfo[]>("DIR") { Description = "Shard output folders of one sweep.", Arity = ArgumentArity.OneOrMore };
        var mergeOut = new Option<FileInfo>("--out") { Description = "Where the merged sweep.csv goes (default: DIR[0]/sweep.csv)." };
        var merge = new Command("merge", "Merge the shard outputs of one sweep into one sweep.csv.") { mergeDirs, mergeOut };
        merge.SetAction(parse => SweepCommand.Merge([.. parse.GetValue(mergeDirs)!.Select(d => d.ToString())], parse.GetValue(mergeOut)?.ToString(),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error));
        root.Add(merge);
        var plotDir = new Argument<DirectoryInfo>("DIR") { Description = "A results folder (summary.json) or a sweep folder (sweep.csv)." };
        var plotOut = new Option<DirectoryInfo>("--out") { Description = "Where the figures go (default DIR/plots/)." };
        var plot = new Command("plot", "Draw the figures of a results or sweep folder as PNG and SVG.") { plotDir, plotOut };
        plot.SetAction(parse => PlotCommand.Run(parse.GetValue(plotDir)!.ToString(), parse.GetValue(plotOut)?.ToString(),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error));
        root.Add(plot);
        var presets = new Command("presets", "List CPU models, guest OS profiles and policy presets with their parameters and sources.");
        presets.SetAction(parse => Presets.Run(parse.InvocationConfiguration.Output));
        root.Add(presets);
        // validate-kvm (issue 17): the real KVM of this machine against the model.
        var validateKvmOut = new Option<FileInfo>("--out") { Description = $"Where the CSV table goes (default {ValidateKvmCommand.DefaultOut}); never overwrites a file validate-kvm did not write." };
        var validateKvm = new Command("validate-kvm", "Run the same workloads on this machine's real KVM (/dev/kvm) and in TscSim; print and write the comparison table.") { validateKvmOut };
        validateKvm.SetAction(parse => ValidateKvmCommand.Run(parse.GetValue(validateKvmOut)?.ToString(),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error));
        root.Add(validateKvm);

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
}

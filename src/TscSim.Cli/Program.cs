using TscSim.Cli;

return TscSimCli.Run(args, Console.Out, Console.Error);

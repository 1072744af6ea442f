using BenchmarkDotNet.Running;

// Run all: dotnet run -c Release --project tests/TscSim.Benchmarks -- --filter '*'
// (see BenchmarkDotNet's --help for --job short, --filter, exporters).
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

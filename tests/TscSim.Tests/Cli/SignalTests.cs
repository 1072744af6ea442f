using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using TscSim.Cli;

namespace TscSim.Tests.Cli;

/// <summary>Signals reach every run under way in the process: nothing else may run beside these tests.</summary>
[CollectionDefinition(nameof(SignalCollection), DisableParallelization = true)]
public sealed class SignalCollection;

/// <summary>SIGTERM (a batch system's time limit) is handled like Ctrl-C: partial results, exit 3.</summary>
[Collection(nameof(SignalCollection))]
public sealed class SignalTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"tscsim-signal-{Environment.ProcessId}-{Guid.NewGuid():N}");

    public SignalTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(PosixSignal.SIGTERM)]
    [InlineData(PosixSignal.SIGINT)]
    public async Task A_signal_stops_the_run_writes_partial_results_and_exits_3(PosixSignal signal)
    {
        string scenario = Path.Combine(_dir, "s.yaml");
        File.WriteAllText(scenario, OutputSafetyTests.Tiny.Replace("duration: 20ms", "duration: 600s", StringComparison.Ordinal));
        string outDir = Path.Combine(_dir, "out");
        var run = Task.Run(() => OutputSafetyTests.Run("run", scenario, "--out", outDir, "--quiet"));

        while (!run.IsCompleted)
        {
            Interruption.Deliver(signal); // what the registered handler does when the signal arrives
            await Task.Delay(20);
        }

        var (code, _, err) = await run;
        Assert.True(code == ExitCodes.Interrupted, err);
        Assert.Contains($"{signal} received", err, StringComparison.Ordinal);
        Assert.False((bool)JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "summary.json")))!["complete"]!);
    }
}

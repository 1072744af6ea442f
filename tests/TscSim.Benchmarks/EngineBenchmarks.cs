using BenchmarkDotNet.Attributes;
using TscSim.Core.Engine;

namespace TscSim.Benchmarks;

/// <summary>
/// The hold model on the real engine (see <see cref="HoldModel"/>): each operation runs
/// <see cref="EventsPerOp"/> events, so events/s = EventsPerOp / mean time per op.
/// MemoryDiagnoser must report 0 B allocated.
/// </summary>
[MemoryDiagnoser]
public class EngineHoldBenchmarks
{
    public const int EventsPerOp = 100_000;

    private HoldModel _model = null!;

    [Params(1_000, 100_000)]
    public int Pending { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _model = new HoldModel(Pending, seed: 1);
        _model.Run(4L * Pending); // steady-state queue shape before measuring
    }

    [Benchmark(OperationsPerInvoke = EventsPerOp)]
    public void HoldEvent() => _model.Run(EventsPerOp);
}

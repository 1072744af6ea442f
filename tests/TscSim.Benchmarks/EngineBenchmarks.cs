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

/// <summary>
/// The interpreter on bare metal (see <see cref="TscSim.Core.Guest.InterpreterBench"/>): each
/// operation runs 10 µs of a 2 GHz guest, i.e. 20,000 cycles. ALU loop: 20,001 instructions per
/// op; RDTSC loop: 26 cycles per iteration (rdtsc 25 + jmp 1 on Skylake) = ~769 RDTSCs per op.
/// </summary>
[MemoryDiagnoser]
public class InterpreterBenchmarks
{
    private TscSim.Core.Guest.InterpreterBench _alu = null!;
    private TscSim.Core.Guest.InterpreterBench _rdtsc = null!;
    private static readonly TscSim.Core.Time.Duration Step = TscSim.Core.Time.Duration.FromMicroseconds(10);

    [GlobalSetup]
    public void Setup()
    {
        _alu = new TscSim.Core.Guest.InterpreterBench(TscSim.Core.Guest.InterpreterBench.AluLoop);
        _rdtsc = new TscSim.Core.Guest.InterpreterBench(TscSim.Core.Guest.InterpreterBench.RdtscLoop);
        _alu.Run(TscSim.Core.Time.Duration.FromMilliseconds(1));
        _rdtsc.Run(TscSim.Core.Time.Duration.FromMilliseconds(1));
    }

    /// <summary>20,000 ALU/branch instructions (ns per op / 20,000 = ns per instruction).</summary>
    [Benchmark(OperationsPerInvoke = 20_000)]
    public void AluInstruction() => _alu.Run(Step);

    /// <summary>~769 RDTSC iterations (rdtsc + jmp) per op; OperationsPerInvoke counts RDTSCs.</summary>
    [Benchmark(OperationsPerInvoke = 769)]
    public void RdtscIteration() => _rdtsc.Run(Step);
}

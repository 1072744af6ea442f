using TscSim.Core.Engine;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// The interpreter's benchmark workloads on the real engine, shared by <c>tscsim bench</c> and
/// tests/TscSim.Benchmarks: one vCPU on bare metal (intel-skylake at 2 GHz) running a register
/// ALU/branch loop, or a loop of RDTSC that does not exit.
/// </summary>
public sealed class InterpreterBench
{
    /// <summary>Five register ALU instructions and a taken branch per iteration.</summary>
    public const string AluLoop = """
        start:  mov rcx, 0
        loop:   add rax, rcx
                xor rbx, rax
                sub rdx, 3
                inc rcx
                cmp rcx, rbx
                jmp loop
        """;

    /// <summary>RDTSC in a loop: one time read and one branch per iteration.</summary>
    public const string RdtscLoop = """
        loop:   rdtsc
                jmp loop
        """;

    private readonly Simulator _sim;
    private SimTime _until;

    public InterpreterBench(string source)
    {
        _sim = new Simulator(1);
        var host = new Host(new HostConfig { Id = "bench", Cpu = CpuPresets.IntelSkylake, Frequency = Frequency.FromMegahertz(2_000) }, _sim);
        var executor = new GuestExecutor(_sim);
        Vcpu = new Vcpu(executor, "bench.vcpu0", Assembler.Assemble(source, "bench"), host.Cores[0], new NativePlatform());
        Vcpu.Start(SimTime.Zero);
    }

    public Vcpu Vcpu { get; }

    /// <summary>Runs <paramref name="span"/> more of simulated time.</summary>
    public void Run(Duration span)
    {
        _until += span;
        _sim.Run(_until);
    }
}

using BenchmarkDotNet.Attributes;
using TscSim.Core.Guest;
using TscSim.Core.Time;

namespace TscSim.Benchmarks;

/// <summary>
/// The interpreter's memory paths on bare metal (intel-skylake at 2 GHz, one vCPU, as
/// <see cref="InterpreterBench"/>): a loop of private loads and stores, pushes and pops, and
/// a loop that loads, stores and atomically adds to shared memory (each shared access is
/// sequenced, so the vCPU checks its horizon, but never yields: it is alone). Each operation
/// runs 10 µs of guest time (20,000 cycles) and returns the instructions it retired; compare
/// builds by the time per operation.
/// </summary>
[MemoryDiagnoser]
public class InterpreterMemoryBenchmarks
{
    /// <summary>Private memory: 8 instructions a loop (2 loads, 2 stores, push, pop, add, jmp).</summary>
    public const string PrivateLoop = """
        loop:   mov rax, [x]
                add rax, 1
                mov [x], rax
                push rax
                pop rbx
                mov ecx, dword [y]
                mov dword [y], ecx
                jmp loop
        section .data
        x:      dq 0
        y:      dq 0
        """;

    /// <summary>Shared memory: 4 instructions a loop (a load, a store, a locked add, jmp).</summary>
    public const string SharedLoop = """
        start:  mov rdx, 1
        loop:   mov rax, [s]
                mov [t], rax
                lock xadd [s], rdx
                jmp loop
        section .shared
        s:      dq 0
        t:      dq 0
        """;

    private static readonly Duration Step = Duration.FromMicroseconds(10);
    private InterpreterBench _private = null!;
    private InterpreterBench _shared = null!;

    [GlobalSetup]
    public void Setup()
    {
        _private = new InterpreterBench(PrivateLoop);
        _shared = new InterpreterBench(SharedLoop);
        _private.Run(Duration.FromMilliseconds(1));
        _shared.Run(Duration.FromMilliseconds(1));
    }

    /// <summary>Private loads, stores, push and pop: 10 µs of guest time.</summary>
    [Benchmark]
    public long PrivateMemoryLoop() { long before = _private.Vcpu.Instructions; _private.Run(Step); return _private.Vcpu.Instructions - before; }

    /// <summary>Shared loads, stores and locked adds (each sequenced): 10 µs of guest time.</summary>
    [Benchmark]
    public long SharedMemoryLoop() { long before = _shared.Vcpu.Instructions; _shared.Run(Step); return _shared.Vcpu.Instructions - before; }
}

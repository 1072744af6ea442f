using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Properties;

/// <summary>A clock-reading guest loop (work, ALU, RDTSC, a probe) and unrelated events at random instants.</summary>
public sealed record SlicedRun(int Work1, int Work2, long CoreMhz, int Vcpus, IReadOnlyList<long> NoiseEventsPs)
{
    public string Program => $"""
        loop:   rdtsc
                work {Work1}cycles
                add rbx, rax
                imul rcx, rbx
                lock xadd [shared_counter], rdi
                probe rbx
                work {Work2}cycles
                jmp loop
        section .shared
        shared_counter: dq 0
        """;

    public override string ToString() =>
        $"work {Work1}/{Work2}, {CoreMhz} MHz, {Vcpus} vCPUs, noise at [{string.Join(", ", NoiseEventsPs)}] ps";
}

public static class SlicedRunArbitrary
{
    public static Arbitrary<SlicedRun> Runs() =>
        (from w1 in Gen.Choose(0, 3_000)
         from w2 in Gen.Choose(0, 3_000)
         from mhz in Gen.Elements(1_000L, 2_000L, 2_400L, 3_000L, 3_333L)
         from vcpus in Gen.Choose(1, 3)
         from noise in Gen.Choose(0, 20_000_000).Select(x => (long)x * 5).ListOf()
         select new SlicedRun(w1, w2, mhz, vcpus, noise.ToList())).ToArbitrary();
}

/// <summary>An event that does nothing but exist: it moves every vCPU's horizon.</summary>
internal sealed class Noise : IEventHandler
{
    public void OnEvent(Simulator sim, in SimEvent e)
    {
    }
}

internal sealed class Trace : IExecutionObserver
{
    public List<(string, long, ulong)> Reads { get; } = [];
    public List<(string, long, long)> Probes { get; } = [];

    public void OnTscRead(Vcpu vcpu, SimTime at, TscValue value, bool exited, long cycles) => Reads.Add((vcpu.Name, at.Picoseconds, value.Raw));

    public void OnProbe(Vcpu vcpu, SimTime at, int line, long value) => Probes.Add((vcpu.Name, at.Picoseconds, value));

    public void OnFault(Vcpu vcpu, GuestFault fault) => throw new InvalidOperationException(fault.ToString());

    public void OnClockRead(Vcpu vcpu, SimTime at, long nanoseconds, long cycles, int exits) { }
}

public class InterpreterProperties
{
    private static (Trace Trace, long Counter) Run(SlicedRun run, bool withNoise)
    {
        var sim = new Simulator(3);
        var host = new Host(new HostConfig
        {
            Id = "h", Cpu = CpuPresets.IntelSkylake, Frequency = Frequency.FromMegahertz(run.CoreMhz), CoresPerSocket = 4,
        }, sim);
        var executor = new GuestExecutor(sim);
        var program = Assembler.Assemble(run.Program);
        var shared = new SharedMemory(program.SharedData);
        var trace = new Trace();
        for (int v = 0; v < run.Vcpus; v++)
        {
            var vcpu = new Vcpu(executor, $"v{v}", program, host.Cores[v], new NativePlatform(), shared, trace);
            vcpu.SetRegister(Registers.Rdi, v + 1);
            vcpu.Start(SimTime.Zero);
        }
        if (withNoise)
        {
            var noise = sim.RegisterKind("noise", EventBand.Measurement, new Noise());
            foreach (long t in run.NoiseEventsPs)
            {
                sim.Schedule(SimTime.FromPicoseconds(t), noise);
            }
        }
        sim.Run(SimTime.FromPicoseconds(100_000_000));
        return (trace, shared.ReadQword(program.AddressOf("shared_counter")));
    }

    /// <summary>
    /// Slicing is invisible: events that touch nothing a guest can see (here, no-op events at
    /// random instants, which cut every vCPU's slices at different points) leave every TSC read,
    /// probe and shared-memory result exactly as it was, to the picosecond.
    /// </summary>
    [CiProperty(Arbitrary = [typeof(SlicedRunArbitrary)], MaxTest = 60)]
    public bool Unrelated_events_do_not_change_what_guests_observe(SlicedRun run)
    {
        var quiet = Run(run, withNoise: false);
        var noisy = Run(run, withNoise: true);
        return quiet.Trace.Reads.SequenceEqual(noisy.Trace.Reads)
            && quiet.Trace.Probes.SequenceEqual(noisy.Trace.Probes)
            && quiet.Counter == noisy.Counter
            && quiet.Trace.Reads.Count > 0;
    }
}

using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Properties;

/// <summary>
/// A random program over rax..r11 (ALU, shifts, multiplies, private loads and stores, pushes and
/// pops, a counted loop, work) with a probe of every register after each body instruction, run
/// under a periodic APIC timer of a random period whose handler saves what it touches.
/// </summary>
public sealed record InterruptedProgram(IReadOnlyList<string> Body, int Loops, long PeriodBusCycles)
{
    private static readonly string[] Probed = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "rsp"];

    public string Source(bool timer) => $"""
        section .data
        idt:    dq handler
        slot:   dq 0x1234
        section .text
        start:  lidt [idt - 256]
                mov rcx, 0x83E
                mov rax, 0xB
                mov rdx, 0
                wrmsr
                mov rcx, 0x832
                mov rax, {(timer ? 0x20020 : 0x30020)}
                wrmsr
                mov rcx, 0x838
                mov rax, {PeriodBusCycles}
                wrmsr
                mov rax, 0
                mov rcx, 0
                mov rdx, 0
                mov r15, {Loops}
                sti
        top:
        {string.Join("\n", Body.Select(b => b + "\n" + string.Join("\n", Probed.Select(r => "probe " + r))))}
                dec r15
                jnz top
                cli
                hlt
        handler: push rax
                push rcx
                push rdx
                mov rcx, 0x80B
                mov rax, 0
                mov rdx, 0
                wrmsr
                add rax, 12345
                cmp rax, 0
                pop rdx
                pop rcx
                pop rax
                iretq
        """;

    public override string ToString() => $"period {PeriodBusCycles}, loops {Loops}:\n  " + string.Join("\n  ", Body);
}

public static class InterruptedProgramArbitrary
{
    private static readonly string[] Regs = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11"];

    private static Gen<string> Instruction()
    {
        Gen<string> reg = Gen.Elements(Regs);
        return Gen.OneOf(
            from op in Gen.Elements("add", "sub", "and", "or", "xor", "imul", "mov") from a in reg from b in reg select $"{op} {a}, {b}",
            from op in Gen.Elements("add", "sub", "xor", "mov", "cmp") from a in reg from k in Gen.Choose(-1000, 1000) select $"{op} {a}, {k}",
            from op in Gen.Elements("shl", "shr", "sar") from a in reg from k in Gen.Choose(0, 63) select $"{op} {a}, {k}",
            from op in Gen.Elements("inc", "dec", "neg", "not") from a in reg select $"{op} {a}",
            from a in reg select $"mov [slot], {a}",
            from a in reg select $"add {a}, [slot]",
            from a in reg from b in reg select $"push {a}\npop {b}",
            from n in Gen.Choose(1, 5_000) select $"work {n}cycles",
            from a in reg from b in reg select $"cmp {a}, {b}\nmov r12, 0\njb +skip\nmov r12, 1",
            Gen.Constant("lfence"));
    }

    public static Arbitrary<InterruptedProgram> Programs() =>
        (from body in Instruction().Select(s => s.Replace("+skip", "SKIP", StringComparison.Ordinal)).ListOf()
         from loops in Gen.Choose(1, 20)
         from period in Gen.Choose(100, 5_000)
         select new InterruptedProgram(Number(body.Take(25).ToList()), loops, period)).ToArbitrary();

    // Gives each conditional skip its own label, right after its 'mov r12, 1'.
    private static List<string> Number(List<string> body)
    {
        for (int i = 0; i < body.Count; i++)
        {
            if (body[i].Contains("SKIP", StringComparison.Ordinal))
            {
                body[i] = body[i].Replace("SKIP", $"skip{i}", StringComparison.Ordinal) + $"\nskip{i}:";
            }
        }
        return body;
    }
}

public class InterruptProperties
{
    private sealed class Probes : IExecutionObserver
    {
        public List<long> Values { get; } = [];
        public void OnTscRead(Vcpu vcpu, SimTime at, TscValue value, bool exited, long cycles) { }
        public void OnProbe(Vcpu vcpu, SimTime at, int line, long value) => Values.Add(value);
        public void OnFault(Vcpu vcpu, GuestFault fault) => throw new InvalidOperationException(fault.ToString());
        public void OnClockRead(Vcpu vcpu, SimTime at, long nanoseconds, long cycles, int exits) { }
    }

    private static (List<long> Probes, Vcpu Vcpu) Run(InterruptedProgram p, bool timer)
    {
        var sim = new Simulator(1);
        var host = new Host(new HostConfig { Id = "h", Cpu = CpuPresets.IntelSkylake, Frequency = Frequency.FromMegahertz(2_000), CoresPerSocket = 2 }, sim);
        var probes = new Probes();
        var vcpu = new Vcpu(new GuestExecutor(sim), "v0", Assembler.Assemble(p.Source(timer)), host.Cores[0], new NativePlatform(), observer: probes);
        vcpu.Start(SimTime.Zero);
        sim.Run(SimTime.FromDuration(Duration.FromSeconds(1)));
        return (probes.Values, vcpu);
    }

    /// <summary>
    /// Interrupts never change architectural results: the value of every register after every
    /// body instruction (probes in program order), the final registers and flags are the same
    /// whether or not the timer interrupts the program (its LVT masked in the reference run).
    /// </summary>
    [CiProperty(Arbitrary = [typeof(InterruptedProgramArbitrary)], MaxTest = 80)]
    public Property Interrupts_never_change_architectural_results(InterruptedProgram p)
    {
        var (quiet, q) = Run(p, timer: false);
        var (loud, l) = Run(p, timer: true);
        CpuState a = q.State, b = l.State;
        bool same = quiet.SequenceEqual(loud) && a.Flags == b.Flags && a.Rip == b.Rip
            && Enumerable.Range(0, 16).All(r => q.Register(r) == l.Register(r));
        return same.Label($"{p}\ninterrupts delivered: {l.InterruptsDelivered(InterruptSource.LapicTimer)}")
            .And(q.InterruptsDelivered(InterruptSource.LapicTimer) == 0)
            .And(q.Halted && l.Halted);
    }

    /// <summary>The property is not vacuous: over a long enough program interrupts do arrive.</summary>
    [Fact]
    public void A_short_period_interrupts_a_long_program()
    {
        var p = new InterruptedProgram(["work 5000cycles", "add rax, 1"], 20, 100);
        var (_, l) = Run(p, timer: true);
        Assert.True(l.InterruptsDelivered(InterruptSource.LapicTimer) > 10);
    }
}

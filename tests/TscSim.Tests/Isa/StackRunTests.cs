using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Tests.Isa;

/// <summary>
/// The interpreter runs a run of register pushes or pops (GuestProgram.StackRuns) in one step;
/// it must be indistinguishable from running them one by one: same values, same stack, same
/// cycles, and a run cut by the engine's next event stops after exactly the instructions that
/// start before it.
/// </summary>
public class StackRunTests
{
    // intel-nehalem at 2 GHz (500 ps a cycle): mov 1 cycle (Alu), push 1 (Store), pop 4 (Load), hlt 1 (Nop).
    private const string Program = """
            mov rax, 11
            mov rbx, 22
            mov rcx, 33
            mov rdx, 44
            mov rsi, 55
            mov rbp, 66
            mov r8, 77
            mov r9, 88
            push rax
            push rbx
            push rcx
            push rdx
            push rsi
            push rbp
            push r8
            push r9
            pop r15
            pop r14
            pop r13
            pop r12
            pop r11
            pop r10
            pop rdi
            pop rax
            hlt
        """;

    /// <summary>The cycle at which each of the 24 instructions before hlt starts.</summary>
    private static readonly long[] Starts = [.. Enumerable.Range(0, 24).Select(j => j < 8 ? j : j < 16 ? j : 16 + (4L * (j - 16)))];

    private static void AssertFinalState(GuestRig rig)
    {
        var v = rig.Vcpu;
        Assert.Equal([88L, 77, 66, 55, 44, 33, 22, 11],
            [v.Register(Registers.R15), v.Register(Registers.R14), v.Register(Registers.R13), v.Register(Registers.R12),
             v.Register(Registers.R11), v.Register(Registers.R10), v.Register(Registers.Rdi), v.Register(Registers.Rax)]);
        Assert.Equal(GuestAddressMap.StackTop, v.Register(Registers.Rsp));
        Assert.Equal(16 + (8 * 4) + 1, v.GuestCycles); // 8 movs, 8 pushes, 8 pops, hlt
        Assert.Equal(25, v.Instructions);
        for (int slot = 1; slot <= 8; slot++)
        {
            // Push j (from 0) wrote register j's value at StackTop − 8 (j + 1).
            Assert.Equal(11L * slot, v.ReadPrivateQword(GuestAddressMap.StackTop - (8L * slot)));
        }
    }

    [Fact]
    public void A_push_and_pop_run_moves_every_value_in_order()
    {
        Assert.Equal(8, new GuestRig(Program).Program.StackRuns[8]);
        Assert.Equal(8, new GuestRig(Program).Program.StackRuns[16]);
        AssertFinalState(new GuestRig(Program).Run());
    }

    [Fact]
    public void A_run_cut_by_the_next_event_stops_after_the_instructions_that_start_before_it()
    {
        // Run to every instant around the runs, then to the end: an instruction starting at cycle
        // S runs by instant T iff 500 S <= T (the budget is the first cycle at or after T + 1 ps).
        for (long cut = 3_000; cut <= 500 * 46; cut += 250)
        {
            var rig = new GuestRig(Program);
            rig.Run(Duration.FromPicoseconds(cut));
            long expected = Starts.Count(s => 500 * s <= cut);
            Assert.True(expected == rig.Vcpu.Instructions, $"cut at {cut} ps: {rig.Vcpu.Instructions} instructions, expected {expected}");
            rig.Run();
            AssertFinalState(rig);
        }
    }
}

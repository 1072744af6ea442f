using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Tests.Isa;

public class ExecutionTests
{
    private static Duration Ms(long ms) => Duration.FromMilliseconds(ms);

    [Fact]
    public void A_loop_of_known_mix_costs_exactly_the_hand_computed_cycles_and_picoseconds()
    {
        // intel-nehalem at 3 GHz: mov 1, then 10 x (add 1 + imul 3 + dec 1 + jne 1) = 60, then hlt 1.
        // 62 cycles = 62 x 10^15 / (3 x 10^12 mHz) = 20,666.67 ps -> 20,666 ps.
        const string program = """
                mov rcx, 10
            loop:
                add rax, rcx
                imul rbx, rax
                dec rcx
                jne loop
                hlt
            """;
        var rig = new GuestRig(program, mhz: 3_000).Run();
        Assert.Equal(62, rig.Vcpu.GuestCycles);
        Assert.Equal(42, rig.Vcpu.Instructions);
        Assert.Equal(20_666, rig.Vcpu.LocalTime.Picoseconds);
        Assert.Equal(55, rig.Vcpu.Register(Registers.Rax)); // 10 + 9 + ... + 1
        Assert.Equal(0, rig.Vcpu.ExitCycles);
    }

    [Fact]
    public void The_same_loop_costs_more_cycles_on_a_cpu_with_slower_instructions()
    {
        // amd-k8 prices imul at 5 cycles: 1 + 10 x (1 + 5 + 1 + 1) + 1 = 82.
        const string program = "mov rcx, 10\nloop: add rax, rcx\nimul rbx, rax\ndec rcx\njne loop\nhlt";
        Assert.Equal(82, new GuestRig(program, cpu: CpuPresets.AmdK8).Run().Vcpu.GuestCycles);
    }

    [Fact]
    public void Work_split_by_a_frequency_change_finishes_at_the_exact_instant()
    {
        // 4,000,000 cycles at 2 GHz would take 2 ms; the core drops to 1 GHz at 1 ms, so the
        // remaining 2,000,000 cycles take 2 ms more: RDTSC issues at exactly 3 ms, and the
        // constant 2 GHz TSC then reads 6,000,000.
        var rig = new GuestRig("work 4000000cycles\nrdtsc\nhlt");
        rig.Host.ScheduleFrequencyChange(SimTime.FromDuration(Ms(1)), 0, Frequency.FromMegahertz(1_000));
        rig.Run();
        var read = Assert.Single(rig.Log.TscReads);
        Assert.Equal(3_000_000_000L, read.TimePs);
        Assert.Equal(6_000_000UL, read.Value);
        Assert.False(read.Exited);
    }

    [Fact]
    public void Slicing_is_invisible_running_in_pieces_equals_running_at_once()
    {
        // At 3 GHz a cycle is 333.33 ps: slices that cut anywhere must carry the sub-picosecond phase.
        const string program = "loop: rdtsc\nwork 7cycles\nadd rbx, rax\njmp loop";
        var whole = new GuestRig(program, mhz: 3_000).Run(Ms(2));
        var pieces = new GuestRig(program, mhz: 3_000);
        for (int k = 1; k <= 2_000; k++)
        {
            pieces.Run(Duration.FromMicroseconds(k));
        }
        Assert.Equal(whole.Vcpu.Instructions, pieces.Vcpu.Instructions);
        Assert.Equal(whole.Vcpu.Register(Registers.Rbx), pieces.Vcpu.Register(Registers.Rbx));
        Assert.Equal(whole.Log.TscReads, pieces.Log.TscReads);
        Assert.True(pieces.Vcpu.Slices > 1_000);
    }

    [Fact]
    public void A_shared_store_is_seen_exactly_by_loads_after_its_instant_and_not_before()
    {
        // Writer (vCPU 0): cmp 1 + jne 1 + work 1000cycles -> stores at cycle 1,002 (501 ns).
        // Reader (vCPU 1): cmp 1 + jne 1 + work 500cycles -> loads at 251 ns (sees 0), then at ~1 us (sees 1).
        // Each probe follows its load (4 cycles on Nehalem): the first probe is at 506 cycles = 253 ns.
        const string program = """
                cmp rdi, 0
                jne reader
                work 1000cycles
                mov qword [x], 1
                hlt
            reader:
                work 500cycles
                mov rax, [x]
                probe rax
                work 1000cycles
                mov rbx, [x]
                probe rbx
                hlt
            section .shared
            x: dq 0
            """;
        var rig = new GuestRig(program, vcpus: 2).Run();
        Assert.Equal([0L, 1L], rig.Log.Probes.Select(p => p.Value));
        Assert.Equal(253_000L, rig.Log.Probes[0].TimePs);
    }

    private const string Spinlock = """
                mov r8, 200
            again:
                mov rax, 0
                mov rbx, 1
                lock cmpxchg [lock], rbx
                jne again_pause
                mov rcx, [counter]
                work 50cycles
                add rcx, 1
                mov [counter], rcx
                mov qword [lock], 0
                dec r8
                jne again
                hlt
            again_pause:
                pause
                jmp again
            section .shared
            lock: dq 0
            counter: dq 0
            """;

    [Fact]
    public void Lock_cmpxchg_gives_mutual_exclusion_across_vcpus_on_shared_memory()
    {
        var rig = new GuestRig(Spinlock, vcpus: 2).Run();
        Assert.All(rig.Vcpus, v => Assert.Null(v.Fault));
        Assert.Equal(400, rig.Shared64("counter"));
        Assert.Equal(0, rig.Shared64("lock"));
    }

    [Fact]
    public void Without_the_lock_concurrent_increments_are_lost_so_the_ordering_is_real()
    {
        string unlocked = Spinlock.Replace("lock cmpxchg [lock], rbx", "cmp rax, rax", StringComparison.Ordinal);
        var rig = new GuestRig(unlocked, vcpus: 2).Run();
        Assert.InRange(rig.Shared64("counter"), 200, 399);
    }

    [Fact]
    public void Two_cmpxchg_at_the_same_instant_have_exactly_one_winner()
    {
        const string program = """
                mov rax, 0
                mov rbx, 1
                lock cmpxchg [flag], rbx
                je won
                mov r9, 0
                hlt
            won:
                mov r9, 1
                hlt
            section .shared
            flag: dq 0
            """;
        var rig = new GuestRig(program, vcpus: 2).Run();
        Assert.Equal([1L, 0L], rig.Vcpus.Select(v => v.Register(9))); // vCPU 0 was scheduled first
        Assert.Equal(1, rig.Shared64("flag"));
    }

    [Fact]
    public void A_fault_stops_its_vcpu_and_not_the_run()
    {
        const string program = """
                cmp rdi, 0
                jne survivor
                mov rbx, 0
                div rbx
            survivor:
                work 100000cycles
                mov r10, 77
                hlt
            """;
        var rig = new GuestRig(program, vcpus: 2).Run();
        Assert.Equal(GuestFaultKind.DivideError, rig.Vcpus[0].Fault!.Kind);
        Assert.Equal(4, rig.Vcpus[0].Fault!.Line);
        Assert.Null(rig.Vcpus[1].Fault);
        Assert.Equal(77, rig.Vcpus[1].Register(10));
        Assert.Single(rig.Log.Faults);
    }

    [Fact]
    public void Tsc_reads_reach_the_observer_in_exact_global_time_order()
    {
        const string program = """
                cmp rdi, 0
                je fast
            slow: rdtsc
                work 333cycles
                jmp slow
            fast: rdtsc
                work 100cycles
                jmp fast
            """;
        var rig = new GuestRig(program, vcpus: 2).Run(Duration.FromMicroseconds(100));
        var times = rig.Log.TscReads.Select(r => r.TimePs).ToList();
        Assert.True(times.Count > 500);
        Assert.Equal(times.Order().ToList(), times);
        Assert.Contains(rig.Log.TscReads, r => r.Vcpu == "vcpu0");
        Assert.Contains(rig.Log.TscReads, r => r.Vcpu == "vcpu1");
    }

    [Fact]
    public void A_private_loop_runs_ahead_without_queue_round_trips()
    {
        // One vCPU, nothing else pending: 1 ms of an ALU loop is one slice per Run call.
        var bench = new InterpreterBench(InterpreterBench.AluLoop);
        bench.Run(Ms(1));
        Assert.Equal(1, bench.Vcpu.Slices);
        // 1 cycle each at 2 GHz: instructions issued at 0, 0.5 ns, ..., 1 ms inclusive (a run
        // executes what happens at its limit) = 2,000,001.
        Assert.Equal(2_000_001, bench.Vcpu.Instructions);
    }

    [Fact]
    public void Vcpus_in_private_loops_run_ahead_of_each_other_instead_of_leapfrogging()
    {
        // Private instructions cannot interact, so another vCPU's pending resume does not bound
        // them: each vCPU runs its 1 ms in one slice (per Run call), not one instruction per slice.
        var rig = new GuestRig("loop: work 1000cycles\nadd rax, 1\njmp loop", vcpus: 3).Run(Ms(1));
        Assert.All(rig.Vcpus, v => Assert.Equal(1, v.Slices));
        Assert.All(rig.Vcpus, v => Assert.Equal(rig.Vcpus[0].Instructions, v.Instructions));
    }

    [Fact]
    public void The_interpreter_allocates_nothing_per_instruction()
    {
        foreach (string source in new[] { InterpreterBench.AluLoop, InterpreterBench.RdtscLoop })
        {
            var bench = new InterpreterBench(source);
            bench.Run(Ms(2)); // JIT and first-slice set-up
            long before = GC.GetAllocatedBytesForCurrentThread();
            bench.Run(Ms(5));
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated == 0, $"{allocated} bytes allocated over {bench.Vcpu.Instructions} instructions");
        }
        // Two vCPUs ping-ponging on shared memory: every access is a queue round trip, still allocation-free.
        var rig = new GuestRig(Spinlock.Replace("mov r8, 200", "mov r8, 100000000", StringComparison.Ordinal), vcpus: 2);
        rig.Run(Duration.FromMicroseconds(200));
        long before2 = GC.GetAllocatedBytesForCurrentThread();
        rig.Run(Ms(2));
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before2);
        Assert.True(rig.Vcpus[0].Slices > 1_000);
    }

    [Fact]
    public void A_vcpu_cannot_be_started_twice()
    {
        var rig = new GuestRig("hlt");
        rig.Vcpu.Start(SimTime.Zero);
        Assert.Throws<InvalidOperationException>(() => rig.Vcpu.Start(SimTime.Zero));
    }
}

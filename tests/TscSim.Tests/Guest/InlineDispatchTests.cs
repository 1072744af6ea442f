using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Isa;
using TscSim.Core.Time;
using TscSim.Tests.Isa;

namespace TscSim.Tests.Guest;

/// <summary>
/// The executor's inline dispatch (issue 19): a vCPU resume that precedes every queued event
/// runs without a queue round trip, and changes nothing else: the same fingerprint (every
/// event's time, kind and subject, every TSC read) and the same results as the queue path.
/// </summary>
public class InlineDispatchTests
{
    /// <summary>check_tsc_warp's shape: a spinlock, a TSC read and a shared store under it, on every vCPU.</summary>
    private const string Contended = """
            mov rbx, 1
        again:
            xor rax, rax
            lock cmpxchg [lock], rbx
            je locked
            pause
            jmp again
        locked:
            mov r8, [last]
            rdtsc
            shl rdx, 32
            or rax, rdx
            mov [last], rax
            cmp r8, rax
            jbe ok
            mov r9, [warps]
            inc r9
            mov [warps], r9
        ok:
            mov rax, [count]
            add rax, 1
            mov [count], rax
            mov qword [lock], 0
            jmp again
        section .shared
        lock:   dq 0
        last:   dq 0
        warps:  dq 0
        count:  dq 0
        """;

    private static (ulong Fingerprint, long Events, long Inline, long Count, List<(string, long, ulong, bool)> Reads, long[] Instructions)
        Run(string source, int vcpus, bool inline, Action<GuestRig>? setup = null)
    {
        var rig = new GuestRig(source, vcpus);
        rig.Executor.InlineDispatch = inline;
        setup?.Invoke(rig);
        rig.Run(Duration.FromMicroseconds(200));
        return (rig.Sim.Fingerprint.Value, rig.Sim.ExecutedEvents, rig.Sim.InlineEvents, rig.Shared64("count"),
            rig.Log.TscReads, rig.Vcpus.Select(v => v.Instructions).ToArray());
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(5)]
    public void Contended_vcpus_give_the_same_fingerprint_and_results_with_and_without_inline_dispatch(int vcpus)
    {
        var queued = Run(Contended, vcpus, inline: false);
        var inline = Run(Contended, vcpus, inline: true);
        Assert.Equal(queued.Fingerprint, inline.Fingerprint);
        Assert.Equal(queued.Count, inline.Count);
        Assert.Equal(queued.Reads, inline.Reads);
        Assert.Equal(queued.Instructions, inline.Instructions);
        Assert.True(queued.Count > 100); // the lock really changed hands many times
        // The same events, folded the same way; nearly all of them inline.
        Assert.Equal(queued.Events, inline.Events);
        Assert.Equal(0, queued.Inline);
        long queueEvents = inline.Events - inline.Inline;
        Assert.True(queueEvents <= 3, $"{queueEvents} queue events");
        Assert.True(inline.Inline > 1_000);
    }

    [Fact]
    public void Engine_events_at_the_same_picosecond_as_a_resume_still_run_before_it()
    {
        // Frequency changes on both cores at instants where the contended vCPUs are resuming:
        // a hardware-band event ties with a resume at one picosecond, and the resume must not
        // overtake it (the tie goes through the queue). The resume instants are taken from the
        // queue path's own TSC reads, so the ties are exact.
        var probe = Run(Contended, 2, inline: false);
        long[] ties = probe.Reads.Where((_, n) => n % 97 == 13).Take(20).Select(r => r.Item2).ToArray();
        void Changes(GuestRig rig)
        {
            for (int n = 0; n < ties.Length; n++)
            {
                long mhz = n % 2 == 0 ? 1_500 : 2_000;
                rig.Host.ScheduleFrequencyChange(SimTime.FromPicoseconds(ties[n]), n % 2, Frequency.FromMegahertz(mhz));
            }
        }
        var queued = Run(Contended, 2, inline: false, Changes);
        var inline = Run(Contended, 2, inline: true, Changes);
        Assert.Equal(queued.Fingerprint, inline.Fingerprint);
        Assert.Equal(queued.Reads, inline.Reads);
        Assert.NotEqual(probe.Fingerprint, queued.Fingerprint); // the changes did change the run
    }

    [Fact]
    public void Inline_dispatch_allocates_nothing()
    {
        var rig = new GuestRig(Contended, vcpus: 3);
        rig.Vcpus.ForEach(v => v.Observer = null); // the test log allocates; the simulator must not
        rig.Run(Duration.FromMicroseconds(50)); // warm-up: JIT, first slices, array growth
        long inlineBefore = rig.Sim.InlineEvents;
        long before = GC.GetAllocatedBytesForCurrentThread();
        rig.Sim.Run(SimTime.FromDuration(Duration.FromMicroseconds(250)));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(rig.Sim.InlineEvents - inlineBefore > 1_000);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Execute_inline_is_refused_outside_a_running_handler_and_before_now()
    {
        var sim = new Simulator(1);
        var kind = sim.RegisterKind("k", EventBand.Guest, new NoHandler());
        Assert.Throws<InvalidOperationException>(() => sim.ExecuteInline(SimTime.Zero, kind, 0));
    }

    private sealed class NoHandler : IEventHandler
    {
        public void OnEvent(Simulator sim, in SimEvent e)
        {
        }
    }
}

using TscSim.Core.Engine;
using TscSim.Core.Time;

namespace TscSim.Tests.Engine;

public class SimulatorTests
{
    private static SimTime Ps(long ps) => SimTime.FromPicoseconds(ps);

    [Fact]
    public void Events_run_in_time_order_whatever_the_scheduling_order()
    {
        var sim = new Simulator();
        var rec = new Recorder();
        var k = sim.RegisterKind("k", EventBand.Guest, rec);
        long[] times = [50, 10, 40, 20, 30, 10_000, 1, 999];
        for (int i = 0; i < times.Length; i++)
        {
            sim.Schedule(Ps(times[i]), k, subject: i);
        }
        Assert.Equal(RunOutcome.QueueEmpty, sim.RunToCompletion());
        Assert.Equal([1L, 10, 20, 30, 40, 50, 999, 10_000], rec.Log.Select(e => e.Time));
        Assert.Equal(Ps(10_000), sim.Now);
        Assert.Equal(8, sim.ExecutedEvents);
    }

    [Fact]
    public void Same_instant_ties_go_by_band_then_insertion_order()
    {
        var sim = new Simulator();
        var rec = new Recorder();
        var guest = sim.RegisterKind("guest", EventBand.Guest, rec);
        var hw = sim.RegisterKind("hw", EventBand.Hardware, rec);
        var ctl = sim.RegisterKind("ctl", EventBand.Control, rec);
        var hv = sim.RegisterKind("hv", EventBand.Hypervisor, rec);
        var meas = sim.RegisterKind("meas", EventBand.Measurement, rec);
        sim.Schedule(Ps(100), guest, 1);
        sim.Schedule(Ps(100), ctl, 1);
        sim.Schedule(Ps(100), meas, 1);
        sim.Schedule(Ps(100), guest, 2);
        sim.Schedule(Ps(100), hv, 1);
        sim.Schedule(Ps(100), hw, 1);
        sim.Schedule(Ps(100), guest, 3);
        sim.Schedule(Ps(100), hw, 2);
        sim.RunToCompletion();
        Assert.Equal(
            ["hw1", "hw2", "hv1", "guest1", "guest2", "guest3", "meas1", "ctl1"],
            rec.Log.Select(e => e.Kind + e.Subject));
    }

    [Fact]
    public void A_frequency_change_applies_before_a_read_at_the_same_picosecond()
    {
        // The reason for bands: a read scheduled first still sees the change scheduled later.
        var sim = new Simulator();
        long rate = 2;
        long seen = 0;
        var change = sim.RegisterKind("cpufreq", EventBand.Hardware, new Recorder { Then = (_, _) => rate = 3 });
        var read = sim.RegisterKind("read", EventBand.Guest, new Recorder { Then = (_, _) => seen = rate });
        sim.Schedule(Ps(5_000), read);
        sim.Schedule(Ps(5_000), change);
        sim.RunToCompletion();
        Assert.Equal(3, seen);
    }

    [Fact]
    public void Payload_and_subject_reach_the_handler()
    {
        var sim = new Simulator();
        var rec = new Recorder();
        var k = sim.RegisterKind("k", EventBand.Guest, rec);
        sim.Schedule(Ps(7), k, subject: -3, payload: long.MinValue);
        sim.RunToCompletion();
        Assert.Equal((7L, "k", -3, long.MinValue), rec.Log.Single());
    }

    [Fact]
    public void Cancelled_events_never_run_and_stale_handles_do_nothing()
    {
        var sim = new Simulator();
        var rec = new Recorder();
        var k = sim.RegisterKind("k", EventBand.Guest, rec);
        var a = sim.Schedule(Ps(10), k, 1);
        var b = sim.Schedule(Ps(20), k, 2);
        var c = sim.Schedule(Ps(30), k, 3);
        Assert.Equal(3, sim.PendingEvents);
        Assert.True(sim.Cancel(b));
        Assert.False(sim.IsPending(b));
        Assert.False(sim.Cancel(b)); // already cancelled
        Assert.Equal(2, sim.PendingEvents);
        sim.RunToCompletion();
        Assert.Equal([1, 3], rec.Log.Select(e => e.Subject));
        Assert.False(sim.Cancel(a)); // already ran
        Assert.False(sim.Cancel(c));
        Assert.False(sim.Cancel(default));
        Assert.Equal(2, sim.ExecutedEvents);

        // The slot of a cancelled or run event is reused; the old handle must not cancel the new event.
        var d = sim.Schedule(Ps(40), k, 4);
        Assert.False(sim.Cancel(b));
        Assert.False(sim.Cancel(a));
        Assert.True(sim.IsPending(d));
        sim.RunToCompletion();
        Assert.Equal([1, 3, 4], rec.Log.Select(e => e.Subject));
    }

    [Fact]
    public void A_handler_can_cancel_an_event_due_at_the_same_instant()
    {
        var sim = new Simulator();
        var rec = new Recorder();
        var k = sim.RegisterKind("k", EventBand.Guest, rec);
        EventHandle victim = default;
        var killer = sim.RegisterKind("killer", EventBand.Hardware, new Recorder { Then = (s, _) => Assert.True(s.Cancel(victim)) });
        victim = sim.Schedule(Ps(10), k, 1);
        sim.Schedule(Ps(10), killer);
        sim.RunToCompletion();
        Assert.Empty(rec.Log);
        Assert.Equal(1, sim.ExecutedEvents);
    }

    [Fact]
    public void Mass_cancellation_compacts_the_queue_and_keeps_order()
    {
        var sim = new Simulator(initialCapacity: 4);
        var rec = new Recorder();
        var k = sim.RegisterKind("k", EventBand.Guest, rec);
        var handles = new List<EventHandle>();
        for (int i = 0; i < 5_000; i++)
        {
            handles.Add(sim.Schedule(Ps(10_000 - i), k, i));
        }
        for (int i = 0; i < 5_000; i++)
        {
            if (i % 5 != 0)
            {
                Assert.True(sim.Cancel(handles[i]));
            }
        }
        Assert.Equal(1_000, sim.PendingEvents);
        sim.RunToCompletion();
        Assert.Equal(1_000, rec.Log.Count);
        Assert.Equal(rec.Log.OrderBy(e => e.Time).ToList(), rec.Log);
        Assert.All(rec.Log, e => Assert.Equal(0, e.Subject % 5));
    }

    [Fact]
    public void Run_until_stops_at_the_limit_runs_events_at_it_and_sets_the_clock()
    {
        var sim = new Simulator();
        var rec = new Recorder();
        var k = sim.RegisterKind("k", EventBand.Guest, rec);
        sim.Schedule(Ps(100), k, 1);
        sim.Schedule(Ps(200), k, 2);
        sim.Schedule(Ps(201), k, 3);
        Assert.Equal(RunOutcome.ReachedTime, sim.Run(Ps(200)));
        Assert.Equal([1, 2], rec.Log.Select(e => e.Subject));
        Assert.Equal(Ps(200), sim.Now);
        Assert.Equal(Ps(201), sim.NextEventTime);
        Assert.Equal(RunOutcome.ReachedTime, sim.Run(Ps(1_000)));
        Assert.Equal(Ps(1_000), sim.Now);
        Assert.Null(sim.NextEventTime);
        Assert.Throws<ArgumentOutOfRangeException>(() => sim.Run(Ps(999)));
    }

    [Fact]
    public void Stop_and_event_budget_end_a_run_early()
    {
        var sim = new Simulator();
        var rec = new Recorder();
        var k = sim.RegisterKind("k", EventBand.Guest, rec);
        var stopper = sim.RegisterKind("stop", EventBand.Control, new Recorder { Then = (s, _) => s.Stop() });
        for (int i = 1; i <= 5; i++)
        {
            sim.Schedule(Ps(i * 10), k, i);
        }
        sim.Schedule(Ps(20), stopper);
        Assert.Equal(RunOutcome.Stopped, sim.Run(Ps(1_000)));
        Assert.Equal(Ps(20), sim.Now);
        Assert.Equal(RunOutcome.BudgetExhausted, sim.Run(Ps(1_000), maxEvents: 2));
        Assert.Equal([1, 2, 3, 4], rec.Log.Select(e => e.Subject));
        Assert.Equal(Ps(40), sim.Now);
        Assert.Equal(RunOutcome.QueueEmpty, sim.RunToCompletion());
        Assert.Equal(5, rec.Log.Count);
    }

    [Fact]
    public void Scheduling_in_the_past_or_with_a_foreign_kind_is_a_bug_and_throws()
    {
        var sim = new Simulator();
        var rec = new Recorder();
        var k = sim.RegisterKind("k", EventBand.Guest, rec);
        sim.Schedule(Ps(100), k);
        sim.RunToCompletion();
        Assert.Throws<ArgumentOutOfRangeException>(() => sim.Schedule(Ps(99), k));
        Assert.Throws<ArgumentException>(() => sim.Schedule(Ps(200), default));
        Assert.Throws<InvalidOperationException>(() => sim.RegisterKind("k", EventBand.Guest, rec));
        Assert.Throws<ArgumentOutOfRangeException>(() => sim.RegisterKind("bad-band", (EventBand)99, rec));
        // Scheduling at the current instant is allowed: it runs at the same picosecond.
        sim.Schedule(sim.Now, k, 7);
        sim.RunToCompletion();
        Assert.Equal((100L, "k", 7, 0L), rec.Log[^1]);
    }

    [Fact]
    public void Run_is_not_reentrant()
    {
        var sim = new Simulator();
        Exception? caught = null;
        var k = sim.RegisterKind("k", EventBand.Guest, new Recorder { Then = (s, _) => caught = Record.Exception(() => s.RunToCompletion()) });
        sim.Schedule(Ps(1), k);
        sim.RunToCompletion();
        Assert.IsType<InvalidOperationException>(caught);
    }

    [Fact]
    public void A_handler_sees_the_next_event_time_while_its_own_root_is_vacant()
    {
        var sim = new Simulator();
        SimTime? seen = null;
        var rec = new Recorder();
        var other = sim.RegisterKind("other", EventBand.Guest, rec);
        var k = sim.RegisterKind("k", EventBand.Guest, new Recorder { Then = (s, _) => seen = s.NextEventTime });
        sim.Schedule(Ps(10), k);
        sim.Schedule(Ps(30), other, 1);
        sim.Schedule(Ps(20), other, 2);
        sim.RunToCompletion();
        Assert.Equal(Ps(20), seen);
        Assert.Equal([2, 1], rec.Log.Select(e => e.Subject));
    }

    [Fact]
    public void Handlers_scheduling_at_now_run_in_the_same_instant_after_the_current_event()
    {
        var sim = new Simulator();
        var rec = new Recorder();
        EventKind follow = default;
        var first = sim.RegisterKind("first", EventBand.Guest, new Recorder { Then = (s, e) => s.Schedule(s.Now, follow, 9) });
        follow = sim.RegisterKind("follow", EventBand.Guest, rec);
        sim.Schedule(Ps(5), first);
        sim.Schedule(Ps(6), follow, 1);
        sim.RunToCompletion();
        Assert.Equal([(5L, 9), (6L, 1)], rec.Log.Select(e => (e.Time, e.Subject)));
    }

    [Fact]
    public void Fingerprint_follows_its_documented_definition()
    {
        // Expected value computed independently (Python) from the definition in Fingerprint's docs.
        var sim = new Simulator();
        var tick = sim.RegisterKind("tick", EventBand.Guest, new Recorder());
        var freq = sim.RegisterKind("freq", EventBand.Hardware, new Recorder());
        Assert.Equal(Fingerprint.Empty, sim.Fingerprint);
        sim.Schedule(Ps(1_000), tick, 0, payload: 12345); // payload is not part of the fingerprint
        sim.Schedule(Ps(2_000), freq, 3);
        sim.RunToCompletion();
        Assert.Equal("5207a1b325a1bda9", sim.Fingerprint.ToString());
        Assert.Equal(sim.Fingerprint, Fingerprint.Parse("5207a1b325a1bda9"));
    }

    [Fact]
    public void Fingerprint_changes_with_time_kind_band_or_subject_and_not_with_registration_order()
    {
        static Fingerprint Run(long t, string name, EventBand band, int subject, bool registerExtraFirst)
        {
            var sim = new Simulator();
            if (registerExtraFirst)
            {
                sim.RegisterKind("extra", EventBand.Control, new Recorder());
            }
            var k = sim.RegisterKind(name, band, new Recorder());
            sim.Schedule(Ps(t), k, subject);
            sim.RunToCompletion();
            return sim.Fingerprint;
        }

        var baseline = Run(10, "a", EventBand.Guest, 1, false);
        Assert.Equal(baseline, Run(10, "a", EventBand.Guest, 1, true));
        Assert.NotEqual(baseline, Run(11, "a", EventBand.Guest, 1, false));
        Assert.NotEqual(baseline, Run(10, "b", EventBand.Guest, 1, false));
        Assert.NotEqual(baseline, Run(10, "a", EventBand.Hardware, 1, false));
        Assert.NotEqual(baseline, Run(10, "a", EventBand.Guest, 2, false));
    }

    [Fact]
    public void Hold_model_steady_state_allocates_nothing_per_event()
    {
        // Allocation is counted, not timed: GC.GetAllocatedBytesForCurrentThread is exact for this thread.
        var model = new HoldModel(pending: 1_000, seed: 3);
        model.Run(200_000); // reach the high-water mark of every array, and JIT the loop
        long before = GC.GetAllocatedBytesForCurrentThread();
        model.Run(500_000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal(700_000, model.Simulator.ExecutedEvents);
        Assert.Equal(1_000, model.Simulator.PendingEvents);
    }

    [Fact]
    public void Hold_model_is_deterministic_and_seed_sensitive()
    {
        static (Fingerprint, SimTime) Run(ulong seed)
        {
            var m = new HoldModel(pending: 100, seed: seed);
            m.Run(10_000);
            return (m.Simulator.Fingerprint, m.Simulator.Now);
        }
        Assert.Equal(Run(1), Run(1));
        Assert.NotEqual(Run(1).Item1, Run(2).Item1);
        // Mean increment 1 us: 10,000 events over 100 pending streams advance about 100 x 1 us.
        var now = Run(1).Item2;
        Assert.InRange(now.Picoseconds, 80_000_000L, 120_000_000L);
    }
}

public class SimulatorRenumberingTests
{
    /// <summary>
    /// A churning workload: every event schedules 0 to 2 events at now + {1, 2, 3} ps in any band
    /// (many same-instant ties) and sometimes cancels a pending one, chosen by a fixed LCG.
    /// </summary>
    private static List<(long Time, string Kind, int Subject, long Payload)> Churn(int initialCapacity, ulong? sequenceCap)
    {
        var sim = new Simulator(seed: 1, initialCapacity: initialCapacity);
        if (sequenceCap is ulong cap)
        {
            sim.CapSequencesForTesting(cap);
        }
        var rec = new Recorder();
        var kinds = Enum.GetValues<EventBand>().Select(b => sim.RegisterKind("k" + b, b, rec)).ToArray();
        ulong lcg = 12345;
        int next = 0;
        var handles = new List<EventHandle>();
        int Draw(int n)
        {
            lcg = unchecked((lcg * 6364136223846793005UL) + 1442695040888963407UL);
            return (int)((lcg >> 33) % (ulong)n);
        }
        void Spawn(Simulator s, int count)
        {
            for (int i = 0; i < count; i++)
            {
                handles.Add(s.ScheduleAfter(Duration.FromPicoseconds(1 + Draw(3)), kinds[Draw(kinds.Length)], next++));
            }
        }
        rec.Then = (s, _) =>
        {
            if (next < 20_000)
            {
                Spawn(s, Draw(3));
            }
            if (handles.Count > 0 && Draw(4) == 0)
            {
                s.Cancel(handles[Draw(handles.Count)]);
            }
        };
        Spawn(sim, 300);
        sim.RunToCompletion();
        return rec.Log;
    }

    [Fact]
    public void Renumbering_when_the_slot_table_grows_or_sequences_run_out_keeps_the_execution_order()
    {
        var reference = Churn(initialCapacity: 1 << 16, sequenceCap: null); // never renumbers
        Assert.True(reference.Count > 10_000);
        Assert.Equal(reference, Churn(initialCapacity: 1, sequenceCap: null)); // renumbers at every doubling
        Assert.Equal(reference, Churn(initialCapacity: 1 << 16, sequenceCap: 600)); // renumbers every few hundred events
        // And the reference itself is in (time, band, scheduling order) order.
        for (int i = 1; i < reference.Count; i++)
        {
            var (a, b) = (reference[i - 1], reference[i]);
            var (bandA, bandB) = (Enum.Parse<EventBand>(a.Kind[1..]), Enum.Parse<EventBand>(b.Kind[1..]));
            Assert.True(a.Time < b.Time || (a.Time == b.Time && (bandA < bandB || (bandA == bandB && a.Subject < b.Subject))));
        }
    }
}

public class SimulatorScopeTests
{
    private static SimTime Ps(long ps) => SimTime.FromPicoseconds(ps);

    [Fact]
    public void Next_event_in_scopes_sees_unscoped_events_and_its_own_scopes_only()
    {
        var sim = new Simulator(initialCapacity: 2);
        var rec = new Recorder();
        var global = sim.RegisterKind("global", EventBand.Hypervisor, rec);
        int vmA = sim.NewScope(), vmB = sim.NewScope(), host = sim.NewScope();
        EventKind a, b, h;
        using (sim.EnterScope(vmA))
        {
            a = sim.RegisterKind("a", EventBand.Guest, rec);
        }
        using (sim.EnterScope(vmB))
        {
            b = sim.RegisterKind("b", EventBand.Guest, rec);
        }
        using (sim.EnterScope(host))
        {
            h = sim.RegisterKind("h", EventBand.Hardware, rec);
        }
        sim.Schedule(Ps(100), b);
        var cancelled = sim.Schedule(Ps(150), a);
        sim.Schedule(Ps(300), a);
        sim.Schedule(Ps(400), h);
        sim.Schedule(Ps(500), global);

        Assert.Equal(Ps(100), sim.NextEventTime);
        Assert.Equal(Ps(100), sim.NextEventTimeIn(0, host)); // scope 0: every event
        Assert.Equal(Ps(150), sim.NextEventTimeIn(vmA, host));
        Assert.True(sim.Cancel(cancelled));
        Assert.Equal(Ps(300), sim.NextEventTimeIn(vmA, host));
        Assert.Equal(Ps(100), sim.NextEventTimeIn(vmB, 0));
        sim.Run(Ps(350));
        Assert.Equal(Ps(400), sim.NextEventTimeIn(vmA, host));
        Assert.Equal(Ps(500), sim.NextEventTimeIn(vmB, 0)); // the host's event is not vmB's
        sim.Run(Ps(450));
        Assert.Equal(Ps(500), sim.NextEventTimeIn(vmA, host));
        sim.RunToCompletion();
        Assert.Null(sim.NextEventTimeIn(vmA, host));
        Assert.Equal(["b", "a", "h", "global"], rec.Log.Select(e => e.Kind));
    }

    [Fact]
    public void Scopes_survive_growth_and_renumbering_and_change_no_order()
    {
        // The same churn with and without scoped kinds runs the same events in the same order,
        // and each scope's next time always matches a brute-force search of the pending events.
        static (List<(long, string, int, long)> Log, bool Consistent) Churn(bool scoped)
        {
            var sim = new Simulator(initialCapacity: 1);
            sim.CapSequencesForTesting(500);
            var rec = new Recorder();
            int[] scopes = [0, sim.NewScope(), sim.NewScope()];
            var kinds = new EventKind[3];
            for (int k = 0; k < 3; k++)
            {
                using (sim.EnterScope(scoped ? scopes[k] : 0))
                {
                    kinds[k] = sim.RegisterKind("k" + k, EventBand.Guest, rec);
                }
            }
            var pending = new List<(EventHandle Handle, long Time, int Kind)>();
            ulong lcg = 99;
            int Draw(int n)
            {
                lcg = unchecked((lcg * 6364136223846793005UL) + 1442695040888963407UL);
                return (int)((lcg >> 33) % (ulong)n);
            }
            bool consistent = true;
            rec.Then = (s, e) =>
            {
                pending.RemoveAll(p => !s.IsPending(p.Handle));
                for (int i = 1 + Draw(3); i > 0 && rec.Log.Count < 3_000; i--)
                {
                    int kind = Draw(3);
                    long t = s.Now.Picoseconds + 1 + Draw(50);
                    pending.Add((s.Schedule(Ps(t), kinds[kind], kind), t, kind));
                }
                for (int i = Draw(2); i > 0 && pending.Count > 0; i--)
                {
                    int victim = Draw(pending.Count);
                    s.Cancel(pending[victim].Handle);
                    pending.RemoveAt(victim);
                }
                if (scoped)
                {
                    for (int k = 1; k < 3; k++)
                    {
                        long expected = pending.Where(p => p.Kind == 0 || p.Kind == k).Select(p => p.Time).DefaultIfEmpty(long.MaxValue).Min();
                        long actual = s.NextEventTimeIn(scopes[k], 0)?.Picoseconds ?? long.MaxValue;
                        consistent &= expected == actual;
                    }
                }
            };
            for (int i = 0; i < 200; i++)
            {
                int kind = i % 3;
                pending.Add((sim.Schedule(Ps(1 + (i % 7)), kinds[kind], kind), 1 + (i % 7), kind));
            }
            sim.RunToCompletion();
            return (rec.Log, consistent);
        }
        var plain = Churn(scoped: false);
        var scoped = Churn(scoped: true);
        Assert.True(plain.Log.Count > 2_000, $"only {plain.Log.Count} events");
        Assert.Equal(plain.Log, scoped.Log);
        Assert.True(scoped.Consistent, "a scope's next time differed from a brute-force search");
    }
}

using TscSim.Core.Engine;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// Runs vCPUs on one <see cref="Simulator"/>. It keeps every vCPU's pending resume instant
/// itself and puts only the earliest one in the engine's queue (kind <c>vcpu.resume</c>,
/// <see cref="EventBand.Guest"/>, subject = vCPU id). So while a vCPU runs, the engine's next
/// event is never another vCPU: private instructions may run ahead of other vCPUs (they cannot
/// interact), and only sequenced instructions wait for them (<see cref="EarliestOtherResume"/>).
/// Without this, two vCPUs in private loops would leapfrog one instruction at a time.
/// </summary>
/// <remarks>
/// Ties between vCPUs resuming at the same picosecond go by the order their resumes were
/// scheduled (a sequence number), exactly as the engine orders same-band events.
/// </remarks>
public sealed class GuestExecutor : IEventHandler
{
    private readonly List<Vcpu> _vcpus = [];
    private readonly EventKind _resume;
    private long[] _resumeAt = new long[4];
    private long[] _resumeSeq = new long[4];
    private long _nextSeq;
    private EventHandle _scheduled;
    private int _scheduledVcpu = -1;
    private long _scheduledAt;
    private bool _dispatching;

    public GuestExecutor(Simulator sim)
    {
        Simulator = sim;
        _resume = sim.RegisterKind("vcpu.resume", EventBand.Guest, this);
    }

    public Simulator Simulator { get; }

    /// <summary>Every vCPU, by id.</summary>
    public IReadOnlyList<Vcpu> Vcpus => _vcpus;

    /// <summary>
    /// Runs the next vCPU resume without a queue round trip when it precedes every queued event
    /// (default true). Off, every resume goes through the queue: the reference behaviour the
    /// equivalence tests compare with (same fingerprint, same results).
    /// </summary>
    internal bool InlineDispatch { get; set; } = true;

    /// <summary>Changes whenever a vCPU's resume is scheduled or cancelled (for cached horizons).</summary>
    public long Version { get; private set; }

    internal int Register(Vcpu vcpu)
    {
        int id = _vcpus.Count;
        _vcpus.Add(vcpu);
        if (id == _resumeAt.Length)
        {
            Array.Resize(ref _resumeAt, id * 2);
            Array.Resize(ref _resumeSeq, id * 2);
        }
        _resumeAt[id] = long.MaxValue;
        return id;
    }

    /// <summary>Whether <paramref name="vcpu"/> has a pending resume.</summary>
    public bool IsScheduled(Vcpu vcpu) => _resumeAt[vcpu.Id] != long.MaxValue;

    internal void ScheduleResume(Vcpu vcpu, long atPs)
    {
        if (atPs < Simulator.Now.Picoseconds)
        {
            ThrowResumeInPast(vcpu);
        }
        _resumeAt[vcpu.Id] = atPs;
        _resumeSeq[vcpu.Id] = _nextSeq++;
        Version++;
        if (!_dispatching)
        {
            Reprogram();
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void ThrowResumeInPast(Vcpu vcpu) =>
        throw new ArgumentOutOfRangeException("atPs", $"{vcpu.Name} cannot resume before now.");

    /// <summary>Cancels <paramref name="vcpu"/>'s pending resume (a pause, a deschedule).</summary>
    internal void CancelResume(Vcpu vcpu)
    {
        _resumeAt[vcpu.Id] = long.MaxValue;
        Version++;
        if (!_dispatching)
        {
            Reprogram();
        }
    }

    /// <summary>The earliest pending resume of any vCPU but <paramref name="vcpu"/> (ps), or long.MaxValue.</summary>
    internal long EarliestOtherResume(Vcpu vcpu)
    {
        long best = long.MaxValue;
        int count = _vcpus.Count;
        for (int i = 0; i < count; i++)
        {
            if (i != vcpu.Id && _resumeAt[i] < best)
            {
                best = _resumeAt[i];
            }
        }
        return best;
    }

    /// <summary>
    /// The earliest (time, sequence) pending resume, if the engine would run it next: strictly
    /// before its earliest queued event (a tie goes through the queue, where band and sequence
    /// order it), no later than the run's limit, and no stop requested.
    /// </summary>
    private bool NextInline(Simulator sim, out int next, out long at)
    {
        next = Earliest();
        at = next >= 0 ? _resumeAt[next] : long.MaxValue;
        if (next < 0 || !InlineDispatch || sim.StopRequested || at > sim.RunLimit.Picoseconds)
        {
            return false;
        }
        return at < (sim.NextEventTime?.Picoseconds ?? long.MaxValue);
    }

    /// <summary>The vCPU with the earliest (time, sequence) pending resume, or -1.</summary>
    private int Earliest()
    {
        int best = -1;
        int count = _vcpus.Count;
        for (int i = 0; i < count; i++)
        {
            long t = _resumeAt[i];
            if (t == long.MaxValue)
            {
                continue;
            }
            if (best < 0 || t < _resumeAt[best] || (t == _resumeAt[best] && _resumeSeq[i] < _resumeSeq[best]))
            {
                best = i;
            }
        }
        return best;
    }

    /// <summary>Keeps exactly the earliest (time, sequence) resume in the engine's queue.</summary>
    private void Reprogram()
    {
        int best = Earliest();
        if (best == _scheduledVcpu && best >= 0 && _resumeAt[best] == _scheduledAt && Simulator.IsPending(_scheduled))
        {
            return;
        }
        Simulator.Cancel(_scheduled);
        _scheduled = default;
        _scheduledVcpu = best;
        if (best >= 0)
        {
            _scheduledAt = _resumeAt[best];
            _scheduled = Simulator.Schedule(SimTime.FromPicoseconds(_scheduledAt), _resume, best);
        }
    }

    /// <inheritdoc />
    void IEventHandler.OnEvent(Simulator sim, in SimEvent e)
    {
        int v = e.Subject;
        _scheduled = default;
        _scheduledVcpu = -1;
        _resumeAt[v] = long.MaxValue;
        _dispatching = true;
        try
        {
            _vcpus[v].RunSlice(e.Time);
            // Conservative lookahead across vCPUs: while the next event of the whole run is
            // another vCPU's resume (strictly before every queued event, within the run's limit),
            // run it here instead of a queue round trip. The engine folds it into the
            // fingerprint as the event it would have run (same time, kind, subject, order), and
            // the slice sees the same engine state and horizons, so results and fingerprints are
            // those of the queued path: spinning vCPUs that leapfrog on shared memory cost no
            // queue operations, only their instructions.
            while (NextInline(sim, out int next, out long at))
            {
                _resumeAt[next] = long.MaxValue;
                sim.ExecuteInline(SimTime.FromPicoseconds(at), _resume, next);
                _vcpus[next].RunSlice(SimTime.FromPicoseconds(at));
            }
        }
        finally
        {
            _dispatching = false;
            Reprogram();
        }
    }
}

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
/// <para>Ties between vCPUs resuming at the same picosecond go by the order their resumes were
/// scheduled (a sequence number), exactly as the engine orders same-band events. The pending
/// resumes are kept in an indexed binary heap, so scheduling, cancelling and finding the
/// earliest cost O(log V) in the number of vCPUs, not O(V).</para>
/// <para>vCPUs are grouped into <em>sharing domains</em> (<see cref="SetDomain"/>): the vCPUs
/// that can observe each other's sequenced instructions, i.e. that share guest memory and a
/// guest platform: one VM. A sequenced instruction waits only for the pending resumes of its
/// own domain. vCPUs of different VMs share no guest memory, no pvclock area, no emulated
/// device and no TSC-matching state, so their relative order cannot change what either reads;
/// without domains, every clock read of every vCPU would wait for the resumes of every other
/// VM's vCPUs, and the number of slices would grow with the square of the number of VMs.
/// Everything shared across VMs (a host's frequency, C-states, the host scheduler, live
/// migration) changes through engine events, which bound every slice anyway. By default every
/// vCPU is in domain 0 (one domain: the order of any two sequenced instructions is kept).</para>
/// </remarks>
public sealed class GuestExecutor : IEventHandler
{
    private readonly List<Vcpu> _vcpus = [];
    private readonly EventKind _resume;
    private long[] _resumeAt = new long[4];
    private long[] _resumeSeq = new long[4];
    private int[] _domainOf = new int[4];
    private int[] _engineScopeOf = new int[4];
    private readonly List<List<int>> _domains = [[]];

    // Indexed binary min-heap of the vCPUs with a pending resume, by (_resumeAt, _resumeSeq).
    private int[] _heap = new int[4];
    private int[] _heapIndex = new int[4]; // position in _heap, or -1
    private int _heapCount;
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
            Array.Resize(ref _domainOf, id * 2);
            Array.Resize(ref _engineScopeOf, id * 2);
            Array.Resize(ref _heap, id * 2);
            Array.Resize(ref _heapIndex, id * 2);
        }
        _resumeAt[id] = long.MaxValue;
        _heapIndex[id] = -1;
        _domainOf[id] = 0;
        _engineScopeOf[id] = 0;
        _domains[0].Add(id);
        return id;
    }

    /// <summary>
    /// Puts <paramref name="vcpu"/> in sharing domain <paramref name="domain"/> (0 or more; see
    /// the remarks on the class). Call it before the vCPU first runs; one VM's vCPUs share one.
    /// <paramref name="engineScope"/> is the engine scope of its VM's events
    /// (<see cref="Simulator.NewScope"/>): its slices stop only for events of no scope, of that
    /// scope and of its host's scope (0: for every event).
    /// </summary>
    public void SetDomain(Vcpu vcpu, int domain, int engineScope = 0)
    {
        _engineScopeOf[vcpu.Id] = engineScope;
        ArgumentOutOfRangeException.ThrowIfNegative(domain);
        int id = vcpu.Id;
        _domains[_domainOf[id]].Remove(id);
        while (_domains.Count <= domain)
        {
            _domains.Add([]);
        }
        List<int> members = _domains[domain];
        int at = members.BinarySearch(id);
        members.Insert(at < 0 ? ~at : at, id);
        _domainOf[id] = domain;
        Version++;
    }

    /// <summary>A domain number no vCPU uses yet.</summary>
    public int NewDomain()
    {
        _domains.Add([]);
        return _domains.Count - 1;
    }

    /// <summary>Whether <paramref name="vcpu"/> has a pending resume.</summary>
    public bool IsScheduled(Vcpu vcpu) => _resumeAt[vcpu.Id] != long.MaxValue;

    internal void ScheduleResume(Vcpu vcpu, long atPs)
    {
        if (atPs < Simulator.Now.Picoseconds)
        {
            ThrowResumeInPast(vcpu);
        }
        int id = vcpu.Id;
        _resumeAt[id] = atPs;
        _resumeSeq[id] = _nextSeq++;
        if (_heapIndex[id] < 0)
        {
            int at = _heapCount++;
            _heap[at] = id;
            _heapIndex[id] = at;
            SiftUp(at);
        }
        else
        {
            // The new key may be earlier or later than the old one.
            SiftDown(SiftUp(_heapIndex[id]));
        }
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
        RemoveFromHeap(vcpu.Id);
        Version++;
        if (!_dispatching)
        {
            Reprogram();
        }
    }

    /// <summary>
    /// The next engine event that can concern <paramref name="vcpu"/>: of no scope, of its VM's
    /// scope or of the scope of the host it is on now (every event for a vCPU of scope 0).
    /// </summary>
    internal SimTime? NextEventFor(Vcpu vcpu) =>
        Simulator.NextEventTimeIn(_engineScopeOf[vcpu.Id], vcpu.Core.Host.Scope);

    /// <summary>
    /// The earliest pending resume of any vCPU but <paramref name="vcpu"/> in its sharing domain
    /// (ps), or long.MaxValue.
    /// </summary>
    internal long EarliestOtherResume(Vcpu vcpu)
    {
        long best = long.MaxValue;
        int self = vcpu.Id;
        List<int> members = _domains[_domainOf[self]];
        for (int k = 0; k < members.Count; k++)
        {
            int i = members[k];
            if (i != self && _resumeAt[i] < best)
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
    private int Earliest() => _heapCount > 0 ? _heap[0] : -1;

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
        RemoveFromHeap(v);
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
                RemoveFromHeap(next);
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

    private bool Earlier(int a, int b) =>
        _resumeAt[a] < _resumeAt[b] || (_resumeAt[a] == _resumeAt[b] && _resumeSeq[a] < _resumeSeq[b]);

    private void Place(int at, int id)
    {
        _heap[at] = id;
        _heapIndex[id] = at;
    }

    private int SiftUp(int at)
    {
        int id = _heap[at];
        while (at > 0)
        {
            int parent = (at - 1) >> 1;
            if (!Earlier(id, _heap[parent]))
            {
                break;
            }
            Place(at, _heap[parent]);
            at = parent;
        }
        Place(at, id);
        return at;
    }

    private void SiftDown(int at)
    {
        int id = _heap[at];
        while (true)
        {
            int child = (2 * at) + 1;
            if (child >= _heapCount)
            {
                break;
            }
            if (child + 1 < _heapCount && Earlier(_heap[child + 1], _heap[child]))
            {
                child++;
            }
            if (!Earlier(_heap[child], id))
            {
                break;
            }
            Place(at, _heap[child]);
            at = child;
        }
        Place(at, id);
    }

    private void RemoveFromHeap(int id)
    {
        int at = _heapIndex[id];
        if (at < 0)
        {
            return;
        }
        _heapIndex[id] = -1;
        int last = --_heapCount;
        if (at != last)
        {
            _heap[at] = _heap[last];
            _heapIndex[_heap[at]] = at;
            SiftDown(SiftUp(at));
        }
    }
}

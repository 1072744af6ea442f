using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TscSim.Core.Time;

namespace TscSim.Core.Engine;

/// <summary>
/// The discrete-event engine of one run: an event queue ordered by (time, band, insertion
/// sequence), cancellable events, the simulated clock, the run fingerprint and the run's named
/// random streams. Single-threaded: parallelism is across runs, never inside one.
/// </summary>
/// <remarks>
/// <para>The queue is a 4-ary min-heap of 24-byte struct entries (time, order key, slot);
/// per-event data lives in a slot table recycled through a free list, so scheduling, running
/// and cancelling allocate nothing once the arrays have grown to the run's high-water mark.
/// The order key packs the band (top 8 bits) above a 56-bit insertion sequence.</para>
/// <para>While an event runs, its heap root is left vacant: the first event its handler
/// schedules fills the root and sifts down once, instead of a pop followed by a push (the
/// hold pattern of a simulation in steady state). Cancelled events stay in the heap, marked in
/// their slot, and are dropped when they reach the top; the heap is compacted when they
/// outnumber live events.</para>
/// </remarks>
public sealed class Simulator
{
    private const int Arity = 4;
    private const int SequenceBits = 56;
    private const ulong MaxSequence = (1UL << SequenceBits) - 1;

    private struct HeapEntry
    {
        public long Time;
        public ulong Order;
        public int Slot;
    }

    private enum SlotState : byte
    {
        Free = 0,
        Pending = 1,
        Cancelled = 2,
    }

    private struct Slot
    {
        public long Payload;
        public int Subject;
        public int Kind;
        public int Generation;
        public SlotState State;
    }

    private sealed record KindInfo(string Name, EventBand Band, IEventHandler Handler, ulong FingerprintWord);

    private HeapEntry[] _heap;
    private int _count;
    private bool _rootVacant;
    private int _cancelledInHeap;

    private Slot[] _slots;
    private int[] _freeSlots;
    private int _freeCount;
    private int _slotsUsed;

    private KindInfo[] _kinds = new KindInfo[8];
    private int _kindCount = 1; // id 0 is "no kind"
    private readonly Dictionary<string, int> _kindIds = new(StringComparer.Ordinal);

    private ulong _nextSequence;
    private long _now;
    private long _executed;
    private ulong _fingerprint = Fingerprint.Initial;
    private bool _running;
    private bool _stopRequested;
    private long _limit = long.MaxValue;

    /// <summary>A simulator for a run with the given seed.</summary>
    /// <param name="seed">The run seed; every random stream derives from it.</param>
    /// <param name="initialCapacity">Pending events the queue holds before it first grows.</param>
    public Simulator(ulong seed = 1, int initialCapacity = 1024)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(initialCapacity, 1);
        _heap = new HeapEntry[initialCapacity];
        _slots = new Slot[initialCapacity];
        _freeSlots = new int[initialCapacity];
        Random = new RandomStreams(seed);
    }

    /// <summary>The current simulated instant.</summary>
    public SimTime Now => SimTime.FromPicoseconds(_now);

    /// <summary>The run's named random streams.</summary>
    public RandomStreams Random { get; }

    /// <summary>Events executed so far, through the queue or inline (<see cref="ExecuteInline"/>); cancelled ones are not counted.</summary>
    public long ExecutedEvents => _executed + _inlineExecuted;

    /// <summary>The fingerprint of the events executed so far.</summary>
    public Fingerprint Fingerprint => new(_fingerprint);

    /// <summary>
    /// Folds one result-bearing value (a clock or TSC read's value, an exit, a trap decision) into
    /// the fingerprint, in execution order, so that equal fingerprints mean equal results and not
    /// only equal event trajectories (see <see cref="Engine.Fingerprint"/>).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public void FoldResult(ulong word) => _fingerprint = Fingerprint.Fold(_fingerprint, word);

    /// <summary>
    /// Events scheduled so far. It changes whenever an event is scheduled, so a component that
    /// cached <see cref="NextEventTime"/> knows the cache may be stale (cancelling only makes
    /// the next event later, which a cache may safely ignore).
    /// </summary>
    public long ScheduledCount => (long)_nextSequence;

    /// <summary>Events scheduled and not yet run or cancelled.</summary>
    public int PendingEvents => _count - (_rootVacant ? 1 : 0) - _cancelledInHeap;

    /// <summary>
    /// Registers a kind of event. Names are unique within a simulator; the name and band go
    /// into the fingerprint, the handler runs every event of the kind.
    /// </summary>
    public EventKind RegisterKind(string name, EventBand band, IEventHandler handler)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(handler);
        if (!Enum.IsDefined(band))
        {
            throw new ArgumentOutOfRangeException(nameof(band), band, "Not a named band.");
        }
        if (_kindIds.ContainsKey(name))
        {
            throw new InvalidOperationException($"An event kind named '{name}' is already registered.");
        }
        if (_kindCount == _kinds.Length)
        {
            Array.Resize(ref _kinds, _kinds.Length * 2);
        }
        int id = _kindCount++;
        _kinds[id] = new KindInfo(name, band, handler, Fingerprint.BandAndKindWord(band, name));
        _kindIds.Add(name, id);
        return new EventKind(id);
    }

    /// <summary>The registered name of <paramref name="kind"/>.</summary>
    public string KindName(EventKind kind) => Info(kind).Name;

    /// <summary>The band of <paramref name="kind"/>.</summary>
    public EventBand KindBand(EventKind kind) => Info(kind).Band;

    /// <summary>
    /// Schedules an event of <paramref name="kind"/> at <paramref name="at"/>, which must not be
    /// before <see cref="Now"/>. Events at the same instant run by band, then in the order they
    /// were scheduled.
    /// </summary>
    public EventHandle Schedule(SimTime at, EventKind kind, int subject = 0, long payload = 0) =>
        ScheduleAt(at.Picoseconds, kind, subject, payload);

    /// <summary>Schedules an event <paramref name="delay"/> (not negative) after <see cref="Now"/>.</summary>
    public EventHandle ScheduleAfter(Duration delay, EventKind kind, int subject = 0, long payload = 0) =>
        ScheduleAt(checked(_now + delay.Picoseconds), kind, subject, payload);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private EventHandle ScheduleAt(long timePs, EventKind kind, int subject, long payload)
    {
        if (timePs < _now)
        {
            ThrowInPast(timePs);
        }
        int kindId = kind.Id;
        if ((uint)kindId >= (uint)_kindCount || kindId == 0)
        {
            ThrowUnknownKind();
        }
        if (_nextSequence > MaxSequence)
        {
            ThrowSequenceExhausted();
        }

        int slot = AllocateSlot();
        ref Slot s = ref _slots[slot];
        s.Payload = payload;
        s.Subject = subject;
        s.Kind = kindId;
        s.State = SlotState.Pending;

        var entry = new HeapEntry
        {
            Time = timePs,
            Order = ((ulong)_kinds[kindId].Band << SequenceBits) | _nextSequence++,
            Slot = slot,
        };
        if (_rootVacant)
        {
            _rootVacant = false;
            SiftDown(0, entry);
        }
        else
        {
            if (_count == _heap.Length)
            {
                Array.Resize(ref _heap, _heap.Length * 2);
            }
            SiftUp(_count++, entry);
        }
        return new EventHandle(slot, s.Generation);
    }

    /// <summary>
    /// Cancels a pending event. Returns false (and does nothing) when the handle is the default,
    /// or its event has already run or been cancelled.
    /// </summary>
    public bool Cancel(EventHandle handle)
    {
        if (handle.IsNone || (uint)handle.Slot >= (uint)_slotsUsed)
        {
            return false;
        }
        ref Slot s = ref _slots[handle.Slot];
        if (s.Generation != handle.Generation || s.State != SlotState.Pending)
        {
            return false;
        }
        s.State = SlotState.Cancelled;
        _cancelledInHeap++;
        if (_cancelledInHeap > 1024 && _cancelledInHeap > _count / 2)
        {
            ResolveVacantRoot();
            Compact();
        }
        return true;
    }

    /// <summary>True while <paramref name="handle"/> names an event that has neither run nor been cancelled.</summary>
    public bool IsPending(EventHandle handle) =>
        !handle.IsNone && (uint)handle.Slot < (uint)_slotsUsed
        && _slots[handle.Slot].Generation == handle.Generation
        && _slots[handle.Slot].State == SlotState.Pending;

    /// <summary>
    /// The time of the next event that will run, or null when none is pending. A vCPU uses it
    /// to run ahead without a queue round trip while nothing else is due.
    /// </summary>
    public SimTime? NextEventTime
    {
        get
        {
            ResolveVacantRoot();
            DropCancelledTop();
            return _count > 0 ? SimTime.FromPicoseconds(_heap[0].Time) : null;
        }
    }

    /// <summary>
    /// The last instant the current <c>Run</c> call executes (<see cref="SimTime.MaxValue"/>
    /// outside a run or when running to completion). Work that runs ahead of the queue, like a
    /// vCPU's slice, must stop after it.
    /// </summary>
    public SimTime RunLimit => SimTime.FromPicoseconds(_limit);

    /// <summary>Asks the running loop to return after the current event.</summary>
    public void Stop() => _stopRequested = true;

    /// <summary>
    /// Runs every event up to and including <paramref name="until"/>, then sets the clock to
    /// <paramref name="until"/>; or fewer, if a handler calls <see cref="Stop"/> or
    /// <paramref name="maxEvents"/> events have run (then the clock stays at the last event).
    /// </summary>
    public RunOutcome Run(SimTime until, long maxEvents = long.MaxValue)
    {
        if (until.Picoseconds < _now)
        {
            throw new ArgumentOutOfRangeException(nameof(until), until, $"Cannot run back to {until}; the clock is at {Now}.");
        }
        RunOutcome outcome = RunLoop(until.Picoseconds, maxEvents);
        if (outcome == RunOutcome.ReachedTime)
        {
            _now = until.Picoseconds;
        }
        return outcome;
    }

    /// <summary>Runs until no event is left (or a handler stops the run); the clock stays at the last event.</summary>
    public RunOutcome RunToCompletion(long maxEvents = long.MaxValue)
    {
        RunOutcome outcome = RunLoop(long.MaxValue, maxEvents);
        return outcome == RunOutcome.ReachedTime ? RunOutcome.QueueEmpty : outcome;
    }

    private RunOutcome RunLoop(long limit, long maxEvents)
    {
        if (_running)
        {
            throw new InvalidOperationException("Run is not re-entrant: a handler must schedule events, not run them.");
        }
        _running = true;
        _stopRequested = false;
        _limit = limit;
        long budget = maxEvents;
        try
        {
            while (_count > 0)
            {
                if (_stopRequested)
                {
                    return RunOutcome.Stopped;
                }
                ref HeapEntry top = ref _heap[0];
                long time = top.Time;
                if (time > limit)
                {
                    return RunOutcome.ReachedTime;
                }
                int slot = top.Slot;
                ref Slot s = ref _slots[slot];
                if (s.State == SlotState.Cancelled)
                {
                    _cancelledInHeap--;
                    FreeSlot(slot);
                    RemoveRoot();
                    continue;
                }
                if (budget <= 0)
                {
                    return RunOutcome.BudgetExhausted;
                }
                budget--;

                var ev = new SimEvent(SimTime.FromPicoseconds(time), new EventKind(s.Kind), s.Subject, s.Payload);
                KindInfo kind = _kinds[s.Kind];
                FreeSlot(slot);
                _rootVacant = true;
                _now = time;
                _executed++;
                _fingerprint = Fingerprint.FoldEvent(_fingerprint, time, kind.FingerprintWord, ev.Subject);

                kind.Handler.OnEvent(this, in ev);

                ResolveVacantRoot();
            }
            return _stopRequested ? RunOutcome.Stopped : RunOutcome.ReachedTime;
        }
        finally
        {
            ResolveVacantRoot();
            _running = false;
            _limit = long.MaxValue;
        }
    }

    /// <summary>Heap order: time, then the order key (band, then insertion sequence). Branch-free.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Less(in HeapEntry a, in HeapEntry b) =>
        (a.Time < b.Time) | ((a.Time == b.Time) & (a.Order < b.Order));

    /// <summary>Removes the root left vacant by the running event if no new event filled it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ResolveVacantRoot()
    {
        if (_rootVacant)
        {
            _rootVacant = false;
            RemoveRoot();
        }
    }

    private void RemoveRoot()
    {
        int last = --_count;
        if (last > 0)
        {
            SiftDown(0, _heap[last]);
        }
    }

    /// <summary>Places <paramref name="entry"/> at <paramref name="index"/> or above it, but not above <paramref name="top"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SiftUp(int index, HeapEntry entry, int top = 0)
    {
        ref HeapEntry heap = ref MemoryMarshal.GetArrayDataReference(_heap);
        while (index > top)
        {
            int parent = (index - 1) >> 2;
            ref HeapEntry p = ref Unsafe.Add(ref heap, parent);
            if (!Less(entry, p))
            {
                break;
            }
            Unsafe.Add(ref heap, index) = p;
            index = parent;
        }
        Unsafe.Add(ref heap, index) = entry;
    }

    /// <summary>
    /// Places <paramref name="entry"/> into the hole at <paramref name="index"/> and restores heap
    /// order below it, bottom-up (Floyd): the hole first follows the smallest child down to a
    /// leaf (3 comparisons a level, none against the entry), then the entry sifts up from there.
    /// An entry that belongs deep (a popped last element, a hold-model event) saves a comparison
    /// and an unpredictable branch at every level.
    /// </summary>
    /// <remarks>Bounds: every index used is below <c>_count</c> ≤ <c>_heap.Length</c>, checked by the loop conditions.</remarks>
    private void SiftDown(int index, HeapEntry entry)
    {
        ref HeapEntry heap = ref MemoryMarshal.GetArrayDataReference(_heap);
        int count = _count;
        int start = index;
        while (true)
        {
            int first = (index << 2) + 1;
            if (first + Arity <= count)
            {
                // All four children exist: a tournament of three comparisons.
                int a = first + (Less(Unsafe.Add(ref heap, first + 1), Unsafe.Add(ref heap, first)) ? 1 : 0);
                int b = first + 2 + (Less(Unsafe.Add(ref heap, first + 3), Unsafe.Add(ref heap, first + 2)) ? 1 : 0);
                int best = Less(Unsafe.Add(ref heap, b), Unsafe.Add(ref heap, a)) ? b : a;
                Unsafe.Add(ref heap, index) = Unsafe.Add(ref heap, best);
                index = best;
            }
            else if (first < count)
            {
                int best = first;
                for (int c = first + 1; c < count; c++)
                {
                    if (Less(Unsafe.Add(ref heap, c), Unsafe.Add(ref heap, best)))
                    {
                        best = c;
                    }
                }
                Unsafe.Add(ref heap, index) = Unsafe.Add(ref heap, best);
                index = best;
                break;
            }
            else
            {
                break;
            }
        }
        SiftUp(index, entry, start);
    }

    private void DropCancelledTop()
    {
        while (_count > 0 && _slots[_heap[0].Slot].State == SlotState.Cancelled)
        {
            _cancelledInHeap--;
            FreeSlot(_heap[0].Slot);
            RemoveRoot();
        }
    }

    /// <summary>Drops every cancelled entry and rebuilds the heap in place (Floyd's method, O(n)).</summary>
    private void Compact()
    {
        int kept = 0;
        for (int i = 0; i < _count; i++)
        {
            int slot = _heap[i].Slot;
            if (_slots[slot].State == SlotState.Cancelled)
            {
                FreeSlot(slot);
            }
            else
            {
                _heap[kept++] = _heap[i];
            }
        }
        _count = kept;
        _cancelledInHeap = 0;
        for (int i = (_count - 2) >> 2; i >= 0; i--)
        {
            SiftDown(i, _heap[i]);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int AllocateSlot()
    {
        if (_freeCount > 0)
        {
            return _freeSlots[--_freeCount];
        }
        if (_slotsUsed == _slots.Length)
        {
            Array.Resize(ref _slots, _slots.Length * 2);
            Array.Resize(ref _freeSlots, _slots.Length);
        }
        int slot = _slotsUsed++;
        _slots[slot].Generation = 1;
        return slot;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void FreeSlot(int slot)
    {
        ref Slot s = ref _slots[slot];
        s.State = SlotState.Free;
        s.Generation = s.Generation == int.MaxValue ? 1 : s.Generation + 1;
        _freeSlots[_freeCount++] = slot;
    }

    private KindInfo Info(EventKind kind)
    {
        if (kind.Id <= 0 || kind.Id >= _kindCount)
        {
            ThrowUnknownKind();
        }
        return _kinds[kind.Id];
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowInPast(long timePs) =>
        throw new ArgumentOutOfRangeException("at", $"Cannot schedule an event at {SimTime.FromPicoseconds(Math.Max(0, timePs))}, before now ({Now}).");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowUnknownKind() =>
        throw new ArgumentException("The event kind is not registered with this simulator.");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowSequenceExhausted() =>
        throw new InvalidOperationException("More than 2^56 events scheduled in one run.");

    // ---- Inline execution (added for the guest executor's cross-vCPU lookahead; see GuestExecutor)

    private long _inlineExecuted;

    /// <summary>True once a handler has called <see cref="Stop"/> in the current run.</summary>
    public bool StopRequested => _stopRequested;

    /// <summary>Of <see cref="ExecutedEvents"/>, those executed inline (<see cref="ExecuteInline"/>) rather than popped from the queue.</summary>
    public long InlineEvents => _inlineExecuted;

    /// <summary>
    /// From inside a running handler: executes an event of <paramref name="kind"/> at
    /// <paramref name="at"/> on <paramref name="subject"/> without the queue, as the loop would
    /// have run it next: the clock moves to <paramref name="at"/> and the event is folded into
    /// the fingerprint exactly as a queued one. The caller runs the event's effect itself and
    /// guarantees it is the next event in (time, band, sequence) order: before every pending
    /// event (<see cref="NextEventTime"/>), within <see cref="RunLimit"/>, and no stop requested.
    /// </summary>
    public void ExecuteInline(SimTime at, EventKind kind, int subject)
    {
        long t = at.Picoseconds;
        if (!_running || t < _now || t > _limit || _stopRequested)
        {
            throw new InvalidOperationException($"An inline event at {at} must be inside a running handler, not before now ({Now}), within the run limit, with no stop requested.");
        }
        _now = t;
        _inlineExecuted++;
        _fingerprint = Fingerprint.FoldEvent(_fingerprint, t, Info(kind).FingerprintWord, subject);
    }
}

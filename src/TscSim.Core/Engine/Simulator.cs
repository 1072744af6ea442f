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
/// <para>The queue is a 4-ary min-heap of 16-byte struct entries (time, order key); per-event
/// data lives in a slot table recycled through a free list, so scheduling, running and
/// cancelling allocate nothing once the arrays have grown to the run's high-water mark. The
/// order key packs the band (top 3 bits) above the insertion sequence above the slot index
/// (low <c>_slotBits</c> bits): comparing keys compares (band, sequence), since sequences are
/// unique, and the slot rides along without a second array on the sift path. The heap lives
/// in a pinned array placed so that every group of four siblings fills one 64-byte cache line,
/// so a level of a sift touches one line.</para>
/// <para>When the slot table outgrows its bits, or the sequence runs out of the bits left, the
/// pending entries are renumbered: sorted by (time, band, sequence), each gets its rank as its
/// new sequence. Ranks keep the relative order of every pair of pending events and every later
/// event gets a larger sequence, so the execution order is exactly that of an unbounded
/// sequence; and a sorted array is a heap.</para>
/// <para>While an event runs, its heap root is left vacant: the first event its handler
/// schedules fills the root and sifts down once, instead of a pop followed by a push (the
/// hold pattern of a simulation in steady state). Cancelled events stay in the heap, marked in
/// their slot, and are dropped when they reach the top; the heap is compacted when they
/// outnumber live events.</para>
/// </remarks>
public sealed class Simulator
{
    private const int Arity = 4;
    private const int BandShift = 61;
    private const ulong BelowBandMask = (1UL << BandShift) - 1;
    private const int CacheLine = 64;

    private struct HeapEntry
    {
        public long Time;
        public ulong Order;
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
        public bool ScopeDropped; // a cancelled event already removed from its scope's heap
    }

    private sealed record KindInfo(string Name, EventBand Band, IEventHandler Handler, ulong FingerprintWord, int Scope);

    /// <summary>Pinned backing store in 8-byte words; the heap starts <see cref="_heapBase"/> words in.</summary>
    private long[] _heapArray;
    private int _heapBase;
    private int _capacity;
    private int _count;
    private bool _rootVacant;
    private int _cancelledInHeap;

    private Slot[] _slots;
    private int[] _freeSlots;
    private int _freeCount;
    private int _slotsUsed;

    private KindInfo[] _kinds = new KindInfo[8];
    private int _ambientScope;
    private int _scopeCount = 1; // scope 0: events of kinds registered outside any scope
    private ScopeQueue[]? _scopes; // per scope, its pending events; null until a scoped kind exists
    private int _kindCount = 1; // id 0 is "no kind"
    private readonly Dictionary<string, int> _kindIds = new(StringComparer.Ordinal);

    private int _slotBits;
    private ulong _slotMask;
    private ulong _nextSequence;
    private ulong _sequenceLimit;
    private ulong _sequenceCap = ulong.MaxValue;
    private long _scheduled;
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
        _heapArray = AllocateHeap(initialCapacity, out _heapBase);
        _capacity = initialCapacity;
        _slots = new Slot[initialCapacity];
        _freeSlots = new int[initialCapacity];
        SetSlotBits(BitsFor(initialCapacity));
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
    public long ScheduledCount => _scheduled;

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
        _kinds[id] = new KindInfo(name, band, handler, Fingerprint.BandAndKindWord(band, name), _ambientScope);
        if (_ambientScope != 0 && _scopes is null)
        {
            EnableScopes();
        }
        else if (_scopes is not null && _ambientScope >= _scopes.Length)
        {
            int old = _scopes.Length;
            Array.Resize(ref _scopes, Math.Max(_scopeCount, old * 2));
            for (int i = old; i < _scopes.Length; i++)
            {
                _scopes[i] = new ScopeQueue();
            }
        }
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
        int slot = AllocateSlot();
        if (_nextSequence >= _sequenceLimit)
        {
            Renumber(_slotBits);
        }
        ref Slot s = ref _slots[slot];
        s.Payload = payload;
        s.Subject = subject;
        s.Kind = kindId;
        s.State = SlotState.Pending;
        s.ScopeDropped = false;
        _scheduled++;

        var entry = new HeapEntry
        {
            Time = timePs,
            Order = ((ulong)_kinds[kindId].Band << BandShift) | (_nextSequence++ << _slotBits) | (uint)slot,
        };
        if (_scopes is not null)
        {
            _scopes[_kinds[kindId].Scope].Push(entry);
        }
        if (_rootVacant)
        {
            _rootVacant = false;
            SiftDown(0, entry);
        }
        else
        {
            if (_count == _capacity)
            {
                GrowHeap();
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
            return _count > 0 ? SimTime.FromPicoseconds(Heap.Time) : null;
        }
    }

    /// <summary>
    /// A new event scope: a part of the model (a VM, a host) whose events can only affect
    /// itself. Kinds registered while it is entered (<see cref="EnterScope"/>) belong to it.
    /// Scopes change nothing in the order events run; they only let
    /// <see cref="NextEventTimeIn"/> ignore events that cannot concern the caller.
    /// </summary>
    public int NewScope() => _scopeCount++;

    /// <summary>
    /// Until the returned value is disposed, kinds registered with this simulator belong to
    /// <paramref name="scope"/> (0: no scope; the default).
    /// </summary>
    public ScopeEntry EnterScope(int scope)
    {
        if ((uint)scope >= (uint)_scopeCount)
        {
            throw new ArgumentOutOfRangeException(nameof(scope), scope, "Not a scope of this simulator.");
        }
        int previous = _ambientScope;
        _ambientScope = scope;
        return new ScopeEntry(this, previous);
    }

    /// <summary>Restores the scope in effect before <see cref="EnterScope"/>.</summary>
    public readonly struct ScopeEntry : IDisposable
    {
        private readonly Simulator _sim;
        private readonly int _previous;

        internal ScopeEntry(Simulator sim, int previous) => (_sim, _previous) = (sim, previous);

        public void Dispose() => _sim._ambientScope = _previous;
    }

    /// <summary>
    /// The time of the next event of no scope or of scope <paramref name="a"/> or
    /// <paramref name="b"/> (null when none is pending): the events that can concern a part of
    /// the model living in those scopes (a vCPU: its VM and its host). Scope 0 as
    /// <paramref name="a"/> means "every event" (<see cref="NextEventTime"/>).
    /// </summary>
    public SimTime? NextEventTimeIn(int a, int b)
    {
        if (_scopes is null || a == 0)
        {
            return NextEventTime;
        }
        long t = Math.Min(ScopeTop(0), Math.Min(ScopeTop(a), b == 0 ? long.MaxValue : ScopeTop(b)));
        return t == long.MaxValue ? null : SimTime.FromPicoseconds(t);
    }

    /// <summary>The earliest pending event time of one scope, dropping cancelled events from its top.</summary>
    private long ScopeTop(int scope)
    {
        if ((uint)scope >= (uint)_scopes!.Length)
        {
            return long.MaxValue;
        }
        ScopeQueue q = _scopes[scope];
        while (q.Count > 0)
        {
            ref Slot s = ref _slots[SlotOf(q.Top)];
            if (s.State != SlotState.Cancelled)
            {
                return q.Top.Time;
            }
            s.ScopeDropped = true;
            q.Pop();
        }
        return long.MaxValue;
    }

    /// <summary>Removes an event leaving the queue (run or dropped) from its scope's heap, where it is the top.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void LeaveScope(ref Slot s)
    {
        if (_scopes is not null && !s.ScopeDropped)
        {
            _scopes[_kinds[s.Kind].Scope].Pop();
        }
    }

    /// <summary>Starts keeping per-scope heaps: every pending event so far is of no scope.</summary>
    private void EnableScopes()
    {
        _scopes = new ScopeQueue[Math.Max(_scopeCount, 4)];
        for (int i = 0; i < _scopes.Length; i++)
        {
            _scopes[i] = new ScopeQueue();
        }
        RebuildScopes();
    }

    /// <summary>Refills every scope's heap from the main heap (after compaction or renumbering).</summary>
    private void RebuildScopes()
    {
        if (_scopes is null)
        {
            return;
        }
        if (_scopes.Length < _scopeCount)
        {
            int old = _scopes.Length;
            Array.Resize(ref _scopes, _scopeCount);
            for (int i = old; i < _scopes.Length; i++)
            {
                _scopes[i] = new ScopeQueue();
            }
        }
        foreach (ScopeQueue q in _scopes)
        {
            q.Clear();
        }
        Span<HeapEntry> heap = HeapSpan;
        for (int i = _rootVacant ? 1 : 0; i < heap.Length; i++)
        {
            ref Slot s = ref _slots[SlotOf(heap[i])];
            if (s.State == SlotState.Cancelled)
            {
                s.ScopeDropped = true;
                continue;
            }
            s.ScopeDropped = false;
            _scopes[_kinds[s.Kind].Scope].Push(heap[i]);
        }
    }

    /// <summary>One scope's pending events: a binary min-heap in the main heap's order.</summary>
    private sealed class ScopeQueue
    {
        private HeapEntry[] _items = new HeapEntry[16];

        public int Count { get; private set; }

        public ref HeapEntry Top => ref _items[0];

        public void Clear() => Count = 0;

        public void Push(HeapEntry entry)
        {
            if (Count == _items.Length)
            {
                Array.Resize(ref _items, _items.Length * 2);
            }
            int i = Count++;
            while (i > 0)
            {
                int parent = (i - 1) >> 1;
                if (!Less(entry, _items[parent]))
                {
                    break;
                }
                _items[i] = _items[parent];
                i = parent;
            }
            _items[i] = entry;
        }

        public void Pop()
        {
            int last = --Count;
            if (last == 0)
            {
                return;
            }
            HeapEntry entry = _items[last];
            int i = 0;
            while (true)
            {
                int child = (2 * i) + 1;
                if (child >= last)
                {
                    break;
                }
                if (child + 1 < last && Less(_items[child + 1], _items[child]))
                {
                    child++;
                }
                if (!Less(_items[child], entry))
                {
                    break;
                }
                _items[i] = _items[child];
                i = child;
            }
            _items[i] = entry;
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
                ref HeapEntry top = ref Heap;
                long time = top.Time;
                if (time > limit)
                {
                    return RunOutcome.ReachedTime;
                }
                int slot = (int)(top.Order & _slotMask);
                ref Slot s = ref _slots[slot];
                if (s.State == SlotState.Cancelled)
                {
                    _cancelledInHeap--;
                    LeaveScope(ref s);
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
                if (_scopes is not null)
                {
                    LeaveScope(ref s);
                }
                FreeSlot(slot);
                _rootVacant = true;
                _executed++;
                Advance(time, kind.FingerprintWord, ev.Subject);

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

    /// <summary>
    /// Heap order: time, then the order key (band, then insertion sequence), as one 128-bit
    /// unsigned comparison done in two 64-bit ones without a branch: (t1, o1) &lt; (t2, o2) iff
    /// t1 &lt; t2 + (o1 &lt; o2 ? 1 : 0), since times are not negative (t2 + 1 cannot overflow
    /// as an unsigned number).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Less(in HeapEntry a, in HeapEntry b) =>
        (ulong)a.Time < (ulong)b.Time + (a.Order < b.Order ? 1UL : 0UL);

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
            SiftDown(0, Unsafe.Add(ref Heap, last));
        }
    }

    /// <summary>Places <paramref name="entry"/> at <paramref name="index"/> or above it, but not above <paramref name="top"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SiftUp(int index, HeapEntry entry, int top = 0)
    {
        ref HeapEntry heap = ref Heap;
        nint i = index;
        while (i > top)
        {
            nint parent = (i - 1) >> 2;
            ref HeapEntry p = ref Unsafe.Add(ref heap, parent);
            if (!Less(entry, p))
            {
                break;
            }
            Unsafe.Add(ref heap, i) = p;
            i = parent;
        }
        Unsafe.Add(ref heap, i) = entry;
    }

    /// <summary>
    /// Places <paramref name="entry"/> into the hole at <paramref name="index"/> and restores heap
    /// order below it, bottom-up (Floyd): the hole first follows the smallest child down to a
    /// leaf (3 comparisons a level, none against the entry), then the entry sifts up from there.
    /// An entry that belongs deep (a popped last element, a hold-model event) saves a comparison
    /// and an unpredictable branch at every level.
    /// </summary>
    /// <remarks>Bounds: every index used is below <c>_count</c> ≤ <c>_capacity</c>, checked by the loop conditions.</remarks>
    private void SiftDown(int index, HeapEntry entry)
    {
        ref HeapEntry heap = ref Heap;
        nint count = _count;
        nint i = index;
        while (true)
        {
            nint first = (i << 2) + 1;
            if (first + Arity <= count)
            {
                // All four children exist (one cache line): a tournament of three comparisons,
                // branch-free, since the winners are data-dependent and a mispredicted branch per
                // level costs more than the arithmetic select.
                ref HeapEntry c = ref Unsafe.Add(ref heap, first);
                nint a = Less(Unsafe.Add(ref c, 1), c) ? 1 : 0;
                nint b = 2 + (Less(Unsafe.Add(ref c, 3), Unsafe.Add(ref c, 2)) ? 1 : 0);
                nint best = a ^ ((a ^ b) & -(nint)(Less(Unsafe.Add(ref c, b), Unsafe.Add(ref c, a)) ? 1 : 0));
                Unsafe.Add(ref heap, i) = Unsafe.Add(ref c, best);
                i = first + best;
            }
            else if (first < count)
            {
                nint best = first;
                for (nint c = first + 1; c < count; c++)
                {
                    if (Less(Unsafe.Add(ref heap, c), Unsafe.Add(ref heap, best)))
                    {
                        best = c;
                    }
                }
                Unsafe.Add(ref heap, i) = Unsafe.Add(ref heap, best);
                i = best;
                break;
            }
            else
            {
                break;
            }
        }
        SiftUp((int)i, entry, index);
    }

    private void DropCancelledTop()
    {
        while (_count > 0 && _slots[SlotOf(Heap)].State == SlotState.Cancelled)
        {
            _cancelledInHeap--;
            LeaveScope(ref _slots[SlotOf(Heap)]);
            FreeSlot(SlotOf(Heap));
            RemoveRoot();
        }
    }

    /// <summary>Drops every cancelled entry (the root must not be vacant) and returns the live count.</summary>
    private int DropCancelled()
    {
        Span<HeapEntry> heap = HeapSpan;
        int kept = 0;
        for (int i = 0; i < heap.Length; i++)
        {
            int slot = SlotOf(heap[i]);
            if (_slots[slot].State == SlotState.Cancelled)
            {
                FreeSlot(slot);
            }
            else
            {
                heap[kept++] = heap[i];
            }
        }
        _count = kept;
        _cancelledInHeap = 0;
        return kept;
    }

    /// <summary>Drops every cancelled entry and rebuilds the heap in place (Floyd's method, O(n)).</summary>
    private void Compact()
    {
        DropCancelled();
        ref HeapEntry heap = ref Heap;
        for (int i = (_count - 2) >> 2; i >= 0; i--)
        {
            SiftDown(i, Unsafe.Add(ref heap, i));
        }
        RebuildScopes();
    }

    /// <summary>
    /// Gives the pending entries fresh sequences 0, 1, … in execution order, packed with
    /// <paramref name="slotBits"/> slot bits (see the remarks on the class). O(n log n), and rare:
    /// when the slot table doubles past its bits, or after 2^(61 − slot bits) schedules.
    /// </summary>
    private void Renumber(int slotBits)
    {
        ResolveVacantRoot();
        DropCancelled();
        Span<HeapEntry> heap = HeapSpan;
        heap.Sort(static (a, b) => a.Time != b.Time ? a.Time.CompareTo(b.Time) : a.Order.CompareTo(b.Order));
        ulong oldMask = _slotMask;
        SetSlotBits(slotBits);
        for (int i = 0; i < heap.Length; i++)
        {
            ulong order = heap[i].Order;
            ulong band = order >> BandShift;
            ulong slot = order & oldMask;
            heap[i].Order = (band << BandShift) | ((ulong)i << _slotBits) | slot;
        }
        _nextSequence = (ulong)heap.Length; // a sorted array is a heap: nothing to sift
        _sequenceLimit = Math.Max(_sequenceLimit, _nextSequence + 1);
        RebuildScopes();
    }

    private void SetSlotBits(int slotBits)
    {
        _slotBits = slotBits;
        _slotMask = (1UL << slotBits) - 1;
        _sequenceLimit = Math.Min(1UL << (BandShift - slotBits), _sequenceCap);
    }

    /// <summary>
    /// Tests only: renumber whenever <paramref name="cap"/> sequences have been handed out (at
    /// least the pending count + 1), so that renumbering happens often enough to be tested.
    /// </summary>
    internal void CapSequencesForTesting(ulong cap)
    {
        _sequenceCap = cap;
        SetSlotBits(_slotBits);
    }

    /// <summary>Bits that hold every index below <paramref name="capacity"/> (at least 1).</summary>
    private static int BitsFor(int capacity) => Math.Max(1, 32 - System.Numerics.BitOperations.LeadingZeroCount((uint)(capacity - 1)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int SlotOf(in HeapEntry entry) => (int)(entry.Order & _slotMask);

    /// <summary>The heap's root (element 0); element i is <c>Unsafe.Add(ref Heap, i)</c>, i &lt; <c>_capacity</c>.</summary>
    private ref HeapEntry Heap
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ref Unsafe.As<long, HeapEntry>(ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_heapArray), _heapBase));
    }

    private Span<HeapEntry> HeapSpan => MemoryMarshal.Cast<long, HeapEntry>(_heapArray.AsSpan(_heapBase, WordsPerEntry * _count));

    private const int WordsPerEntry = 2;

    /// <summary>
    /// Pinned storage for <paramref name="capacity"/> entries, and the offset in 8-byte words at
    /// which the heap starts so that element 1 (the root's first child, and so every sibling
    /// group 4k+1…4k+4) starts a 64-byte cache line. Pinned (the pinned object heap) so the
    /// alignment holds for the array's life; words, not entries, because the runtime only
    /// guarantees 8-byte alignment of array data.
    /// </summary>
    private static long[] AllocateHeap(int capacity, out int baseWord)
    {
        const int WordsPerLine = CacheLine / sizeof(long);
        long[] array = GC.AllocateArray<long>(checked((capacity * WordsPerEntry) + WordsPerLine), pinned: true);
        long address = Marshal.UnsafeAddrOfPinnedArrayElement(array, 0).ToInt64();
        int misalignment = (int)((address + (WordsPerEntry * sizeof(long))) % CacheLine) / sizeof(long);
        baseWord = (WordsPerLine - misalignment) % WordsPerLine;
        return array;
    }

    private void GrowHeap()
    {
        int capacity = checked(_capacity * 2);
        long[] array = AllocateHeap(capacity, out int baseIndex);
        HeapSpan.CopyTo(MemoryMarshal.Cast<long, HeapEntry>(array.AsSpan(baseIndex)));
        _heapArray = array;
        _heapBase = baseIndex;
        _capacity = capacity;
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
            if (BitsFor(_slots.Length) > _slotBits)
            {
                Renumber(BitsFor(_slots.Length));
            }
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
        _inlineExecuted++;
        Advance(t, Info(kind).FingerprintWord, subject);
    }

    /// <summary>An event runs: the clock moves to it and it is folded into the fingerprint (queued and inline events alike).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Advance(long time, ulong kindWord, int subject)
    {
        _now = time;
        _fingerprint = Fingerprint.FoldEvent(_fingerprint, time, kindWord, subject);
    }
}

namespace TscSim.Core.Engine;

/// <summary>
/// A kind of event registered with a <see cref="Simulator"/>: a name (which goes into the run
/// fingerprint through a stable hash, so the fingerprint does not depend on registration
/// order), a <see cref="EventBand"/>, and the handler that runs it. Default: not a kind.
/// </summary>
public readonly struct EventKind : IEquatable<EventKind>
{
    internal EventKind(int id) => Id = id;

    /// <summary>Index of the kind in its simulator's registry (1-based; 0 is "none").</summary>
    internal int Id { get; }

    public bool Equals(EventKind other) => Id == other.Id;
    public override bool Equals(object? obj) => obj is EventKind k && Equals(k);
    public override int GetHashCode() => Id;
    public static bool operator ==(EventKind a, EventKind b) => a.Id == b.Id;
    public static bool operator !=(EventKind a, EventKind b) => a.Id != b.Id;
}

/// <summary>Runs events of the kinds it was registered for.</summary>
public interface IEventHandler
{
    /// <summary>
    /// Runs <paramref name="e"/> at <see cref="Simulator.Now"/> (= <c>e.Time</c>). It may schedule
    /// and cancel events, including at the current instant; it must not call <c>Run</c>.
    /// </summary>
    void OnEvent(Simulator sim, in SimEvent e);
}

/// <summary>An event as delivered to its handler.</summary>
/// <param name="Time">When it runs.</param>
/// <param name="Kind">What it is.</param>
/// <param name="Subject">Whom it concerns (a core, a vCPU, a VM: the kind defines it); part of the fingerprint.</param>
/// <param name="Payload">A 64-bit argument whose meaning the kind defines; not part of the fingerprint.</param>
public readonly record struct SimEvent(Time.SimTime Time, EventKind Kind, int Subject, long Payload);

/// <summary>
/// Identifies one scheduled event so it can be cancelled. A handle to an event that has run or
/// been cancelled is stale and cancelling it again does nothing. Default: no event.
/// </summary>
public readonly struct EventHandle : IEquatable<EventHandle>
{
    internal EventHandle(int slot, int generation)
    {
        Slot = slot;
        Generation = generation;
    }

    internal int Slot { get; }
    internal int Generation { get; }

    /// <summary>True for the default handle, which names no event.</summary>
    public bool IsNone => Generation == 0;

    public bool Equals(EventHandle other) => Slot == other.Slot && Generation == other.Generation;
    public override bool Equals(object? obj) => obj is EventHandle h && Equals(h);
    public override int GetHashCode() => HashCode.Combine(Slot, Generation);
    public static bool operator ==(EventHandle a, EventHandle b) => a.Equals(b);
    public static bool operator !=(EventHandle a, EventHandle b) => !a.Equals(b);
}

/// <summary>Why <see cref="Simulator.Run(Time.SimTime, long)"/> returned.</summary>
public enum RunOutcome
{
    /// <summary>Every event up to the limit ran; the clock now stands at the limit.</summary>
    ReachedTime,
    /// <summary>No events were left (only from <see cref="Simulator.RunToCompletion"/>).</summary>
    QueueEmpty,
    /// <summary>A handler called <see cref="Simulator.Stop"/>.</summary>
    Stopped,
    /// <summary>The event budget ran out before the time limit.</summary>
    BudgetExhausted,
}

using TscSim.Core.Time;

namespace TscSim.Core.Engine;

/// <summary>
/// The classic <em>hold model</em> for measuring event-queue performance (Vaucher and Duval,
/// "A comparison of simulation event list algorithms", CACM 1975; used since by SimPy, SimSharp
/// and ns-3 benchmarks): <see cref="Pending"/> events are kept pending, and each executed event
/// schedules exactly one new event at now + an increment drawn uniformly from
/// [0, 2 × mean). It runs on the real <see cref="Simulator"/>, fingerprint included.
/// </summary>
public sealed class HoldModel : IEventHandler
{
    private readonly RandomStream _increments;
    private readonly EventKind _hold;
    private readonly ulong _incrementBoundPs;

    /// <summary>A hold model with <paramref name="pending"/> events in the queue.</summary>
    public HoldModel(int pending, ulong seed = 1, Duration? meanIncrement = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pending, 1);
        Duration mean = meanIncrement ?? Duration.FromMicroseconds(1);
        ArgumentOutOfRangeException.ThrowIfLessThan(mean.Picoseconds, 1, nameof(meanIncrement));
        Pending = pending;
        _incrementBoundPs = checked((ulong)mean.Picoseconds * 2);
        Simulator = new Simulator(seed, initialCapacity: pending + 1);
        _hold = Simulator.RegisterKind("hold", EventBand.Guest, this);
        _increments = Simulator.Random.Open("hold.increments");
        for (int i = 0; i < pending; i++)
        {
            Simulator.ScheduleAfter(NextIncrement(), _hold, subject: i);
        }
    }

    /// <summary>Events kept pending.</summary>
    public int Pending { get; }

    /// <summary>The engine being exercised.</summary>
    public Simulator Simulator { get; }

    /// <summary>Runs <paramref name="events"/> more events.</summary>
    public void Run(long events)
    {
        // In slices of 2^16 events, as a scenario runs in slices of simulated time: the run loop is
        // entered often enough to be compiled as a whole method (tiered JIT), not only replaced on
        // the stack inside one endless call (OSR); the events and their order are the same.
        for (long left = events; left > 0; left -= ChunkEvents)
        {
            Simulator.RunToCompletion(Math.Min(left, ChunkEvents));
        }
    }

    private const long ChunkEvents = 1 << 16;

    /// <inheritdoc />
    public void OnEvent(Simulator sim, in SimEvent e) =>
        sim.ScheduleAfter(NextIncrement(), _hold, e.Subject);

    private Duration NextIncrement() =>
        Duration.FromPicoseconds((long)_increments.NextUInt64(_incrementBoundPs));
}

using TscSim.Core.Engine;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// Runs vCPUs on one <see cref="Simulator"/>: owns the <c>vcpu.resume</c> event kind
/// (<see cref="EventBand.Guest"/>, subject = vCPU id) and dispatches each resume to its vCPU,
/// which then runs a slice until it must wait for the rest of the system.
/// </summary>
public sealed class GuestExecutor : IEventHandler
{
    private readonly List<Vcpu> _vcpus = [];
    private readonly EventKind _resume;

    public GuestExecutor(Simulator sim)
    {
        Simulator = sim;
        _resume = sim.RegisterKind("vcpu.resume", EventBand.Guest, this);
    }

    public Simulator Simulator { get; }

    /// <summary>Every vCPU, by id.</summary>
    public IReadOnlyList<Vcpu> Vcpus => _vcpus;

    internal int Register(Vcpu vcpu)
    {
        _vcpus.Add(vcpu);
        return _vcpus.Count - 1;
    }

    internal EventHandle ScheduleResume(Vcpu vcpu, long atPs) =>
        Simulator.Schedule(SimTime.FromPicoseconds(atPs), _resume, vcpu.Id);

    /// <inheritdoc />
    void IEventHandler.OnEvent(Simulator sim, in SimEvent e) => _vcpus[e.Subject].RunSlice(e.Time);
}

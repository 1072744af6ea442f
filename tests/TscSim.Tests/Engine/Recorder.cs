using TscSim.Core.Engine;

namespace TscSim.Tests.Engine;

/// <summary>A handler that records (time ps, kind name, subject, payload) of every event it runs, and can run an action.</summary>
internal sealed class Recorder : IEventHandler
{
    public List<(long Time, string Kind, int Subject, long Payload)> Log { get; } = [];

    public Action<Simulator, SimEvent>? Then { get; set; }

    public void OnEvent(Simulator sim, in SimEvent e)
    {
        Log.Add((e.Time.Picoseconds, sim.KindName(e.Kind), e.Subject, e.Payload));
        Assert.Equal(e.Time, sim.Now);
        Then?.Invoke(sim, e);
    }
}

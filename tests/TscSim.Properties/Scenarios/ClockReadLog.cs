using TscSim.Core.Guest;
using TscSim.Core.Time;

namespace TscSim.Properties.Scenarios;

/// <summary>One guest clock read: which vCPU, when it began and ended (true time, ps), and what it returned (guest ns).</summary>
/// <param name="Vcpu">vCPU index in its VM.</param>
/// <param name="StartPs">When the read began (entering the kernel's read routine).</param>
/// <param name="EndPs">When it returned (the instant the model reports it at).</param>
/// <param name="Nanoseconds">The value.</param>
public readonly record struct ClockRead(int Vcpu, long StartPs, long EndPs, long Nanoseconds);

/// <summary>
/// Records every clock read of one VM with its start and end, passing everything on to the
/// model's own observer, so a property can check monotonicity across vCPUs in the
/// happens-before sense (see <see cref="Violations"/>).
/// </summary>
/// <remarks>
/// A clock is monotonic across CPUs when a read that begins after another has returned never
/// returns less; two reads that overlap in time cannot see each other, whatever order they
/// return in (a read's value is sampled inside it, longer before its return on a slower core).
/// That is what <see cref="Violations"/> counts: an oracle independent of the model's
/// <c>VmRecorder</c>, whose <c>cross_vcpu.violations</c> once compared reads in return order and
/// so counted overlapping reads (docs/properties.md, "Findings").
/// </remarks>
public sealed class ClockReadLog
{
    private readonly Dictionary<Vcpu, int> _index = new(ReferenceEqualityComparer.Instance);

    /// <summary>Installs a log on <paramref name="vcpus"/> (call after the model is built, before it runs).</summary>
    public ClockReadLog(IReadOnlyList<Vcpu> vcpus)
    {
        for (int v = 0; v < vcpus.Count; v++)
        {
            _index[vcpus[v]] = v;
            vcpus[v].Observer = new Tap(this, vcpus[v].Observer);
        }
    }

    /// <summary>The reads in the order they returned.</summary>
    public List<ClockRead> Reads { get; } = [];

    /// <summary>
    /// Reads that returned less than a read that had returned before they began (on any vCPU,
    /// this one included), with the largest such step back in ns.
    /// </summary>
    public (long Count, long WorstNs, ClockRead? Example) Violations()
    {
        long count = 0, worst = 0;
        ClockRead? example = null;
        var prefixMax = new long[Reads.Count];
        for (int j = 0; j < Reads.Count; j++)
        {
            ClockRead b = Reads[j];
            // The last read that returned before b began (reads are in return order).
            int lo = 0, hi = j - 1, last = -1;
            while (lo <= hi)
            {
                int mid = (lo + hi) / 2;
                if (Reads[mid].EndPs < b.StartPs)
                {
                    last = mid;
                    lo = mid + 1;
                }
                else
                {
                    hi = mid - 1;
                }
            }
            if (last >= 0 && prefixMax[last] > b.Nanoseconds)
            {
                count++;
                if (prefixMax[last] - b.Nanoseconds > worst)
                {
                    worst = prefixMax[last] - b.Nanoseconds;
                    example = b;
                }
            }
            prefixMax[j] = j == 0 ? b.Nanoseconds : Math.Max(prefixMax[j - 1], b.Nanoseconds);
        }
        return (count, worst, example);
    }

    private sealed class Tap(ClockReadLog log, IExecutionObserver? inner) : IExecutionObserver
    {
        public void OnTscRead(Vcpu vcpu, SimTime at, TscValue value, bool exited, long cycles) => inner?.OnTscRead(vcpu, at, value, exited, cycles);

        public void OnProbe(Vcpu vcpu, SimTime at, int line, long value) => inner?.OnProbe(vcpu, at, line, value);

        public void OnFault(Vcpu vcpu, GuestFault fault) => inner?.OnFault(vcpu, fault);

        public void OnClockRead(Vcpu vcpu, SimTime begin, SimTime at, long nanoseconds, long cycles, int exits)
        {
            log.Reads.Add(new ClockRead(log._index[vcpu], begin.Picoseconds, at.Picoseconds, nanoseconds));
            if (inner is not null)
            {
                inner.OnClockRead(vcpu, begin, at, nanoseconds, cycles, exits);
            }
        }

        public void OnClockRead(Vcpu vcpu, SimTime at, long nanoseconds, long cycles, int exits)
        {
            // A caller that does not give the start: it began at most this long before (the read's
            // cycles at the core's current frequency, rounded up, so possibly a little earlier).
            long took = (long)(((Int128)cycles * 1_000_000_000_000_000 + vcpu.Core.Frequency.Millihertz - 1) / vcpu.Core.Frequency.Millihertz);
            log.Reads.Add(new ClockRead(log._index[vcpu], at.Picoseconds - took, at.Picoseconds, nanoseconds));
            inner?.OnClockRead(vcpu, at, nanoseconds, cycles, exits);
        }
    }
}

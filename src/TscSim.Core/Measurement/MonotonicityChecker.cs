namespace TscSim.Core.Measurement;

/// <summary>
/// Checks that a sequence of clock values never goes backwards. Feed the values in exact
/// true-time order: one checker per vCPU for that vCPU's reads, and one per VM fed by all of its
/// vCPUs' reads (cross-vCPU monotonicity).
/// </summary>
/// <remarks>
/// <para>Each value is compared with the one observed just before it: value &lt; previous is a
/// <em>violation</em> (its size previous − value a <em>backward step</em>), value == previous a
/// <em>stall</em>. Reads at the same true instant (on two vCPUs, for the VM-wide checker) are
/// compared in the order they arrive; the engine delivers same-instant reads in its documented
/// tie order, so the result is still deterministic.</para>
/// <para>Signed values (<see cref="Observe(long)"/>: guest ns) and unsigned ones
/// (<see cref="ObserveUnsigned"/>: TSC ticks, compared as u64 as the hardware does) are held in
/// one order-preserving unsigned form (a signed value with its sign bit flipped), so backward
/// steps are exact over the whole range of either. Do not mix the two on one checker.
/// Observing does not allocate.</para>
/// </remarks>
public sealed class MonotonicityChecker
{
    private const ulong SignFlip = 1UL << 63;
    private long _count;
    private ulong _previous;
    private long _violations;
    private long _stalls;
    private ulong _worstBackstep;

    /// <summary>How many values have been observed.</summary>
    public long Count => _count;

    /// <summary>How many values were smaller than the value before them.</summary>
    public long Violations => _violations;

    /// <summary>How many values were equal to the value before them.</summary>
    public long Stalls => _stalls;

    /// <summary>The largest backward step (previous − value, positive); 0 when there was none.</summary>
    public ulong WorstBackstep => _worstBackstep;

    /// <summary>Observes a signed value (guest nanoseconds). Returns true when it went backwards.</summary>
    public bool Observe(long value) => Next(unchecked((ulong)value) ^ SignFlip);

    /// <summary>Observes an unsigned value (a TSC value), compared as u64. Returns true when it went backwards.</summary>
    public bool ObserveUnsigned(ulong value) => Next(value);

    private bool Next(ulong ordered)
    {
        bool backwards = false;
        if (_count > 0)
        {
            if (ordered < _previous)
            {
                backwards = true;
                _violations++;
                ulong step = _previous - ordered;
                if (step > _worstBackstep)
                {
                    _worstBackstep = step;
                }
            }
            else if (ordered == _previous)
            {
                _stalls++;
            }
        }
        _previous = ordered;
        _count++;
        return backwards;
    }
}

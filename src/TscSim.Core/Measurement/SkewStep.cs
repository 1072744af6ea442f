namespace TscSim.Core.Measurement;

/// <summary>
/// When the change of a guest clock between two consecutive reads of one vCPU is a
/// <em>step</em> (a discontinuity: a pause the clock did not see, a clock set or resynchronised)
/// rather than drift. One definition, shared by the drift fit (<see cref="PiecewiseDrift"/>) and
/// the skew between vCPUs (<see cref="CrossVcpuSkew"/>).
/// </summary>
/// <remarks>
/// Between two reads Δt ns of true time apart whose skew (clock − true time) changed by Δs ns,
/// the clock advanced Δc = Δt + Δs. The change is a step when both hold:
/// <list type="bullet">
/// <item>|Δs| &gt; <see cref="MinStepNs"/> (1 ms): smaller changes are drift or read jitter,
/// whatever the spacing;</item>
/// <item>the clock's apparent rate Δc / Δt is outside [1/2, 2], i.e. 2·Δc &lt; Δt (the clock
/// (nearly) stopped or went back: a pause of the VM it did not see) or Δc &gt; 2·Δt (it jumped
/// forward). A clock ticking between half and twice the true rate (a guest at 3/2 speed after a
/// migration) drifts; it does not step.</item>
/// </list>
/// Exact integer arithmetic (Int128), no rounding. Reads at the same true instant (Δt = 0) that
/// differ by more than 1 ms are a step.
/// </remarks>
public static class SkewStep
{
    /// <summary>The smallest change of skew between consecutive reads that can be a step: 1 ms (in ns).</summary>
    public const long MinStepNs = 1_000_000;

    /// <summary>
    /// Whether a change of skew by <paramref name="deltaSkewNs"/> over <paramref name="deltaTrueNs"/>
    /// ns of true time (≥ 0) between consecutive reads of one vCPU is a step.
    /// </summary>
    public static bool IsStep(long deltaTrueNs, long deltaSkewNs)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(deltaTrueNs);
        if (deltaSkewNs >= -MinStepNs && deltaSkewNs <= MinStepNs)
        {
            return false;
        }
        Int128 dt = deltaTrueNs;
        Int128 dc = dt + deltaSkewNs;
        return 2 * dc < dt || dc > 2 * dt;
    }
}

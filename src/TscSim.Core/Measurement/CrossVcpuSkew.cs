namespace TscSim.Core.Measurement;

/// <summary>
/// The largest difference between two vCPUs' clocks at the same true time
/// (<c>cross_vcpu.max_skew_ns</c>), comparing only reads close enough in time to say so.
/// </summary>
/// <remarks>
/// <para>Definition. Reads arrive in true-time order of their return; skew = clock − true time
/// at return. When vCPU a reads (true time t, skew s), its <em>bracket</em> is [t′, t] with t′,
/// s′ its previous read, or just [t, t] when it has none or when the change from it is a
/// <see cref="SkewStep">step</see> (a pause the clock did not see, a clock set). For every other
/// vCPU b whose latest read (t_b, s_b) lies in the bracket (t′ ≤ t_b ≤ t), a's skew is
/// interpolated linearly at t_b, ŝ = s′ + (s − s′)·(t_b − t′)/(t − t′) (ŝ = s when t′ = t), and
/// |s_b − ŝ| is a candidate, rounded to the nearest ns (halves up); the result is the largest
/// candidate. Comparing skews (not values) at one instant t_b removes the time between the two
/// reads, and the interpolation removes a rate the two clocks share (a guest at 3/2 speed on
/// both vCPUs has no skew between them).</para>
/// <para>Consequences. Reads separated by a pause are never compared: across a pause the clock
/// steps, and a step is never a bracket, so the migration downtime is not a skew between vCPUs.
/// Each alternation between two vCPUs (a read of b, then a's next read) gives one comparison; a
/// vCPU that stops reading is compared no more (its latest read falls behind every bracket).
/// Null (<see cref="MaxSkew"/>) until a comparison was made: one vCPU, or vCPUs that never read
/// near one another.</para>
/// <para>Exact integer arithmetic (Int128: the bracket is not a step, so |s − s′| is at most
/// max(1 ms, t − t′) and every product stays below 2^127), O(vCPUs) per read, no allocation.</para>
/// </remarks>
public sealed class CrossVcpuSkew
{
    private const long Small = 1L << 30; // operands below this in magnitude take the 64-bit path

    private static bool IsSmall(long x) => unchecked((ulong)(x + Small)) < 2 * Small;

    private readonly long[] _lastTrueNs;
    private readonly long[] _lastSkewNs;
    private readonly bool[] _hasRead;
    private ulong _max;
    private bool _compared;

    /// <summary>A tracker for a VM with <paramref name="vcpus"/> vCPUs (at least one).</summary>
    public CrossVcpuSkew(int vcpus)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vcpus, 1);
        _lastTrueNs = new long[vcpus];
        _lastSkewNs = new long[vcpus];
        _hasRead = new bool[vcpus];
    }

    /// <summary>The number of vCPUs.</summary>
    public int VcpuCount => _lastTrueNs.Length;

    /// <summary>The largest skew between two vCPUs at one instant (ns); null before any comparison.</summary>
    public ulong? MaxSkew => _compared ? _max : null;

    /// <summary>
    /// Vcpu <paramref name="vcpu"/> read its clock with skew <paramref name="skewNs"/>, returning
    /// at <paramref name="trueNs"/> (not before any earlier read's return). Returns the largest
    /// candidate this read gave (ns), or null when it was compared with nothing.
    /// </summary>
    public ulong? Observe(int vcpu, long trueNs, long skewNs) => Observe(vcpu, trueNs, skewNs, wantLargest: true);

    /// <summary>
    /// <see cref="Observe(int, long, long)"/> for a caller that needs only <see cref="MaxSkew"/>
    /// (once per clock read): a candidate that cannot exceed the maximum so far is not divided out.
    /// </summary>
    public void Record(int vcpu, long trueNs, long skewNs) => Observe(vcpu, trueNs, skewNs, wantLargest: false);

    private ulong? Observe(int vcpu, long trueNs, long skewNs, bool wantLargest)
    {
        long[] lastTrue = _lastTrueNs;
        long[] lastSkew = _lastSkewNs;
        bool[] hasRead = _hasRead;
        if ((uint)vcpu >= (uint)lastTrue.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(vcpu), vcpu, "No such vCPU.");
        }
        long fromTrue = trueNs, fromSkew = skewNs;
        if (hasRead[vcpu] && !SkewStep.IsStep(checked(trueNs - lastTrue[vcpu]), checked(skewNs - lastSkew[vcpu])))
        {
            fromTrue = lastTrue[vcpu];
            fromSkew = lastSkew[vcpu];
        }
        long span = trueNs - fromTrue;
        ulong? largest = null;
        for (int j = 0; j < lastTrue.Length; j++)
        {
            if (j == vcpu || !hasRead[j] || lastTrue[j] < fromTrue || lastTrue[j] > trueNs)
            {
                continue;
            }
            ulong d;
            if (span == 0)
            {
                d = (ulong)Int128.Abs((Int128)lastSkew[j] - skewNs);
            }
            else if (span < Small && IsSmall(lastSkew[j]) && IsSmall(fromSkew) && IsSmall(skewNs))
            {
                // The same arithmetic in 64 bits when every operand is below 2^30 in magnitude
                // (skews under a second, brackets under a second: the common case): each product
                // is below 2^61, their sum below 2^63.
                long scaled = (lastSkew[j] * span) - (fromSkew * span) - ((skewNs - fromSkew) * (lastTrue[j] - fromTrue));
                long rounded = Math.Abs(scaled) + (span / 2);
                // d ≤ max exactly when rounded < (max + 1)·span (below 2^61 for a max under 2^31):
                // then this candidate changes nothing and the division is skipped.
                if (!wantLargest && _compared && _max < (1UL << 31) && rounded < (long)(_max + 1) * span)
                {
                    continue;
                }
                d = (ulong)(rounded / span);
            }
            else
            {
                // D·(s_b − ŝ) = s_b·D − s′·D − (s − s′)·(t_b − t′), exactly.
                Int128 scaled = checked(((Int128)lastSkew[j] * span) - ((Int128)fromSkew * span)
                    - (((Int128)skewNs - fromSkew) * (lastTrue[j] - fromTrue)));
                d = (ulong)((Int128.Abs(scaled) + (span / 2)) / span);
            }
            if (!_compared || d > _max)
            {
                _max = d;
                _compared = true;
            }
            if (largest is not ulong l || d > l)
            {
                largest = d;
            }
        }
        lastTrue[vcpu] = trueNs;
        lastSkew[vcpu] = skewNs;
        hasRead[vcpu] = true;
        return largest;
    }
}

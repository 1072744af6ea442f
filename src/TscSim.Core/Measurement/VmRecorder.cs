namespace TscSim.Core.Measurement;

/// <summary>
/// The measurements of one VM: a <see cref="VcpuRecorder"/> per vCPU, plus the cross-vCPU
/// checks of the summary's <c>cross_vcpu</c> section: monotonicity of the clock and of the TSC
/// over all vCPUs' reads in true-time order, and the largest skew between two vCPUs
/// (<see cref="CrossVcpuSkew"/>).
/// </summary>
/// <remarks>
/// Reads must arrive in exact true-time order across the whole VM (separately for clock reads and
/// TSC reads); a read earlier than the previous one of its kind throws. Reads at the same true
/// instant on two vCPUs are compared in arrival order. <see cref="OnClockRead"/> and
/// <see cref="OnTscRead"/> take O(vCPUs) time and do not allocate.
/// </remarks>
public sealed class VmRecorder
{
    private readonly VcpuRecorder[] _vcpus;
    private readonly MonotonicityChecker _clock = new();
    private readonly MonotonicityChecker _tsc = new();
    private readonly CrossVcpuSkew _skew;
    private long _lastClockTrueNs = long.MinValue;
    private long _lastTscTrueNs = long.MinValue;

    /// <summary>A recorder for VM <paramref name="id"/> with <paramref name="vcpuCount"/> vCPUs (at least one).</summary>
    public VmRecorder(string id, int vcpuCount)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentOutOfRangeException.ThrowIfLessThan(vcpuCount, 1);
        Id = id;
        _vcpus = new VcpuRecorder[vcpuCount];
        for (int i = 0; i < vcpuCount; i++)
        {
            _vcpus[i] = new VcpuRecorder(i);
        }
        _skew = new CrossVcpuSkew(vcpuCount);
    }

    /// <summary>The VM's id.</summary>
    public string Id { get; }

    /// <summary>The per-vCPU recorders, indexed by vCPU id.</summary>
    public IReadOnlyList<VcpuRecorder> Vcpus => _vcpus;

    /// <summary>Clock reads (any vCPU) below the VM's previous clock read (<c>cross_vcpu.violations</c>).</summary>
    public long CrossViolations => _clock.Violations;

    /// <summary>Clock reads (any vCPU) equal to the VM's previous clock read.</summary>
    public long CrossStalls => _clock.Stalls;

    /// <summary>The largest backward step across vCPUs in ns, 0 if none (<c>cross_vcpu.worst_backstep_ns</c>).</summary>
    public ulong CrossWorstBackstepNs => _clock.WorstBackstep;

    /// <summary>The largest skew between two vCPUs in ns, see <see cref="CrossVcpuSkew"/> (<c>cross_vcpu.max_skew_ns</c>).</summary>
    public ulong CrossMaxSkewNs => _skew.MaxSkew;

    /// <summary>TSC reads (any vCPU) below the VM's previous TSC read as u64 (<c>cross_vcpu.tsc_violations</c>).</summary>
    public long CrossTscViolations => _tsc.Violations;

    /// <summary>The largest backward step of the TSC across vCPUs in ticks, 0 if none.</summary>
    public ulong CrossTscWorstBackstepCycles => _tsc.WorstBackstep;

    /// <summary>
    /// A clock read on vCPU <paramref name="vcpu"/>; see <see cref="VcpuRecorder.OnClockRead"/>.
    /// Returns true when the value went backwards on its vCPU or across the VM (a row worth
    /// keeping in <see cref="ReadSeries"/>).
    /// </summary>
    public bool OnClockRead(int vcpu, long trueNs, long clockNs, long cycles, int exits)
    {
        VcpuRecorder recorder = Vcpu(vcpu);
        if (trueNs < _lastClockTrueNs)
        {
            throw VcpuRecorder.OutOfOrder(trueNs, _lastClockTrueNs);
        }
        _lastClockTrueNs = trueNs;
        bool backwards = recorder.OnClockRead(trueNs, clockNs, cycles, exits);
        _skew.Observe(vcpu, checked(clockNs - trueNs));
        return _clock.Observe(clockNs) | backwards;
    }

    /// <summary>
    /// A TSC read on vCPU <paramref name="vcpu"/>; see <see cref="VcpuRecorder.OnTscRead"/>.
    /// Returns true when the value went backwards (as u64) on its vCPU or across the VM.
    /// </summary>
    public bool OnTscRead(int vcpu, long trueNs, ulong tscValue, bool exited, long cycles)
    {
        VcpuRecorder recorder = Vcpu(vcpu);
        if (trueNs < _lastTscTrueNs)
        {
            throw VcpuRecorder.OutOfOrder(trueNs, _lastTscTrueNs);
        }
        _lastTscTrueNs = trueNs;
        bool backwards = recorder.OnTscRead(trueNs, tscValue, exited, cycles);
        return _tsc.ObserveUnsigned(tscValue) | backwards;
    }

    private VcpuRecorder Vcpu(int vcpu)
    {
        if ((uint)vcpu >= (uint)_vcpus.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(vcpu), vcpu, $"VM {Id} has {_vcpus.Length} vCPUs.");
        }
        return _vcpus[vcpu];
    }
}

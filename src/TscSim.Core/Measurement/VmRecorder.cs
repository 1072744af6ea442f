namespace TscSim.Core.Measurement;

/// <summary>
/// The measurements of one VM: a <see cref="VcpuRecorder"/> per vCPU, plus the cross-vCPU
/// checks of the summary's <c>cross_vcpu</c> section: monotonicity of the clock and of the TSC
/// over all vCPUs' reads in true-time order, and the largest skew between two vCPUs
/// (<see cref="CrossVcpuSkew"/>).
/// </summary>
/// <remarks>
/// Reads must arrive in exact true-time order of their return across the whole VM (separately
/// for clock reads and TSC reads); a read earlier than the previous one of its kind throws.
/// Clock reads across vCPUs are checked in the happens-before order (a read that began after
/// another returned must not return less); TSC reads, which are instantaneous, in arrival order.
/// <see cref="OnClockRead(int, long, long, long, long, int)"/> and <see cref="OnTscRead"/> take
/// O(vCPUs) time and do not allocate in steady state.
/// </remarks>
public sealed class VmRecorder
{
    private readonly VcpuRecorder[] _vcpus;
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
    public long CrossViolations => _crossViolations;

    /// <summary>Clock reads (any vCPU) equal to the VM's previous clock read.</summary>
    public long CrossStalls => _crossStalls;

    /// <summary>The largest backward step across vCPUs in ns, 0 if none (<c>cross_vcpu.worst_backstep_ns</c>).</summary>
    public ulong CrossWorstBackstepNs => _crossWorst;

    /// <summary>
    /// The largest skew between two vCPUs at one instant in ns, see <see cref="CrossVcpuSkew"/>
    /// (<c>cross_vcpu.max_skew_ns</c>); null when no two reads were close enough to compare.
    /// </summary>
    public ulong? CrossMaxSkewNs => _skew.MaxSkew;

    /// <summary>TSC reads (any vCPU) below the VM's previous TSC read as u64 (<c>cross_vcpu.tsc_violations</c>).</summary>
    public long CrossTscViolations => _tsc.Violations;

    /// <summary>The largest backward step of the TSC across vCPUs in ticks, 0 if none.</summary>
    public ulong CrossTscWorstBackstepCycles => _tsc.WorstBackstep;

    /// <summary>
    /// A clock read on vCPU <paramref name="vcpu"/>; see <see cref="VcpuRecorder.OnClockRead"/>.
    /// Returns true when the value went backwards on its vCPU or across the VM (a row worth
    /// keeping in <see cref="ReadSeries"/>).
    /// </summary>
    public bool OnClockRead(int vcpu, long trueNs, long clockNs, long cycles, int exits) =>
        OnClockRead(vcpu, trueNs, trueNs, clockNs, cycles, exits);

    // Reads that have returned but may still overlap a later read: (return ns, value), in return order.
    // A ring of a power-of-two length (16, doubled when full): indices wrap with a mask, not a division.
    private long[] _pendingEnd = new long[16];
    private long[] _pendingValue = new long[16];
    private int _pendingHead, _pendingCount;
    private long _settledMax;
    private bool _hasSettled;
    private long _crossViolations, _crossStalls;
    private ulong _crossWorst;

    /// <summary>
    /// A clock read on <paramref name="vcpu"/> that began at <paramref name="beginNs"/> and
    /// returned <paramref name="clockNs"/> at <paramref name="trueNs"/>; reads arrive in return
    /// order. Across vCPUs a violation is a read that began after another read had returned and
    /// returned less (the happens-before order an observer can see); two reads that overlap in
    /// time are not ordered, whatever order they return in (the value is sampled inside the read).
    /// Per vCPU, reads never overlap and are compared in order. Returns whether the read went
    /// backwards on its vCPU or across the VM.
    /// </summary>
    public bool OnClockRead(int vcpu, long beginNs, long trueNs, long clockNs, long cycles, int exits)
    {
        bool cross = CrossCheck(beginNs, trueNs, clockNs);
        return OnClockReadCore(vcpu, trueNs, clockNs, cycles, exits) | cross;
    }

    private bool CrossCheck(long beginNs, long endNs, long value)
    {
        while (_pendingCount > 0 && _pendingEnd[_pendingHead] <= beginNs)
        {
            long v = _pendingValue[_pendingHead];
            if (!_hasSettled || v > _settledMax)
            {
                _settledMax = v;
                _hasSettled = true;
            }
            _pendingHead = (_pendingHead + 1) & (_pendingEnd.Length - 1);
            _pendingCount--;
        }
        bool backwards = false;
        if (_hasSettled)
        {
            if (value < _settledMax)
            {
                backwards = true;
                _crossViolations++;
                ulong step = unchecked((ulong)(_settledMax - value));
                if (step > _crossWorst)
                {
                    _crossWorst = step;
                }
            }
            else if (value == _settledMax)
            {
                _crossStalls++;
            }
        }
        if (_pendingCount == _pendingEnd.Length)
        {
            // Grow (rare: only as many reads can overlap as there are vCPUs).
            var end = new long[_pendingEnd.Length * 2];
            var val = new long[_pendingEnd.Length * 2];
            for (int i = 0; i < _pendingCount; i++)
            {
                end[i] = _pendingEnd[(_pendingHead + i) % _pendingEnd.Length];
                val[i] = _pendingValue[(_pendingHead + i) % _pendingEnd.Length];
            }
            (_pendingEnd, _pendingValue, _pendingHead) = (end, val, 0);
        }
        int tail = (_pendingHead + _pendingCount) & (_pendingEnd.Length - 1);
        _pendingEnd[tail] = endNs;
        _pendingValue[tail] = value;
        _pendingCount++;
        return backwards;
    }

    private bool OnClockReadCore(int vcpu, long trueNs, long clockNs, long cycles, int exits)
    {
        VcpuRecorder recorder = Vcpu(vcpu);
        if (trueNs < _lastClockTrueNs)
        {
            throw VcpuRecorder.OutOfOrder(trueNs, _lastClockTrueNs);
        }
        _lastClockTrueNs = trueNs;
        bool backwards = recorder.OnClockRead(trueNs, clockNs, cycles, exits);
        if (!VcpuRecorder.IsWild(clockNs, trueNs))
        {
            _skew.Record(vcpu, trueNs, clockNs - trueNs);
        }
        return backwards;
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

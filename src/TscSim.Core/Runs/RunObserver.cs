using TscSim.Core.Guest;
using TscSim.Core.Measurement;
using TscSim.Core.Time;

namespace TscSim.Core.Runs;

/// <summary>
/// Feeds what the vCPUs report to Measurement: clock and TSC reads to each VM's recorder (in
/// exact true-time order, as the engine delivers them) and clock reads to the bounded series
/// behind <c>reads.csv</c>. Faults are kept for the summary.
/// </summary>
public sealed class RunObserver : IExecutionObserver
{
    private readonly List<(VmRecorder Vm, int Vcpu, int VmIndex)> _byVcpuId = [];
    private readonly Dictionary<Hardware.Host, int> _hostIds = [];

    private readonly Engine.Simulator? _sim;

    /// <param name="readsCsvMaxRows">Bound on the rows of <c>reads.csv</c>.</param>
    /// <param name="readsInterval">Keep at most one series row per vCPU per this much true time.</param>
    /// <param name="sim">The run's simulator: every observed read and fault is folded into its fingerprint (null: not folded).</param>
    public RunObserver(int readsCsvMaxRows, Duration? readsInterval = null, Engine.Simulator? sim = null)
    {
        _sim = sim;
        Series = new ReadSeries(Math.Max(ReadSeries.MinCapacity, readsCsvMaxRows));
        ReadsInterval = readsInterval;
    }

    /// <summary>The decimated series of clock reads.</summary>
    public ReadSeries Series { get; }

    /// <summary>Keep at most one series row per vCPU per this much true time (null: every read is a candidate).</summary>
    public Duration? ReadsInterval { get; }

    /// <summary>Recorders by VM, in scenario order.</summary>
    public List<VmRecorder> Vms { get; } = [];

    /// <summary>Faults that stopped vCPUs.</summary>
    public List<GuestFault> Faults { get; } = [];

    private long[] _lastSeriesNs = [];

    /// <summary>Registers a VM's vCPUs (call before it runs).</summary>
    public VmRecorder AddVm(string id, IReadOnlyList<Vcpu> vcpus)
    {
        var recorder = new VmRecorder(id, vcpus.Count);
        int vmIndex = Series.RegisterVm(id);
        Vms.Add(recorder);
        for (int v = 0; v < vcpus.Count; v++)
        {
            int id2 = vcpus[v].Id;
            while (_byVcpuId.Count <= id2)
            {
                _byVcpuId.Add(default);
            }
            _byVcpuId[id2] = (recorder, v, vmIndex);
        }
        Array.Resize(ref _lastSeriesNs, _byVcpuId.Count);
        for (int i = 0; i < _lastSeriesNs.Length; i++)
        {
            _lastSeriesNs[i] = long.MinValue;
        }
        return recorder;
    }

    // Per vCPU id: the host it was on at its last series row and that host's index (a vCPU
    // changes hosts only by migration, so the dictionary is consulted once per host change).
    private Hardware.Host?[] _lastHost = [];
    private int[] _lastHostIndex = [];

    private int HostIndex(Vcpu vcpu)
    {
        var host = vcpu.Core.Host;
        int v = vcpu.Id;
        if ((uint)v < (uint)_lastHost.Length && ReferenceEquals(_lastHost[v], host))
        {
            return _lastHostIndex[v];
        }
        if (!_hostIds.TryGetValue(host, out int id))
        {
            id = Series.RegisterHost(host.Config.Id);
            _hostIds[host] = id;
        }
        if (v >= _lastHost.Length)
        {
            Array.Resize(ref _lastHost, Math.Max(v + 1, _byVcpuId.Count));
            Array.Resize(ref _lastHostIndex, _lastHost.Length);
        }
        _lastHost[v] = host;
        _lastHostIndex[v] = id;
        return id;
    }

    /// <inheritdoc />
    public void OnClockRead(Vcpu vcpu, SimTime at, long nanoseconds, long cycles, int exits) =>
        OnClockRead(vcpu, at, at, nanoseconds, cycles, exits);

    /// <inheritdoc />
    public void OnClockRead(Vcpu vcpu, SimTime begin, SimTime at, long nanoseconds, long cycles, int exits)
    {
        if (_sim is { } sim)
        {
            sim.FoldResult(Engine.ResultWord.Tag(Engine.ResultWord.ClockRead, vcpu.Id, exits));
            sim.FoldResult(unchecked((ulong)at.Picoseconds));
            sim.FoldResult(unchecked((ulong)nanoseconds));
            sim.FoldResult(unchecked((ulong)cycles));
        }
        var (vm, v, vmIndex) = _byVcpuId[vcpu.Id];
        long trueNs = at.Picoseconds / 1000;
        bool backwards = vm.OnClockRead(v, begin.Picoseconds / 1000, trueNs, nanoseconds, cycles, exits);
        if (backwards || ReadsInterval is not Duration gap || trueNs - _lastSeriesNs[vcpu.Id] >= gap.Picoseconds / 1000)
        {
            _lastSeriesNs[vcpu.Id] = trueNs;
            Series.Add(trueNs, vmIndex, v, vcpu.Core.Index, HostIndex(vcpu), nanoseconds, exits > 0, pin: backwards, cycles: cycles);
        }
    }

    /// <inheritdoc />
    public void OnTscRead(Vcpu vcpu, SimTime at, TscValue value, bool exited, long cycles)
    {
        if (_sim is { } sim)
        {
            sim.FoldResult(Engine.ResultWord.Tag(Engine.ResultWord.TscRead, vcpu.Id, exited ? 1 : 0));
            sim.FoldResult(unchecked((ulong)at.Picoseconds));
            sim.FoldResult(value.Raw);
            sim.FoldResult(unchecked((ulong)cycles));
        }
        var (vm, v, _) = _byVcpuId[vcpu.Id];
        vm.OnTscRead(v, at.Picoseconds / 1000, value.Raw, exited, cycles);
    }

    /// <inheritdoc />
    public void OnProbe(Vcpu vcpu, SimTime at, int line, long value)
    {
    }

    /// <inheritdoc />
    public void OnFault(Vcpu vcpu, GuestFault fault)
    {
        if (_sim is { } sim)
        {
            sim.FoldResult(Engine.ResultWord.Tag(Engine.ResultWord.Fault, vcpu.Id, (int)fault.Kind));
            sim.FoldResult(unchecked((ulong)fault.Time.Picoseconds));
        }
        Faults.Add(fault);
    }
}

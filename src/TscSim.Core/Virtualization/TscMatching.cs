using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>
/// How a hypervisor era turns host-initiated TSC writes (vCPU creation, live-migration restore,
/// userspace's KVM_SET_MSRS) into per-vCPU offsets, and which vCPUs it counts as synchronized.
/// One implementation per era's rules, chosen by the preset: today's
/// <see cref="KvmSynchronizeTsc"/>; 2.6.37's <c>kvm_write_tsc</c> can sit beside it.
/// </summary>
public interface ITscMatching
{
    /// <summary>The current offset generation (a new one starts at every unmatched write).</summary>
    long Generation { get; }

    /// <summary>vCPUs whose last host-initiated write matched the current generation (KVM's nr_vcpus_matched_tsc + 1).</summary>
    int MatchedVcpus { get; }

    /// <summary>
    /// A host-initiated write of <paramref name="data"/> to vCPU <paramref name="v"/> at
    /// <paramref name="at"/> (<paramref name="userValue"/>: from userspace rather than creation);
    /// sets the vCPU's TSC offset. With <paramref name="publish"/> the kvmclock consequences
    /// (master clock, clock updates) follow at once; without, the caller publishes.
    /// </summary>
    void Write(int v, SimTime at, ulong data, bool userValue, bool publish);

    /// <summary>Starts afresh, as a new <c>struct kvm</c> on a live-migration destination does.</summary>
    void Reset();
}

/// <summary>
/// The state of <c>kvm_synchronize_tsc</c> (arch/x86/kvm/x86.c), the fields of <c>struct
/// kvm_arch</c> it reads and writes. A value: starting afresh is an assignment.
/// </summary>
internal struct TscSync
{
    /// <summary>last_tsc_nsec: host monotonic ns of the last host-initiated write.</summary>
    public long LastNsec;

    /// <summary>last_tsc_write: guest TSC ticks written last.</summary>
    public ulong LastWrite;

    /// <summary>last_tsc_khz: the VM's TSC rate (kHz) at the last write.</summary>
    public long LastKhz;

    /// <summary>user_set_tsc: userspace has written a TSC value at least once.</summary>
    public bool UserSet;

    /// <summary>cur_tsc_generation: a counter, bumped by every unmatched write.</summary>
    public long Generation;

    /// <summary>cur_tsc_offset: the generation's offset, guest TSC ticks minus host TSC ticks.</summary>
    public long Offset;

    /// <summary>cur_tsc_nsec: host monotonic ns at which the generation began.</summary>
    public long Nsec;

    /// <summary>cur_tsc_write: guest TSC ticks written when the generation began.</summary>
    public ulong Write;

    /// <summary>nr_vcpus_matched_tsc: vCPUs beyond the first that matched this generation (a count).</summary>
    public int Matched;

    /// <summary>Each vCPU's this_tsc_generation (−1: none yet); null until the first write.</summary>
    public long[]? VcpuGeneration;
}

/// <summary>
/// Today's <c>kvm_synchronize_tsc</c> (arch/x86/kvm/x86.c, Linux 6.x): a write of 0 (vCPU
/// creation), or one within one second of guest cycles of where the last write's TSC would be
/// now, at the same rate, <em>matches</em>: on a stable host it reuses the generation's exact
/// offset; otherwise the data is advanced by the elapsed time and the offset computed on this
/// vCPU's core. An unmatched write starts a new generation. Then <c>kvm_track_tsc_matching</c>.
/// </summary>
internal sealed class KvmSynchronizeTsc(Vm vm) : ITscMatching
{
    private TscSync _s;

    /// <inheritdoc />
    public long Generation => _s.Generation;

    /// <inheritdoc />
    public int MatchedVcpus => _s.Matched + 1;

    /// <inheritdoc />
    public void Reset() => _s = new TscSync { Generation = _s.Generation }; // the counter runs on: generations stay distinct

    /// <inheritdoc />
    public void Write(int v, SimTime at, ulong data, bool userValue, bool publish)
    {
        if (_s.VcpuGeneration?.Length != vm.Platforms.Length)
        {
            _s.VcpuGeneration = Enumerable.Repeat(-1L, vm.Platforms.Length).ToArray();
        }
        HypervisorPlatform p = vm.Platforms[v];
        long ns = vm.Host.Monotonic.NanosecondsAt(at);
        long elapsed = ns - _s.LastNsec;
        long khz = vm.VirtualTscKhz;
        bool synchronizing = false;
        if (data == 0)
        {
            synchronizing = true;
        }
        else if (_s.UserSet)
        {
            ulong expected = unchecked(_s.LastWrite + NsecToCycles(elapsed));
            long tscHz = khz * 1_000;
            long diff = unchecked((long)(data - expected));
            synchronizing = diff > -tscHz && diff < tscHz;
        }
        if (userValue)
        {
            _s.UserSet = true;
        }
        bool matched = false;
        long offset = OffsetFor(p, at, data);
        if (synchronizing && khz == _s.LastKhz)
        {
            var (stable, _) = TscPolicy.HostTsc(vm.Host, vm.HostMarkedUnstable);
            offset = stable ? _s.Offset : OffsetFor(p, at, unchecked(data + NsecToCycles(elapsed)));
            matched = true;
        }
        _s.LastNsec = ns;
        _s.LastWrite = data;
        _s.LastKhz = khz;
        if (!matched)
        {
            _s.Generation++;
            _s.Nsec = ns;
            _s.Write = data;
            _s.Offset = offset;
            _s.Matched = 0;
        }
        else if (_s.VcpuGeneration[v] != _s.Generation)
        {
            _s.Matched++;
        }
        _s.VcpuGeneration[v] = _s.Generation;
        p.Controls.TscOffset = offset;
        if (vm.Kvmclock is Kvmclock kvmclock)
        {
            kvmclock.TscWrite = _s.Write;
            kvmclock.TscWriteNs = _s.Nsec;
            // kvm_track_tsc_matching: a new generation, or the master clock's condition changing,
            // requests a master clock update and with it a clock update for every vCPU.
            if (publish && (!matched || kvmclock.MasterClock != vm.AllVcpusMatched))
            {
                kvmclock.UpdateMasterClock(at);
                kvmclock.RequestUpdateAll(at);
            }
        }
    }

    /// <summary>The offset at which vCPU <paramref name="p"/> reads <paramref name="value"/> at <paramref name="at"/>.</summary>
    private static long OffsetFor(HypervisorPlatform p, SimTime at, ulong value) =>
        unchecked(p.Controls.TscOffset + (long)(value - p.NativeGuestTsc(at)));

    /// <summary>nsec_to_cycles at the VM's rate (kvm_get_time_scale(virtual Hz, 10^9), bit for bit).</summary>
    private ulong NsecToCycles(long ns)
    {
        var (shift, mul) = Pvclock.GetTimeScale((ulong)vm.VirtualTscRate.HertzFloor, 1_000_000_000);
        return Abi.PvclockAbi.ScaleDelta((ulong)Math.Max(0, ns), mul, shift);
    }
}

using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>
/// How a hypervisor era turns host-initiated TSC writes (vCPU creation, live-migration restore,
/// userspace's KVM_SET_MSRS) into per-vCPU offsets, and which vCPUs it counts as synchronized.
/// One implementation per era's rules, chosen by the preset: today's
/// <see cref="KvmSynchronizeTsc"/>, 2.6.37/38's <see cref="KvmWriteTsc"/> and Xen's
/// <see cref="XenTscInit"/>.
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
        long offset = p.OffsetReading(at, data);
        if (synchronizing && khz == _s.LastKhz)
        {
            var (stable, _) = TscPolicy.HostTsc(vm.Host, vm.HostMarkedUnstable);
            offset = stable ? _s.Offset : p.OffsetReading(at, unchecked(data + NsecToCycles(elapsed)));
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


    /// <summary>nsec_to_cycles at the VM's rate (kvm_get_time_scale(virtual Hz, 10^9), bit for bit).</summary>
    private ulong NsecToCycles(long ns)
    {
        var (shift, mul) = Pvclock.GetTimeScale((ulong)vm.VirtualTscRate.HertzFloor, 1_000_000_000);
        return Abi.PvclockAbi.ScaleDelta((ulong)Math.Max(0, ns), mul, shift);
    }
}

/// <summary>
/// Linux 2.6.37/2.6.38 <c>kvm_write_tsc</c> (arch/x86/kvm/x86.c; 2.6.38 blob bcc0efce): a write
/// matches when the written value is within 5 s worth of cycles <em>at the host's kHz</em>
/// (<c>nsec_to_cycles(5ULL * NSEC_PER_SEC)</c>, the current CPU's cpu_tsc_khz) of the last
/// <em>written</em> value and less than 5 s of host time has passed since the last unmatched
/// write (a matched write keeps the old <c>last_tsc_nsec</c>). A match reuses the VM's last
/// offset on a stable host and adds <c>nsec_to_cycles(elapsed)</c> (host kHz) on an unstable one;
/// otherwise offset = data − host TSC (unscaled: 2.6.38 has no scaling) and the write becomes the
/// reference. No generations, no rate check, no master clock: <see cref="Generation"/> counts
/// unmatched writes only for reporting.
/// </summary>
internal sealed class KvmWriteTsc(Vm vm) : ITscMatching
{
    private long _lastNsec = NewVm; // kvm->arch.last_tsc_nsec
    private ulong _lastWrite;     // kvm->arch.last_tsc_write
    private long _lastOffset;     // kvm->arch.last_tsc_offset
    private long _unmatched;      // for reporting
    private int _matchedSince;    // vCPUs written since the last unmatched write (for reporting)

    /// <summary>Five seconds, kvm_write_tsc's window (5ULL * NSEC_PER_SEC).</summary>
    public const long WindowNs = 5_000_000_000;

    // A new VM's last_tsc_nsec is 0 while get_kernel_ns() is the host's boot-based uptime, at
    // least 5 s on any real host: the first write is always unmatched (the guest TSC starts at 0).
    private const long NewVm = long.MinValue / 4;

    /// <inheritdoc />
    public long Generation => _unmatched;

    /// <inheritdoc />
    public int MatchedVcpus => Math.Max(1, _matchedSince);

    /// <inheritdoc />
    public void Reset()
    {
        _lastNsec = NewVm;
        _lastWrite = 0;
        _lastOffset = 0;
        _matchedSince = 0;
    }

    /// <inheritdoc />
    public void Write(int v, SimTime at, ulong data, bool userValue, bool publish)
    {
        HypervisorPlatform p = vm.Platforms[v];
        long ns = vm.Host.Monotonic.NanosecondsAt(at); // get_kernel_ns()
        long elapsed = ns - _lastNsec;
        long sdiff = Math.Abs(unchecked((long)(data - _lastWrite)));
        // 2.6.38: offset = data - native_read_tsc(), on a host without TSC scaling (2.6.38 KVM had
        // none). When the model serves kvm-2011's rate with scaling hardware (an assumption, see
        // docs/model.md), the offset is taken on the scaled TSC, as 3.0's compute_tsc_offset does,
        // so the guest reads data at the write (without scaling both forms are the same number).
        long offset = p.OffsetReading(at, data);
        if ((ulong)sdiff < NsecToCycles(WindowNs) && elapsed < WindowNs)
        {
            var (stable, _) = TscPolicy.HostTsc(vm.Host, vm.HostMarkedUnstable);
            offset = stable ? _lastOffset : unchecked(offset + (long)NsecToCycles(elapsed));
            ns = _lastNsec; // a matched write keeps the old base time
            _matchedSince++;
        }
        else
        {
            _unmatched++;
            _matchedSince = 1;
        }
        _lastNsec = ns;
        _lastWrite = data;
        _lastOffset = offset;
        p.Controls.TscOffset = offset;
        if (vm.Kvmclock is Kvmclock kvmclock)
        {
            // vcpu->arch.last_tsc_write/nsec (compute_guest_tsc's base), and
            // hv_clock.tsc_timestamp = 0: "Reset of TSC must disable overshoot protection below".
            kvmclock.TscWrite = data;
            kvmclock.TscWriteNs = ns;
            kvmclock.ResetGuard(v);
        }
    }

    /// <summary>2.6.38 nsec_to_cycles: ns × the host CPU's cpu_tsc_khz / 10^6 (do_div; not the VM's rate).</summary>
    private ulong NsecToCycles(long ns) => (ulong)(Math.Max(0, ns) * (Int128)vm.HostKhz / 1_000_000);
}

/// <summary>
/// Xen HVM (xen/arch/x86/hvm/hvm.c): <c>hvm_vcpu_initialise</c> sets vCPU 0's offset from one
/// <c>rdtsc()</c> on the pCPU running the initialisation ("Init guest TSC to start from zero":
/// <c>hvm_set_guest_tsc(v, 0)</c>), and <c>hvm_vcpu_reset_state</c> copies it to every AP ("Sync
/// AP's TSC with BSP's"); a restore sets every vCPU from one <c>sync_tsc</c> reading
/// (<c>hvm_set_guest_tsc_fixed</c>). Offsets are never recomputed when a vCPU moves between pCPUs.
/// </summary>
internal sealed class XenTscInit(Vm vm) : ITscMatching
{
    private long _writes;

    /// <inheritdoc />
    public long Generation => _writes;

    /// <inheritdoc />
    public int MatchedVcpus => vm.Platforms.Length;

    /// <inheritdoc />
    public void Reset() { }

    /// <inheritdoc />
    public void Write(int v, SimTime at, ulong data, bool userValue, bool publish)
    {
        HypervisorPlatform bsp = vm.Platforms[0];
        // One reading on the BSP's pCPU; the APs take the BSP's cache_tsc_offset.
        long offset = v == 0
            ? unchecked(bsp.Controls.TscOffset + (long)(data - bsp.NativeGuestTsc(at)))
            : bsp.Controls.TscOffset;
        if (v == 0)
        {
            _writes++;
        }
        vm.Platforms[v].Controls.TscOffset = offset;
    }
}

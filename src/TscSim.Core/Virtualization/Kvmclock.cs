using TscSim.Core.Abi;
using TscSim.Core.Engine;
using TscSim.Core.Hardware;
using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>
/// KVM's per-VM kvmclock machinery (arch/x86/kvm/x86.c; docs/model.md "KVM's clock machinery"): the master clock, and
/// <c>kvm_guest_time_update</c> publishing each vCPU's pvclock_vcpu_time_info into the guest's
/// pvclock area with the version protocol. Begin and end of a publication are distinct events:
/// at the begin the version becomes odd and the fields are written; <see cref="PublishDuration"/>
/// later the version becomes even. A guest reader that overlaps the odd window must retry.
/// </summary>
public sealed class Kvmclock : IEventHandler
{
    private readonly Vm _vm;
    private readonly Simulator _sim;
    private readonly EventKind _begin;
    private readonly EventKind _end;
    private readonly EventKind _global;
    private readonly EventKind _periodic;
    private readonly PvclockTimeInfo[] _published;
    private bool _globalPending;
    private bool[] _guestStopped = [];

    internal Kvmclock(Vm vm, Simulator sim, SimTime creation)
    {
        _vm = vm;
        _sim = sim;
        _published = new PvclockTimeInfo[vm.Config.Vcpus];
        // kvmclock counts from VM creation: kvmclock_offset = −host ns at creation.
        KvmclockOffset = -vm.Host.Monotonic.NanosecondsAt(creation);
        _begin = sim.RegisterKind($"vm.{vm.Config.Id}.pvclock-begin", EventBand.Hypervisor, this);
        _end = sim.RegisterKind($"vm.{vm.Config.Id}.pvclock-end", EventBand.Hypervisor, this);
        _global = sim.RegisterKind($"vm.{vm.Config.Id}.kvmclock-global-update", EventBand.Hypervisor, this);
        _periodic = sim.RegisterKind($"vm.{vm.Config.Id}.kvmclock-periodic-sync", EventBand.Hypervisor, this);
        TscWriteNs = vm.Host.Monotonic.NanosecondsAt(creation);
        _lastGuestTsc = new ulong[vm.Config.Vcpus];
        _lastKernelNs = new long[vm.Config.Vcpus];
    }

    // virtual_tsc_mult/shift, recomputed when the VM's rate changes (a migration under QEMU to a
    // host without scaling, an acknowledged notification).
    private long _virtualKhz;
    private sbyte _virtualShift;
    private uint _virtualMul;

    // 2.6.37/38 kvm_guest_time_update's overshoot guard, per vCPU: last_guest_tsc and
    // last_kernel_ns (hv_clock.tsc_timestamp = 0 after a TSC write disables it).
    private readonly ulong[] _lastGuestTsc;
    private readonly long[] _lastKernelNs;

    /// <summary>
    /// The 2.6.37/38 publication (kvm-2011): no master clock, flags 0, <c>version += 2</c> in one
    /// copy, the <c>max_kernel_ns</c> guard, no KVMCLOCK_UPDATE_DELAY and no 300 s sync.
    /// </summary>
    public bool Legacy => _vm.Policy.Kind == PolicyKind.Kvm2011;

    /// <summary>Publications the 2.6.37/38 <c>max_kernel_ns</c> guard raised (kernel_ns below the value the guest could already have seen).</summary>
    public int GuardRaises { get; private set; }

    /// <summary>kvm_write_tsc's <c>hv_clock.tsc_timestamp = 0</c> for vCPU <paramref name="v"/>: the next update skips the guard.</summary>
    internal void ResetGuard(int v)
    {
        if (v < _published.Length)
        {
            _published[v] = _published[v] with { TscTimestamp = 0 };
        }
    }

    /// <summary>KVMCLOCK_UPDATE_DELAY: a global clock update reaches the other vCPUs 100 ms later (rate limit).</summary>
    public static readonly Duration GlobalUpdateDelay = Duration.FromMilliseconds(100);

    /// <summary>KVMCLOCK_SYNC_PERIOD: every vCPU is updated every 300 s.</summary>
    public static readonly Duration PeriodicSync = Duration.FromSeconds(300);

    /// <summary>The guest TSC of the last synchronising write (0 at creation).</summary>
    public ulong TscWrite { get; internal set; }

    /// <summary>The host ns of the last synchronising write.</summary>
    public long TscWriteNs { get; internal set; }

    /// <summary>
    /// <c>compute_guest_tsc</c>: the TSC the guest should show at host ns <paramref name="kernelNs"/>
    /// had it run at the VM's rate since the last synchronising write (nsec_to_cycles through
    /// kvm_get_time_scale(virtual Hz, 10^9), bit for bit).
    /// </summary>
    public ulong ComputeGuestTsc(long kernelNs)
    {
        if (_virtualKhz != _vm.VirtualTscKhz)
        {
            _virtualKhz = _vm.VirtualTscKhz;
            (_virtualShift, _virtualMul) = Pvclock.GetTimeScale((ulong)_virtualKhz * 1_000, 1_000_000_000);
        }
        return unchecked(TscWrite + PvclockAbi.ScaleDelta((ulong)Math.Max(0, kernelNs - TscWriteNs), _virtualMul, _virtualShift));
    }

    /// <summary>
    /// KVM_REQ_GLOBAL_CLOCK_UPDATE: this vCPU now, every vCPU after
    /// <see cref="GlobalUpdateDelay"/> unless such an update is already pending.
    /// </summary>
    public void RequestGlobalUpdate(int vcpu, SimTime at)
    {
        RequestUpdate(vcpu, at);
        if (!_globalPending)
        {
            _globalPending = true;
            _sim.Schedule(at + GlobalUpdateDelay, _global);
        }
    }

    /// <summary>Starts the 300 s periodic sync.</summary>
    internal void StartPeriodicSync(SimTime at)
    {
        if (!Legacy) // kvmclock_sync_fn came after 2.6.38
        {
            _sim.Schedule(at + PeriodicSync, _periodic);
        }
    }

    /// <summary>
    /// How long the odd window of one publication lasts: the host writing 32 bytes between two
    /// write barriers, a few hundred cycles (an assumption).
    /// </summary>
    public Duration PublishDuration { get; init; } = Duration.FromNanoseconds(100);

    /// <summary>Added to host ns to give kvmclock ns (KVM's kvmclock_offset).</summary>
    public long KvmclockOffset { get; internal set; }

    /// <summary>Whether the VM-wide master (host TSC, host ns) pair is in use (and TSC_STABLE published).</summary>
    public bool MasterClock { get; private set; }

    /// <summary>Master pairs taken (KVM_REQ_MASTERCLOCK_UPDATE with the master clock on).</summary>
    public int MasterClockUpdates { get; private set; }

    /// <summary>The master pair's host TSC.</summary>
    public ulong MasterHostTsc { get; private set; }

    /// <summary>The master pair's host ns.</summary>
    public long MasterKernelNs { get; private set; }

    /// <summary>A backwards host TSC was seen: the master clock stays off (KVM's backwards_tsc_observed).</summary>
    public bool BackwardsTscObserved { get; internal set; }

    /// <summary>
    /// KVM_KVMCLOCK_CTRL: userspace paused the VM (e.g. for live migration); the next publication
    /// for every vCPU carries PVCLOCK_GUEST_STOPPED, so the guest touches its watchdogs.
    /// </summary>
    public void MarkGuestStopped()
    {
        _guestStopped = Enumerable.Repeat(true, _published.Length).ToArray();
    }

    /// <summary>Publications begun.</summary>
    public int Updates { get; private set; }

    /// <summary>What was last published for vCPU <paramref name="vcpu"/>.</summary>
    public PvclockTimeInfo Published(int vcpu) => _published[vcpu];

    /// <summary>
    /// <c>pvclock_update_vm_gtod_copy</c> (6.18 x86.c): use the master clock when the host TSC is
    /// a stable, TSC-based clocksource, every vCPU is matched and no backwards TSC was seen
    /// (catch-up plays no part: with the master clock on, catch-up aims at the frozen pair); take
    /// the pair now (one host TSC read, on vCPU 0's core, and the host ns). 2.6.37/38 has no
    /// master clock.
    /// </summary>
    public void UpdateMasterClock(SimTime at)
    {
        var (stable, _) = TscPolicy.HostTsc(_vm.Host, _vm.HostMarkedUnstable);
        MasterClock = !Legacy && stable && !BackwardsTscObserved && _vm.AllVcpusMatched;
        if (MasterClock)
        {
            MasterClockUpdates++;
        }
        if (MasterClock)
        {
            MasterHostTsc = _vm.Vcpus[0].Core.ReadTsc(at).Raw;
            MasterKernelNs = _vm.Host.Monotonic.NanosecondsAt(at);
        }
    }

    /// <summary>Requests a clock update (a publication) for vCPU <paramref name="vcpu"/> at <paramref name="at"/>.</summary>
    public void RequestUpdate(int vcpu, SimTime at) => _sim.Schedule(at, _begin, vcpu);

    /// <summary>Requests a clock update for every vCPU at <paramref name="at"/>.</summary>
    public void RequestUpdateAll(SimTime at)
    {
        for (int v = 0; v < _published.Length; v++)
        {
            RequestUpdate(v, at);
        }
    }

    void IEventHandler.OnEvent(Simulator sim, in SimEvent e)
    {
        if (e.Kind == _global)
        {
            _globalPending = false;
            RequestUpdateAll(e.Time);
            return;
        }
        if (e.Kind == _periodic)
        {
            RequestUpdateAll(e.Time);
            sim.Schedule(e.Time + PeriodicSync, _periodic);
            return;
        }
        int v = e.Subject;
        Span<byte> record = PvclockAbi.Record(_vm.Shared.Pvclock, v);
        if (e.Kind == _end)
        {
            uint version = PvclockAbi.ReadVersion(record);
            if (version == (uint)e.Payload)
            {
                PvclockAbi.WriteVersion(record, unchecked(version + 1));
                _published[v] = _published[v] with { Version = unchecked(version + 1) };
            }
            return; // another publication began meanwhile: its own end closes the window
        }
        PvclockTimeInfo info = Compute(v, e.Time);
        if (Legacy)
        {
            // 2.6.37/38: hv_clock.version += 2 on a private copy, then one copy into the guest
            // page: the guest never sees an odd version.
            info = info with { Version = unchecked(_published[v].Version + 2) };
            PvclockAbi.Write(record, in info);
            _published[v] = info;
            Updates++;
            return;
        }
        uint odd = unchecked((PvclockAbi.ReadVersion(record) + 1) | 1);
        info = info with { Version = odd };
        PvclockAbi.Write(record, in info);
        _published[v] = info;
        Updates++;
        sim.Schedule(e.Time + PublishDuration, _end, v, odd);
    }

    /// <summary><c>kvm_guest_time_update</c> for vCPU <paramref name="v"/> at <paramref name="t"/>.</summary>
    private PvclockTimeInfo Compute(int v, SimTime t)
    {
        HypervisorPlatform platform = _vm.Platforms[v];
        PhysicalCpu core = platform.Vcpu.Core;
        ulong hostTsc = MasterClock ? MasterHostTsc : core.ReadTsc(t).Raw;
        long kernelNs = MasterClock ? MasterKernelNs : _vm.Host.Monotonic.NanosecondsAt(t);
        ulong tscTimestamp = _vm.Backend.GuestTsc(hostTsc, in platform.Controls);

        // Catch-up (kvm_guest_time_update's tsc_catchup branch, x86.c): push the offset forward (never back) so the guest TSC is not
        // behind the TSC it would have at the VM's rate.
        if (!_vm.Trapping && (_vm.CatchUp || platform.CatchUpPending))
        {
            ulong expected = ComputeGuestTsc(kernelNs);
            long ahead = unchecked((long)(expected - tscTimestamp));
            if (ahead > 0)
            {
                platform.Controls.TscOffset = unchecked(platform.Controls.TscOffset + ahead);
                tscTimestamp = expected;
            }
        }

        // tgt_tsc_khz: the host's tsc_khz, or the core's current rate without CONSTANT_TSC;
        // scaled by the ratio when hardware scaling serves the VM.
        long tgtKhz = core.Model.ConstantTsc ? _vm.HostKhz : core.Frequency.KilohertzFloor;
        if (_vm.ScalingActive)
        {
            tgtKhz = (long)TscScalingMath.Scale((ulong)tgtKhz, _vm.Ratio, _vm.Backend.FractionBits);
        }
        if (_vm.PvclockDescribesEmulatedTsc)
        {
            // The guest's RDTSC returns the emulated TSC: describe that one (its value at the
            // pair's host ns, at the VM's rate), or kvm-clock would run at the wrong speed.
            tscTimestamp = _vm.Emulated.AtNs(kernelNs).Raw;
            tgtKhz = _vm.VirtualTscKhz;
        }
        var (shift, mul) = Pvclock.GetTimeScale(1_000_000_000, (ulong)tgtKhz * 1_000);
        if (Legacy)
        {
            // 2.6.37/38: max_kernel_ns = last_kernel_ns + the guest TSC since the last published
            // tsc_timestamp at the old parameters (last_guest_tsc is read after every exit; the
            // update runs before the next entry, so the guest TSC now stands in for it). The new
            // system_time never goes below it. Flags are always 0 (the proposal's trapped bit stays).
            // The guest TSC the update sees (tscTimestamp: emulated while trapping) stands in for
            // last_guest_tsc. C computes the difference in u64, so a guest TSC behind the last
            // timestamp would wrap into a huge max_kernel_ns; the model skips the guard then (an
            // assumption: the model's only backward steps are restores, which reset it anyway).
            PvclockTimeInfo old = _published[v];
            long sinceLast = unchecked((long)(tscTimestamp - old.TscTimestamp));
            if (old.TscTimestamp != 0 && _lastGuestTsc[v] != 0 && sinceLast > 0)
            {
                long maxKernelNs = unchecked(_lastKernelNs[v] + (long)PvclockAbi.ScaleDelta((ulong)sinceLast, old.Mul, old.Shift));
                if (maxKernelNs > kernelNs)
                {
                    kernelNs = maxKernelNs;
                    GuardRaises++;
                }
            }
            _lastKernelNs[v] = kernelNs;
            _lastGuestTsc[v] = tscTimestamp;
            byte legacyFlags = _vm.GuestToldTrapped ? PvclockAbi.TscTrappedBit : (byte)0;
            return new PvclockTimeInfo(0, tscTimestamp, unchecked((ulong)(kernelNs + KvmclockOffset)), mul, shift, legacyFlags);
        }
        byte flags = (byte)((MasterClock ? PvclockAbi.TscStableBit : 0) | (_vm.GuestToldTrapped ? PvclockAbi.TscTrappedBit : 0));
        if (v < _guestStopped.Length && _guestStopped[v])
        {
            flags |= PvclockAbi.GuestStoppedBit;
            _guestStopped[v] = false;
        }
        // A GUEST_STOPPED bit the guest has not consumed yet stays set (kvm_setup_guest_pvclock).
        flags |= (byte)(PvclockAbi.Record(_vm.Shared.Pvclock, v)[PvclockAbi.FlagsOffset] & PvclockAbi.GuestStoppedBit);
        return new PvclockTimeInfo(0, tscTimestamp, unchecked((ulong)(kernelNs + KvmclockOffset)), mul, shift, flags);
    }
}

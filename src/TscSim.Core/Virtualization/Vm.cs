using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using TscSim.Core.Abi;
using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>
/// One virtual machine on a host, as the coordinator of its parts: its vCPUs (each a
/// <see cref="Vcpu"/> with its own <see cref="HypervisorPlatform"/> holding the VMX/SVM
/// controls), its virtual TSC rate and scaling ratio, the era's TSC matching
/// (<see cref="ITscMatching"/>), the trapping state chosen by the policy, the
/// <see cref="EmulatedTsc"/>, kvmclock, and live migration.
/// </summary>
public sealed partial class Vm : IEventHandler
{
    private readonly Simulator _sim;
    private readonly EventKind _policyEvent;
    private readonly List<TrappingChange> _changes = [];
    private readonly List<string> _reasons = [];
    private readonly ITscMatching _matching;
    private long _deviceClockOffsetNs;   // added to host ns to give the device clock (live migration moves it)
    private long _savedDeviceNs;         // the device clock at the migration pause

    internal Vm(VmConfig config, HypervisorConfig policy, Host host, GuestExecutor executor, GuestProgram program,
        IExecutionObserver? observer, IReadOnlyList<int>? pin, string? hostUnstable = null)
    {
        Config = config;
        HostMarkedUnstable = hostUnstable;
        Policy = policy;
        HpetPeriodFemtoseconds = policy.HpetPeriodFemtoseconds;
        HpetNsPerTick = HpetPeriodFemtoseconds / 1_000_000;
        _sim = executor.Simulator;
        Scope = _sim.NewScope();
        ArriveOn(host);
        long khz = config.TscKhz ?? HostKhz;
        if (khz <= 0)
        {
            throw new ArgumentException($"vm '{config.Id}': tsc_khz must be positive");
        }
        VirtualTscRate = Frequency.FromKilohertz(khz);
        if (config.Vcpus < 1)
        {
            throw new ArgumentException($"vm '{config.Id}': a VM needs at least one vCPU");
        }
        ChooseRate();

        Shared = new SharedMemory(program.SharedData);
        var vcpus = new List<Vcpu>();
        var platforms = new List<HypervisorPlatform>();
        SimTime now = _sim.Now;
        // One sharing domain per VM (GuestExecutor): its vCPUs' sequenced instructions keep their
        // order among themselves, not against other VMs', whose memory and state they cannot see.
        int domain = executor.NewDomain();
        for (int v = 0; v < config.Vcpus; v++)
        {
            int core = pin is null ? v % host.Cores.Length : pin[v];
            var platform = new HypervisorPlatform(this, v);
            var vcpu = new Vcpu(executor, $"{config.Id}.vcpu{v}", program, host.Cores[core], platform, Shared, observer)
            {
                TscAux = (uint)v,
            };
            executor.SetDomain(vcpu, domain, Scope);
            vcpu.SetRegister(Registers.Rdi, v);
            platform.Vcpu = vcpu;
            vcpus.Add(vcpu);
            platforms.Add(platform);
        }
        Vcpus = [.. vcpus];
        Platforms = [.. platforms];
        _matching = policy.Kind switch
        {
            PolicyKind.Kvm2011 => new KvmWriteTsc(this),
            PolicyKind.XenDefault or PolicyKind.XenAlwaysEmulate or PolicyKind.XenNative => new XenTscInit(this),
            _ => new KvmSynchronizeTsc(this),
        };
        Emulated = new EmulatedTsc(this);

        ConfigureControls();
        // KVM creates every vCPU with TSC 0 (kvm_synchronize_tsc with data = 0; 2.6.38's vmx_vcpu_setup
        // and svm_create_vcpu call kvm_write_tsc(vcpu, 0)): on a stable host every vCPU reuses the
        // first one's offset; on an unstable host each offset is computed on the vCPU's own core,
        // which hides a static skew between sockets (drift still shows). Xen sets vCPU 0's offset
        // from one reading and copies it to the APs (XenTscInit).
        WriteTscMatched(now, 0);

        using (_sim.EnterScope(Scope))
        {
            _policyEvent = _sim.RegisterKind($"vm.{config.Id}.policy", EventBand.Hypervisor, this);
            Kvmclock = new Kvmclock(this, _sim, now) { BackwardsTscObserved = hostUnstable is not null };
        }
        Apply(now, TscPolicy.Evaluate(this), creation: true);
    }

    /// <summary>The VM's in-kernel PIT (KVM's i8254), used by guests to calibrate the TSC.</summary>
    internal VirtualPit Pit { get; } = new();

    // issue 16 (interrupts): the VM's emulated tick sources, created on the first PIT write.
    private VirtualTimers? _timers;

    /// <summary>The VM's PIT channel 0 tick (issue 16).</summary>
    internal VirtualTimers Timers => _timers ??= InScope(() => new VirtualTimers(this));

    private VirtualHpet? _hpet;

    /// <summary>The HPET's period in fs, fixed by the policy the VM was created under (QEMU's or Xen's device).</summary>
    public uint HpetPeriodFemtoseconds { get; }

    /// <summary>Device-clock ns per HPET count (10 for QEMU's, 16 for Xen's).</summary>
    internal long HpetNsPerTick { get; }

    /// <summary>QEMU's HPET: its registers and timer 0 (created on the first access; its event kind on the first arming).</summary>
    internal VirtualHpet Hpet => _hpet ??= new VirtualHpet(this);

    /// <summary>QEMU's HPET is in legacy-replacement mode (timer 0 is IRQ0; the PIT raises nothing).</summary>
    internal bool HpetLegacy => _hpet?.Legacy ?? false;

    /// <summary>The HPET's main counter at <paramref name="at"/> (it counts from VM creation until a guest halts it).</summary>
    internal ulong HpetCounter(SimTime at) => Hpet.Counter(at);

    /// <summary>
    /// The engine scope of this VM's own events (its devices, pvclock updates, policy steps, its
    /// guest kernel's timers): only its own vCPUs need to stop for them
    /// (<see cref="Simulator.NextEventTimeIn"/>). Whatever a VM's events change, no other VM
    /// reads: each has its own guest memory, devices, pvclock area and TSC-matching state.
    /// </summary>
    public int Scope { get; }

    /// <summary>Builds a component of this VM with its event kinds in the VM's scope.</summary>
    internal T InScope<T>(Func<T> create)
    {
        using (_sim.EnterScope(Scope))
        {
            return create();
        }
    }

    /// <summary>The VM's kvmclock (master clock and pvclock publication).</summary>
    public Kvmclock Kvmclock { get; }

    /// <summary>Whether the host's TSC is unstable now (by its nature or marked by the hypervisor).</summary>
    public bool HostTscUnstable => !TscPolicy.HostTsc(Host, HostMarkedUnstable).Stable;

    /// <summary>Catch-up is applied: KVM's software catch-up, which does not run while the TSC is trapped.</summary>
    public bool CatchUpActive => CatchUp && !Trapping;

    /// <summary>Hyper-V re-enlightenment: emulating after a rate-changing migration until the guest acknowledges.</summary>
    public bool ReenlightenmentPending { get; private set; }

    /// <summary>
    /// The guest acknowledged a re-enlightenment (wrote 0 to HV_X64_MSR_TSC_EMULATION_STATUS after
    /// recomputing its clock): emulation may end; the policy is re-evaluated now.
    /// </summary>
    public void AcknowledgeReenlightenment()
    {
        ReenlightenmentPending = false;
        RequestReevaluation("guest acknowledged the re-enlightenment");
    }

    /// <summary>Live migrations completed.</summary>
    public int Migrations { get; private set; }

    /// <summary>Warnings about the VM's configuration (e.g. a TSC rate the destination could not honour).</summary>
    public List<(SimTime Time, string Message)> Warnings { get; } = [];

    private void ConfigureControls()
    {
        foreach (var p in Platforms)
        {
            p.Controls = default;
            p.Controls.UseTscOffsetting = true;
            p.Controls.EnableRdtscp = Host.Config.Cpu.HasRdtscp;
            p.Controls.UseTscScaling = ScalingActive;
            p.Controls.TscRatio = Ratio;
            p.Controls.HltExiting = true;
            p.Controls.TscMsrReadExits = false;
            p.CatchUpPending = false;
        }
    }

    /// <summary>The current TSC offset generation (a new one starts at every unmatched host write).</summary>
    public long TscGeneration => _matching.Generation;

    /// <summary>vCPUs whose last host-initiated write matched the current generation (KVM's nr_vcpus_matched_tsc + 1).</summary>
    public int MatchedVcpus => _matching.MatchedVcpus;

    /// <summary>A host-initiated write of <paramref name="data"/> to vCPU <paramref name="v"/> at <paramref name="at"/>, by the era's <see cref="ITscMatching"/> rules.</summary>
    public void SynchronizeTsc(int v, SimTime at, ulong data, bool userValue) => _matching.Write(v, at, data, userValue, publish: true);

    /// <summary>Host-initiated writes of <paramref name="value"/> to every vCPU in order at <paramref name="at"/> (creation, migration restore).</summary>
    private void WriteTscMatched(SimTime at, ulong value)
    {
        for (int v = 0; v < Platforms.Length; v++)
        {
            _matching.Write(v, at, value, userValue: value != 0, publish: false); // the caller publishes
        }
    }

    /// <summary>The TSC handed out while trapping.</summary>
    public EmulatedTsc Emulated { get; }

    /// <summary>The guest-visible TSC of vCPU 0 at <paramref name="at"/> without handing out a value (emulated while trapping).</summary>
    internal TscValue GuestVisibleTsc(SimTime at) => Trapping ? Emulated.Peek(at) : new TscValue(Platforms[0].NativeGuestTsc(at));

    /// <summary>Whether guests' time reads see the emulated TSC (trapping, and RDTSCP not passed through for kvmclock).</summary>
    internal bool PvclockDescribesEmulatedTsc => Trapping && !(Policy.RdtscpPassthrough && Backend.CanPassThroughRdtscp);

    /// <summary>Every vCPU matched the current TSC generation (KVM: nr_vcpus_matched_tsc + 1 == online vCPUs).</summary>
    public bool AllVcpusMatched => MatchedVcpus == Platforms.Length;

    public VmConfig Config { get; }

    public HypervisorConfig Policy { get; private set; }

    /// <summary>Changes the hypervisor policy for this VM at the current instant (a scenario's <c>policy</c> event) and re-evaluates.</summary>
    public void ChangePolicy(HypervisorConfig policy, string why)
    {
        Policy = policy;
        RequestReevaluation(why);
    }

    /// <summary>The host the VM runs on now.</summary>
    public Host Host { get; private set; }

    /// <summary>The host's vendor backend (VMX or SVM).</summary>
    public IVirtualizationBackend Backend { get; private set; }

    /// <summary>Runs on <paramref name="host"/> from now: its vendor's backend and its tsc_khz.</summary>
    [MemberNotNull(nameof(Host), nameof(Backend))]
    private void ArriveOn(Host host)
    {
        Host = host;
        Backend = host.Config.Cpu.Vendor == Vendor.Vmx ? VmxBackend.Instance : SvmBackend.Instance;
        HostKhz = host.Config.Frequency.KilohertzFloor;
    }

    public ImmutableArray<Vcpu> Vcpus { get; }

    public ImmutableArray<HypervisorPlatform> Platforms { get; }

    public SharedMemory Shared { get; }

    /// <summary>The host's TSC rate as the hypervisor knows it (tsc_khz).</summary>
    public long HostKhz { get; private set; }

    /// <summary>The VM's virtual TSC rate (KVM's virtual_tsc_khz, a whole number of kHz).</summary>
    public Frequency VirtualTscRate { get; private set; }

    /// <summary><see cref="VirtualTscRate"/> in kHz, KVM's unit (virtual_tsc_khz).</summary>
    public long VirtualTscKhz => VirtualTscRate.KilohertzFloor;

    /// <summary>Hardware scaling serves the VM's rate.</summary>
    public bool ScalingActive { get; private set; }

    /// <summary>The scaling ratio in the vendor's fixed point (VMX 16.48, SVM 8.32; the identity when not scaling).</summary>
    public ulong Ratio { get; private set; }

    /// <summary>
    /// The rate the guest TSC runs at now: the VM's rate when trapping, scaling or catching up
    /// serves it, else the host's (an untrapped guest TSC without scaling runs at the hardware's rate).
    /// </summary>
    public long EffectiveTscKhz => Trapping || ScalingActive || CatchUp ? VirtualTscKhz : HostKhz;

    /// <summary>The VMM's name as the scenario writes it (<c>qemu</c>, <c>direct</c>).</summary>
    public string VmmName => Policy.Vmm.ToString().ToLowerInvariant();

    /// <summary>Software catch-up is needed (kvm-modern's tsc_always_catchup: guest rate above the host's, no scaling, not trapping).</summary>
    public bool CatchUp { get; private set; }

    /// <summary>Whether RDTSC (and, per vendor and passthrough, RDTSCP) is trapped now.</summary>
    public bool Trapping { get; private set; }

    /// <summary>Why the VM is (or is not) trapping, per the last evaluation.</summary>
    public string TrappingReason { get; private set; } = "";

    /// <summary>What the guest has been told: the pvclock trapped flag as last published to it.</summary>
    public bool GuestToldTrapped { get; private set; }

    /// <summary>Raised at each notification to the guest (its kernel model listens).</summary>
    public event Action<SimTime>? GuestNotified;

    private void Notify(SimTime at)
    {
        Notifications++;
        GuestNotified?.Invoke(at);
    }

    /// <summary>
    /// The guest answered a notification: it re-read its TSC rate and acknowledges. Under Hyper-V
    /// this is the write of 0 to HV_X64_MSR_TSC_EMULATION_STATUS; under the 2011 proposal the
    /// guest now runs at the host's rate, so the VM's virtual rate becomes the host's (nothing
    /// left to emulate for a rate mismatch) and the policy is re-evaluated. A trap for an
    /// unstable host TSC stays: the guest's rate was never the problem there.
    /// </summary>
    public void AcknowledgeTscChange(SimTime at)
    {
        if (Policy.Kind == PolicyKind.HyperV)
        {
            AcknowledgeReenlightenment();
            return;
        }
        if (!ScalingActive && VirtualTscKhz != HostKhz)
        {
            if (Trapping)
            {
                // The emulated TSC continues from its current value at the new rate.
                Emulated.Rebase(at, GuestVisibleTsc(at));
            }
            VirtualTscRate = Frequency.FromKilohertz(HostKhz);
            ChooseRate(); // within tolerance now: no scaling, no catch-up; the controls (offset) stay
            Warnings.Add((at, $"guest acknowledged the TSC change and adopted the host's {HostKhz} kHz"));
        }
        Kvmclock.RequestUpdateAll(at);
        RequestReevaluation("guest acknowledged the TSC change");
    }

    /// <summary>Notifications sent to the guest (notify_guest).</summary>
    public int Notifications { get; private set; }

    /// <summary>Host TSC marked unstable by the hypervisor (e.g. a backwards TSC seen on a vCPU move).</summary>
    public string? HostMarkedUnstable { get; private set; }

    /// <summary>Every change of trapping state, with its time and reason.</summary>
    public IReadOnlyList<TrappingChange> Changes => _changes;

    /// <summary>The intervals during which the TSC was trapped.</summary>
    public IEnumerable<TrappingInterval> TrappedIntervals()
    {
        TrappingChange? open = null;
        foreach (var c in _changes)
        {
            if (c.Trapping && open is null)
            {
                open = c;
            }
            else if (!c.Trapping && open is not null)
            {
                yield return new TrappingInterval(open.Time, c.Time, open.Reason);
                open = null;
            }
        }
        if (open is not null)
        {
            yield return new TrappingInterval(open.Time, null, open.Reason);
        }
    }

    /// <summary>
    /// Starts every vCPU at <paramref name="at"/>, after the first clock update (a guest writes
    /// MSR_KVM_SYSTEM_TIME_NEW at boot; KVM answers with a publication for that vCPU).
    /// </summary>
    public void Start(SimTime at)
    {
        Kvmclock.UpdateMasterClock(at);
        Kvmclock.RequestUpdateAll(at);
        Kvmclock.StartPeriodicSync(at);
        foreach (var v in Vcpus)
        {
            v.Start(at);
        }
        if (!Pinned && Hypervisor?.SchedulerOf(Host) is HostScheduler scheduler)
        {
            scheduler.Add(this, at);
        }
    }

    /// <summary>The hypervisor that created the VM.</summary>
    public Hypervisor? Hypervisor { get; internal init; }

    /// <summary>Whether the vCPUs are pinned to cores (otherwise the host's scheduler places them, if it has one).</summary>
    public bool Pinned { get; internal init; }

    /// <summary>
    /// Re-evaluates the policy at the current instant (as a Hypervisor-band event, so it lands
    /// before guest code at the same picosecond). Called on vCPU placement, host TSC instability,
    /// live migration.
    /// </summary>
    public void RequestReevaluation(string why)
    {
        _reasons.Add(why);
        _sim.Schedule(_sim.Now, _policyEvent, payload: _reasons.Count - 1);
    }

    /// <summary>The hypervisor found the host TSC unstable (e.g. it went backwards); re-evaluate.</summary>
    public void MarkHostTscUnstable(string reason)
    {
        HostMarkedUnstable ??= reason;
        Kvmclock.BackwardsTscObserved = true;
        Kvmclock.UpdateMasterClock(_sim.Now);
        Kvmclock.RequestUpdateAll(_sim.Now);
        RequestReevaluation("host TSC marked unstable: " + reason);
    }

    void IEventHandler.OnEvent(Simulator sim, in SimEvent e) => Apply(e.Time, TscPolicy.Evaluate(this), creation: false);

    /// <summary>QEMU's freq_within_bounds (target/i386/kvm/kvm.c): |target − freq| within freq·250/10^6 (integer).</summary>
    internal static bool QemuWithinBounds(long freqKhz, long targetKhz)
    {
        long margin = freqKhz * 250 / 1_000_000;
        return targetKhz >= freqKhz - margin && targetKhz <= freqKhz + margin;
    }

    /// <summary>
    /// The VM's rate on its host: at creation (<paramref name="migratedAt"/> null) or on a
    /// live-migration destination. Under <c>vmm: qemu</c> (kvm-modern) QEMU asks KVM for the
    /// rate only with scaling hardware or within ±250 ppm of the host's; otherwise a fresh VM with
    /// an explicit tsc_khz is refused and a migrated one runs at the destination's rate with
    /// QEMU's warning. Then KVM's set_tsc_khz (kvm-modern): within tolerance nothing; scaling if
    /// the hardware has it; above the host's rate catch-up; below, refused. kvm-2011 (2.6.38 has
    /// no KVM_SET_TSC_KHZ) takes tsc_khz as the proposal's per-VM rate, served by scaling hardware
    /// if any, else by trapping or not at all (no catch-up for a rate). Xen's tsc_mode 0 needs an
    /// exact kHz match (its presets' tolerance is 0).
    /// </summary>
    private void ChooseRate(SimTime? migratedAt = null)
    {
        TscScaling hw = Host.Config.Cpu.Scaling;
        bool canScale = Policy.UseScaling && hw != TscScaling.None;
        Ratio = 1UL << Backend.FractionBits; // the identity in the vendor's fixed point
        ScalingActive = false;
        CatchUp = false;
        if (Policy.Kind == PolicyKind.KvmModern && Policy.Vmm == VmmKind.Qemu && !canScale && !QemuWithinBounds(HostKhz, VirtualTscKhz))
        {
            string warning = $"TSC frequency mismatch between VM ({VirtualTscKhz} kHz) and host ({HostKhz} kHz), and TSC scaling unavailable";
            if (migratedAt is SimTime at)
            {
                Warnings.Add((at, $"qemu-system-x86_64: warning: {warning}; the guest TSC runs at the destination's {HostKhz} kHz"));
                VirtualTscRate = Frequency.FromKilohertz(HostKhz);
                return;
            }
            throw new InvalidOperationException(
                $"vm '{Config.Id}': qemu-system-x86_64: warning: {warning}; qemu-system-x86_64: kvm_init_vcpu: kvm_arch_init_vcpu failed (0): Operation not supported");
        }
        bool within = TscScalingMath.WithinTolerance(VirtualTscKhz, HostKhz, Policy.TolerancePpm);
        if (within)
        {
            return;
        }
        if (canScale)
        {
            if (TscScalingMath.RatioFor(hw, VirtualTscKhz, HostKhz) is ulong ratio)
            {
                Ratio = ratio;
                ScalingActive = true;
                return;
            }
            if (Policy.Kind == PolicyKind.KvmModern)
            {
                // set_tsc_khz (arch/x86/kvm/x86.c): a ratio of 0 or at/above
                // kvm_caps.max_tsc_scaling_ratio is refused ("Invalid TSC scaling ratio") and
                // KVM_SET_TSC_KHZ fails.
                throw new InvalidOperationException(
                    $"vm '{Config.Id}': KVM refuses tsc_khz {VirtualTscKhz} on a {HostKhz} kHz host: the scaling ratio is out of the hardware's range (\"Invalid TSC scaling ratio\")");
            }
        }
        if (Policy.Kind == PolicyKind.KvmModern && VirtualTscKhz < HostKhz)
        {
            // set_tsc_khz (x86.c), without scaling: "user requested TSC rate below hardware speed".
            throw new InvalidOperationException(
                $"vm '{Config.Id}': KVM refuses tsc_khz {VirtualTscKhz} below the host's {HostKhz} kHz without TSC scaling (\"user requested TSC rate below hardware speed\")");
        }
        // tsc_always_catchup is modern KVM's (3.4+); 2.6.38, Xen and Hyper-V have no catch-up for a rate.
        CatchUp = VirtualTscKhz > HostKhz && Policy.Kind == PolicyKind.KvmModern;
    }

    private void Apply(SimTime now, (bool Trap, string Reason) decision, bool creation, bool migration = false)
    {
        TrappingReason = decision.Reason;
        bool recordedTrapping = _changes.Count > 0 && _changes[^1].Trapping;
        if (!creation && decision.Trap == Trapping && (!migration || decision.Trap == recordedTrapping))
        {
            return;
        }
        if (decision.Trap && !Trapping)
        {
            // The emulated TSC continues from what the guest sees now: no jump at the switch.
            Emulated.Restart(now, new TscValue(Platforms[0].NativeGuestTsc(now)));
        }
        else if (!decision.Trap && Trapping && !migration)
        {
            // Back to native: move every vCPU's offset so its TSC continues from the emulated TSC
            // as it stands now (never below the last value given out).
            ulong resume = GuestVisibleTsc(now).Raw;
            foreach (var p in Platforms)
            {
                p.ResumeNativeAfter(now, resume);
            }
        }
        Trapping = decision.Trap;
        bool rdtscp = decision.Trap && !(Policy.RdtscpPassthrough && Backend.CanPassThroughRdtscp);
        foreach (var p in Platforms)
        {
            Backend.SetTscTrapping(ref p.Controls, decision.Trap, rdtscp);
        }
        if (creation || decision.Trap != recordedTrapping)
        {
            _changes.Add(new TrappingChange(now, decision.Trap, decision.Reason));
        }
        if (migration)
        {
            return; // the migration decides what the guest is told
        }
        if (creation || Policy.NotifyGuest)
        {
            GuestToldTrapped = decision.Trap;
            if (!creation)
            {
                Kvmclock.RequestUpdateAll(now); // publish the trapped flag
                Notify(now);
            }
        }
    }

    /// <summary>
    /// A guest WRMSR IA32_TSC on vCPU <paramref name="index"/> at <paramref name="at"/>: the
    /// native offset moves so the vCPU reads <paramref name="value"/>; while trapping the emulated
    /// TSC restarts from it too (an explicit write is the one way a TSC may go backwards).
    /// </summary>
    internal void GuestWroteTsc(int index, SimTime at, ulong value)
    {
        if (Policy.Kind == PolicyKind.Kvm2011 && !Trapping)
        {
            // 2.6.37/38 vmx_set_msr / svm_set_msr: a guest WRMSR IA32_TSC is kvm_write_tsc too, so a
            // value within 5 s of the last written one, less than 5 s after it, keeps the VM's offset.
            _matching.Write(index, at, value, userValue: true, publish: false);
            return;
        }
        Platforms[index].ResumeNativeAfter(at, value);
        if (Trapping)
        {
            Emulated.Restart(at, new TscValue(value));
        }
    }

    public override string ToString() => $"vm {Config.Id} on {Host.Config.Id} ({Config.Vcpus} vCPUs, {VirtualTscKhz} kHz)";
}

using System.Collections.Immutable;
using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>The override control of the 2011 proposal: trap always, never, or as the policy decides.</summary>
public enum TrappingOverride { Auto, On, Off }

/// <summary>
/// The userspace VMM that creates the VM and restores it after live migration (KVM presets):
/// <see cref="Qemu"/> follows QEMU's target/i386/kvm/kvm.c <c>kvm_arch_set_tsc_khz</c>
/// (KVM_SET_TSC_KHZ only with KVM_CAP_TSC_CONTROL or within ±250 ppm of the vCPU's current rate);
/// <see cref="Direct"/> is a VMM that always asks KVM for the VM's rate, so KVM's own rules
/// (catch-up above the host's rate, refusal below it) apply.
/// </summary>
public enum VmmKind { Qemu, Direct }

/// <summary>Which family of hypervisor behaviour a preset models.</summary>
public enum PolicyKind
{
    /// <summary>The 2011 KVM proposal "Add TSC trapping for SVM and VMX" (never merged).</summary>
    Kvm2011,
    /// <summary>Mainline KVM: never traps; hardware scaling where available, else software catch-up; refuses a rate below the host's.</summary>
    KvmModern,
    /// <summary>Xen tsc_mode=0: native when the host TSC is safe and the rate matches (or scaling serves it), else emulate everything.</summary>
    XenDefault,
    /// <summary>Xen tsc_mode=1: always emulate.</summary>
    XenAlwaysEmulate,
    /// <summary>Xen tsc_mode=2: never emulate.</summary>
    XenNative,
    /// <summary>Hyper-V re-enlightenment: native, but after a migration that changes the rate emulate until the guest acknowledges.</summary>
    HyperV,
}

/// <summary>Cycles a hypervisor spends handling each kind of exit (on top of the hardware round trip).</summary>
/// <remarks>
/// Defaults are assumptions of the right order, in host core cycles: in-kernel handlers a few
/// hundred cycles; exits completed by the userspace device model (port I/O, MMIO) add the
/// return to userspace, about 1,150 cycles on AMD in 2020 (a KVM_RUN round trip with a
/// userspace exit ≈ 2,500 cycles total vs ≈ 1,350 across VMRUN/#VMEXIT,
/// lkml.iu.edu/hypermail/linux/kernel/2012.2/00527.html), plus the
/// device emulation.
/// </remarks>
public sealed record ExitHandlerCosts
{
    public Time.Cycles RdtscEmulation { get; init; } = new(150);
    public Time.Cycles Cpuid { get; init; } = new(200);
    public Time.Cycles Msr { get; init; } = new(200);
    public Time.Cycles Hlt { get; init; } = new(100);
    public Time.Cycles UserspaceIo { get; init; } = new(1_650);

    /// <summary>Port I/O to a device KVM emulates in the kernel (the i8254 PIT, port 0x61): no trip to userspace.</summary>
    public Time.Cycles KernelIo { get; init; } = new(300);

    /// <summary>
    /// A host interrupt taken while the guest ran (external interrupt or preemption-timer exit):
    /// KVM's hrtimer callback and the injection of the guest's vector. Assumption of the order of
    /// the other in-kernel handlers.
    /// </summary>
    public Time.Cycles ExternalInterrupt { get; init; } = new(300);

    /// <summary>An APIC register write completed by KVM's in-kernel local APIC (x2APIC WRMSR or xAPIC access): assumption, as <see cref="Msr"/>.</summary>
    public Time.Cycles Apic { get; init; } = new(200);
}

/// <summary>
/// The hypervisor's TSC policy: the module parameters of the 2011 proposal (<c>tsc_auto</c>,
/// the tolerance) and the per-VM controls, plus which behaviour family applies. A preset gives
/// the defaults; a scenario may override any field.
/// </summary>
public sealed record HypervisorConfig
{
    public required string Preset { get; init; }

    public required PolicyKind Kind { get; init; }

    /// <summary>kvm-2011: trap only when required (host TSC unstable, or host faster than the VM's rate).</summary>
    public bool TscAuto { get; init; } = true;

    /// <summary>The override control: on and off win over everything.</summary>
    public TrappingOverride Trapping { get; init; } = TrappingOverride.Auto;

    /// <summary>Tell the guest when trapping or its TSC rate changes (the alternative the thread floated).</summary>
    public bool NotifyGuest { get; init; }

    /// <summary>SVM: leave RDTSCP untrapped while RDTSC traps, so kvmclock reads the TSC cheaply (no effect on VMX).</summary>
    public bool RdtscpPassthrough { get; init; }

    /// <summary>KVM's tsc_tolerance_ppm (default 250, "1/2 of the NTP threshold": Linux 6.6 arch/x86/kvm/x86.c).</summary>
    public long TolerancePpm { get; init; } = 250;

    /// <summary>Use hardware TSC scaling when the CPU has it.</summary>
    public bool UseScaling { get; init; } = true;

    public ExitHandlerCosts HandlerCosts { get; init; } = new();

    /// <summary>The VMM (KVM presets): <c>qemu</c> (default) or <c>direct</c>; Xen and Hyper-V ignore it.</summary>
    public VmmKind Vmm { get; init; } = VmmKind.Qemu;

    /// <summary>
    /// Whether the hypervisor emulates IA32_TSC_ADJUST (MSR 0x3B) for its guests: KVM from Linux
    /// 3.8 on (kvm_set_msr_common MSR_IA32_TSC_ADJUST); 2.6.37/38 KVM (<see cref="PolicyKind.Kvm2011"/>)
    /// does not know it, so a guest access reaches "unhandled wrmsr/rdmsr" and takes #GP.
    /// </summary>
    public bool EmulatesTscAdjust => Kind != PolicyKind.Kvm2011;

    /// <summary>
    /// When set, an emulated RDTSC/RDTSCP costs this many times the CPU's native RDTSC in total
    /// (replacing round trip + handler): Xen's published figure, "roughly 15-20 times slower than
    /// the rdtsc instruction when executed natively" (xen docs/misc/tscmode.txt, Xen 4.0 era,
    /// lines 156-161; docs/man/xen-tscmode.7.pod lines 195-199). The document covers PV and HVM
    /// without separating them; that the figure fits the PV soft-TSC path rather than an HVM
    /// VM exit is an inference (docs/model.md "Exit costs").
    /// </summary>
    public int? EmulatedRdtscNativeMultiple { get; init; }

    /// <summary>Where the exit costs of this preset come from (<c>tscsim presets</c>).</summary>
    public string CostSource { get; init; } =
        "round trip: the CPU model's exit_round_trip, an ASSUMPTION per preset (published reference points: 2,000 cycles direct exit cost on a Nehalem X5570 under KVM 2.6.34, Landau et al., SplitX, WIOV 2011, Table 1; AMD 2020 KVM_RUN with a userspace exit 2,528 cycles, LKML 2012.2/00527); handlers: ASSUMPTIONS of the order of in-kernel KVM handlers";

    /// <summary>Every preset, by name.</summary>
    public static ImmutableArray<HypervisorConfig> Presets { get; } =
    [
        new() { Preset = "kvm-2011", Kind = PolicyKind.Kvm2011 },
        new() { Preset = "kvm-modern", Kind = PolicyKind.KvmModern },
        new() { Preset = "xen-default", Kind = PolicyKind.XenDefault, TolerancePpm = 0, EmulatedRdtscNativeMultiple = XenEmulationMultiple, CostSource = XenCostSource },
        new() { Preset = "xen-always-emulate", Kind = PolicyKind.XenAlwaysEmulate, TolerancePpm = 0, EmulatedRdtscNativeMultiple = XenEmulationMultiple, CostSource = XenCostSource },
        new() { Preset = "xen-native", Kind = PolicyKind.XenNative, TolerancePpm = 0, EmulatedRdtscNativeMultiple = XenEmulationMultiple, CostSource = XenCostSource },
        new()
        {
            Preset = "hyperv", Kind = PolicyKind.HyperV,
            CostSource = "ASSUMPTION: no published Hyper-V emulated-RDTSC cost was found; KVM's round trip and handlers are used",
        },
    ];

    /// <summary>
    /// The VMs have an HPET: QEMU's under KVM, Xen's under Xen (its period, see
    /// <see cref="HpetPeriodFemtoseconds"/>; QEMU's register logic: ASSUMPTION); none under Hyper-V ("Hyper-V does not provide a
    /// virtualized HPET in guest VMs": Linux Documentation/virt/hyperv/clocks.rst).
    /// </summary>
    public bool OffersHpet => Kind != PolicyKind.HyperV;

    /// <summary>
    /// The HPET's period in fs: QEMU's 10 ns (hw/timer/hpet.h HPET_CLK_PERIOD) under KVM; Xen's own
    /// HPET counts guest ns / 16 (xen/arch/x86/hvm/hpet.c STIME_PER_HPET_TICK: 16,000,000 fs).
    /// </summary>
    public uint HpetPeriodFemtoseconds => Kind is PolicyKind.XenDefault or PolicyKind.XenAlwaysEmulate or PolicyKind.XenNative
        ? Abi.PlatformTimerRates.XenHpetPeriodFemtoseconds
        : Abi.PlatformTimerRates.QemuHpetPeriodFemtoseconds;

    /// <summary>Xen presets: an emulated RDTSC costs 18× a native one (the middle of Xen's "15-20 times").</summary>
    public const int XenEmulationMultiple = 18;

    private const string XenCostSource =
        "emulated RDTSC/RDTSCP = 18x the CPU's native RDTSC in total: Xen docs/misc/tscmode.txt \"roughly 15-20 times slower than the rdtsc instruction when executed natively ... (i.e. <0.3%)\" at 10,000/s (PV-era figure; taking it for HVM exits is an assumption); other exits: as KVM (assumptions)";

    /// <summary>The preset called <paramref name="name"/>, or null.</summary>
    public static HypervisorConfig? Find(string name) => Presets.FirstOrDefault(p => p.Preset == name);

    /// <summary>
    /// The scenario's <c>hypervisor</c> keys this configuration's policy reads, with their values
    /// as a scenario writes them: <c>tsc_auto</c> only for kvm-2011 (no other policy reads it);
    /// <c>trapping</c> (the override, which wins under every policy) and the rest for all.
    /// </summary>
    public IReadOnlyList<(string Key, string Value)> Parameters()
    {
        static string B(bool b) => b ? "true" : "false";
        var list = new List<(string, string)>();
        if (Kind == PolicyKind.Kvm2011)
        {
            list.Add(("tsc_auto", B(TscAuto)));
        }
        list.Add(("trapping", Trapping.ToString().ToLowerInvariant()));
        list.Add(("notify_guest", B(NotifyGuest)));
        list.Add(("rdtscp_passthrough", B(RdtscpPassthrough)));
        list.Add(("tolerance_ppm", TolerancePpm.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        list.Add(("scaling", B(UseScaling)));
        if (Kind == PolicyKind.KvmModern)
        {
            list.Add(("vmm", Vmm.ToString().ToLowerInvariant())); // the only policy QEMU's rate rules apply to
        }
        return list;
    }

    /// <summary>When a policy traps the TSC by itself, that is with <c>trapping: auto</c> (<c>on</c> and <c>off</c> override every policy).</summary>
    public static string TrapsWhen(PolicyKind kind) => kind switch
    {
        PolicyKind.Kvm2011 => "when tsc_khz is outside tolerance_ppm of the host's rate without scaling; with tsc_auto, when the host TSC is unstable or faster than the VM's rate; without it, as the fixed_rate/smp_stable hints ask",
        PolicyKind.KvmModern => "never (a rate it cannot serve by scaling or catch-up is refused); guest RDMSR IA32_TSC is passed through on VMX (vmx_disable_intercept_for_msr) unless trapping",
        PolicyKind.XenDefault => "when the host TSC is not safe (TSC_RELIABLE), or the rate differs (exact kHz; tolerance_ppm 0, xen/arch/x86/time.c tsc_set_info) and scaling cannot serve it",
        PolicyKind.XenAlwaysEmulate => "always",
        PolicyKind.XenNative => "never",
        PolicyKind.HyperV => "after a migration that changes the TSC rate without scaling, until a guest that registered for re-enlightenment acknowledges (plain Linux never does)",
        _ => kind.ToString(),
    };

    /// <summary>One line per preset for <c>tscsim presets</c>.</summary>
    public static string Describe(PolicyKind kind) => kind switch
    {
        PolicyKind.Kvm2011 => "the 2011 proposal's trapping rules (tsc_auto, hints fixed_rate/smp_stable, tolerance, override) on Linux 2.6.37/38 KVM: kvm_write_tsc matching (5 s window, no generations), no master clock, pvclock flags 0 with the max_kernel_ns guard, catch-up only after vcpu_load on an unstable host; tsc_khz is the proposal's per-VM rate (2.6.38 had no KVM_SET_TSC_KHZ: an assumption)",
        PolicyKind.KvmModern => "mainline KVM (6.x x86.c): never traps; hardware scaling, else tsc_always_catchup for a faster rate (a clock update after every exit, against the master pair when the master clock is on); refuses a rate below the host's; vmm: qemu asks for a rate only with scaling or within 250 ppm",
        PolicyKind.XenDefault => "Xen tsc_mode=0: native if the host TSC is safe and the rate matches (or scaling serves it), else emulate",
        PolicyKind.XenAlwaysEmulate => "Xen tsc_mode=1: every rdtsc-family instruction is emulated",
        PolicyKind.XenNative => "Xen tsc_mode=2: never emulated (fast, may be wrong)",
        PolicyKind.HyperV => "Hyper-V re-enlightenment: native; after a rate-changing migration emulate until a registered guest acknowledges (only windows-2016 registers; plain Linux never)",
        _ => kind.ToString(),
    };
}

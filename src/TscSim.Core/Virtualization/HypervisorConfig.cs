using System.Collections.Immutable;
using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>The override control of the 2011 proposal: trap always, never, or as the policy decides.</summary>
public enum TrappingOverride { Auto, On, Off }

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

    /// <summary>Every preset, by name.</summary>
    public static ImmutableArray<HypervisorConfig> Presets { get; } =
    [
        new() { Preset = "kvm-2011", Kind = PolicyKind.Kvm2011 },
        new() { Preset = "kvm-modern", Kind = PolicyKind.KvmModern },
        new() { Preset = "xen-default", Kind = PolicyKind.XenDefault },
        new() { Preset = "xen-always-emulate", Kind = PolicyKind.XenAlwaysEmulate },
        new() { Preset = "xen-native", Kind = PolicyKind.XenNative },
        new() { Preset = "hyperv", Kind = PolicyKind.HyperV, NotifyGuest = true },
    ];

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
        return list;
    }

    /// <summary>When a policy traps the TSC by itself, that is with <c>trapping: auto</c> (<c>on</c> and <c>off</c> override every policy).</summary>
    public static string TrapsWhen(PolicyKind kind) => kind switch
    {
        PolicyKind.Kvm2011 => "when tsc_khz is outside tolerance_ppm of the host's rate without scaling; with tsc_auto, when the host TSC is unstable or faster than the VM's rate; without it, as the fixed_rate/smp_stable hints ask",
        PolicyKind.KvmModern => "never (a rate it cannot serve by scaling or catch-up is refused)",
        PolicyKind.XenDefault => "when the host TSC is not safe, or the rate differs beyond tolerance_ppm and scaling cannot serve it",
        PolicyKind.XenAlwaysEmulate => "always",
        PolicyKind.XenNative => "never",
        PolicyKind.HyperV => "after a migration that changes the TSC rate (with notify_guest), until the guest acknowledges",
        _ => kind.ToString(),
    };

    /// <summary>One line per preset for <c>tscsim presets</c>.</summary>
    public static string Describe(PolicyKind kind) => kind switch
    {
        PolicyKind.Kvm2011 => "the 2011 proposal: tsc_auto traps when the host TSC is unstable or faster than the VM's rate; hints fixed_rate/smp_stable; tsc_khz outside the tolerance without scaling traps; override on/off",
        PolicyKind.KvmModern => "mainline KVM: never traps; hardware scaling, else catch-up for a faster guest rate; refuses a rate below the host's",
        PolicyKind.XenDefault => "Xen tsc_mode=0: native if the host TSC is safe and the rate matches (or scaling serves it), else emulate",
        PolicyKind.XenAlwaysEmulate => "Xen tsc_mode=1: every rdtsc-family instruction is emulated",
        PolicyKind.XenNative => "Xen tsc_mode=2: never emulated (fast, may be wrong)",
        PolicyKind.HyperV => "Hyper-V re-enlightenment: native; after a rate-changing migration emulate until the guest acknowledges",
        _ => kind.ToString(),
    };
}

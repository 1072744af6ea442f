using System.Collections.Immutable;
using TscSim.Core.Time;
using static TscSim.Core.Hardware.CostClass;

namespace TscSim.Core.Hardware;

/// <summary>
/// The CPU model presets. TSC feature facts follow Linux's feature flags and the kernel's
/// timekeeping documentation (early_init_intel / early_init_amd; timekeeping.rst §3; see
/// docs/model.md, "Sources of hardware and ISA facts"); costs are approximate figures from
/// Agner Fog's instruction tables (latency or reciprocal throughput, whichever a dependent
/// chain pays) and uops.info, rounded; exit round trips as noted per model. See
/// docs/model.md, "CPU models", for the table and its caveats.
/// </summary>
public static class CpuPresets
{
    private const string CostSource =
        "instruction costs: Agner Fog, 'Instruction tables' (agner.org/optimize), approximate, rounded; ";

    /// <summary>Intel Core 2 (Merom/Penryn, 2006-2008): constant TSC that stops in C3+, VT-x without TSC scaling, no RDTSCP.</summary>
    public static CpuModel IntelCore2 { get; } = new()
    {
        Name = "intel-core2",
        Description = "Intel Core 2 (Merom/Penryn): constant TSC, stops in C3+, VMX, no TSC scaling, no RDTSCP",
        Vendor = Vendor.Vmx,
        ConstantTsc = true,
        NonstopTsc = false,
        TscStopsFrom = CState.C3,
        Scaling = TscScaling.None,
        HasTscAdjust = false,
        HasRdtscp = false,
        ApicVirtualization = false,
        VmxPreemptionTimer = false,
        ExitRoundTrip = new Cycles(1_500),
        Costs = CpuModel.CostTable(
            (Alu, 1), (Branch, 1), (Load, 3), (Store, 1), (Mul, 5), (Div, 40), (LockedRmw, 22),
            (Lfence, 8), (Mfence, 9), (Pause, 10), (Nop, 1), (Rdtsc, 64), (Rdtscp, 64), (Rdpid, 64),
            (Cpuid, 200), (Rdmsr, 100), (Wrmsr, 150), (PortIo, 500),
            (Interrupt, 200), (Iret, 80)),
        Sources = CostSource +
            "TSC: constant but not nonstop (Linux timekeeping.rst 3.4/3.9: 'constant but stops in deep C-states' class); " +
            "RDTSCP introduced with Nehalem on Intel; no APICv, no VMX-preemption timer (assumption: it arrived with Nehalem); " +
            "interrupt delivery 200 and IRETQ 80 cycles: assumption; exit round trip 1,500 cycles: assumption (order of Agesen et al., " +
            "'Software techniques for avoiding hardware virtualization exits', USENIX ATC 2012, Fig. 1).",
    };

    /// <summary>Intel Nehalem (2008): invariant TSC, VT-x without TSC scaling, RDTSCP.</summary>
    public static CpuModel IntelNehalem { get; } = new()
    {
        Name = "intel-nehalem",
        Description = "Intel Nehalem: invariant TSC, VMX, RDTSCP, no TSC scaling, no TSC_ADJUST",
        Vendor = Vendor.Vmx,
        ConstantTsc = true,
        NonstopTsc = true,
        Scaling = TscScaling.None,
        HasTscAdjust = false,
        HasRdtscp = true,
        ApicVirtualization = false,
        VmxPreemptionTimer = false,
        ExitRoundTrip = new Cycles(1_000),
        Costs = CpuModel.CostTable(
            (Alu, 1), (Branch, 1), (Load, 4), (Store, 1), (Mul, 3), (Div, 40), (LockedRmw, 20),
            (Lfence, 9), (Mfence, 17), (Pause, 10), (Nop, 1), (Rdtsc, 24), (Rdtscp, 36), (Rdpid, 36),
            (Cpuid, 150), (Rdmsr, 100), (Wrmsr, 150), (PortIo, 500),
            (Interrupt, 150), (Iret, 70)),
        Sources = CostSource +
            "TSC: invariant from Nehalem on (Linux timekeeping.rst 3.9; Tosatti's invariant-TSC commit); " +
            "no APICv (it arrived with Ivy Bridge-EP); VMX-preemption timer not used by KVM, as on Nehalem-era parts with the " +
            "preemption-timer erratum (assumption: not checked per stepping); interrupt delivery 150 and IRETQ 70 cycles: assumption; " +
            "exit round trip 1,000 cycles: assumption (Agesen et al. 2012, Fig. 1, order of magnitude).",
    };

    /// <summary>Intel Skylake (2015): invariant TSC, VT-x with the 16.48 TSC multiplier, TSC_ADJUST.</summary>
    public static CpuModel IntelSkylake { get; } = new()
    {
        Name = "intel-skylake",
        Description = "Intel Skylake: invariant TSC, VMX with TSC scaling (16.48), TSC_ADJUST, RDTSCP",
        Vendor = Vendor.Vmx,
        ConstantTsc = true,
        NonstopTsc = true,
        Scaling = TscScaling.VmxMultiplier16_48,
        HasTscAdjust = true,
        HasRdtscp = true,
        ApicVirtualization = false,
        VmxPreemptionTimer = true,
        ExitRoundTrip = new Cycles(600),
        Costs = CpuModel.CostTable(
            (Alu, 1), (Branch, 1), (Load, 4), (Store, 1), (Mul, 3), (Div, 40), (LockedRmw, 18),
            (Lfence, 4), (Mfence, 33), (Pause, 140), (Nop, 1), (Rdtsc, 25), (Rdtscp, 32), (Rdpid, 32),
            (Cpuid, 100), (Rdmsr, 100), (Wrmsr, 150), (PortIo, 500),
            (Interrupt, 150), (Iret, 60)),
        Sources = CostSource +
            "PAUSE ~140 cycles from Skylake on (Intel 64 and IA-32 Optimization Reference Manual, 'Pause latency in Skylake'); " +
            "VMX TSC multiplier 48 fraction bits (KVM vmx.c hardware_setup); " +
            "no APICv: assumption for client Skylake (server Skylake-SP has it); VMX-preemption timer used by KVM as the hv timer; " +
            "interrupt delivery 150 and IRETQ 60 cycles: assumption; exit round trip 600 cycles: assumption.",
    };

    /// <summary>AMD K8 (rev F, 2006): TSC follows P-states and stops when halted, AMD-V without TSC ratio.</summary>
    public static CpuModel AmdK8 { get; } = new()
    {
        Name = "amd-k8",
        Description = "AMD K8 (rev F): TSC rate follows P-states and stops in C1E+, SVM, no TSC ratio, RDTSCP",
        Vendor = Vendor.Svm,
        ConstantTsc = false,
        NonstopTsc = false,
        TscStopsFrom = CState.C1E,
        Scaling = TscScaling.None,
        HasTscAdjust = false,
        HasRdtscp = true,
        ApicVirtualization = false,
        ExitRoundTrip = new Cycles(2_000),
        Costs = CpuModel.CostTable(
            (Alu, 1), (Branch, 1), (Load, 3), (Store, 1), (Mul, 5), (Div, 71), (LockedRmw, 20),
            (Lfence, 2), (Mfence, 16), (Pause, 1), (Nop, 1), (Rdtsc, 7), (Rdtscp, 10), (Rdpid, 10),
            (Cpuid, 100), (Rdmsr, 100), (Wrmsr, 150), (PortIo, 500),
            (Interrupt, 200), (Iret, 80)),
        Sources = CostSource +
            "TSC follows core frequency and may stop in C1E (Linux timekeeping.rst 3.4-3.5); " +
            "RDTSCP first shipped on K8 rev F; no AVIC; interrupt delivery 200 and IRETQ 80 cycles: assumption; exit round trip 2,000 cycles: assumption (early AMD-V VMRUN/#VMEXIT).",
    };

    /// <summary>AMD Zen 2 (2019): invariant TSC, AMD-V with the 8.32 TSC ratio MSR.</summary>
    public static CpuModel AmdZen2 { get; } = new()
    {
        Name = "amd-zen2",
        Description = "AMD Zen 2: invariant TSC, SVM with TSC ratio (8.32), RDTSCP, RDPID",
        Vendor = Vendor.Svm,
        ConstantTsc = true,
        NonstopTsc = true,
        Scaling = TscScaling.SvmRatio8_32,
        HasTscAdjust = false,
        HasRdtscp = true,
        HasRdpid = true,
        ApicVirtualization = true,
        ExitRoundTrip = new Cycles(1_350),
        Costs = CpuModel.CostTable(
            (Alu, 1), (Branch, 1), (Load, 4), (Store, 1), (Mul, 3), (Div, 30), (LockedRmw, 8),
            (Lfence, 1), (Mfence, 7), (Pause, 65), (Nop, 1), (Rdtsc, 37), (Rdtscp, 64), (Rdpid, 30),
            (Cpuid, 150), (Rdmsr, 100), (Wrmsr, 150), (PortIo, 500),
            (Interrupt, 150), (Iret, 60)),
        Sources = CostSource +
            "SVM TSC ratio 8.32 (KVM svm.c svm_hardware_setup); exit round trip ~1,350 cycles across VMRUN/#VMEXIT " +
            "(lkml.iu.edu/hypermail/linux/kernel/2012.2/00527, AMD 2020); TSC_ADJUST absent: assumption; " +
            "AVIC present (KVM enables it only with kvm_amd avic=1: assumption that it is on); interrupt delivery 150 and IRETQ 60 cycles: assumption.",
    };

    /// <summary>Every preset, by name, in a fixed order.</summary>
    public static ImmutableArray<CpuModel> All { get; } = [IntelCore2, IntelNehalem, IntelSkylake, AmdK8, AmdZen2];

    /// <summary>The preset called <paramref name="name"/>, or null.</summary>
    public static CpuModel? Find(string name) => All.FirstOrDefault(m => m.Name == name);
}

using System.Collections.Immutable;
using TscSim.Core.Time;

namespace TscSim.Core.Hardware;

/// <summary>Which hardware virtualization a CPU offers.</summary>
public enum Vendor
{
    /// <summary>Intel VT-x (VMX): one "RDTSC exiting" control covers RDTSC and RDTSCP.</summary>
    Vmx,
    /// <summary>AMD-V (SVM): separate RDTSC and RDTSCP intercepts.</summary>
    Svm,
}

/// <summary>TSC scaling hardware for guests (SDM "TSC multiplier"; AMD "TSC ratio" MSR).</summary>
public enum TscScaling
{
    /// <summary>None: a guest TSC rate differing from the host's needs trapping or software catch-up.</summary>
    None,
    /// <summary>VMX TSC multiplier: 64-bit fixed point, 48 fraction bits.</summary>
    VmxMultiplier16_48,
    /// <summary>SVM TSC ratio MSR: 8 integer and 32 fraction bits.</summary>
    SvmRatio8_32,
}

/// <summary>Power states of a core. The TSC of a CPU that is not nonstop stops from <see cref="CpuModel.TscStopsFrom"/> on.</summary>
public enum CState
{
    /// <summary>Running.</summary>
    C0 = 0,
    /// <summary>Halt: the clock is gated, the TSC keeps counting on every modelled CPU.</summary>
    C1 = 1,
    /// <summary>Enhanced halt (lower voltage); some older CPUs stop the TSC here.</summary>
    C1E = 2,
    /// <summary>Sleep: caches flushed; the TSC stops on CPUs that are not nonstop.</summary>
    C3 = 3,
    /// <summary>Deep power down.</summary>
    C6 = 6,
}

/// <summary>Classes of instruction cost; the ISA's table maps every mnemonic to one.</summary>
public enum CostClass
{
    /// <summary>Register ALU operation, move, lea, compare, test.</summary>
    Alu,
    /// <summary>Taken or not-taken branch, call, ret, jmp.</summary>
    Branch,
    /// <summary>Load that hits L1.</summary>
    Load,
    /// <summary>Store.</summary>
    Store,
    /// <summary>64×64 multiply.</summary>
    Mul,
    /// <summary>64-bit divide.</summary>
    Div,
    /// <summary>Locked read-modify-write (lock cmpxchg, lock xadd, xchg with memory), uncontended.</summary>
    LockedRmw,
    /// <summary>LFENCE.</summary>
    Lfence,
    /// <summary>MFENCE.</summary>
    Mfence,
    /// <summary>PAUSE (spin-wait hint).</summary>
    Pause,
    /// <summary>NOP.</summary>
    Nop,
    /// <summary>RDTSC when it does not exit.</summary>
    Rdtsc,
    /// <summary>RDTSCP when it does not exit.</summary>
    Rdtscp,
    /// <summary>RDPID.</summary>
    Rdpid,
    /// <summary>CPUID executed natively (in a VM it always exits).</summary>
    Cpuid,
    /// <summary>RDMSR executed natively.</summary>
    Rdmsr,
    /// <summary>WRMSR executed natively.</summary>
    Wrmsr,
    /// <summary>Port I/O executed natively.</summary>
    PortIo,
    /// <summary>Delivering an interrupt through the IDT (the processor pushes the frame and loads the handler).</summary>
    Interrupt,
    /// <summary>IRETQ (pops the frame).</summary>
    Iret,
}

/// <summary>
/// A CPU model: its TSC behaviour, virtualization features and costs. Presets carry the
/// sources of their numbers in <see cref="Sources"/>; a number marked "assumption" there is a
/// plausible value that could not be confirmed. Scenarios may override any field.
/// </summary>
public sealed record CpuModel
{
    /// <summary>Preset name, e.g. <c>intel-skylake</c>.</summary>
    public required string Name { get; init; }

    /// <summary>One line for <c>tscsim presets</c>.</summary>
    public required string Description { get; init; }

    public required Vendor Vendor { get; init; }

    /// <summary>TSC rate independent of P-states (CPUID/Linux CONSTANT_TSC). If false it follows the core frequency.</summary>
    public required bool ConstantTsc { get; init; }

    /// <summary>TSC keeps counting in deep C-states (NONSTOP_TSC). If false it stops from <see cref="TscStopsFrom"/> on.</summary>
    public required bool NonstopTsc { get; init; }

    /// <summary>Invariant TSC (CPUID 0x80000007 EDX[8]) = constant and nonstop.</summary>
    public bool InvariantTsc => ConstantTsc && NonstopTsc;

    /// <summary>The shallowest C-state in which a TSC that is not nonstop stops.</summary>
    public CState TscStopsFrom { get; init; } = CState.C3;

    /// <summary>Guest TSC scaling hardware.</summary>
    public required TscScaling Scaling { get; init; }

    /// <summary>IA32_TSC_ADJUST (MSR 0x3B, CPUID.7.0:EBX[1]) exists.</summary>
    public required bool HasTscAdjust { get; init; }

    /// <summary>
    /// The first CPUID feature a guest shown this model would miss on <paramref name="destination"/>
    /// (RDTSCP, RDPID, IA32_TSC_ADJUST: the ones the model's guests use), or null when it has them
    /// all: libvirt refuses a live migration to such a CPU.
    /// </summary>
    public string? FirstFeatureMissingIn(CpuModel destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        return (HasRdtscp && !destination.HasRdtscp) ? "RDTSCP (CPUID 0x80000001 EDX[27])"
            : (HasRdpid && !destination.HasRdpid) ? "RDPID (CPUID 7 ECX[22])"
            : (HasTscAdjust && !destination.HasTscAdjust) ? "IA32_TSC_ADJUST (CPUID 7 EBX[1])"
            : null;
    }

    /// <summary>RDTSCP exists (CPUID 0x80000001 EDX[27]); without it RDTSCP raises #UD.</summary>
    public required bool HasRdtscp { get; init; }

    /// <summary>RDPID exists (CPUID.7.0:ECX[22]; Ice Lake and Zen 2 on); without it RDPID raises #UD.</summary>
    public bool HasRdpid { get; init; }

    /// <summary>
    /// WRMSR IA32_TSC writes all 64 bits. If false (P6-era rule) only the low 32 bits are
    /// written and the upper 32 are cleared.
    /// </summary>
    public bool FullWidthTscWrite { get; init; } = true;

    /// <summary>
    /// APIC virtualization (Intel APICv, AMD AVIC): EOI writes of a guest are completed in
    /// hardware (no exit); writes that arm the timer still exit. Default false.
    /// </summary>
    public bool ApicVirtualization { get; init; }

    /// <summary>The VMX-preemption timer, which KVM uses (as its "hv timer") for a TSC-deadline APIC timer: expiry exits with reason 52 instead of an external interrupt. Default false.</summary>
    public bool VmxPreemptionTimer { get; init; }

    /// <summary>Hardware cost of a VM exit followed by VM entry (no handler work), in core cycles.</summary>
    public required Cycles ExitRoundTrip { get; init; }

    /// <summary>Native cost of each <see cref="CostClass"/>, in core cycles.</summary>
    public required ImmutableArray<Cycles> Costs { get; init; }

    /// <summary>Where the numbers come from.</summary>
    public required string Sources { get; init; }

    /// <summary>The native cost of one instruction of class <paramref name="c"/>.</summary>
    public Cycles Cost(CostClass c) => Costs[(int)c];

    private long[]? _costCycles;

    /// <summary>The costs as a plain array indexed by <see cref="CostClass"/>, for the interpreter's hot loop (do not modify).</summary>
    internal long[] CostCycles => _costCycles ??= [.. Costs.Select(c => c.Count)];

    /// <summary>Whether the TSC of this model stops in <paramref name="state"/>.</summary>
    public bool TscStopsIn(CState state) => !NonstopTsc && state >= TscStopsFrom;

    /// <summary>Builds a cost table; every class must be given exactly once.</summary>
    public static ImmutableArray<Cycles> CostTable(params (CostClass Class, long Cycles)[] entries)
    {
        var costs = new Cycles[Enum.GetValues<CostClass>().Length];
        var seen = new bool[costs.Length];
        foreach (var (c, n) in entries)
        {
            if (seen[(int)c])
            {
                throw new ArgumentException($"Cost class {c} given twice.");
            }
            seen[(int)c] = true;
            costs[(int)c] = new Cycles(n);
        }
        int missing = Array.IndexOf(seen, false);
        if (missing >= 0)
        {
            throw new ArgumentException($"Cost class {(CostClass)missing} has no cost.");
        }
        return [.. costs];
    }
}

using TscSim.Core.Abi;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;

namespace TscSim.Core.Virtualization;

/// <summary>
/// The per-vCPU virtualization controls that matter for time, in vendor terms. VMX: primary
/// "use TSC offsetting" (bit 3), "RDTSC exiting" (bit 12), "HLT exiting"; secondary "enable
/// RDTSCP" (bit 3), "use TSC scaling" (bit 25); VMCS TSC_OFFSET and TSC_MULTIPLIER; the MSR
/// bitmap bit for IA32_TSC. SVM: the RDTSC and RDTSCP intercepts (separate), HLT intercept,
/// MSR permission map, VMCB tsc_offset, and the TSC ratio MSR (0xC000_0104).
/// </summary>
public struct VcpuControls
{
    // VMX
    public bool UseTscOffsetting;
    public bool RdtscExiting;
    public bool EnableRdtscp;
    public bool UseTscScaling;

    // SVM
    public bool InterceptRdtsc;
    public bool InterceptRdtscp;

    // both
    public bool HltExiting;
    public bool TscMsrReadExits;
    public long TscOffset;
    public ulong TscRatio;
}

/// <summary>What the hardware does with a time instruction in guest mode.</summary>
public enum GuestModeOutcome : byte
{
    /// <summary>Runs in the guest: reads offset + scaled host TSC.</summary>
    Native,
    /// <summary>Exits to the hypervisor.</summary>
    Exit,
    /// <summary>Raises #UD in the guest (VMX RDTSCP/RDPID with "enable RDTSCP" clear).</summary>
    InvalidOpcode,
}

/// <summary>A vendor's exit semantics (VMX or SVM), behind one interface.</summary>
public interface IVirtualizationBackend
{
    Vendor Vendor { get; }

    /// <summary>Fraction bits of the scaling ratio.</summary>
    int FractionBits { get; }

    /// <summary>What <paramref name="op"/> does under <paramref name="c"/> (time and MSR instructions).</summary>
    GuestModeOutcome Decide(Opcode op, in VcpuControls c, uint msr);

    /// <summary>The guest-visible TSC for a host TSC value under <paramref name="c"/>.</summary>
    ulong GuestTsc(ulong hostTsc, in VcpuControls c);

    /// <summary>The exit reason (VMX basic reason or SVM exit code) for <paramref name="op"/>.</summary>
    int ExitCode(Opcode op);

    /// <summary>The exit code of an MMIO access.</summary>
    int MmioExitCode { get; }

    /// <summary>Sets the controls that make RDTSC (and, if <paramref name="rdtscp"/>, RDTSCP) exit or not.</summary>
    void SetTscTrapping(ref VcpuControls c, bool rdtsc, bool rdtscp);

    /// <summary>Whether this vendor can trap RDTSC while leaving RDTSCP native (SVM only).</summary>
    bool CanPassThroughRdtscp { get; }
}

/// <summary>
/// Intel VMX (SDM vol. 3C §25.1.3, §25.3): "RDTSC exiting" makes RDTSC <em>and</em> RDTSCP exit
/// (reasons 16 and 51); RDTSCP (and RDPID) with "enable RDTSCP" clear is #UD before anything
/// else; RDMSR IA32_TSC follows the MSR bitmap (reason 31); CPUID always exits (10).
/// </summary>
public sealed class VmxBackend : IVirtualizationBackend
{
    public static VmxBackend Instance { get; } = new();

    public Vendor Vendor => Vendor.Vmx;

    public int FractionBits => 48;

    public int MmioExitCode => InstructionTable.MmioExit.VmxReason;

    public bool CanPassThroughRdtscp => false;

    public GuestModeOutcome Decide(Opcode op, in VcpuControls c, uint msr) => op switch
    {
        Opcode.Rdtsc => c.RdtscExiting ? GuestModeOutcome.Exit : GuestModeOutcome.Native,
        Opcode.Rdtscp => !c.EnableRdtscp ? GuestModeOutcome.InvalidOpcode
            : c.RdtscExiting ? GuestModeOutcome.Exit : GuestModeOutcome.Native,
        Opcode.Rdpid => c.EnableRdtscp ? GuestModeOutcome.Native : GuestModeOutcome.InvalidOpcode,
        Opcode.Rdmsr => msr == Msr.Tsc && !c.TscMsrReadExits ? GuestModeOutcome.Native : GuestModeOutcome.Exit,
        Opcode.Hlt => c.HltExiting ? GuestModeOutcome.Exit : GuestModeOutcome.Native,
        _ => GuestModeOutcome.Exit, // CPUID, WRMSR, port I/O
    };

    public ulong GuestTsc(ulong hostTsc, in VcpuControls c)
    {
        if (!c.UseTscOffsetting)
        {
            return hostTsc;
        }
        return c.UseTscScaling
            ? TscScalingMath.GuestTsc(hostTsc, c.TscOffset, c.TscRatio, 48)
            : unchecked(hostTsc + (ulong)c.TscOffset);
    }

    public int ExitCode(Opcode op) =>
        InstructionTable.Of(op).Exit?.VmxReason ?? throw new ArgumentOutOfRangeException(nameof(op), op, "no VMX exit for this instruction");

    public void SetTscTrapping(ref VcpuControls c, bool rdtsc, bool rdtscp)
    {
        c.RdtscExiting = rdtsc; // one control for both RDTSC and RDTSCP
        c.TscMsrReadExits = rdtsc; // and the MSR bitmap bit for IA32_TSC: the whole rdtsc family traps
    }
}

/// <summary>
/// AMD SVM (APM vol. 2, ch. 15; Linux asm/svm.h INTERCEPT_RDTSC, INTERCEPT_RDTSCP, uapi/asm/svm.h
/// SVM_EXIT_*): separate RDTSC and RDTSCP intercepts (0x6E, 0x87), so
/// RDTSCP can stay native while RDTSC traps; guest TSC = host TSC × ratio (8.32) + VMCB offset.
/// </summary>
public sealed class SvmBackend : IVirtualizationBackend
{
    public static SvmBackend Instance { get; } = new();

    public Vendor Vendor => Vendor.Svm;

    public int FractionBits => 32;

    public int MmioExitCode => InstructionTable.MmioExit.SvmExitCode;

    public bool CanPassThroughRdtscp => true;

    public GuestModeOutcome Decide(Opcode op, in VcpuControls c, uint msr) => op switch
    {
        Opcode.Rdtsc => c.InterceptRdtsc ? GuestModeOutcome.Exit : GuestModeOutcome.Native,
        Opcode.Rdtscp => c.InterceptRdtscp ? GuestModeOutcome.Exit : GuestModeOutcome.Native,
        Opcode.Rdpid => GuestModeOutcome.Native,
        Opcode.Rdmsr => msr == Msr.Tsc && !c.TscMsrReadExits ? GuestModeOutcome.Native : GuestModeOutcome.Exit,
        Opcode.Hlt => c.HltExiting ? GuestModeOutcome.Exit : GuestModeOutcome.Native,
        _ => GuestModeOutcome.Exit,
    };

    public ulong GuestTsc(ulong hostTsc, in VcpuControls c) =>
        TscScalingMath.GuestTsc(hostTsc, c.TscOffset, c.TscRatio == 0 ? 1UL << 32 : c.TscRatio, 32);

    public int ExitCode(Opcode op) =>
        InstructionTable.Of(op).Exit?.SvmExitCode ?? throw new ArgumentOutOfRangeException(nameof(op), op, "no SVM exit for this instruction");

    public void SetTscTrapping(ref VcpuControls c, bool rdtsc, bool rdtscp)
    {
        c.InterceptRdtsc = rdtsc;
        c.InterceptRdtscp = rdtscp;
        c.TscMsrReadExits = rdtsc;
    }
}

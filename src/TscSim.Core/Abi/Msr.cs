namespace TscSim.Core.Abi;

/// <summary>The model-specific registers the model knows, by their architectural numbers.</summary>
public static class Msr
{
    /// <summary>MSR_IA32_TSC (IA32_TIME_STAMP_COUNTER): Linux <c>arch/x86/include/asm/msr-index.h</c>; SDM vol. 4 table 2-2.</summary>
    public const uint Tsc = 0x0000_0010;

    /// <summary>MSR_IA32_TSC_ADJUST (msr-index.h; SDM vol. 3B §18.17.3; CPUID.(EAX=7,ECX=0):EBX[1]).</summary>
    public const uint TscAdjust = 0x0000_003B;

    /// <summary>MSR_TSC_AUX: what RDTSCP returns in ECX and RDPID in its operand (msr-index.h).</summary>
    public const uint TscAux = 0xC000_0103;

    /// <summary>MSR_KVM_WALL_CLOCK_NEW (Linux <c>arch/x86/include/uapi/asm/kvm_para.h</c>).</summary>
    public const uint KvmWallClockNew = 0x4B56_4D00;

    /// <summary>
    /// MSR_KVM_SYSTEM_TIME_NEW (kvm_para.h): the guest writes the address of its
    /// pvclock_vcpu_time_info (bit 0 = enable); the model fixes the address instead
    /// (<see cref="GuestAddresses.PvclockBase"/>).
    /// </summary>
    public const uint KvmSystemTimeNew = 0x4B56_4D01;

    /// <summary>HV_X64_MSR_TSC_FREQUENCY: the TSC rate in Hz (Linux <c>arch/x86/include/asm/hyperv-tlfs.h</c>; Hyper-V TLFS).</summary>
    public const uint HvTscFrequency = 0x4000_0022;

    /// <summary>HV_X64_MSR_REENLIGHTENMENT_CONTROL: the interrupt Hyper-V raises after a rate-changing migration (hyperv-tlfs.h).</summary>
    public const uint HvReenlightenmentControl = 0x4000_0106;

    /// <summary>HV_X64_MSR_TSC_EMULATION_CONTROL: whether Hyper-V emulates the TSC after migration (hyperv-tlfs.h).</summary>
    public const uint HvTscEmulationControl = 0x4000_0107;

    /// <summary>
    /// HV_X64_MSR_TSC_EMULATION_STATUS (hyperv-tlfs.h): the guest writes 0 once it has
    /// recomputed its clock, and emulation may end (the model's acknowledgement of a re-enlightenment).
    /// </summary>
    public const uint HvTscEmulationStatus = 0x4000_0108;
}

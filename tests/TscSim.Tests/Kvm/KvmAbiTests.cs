using TscSim.Kvm;

namespace TscSim.Tests.Kvm;

/// <summary>The KVM ABI numbers, computed from the _IO/_IOR/_IOW macros, against the values the installed linux/kvm.h compiles to.</summary>
public class KvmAbiTests
{
    public static TheoryData<string, uint, uint> Ioctls => new()
    {
        { "KVM_GET_API_VERSION", KvmAbi.GetApiVersion, 0xAE00 },
        { "KVM_CREATE_VM", KvmAbi.CreateVm, 0xAE01 },
        { "KVM_CHECK_EXTENSION", KvmAbi.CheckExtension, 0xAE03 },
        { "KVM_GET_VCPU_MMAP_SIZE", KvmAbi.GetVcpuMmapSize, 0xAE04 },
        { "KVM_GET_SUPPORTED_CPUID", KvmAbi.GetSupportedCpuid, 0xC008AE05 },
        { "KVM_CREATE_VCPU", KvmAbi.CreateVcpu, 0xAE41 },
        { "KVM_SET_USER_MEMORY_REGION", KvmAbi.SetUserMemoryRegion, 0x4020AE46 },
        { "KVM_GET_CLOCK", KvmAbi.GetClock, 0x8030AE7C },
        { "KVM_RUN", KvmAbi.Run, 0xAE80 },
        { "KVM_GET_REGS", KvmAbi.GetRegs, 0x8090AE81 },
        { "KVM_SET_REGS", KvmAbi.SetRegs, 0x4090AE82 },
        { "KVM_GET_SREGS", KvmAbi.GetSregs, 0x8138AE83 },
        { "KVM_SET_SREGS", KvmAbi.SetSregs, 0x4138AE84 },
        { "KVM_GET_MSRS", KvmAbi.GetMsrs, 0xC008AE88 },
        { "KVM_SET_MSRS", KvmAbi.SetMsrs, 0x4008AE89 },
        { "KVM_SET_CPUID2", KvmAbi.SetCpuid2, 0x4008AE90 },
        { "KVM_SET_TSC_KHZ", KvmAbi.SetTscKhz, 0xAEA2 },
        { "KVM_GET_TSC_KHZ", KvmAbi.GetTscKhz, 0xAEA3 },
        { "KVM_GET_STATS_FD", KvmAbi.GetStatsFd, 0xAECE },
        { "KVM_CREATE_IRQCHIP", KvmAbi.CreateIrqchip, 0xAE60 },
        { "KVM_SIGNAL_MSI", KvmAbi.SignalMsi, 0x4020AEA5 },
        { "KVM_SET_MP_STATE", KvmAbi.SetMpState, 0x4004AE99 },
    };

    [Theory]
    [MemberData(nameof(Ioctls))]
    public void Ioctl_numbers_match_the_compiled_header(string name, uint computed, uint header) =>
        Assert.True(computed == header, $"{name}: computed 0x{computed:X}, header 0x{header:X}");

    [Fact]
    public void Structure_sizes_and_offsets_match_the_compiled_header()
    {
        Assert.Equal(0x90, KvmAbi.RegsSize);
        Assert.Equal(0x138, KvmAbi.SregsSize);
        Assert.Equal(0x18, KvmAbi.SegmentSize);
        Assert.Equal(0x20, KvmAbi.MemoryRegionSize);
        Assert.Equal(0x30, KvmAbi.ClockDataSize);
        Assert.Equal(0x28, KvmAbi.CpuidEntry2Size);
        Assert.Equal(0x10, KvmAbi.MsrEntrySize);
        Assert.Equal(0x8, KvmAbi.RunExitReason);
        Assert.Equal(0x20, KvmAbi.RunIoDirection);
        Assert.Equal(0x28, KvmAbi.RunIoDataOffset);
        Assert.Equal(0xC0, KvmAbi.SregsGdt);
        Assert.Equal(0xD0, KvmAbi.SregsIdt);
        Assert.Equal(0x20, KvmAbi.MsiSize);
        Assert.Equal(0xE0, KvmAbi.SregsCr0);
        Assert.Equal(0x108, KvmAbi.SregsEfer);
        // struct kvm_regs is rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags, not the encoding order.
        Assert.Equal([0, 16, 24, 8, 48, 56, 32, 40, 64, 120], new[] { 0, 1, 2, 3, 4, 5, 6, 7, 8, 15 }.Select(KvmAbi.RegsOffset));
        Assert.Equal(128, KvmAbi.RegsRip);
    }
}

namespace TscSim.Kvm;

/// <summary>
/// The KVM userspace ABI used here: ioctl numbers, capability and exit-reason numbers, and the
/// byte layouts of the structures passed, from Linux's <c>include/uapi/linux/kvm.h</c> and
/// <c>arch/x86/include/uapi/asm/kvm.h</c> (Debian linux-libc-dev for 6.x; checked against the
/// compiled header values in tests).
/// </summary>
public static class KvmAbi
{
    /// <summary>KVMIO, the ioctl type byte of every KVM ioctl.</summary>
    public const uint KvmIo = 0xAE;

    // asm-generic/ioctl.h: nr bits 0-7, type bits 8-15, size bits 16-29, direction bits 30-31
    // (_IOC_NONE 0, _IOC_WRITE 1, _IOC_READ 2).
    private const int NrShift = 0, TypeShift = 8, SizeShift = 16, DirShift = 30;
    private const uint DirNone = 0, DirWrite = 1, DirRead = 2;

    /// <summary><c>_IOC(dir, type, nr, size)</c>.</summary>
    public static uint Ioc(uint dir, uint type, uint nr, uint size) =>
        (dir << DirShift) | (type << TypeShift) | (nr << NrShift) | (size << SizeShift);

    /// <summary><c>_IO(KVMIO, nr)</c>.</summary>
    public static uint Io(uint nr) => Ioc(DirNone, KvmIo, nr, 0);

    /// <summary><c>_IOR(KVMIO, nr, size)</c>: the kernel writes the argument.</summary>
    public static uint Ior(uint nr, int size) => Ioc(DirRead, KvmIo, nr, (uint)size);

    /// <summary><c>_IOW(KVMIO, nr, size)</c>: the kernel reads the argument.</summary>
    public static uint Iow(uint nr, int size) => Ioc(DirWrite, KvmIo, nr, (uint)size);

    /// <summary><c>_IOWR(KVMIO, nr, size)</c>.</summary>
    public static uint Iowr(uint nr, int size) => Ioc(DirRead | DirWrite, KvmIo, nr, (uint)size);

    // Structure sizes (bytes).
    public const int RegsSize = 144;               // struct kvm_regs: 18 u64
    public const int SegmentSize = 24;             // struct kvm_segment
    public const int SregsSize = 312;              // struct kvm_sregs: 8 segments, 2 dtables, 7 u64, interrupt_bitmap[4]
    public const int MemoryRegionSize = 32;        // struct kvm_userspace_memory_region
    public const int ClockDataSize = 48;           // struct kvm_clock_data
    public const int MsrsHeaderSize = 8;           // struct kvm_msrs { u32 nmsrs; u32 pad; entries[] }
    public const int MsrEntrySize = 16;            // struct kvm_msr_entry { u32 index; u32 reserved; u64 data; }
    public const int Cpuid2HeaderSize = 8;         // struct kvm_cpuid2 { u32 nent; u32 padding; entries[] }
    public const int CpuidEntry2Size = 40;         // struct kvm_cpuid_entry2
    public const int MsiSize = 32;                 // struct kvm_msi { u32 address_lo, address_hi, data, flags, devid; u8 pad[12]; }

    public static readonly uint GetApiVersion = Io(0x00);
    public static readonly uint CreateVm = Io(0x01);
    public static readonly uint CheckExtension = Io(0x03);
    public static readonly uint GetVcpuMmapSize = Io(0x04);
    public static readonly uint GetSupportedCpuid = Iowr(0x05, Cpuid2HeaderSize);
    public static readonly uint CreateVcpu = Io(0x41);
    public static readonly uint SetUserMemoryRegion = Iow(0x46, MemoryRegionSize);
    public static readonly uint GetClock = Ior(0x7C, ClockDataSize);
    public static readonly uint Run = Io(0x80);
    public static readonly uint GetRegs = Ior(0x81, RegsSize);
    public static readonly uint SetRegs = Iow(0x82, RegsSize);
    public static readonly uint GetSregs = Ior(0x83, SregsSize);
    public static readonly uint SetSregs = Iow(0x84, SregsSize);
    public static readonly uint GetMsrs = Iowr(0x88, MsrsHeaderSize);
    public static readonly uint SetMsrs = Iow(0x89, MsrsHeaderSize);
    public static readonly uint SetCpuid2 = Iow(0x90, Cpuid2HeaderSize);
    public static readonly uint SetTscKhz = Io(0xA2);
    public static readonly uint GetTscKhz = Io(0xA3);
    public static readonly uint GetStatsFd = Io(0xCE);
    public static readonly uint CreateIrqchip = Io(0x60);
    public static readonly uint SetMpState = Iow(0x99, 4); // struct kvm_mp_state { u32 mp_state; }

    /// <summary>KVM_MP_STATE_RUNNABLE.</summary>
    public const uint MpStateRunnable = 0;

    public static readonly uint SignalMsi = Iow(0xA5, MsiSize);

    /// <summary>The only KVM API version there has ever been.</summary>
    public const int ApiVersion = 12;

    // Capabilities (KVM_CAP_*).
    public const int CapIrqchip = 0, CapAdjustClock = 39, CapTscControl = 60, CapGetTscKhz = 61, CapTscDeadlineTimer = 72, CapSignalMsi = 77, CapBinaryStatsFd = 203;

    /// <summary>kvm_clock_data.flags: KVM_CLOCK_TSC_STABLE (master clock in use), KVM_CLOCK_HOST_TSC (host_tsc valid).</summary>
    public const uint ClockTscStable = 2, ClockHostTsc = 8;

    // Exit reasons (KVM_EXIT_*).
    public const uint ExitIo = 2, ExitHlt = 5, ExitMmio = 6, ExitShutdown = 8, ExitFailEntry = 9, ExitIntr = 10, ExitInternalError = 17;

    // struct kvm_run offsets.
    public const int RunExitReason = 8, RunIoDirection = 32, RunIoSize = 33, RunIoPort = 34, RunIoCount = 36, RunIoDataOffset = 40,
        RunMmioPhysAddr = 32, RunUnionStart = 32;

    // struct kvm_sregs offsets: segments cs, ds, es, fs, gs, ss, tr, ldt; gdt, idt; cr0, cr2, cr3, cr4, cr8, efer, apic_base.
    public const int SregsCs = 0, SregsDs = 24, SregsEs = 48, SregsFs = 72, SregsGs = 96, SregsSs = 120,
        SregsGdt = 192, SregsIdt = 208, SregsCr0 = 224, SregsCr3 = 240, SregsCr4 = 248, SregsEfer = 264;

    // struct kvm_regs: rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags (note: not the x86 encoding order).
    public const int RegsRip = 128, RegsRflags = 136;

    /// <summary>The offset in struct kvm_regs of x86 register number <paramref name="reg"/> (0 = rax … 15 = r15).</summary>
    public static int RegsOffset(int reg) => reg switch
    {
        0 => 0,   // rax
        1 => 16,  // rcx
        2 => 24,  // rdx
        3 => 8,   // rbx
        4 => 48,  // rsp
        5 => 56,  // rbp
        6 => 32,  // rsi
        7 => 40,  // rdi
        _ => 64 + (reg - 8) * 8,
    };

    // MSRs.
    public const uint MsrIa32Tsc = 0x10, MsrIa32TscAdjust = 0x3B, MsrKvmSystemTimeNew = 0x4b564d01;

    /// <summary>IA32_APIC_BASE: base 0xFEE00000, bit 8 BSP, bit 10 EXTD (x2APIC mode), bit 11 global enable (SDM vol. 3A §11.4.4, §11.12.1).</summary>
    public const uint MsrApicBase = 0x1B;

    /// <summary>The x2APIC spurious-interrupt vector register; bit 8 software-enables the APIC (reset value 0xFF: disabled, LVT writes forced masked).</summary>
    public const uint MsrX2apicSvr = 0x80F;

    /// <summary>IA32_APIC_BASE for the BSP in x2APIC mode: 0xFEE00000 | enable | EXTD | BSP.</summary>
    public const ulong ApicBaseX2apicBsp = 0xFEE0_0000 | 0x800 | 0x400 | 0x100;

    /// <summary>kvm_msi.data for an NMI (delivery mode 100b, bits 10:8; SDM vol. 3A §11.11.2).</summary>
    public const uint MsiDataNmi = 4 << 8;
}

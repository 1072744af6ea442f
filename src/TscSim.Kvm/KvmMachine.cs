using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace TscSim.Kvm;

/// <summary>
/// <c>/dev/kvm</c>, opened: the system-level ioctls. Create with <see cref="TryOpen"/>, which says
/// why when KVM is missing or unusable.
/// </summary>
public sealed class KvmSystem : IDisposable
{
    private int _fd;

    private KvmSystem(int fd) => _fd = fd;

    internal int Fd => _fd;

    /// <summary>Opens <paramref name="path"/>; null and a one-line reason when it is missing, not openable, or not API 12.</summary>
    public static KvmSystem? TryOpen(out string why, string path = "/dev/kvm")
    {
        if (!OperatingSystem.IsLinux() || !Environment.Is64BitProcess || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            why = "real-KVM validation needs Linux on x86-64";
            return null;
        }
        if (!File.Exists(path))
        {
            why = $"{path} does not exist";
            return null;
        }
        int fd = Native.Open(path, Native.ORdWr | Native.OCloexec);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            why = $"{path} cannot be opened: errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})";
            return null;
        }
        int version = Native.Ioctl(fd, KvmAbi.GetApiVersion, 0);
        if (version != KvmAbi.ApiVersion)
        {
            Native.Close(fd);
            why = $"{path} reports KVM API version {version}, expected {KvmAbi.ApiVersion}";
            return null;
        }
        why = "";
        return new KvmSystem(fd);
    }

    /// <summary>KVM_CHECK_EXTENSION: 0 when absent, else the capability's value.</summary>
    public int CheckExtension(int capability) => Math.Max(0, Native.Ioctl(_fd, KvmAbi.CheckExtension, capability));

    /// <summary>
    /// Whether KVM_GET_SUPPORTED_CPUID sets ECX bit <paramref name="bit"/> of leaf
    /// <paramref name="leaf"/> (kvm_cpuid_entry2: function, index, flags, eax, ebx, ecx at byte 20).
    /// </summary>
    public bool SupportedCpuidEcx(uint leaf, int bit)
    {
        byte[] buffer = SupportedCpuid(out int count);
        for (int i = 0; i < count; i++)
        {
            var entry = buffer.AsSpan(KvmAbi.Cpuid2HeaderSize + i * KvmAbi.CpuidEntry2Size, KvmAbi.CpuidEntry2Size);
            if (BinaryPrimitives.ReadUInt32LittleEndian(entry) == leaf)
            {
                return ((BinaryPrimitives.ReadUInt32LittleEndian(entry[20..]) >> bit) & 1) != 0;
            }
        }
        return false;
    }

    /// <summary>Creates a VM with <paramref name="memoryBytes"/> of guest memory at guest physical 0.</summary>
    public KvmVm CreateVm(long memoryBytes = KvmVm.DefaultMemory) => new(this, memoryBytes);

    /// <summary>KVM_GET_SUPPORTED_CPUID: the raw kvm_cpuid2 entries (40 bytes each).</summary>
    internal byte[] SupportedCpuid(out int count)
    {
        for (int n = 64; n <= 4096; n *= 2)
        {
            byte[] buffer = new byte[KvmAbi.Cpuid2HeaderSize + n * KvmAbi.CpuidEntry2Size];
            BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)n);
            unsafe
            {
                fixed (byte* p = buffer)
                {
                    if (Native.Ioctl(_fd, KvmAbi.GetSupportedCpuid, (nint)p) == 0)
                    {
                        count = (int)BinaryPrimitives.ReadUInt32LittleEndian(buffer);
                        return buffer;
                    }
                }
            }
            int errno = Marshal.GetLastPInvokeError();
            if (errno != 7) // E2BIG: try a larger buffer
            {
                throw new KvmException("KVM_GET_SUPPORTED_CPUID", errno);
            }
        }
        throw new KvmException("KVM_GET_SUPPORTED_CPUID", 7);
    }

    public void Dispose()
    {
        if (_fd >= 0)
        {
            Native.Close(_fd);
            _fd = -1;
        }
    }
}

/// <summary>
/// One KVM VM: its memory (one slot at guest physical 0, identity-mapped by 2 MiB pages for a
/// 64-bit guest), vCPUs, and the VM-level clock.
/// </summary>
public sealed class KvmVm : IDisposable
{
    /// <summary>Guest memory: up to the probe buffers' end (80 MiB, allocated lazily by the host).</summary>
    public const long DefaultMemory = 0x0500_0000;

    /// <summary>Page tables: PML4 at 0x1000, PDPT at 0x2000, PD at 0x3000 (512 × 2 MiB = the first GiB).</summary>
    public const long Pml4 = 0x1000, Pdpt = 0x2000, Pd = 0x3000;

    /// <summary>
    /// The GDT (null, a flat 64-bit code segment at selector 8, flat data at 16: what interrupt
    /// delivery and <c>iretq</c> load CS and SS from), the real IDT (256 16-byte gates, built by
    /// the harness from a program's table, <see cref="GuestLowering"/>), and the IDTR
    /// pseudo-descriptor a lowered <c>lidt</c> loads.
    /// </summary>
    public const long Gdt = 0x4000, Idt = 0x5000, Idtr = 0x6000;

    /// <summary>The probe cursor (u64, the next free entry) and the probe buffer (16-byte entries: value, source line).</summary>
    public const long ProbeCursor = 0x0400_1000, ProbeBuffer = 0x0410_0000;

    private readonly KvmSystem _system;
    private int _fd;
    private nint _memory;
    private readonly List<KvmVcpu> _vcpus = [];

    internal KvmVm(KvmSystem system, long memoryBytes)
    {
        _system = system;
        MemoryBytes = memoryBytes;
        _fd = Native.Ioctl(system.Fd, KvmAbi.CreateVm, 0);
        if (_fd < 0)
        {
            throw new KvmException("KVM_CREATE_VM", Marshal.GetLastPInvokeError());
        }
        _memory = Native.Mmap(0, (nuint)memoryBytes, Native.ProtRead | Native.ProtWrite,
            Native.MapPrivate | Native.MapAnonymous | Native.MapNoReserve, -1, 0);
        if (_memory == -1)
        {
            throw new KvmException("mmap (guest memory)", Marshal.GetLastPInvokeError());
        }
        Span<byte> region = stackalloc byte[KvmAbi.MemoryRegionSize];
        region.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(region, 0);                          // slot
        BinaryPrimitives.WriteUInt32LittleEndian(region[4..], 0);                     // flags
        BinaryPrimitives.WriteUInt64LittleEndian(region[8..], 0);                     // guest_phys_addr
        BinaryPrimitives.WriteUInt64LittleEndian(region[16..], (ulong)memoryBytes);   // memory_size
        BinaryPrimitives.WriteUInt64LittleEndian(region[24..], (ulong)_memory);       // userspace_addr
        Ioctl(KvmAbi.SetUserMemoryRegion, region, "KVM_SET_USER_MEMORY_REGION");

        // Identity map of the first GiB with 2 MiB pages (present | writable | page size).
        WriteU64(Pml4, (ulong)Pdpt | 0x3);
        WriteU64(Pdpt, (ulong)Pd | 0x3);
        for (long i = 0; i < 512; i++)
        {
            WriteU64(Pd + i * 8, (ulong)(i << 21) | 0x83);
        }
        WriteU64(Gdt, 0);
        WriteU64(Gdt + 8, 0x00AF_9A00_0000_FFFF);  // code: present, DPL 0, execute/read, L = 1, G = 1
        WriteU64(Gdt + 16, 0x00CF_9200_0000_FFFF); // data: present, DPL 0, read/write, D/B = 1, G = 1
        WriteU64(Idtr, 256 * 16 - 1);              // limit (u16), then the base (u64) at +2
        Memory(Idtr + 2, 8).Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(Memory(Idtr + 2, 8), (ulong)Idt);
    }

    /// <summary>Whether the VM has KVM's in-kernel interrupt controllers (<see cref="CreateIrqchip"/>).</summary>
    public bool HasIrqchip { get; private set; }

    /// <summary>
    /// KVM_CREATE_IRQCHIP: the in-kernel PIC, IO-APIC and a local APIC per vCPU, created before
    /// any vCPU (KVM refuses it afterwards). With it HLT is handled in the kernel (the vCPU blocks
    /// until an interrupt: KVM_EXIT_HLT no longer reaches userspace), as under QEMU.
    /// </summary>
    public void CreateIrqchip()
    {
        if (_vcpus.Count > 0)
        {
            throw new InvalidOperationException("KVM_CREATE_IRQCHIP must come before the first vCPU");
        }
        if (Native.Ioctl(_fd, KvmAbi.CreateIrqchip, 0) != 0)
        {
            throw new KvmException("KVM_CREATE_IRQCHIP", Marshal.GetLastPInvokeError());
        }
        HasIrqchip = true;
    }

    /// <summary>
    /// KVM_SIGNAL_MSI of an NMI to the local APIC <paramref name="apicId"/> (a VM ioctl, so safe
    /// while that vCPU is in KVM_RUN on another thread): it wakes a halted vCPU even with IF = 0.
    /// </summary>
    public void SignalNmi(int apicId)
    {
        Span<byte> msi = stackalloc byte[KvmAbi.MsiSize];
        msi.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(msi, 0xFEE0_0000u | ((uint)apicId << 12)); // address_lo: destination ID bits 19:12
        BinaryPrimitives.WriteUInt32LittleEndian(msi[8..], KvmAbi.MsiDataNmi);
        unsafe
        {
            fixed (byte* p = msi)
            {
                if (Native.Ioctl(_fd, KvmAbi.SignalMsi, (nint)p) < 0)
                {
                    throw new KvmException("KVM_SIGNAL_MSI", Marshal.GetLastPInvokeError());
                }
            }
        }
    }

    internal int Fd => _fd;

    internal KvmSystem System => _system;

    public long MemoryBytes { get; }

    public IReadOnlyList<KvmVcpu> Vcpus => _vcpus;

    /// <summary>Guest physical memory as a span.</summary>
    public unsafe Span<byte> Memory(long address, int length)
    {
        if (address < 0 || length < 0 || address + length > MemoryBytes)
        {
            throw new ArgumentOutOfRangeException(nameof(address), $"0x{address:x}+{length} is outside guest memory");
        }
        return new Span<byte>((byte*)_memory + address, length);
    }

    public ulong ReadU64(long address) => BinaryPrimitives.ReadUInt64LittleEndian(Memory(address, 8));

    public uint ReadU32(long address) => BinaryPrimitives.ReadUInt32LittleEndian(Memory(address, 4));

    public void WriteU64(long address, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(Memory(address, 8), value);

    public void Write(long address, ReadOnlySpan<byte> bytes) => bytes.CopyTo(Memory(address, bytes.Length));

    /// <summary>KVM_CREATE_VCPU with the next id, in 64-bit mode, with the host's supported CPUID.</summary>
    public KvmVcpu CreateVcpu()
    {
        var vcpu = new KvmVcpu(this, _vcpus.Count);
        _vcpus.Add(vcpu);
        return vcpu;
    }

    /// <summary>KVM_GET_CLOCK: kvmclock ns, flags (KVM_CLOCK_TSC_STABLE …), and the host TSC when flagged.</summary>
    public (ulong Clock, uint Flags, ulong HostTsc) GetClock()
    {
        Span<byte> data = stackalloc byte[KvmAbi.ClockDataSize];
        data.Clear();
        Ioctl(KvmAbi.GetClock, data, "KVM_GET_CLOCK");
        return (BinaryPrimitives.ReadUInt64LittleEndian(data), BinaryPrimitives.ReadUInt32LittleEndian(data[8..]),
            BinaryPrimitives.ReadUInt64LittleEndian(data[24..]));
    }

    private unsafe void Ioctl(uint request, Span<byte> argument, string name)
    {
        fixed (byte* p = argument)
        {
            if (Native.Ioctl(_fd, request, (nint)p) != 0)
            {
                throw new KvmException(name, Marshal.GetLastPInvokeError());
            }
        }
    }

    public void Dispose()
    {
        foreach (var v in _vcpus)
        {
            v.Dispose();
        }
        _vcpus.Clear();
        if (_memory != 0 && _memory != -1)
        {
            Native.Munmap(_memory, (nuint)MemoryBytes);
            _memory = 0;
        }
        if (_fd >= 0)
        {
            Native.Close(_fd);
            _fd = -1;
        }
    }
}

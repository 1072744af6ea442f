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

/// <summary>What stopped a vCPU's run.</summary>
public enum KvmStop
{
    /// <summary>HLT: the program's end.</summary>
    Halted,
    /// <summary>The exit handler asked to stop.</summary>
    Stopped,
    /// <summary>The time limit passed: the harness's NMI ended the run (the vCPU is left in shutdown).</summary>
    TimedOut,
}

/// <summary>One userspace-visible exit: its kind, port and data (port I/O), and CLOCK_MONOTONIC_RAW when KVM_RUN returned.</summary>
public readonly record struct KvmExit(uint Reason, ushort Port, bool Out, uint Data, long HostRawNs);

/// <summary>One vCPU: registers, MSRs, TSC rate, and KVM_RUN with exit decoding.</summary>
public sealed class KvmVcpu : IDisposable
{
    private readonly KvmVm _vm;
    private int _fd;
    private nint _run;
    private readonly int _runSize;
    private int _statsFd = -1;
    private Dictionary<string, long>? _statOffsets;

    internal KvmVcpu(KvmVm vm, int id)
    {
        _vm = vm;
        Id = id;
        _fd = Native.Ioctl(vm.Fd, KvmAbi.CreateVcpu, id);
        if (_fd < 0)
        {
            throw new KvmException("KVM_CREATE_VCPU", Marshal.GetLastPInvokeError());
        }
        _runSize = Native.Ioctl(vm.System.Fd, KvmAbi.GetVcpuMmapSize, 0);
        if (_runSize <= 0)
        {
            throw new KvmException("KVM_GET_VCPU_MMAP_SIZE", Marshal.GetLastPInvokeError());
        }
        _run = Native.Mmap(0, (nuint)_runSize, Native.ProtRead | Native.ProtWrite, Native.MapShared, _fd, 0);
        if (_run == -1)
        {
            throw new KvmException("mmap (kvm_run)", Marshal.GetLastPInvokeError());
        }
        byte[] cpuid = vm.System.SupportedCpuid(out _);
        IoctlBuffer(KvmAbi.SetCpuid2, cpuid, "KVM_SET_CPUID2");
        EnterLongMode();
        if (vm.HasIrqchip)
        {
            // What firmware does before the program: the local APIC in x2APIC mode (the model's
            // APIC registers are x2APIC MSRs) and software-enabled (SVR bit 8, vector 0xFF); the
            // model has no SVR and no enable bits, its timer works from reset.
            SetMsr(KvmAbi.MsrApicBase, id == 0 ? KvmAbi.ApicBaseX2apicBsp : KvmAbi.ApicBaseX2apicBsp & ~0x100UL);
            SetMsr(KvmAbi.MsrX2apicSvr, 0x1FF);
            if (id > 0)
            {
                // With an in-kernel APIC an AP starts waiting for INIT/SIPI (KVM_MP_STATE_UNINITIALIZED:
                // KVM_RUN returns EAGAIN); the model's vCPUs all start at the entry point, so it is made runnable.
                Span<byte> state = stackalloc byte[4];
                BinaryPrimitives.WriteUInt32LittleEndian(state, KvmAbi.MpStateRunnable);
                Ioctl(KvmAbi.SetMpState, state, "KVM_SET_MP_STATE");
            }
        }
    }

    public int Id { get; }

    private void EnterLongMode()
    {
        Span<byte> s = stackalloc byte[KvmAbi.SregsSize];
        Ioctl(KvmAbi.GetSregs, s, "KVM_GET_SREGS");
        // A flat 64-bit code segment and flat data segments (no GDT is needed: the hidden parts are loaded directly).
        WriteSegment(s[KvmAbi.SregsCs..], selector: 8, type: 11, db: 0, l: 1);
        foreach (int off in new[] { KvmAbi.SregsDs, KvmAbi.SregsEs, KvmAbi.SregsFs, KvmAbi.SregsGs, KvmAbi.SregsSs })
        {
            WriteSegment(s[off..], selector: 16, type: 3, db: 1, l: 0);
        }
        BinaryPrimitives.WriteUInt64LittleEndian(s[KvmAbi.SregsGdt..], (ulong)KvmVm.Gdt);
        BinaryPrimitives.WriteUInt16LittleEndian(s[(KvmAbi.SregsGdt + 8)..], 3 * 8 - 1);
        BinaryPrimitives.WriteUInt64LittleEndian(s[KvmAbi.SregsCr3..], (ulong)KvmVm.Pml4);
        BinaryPrimitives.WriteUInt64LittleEndian(s[KvmAbi.SregsCr4..], 1UL << 5);                  // PAE
        BinaryPrimitives.WriteUInt64LittleEndian(s[KvmAbi.SregsCr0..], 0x8000_0033UL | (1UL << 16)); // PG | WP | NE | ET | MP | PE
        BinaryPrimitives.WriteUInt64LittleEndian(s[KvmAbi.SregsEfer..], 0x500);                     // LME | LMA
        Ioctl(KvmAbi.SetSregs, s, "KVM_SET_SREGS");
    }

    private static void WriteSegment(Span<byte> seg, ushort selector, byte type, byte db, byte l)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(seg, 0);             // base
        BinaryPrimitives.WriteUInt32LittleEndian(seg[8..], 0xFFFF_FFFF); // limit
        BinaryPrimitives.WriteUInt16LittleEndian(seg[12..], selector);
        seg[14] = type;
        seg[15] = 1;  // present
        seg[16] = 0;  // dpl
        seg[17] = db;
        seg[18] = 1;  // s (code/data)
        seg[19] = l;
        seg[20] = 1;  // g
        seg[21] = 0;  // avl
        seg[22] = 0;  // unusable
    }

    /// <summary>KVM_SET_REGS: rip, rsp, rdi and rflags = 2, every other register 0.</summary>
    public void SetEntry(ulong rip, ulong rsp, ulong rdi)
    {
        Span<byte> r = stackalloc byte[KvmAbi.RegsSize];
        r.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(r[KvmAbi.RegsRip..], rip);
        BinaryPrimitives.WriteUInt64LittleEndian(r[KvmAbi.RegsOffset(4)..], rsp);
        BinaryPrimitives.WriteUInt64LittleEndian(r[KvmAbi.RegsOffset(7)..], rdi);
        BinaryPrimitives.WriteUInt64LittleEndian(r[KvmAbi.RegsRflags..], 2);
        Ioctl(KvmAbi.SetRegs, r, "KVM_SET_REGS");
    }

    /// <summary>KVM_GET_REGS: register <paramref name="reg"/> (x86 number) or rip (-1).</summary>
    public ulong GetRegister(int reg)
    {
        Span<byte> r = stackalloc byte[KvmAbi.RegsSize];
        Ioctl(KvmAbi.GetRegs, r, "KVM_GET_REGS");
        return BinaryPrimitives.ReadUInt64LittleEndian(r[(reg < 0 ? KvmAbi.RegsRip : KvmAbi.RegsOffset(reg))..]);
    }

    /// <summary>KVM_SET_MSRS (host-initiated) of one MSR.</summary>
    public void SetMsr(uint index, ulong value)
    {
        Span<byte> m = stackalloc byte[KvmAbi.MsrsHeaderSize + KvmAbi.MsrEntrySize];
        m.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(m, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(m[8..], index);
        BinaryPrimitives.WriteUInt64LittleEndian(m[16..], value);
        int n = IoctlRaw(KvmAbi.SetMsrs, m);
        if (n != 1)
        {
            throw new KvmException($"KVM_SET_MSRS (0x{index:x})", n < 0 ? Marshal.GetLastPInvokeError() : 22);
        }
    }

    /// <summary>KVM_GET_MSRS (host-initiated) of one MSR.</summary>
    public ulong GetMsr(uint index)
    {
        Span<byte> m = stackalloc byte[KvmAbi.MsrsHeaderSize + KvmAbi.MsrEntrySize];
        m.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(m, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(m[8..], index);
        int n = IoctlRaw(KvmAbi.GetMsrs, m);
        if (n != 1)
        {
            throw new KvmException($"KVM_GET_MSRS (0x{index:x})", n < 0 ? Marshal.GetLastPInvokeError() : 22);
        }
        return BinaryPrimitives.ReadUInt64LittleEndian(m[16..]);
    }

    /// <summary>KVM_SET_TSC_KHZ: 0 on success, else −errno (KVM refuses some rates).</summary>
    public int SetTscKhz(long khz) => Native.Ioctl(_fd, KvmAbi.SetTscKhz, (nint)khz) == 0 ? 0 : -Marshal.GetLastPInvokeError();

    /// <summary>KVM_GET_TSC_KHZ: the vCPU's virtual TSC rate as KVM records it.</summary>
    public long GetTscKhz()
    {
        int khz = Native.Ioctl(_fd, KvmAbi.GetTscKhz, 0);
        return khz < 0 ? throw new KvmException("KVM_GET_TSC_KHZ", Marshal.GetLastPInvokeError()) : khz;
    }

    /// <summary>
    /// The vCPU's "exits" counter from its binary statistics (KVM_GET_STATS_FD), every VM exit KVM
    /// counted, in the kernel or in userspace; null when the kernel has no binary stats.
    /// </summary>
    public long? ExitsStat() => Stat("exits");

    /// <summary>
    /// A vCPU counter of KVM's binary statistics by name (<c>exits</c>, <c>halt_exits</c>,
    /// <c>io_exits</c>, <c>irq_injections</c>, <c>insn_emulation</c> … as named in 6.x
    /// <c>arch/x86/kvm/x86.c</c> <c>kvm_vcpu_stats_desc</c>); null when the kernel has no binary
    /// stats or no such counter.
    /// </summary>
    public unsafe long? Stat(string name)
    {
        if (_statOffsets is null)
        {
            _statOffsets = new(StringComparer.Ordinal);
            if (_vm.System.CheckExtension(KvmAbi.CapBinaryStatsFd) == 0)
            {
                return null;
            }
            _statsFd = Native.Ioctl(_fd, KvmAbi.GetStatsFd, 0);
            if (_statsFd < 0)
            {
                return null;
            }
            // struct kvm_stats_header { u32 flags, name_size, num_desc, id_offset, desc_offset, data_offset; }
            // struct kvm_stats_desc { u32 flags; s16 exponent; u16 size; u32 offset; u32 bucket_size; char name[name_size]; }
            byte[] header = new byte[24];
            Pread(header, 0);
            uint nameSize = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
            uint count = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8));
            uint descOffset = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(16));
            uint dataOffset = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(20));
            byte[] descs = new byte[count * (16 + nameSize)];
            Pread(descs, descOffset);
            for (int i = 0; i < count; i++)
            {
                var d = descs.AsSpan(i * (int)(16 + nameSize), (int)(16 + nameSize));
                string n = System.Text.Encoding.ASCII.GetString(d.Slice(16, (int)nameSize)).TrimEnd('\0');
                if (BinaryPrimitives.ReadUInt16LittleEndian(d[6..]) == 1) // one u64 (histograms are longer)
                {
                    _statOffsets[n] = dataOffset + BinaryPrimitives.ReadUInt32LittleEndian(d[8..]);
                }
            }
        }
        if (_statsFd < 0 || !_statOffsets.TryGetValue(name, out long offset))
        {
            return null;
        }
        byte[] value = new byte[8];
        Pread(value, offset);
        return (long)BinaryPrimitives.ReadUInt64LittleEndian(value);
    }

    private unsafe void Pread(byte[] buffer, long offset)
    {
        fixed (byte* p = buffer)
        {
            if (Native.Pread(_statsFd, (nint)p, (nuint)buffer.Length, (nint)offset) != buffer.Length)
            {
                throw new KvmException("pread (KVM stats)", Marshal.GetLastPInvokeError());
            }
        }
    }

    /// <summary>
    /// KVM_RUN until HLT, or until <paramref name="onExit"/> returns false. Port I/O exits are
    /// completed (an IN reads 0) and handed to <paramref name="onExit"/> with CLOCK_MONOTONIC_RAW;
    /// an MMIO exit (an access outside guest memory), a shutdown (a guest exception with no
    /// gate for it: triple fault), a failed entry or an internal error throws.
    /// With an in-kernel irqchip a HLT never comes back (KVM blocks the vCPU until an interrupt),
    /// so such runs end at a port write (<paramref name="onExit"/> returns false) or at
    /// <paramref name="timeLimit"/>: a timer thread then sends the vCPU an NMI (KVM_SIGNAL_MSI),
    /// which wakes it even from <c>cli; hlt</c>; with no NMI gate it triple-faults and the run
    /// returns <see cref="KvmStop.TimedOut"/>.
    /// </summary>
    public unsafe KvmStop Run(Func<KvmExit, bool> onExit, int maxExits = 10_000_000, TimeSpan? timeLimit = null)
    {
        int timedOut = 0;
        using var watchdog = timeLimit is TimeSpan limit && _vm.HasIrqchip
            ? new Timer(_ =>
            {
                Volatile.Write(ref timedOut, 1);
                try
                {
                    _vm.SignalNmi(Id);
                }
                catch (KvmException)
                {
                    // The run ended (and the VM may be closing) as the timer fired: nothing to stop.
                }
            }, null, limit, Timeout.InfiniteTimeSpan)
            : null;
        byte* run = (byte*)_run;
        for (int n = 0; n < maxExits; n++)
        {
            if (Native.Ioctl(_fd, KvmAbi.Run, 0) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Native.Eintr)
                {
                    continue;
                }
                throw new KvmException("KVM_RUN", errno);
            }
            long now = Native.MonotonicRawNs();
            uint reason = *(uint*)(run + KvmAbi.RunExitReason);
            switch (reason)
            {
                case KvmAbi.ExitHlt:
                    onExit(new KvmExit(reason, 0, false, 0, now));
                    return KvmStop.Halted;
                case KvmAbi.ExitIo:
                    {
                        bool output = run[KvmAbi.RunIoDirection] == 1;
                        int size = run[KvmAbi.RunIoSize];
                        ushort port = *(ushort*)(run + KvmAbi.RunIoPort);
                        long dataOffset = *(long*)(run + KvmAbi.RunIoDataOffset);
                        byte* data = run + dataOffset;
                        uint value = 0;
                        if (output)
                        {
                            value = size switch { 1 => *data, 2 => *(ushort*)data, _ => *(uint*)data };
                        }
                        else
                        {
                            new Span<byte>(data, size).Clear();
                        }
                        if (!onExit(new KvmExit(reason, port, output, value, now)))
                        {
                            return KvmStop.Stopped;
                        }
                        break;
                    }
                case KvmAbi.ExitIntr:
                    break;
                case KvmAbi.ExitMmio:
                    throw new InvalidOperationException(
                        $"vCPU {Id}: access to guest physical 0x{*(ulong*)(run + KvmAbi.RunMmioPhysAddr):x}, outside guest memory (rip 0x{GetRegister(-1):x})");
                case KvmAbi.ExitShutdown when Volatile.Read(ref timedOut) == 1:
                    return KvmStop.TimedOut;
                case KvmAbi.ExitShutdown:
                    throw new InvalidOperationException($"vCPU {Id}: shutdown (a guest exception with no IDT: triple fault) at rip 0x{GetRegister(-1):x}");
                default:
                    throw new InvalidOperationException(
                        $"vCPU {Id}: unexpected exit reason {reason} (sub-code 0x{*(ulong*)(run + KvmAbi.RunUnionStart):x}) at rip 0x{GetRegister(-1):x}");
            }
        }
        throw new InvalidOperationException($"vCPU {Id}: more than {maxExits} exits");
    }

    private unsafe void Ioctl(uint request, Span<byte> argument, string name)
    {
        if (IoctlRaw(request, argument) != 0)
        {
            throw new KvmException(name, Marshal.GetLastPInvokeError());
        }
    }

    private unsafe int IoctlRaw(uint request, Span<byte> argument)
    {
        fixed (byte* p = argument)
        {
            return Native.Ioctl(_fd, request, (nint)p);
        }
    }

    private unsafe void IoctlBuffer(uint request, byte[] argument, string name)
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
        if (_statsFd >= 0)
        {
            Native.Close(_statsFd);
            _statsFd = -1;
        }
        if (_run != 0 && _run != -1)
        {
            Native.Munmap(_run, (nuint)_runSize);
            _run = 0;
        }
        if (_fd >= 0)
        {
            Native.Close(_fd);
            _fd = -1;
        }
    }
}

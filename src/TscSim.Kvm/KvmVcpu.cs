using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace TscSim.Kvm;

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
    /// completed (an IN reads all ones: an unassigned port, as under QEMU and in the model) and
    /// handed to <paramref name="onExit"/> with CLOCK_MONOTONIC_RAW; an MMIO exit (an access outside guest memory), a shutdown (a guest exception with no
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
                            new Span<byte>(data, size).Fill(0xFF); // an unassigned port, as QEMU and the model answer it
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

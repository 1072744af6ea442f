using TscSim.Core.Abi;
using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;

namespace TscSim.Kvm;

/// <summary>One probe: which vCPU, the source line, the value, and the host's CLOCK_MONOTONIC_RAW (real) or monotonic ns (model) when known.</summary>
public readonly record struct ProbeRecord(int Vcpu, int Line, ulong Value);

/// <summary>
/// A TscSim program loaded into a real KVM VM: the lowered code at
/// <see cref="GuestAddressMap.CodeBase"/>, the data sections at their addresses, one stack per
/// vCPU, each vCPU's kvmclock registered (a host-initiated MSR_KVM_SYSTEM_TIME_NEW write) at
/// <see cref="GuestAddressMap.PvclockBase"/> + 32 × v, the model's fixed layout. vCPUs run one at
/// a time (each until HLT), so a program's vCPUs meet in a fixed order.
/// </summary>
public sealed class KvmGuest : IDisposable
{
    private readonly LoweredProgram _code;
    private long _cursorSeen = KvmVm.ProbeBuffer;

    /// <param name="kvm">/dev/kvm.</param>
    /// <param name="program">The TscSim program.</param>
    /// <param name="irqchip">Create KVM's in-kernel irqchip (always when the program loads an IDT: its interrupts come from the in-kernel local APIC).</param>
    public KvmGuest(KvmSystem kvm, GuestProgram program, bool irqchip = false)
    {
        Program = program;
        irqchip |= Enumerable.Range(0, program.Length).Any(i => program[i].Op == Opcode.Lidt);
        _code = GuestLowering.Lower(program, irqchip);
        Vm = kvm.CreateVm();
        try
        {
            if (irqchip)
            {
                Vm.CreateIrqchip();
            }
            Vm.Write(GuestAddressMap.CodeBase, _code.Code);
            Vm.Write(GuestAddressMap.PrivateBase, program.PrivateData.Span);
            Vm.Write(GuestAddressMap.SharedBase, program.SharedData.Span);
            Vm.WriteU64(KvmVm.ProbeCursor, (ulong)KvmVm.ProbeBuffer);
            if (_code.IdtTable is long table)
            {
                BuildIdt(table);
            }
        }
        catch
        {
            Vm.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The real IDT at <see cref="KvmVm.Idt"/> from the model-format table at <paramref name="table"/>
    /// as loaded (entry v: the qword at table + 8v, a code address): a present 64-bit interrupt
    /// gate (type 0xE, DPL 0, selector 8) to the handler's real address for each code address,
    /// not present otherwise (the model faults on such a vector; the real guest triple-faults).
    /// </summary>
    private void BuildIdt(long table)
    {
        for (int v = 0; v < 256; v++)
        {
            long entry = table + 8L * v;
            ulong? handler = ReadImage(entry) is long value ? _code.RealCodeAddress(value) : null;
            Span<byte> gate = Vm.Memory(KvmVm.Idt + 16L * v, 16);
            gate.Clear();
            if (handler is ulong h)
            {
                BitConverter.TryWriteBytes(gate, unchecked((ushort)h));
                BitConverter.TryWriteBytes(gate[2..], (ushort)8);  // selector: the GDT's code segment
                gate[5] = 0x8E;                                    // present, DPL 0, 64-bit interrupt gate
                BitConverter.TryWriteBytes(gate[6..], unchecked((ushort)(h >> 16)));
                BitConverter.TryWriteBytes(gate[8..], (uint)(h >> 32));
            }
        }
    }

    /// <summary>The qword at <paramref name="address"/> of the program's data image, or null outside it.</summary>
    private long? ReadImage(long address)
    {
        foreach (var (baseAddress, data) in new[] { (GuestAddressMap.PrivateBase, Program.PrivateData), (GuestAddressMap.SharedBase, Program.SharedData) })
        {
            long offset = address - baseAddress;
            if (offset >= 0 && offset + 8 <= data.Length)
            {
                return BitConverter.ToInt64(data.Span[(int)offset..]);
            }
        }
        return null;
    }

    /// <summary>Whether the VM has the in-kernel irqchip (runs end at the halt port or the time limit, not at a HLT exit).</summary>
    public bool Irqchip => Vm.HasIrqchip;

    /// <summary>How each vCPU's last run ended.</summary>
    public Dictionary<int, KvmStop> Stops { get; } = [];

    public GuestProgram Program { get; }

    public KvmVm Vm { get; }

    /// <summary>Probes recorded so far, in order.</summary>
    public List<ProbeRecord> Probes { get; } = [];

    /// <summary>Userspace-visible exits so far, per vCPU, in order.</summary>
    public List<(int Vcpu, KvmExit Exit)> Exits { get; } = [];

    /// <summary>Creates the next vCPU (KVM_CREATE_VCPU), sets its rate if asked (the KVM_SET_TSC_KHZ result is returned), entry, stack and kvmclock.</summary>
    public (KvmVcpu Vcpu, int SetTscKhzResult) AddVcpu(long? tscKhz = null)
    {
        if (Vm.Vcpus.Count >= 1 && _code.UsesPrivateData)
        {
            throw new LoweringException(Program.Name, 1,
                "has a private data section, which real runs cannot give each vCPU its own copy of: use section .shared with one slot per vCPU");
        }
        KvmVcpu v = Vm.CreateVcpu();
        int result = tscKhz is long khz ? v.SetTscKhz(khz) : 0;
        v.SetEntry(_code.Entry, (ulong)(GuestAddressMap.StackTop - v.Id * GuestAddressMap.StackSize), (ulong)v.Id);
        v.SetMsr(KvmAbi.MsrKvmSystemTimeNew, (ulong)(GuestAddressMap.PvclockBase + v.Id * PvclockAbi.Size) | 1);
        return (v, result);
    }

    /// <summary>
    /// Runs vCPU <paramref name="index"/> until HLT (with the irqchip: until a <c>hlt</c> with IF = 0,
    /// i.e. its write to <see cref="GuestLowering.HaltPort"/>, or <paramref name="timeLimit"/>);
    /// <paramref name="onExit"/> sees every other port I/O exit.
    /// </summary>
    public KvmStop Run(int index, Action<KvmExit>? onExit = null, TimeSpan? timeLimit = null)
    {
        KvmVcpu v = Vm.Vcpus[index];
        KvmStop stop = v.Run(e =>
        {
            if (_code.StopOnHalt && e.Reason == KvmAbi.ExitIo && e.Out && e.Port == GuestLowering.HaltPort)
            {
                return false;
            }
            Exits.Add((index, e));
            onExit?.Invoke(e);
            return true;
        }, timeLimit: timeLimit ?? (Irqchip ? TimeSpan.FromSeconds(10) : null));
        Stops[index] = stop == KvmStop.Stopped && _code.StopOnHalt ? KvmStop.Halted : stop;
        long cursor = (long)Vm.ReadU64(KvmVm.ProbeCursor);
        for (long at = _cursorSeen; at < cursor; at += 16)
        {
            Probes.Add(new ProbeRecord(index, (int)Vm.ReadU64(at + 8), Vm.ReadU64(at)));
        }
        _cursorSeen = cursor;
        return Stops[index];
    }

    /// <summary>vCPU <paramref name="v"/>'s pvclock_vcpu_time_info as KVM last wrote it.</summary>
    public PvclockTimeInfo Pvclock(int v)
    {
        long at = GuestAddressMap.PvclockBase + v * PvclockAbi.Size;
        var b = Vm.Memory(at, PvclockAbi.Size);
        return new PvclockTimeInfo(BitConverter.ToUInt32(b), BitConverter.ToUInt64(b[8..]), BitConverter.ToUInt64(b[16..]),
            BitConverter.ToUInt32(b[24..]), unchecked((sbyte)b[28]), b[29]);
    }

    public void Dispose() => Vm.Dispose();
}

/// <summary>
/// The same program in TscSim's model: a host like this machine (its TSC rate, the vendor, TSC
/// scaling as KVM reports it, and the host TSC's age), the <c>kvm-modern</c> policy, one VM, no
/// guest kernel (bare code; kvmclock published at the fixed pvclock area as the model does at a
/// guest's MSR_KVM_SYSTEM_TIME_NEW write).
/// </summary>
public sealed class ModelGuest : IExecutionObserver
{
    public ModelGuest(GuestProgram program, HostFacts host, int vcpus = 1, long? tscKhz = null, string vmId = "vm0")
    {
        Sim = new Simulator(1);
        var config = new HostConfig
        {
            Id = "this-machine",
            Cpu = host.ModelCpu,
            Frequency = Frequency.FromKilohertz(host.TscKhz),
            CoresPerSocket = Math.Max(2, vcpus),
            Uptime = host.TscAge,
        };
        Host = new Host(config, Sim);
        Hypervisor = new Hypervisor(new GuestExecutor(Sim), HypervisorConfig.Find("kvm-modern")! with { Vmm = VmmKind.Direct }); // the raw KVM API: no QEMU rules
        Vm = Hypervisor.CreateVm(new VmConfig { Id = vmId, Vcpus = vcpus, TscKhz = tscKhz }, Host, program, this);
    }

    public Simulator Sim { get; }

    public Host Host { get; }

    public Hypervisor Hypervisor { get; }

    public Vm Vm { get; }

    /// <summary>Probes in the order the model recorded them, with the host's monotonic ns.</summary>
    public List<(ProbeRecord Probe, long HostNs)> Probes { get; } = [];

    public List<GuestFault> Faults { get; } = [];

    /// <summary>Starts the VM and runs the model until <paramref name="until"/>.</summary>
    public ModelGuest Run(Duration until)
    {
        Vm.Start(Sim.Now);
        Sim.Run(SimTime.FromDuration(until));
        if (Faults.Count > 0)
        {
            throw new InvalidOperationException($"the model faulted: {Faults[0]}");
        }
        return this;
    }

    void IExecutionObserver.OnProbe(Vcpu vcpu, SimTime at, int line, long value) =>
        Probes.Add((new ProbeRecord(Vm.Vcpus.IndexOf(vcpu), line, unchecked((ulong)value)), Host.Monotonic.NanosecondsAt(at)));

    void IExecutionObserver.OnFault(Vcpu vcpu, GuestFault fault) => Faults.Add(fault);

    void IExecutionObserver.OnTscRead(Vcpu vcpu, SimTime at, TscValue value, bool exited, long cycles)
    {
    }

    void IExecutionObserver.OnClockRead(Vcpu vcpu, SimTime at, long nanoseconds, long cycles, int exits)
    {
    }
}

/// <summary>What the real host tells about itself, the model's inputs (not compared).</summary>
/// <param name="TscKhz">KVM's tsc_khz for the host (KVM_GET_TSC_KHZ of a new vCPU).</param>
/// <param name="TscScaling">KVM_CAP_TSC_CONTROL: hardware TSC scaling.</param>
/// <param name="TscAge">The host TSC's value as a duration at its rate (KVM_GET_CLOCK host_tsc).</param>
/// <param name="Vendor">/proc/cpuinfo vendor_id.</param>
/// <param name="Kernel">uname -r.</param>
/// <param name="Backend">The KVM backend module loaded: kvm_intel (VMX), kvm_amd (SVM) or kvm_pvm (PVM, a software
/// backend for nested clouds with no hardware TSC offsetting), "unknown" when none is visible.</param>
public sealed record HostFacts(long TscKhz, bool TscScaling, Duration TscAge, string Vendor, string Kernel, string Backend = "unknown")
{
    /// <summary>The TscSim CPU preset closest to this host for the facts compared: vendor and TSC scaling.</summary>
    public CpuModel ModelCpu => (Vendor, TscScaling) switch
    {
        ("AuthenticAMD", true) => CpuPresets.AmdZen2,
        ("AuthenticAMD", false) => CpuPresets.AmdK8,
        (_, true) => CpuPresets.IntelSkylake,
        _ => CpuPresets.IntelNehalem,
    };
}

using TscSim.Core.Abi;
using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>Exits of one vCPU, by kind, and the cycles they cost (the summary's <c>exits</c> object).</summary>
public sealed class ExitStats
{
    public long Rdtsc, Rdtscp, Msr, Mmio, Pio, Cpuid, Hlt;

    /// <summary>
    /// Interrupt-related exits (issue 16): a host interrupt while the guest ran (VMX 1 / SVM 0x60);
    /// an APIC register access KVM emulates (x2APIC WRMSR/RDMSR: VMX 32/31, SVM 0x7C; xAPIC page:
    /// VMX 44, SVM 0x400); the VMX-preemption timer (52).
    /// </summary>
    public long ExternalInterrupt, Apic, PreemptionTimer;

    /// <summary>Cycles spent in exits (round trip + handler), in core cycles.</summary>
    public long Cycles;

    public long Total => Rdtsc + Rdtscp + Msr + Mmio + Pio + Cpuid + Hlt + ExternalInterrupt + Apic + PreemptionTimer;

    /// <summary>Exits by VMX reason or SVM exit code.</summary>
    public SortedDictionary<int, long> ByCode { get; } = [];
}

/// <summary>
/// The hypervisor as one vCPU's guest sees it: decides with the vendor backend whether each time
/// or system instruction runs in guest mode (native, with TSC offset and scaling), exits, or
/// faults; prices exits as the CPU model's round trip plus the handler; emulates what exits.
/// One instance per vCPU, holding its controls, so the hot path needs no lookup.
/// </summary>
public sealed class HypervisorPlatform : IGuestPlatform
{
    private readonly Vm _vm;

    internal HypervisorPlatform(Vm vm, int index)
    {
        _vm = vm;
        Index = index;
    }

    /// <summary>The vCPU's index in its VM.</summary>
    public int Index { get; }

    /// <summary>The vCPU this platform serves.</summary>
    public Vcpu Vcpu { get; internal set; } = null!;

    /// <summary>The VMX/SVM controls of this vCPU.</summary>
    public VcpuControls Controls;

    public ExitStats Exits { get; } = new();

    /// <summary>tsc_catchup set on this vCPU (after a move on an unstable host): clock updates push its TSC forward.</summary>
    public bool CatchUpPending { get; internal set; }

    /// <summary>vcpu_put's last_host_tsc and the guest TSC then (last_guest_tsc), recorded when the vCPU is descheduled.</summary>
    internal (ulong HostTsc, ulong GuestTsc)? PutState { get; private set; }

    /// <summary><c>kvm_arch_vcpu_put</c>: the vCPU leaves its core at <paramref name="at"/> (descheduled).</summary>
    internal void Put(SimTime at) => PutState = (Vcpu.Core.ReadTsc(at).Raw, NativeGuestTsc(at));

    /// <summary>Forgets the put state once the vCPU is loaded again.</summary>
    internal void ClearPut() => PutState = null;

    /// <summary>The guest TSC as guest mode would read it now on this vCPU's core (offset + scaled host TSC).</summary>
    public ulong NativeGuestTsc(SimTime at) => _vm.Backend.GuestTsc(Vcpu.Core.ReadTsc(at).Raw, in Controls);

    /// <summary>Moves the offset so this vCPU's guest TSC reads <paramref name="value"/> at <paramref name="at"/>.</summary>
    internal void ResumeNativeAfter(SimTime at, ulong value) => Controls.TscOffset = OffsetReading(at, value);

    /// <summary>
    /// The TSC offset at which this vCPU's guest TSC reads <paramref name="value"/> at
    /// <paramref name="at"/>, on the scaled TSC (KVM's kvm_compute_l1_tsc_offset); without scaling,
    /// <c>value − host TSC</c>.
    /// </summary>
    internal long OffsetReading(SimTime at, ulong value) =>
        unchecked(Controls.TscOffset + (long)(value - NativeGuestTsc(at)));

    /// <inheritdoc />
    /// <remarks>Execute's path for an RDTSC the backend runs in guest mode (ExecuteNative): the offset and scaled host TSC, nothing else.</remarks>
    public bool TryNativeRdtsc(Vcpu vcpu, SimTime at, out ulong value)
    {
        if (_vm.Backend.Decide(Opcode.Rdtsc, in Controls, 0) != GuestModeOutcome.Native)
        {
            value = 0;
            return false;
        }
        value = NativeGuestTsc(at);
        return true;
    }

    /// <inheritdoc />
    public PlatformResult Execute(Vcpu vcpu, ref CpuState s, in Instruction i, SimTime at, long nativeCycles)
    {
        unchecked
        {
            uint msr = (uint)s.Regs[Registers.Rcx];
            CpuModel hw = vcpu.Core.Model;
            if ((i.Op == Opcode.Rdtscp && !hw.HasRdtscp) || (i.Op == Opcode.Rdpid && !hw.HasRdpid))
            {
                return vcpu.ExplainFault(GuestFaultKind.InvalidOpcode, $"{hw.Name} has no {i.Op.ToString().ToUpperInvariant()} (#UD)");
            }
            if (i.Op is Opcode.Rdmsr or Opcode.Wrmsr && ApicRegisters.IsApicMsr(msr))
            {
                return ApicMsr(vcpu, ref s, in i, at, nativeCycles, msr);
            }
            GuestModeOutcome outcome = _vm.Backend.Decide(i.Op, in Controls, msr);
            if (outcome == GuestModeOutcome.InvalidOpcode)
            {
                return vcpu.ExplainFault(GuestFaultKind.InvalidOpcode,
                    $"{i.Op.ToString().ToUpperInvariant()} with \"enable RDTSCP\" clear raises #UD (VMX)");
            }
            if (outcome == GuestModeOutcome.Native)
            {
                return ExecuteNative(vcpu, ref s, in i, at, nativeCycles, msr);
            }
            return ExecuteExit(vcpu, ref s, in i, at, msr);
        }
    }

    private PlatformResult ExecuteNative(Vcpu vcpu, ref CpuState s, in Instruction i, SimTime at, long nativeCycles, uint msr)
    {
        unchecked
        {
            switch (i.Op)
            {
                case Opcode.Rdtsc:
                    SetEdxEax(ref s, NativeGuestTsc(at));
                    break;
                case Opcode.Rdtscp:
                    SetEdxEax(ref s, NativeGuestTsc(at));
                    s.Regs[Registers.Rcx] = vcpu.TscAux;
                    break;
                case Opcode.Rdpid:
                    s.Regs[i.A] = vcpu.TscAux;
                    break;
                case Opcode.Rdmsr: // IA32_TSC through the MSR bitmap without an exit
                    SetEdxEax(ref s, NativeGuestTsc(at));
                    break;
                case Opcode.Hlt:
                    return new PlatformResult { GuestCycles = nativeCycles, Halt = true };
            }
            return PlatformResult.Native(nativeCycles);
        }
    }

    private PlatformResult ExecuteExit(Vcpu vcpu, ref CpuState s, in Instruction i, SimTime at, uint msr)
    {
        unchecked
        {
            PhysicalCpu core = vcpu.Core;
            CpuModel model = core.Model;
            ExitHandlerCosts costs = _vm.Policy.HandlerCosts;
            // The handler runs after the exit leg, taken as half the round trip (an assumption;
            // the other half is the entry back into the guest).
            SimTime handler = at + core.CoreTime(new Cycles(model.ExitRoundTrip.Count / 2));
            long handlerCycles;
            bool halt = false;
            switch (i.Op)
            {
                case Opcode.Rdtsc:
                case Opcode.Rdtscp:
                    Exits.Rdtsc += i.Op == Opcode.Rdtsc ? 1 : 0;
                    Exits.Rdtscp += i.Op == Opcode.Rdtscp ? 1 : 0;
                    SetEdxEax(ref s, TscForHandler(handler));
                    if (i.Op == Opcode.Rdtscp)
                    {
                        s.Regs[Registers.Rcx] = vcpu.TscAux;
                    }
                    handlerCycles = costs.RdtscEmulation.Count;
                    break;
                case Opcode.Rdmsr:
                case Opcode.Wrmsr:
                    Exits.Msr++;
                    handlerCycles = costs.Msr.Count;
                    if (msr == Msr.TscAdjust && !_vm.Policy.EmulatesTscAdjust)
                    {
                        // "unhandled wrmsr/rdmsr" (2.6.38 kvm_{set,get}_msr_common default: return 1),
                        // #GP with ignore_msrs off (its default).
                        return vcpu.ExplainFault(GuestFaultKind.GeneralProtection,
                            $"{(i.Op == Opcode.Rdmsr ? "RDMSR" : "WRMSR")} of IA32_TSC_ADJUST under 2.6.38-era KVM, which does not know it (\"unhandled {(i.Op == Opcode.Rdmsr ? "rdmsr" : "wrmsr")}: 0x3b\", #GP injected)");
                    }
                    if (i.Op == Opcode.Rdmsr)
                    {
                        switch (msr)
                        {
                            case Msr.Tsc: SetEdxEax(ref s, TscForHandler(handler)); break;
                            case Msr.TscAux: SetEdxEax(ref s, vcpu.TscAux); break;
                            case Msr.TscAdjust: SetEdxEax(ref s, (ulong)TscAdjust); break;
                            default:
                                return vcpu.ExplainFault(GuestFaultKind.GeneralProtection, $"RDMSR of unmodelled MSR 0x{msr:x} (#GP injected)");
                        }
                    }
                    else
                    {
                        ulong value = ((ulong)(uint)s.Regs[Registers.Rdx] << 32) | (uint)s.Regs[Registers.Rax];
                        switch (msr)
                        {
                            case Msr.Tsc:
                                // KVM: a guest TSC write also moves IA32_TSC_ADJUST by the same amount
                                // (kvm_set_msr_common, MSR_IA32_TSC: adjust_tsc_offset_guest; SDM vol. 3B §18.17.3).
                                TscAdjust += (long)(value - TscForHandlerPeek(handler));
                                _vm.GuestWroteTsc(Index, handler, value);
                                break;
                            case Msr.TscAux: vcpu.TscAux = (uint)value; break;
                            case Msr.TscAdjust:
                                // The TSC moves by (new − old) and KVM requests a clock update.
                                _vm.GuestWroteTsc(Index, handler, TscForHandlerPeek(handler) + (value - (ulong)TscAdjust));
                                TscAdjust = (long)value;
                                _vm.Kvmclock.RequestUpdate(Index, handler);
                                break;
                            default:
                                return vcpu.ExplainFault(GuestFaultKind.GeneralProtection, $"WRMSR of unmodelled MSR 0x{msr:x} (#GP injected)");
                        }
                    }
                    break;
                case Opcode.Cpuid:
                    Exits.Cpuid++;
                    NativePlatform.Cpuid(model, ref s);
                    handlerCycles = costs.Cpuid.Count;
                    break;
                case Opcode.Hlt:
                    Exits.Hlt++;
                    handlerCycles = costs.Hlt.Count;
                    halt = true;
                    break;
                default: // port I/O: the PIT in the kernel, the rest by the userspace device model
                    {
                        Exits.Pio++;
                        bool input = i.Op is Opcode.InD or Opcode.InI;
                        ushort port = i.Op is Opcode.InI or Opcode.OutI ? (ushort)i.Imm : (ushort)s.Regs[Registers.Rdx];
                        if (VirtualPit.Claims(port))
                        {
                            handlerCycles = costs.KernelIo.Count;
                            VirtualPit pit = _vm.Pit;
                            long ns = _vm.DeviceClockNs(handler);
                            if (input)
                            {
                                s.Regs[Registers.Rax] = pit.In(port, ns);
                            }
                            else
                            {
                                pit.Out(port, (byte)s.Regs[Registers.Rax], ns);
                                if (port is 0x40 or 0x43 or 0x21 or 0x20)
                                {
                                    _vm.Timers.PitWritten(handler);
                                }
                            }
                        }
                        else
                        {
                            handlerCycles = costs.UserspaceIo.Count;
                            if (input)
                            {
                                s.Regs[Registers.Rax] = port == GuestAddresses.PmTimerPort ? PmTimer(handler) : 0xFFFF_FFFFL;
                            }
                        }
                        break;
                    }
            }
            int code = _vm.Backend.ExitCode(i.Op);
            long total = model.ExitRoundTrip.Count + handlerCycles;
            if (i.Op is Opcode.Rdtsc or Opcode.Rdtscp && _vm.Policy.EmulatedRdtscNativeMultiple is int multiple)
            {
                // Xen's published cost of an emulated TSC read: 15-20x the native instruction.
                total = multiple * model.Cost(i.Op == Opcode.Rdtsc ? CostClass.Rdtsc : CostClass.Rdtscp).Count;
            }
            RequestCatchUpUpdate(at, core, total);
            return Account(code, total, halt);
        }
    }

    // ---- interrupts and the local APIC (issue 16)

    /// <summary>The vCPU's local APIC timer, emulated by KVM on the host's clock (created on first use).</summary>
    public LocalApicTimer Lapic => Vcpu.Lapic ??= _vm.InScope(() => new LocalApicTimer(Vcpu, new KvmApicTimerClock(_vm, this),
        Vcpu.Core.Host.Simulator, $"{Vcpu.Name}.lapic-timer", EventBand.Hypervisor, OnLapicExpiry));

    /// <summary>
    /// x2APIC MSR access. With APIC virtualization (APICv/AVIC) EOI writes and register reads
    /// complete in hardware; everything else exits (WRMSR VMX 32 / RDMSR 31 / SVM 0x7C) and
    /// KVM's in-kernel APIC handles it at the handler's instant.
    /// </summary>
    private PlatformResult ApicMsr(Vcpu vcpu, ref CpuState s, in Instruction i, SimTime at, long nativeCycles, uint msr)
    {
        unchecked
        {
            CpuModel model = vcpu.Core.Model;
            bool write = i.Op == Opcode.Wrmsr;
            if (model.ApicVirtualization && (!write || msr == ApicRegisters.MsrEoi))
            {
                DoApicMsr(ref s, write, msr, at);
                return PlatformResult.Native(nativeCycles);
            }
            SimTime handler = at + vcpu.Core.CoreTime(new Cycles(model.ExitRoundTrip.Count / 2));
            DoApicMsr(ref s, write, msr, handler);
            Exits.Apic++;
            long total = model.ExitRoundTrip.Count + _vm.Policy.HandlerCosts.Apic.Count;
            RequestCatchUpUpdate(at, vcpu.Core, total);
            return Account(_vm.Backend.ExitCode(i.Op), total, false);
        }
    }

    private void DoApicMsr(ref CpuState s, bool write, uint msr, SimTime at)
    {
        if (write)
        {
            Lapic.Write(msr, unchecked(((ulong)(uint)s.Regs[Registers.Rdx] << 32) | (uint)s.Regs[Registers.Rax]), at); // EDX:EAX
        }
        else
        {
            SetEdxEax(ref s, Lapic.Read(msr, at));
        }
    }

    /// <summary>
    /// The timer fired on the host. If the vCPU was in guest mode the host interrupt forced an
    /// exit (external interrupt, VMX 1 / SVM 0x60), or with KVM's hv timer (modern KVM on VMX
    /// with a usable preemption timer, TSC-deadline mode) a preemption-timer exit (52); a vCPU
    /// halted in <c>hlt</c> is already out of guest mode (its HLT exit was counted), so nothing.
    /// </summary>
    internal void OnTimerInterrupt(SimTime at, bool preemptionTimer)
    {
        if (!Vcpu.InGuestMode)
        {
            return;
        }
        CpuModel model = Vcpu.Core.Model;
        long total = model.ExitRoundTrip.Count + _vm.Policy.HandlerCosts.ExternalInterrupt.Count;
        int code;
        if (preemptionTimer)
        {
            Exits.PreemptionTimer++;
            code = InstructionTable.PreemptionTimerExit.VmxReason;
        }
        else
        {
            Exits.ExternalInterrupt++;
            code = _vm.Backend.Vendor == Vendor.Vmx ? InstructionTable.ExternalInterruptExit.VmxReason : InstructionTable.ExternalInterruptExit.SvmExitCode;
        }
        RequestCatchUpUpdate(at, Vcpu.Core, total);
        Account(code, total, false);
        Vcpu.ChargeExit(total);
    }

    private void OnLapicExpiry(SimTime at) =>
        OnTimerInterrupt(at, Lapic.Mode == ApicTimerMode.TscDeadline && UsesHvTimer);

    /// <summary>KVM's hv timer: modern KVM on VMX with a usable VMX-preemption timer (not the 2011 code, which predates it).</summary>
    private bool UsesHvTimer =>
        _vm.Backend.Vendor == Vendor.Vmx && Vcpu.Core.Model.VmxPreemptionTimer && _vm.Policy.Kind == PolicyKind.KvmModern;

    private PlatformResult Account(int code, long cycles, bool halt)
    {
        var sim = Vcpu.Core.Host.Simulator;
        sim.FoldResult(ResultWord.Tag(ResultWord.Exit, Vcpu.Id, code));
        sim.FoldResult(unchecked((ulong)cycles));
        Exits.Cycles += cycles;
        Exits.ByCode[code] = Exits.ByCode.GetValueOrDefault(code) + 1;
        return new PlatformResult { ExitCycles = cycles, Exited = true, Halt = halt };
    }

    /// <summary>What an RDTSC on this vCPU would return at <paramref name="at"/>, without side effects (the emulated TSC's guard is not advanced).</summary>
    public ulong PeekTsc(SimTime at) => TscForHandlerPeek(at);

    /// <summary>QEMU's HPET main counter at <paramref name="at"/> (100 MHz from the device clock).</summary>
    public ulong PeekHpetCounter(SimTime at) => HpetCounter(at);

    /// <summary>The ACPI PM timer at <paramref name="at"/> (24 bits).</summary>
    public long PeekPmTimer(SimTime at) => PmTimer(at);

    /// <summary>The guest's IA32_TSC_ADJUST (virtual <see cref="Msr.TscAdjust"/>).</summary>
    public long TscAdjust { get; private set; }

    /// <summary>The guest TSC at <paramref name="at"/> without handing out an emulated value.</summary>
    private ulong TscForHandlerPeek(SimTime at) => _vm.Trapping ? _vm.GuestVisibleTsc(at).Raw : NativeGuestTsc(at);

    /// <summary>The TSC an exiting time read returns: emulated while trapping, else the guest-mode view at the handler's instant.</summary>
    private ulong TscForHandler(SimTime handler) => _vm.Trapping ? _vm.Emulated.Read(handler).Raw : NativeGuestTsc(handler);

    /// <summary>QEMU's ACPI PM timer: device-clock ns × 3.579545 MHz, 24 bits (hw/acpi/core.c acpi_pm_tmr_get).</summary>
    private long PmTimer(SimTime at) =>
        (long)(ExactMath.FloorDiv((Int128)_vm.DeviceClockNs(at) * PlatformTimerRates.AcpiPmHz, 1_000_000_000) & PlatformTimerRates.AcpiPmMask);

    /// <summary>QEMU's HPET main counter: device-clock ns / 10 (100 MHz).</summary>
    private ulong HpetCounter(SimTime at) => _vm.HpetCounter(at);

    private static void SetEdxEax(ref CpuState s, ulong value)
    {
        unchecked
        {
            s.Regs[Registers.Rax] = (long)(uint)value;
            s.Regs[Registers.Rdx] = (long)(value >> 32);
        }
    }

    /// <inheritdoc />
    public bool IsMmio(long address) => unchecked((ulong)(address - GuestAddresses.HpetBase)) < GuestAddresses.HpetSize || ApicRegisters.IsXapic(address);

    /// <inheritdoc />
    public PlatformResult MmioRead(Vcpu vcpu, long address, int size, SimTime at, out long value)
    {
        unchecked
        {
            if (ApicRegisters.IsXapic(address))
            {
                return XapicAccess(vcpu, address, size, 0, at, write: false, out value);
            }
            CpuModel model = vcpu.Core.Model;
            SimTime handler = at + vcpu.Core.CoreTime(new Cycles(model.ExitRoundTrip.Count / 2));
            long offset = address - GuestAddresses.HpetBase;
            VirtualHpet hpet = _vm.Hpet;
            ulong register = (offset & 7) == 0 && size == 8
                ? hpet.ReadLong(offset, handler) | ((ulong)hpet.ReadLong(offset + 4, handler) << 32)
                : hpet.ReadLong(offset & ~3L, handler) >> (int)(8 * (offset & 3));
            value = size switch { 8 => (long)register, 4 => (uint)register, _ => (byte)register };
            Exits.Mmio++;
            long total = model.ExitRoundTrip.Count + _vm.Policy.HandlerCosts.UserspaceIo.Count;
            RequestCatchUpUpdate(at, vcpu.Core, total);
            return Account(_vm.Backend.MmioExitCode, total, false);
        }
    }

    /// <inheritdoc />
    public PlatformResult MmioWrite(Vcpu vcpu, long address, int size, long value, SimTime at)
    {
        if (ApicRegisters.IsXapic(address))
        {
            return XapicAccess(vcpu, address, size, value, at, write: true, out _);
        }
        Exits.Mmio++;
        long total = vcpu.Core.Model.ExitRoundTrip.Count + _vm.Policy.HandlerCosts.UserspaceIo.Count;
        SimTime handler = at + vcpu.Core.CoreTime(new Cycles(vcpu.Core.Model.ExitRoundTrip.Count / 2));
        long offset = address - GuestAddresses.HpetBase;
        if (size >= 4 && (offset & 3) == 0)
        {
            // QEMU 0.14 registers only 32-bit accessors (hpet_ram_writel); a 64-bit store arrives as two.
            _vm.Hpet.WriteLong(offset, unchecked((uint)value), handler);
            if (size == 8)
            {
                _vm.Hpet.WriteLong(offset + 4, unchecked((uint)((ulong)value >> 32)), handler);
            }
        }
        RequestCatchUpUpdate(at, vcpu.Core, total);
        return Account(_vm.Backend.MmioExitCode, total, false);
    }

    /// <summary>
    /// An access to the xAPIC page: without APIC virtualization it exits (VMX 44 APIC_ACCESS; SVM:
    /// the page is not mapped, NPF 0x400) and KVM's in-kernel APIC completes it; with APICv/AVIC
    /// reads and EOI writes complete in hardware, other writes exit (counted the same way).
    /// </summary>
    private PlatformResult XapicAccess(Vcpu vcpu, long address, int size, long value, SimTime at, bool write, out long result)
    {
        unchecked
        {
            CpuModel model = vcpu.Core.Model;
            long offset = address - ApicRegisters.XapicBase;
            uint msr = ApicRegisters.MsrOfXapicOffset(offset);
            bool modelled = (offset & 0xF) == 0 && ApicRegisters.IsApicMsr(msr) && msr != ApicRegisters.MsrTscDeadline;
            result = 0;
            if (model.ApicVirtualization && (!write || msr == ApicRegisters.MsrEoi))
            {
                if (modelled)
                {
                    if (write) { Lapic.Write(msr, (uint)value, at); } else { result = (long)(uint)Lapic.Read(msr, at); }
                }
                return PlatformResult.Native(model.CostCycles[(int)(write ? CostClass.Store : CostClass.Load)]);
            }
            SimTime handler = at + vcpu.Core.CoreTime(new Cycles(model.ExitRoundTrip.Count / 2));
            if (modelled)
            {
                if (write) { Lapic.Write(msr, (uint)value, handler); } else { result = (long)(uint)Lapic.Read(msr, handler); }
            }
            result = size switch { 8 => result, 4 => (uint)result, _ => (byte)result };
            Exits.Apic++;
            long total = model.ExitRoundTrip.Count + _vm.Policy.HandlerCosts.Apic.Count;
            RequestCatchUpUpdate(at, vcpu.Core, total);
            int code = _vm.Backend.Vendor == Vendor.Vmx ? InstructionTable.ApicAccessExit.VmxReason : InstructionTable.ApicAccessExit.SvmExitCode;
            return Account(code, total, false);
        }
    }

    /// <summary>
    /// tsc_always_catchup: every exit requests a clock update before re-entry
    /// (arch/x86/kvm/x86.c: kvm_set_tsc_khz sets it when the guest rate is above the host's
    /// without scaling; vcpu_enter_guest then raises KVM_REQ_CLOCK_UPDATE).
    /// </summary>
    private void RequestCatchUpUpdate(SimTime at, PhysicalCpu core, long exitCycles)
    {
        if (_vm.CatchUpActive)
        {
            _vm.Kvmclock.RequestUpdate(Index, at + core.CoreTime(new Cycles(exitCycles)));
        }
    }
}

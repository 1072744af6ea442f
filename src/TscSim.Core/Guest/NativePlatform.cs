using System.Runtime.CompilerServices;
using TscSim.Core.Abi;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// Bare metal: the program runs directly on its <see cref="PhysicalCpu"/>, no hypervisor, no
/// exits. RDTSC returns the core's TSC; the MSRs, CPUID leaves, the ACPI PM timer port and the
/// HPET's MMIO block behave as on the host. The baseline every virtualized platform is compared
/// with, and the platform of the interpreter's own tests and benchmarks.
/// </summary>
public sealed class NativePlatform : IGuestPlatform
{
    /// <inheritdoc />
    public PlatformResult Execute(Vcpu vcpu, ref CpuState s, in Instruction i, SimTime at, long nativeCycles)
    {
        unchecked
        {
            PhysicalCpu core = vcpu.Core;
            CpuModel model = core.Model;
            long cost = nativeCycles;
            ref long rax = ref s.Regs[Registers.Rax];
            ref long rcx = ref s.Regs[Registers.Rcx];
            ref long rdx = ref s.Regs[Registers.Rdx];
            switch (i.Op)
            {
                case Opcode.Rdtsc:
                    SetEdxEax(ref rax, ref rdx, core.ReadTsc(at).Raw);
                    return PlatformResult.Native(cost);
                case Opcode.Rdtscp:
                    if (!model.HasRdtscp)
                    {
                        return vcpu.ExplainFault(GuestFaultKind.InvalidOpcode, $"{model.Name} has no RDTSCP (#UD)");
                    }
                    SetEdxEax(ref rax, ref rdx, core.ReadTsc(at).Raw);
                    rcx = vcpu.TscAux;
                    return PlatformResult.Native(cost);
                case Opcode.Rdpid:
                    if (!model.HasRdpid)
                    {
                        return vcpu.ExplainFault(GuestFaultKind.InvalidOpcode, $"{model.Name} has no RDPID (#UD)");
                    }
                    s.Regs[i.A] = vcpu.TscAux;
                    return PlatformResult.Native(cost);
                case Opcode.Rdmsr:
                    {
                        uint msr = (uint)rcx;
                        ulong value;
                        switch (msr)
                        {
                            case Msr.Tsc: value = core.ReadTsc(at).Raw; break;
                            case Msr.TscAdjust when model.HasTscAdjust: value = (ulong)core.TscAdjust; break;
                            case Msr.TscAux when model.HasRdtscp: value = vcpu.TscAux; break;
                            case var m when ApicRegisters.IsApicMsr(m) && m != ApicRegisters.MsrEoi: value = Lapic(vcpu).Read(m, at); break;
                            default: return vcpu.ExplainFault(GuestFaultKind.GeneralProtection, $"RDMSR of unmodelled MSR 0x{msr:x} (#GP)");
                        }
                        SetEdxEax(ref rax, ref rdx, value);
                        return PlatformResult.Native(cost);
                    }
                case Opcode.Wrmsr:
                    {
                        uint msr = (uint)rcx;
                        ulong value = ((ulong)(uint)rdx << 32) | (uint)rax;
                        switch (msr)
                        {
                            case Msr.Tsc: core.WriteTsc(at, value); break;
                            case Msr.TscAdjust when model.HasTscAdjust: core.WriteTscAdjust(at, (long)value); break;
                            case Msr.TscAux when model.HasRdtscp: vcpu.TscAux = (uint)value; break;
                            case var m when ApicRegisters.IsApicMsr(m) && m != ApicRegisters.MsrCurrentCount: Lapic(vcpu).Write(m, value, at); break;
                            default: return vcpu.ExplainFault(GuestFaultKind.GeneralProtection, $"WRMSR of unmodelled MSR 0x{msr:x} (#GP)");
                        }
                        return PlatformResult.Native(cost);
                    }
                case Opcode.Cpuid:
                    Cpuid(model, ref s);
                    return PlatformResult.Native(cost);
                case Opcode.InD:
                case Opcode.InI:
                    {
                        ushort port = i.Op == Opcode.InI ? (ushort)i.Imm : (ushort)rdx;
                        rax = port == GuestAddresses.PmTimerPort ? core.Host.PmTimer.Read(at) : 0xFFFF_FFFFL; // unclaimed ports float high
                        return PlatformResult.Native(cost);
                    }
                case Opcode.OutD:
                case Opcode.OutI:
                    return PlatformResult.Native(cost);
                case Opcode.Hlt:
                    return new PlatformResult { GuestCycles = cost, Halt = true };
                default:
                    return vcpu.ExplainFault(GuestFaultKind.InvalidOpcode, $"{i.Op} is not a platform instruction");
            }
        }
    }

    /// <summary>The vCPU's local APIC timer on bare metal: the bus clock and the core's TSC (created on first use).</summary>
    public static LocalApicTimer Lapic(Vcpu vcpu) =>
        vcpu.Lapic ??= new LocalApicTimer(vcpu, new NativeApicTimerClock(vcpu.Core.Host, () => vcpu.Core), vcpu.Core.Host.Simulator,
            $"{vcpu.Name}.lapic-timer", Engine.EventBand.Hardware);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void SetEdxEax(ref long rax, ref long rdx, ulong value)
    {
        unchecked
        {
            rax = (long)(uint)value;
            rdx = (long)(value >> 32);
        }
    }

    /// <summary>
    /// The CPUID leaves a timekeeping guest looks at (Linux <c>arch/x86/include/asm/cpufeatures.h</c>:
    /// X86_FEATURE_TSC 1:EDX[4], TSC_ADJUST 7:EBX[1], RDPID 7:ECX[22], RDTSCP 0x80000001:EDX[27],
    /// invariant TSC 0x80000007:EDX[8]; SDM vol. 2A "CPUID").
    /// </summary>
    public static void Cpuid(CpuModel model, ref CpuState s)
    {
        unchecked
        {
            uint leaf = (uint)s.Regs[Registers.Rax];
            uint eax = 0, ebx = 0, ecx = 0, edx = 0;
            switch (leaf)
            {
                case 0:
                    eax = 0xD;
                    (ebx, edx, ecx) = model.Vendor == Vendor.Vmx ? (0x756E6547u, 0x49656E69u, 0x6C65746Eu) : (0x68747541u, 0x69746E65u, 0x444D4163u);
                    break;
                case 1:
                    edx = 1u << 4;                                   // TSC
                    ecx = model.Vendor == Vendor.Vmx ? 1u << 5 : 0;  // VMX
                    break;
                case 7:
                    ebx = model.HasTscAdjust ? 1u << 1 : 0;           // IA32_TSC_ADJUST
                    ecx = model.HasRdpid ? 1u << 22 : 0;             // RDPID
                    break;
                case 0x8000_0000:
                    eax = 0x8000_0008;
                    break;
                case 0x8000_0001:
                    edx = model.HasRdtscp ? 1u << 27 : 0;            // RDTSCP
                    ecx = model.Vendor == Vendor.Svm ? 1u << 2 : 0;  // SVM
                    break;
                case 0x8000_0007:
                    edx = model.InvariantTsc ? 1u << 8 : 0;          // invariant TSC
                    break;
            }
            s.Regs[Registers.Rax] = eax;
            s.Regs[Registers.Rbx] = ebx;
            s.Regs[Registers.Rcx] = ecx;
            s.Regs[Registers.Rdx] = edx;
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
                uint reg = ApicRegisters.MsrOfXapicOffset(address - ApicRegisters.XapicBase);
                value = ApicRegisters.IsApicMsr(reg) ? (long)(uint)Lapic(vcpu).Read(reg, at) : 0;
                return PlatformResult.Native(vcpu.Core.Model.CostCycles[(int)CostClass.Load]);
            }
            Hpet hpet = vcpu.Core.Host.Hpet;
            long offset = address - GuestAddresses.HpetBase;
            ulong register = offset switch
            {
                GuestAddresses.HpetCapabilities => ((ulong)hpet.PeriodFemtoseconds << 32) | GuestAddresses.HpetCapabilitiesLow,
                GuestAddresses.HpetPeriod => hpet.PeriodFemtoseconds,
                GuestAddresses.HpetMainCounter => hpet.ReadMainCounter(at),
                GuestAddresses.HpetMainCounter + 4 => hpet.ReadMainCounter(at) >> 32,
                _ => 0,
            };
            value = size switch { 8 => (long)register, 4 => (uint)register, _ => (byte)register };
            return PlatformResult.Native(vcpu.Core.Model.CostCycles[(int)CostClass.Load]);
        }
    }

    /// <inheritdoc />
    public PlatformResult MmioWrite(Vcpu vcpu, long address, int size, long value, SimTime at)
    {
        if (ApicRegisters.IsXapic(address))
        {
            uint reg = ApicRegisters.MsrOfXapicOffset(address - ApicRegisters.XapicBase);
            if (ApicRegisters.IsApicMsr(reg) && reg != ApicRegisters.MsrTscDeadline)
            {
                Lapic(vcpu).Write(reg, unchecked((uint)value), at);
            }
        }
        return PlatformResult.Native(vcpu.Core.Model.CostCycles[(int)CostClass.Store]);
    }
}

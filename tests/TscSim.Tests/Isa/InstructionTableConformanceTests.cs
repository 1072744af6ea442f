using TscSim.Core.Abi;
using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;

namespace TscSim.Tests.Isa;

/// <summary>
/// The instruction table drives the interpreter (as Iced's tables drive its decoder): every
/// opcode of every row is executed, and what the interpreter does is checked against the row:
/// its sequencing (<see cref="SyncKind"/>) on bare metal, its exit facts (<see cref="ExitInfo"/>,
/// VMX reason and SVM exit code) under KVM.
/// </summary>
public class InstructionTableConformanceTests
{
    /// <summary>Every (row, form): the first row that defines an opcode (aliases such as jz share je's).</summary>
    public static TheoryData<Opcode> Opcodes()
    {
        var data = new TheoryData<Opcode>();
        foreach (Opcode op in InstructionTable.All.SelectMany(r => r.Forms).Select(f => f.Opcode).Distinct())
        {
            data.Add(op);
        }
        return data;
    }

    [Fact]
    public void Every_opcode_but_invalid_has_a_row()
    {
        var covered = InstructionTable.All.SelectMany(r => r.Forms).Select(f => f.Opcode).ToHashSet();
        Assert.Equal(Enum.GetValues<Opcode>().Where(o => o != Opcode.Invalid).Order(), covered.Order());
    }

    private enum Memory { Private, Shared, Mmio }

    /// <summary>
    /// A program that runs setup code, 2,000 cycles of <c>work</c> (1 µs at 2 GHz) and then the
    /// form under test once, followed by a long <c>work</c>. Operands are chosen so it executes
    /// without a fault; memory operands point at <paramref name="memory"/>.
    /// </summary>
    private static (string Source, InstructionForm Form, InstructionDef Row) Program(Opcode op, Memory memory)
    {
        InstructionDef row = InstructionTable.Of(op);
        InstructionForm form = row.Forms.First(f => f.Opcode == op);
        string mem = memory switch
        {
            Memory.Private => "x",
            Memory.Shared => "s",
            _ => $"0x{GuestAddresses.HpetBase + GuestAddresses.HpetMainCounter:X}",
        };
        int reg = 0;
        string Operand(OperandKind k) => k switch
        {
            OperandKind.Reg64 => reg++ == 0 ? "rbx" : "rcx",
            OperandKind.Reg32 => reg++ == 0 ? "ebx" : "ecx",
            OperandKind.Cl => "cl",
            OperandKind.Dx => "dx",
            OperandKind.Eax => "eax",
            OperandKind.Imm => op switch
            {
                Opcode.InI => $"{GuestAddresses.PortB}",
                Opcode.OutI => "0x80",
                Opcode.Work => "10cycles",
                _ => "1",
            },
            OperandKind.Mem64 => op == Opcode.MovMI ? $"qword [{mem}]" : $"[{mem}]",
            OperandKind.Mem32 => $"dword [{mem}]",
            OperandKind.Mem8 => $"byte [{mem}]",
            OperandKind.Label => "next",
            _ => throw new ArgumentOutOfRangeException(nameof(op), k, null),
        };
        string operands = string.Join(", ", form.Operands.Select(Operand));
        string setup = op switch
        {
            Opcode.Div => "mov rbx, 3\nmov rdx, 0",
            Opcode.Ret => "push next",
            Opcode.PopR => "push 7",
            // iretq's frame, lowest address first: RIP, the work slot, RFLAGS (IF = 0), RSP, SS.
            Opcode.Iretq => "mov rbx, rsp\npush 0\npush rbx\npush 2\npush 0\npush next",
            Opcode.Rdmsr or Opcode.Wrmsr => $"mov rcx, {Msr.TscAux}",
            Opcode.InD => $"mov rdx, {GuestAddresses.PmTimerPort}",
            Opcode.OutD => "mov rdx, 0x80",
            _ => "nop",
        };
        string source = $"""
            {setup}
            work 2000cycles
            {row.Mnemonic} {operands}
            next: work 100000000cycles
            jmp next
            section .data
            x: dq 0, 0
            section .shared
            s: dq 0, 0
            """;
        return (source, form, row);
    }

    private static bool HasMemoryOperand(InstructionForm form) =>
        form.Operands.Any(k => k is OperandKind.Mem64 or OperandKind.Mem32 or OperandKind.Mem8) && form.Opcode != Opcode.Lea && form.Opcode != Opcode.Lidt;

    /// <summary>A kernel whose services do nothing; records the instants it was entered.</summary>
    private sealed class NullKernel : IGuestKernel
    {
        public List<long> Calls { get; } = [];

        public KernelCallResult Call(Vcpu vcpu, int service, SimTime at, long cycles, long exits)
        {
            Calls.Add(at.Picoseconds);
            return KernelCallResult.Continue;
        }
    }

    /// <summary>Bare metal, recording the instant of every platform call.</summary>
    private sealed class RecordingPlatform : IGuestPlatform
    {
        private readonly NativePlatform _native = new();

        public List<long> Calls { get; } = [];

        public PlatformResult Execute(Vcpu vcpu, ref CpuState state, in Instruction instruction, SimTime at, long nativeCycles)
        {
            Calls.Add(at.Picoseconds);
            return _native.Execute(vcpu, ref state, in instruction, at, nativeCycles);
        }

        public bool IsMmio(long address) => _native.IsMmio(address);

        public PlatformResult MmioRead(Vcpu vcpu, long address, int size, SimTime at, out long value)
        {
            Calls.Add(at.Picoseconds);
            return _native.MmioRead(vcpu, address, size, at, out value);
        }

        public PlatformResult MmioWrite(Vcpu vcpu, long address, int size, long value, SimTime at)
        {
            Calls.Add(at.Picoseconds);
            return _native.MmioWrite(vcpu, address, size, value, at);
        }
    }

    /// <summary>
    /// Runs the form under test on bare metal (AMD Zen 2 at 2 GHz, which has every instruction)
    /// while a second vCPU has a resume pending at 100 ns: an instruction issued at 1 µs that is
    /// sequenced must yield to that resume first (a second slice); one that runs eagerly does not.
    /// Returns the slices of the vCPU under test, and in <paramref name="instants"/> the instants
    /// (ps) at which it entered the platform, the kernel or the observer.
    /// </summary>
    private static long SlicesRunning(Opcode op, Memory memory, out GuestProgram program, out Vcpu vcpu, out List<long> instants)
    {
        var sim = new Simulator(1);
        var host = new Host(new HostConfig { Id = "h", Cpu = CpuPresets.AmdZen2, Frequency = Frequency.FromMegahertz(2_000), CoresPerSocket = 2 }, sim);
        var executor = new GuestExecutor(sim);
        program = Assembler.Assemble(Program(op, memory).Source, "conformance");
        var platform = new RecordingPlatform();
        var kernel = new NullKernel();
        var log = new ObservationLog();
        vcpu = new Vcpu(executor, "vcpu0", program, host.Cores[0], platform, observer: log) { Kernel = kernel };
        var other = new Vcpu(executor, "vcpu1", Assembler.Assemble("hlt"), host.Cores[1], new NativePlatform());
        vcpu.Start(SimTime.Zero);
        other.Start(SimTime.FromPicoseconds(100_000));
        sim.Run(SimTime.FromDuration(Duration.FromMicroseconds(20)));
        instants = [.. platform.Calls, .. kernel.Calls, .. log.Probes.Select(p => p.TimePs)];
        return vcpu.Slices;
    }

    [Theory]
    [MemberData(nameof(Opcodes))]
    public void Each_opcode_is_sequenced_as_its_row_says(Opcode op)
    {
        var (_, form, row) = Program(op, Memory.Private);
        bool memoryForm = HasMemoryOperand(form);

        long slices = SlicesRunning(op, Memory.Private, out GuestProgram program, out Vcpu vcpu, out List<long> instants);
        // The assembler copied the row's sequencing into the instruction under test.
        Instruction under = program.Code[(int)program.Labels["next"].Value - 1];
        Assert.Equal(op, under.Op);
        Assert.Equal(row.Sync, under.Sync);
        if (op != Opcode.Kend)
        {
            Assert.Null(vcpu.Fault);
        }
        // Always: yields to the other vCPU even with private operands; None and IfSharedMemory
        // with private (or no) memory: run eagerly.
        Assert.Equal(row.Sync == SyncKind.Always ? 2 : 1, slices);
        // An instruction that reaches the platform, the kernel or a probe does so at its issue
        // instant: after the setup (under 0.5 µs) and the 1 µs of work, never at a stale instant.
        Assert.All(instants, at => Assert.InRange(at, 1_000_000, 1_500_000));
        Assert.Equal(row.Sync == SyncKind.Always && op is not Opcode.Kend ? 1 : 0, instants.Count(at => at >= 1_000_000));

        if (memoryForm)
        {
            long sharedSlices = SlicesRunning(op, Memory.Shared, out _, out Vcpu sharedVcpu, out _);
            Assert.Null(sharedVcpu.Fault);
            Assert.Equal(row.Sync == SyncKind.None ? 1 : 2, sharedSlices);
        }
    }

    /// <summary>The preset "kvm-2011" with trapping forced on: RDTSC, RDTSCP and RDMSR IA32_TSC exit; HLT exits.</summary>
    private static (HypervisorPlatform Platform, Vcpu Vcpu) RunUnderKvm(Opcode op, Memory memory, CpuModel cpu)
    {
        var sim = new Simulator(1);
        var host = new Host(new HostConfig { Id = "h", Cpu = cpu, Frequency = Frequency.FromMegahertz(2_000), CoresPerSocket = 2 }, sim);
        var hypervisor = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find("kvm-2011")! with { Trapping = TrappingOverride.On });
        Vm vm = hypervisor.CreateVm(new VmConfig { Id = "vm0", Vcpus = 1 }, host, Assembler.Assemble(Program(op, memory).Source, "conformance"));
        vm.Vcpus[0].Kernel = new NullKernel();
        vm.Start(sim.Now);
        sim.Run(SimTime.FromDuration(Duration.FromMicroseconds(20)));
        return (vm.Platforms[0], vm.Vcpus[0]);
    }

    [Theory]
    [MemberData(nameof(Opcodes))]
    public void Each_opcode_exits_with_its_rows_vmx_reason_and_svm_code(Opcode op)
    {
        var (_, form, row) = Program(op, Memory.Private);
        foreach (var (cpu, vendor) in new[] { (CpuPresets.IntelSkylake, Vendor.Vmx), (CpuPresets.AmdZen2, Vendor.Svm) })
        {
            var (platform, vcpu) = RunUnderKvm(op, Memory.Private, cpu);
            if (row.Exit is { } exit)
            {
                int code = vendor == Vendor.Vmx ? exit.VmxReason : exit.SvmExitCode;
                Assert.Equal([KeyValuePair.Create(code, 1L)], platform.Exits.ByCode);
            }
            else
            {
                Assert.Empty(platform.Exits.ByCode);
                if (op == Opcode.Rdpid && !cpu.HasRdpid)
                {
                    Assert.Equal(GuestFaultKind.InvalidOpcode, vcpu.Fault?.Kind); // #UD without an exit
                }
            }

            if (HasMemoryOperand(form))
            {
                // A memory operand on MMIO (the HPET) exits as the table's MmioExit; a locked
                // access to MMIO is not modelled and faults instead.
                var (mmioPlatform, mmioVcpu) = RunUnderKvm(op, Memory.Mmio, cpu);
                if (form.Cost == CostClass.LockedRmw || row.Cost == CostClass.LockedRmw && form.Cost is null)
                {
                    Assert.Equal(GuestFaultKind.PageFault, mmioVcpu.Fault?.Kind);
                    Assert.Empty(mmioPlatform.Exits.ByCode);
                }
                else
                {
                    int code = vendor == Vendor.Vmx ? InstructionTable.MmioExit.VmxReason : InstructionTable.MmioExit.SvmExitCode;
                    Assert.Equal([KeyValuePair.Create(code, 1L)], mmioPlatform.Exits.ByCode);
                }
            }
        }
    }
}

using System.Collections.Frozen;
using System.Collections.Immutable;
using TscSim.Core.Hardware;

namespace TscSim.Core.Isa;

/// <summary>The kinds of operand an instruction form takes.</summary>
public enum OperandKind : byte
{
    /// <summary>A 64-bit register (rax … r15).</summary>
    Reg64,
    /// <summary>A 32-bit register view (eax … r15d): reads the low half, writes zero-extend.</summary>
    Reg32,
    /// <summary>The CL register (shift counts).</summary>
    Cl,
    /// <summary>The DX register (port numbers).</summary>
    Dx,
    /// <summary>The EAX register (port data).</summary>
    Eax,
    /// <summary>An immediate: a number or a data label's address.</summary>
    Imm,
    /// <summary>A memory operand <c>[base + disp]</c>, 64-bit (<c>qword</c>).</summary>
    Mem64,
    /// <summary>A memory operand, 32-bit (<c>dword</c>).</summary>
    Mem32,
    /// <summary>A memory operand, 8-bit (<c>byte</c>).</summary>
    Mem8,
    /// <summary>A code label (branch or call target).</summary>
    Label,
}

/// <summary>
/// When executing an instruction must be sequenced with the rest of the system (DESIGN.md
/// "How execution stays exact and fast"): never, always, or when its memory operand is
/// shared or MMIO.
/// </summary>
public enum SyncKind : byte
{
    /// <summary>Private: runs eagerly, costs one interpreter step and no queue operation.</summary>
    None,
    /// <summary>Reads time, does I/O, may exit, or records a measurement: runs at its exact instant.</summary>
    Always,
    /// <summary>Touches memory: sequenced only if the address is shared or MMIO.</summary>
    IfSharedMemory,
}

/// <summary>
/// How an instruction can leave the guest: the VMX basic exit reason and the control that
/// governs it, the SVM exit code and its intercept. Facts: Linux 6.6
/// arch/x86/include/uapi/asm/vmx.h (EXIT_REASON_*) and uapi/asm/svm.h (SVM_EXIT_*); Intel SDM
/// vol. 3C §25.1.3 and §25.3 (2016 edition); see docs/model.md, "Sources of hardware and ISA facts".
/// </summary>
public sealed record ExitInfo(int VmxReason, string VmxControl, int SvmExitCode, string SvmIntercept);

/// <summary>One operand form of a mnemonic; <see cref="Cost"/> overrides the row's cost class (a load form of mov costs a load).</summary>
public sealed record InstructionForm(Opcode Opcode, ImmutableArray<OperandKind> Operands, CostClass? Cost = null);

/// <summary>
/// One mnemonic: its forms, cost class, sequencing and exits. A row of
/// <see cref="InstructionTable"/>. <see cref="KernelOnly"/> rows belong to the guest kernel's
/// code (<c>Guest/KernelLibrary</c>): a scenario's workload may not use them.
/// </summary>
public sealed record InstructionDef(
    string Mnemonic,
    CostClass Cost,
    SyncKind Sync,
    ExitInfo? Exit,
    ImmutableArray<InstructionForm> Forms,
    string Summary,
    bool KernelOnly = false);

/// <summary>
/// The guest instruction set: the single source of truth (as Iced's InstructionDefs) that the
/// assembler, the interpreter and the exit paths all read (the interpreter's sequencing comes
/// from <see cref="InstructionDef.Sync"/>; tests/TscSim.Tests/Isa/InstructionTableConformanceTests
/// checks every row against what the interpreter does). Each row: mnemonic, operand forms,
/// cost class (priced by the core's <see cref="CpuModel"/>), whether it must be sequenced,
/// and for instructions that can exit the VMX reason / control and SVM code / intercept.
/// </summary>
public static class InstructionTable
{
    private static InstructionForm F(Opcode op, params OperandKind[] operands) => new(op, [.. operands]);

    private static InstructionForm F(Opcode op, CostClass cost, params OperandKind[] operands) => new(op, [.. operands], cost);

    private const OperandKind R = OperandKind.Reg64, D = OperandKind.Reg32, I = OperandKind.Imm,
        M = OperandKind.Mem64, Md = OperandKind.Mem32, Mb = OperandKind.Mem8, L = OperandKind.Label,
        C = OperandKind.Cl, Dx = OperandKind.Dx, Ax = OperandKind.Eax;

    /// <summary>RDTSC: VMX reason 16 under "RDTSC exiting" (primary bit 12); SVM 0x6E under INTERCEPT_RDTSC.</summary>
    public static readonly ExitInfo RdtscExit = new(16, "RDTSC exiting", 0x6E, "INTERCEPT_RDTSC");

    /// <summary>RDTSCP: VMX reason 51 under the same "RDTSC exiting" control (#UD without "enable RDTSCP"); SVM 0x87 under its own INTERCEPT_RDTSCP.</summary>
    public static readonly ExitInfo RdtscpExit = new(51, "RDTSC exiting", 0x87, "INTERCEPT_RDTSCP");

    /// <summary>A memory access that the nested page tables do not back (MMIO): VMX 48 EPT violation (49 EPT misconfig on KVM's fast path); SVM 0x400 NPF.</summary>
    public static readonly ExitInfo MmioExit = new(48, "EPT (unbacked GPA)", 0x400, "nested page fault");

    /// <summary>
    /// Exits that no instruction causes but interrupt delivery does (docs/model.md "Interrupts"):
    /// a host interrupt while the guest runs (VMX basic reason 1 EXIT_REASON_EXTERNAL_INTERRUPT
    /// under "external-interrupt exiting"; SVM 0x60 SVM_EXIT_INTR).
    /// </summary>
    public static readonly ExitInfo ExternalInterruptExit = new(1, "external-interrupt exiting", 0x60, "INTERCEPT_INTR");

    /// <summary>The VMX-preemption timer expired (VMX 52, KVM's "hv timer"); SVM has no equivalent (-1).</summary>
    public static readonly ExitInfo PreemptionTimerExit = new(52, "activate VMX-preemption timer", -1, "(none)");

    /// <summary>An xAPIC MMIO access without APIC virtualization: VMX 44 APIC_ACCESS ("virtualize APIC accesses"); SVM 0x400 NPF (the page is not mapped).</summary>
    public static readonly ExitInfo ApicAccessExit = new(44, "virtualize APIC accesses", 0x400, "nested page fault");

    private static readonly ImmutableArray<InstructionDef> Rows =
    [
        new("mov", CostClass.Alu, SyncKind.IfSharedMemory, null,
            [F(Opcode.MovRR, R, R), F(Opcode.MovRI, R, I), F(Opcode.MovRM, CostClass.Load, R, M),
             F(Opcode.MovMR, CostClass.Store, M, R), F(Opcode.MovMI, CostClass.Store, M, I),
             F(Opcode.MovDM, CostClass.Load, D, Md), F(Opcode.MovMD, CostClass.Store, Md, D)],
            "copy; loads and stores 64 or 32 bits (a 32-bit load zero-extends)"),
        new("movzx", CostClass.Load, SyncKind.IfSharedMemory, null, [F(Opcode.MovzxRB, R, Mb)], "load a byte, zero-extended"),
        new("movsx", CostClass.Load, SyncKind.IfSharedMemory, null, [F(Opcode.MovsxRB, R, Mb)], "load a byte, sign-extended"),
        new("lea", CostClass.Alu, SyncKind.None, null, [F(Opcode.Lea, R, M)], "address of a memory operand"),
        new("xchg", CostClass.LockedRmw, SyncKind.IfSharedMemory, null, [F(Opcode.XchgRR, CostClass.Alu, R, R), F(Opcode.XchgRM, R, M)],
            "swap; with memory it is implicitly locked"),
        new("push", CostClass.Store, SyncKind.None, null, [F(Opcode.PushR, R), F(Opcode.PushI, I)], "push onto the private stack"),
        new("pop", CostClass.Load, SyncKind.None, null, [F(Opcode.PopR, R)], "pop from the private stack"),

        new("add", CostClass.Alu, SyncKind.IfSharedMemory, null, [F(Opcode.AddRR, R, R), F(Opcode.AddRI, R, I), F(Opcode.AddRM, CostClass.Load, R, M)], "add"),
        new("sub", CostClass.Alu, SyncKind.IfSharedMemory, null, [F(Opcode.SubRR, R, R), F(Opcode.SubRI, R, I), F(Opcode.SubRM, CostClass.Load, R, M)], "subtract"),
        new("and", CostClass.Alu, SyncKind.IfSharedMemory, null, [F(Opcode.AndRR, R, R), F(Opcode.AndRI, R, I), F(Opcode.AndRM, CostClass.Load, R, M)], "bitwise and"),
        new("or", CostClass.Alu, SyncKind.IfSharedMemory, null, [F(Opcode.OrRR, R, R), F(Opcode.OrRI, R, I), F(Opcode.OrRM, CostClass.Load, R, M)], "bitwise or"),
        new("xor", CostClass.Alu, SyncKind.IfSharedMemory, null, [F(Opcode.XorRR, R, R), F(Opcode.XorRI, R, I), F(Opcode.XorRM, CostClass.Load, R, M)], "bitwise xor"),
        new("cmp", CostClass.Alu, SyncKind.IfSharedMemory, null, [F(Opcode.CmpRR, R, R), F(Opcode.CmpRI, R, I), F(Opcode.CmpRM, CostClass.Load, R, M)], "compare (subtract, flags only)"),
        new("test", CostClass.Alu, SyncKind.IfSharedMemory, null, [F(Opcode.TestRR, R, R), F(Opcode.TestRI, R, I), F(Opcode.TestRM, CostClass.Load, R, M)], "and, flags only"),
        new("inc", CostClass.Alu, SyncKind.None, null, [F(Opcode.Inc, R)], "add 1 (CF unchanged)"),
        new("dec", CostClass.Alu, SyncKind.None, null, [F(Opcode.Dec, R)], "subtract 1 (CF unchanged)"),
        new("neg", CostClass.Alu, SyncKind.None, null, [F(Opcode.Neg, R)], "two's complement negate"),
        new("not", CostClass.Alu, SyncKind.None, null, [F(Opcode.Not, R)], "bitwise not (flags unchanged)"),
        new("shl", CostClass.Alu, SyncKind.None, null, [F(Opcode.ShlRI, R, I), F(Opcode.ShlRC, R, C)], "shift left"),
        new("shr", CostClass.Alu, SyncKind.None, null, [F(Opcode.ShrRI, R, I), F(Opcode.ShrRC, R, C)], "logical shift right"),
        new("sar", CostClass.Alu, SyncKind.None, null, [F(Opcode.SarRI, R, I), F(Opcode.SarRC, R, C)], "arithmetic shift right"),
        new("shrd", CostClass.Alu, SyncKind.None, null, [F(Opcode.ShrdRRI, R, R, I), F(Opcode.ShrdRRC, R, R, C)],
            "double shift right: dst = dst >> n | src << (64 - n)"),
        new("mul", CostClass.Mul, SyncKind.None, null, [F(Opcode.Mul, R)], "rdx:rax = rax × src, unsigned"),
        new("imul", CostClass.Mul, SyncKind.None, null, [F(Opcode.ImulRR, R, R), F(Opcode.ImulRI, R, I)], "signed multiply, low 64 bits"),
        new("div", CostClass.Div, SyncKind.None, null, [F(Opcode.Div, R)], "rax, rdx = rdx:rax ÷ src, unsigned; #DE on zero or overflow"),

        new("jmp", CostClass.Branch, SyncKind.None, null, [F(Opcode.Jmp, L)], "jump"),
        new("je", CostClass.Branch, SyncKind.None, null, [F(Opcode.Je, L)], "jump if equal (ZF)"),
        new("jz", CostClass.Branch, SyncKind.None, null, [F(Opcode.Je, L)], "jump if zero (ZF)"),
        new("jne", CostClass.Branch, SyncKind.None, null, [F(Opcode.Jne, L)], "jump if not equal (!ZF)"),
        new("jnz", CostClass.Branch, SyncKind.None, null, [F(Opcode.Jne, L)], "jump if not zero (!ZF)"),
        new("jb", CostClass.Branch, SyncKind.None, null, [F(Opcode.Jb, L)], "jump if below, unsigned (CF)"),
        new("jc", CostClass.Branch, SyncKind.None, null, [F(Opcode.Jb, L)], "jump if carry (CF)"),
        new("jae", CostClass.Branch, SyncKind.None, null, [F(Opcode.Jae, L)], "jump if above or equal, unsigned (!CF)"),
        new("jnc", CostClass.Branch, SyncKind.None, null, [F(Opcode.Jae, L)], "jump if no carry (!CF)"),
        new("jbe", CostClass.Branch, SyncKind.None, null, [F(Opcode.Jbe, L)], "jump if below or equal, unsigned (CF or ZF)"),
        new("ja", CostClass.Branch, SyncKind.None, null, [F(Opcode.Ja, L)], "jump if above, unsigned (!CF and !ZF)"),
        new("jl", CostClass.Branch, SyncKind.None, null, [F(Opcode.Jl, L)], "jump if less, signed (SF != OF)"),
        new("jge", CostClass.Branch, SyncKind.None, null, [F(Opcode.Jge, L)], "jump if greater or equal, signed (SF == OF)"),
        new("jle", CostClass.Branch, SyncKind.None, null, [F(Opcode.Jle, L)], "jump if less or equal, signed (ZF or SF != OF)"),
        new("jg", CostClass.Branch, SyncKind.None, null, [F(Opcode.Jg, L)], "jump if greater, signed (!ZF and SF == OF)"),
        new("js", CostClass.Branch, SyncKind.None, null, [F(Opcode.Js, L)], "jump if sign (SF)"),
        new("jns", CostClass.Branch, SyncKind.None, null, [F(Opcode.Jns, L)], "jump if not sign (!SF)"),
        new("call", CostClass.Branch, SyncKind.None, null, [F(Opcode.Call, L)], "push the return address and jump"),
        new("ret", CostClass.Branch, SyncKind.None, null, [F(Opcode.Ret)], "pop the return address and jump"),

        new("lock cmpxchg", CostClass.LockedRmw, SyncKind.IfSharedMemory, null, [F(Opcode.LockCmpxchg, M, R)],
            "if rax == [m] then [m] = src, ZF = 1 else rax = [m], ZF = 0; atomic"),
        new("lock xadd", CostClass.LockedRmw, SyncKind.IfSharedMemory, null, [F(Opcode.LockXadd, M, R)],
            "tmp = [m]; [m] += src; src = tmp; atomic"),
        new("lfence", CostClass.Lfence, SyncKind.None, null, [F(Opcode.Lfence)], "load fence (orders rdtsc)"),
        new("mfence", CostClass.Mfence, SyncKind.None, null, [F(Opcode.Mfence)], "memory fence"),
        new("pause", CostClass.Pause, SyncKind.None, null, [F(Opcode.Pause)], "spin-wait hint"),
        new("nop", CostClass.Nop, SyncKind.None, null, [F(Opcode.Nop)], "no operation"),

        new("rdtsc", CostClass.Rdtsc, SyncKind.Always, RdtscExit, [F(Opcode.Rdtsc)],
            "edx:eax = TSC (rax, rdx zero-extended)"),
        new("rdtscp", CostClass.Rdtscp, SyncKind.Always, RdtscpExit, [F(Opcode.Rdtscp)],
            "edx:eax = TSC, ecx = IA32_TSC_AUX"),
        new("rdpid", CostClass.Rdpid, SyncKind.Always, null, [F(Opcode.Rdpid, R)],
            "reg = IA32_TSC_AUX (VMX: #UD without \"enable RDTSCP\")"),
        new("rdmsr", CostClass.Rdmsr, SyncKind.Always, new(31, "MSR bitmap", 0x7C, "INTERCEPT_MSR_PROT (EXITINFO1 = 0)"), [F(Opcode.Rdmsr)],
            "edx:eax = MSR[ecx]"),
        new("wrmsr", CostClass.Wrmsr, SyncKind.Always, new(32, "MSR bitmap", 0x7C, "INTERCEPT_MSR_PROT (EXITINFO1 = 1)"), [F(Opcode.Wrmsr)],
            "MSR[ecx] = edx:eax"),
        new("cpuid", CostClass.Cpuid, SyncKind.Always, new(10, "unconditional", 0x72, "INTERCEPT_CPUID"), [F(Opcode.Cpuid)],
            "eax, ebx, ecx, edx = CPUID(eax, ecx)"),
        new("in", CostClass.PortIo, SyncKind.Always, new(30, "unconditional I/O exiting or I/O bitmaps", 0x7B, "INTERCEPT_IOIO_PROT"),
            [F(Opcode.InD, Ax, Dx), F(Opcode.InI, Ax, I)], "eax = port (dx or imm8), 32 bits"),
        new("out", CostClass.PortIo, SyncKind.Always, new(30, "unconditional I/O exiting or I/O bitmaps", 0x7B, "INTERCEPT_IOIO_PROT"),
            [F(Opcode.OutD, Dx, Ax), F(Opcode.OutI, I, Ax)], "port (dx or imm8) = eax, 32 bits"),
        new("hlt", CostClass.Nop, SyncKind.Always, new(12, "HLT exiting", 0x78, "INTERCEPT_HLT"), [F(Opcode.Hlt)],
            "with IF = 1 and an interrupt source armed: wait for the next interrupt; otherwise stop the vCPU for good"),

        new("cli", CostClass.Alu, SyncKind.None, null, [F(Opcode.Cli)],
            "IF = 0: interrupts are held pending (priced as an ALU op: an assumption)"),
        new("sti", CostClass.Alu, SyncKind.None, null, [F(Opcode.Sti)],
            "IF = 1; a pending interrupt is taken after the next instruction (the STI shadow), so 'sti; hlt' cannot miss a wake-up"),
        new("iretq", CostClass.Iret, SyncKind.None, null, [F(Opcode.Iretq)],
            "return from an interrupt: pops RIP, the model's work slot, RFLAGS (with IF), RSP, SS", KernelOnly: true),
        new("lidt", CostClass.Load, SyncKind.None, null, [F(Opcode.Lidt, M)],
            "IDTR = the operand's address: entry v of the table is the qword at IDTR + 8v, a handler's code address (a simplified gate)", KernelOnly: true),

        new("work", CostClass.Nop, SyncKind.None, null, [F(Opcode.Work, I)],
            "pseudo: N cycles of opaque private computation, in O(1); the count carries its unit: 'work 10000cycles'"),
        new("probe", CostClass.Nop, SyncKind.Always, null, [F(Opcode.Probe, R)],
            "pseudo: record the register's value for measurement at this instant (costs nothing)"),
        new("kcall", CostClass.Nop, SyncKind.Always, null, [F(Opcode.Kcall, I)],
            "pseudo: enter the guest kernel model's service N at this instant (costs nothing; see Guest/GuestKernel)", KernelOnly: true),
        new("kend", CostClass.Nop, SyncKind.None, null, [F(Opcode.Kend)],
            "pseudo: the end of the workload, placed after its last instruction; running it is a fault (the workload ran past its end)", KernelOnly: true),
    ];

    /// <summary>Every row, in table order.</summary>
    public static ImmutableArray<InstructionDef> All => Rows;

    private static readonly FrozenDictionary<string, InstructionDef> ByMnemonic =
        Rows.ToFrozenDictionary(r => r.Mnemonic, StringComparer.Ordinal);

    private static readonly InstructionDef?[] ByOpcode = BuildByOpcode();

    private static InstructionDef?[] BuildByOpcode()
    {
        var map = new InstructionDef?[Enum.GetValues<Opcode>().Length];
        foreach (var row in Rows)
        {
            foreach (var form in row.Forms)
            {
                // Aliases (jz for je) share an opcode; the first row names it.
                map[(int)form.Opcode] ??= row;
            }
        }
        return map;
    }

    /// <summary>The row for a mnemonic (lower case; "lock cmpxchg" with one space), or null.</summary>
    public static InstructionDef? Find(string mnemonic) => ByMnemonic.GetValueOrDefault(mnemonic);

    /// <summary>The row that defines <paramref name="op"/>.</summary>
    public static InstructionDef Of(Opcode op) =>
        ByOpcode[(int)op] ?? throw new ArgumentOutOfRangeException(nameof(op), op, "No row defines this opcode.");

    /// <summary>Every mnemonic, for "did you mean" hints.</summary>
    public static IEnumerable<string> Mnemonics => Rows.Select(r => r.Mnemonic);

    /// <summary>The mnemonics a scenario's workload may use (every row but the guest kernel's own).</summary>
    public static IEnumerable<string> UserMnemonics => Rows.Where(r => !r.KernelOnly).Select(r => r.Mnemonic);
}

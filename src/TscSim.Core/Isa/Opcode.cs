namespace TscSim.Core.Isa;

/// <summary>
/// The dense opcode of a pre-decoded instruction: one value per (mnemonic, operand form).
/// Suffixes name the form: R register, I immediate, M memory, C the CL register, L a label
/// (branch target), D a 32-bit register (zero-extending), B a byte. The single source of
/// truth for what each means is <see cref="InstructionTable"/>.
/// </summary>
public enum Opcode : byte
{
    Invalid = 0,

    // data movement
    MovRR, MovRI, MovRM, MovMR, MovMI, MovDM, MovMD, MovzxRB, MovsxRB, Lea,
    XchgRR, XchgRM, PushR, PushI, PopR,

    // integer ALU (64-bit)
    AddRR, AddRI, AddRM, SubRR, SubRI, SubRM,
    AndRR, AndRI, AndRM, OrRR, OrRI, OrRM, XorRR, XorRI, XorRM,
    CmpRR, CmpRI, CmpRM, TestRR, TestRI, TestRM,
    Inc, Dec, Neg, Not,
    ShlRI, ShlRC, ShrRI, ShrRC, SarRI, SarRC, ShrdRRI, ShrdRRC,
    Mul, ImulRR, ImulRI, Div,

    // control flow
    Jmp, Je, Jne, Jb, Jae, Jbe, Ja, Jl, Jge, Jle, Jg, Js, Jns, Call, Ret,

    // atomics and ordering
    LockCmpxchg, LockXadd, Lfence, Mfence, Pause, Nop,

    // time and system
    Rdtsc, Rdtscp, Rdpid, Rdmsr, Wrmsr, Cpuid, InD, InI, OutD, OutI, Hlt,

    // pseudo-instructions
    Work, Probe, Kcall, Kend,

    // interrupts (issue 16)
    Cli, Sti, Iretq, Lidt,
}

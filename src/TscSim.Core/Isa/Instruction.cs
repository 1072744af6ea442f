using System.Runtime.InteropServices;
using TscSim.Core.Hardware;

namespace TscSim.Core.Isa;

/// <summary>
/// One pre-decoded instruction: a small struct in a flat array, so the interpreter reads it
/// without indirection or allocation. Register fields hold register numbers (0 = rax … 15 =
/// r15, see <see cref="Registers"/>); <see cref="NoRegister"/> marks an absent memory base.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct Instruction
{
    /// <summary>No base register in a memory operand.</summary>
    public const byte NoRegister = 0xFF;

    /// <summary>What to do.</summary>
    public Opcode Op;

    /// <summary>First register operand (destination for most forms).</summary>
    public byte A;

    /// <summary>Second register operand.</summary>
    public byte B;

    /// <summary>Base register of the memory operand, or <see cref="NoRegister"/>.</summary>
    public byte Base;

    /// <summary>Cost class priced by the core's CPU model.</summary>
    public CostClass Cost;

    /// <summary>Whether execution must be sequenced (see <see cref="SyncKind"/>).</summary>
    public SyncKind Sync;

    /// <summary>
    /// Pre-decoded by <see cref="GuestProgram"/> for a <c>cmp</c> or <c>test</c>: the next
    /// instruction is a conditional jump (<c>je</c> … <c>jns</c>), which the interpreter runs in the
    /// same dispatch. False for every other instruction.
    /// </summary>
    public bool BranchFollows;

    /// <summary>Immediate operand (value, shift count, port, work cycles).</summary>
    public long Imm;

    /// <summary>Displacement of the memory operand.</summary>
    public long Disp;

    /// <summary>Branch or call target: an instruction index.</summary>
    public int Target;

    /// <summary>1-based source line, for faults and traces.</summary>
    public int Line;

    public override readonly string ToString() => $"{Op} a={A} b={B} base={Base} imm={Imm} disp={Disp} target={Target} (line {Line})";
}

/// <summary>Register numbers and names.</summary>
public static class Registers
{
    public const byte Rax = 0, Rcx = 1, Rdx = 2, Rbx = 3, Rsp = 4, Rbp = 5, Rsi = 6, Rdi = 7,
        R8 = 8, R9 = 9, R10 = 10, R11 = 11, R12 = 12, R13 = 13, R14 = 14, R15 = 15;

    /// <summary>64-bit names by number.</summary>
    public static readonly string[] Names64 =
        ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

    /// <summary>32-bit names by number.</summary>
    public static readonly string[] Names32 =
        ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d"];

    /// <summary>The number of a 64-bit register name, or -1.</summary>
    public static int Find64(string name) => Array.IndexOf(Names64, name);

    /// <summary>The number of a 32-bit register name, or -1.</summary>
    public static int Find32(string name) => Array.IndexOf(Names32, name);
}

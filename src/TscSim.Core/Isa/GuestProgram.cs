using System.Collections.Immutable;

namespace TscSim.Core.Isa;

/// <summary>
/// The guest address map. Code is not in data memory: a code address is
/// <see cref="CodeBase"/> + instruction index (what <c>call</c> pushes and <c>ret</c> pops).
/// Each vCPU has its own copy of the private data section and its own stack; the shared
/// section exists once per VM; MMIO ranges belong to the platform (the HPET at
/// <see cref="HpetBase"/>).
/// </summary>
public static class GuestAddressMap
{
    /// <summary>Code address of instruction 0.</summary>
    public const long CodeBase = 0x0040_0000;

    /// <summary>Start of the per-vCPU private data section (<c>section .data</c>).</summary>
    public const long PrivateBase = 0x0100_0000;

    /// <summary>Top of the per-vCPU stack: rsp starts here and grows down.</summary>
    public const long StackTop = 0x0200_0000;

    /// <summary>Size of each vCPU's stack.</summary>
    public const long StackSize = 64 * 1024;

    /// <summary>Start of the VM-wide shared section (<c>section .shared</c>).</summary>
    public const long SharedBase = 0x0300_0000;

    /// <summary>The VM's pvclock area (<see cref="Abi.GuestAddresses.PvclockBase"/>, where it is defined).</summary>
    public const long PvclockBase = Abi.GuestAddresses.PvclockBase;

    /// <summary>The HPET's MMIO block (<see cref="Abi.GuestAddresses.HpetBase"/>, where it is defined).</summary>
    public const long HpetBase = Abi.GuestAddresses.HpetBase;
}

/// <summary>Which section a label or data item lives in.</summary>
public enum Section
{
    /// <summary>Code.</summary>
    Text,
    /// <summary>Per-vCPU private data.</summary>
    Data,
    /// <summary>VM-wide shared data.</summary>
    Shared,
}

/// <summary>A label: its section and value (an instruction index for code, an address for data), and where it is defined.</summary>
public readonly record struct LabelInfo(Section Section, long Value, int Line)
{
    /// <summary>1-based column of the definition (0 when unknown).</summary>
    public int Column { get; init; }

    /// <summary>The label as a guest address.</summary>
    public long Address => Section == Section.Text ? GuestAddressMap.CodeBase + Value : Value;
}

/// <summary>
/// An assembled guest program: the pre-decoded code, the entry point, and the initial contents
/// of the private and shared data sections. Immutable; one program is shared by all vCPUs
/// that run it.
/// </summary>
public sealed class GuestProgram
{
    internal GuestProgram(string name, Instruction[] code, int entry, byte[] privateData, byte[] sharedData,
        ImmutableDictionary<string, LabelInfo> labels, ImmutableArray<string> sourceLines)
    {
        Name = name;
        Code = code;
        Entry = entry;
        PrivateData = privateData;
        SharedData = sharedData;
        Labels = labels;
        SourceLines = sourceLines;
        StackRuns = FindStackRuns(code);
        MarkCompareAndBranch(code);
    }

    /// <summary>Sets <see cref="Instruction.BranchFollows"/> on every compare or test a conditional jump follows.</summary>
    private static void MarkCompareAndBranch(Instruction[] code)
    {
        for (int j = 0; j + 1 < code.Length; j++)
        {
            code[j].BranchFollows = code[j].Op is Opcode.CmpRR or Opcode.CmpRI or Opcode.TestRR or Opcode.TestRI
                && code[j + 1].Op is >= Opcode.Je and <= Opcode.Jns;
        }
    }

    /// <summary>The longest run <see cref="StackRuns"/> records.</summary>
    internal const int MaxStackRun = 16;

    /// <summary>
    /// For each instruction index: how many consecutive <c>push reg</c> (or <c>pop reg</c>)
    /// instructions of one cost class start there (1 for any other instruction, at most
    /// <see cref="MaxStackRun"/>), none of them on <c>rsp</c> itself. The interpreter runs such a
    /// run in one step (a function's register saves and restores), with exactly the effects,
    /// cycles and retired count of running them one by one.
    /// </summary>
    internal byte[] StackRuns { get; }

    private static byte[] FindStackRuns(Instruction[] code)
    {
        var runs = new byte[code.Length];
        for (int j = code.Length - 1; j >= 0; j--)
        {
            runs[j] = 1;
            Instruction i = code[j];
            if (i.Op is Opcode.PushR or Opcode.PopR && i.A != Registers.Rsp && j + 1 < code.Length)
            {
                Instruction next = code[j + 1];
                if (next.Op == i.Op && next.A != Registers.Rsp && next.Cost == i.Cost && runs[j + 1] < MaxStackRun)
                {
                    runs[j] = (byte)(runs[j + 1] + 1);
                }
            }
        }
        return runs;
    }

    /// <summary>The source's name (a file name, or a description).</summary>
    public string Name { get; }

    /// <summary>The pre-decoded instructions (do not modify).</summary>
    internal Instruction[] Code { get; }

    /// <summary>Number of instructions.</summary>
    public int Length => Code.Length;

    /// <summary>The instruction at <paramref name="index"/> (a copy).</summary>
    public Instruction this[int index] => Code[index];

    /// <summary>Index of the first instruction to run: label <c>start</c> if defined, else 0.</summary>
    public int Entry { get; }

    /// <summary>Initial contents of each vCPU's private data section.</summary>
    public ReadOnlyMemory<byte> PrivateData { get; }

    /// <summary>Initial contents of the VM's shared section.</summary>
    public ReadOnlyMemory<byte> SharedData { get; }

    /// <summary>Every label.</summary>
    public ImmutableDictionary<string, LabelInfo> Labels { get; }

    /// <summary>The source text, line by line (line n is index n − 1).</summary>
    public ImmutableArray<string> SourceLines { get; }

    /// <summary>The address of a data label, or the code address of a code label.</summary>
    public long AddressOf(string label) =>
        Labels.TryGetValue(label, out var l) ? l.Address : throw new KeyNotFoundException($"No label '{label}' in {Name}.");
}

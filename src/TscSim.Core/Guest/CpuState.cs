using System.Runtime.CompilerServices;

namespace TscSim.Core.Guest;

/// <summary>The 16 general-purpose registers, inline (no array allocation).</summary>
[InlineArray(16)]
public struct RegisterFile
{
    private long _r0;
}

/// <summary>How the last flag-setting instruction left the flags (evaluated lazily).</summary>
public enum FlagOrigin : byte
{
    /// <summary>Logic op (and, or, xor, test): CF = OF = 0.</summary>
    Logic,
    /// <summary>Addition a + b.</summary>
    Add,
    /// <summary>Subtraction a − b (sub, cmp, neg as 0 − b).</summary>
    Sub,
    /// <summary>Explicit flags in <see cref="CpuState.FlagBits"/> (inc/dec keep CF; shifts; mul; cmpxchg).</summary>
    Explicit,
}

/// <summary>
/// The architectural state of one vCPU: registers, instruction pointer (an instruction index)
/// and flags. Flags are lazy: an ALU instruction stores its operands and result, and a
/// conditional jump derives ZF, SF, CF, OF from them, so the common path does no flag work.
/// </summary>
public struct CpuState
{
    public const byte FlagZ = 1, FlagS = 2, FlagC = 4, FlagO = 8;

    public RegisterFile Regs;

    /// <summary>Index of the next instruction.</summary>
    public int Rip;

    public FlagOrigin FlagKind;
    public long FlagA, FlagB, FlagResult;

    /// <summary>Flag bits when <see cref="FlagKind"/> is <see cref="FlagOrigin.Explicit"/>.</summary>
    public byte FlagBits;

    /// <summary>Cycles still to do of a <c>work</c> instruction split across slices.</summary>
    public long WorkRemaining;

    /// <summary>
    /// RFLAGS.IF: interrupts are taken (1) or held pending (0). 0 at reset, as on x86; set by
    /// <c>sti</c> and <c>iretq</c>, cleared by <c>cli</c> and by interrupt delivery.
    /// </summary>
    public bool InterruptFlag;

    /// <summary>RFLAGS bit positions of the modelled flags (SDM vol. 1 §3.4.3).</summary>
    public const long RflagsCf = 1L << 0, RflagsFixed = 1L << 1, RflagsZf = 1L << 6, RflagsSf = 1L << 7, RflagsIf = 1L << 9, RflagsOf = 1L << 11;

    /// <summary>The flags as an RFLAGS image (CF, ZF, SF, OF, IF and the always-one bit 1), as an interrupt pushes it.</summary>
    public readonly long Rflags =>
        RflagsFixed | (CF ? RflagsCf : 0) | (ZF ? RflagsZf : 0) | (SF ? RflagsSf : 0) | (OF ? RflagsOf : 0) | (InterruptFlag ? RflagsIf : 0);

    /// <summary>Loads the modelled flags from an RFLAGS image (as <c>iretq</c> does); other bits are ignored.</summary>
    public void SetRflags(long rflags)
    {
        FlagBits = (byte)(((rflags & RflagsZf) != 0 ? FlagZ : 0) | ((rflags & RflagsSf) != 0 ? FlagS : 0)
            | ((rflags & RflagsCf) != 0 ? FlagC : 0) | ((rflags & RflagsOf) != 0 ? FlagO : 0));
        FlagKind = FlagOrigin.Explicit;
        InterruptFlag = (rflags & RflagsIf) != 0;
    }

    public readonly bool ZF => FlagKind == FlagOrigin.Explicit ? (FlagBits & FlagZ) != 0 : FlagResult == 0;

    public readonly bool SF => FlagKind == FlagOrigin.Explicit ? (FlagBits & FlagS) != 0 : FlagResult < 0;

    public readonly bool CF => FlagKind switch
    {
        FlagOrigin.Add => unchecked((ulong)FlagResult < (ulong)FlagA),
        FlagOrigin.Sub => unchecked((ulong)FlagA < (ulong)FlagB),
        FlagOrigin.Explicit => (FlagBits & FlagC) != 0,
        _ => false,
    };

    public readonly bool OF => FlagKind switch
    {
        FlagOrigin.Add => ((FlagA ^ FlagResult) & (FlagB ^ FlagResult)) < 0,
        FlagOrigin.Sub => ((FlagA ^ FlagB) & (FlagA ^ FlagResult)) < 0,
        FlagOrigin.Explicit => (FlagBits & FlagO) != 0,
        _ => false,
    };

    /// <summary>All four flags as bits (for tests and traces).</summary>
    public readonly byte Flags => (byte)((ZF ? FlagZ : 0) | (SF ? FlagS : 0) | (CF ? FlagC : 0) | (OF ? FlagO : 0));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetLogic(long result)
    {
        FlagKind = FlagOrigin.Logic;
        FlagResult = result;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetAdd(long a, long b, long result)
    {
        FlagKind = FlagOrigin.Add;
        FlagA = a;
        FlagB = b;
        FlagResult = result;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void SetSub(long a, long b, long result)
    {
        FlagKind = FlagOrigin.Sub;
        FlagA = a;
        FlagB = b;
        FlagResult = result;
    }

    /// <summary>Sets ZF and SF from <paramref name="result"/> and CF, OF as given.</summary>
    public void SetExplicit(long result, bool cf, bool of)
    {
        FlagBits = (byte)((result == 0 ? FlagZ : 0) | (result < 0 ? FlagS : 0) | (cf ? FlagC : 0) | (of ? FlagO : 0));
        FlagKind = FlagOrigin.Explicit;
        FlagResult = result;
    }
}

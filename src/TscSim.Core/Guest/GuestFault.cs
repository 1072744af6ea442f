namespace TscSim.Core.Guest;

/// <summary>Why a vCPU stopped with a fault. A fault stops that vCPU, never the run.</summary>
public enum GuestFaultKind : byte
{
    None = 0,
    /// <summary>#UD: the instruction does not exist here (RDTSCP without RDTSCP, or VMX without "enable RDTSCP").</summary>
    InvalidOpcode,
    /// <summary>#DE: division by zero or a quotient that does not fit.</summary>
    DivideError,
    /// <summary>#GP: a non-existent MSR, or a write the model refuses.</summary>
    GeneralProtection,
    /// <summary>An access outside mapped memory (#PF with no handler).</summary>
    PageFault,
    /// <summary>A jump, return or fall-through outside the program.</summary>
    BadInstructionPointer,
}

/// <summary>A fault: what, where (instruction index and source line), and a message.</summary>
public sealed record GuestFault(GuestFaultKind Kind, int Rip, int Line, Time.SimTime Time, string Message)
{
    public override string ToString() => $"{Kind} at line {Line} ({Time}): {Message}";
}

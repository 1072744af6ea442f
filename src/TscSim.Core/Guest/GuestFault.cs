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
    /// <summary>Execution ran past the workload's last instruction (into the guest kernel's code).</summary>
    RanPastEnd,
}

/// <summary>Names of <see cref="GuestFaultKind"/> as results show them.</summary>
public static class GuestFaultKinds
{
    /// <summary>The snake_case name (<c>divide_error</c>), as in <c>summary.json</c> and expectations.</summary>
    public static string Name(GuestFaultKind kind) => kind switch
    {
        GuestFaultKind.None => "none",
        GuestFaultKind.InvalidOpcode => "invalid_opcode",
        GuestFaultKind.DivideError => "divide_error",
        GuestFaultKind.GeneralProtection => "general_protection",
        GuestFaultKind.PageFault => "page_fault",
        GuestFaultKind.BadInstructionPointer => "bad_instruction_pointer",
        GuestFaultKind.RanPastEnd => "ran_past_end",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };
}

/// <summary>A fault: what, where (instruction index and source line), and a message.</summary>
public sealed record GuestFault(GuestFaultKind Kind, int Rip, int Line, Time.SimTime Time, string Message)
{
    public override string ToString() => $"{Kind} at line {Line} ({Time}): {Message}";
}

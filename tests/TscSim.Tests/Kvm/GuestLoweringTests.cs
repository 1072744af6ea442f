using TscSim.Core.Isa;
using TscSim.Kvm;

namespace TscSim.Tests.Kvm;

public class GuestLoweringTests
{
    private static string Hex(string source) => Convert.ToHexString(GuestLowering.Lower(Assembler.Assemble(source, "t")).Code);

    [Fact]
    public void A_tsc_read_and_port_write_lower_to_the_real_encodings()
    {
        // rdtsc 0F 31; shl rdx, 32 48 C1 E2 20; or rax, rdx 48 09 D0; out 0x10, eax E7 10; hlt F4.
        Assert.Equal("0F3148C1E2204809D0E710F4", Hex("rdtsc\nshl rdx, 32\nor rax, rdx\nout 0x10, eax\nhlt"));
    }

    [Fact]
    public void Memory_operands_use_the_same_absolute_addresses_and_registers()
    {
        // mov rax, [0x3000000] (moffs64 form), mov [rbx + 8], rcx.
        Assert.Equal("48A10000000300000000" + "48894B08" + "F4", Hex("mov rax, qword [0x3000000]\nmov qword [rbx + 8], rcx\nhlt"));
    }

    [Fact]
    public void Work_becomes_a_counted_loop_that_keeps_rcx_and_the_flags()
    {
        // pushfq; push rcx; mov rcx, 20000; L: dec rcx; jne L; pop rcx; popfq.
        Assert.Equal("9C51" + "48B9204E000000000000" + "48FFC9" + "75FB" + "599D" + "F4", Hex("work 20000cycles\nhlt"));
    }

    [Fact]
    public void A_branch_to_a_later_entry_starts_with_a_jump()
    {
        var lowered = GuestLowering.Lower(Assembler.Assemble("hlt\nstart: nop\nhlt", "t"));
        Assert.Equal("EB01F490F4", Convert.ToHexString(lowered.Code)); // jmp +1 over the first hlt
        Assert.Equal((ulong)GuestAddressMap.CodeBase, lowered.Entry);
    }

    [Fact]
    public void Kernel_calls_are_refused_with_their_line()
    {
        var ex = Assert.Throws<LoweringException>(() => GuestLowering.Lower(Assembler.Assemble("nop\nkcall 1\nhlt", "prog")));
        Assert.Equal(2, ex.Line);
        Assert.Contains("prog:2:", ex.Message);
        Assert.Contains("guest kernel model", ex.Message);
    }

    [Fact]
    public void An_immediate_x86_cannot_encode_is_refused()
    {
        var ex = Assert.Throws<LoweringException>(() => GuestLowering.Lower(Assembler.Assemble("add rax, 0x100000000\nhlt", "prog")));
        Assert.Equal(1, ex.Line);
        Assert.Contains("32 signed bits", ex.Message);
    }

    [Fact]
    public void Probing_rsp_is_refused()
    {
        var ex = Assert.Throws<LoweringException>(() => GuestLowering.Lower(Assembler.Assemble("probe rsp\nhlt", "prog")));
        Assert.Contains("rsp", ex.Message);
    }

    [Fact]
    public void The_shipped_case_programs_lower_and_their_probe_markers_exist()
    {
        foreach (string text in new[] { ValidationCases.ClockLoop, ValidationCases.MsrWrites, ValidationCases.ReadOnce, ValidationCases.ReadLoop("rdtsc") })
        {
            Assert.NotEmpty(GuestLowering.Lower(Assembler.Assemble(text, "case")).Code);
        }
        Assert.Equal(6, ValidationCases.LineOf(ValidationCases.ClockLoop, "; V:"));
        Assert.Equal(10, ValidationCases.LineOf(ValidationCases.ClockLoop, "; T:"));
    }
}

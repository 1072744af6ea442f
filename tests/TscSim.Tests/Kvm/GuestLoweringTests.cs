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

    private static string HexIrqchip(string source) => Convert.ToHexString(GuestLowering.Lower(Assembler.Assemble(source, "t"), irqchip: true).Code);

    [Fact]
    public void Interrupt_instructions_lower_one_to_one_and_lidt_loads_the_harness_idtr()
    {
        // lidt [0x6000] 0F 01 /3 (modrm 1C, SIB 25: absolute disp32); sti FB; cli FA; iretq 48 CF; hlt F4.
        var lowered = GuestLowering.Lower(Assembler.Assemble("section .data\nidt: dq 0\nsection .text\nlidt [idt]\nsti\ncli\niretq\nhlt", "t"));
        Assert.Equal("0F011C2500600000" + "FB" + "FA" + "48CF" + "F4", Convert.ToHexString(lowered.Code));
        Assert.Equal(0x6000, KvmVm.Idtr);
        Assert.Equal(GuestAddressMap.PrivateBase, lowered.IdtTable);
    }

    [Fact]
    public void Under_the_irqchip_hlt_with_if_clear_writes_the_halt_port_and_sti_hlt_stays_bare()
    {
        // pushfq; test qword [rsp], 0x200; jne +4; popfq; out 0xF4, al; hlt; popfq; hlt.
        Assert.Equal("9C" + "48F7042400020000" + "7504" + "9D" + "E6F4" + "F4" + "9D" + "F4", HexIrqchip("hlt"));
        Assert.Equal("FBF4", HexIrqchip("sti\nhlt")); // the STI shadow: no wake-up can fall between them
        Assert.Equal("F4", Hex("hlt"));                 // without the irqchip HLT reaches userspace itself
        Assert.Equal(0xF4, GuestLowering.HaltPort);
    }

    [Fact]
    public void Code_addresses_map_to_the_real_instructions_so_the_idt_can_be_built()
    {
        var program = Assembler.Assemble("section .data\nidt: resq 32\ndq tick\nsection .text\nlidt [idt]\nwork 100cycles\nhlt\ntick: iretq", "t");
        var lowered = GuestLowering.Lower(program);
        // lidt 8 bytes; work: pushfq, push rcx, mov rcx imm64 (10), dec rcx (3), jne (2), pop rcx, popfq = 19; hlt 1.
        ulong code = (ulong)GuestAddressMap.CodeBase;
        Assert.Equal([code, code + 8, code + 27, code + 28], lowered.InstructionAddresses);
        Assert.Equal(code + 28, lowered.RealCodeAddress(GuestAddressMap.CodeBase + 3));
        Assert.Null(lowered.RealCodeAddress(GuestAddressMap.CodeBase + 4));
        Assert.Null(lowered.RealCodeAddress(0));
    }

    [Fact]
    public void A_dynamic_idt_and_the_xapic_page_are_refused_with_their_lines()
    {
        var dynamic = Assert.Throws<LoweringException>(() => GuestLowering.Lower(Assembler.Assemble("nop\nlidt [rbx]\nhlt", "prog")));
        Assert.Equal(2, dynamic.Line);
        Assert.Contains("static table", dynamic.Message);
        var xapic = Assert.Throws<LoweringException>(() => GuestLowering.Lower(Assembler.Assemble("mov rax, qword [0xfee00390]\nhlt", "prog")));
        Assert.Equal(1, xapic.Line);
        Assert.Contains("x2APIC", xapic.Message);
    }

    [Fact]
    public void The_lapic_halt_programs_lower_and_run_in_the_model()
    {
        foreach (var mode in new[] { TscSim.Core.Hardware.ApicTimerMode.OneShot, TscSim.Core.Hardware.ApicTimerMode.TscDeadline })
        {
            string text = ValidationCases.LapicHalt(mode, 2_300_000);
            var program = Assembler.Assemble(text, "lapic");
            Assert.NotNull(GuestLowering.Lower(program, irqchip: true).IdtTable);
            var host = new HostFacts(2_300_000, false, TscSim.Core.Time.Duration.Zero, "GenuineIntel", "test");
            var model = new ModelGuest(program, host).Run(TscSim.Core.Time.Duration.FromSeconds(1));
            // Every armed 200 us timer wakes exactly one 'sti; hlt': 1,000 HLT exits, then the final hlt.
            Assert.Equal(ValidationCases.HaltIterations + 1, model.Vm.Platforms[0].Exits.Hlt);
            Assert.Equal(ValidationCases.HaltIterations, model.Vm.Vcpus[0].InterruptsDelivered(TscSim.Core.Hardware.InterruptSource.LapicTimer));
            Assert.Equal((ulong)ValidationCases.HaltIterations, model.Probes.Single(p => p.Probe.Line == ValidationCases.LineOf(text, "; N:")).Probe.Value);
        }
    }
}

using Iced.Intel;
using TscSim.Core.Isa;
using static Iced.Intel.AssemblerRegisters;
using Assembler = Iced.Intel.Assembler;
using Instruction = TscSim.Core.Isa.Instruction;

namespace TscSim.Kvm;

/// <summary>A TscSim program that cannot run on real hardware, with the instruction's source line.</summary>
public sealed class LoweringException(string program, int line, string message) : Exception($"{program}:{line}: {message}")
{
    public int Line { get; } = line;
}

/// <summary>A program lowered to x86-64 machine code for a 64-bit guest at <see cref="GuestAddressMap.CodeBase"/>.</summary>
/// <param name="Code">The machine code.</param>
/// <param name="Entry">The entry point's address.</param>
/// <param name="UsesPrivateData">Whether the program has a private data section.</param>
/// <param name="InstructionAddresses">The real address of each TscSim instruction (index → address).</param>
/// <param name="IdtTable">The address of the model-format IDT the program's <c>lidt</c> loads, or null without <c>lidt</c>.</param>
/// <param name="StopOnHalt">Whether a <c>hlt</c> with IF = 0 was lowered to a write to <see cref="GuestLowering.HaltPort"/> (runs with an in-kernel irqchip).</param>
public sealed record LoweredProgram(byte[] Code, ulong Entry, bool UsesPrivateData, ulong[] InstructionAddresses, long? IdtTable = null, bool StopOnHalt = false)
{
    /// <summary>The real address of the model's code address <paramref name="modelAddress"/> (<see cref="GuestAddressMap.CodeBase"/> + index), or null when it is not one.</summary>
    public ulong? RealCodeAddress(long modelAddress)
    {
        long index = unchecked(modelAddress - GuestAddressMap.CodeBase);
        return index >= 0 && index < InstructionAddresses.Length ? InstructionAddresses[index] : null;
    }
}

/// <summary>
/// Encodes a TscSim <see cref="GuestProgram"/> into real x86-64 machine code with Iced's
/// assembler, so the same program text runs in TscSim and on real KVM. Instructions with a real
/// encoding map one to one (64-bit operands, the same register numbers; data labels are already
/// absolute addresses of the same guest address map, identity-mapped). The pseudo-instructions:
/// <list type="bullet">
/// <item><c>work N</c> becomes a counted loop of N iterations (<c>dec rcx; jnz</c>, about one
/// cycle each on a modern core), saving rcx and the flags, so its duration is only roughly N
/// cycles: no row compares durations.</item>
/// <item><c>probe reg</c> stores (value, source line) into the probe buffer at
/// <see cref="KvmVm.ProbeBuffer"/> through the cursor at <see cref="KvmVm.ProbeCursor"/>, saving
/// a scratch register and the flags: no exit, as in the model.</item>
/// <item><c>kcall</c> (a guest kernel model service) has no real equivalent and is refused.</item>
/// <item><c>lidt [table]</c> of a static table (a data label): the model's IDT is 8-byte entries
/// holding handler code addresses, a real one 16-byte gates, so the lowered <c>lidt</c> loads
/// <see cref="KvmVm.Idtr"/> and the harness builds the gates at <see cref="KvmVm.Idt"/> from the
/// table's entries as loaded (<see cref="KvmGuest"/>); a table written at run time is not seen,
/// and a <c>lidt</c> through a register is refused. <c>sti</c>, <c>cli</c>, <c>iretq</c> map one
/// to one (the model's 40-byte frame is x86-64's).</item>
/// <item>With an in-kernel irqchip (the <c>irqchip</c> argument of <see cref="Lower"/>), KVM never
/// hands a HLT to userspace, so <c>hlt</c> becomes: IF = 1, a real <c>hlt</c> (waits for the
/// interrupt, as in the model); IF = 0, a write to <see cref="HaltPort"/>, where the harness
/// stops the vCPU (the model's "stop for good"). A <c>hlt</c> right after <c>sti</c> stays a
/// bare <c>hlt</c>, keeping the STI shadow that makes <c>sti; hlt</c> miss no wake-up.</item>
/// <item>Memory operands in the xAPIC page (0xFEE00000) are refused: real runs put the APIC in
/// x2APIC mode and map only the first GiB.</item>
/// </list>
/// Code labels are instruction indices in TscSim and real addresses here: a program that
/// computes with a code label's address (rather than branching to it) is not supported.
/// </summary>
public static class GuestLowering
{
    /// <summary>The port a lowered <c>hlt</c> with IF = 0 writes under an in-kernel irqchip (0xF4, QEMU's isa-debug-exit port).</summary>
    public const ushort HaltPort = 0xF4;

    private static readonly AssemblerRegister64[] R64 = [rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15];
    private static readonly AssemblerRegister32[] R32 = [eax, ecx, edx, ebx, esp, ebp, esi, edi, r8d, r9d, r10d, r11d, r12d, r13d, r14d, r15d];

    /// <summary>Lowers <paramref name="program"/>; throws <see cref="LoweringException"/> for what has no real equivalent.</summary>
    /// <param name="program">The TscSim program.</param>
    /// <param name="irqchip">Whether it runs with KVM's in-kernel irqchip (then <c>hlt</c> with IF = 0 becomes a write to <see cref="HaltPort"/>).</param>
    public static LoweredProgram Lower(GuestProgram program, bool irqchip = false)
    {
        long? idtTable = null;
        var a = new Assembler(64);
        var labels = new Label[program.Length];
        for (int i = 0; i < labels.Length; i++)
        {
            labels[i] = a.CreateLabel();
        }
        if (program.Entry != 0)
        {
            a.jmp(labels[program.Entry]);
        }
        for (int index = 0; index < program.Length; index++)
        {
            a.Label(ref labels[index]);
            Instruction i = program[index];
            try
            {
                if (i.Op == Opcode.Lidt)
                {
                    if (i.Base != Instruction.NoRegister)
                    {
                        throw new LoweringException(program.Name, i.Line, $"'{Source(program, i.Line)}' loads an IDT through a register: real runs need a static table (lidt [label])");
                    }
                    if (idtTable is long t && t != i.Disp)
                    {
                        throw new LoweringException(program.Name, i.Line, $"'{Source(program, i.Line)}' loads a second IDT: real runs support one table");
                    }
                    idtTable = i.Disp;
                    a.lidt(__[(ulong)KvmVm.Idtr]);
                }
                else if (i.Op == Opcode.Hlt && irqchip && !(index > 0 && program[index - 1].Op == Opcode.Sti))
                {
                    // IF = 1: wait in a real hlt; IF = 0: the model stops the vCPU, here a write to the halt port.
                    var sleep = a.CreateLabel();
                    a.pushfq();
                    a.test(__qword_ptr[rsp], 0x200);
                    a.jne(sleep);
                    a.popfq();
                    a.@out((byte)HaltPort, al);
                    a.hlt();
                    a.Label(ref sleep);
                    a.popfq();
                    a.hlt();
                }
                else
                {
                    if (i.Op is Opcode.MovRM or Opcode.MovMR or Opcode.MovMI or Opcode.MovDM or Opcode.MovMD && i.Base == Instruction.NoRegister
                        && TscSim.Core.Hardware.ApicRegisters.IsXapic(i.Disp))
                    {
                        throw new LoweringException(program.Name, i.Line, $"'{Source(program, i.Line)}' uses the xAPIC page: real runs put the APIC in x2APIC mode (use the x2APIC MSRs, 0x800 + offset/16)");
                    }
                    Emit(a, i, labels);
                }
            }
            catch (LoweringException)
            {
                throw;
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
            {
                throw new LoweringException(program.Name, i.Line, $"'{Source(program, i.Line)}' has no x86-64 encoding: {ex.Message}");
            }
            void Refuse(string why) => throw new LoweringException(program.Name, i.Line, $"'{Source(program, i.Line)}' {why}");
            if (i.Op == Opcode.Kcall)
            {
                Refuse("calls the guest kernel model, which real runs do not have: write the program without kcall");
            }
            if (i.Op == Opcode.Probe && i.A == Registers.Rsp)
            {
                Refuse("probes rsp, which the probe's lowering moves (push): copy rsp to another register first");
            }
        }
        var writer = new CodeWriterImpl();
        var result = a.Assemble(writer, (ulong)GuestAddressMap.CodeBase, BlockEncoderOptions.ReturnNewInstructionOffsets);
        var addresses = new ulong[program.Length];
        for (int index = 0; index < addresses.Length; index++)
        {
            addresses[index] = result.GetLabelRIP(labels[index]);
        }
        return new LoweredProgram(writer.ToArray(), (ulong)GuestAddressMap.CodeBase, program.PrivateData.Length > 0, addresses, idtTable, irqchip);
    }

    private static string Source(GuestProgram p, int line) =>
        line >= 1 && line <= p.SourceLines.Length ? p.SourceLines[line - 1].Trim() : $"line {line}";

    private static int Imm32(long value) =>
        value is >= int.MinValue and <= int.MaxValue ? (int)value : throw new ArgumentException($"immediate {value} does not fit in 32 signed bits");

    private static AssemblerMemoryOperand Mem(AssemblerMemoryOperandFactory size, Instruction i) =>
        i.Base == Instruction.NoRegister ? size[(ulong)i.Disp] : size[R64[i.Base] + i.Disp];

    private static void Emit(Assembler a, Instruction i, Label[] labels)
    {
        AssemblerRegister64 ra = R64[Math.Min(i.A, (byte)15)];
        AssemblerRegister64 rb = R64[Math.Min(i.B, (byte)15)];
        switch (i.Op)
        {
            case Opcode.MovRR: a.mov(ra, rb); break;
            case Opcode.MovRI: a.mov(ra, i.Imm); break;
            case Opcode.MovRM: a.mov(ra, Mem(__qword_ptr, i)); break;
            case Opcode.MovMR: a.mov(Mem(__qword_ptr, i), ra); break;
            case Opcode.MovMI: a.mov(Mem(__qword_ptr, i), Imm32(i.Imm)); break;
            case Opcode.MovDM: a.mov(R32[i.A], Mem(__dword_ptr, i)); break;
            case Opcode.MovMD: a.mov(Mem(__dword_ptr, i), R32[i.A]); break;
            case Opcode.MovzxRB: a.movzx(ra, Mem(__byte_ptr, i)); break;
            case Opcode.MovsxRB: a.movsx(ra, Mem(__byte_ptr, i)); break;
            case Opcode.Lea: a.lea(ra, Mem(__, i)); break;
            case Opcode.XchgRR: a.xchg(ra, rb); break;
            case Opcode.XchgRM: a.xchg(Mem(__qword_ptr, i), ra); break;
            case Opcode.PushR: a.push(ra); break;
            case Opcode.PushI: a.push(Imm32(i.Imm)); break;
            case Opcode.PopR: a.pop(ra); break;

            case Opcode.AddRR: a.add(ra, rb); break;
            case Opcode.AddRI: a.add(ra, Imm32(i.Imm)); break;
            case Opcode.AddRM: a.add(ra, Mem(__qword_ptr, i)); break;
            case Opcode.SubRR: a.sub(ra, rb); break;
            case Opcode.SubRI: a.sub(ra, Imm32(i.Imm)); break;
            case Opcode.SubRM: a.sub(ra, Mem(__qword_ptr, i)); break;
            case Opcode.AndRR: a.and(ra, rb); break;
            case Opcode.AndRI: a.and(ra, Imm32(i.Imm)); break;
            case Opcode.AndRM: a.and(ra, Mem(__qword_ptr, i)); break;
            case Opcode.OrRR: a.or(ra, rb); break;
            case Opcode.OrRI: a.or(ra, Imm32(i.Imm)); break;
            case Opcode.OrRM: a.or(ra, Mem(__qword_ptr, i)); break;
            case Opcode.XorRR: a.xor(ra, rb); break;
            case Opcode.XorRI: a.xor(ra, Imm32(i.Imm)); break;
            case Opcode.XorRM: a.xor(ra, Mem(__qword_ptr, i)); break;
            case Opcode.CmpRR: a.cmp(ra, rb); break;
            case Opcode.CmpRI: a.cmp(ra, Imm32(i.Imm)); break;
            case Opcode.CmpRM: a.cmp(ra, Mem(__qword_ptr, i)); break;
            case Opcode.TestRR: a.test(ra, rb); break;
            case Opcode.TestRI: a.test(ra, Imm32(i.Imm)); break;
            case Opcode.TestRM: a.test(Mem(__qword_ptr, i), ra); break;
            case Opcode.Inc: a.inc(ra); break;
            case Opcode.Dec: a.dec(ra); break;
            case Opcode.Neg: a.neg(ra); break;
            case Opcode.Not: a.not(ra); break;
            case Opcode.ShlRI: a.shl(ra, (byte)i.Imm); break;
            case Opcode.ShlRC: a.shl(ra, cl); break;
            case Opcode.ShrRI: a.shr(ra, (byte)i.Imm); break;
            case Opcode.ShrRC: a.shr(ra, cl); break;
            case Opcode.SarRI: a.sar(ra, (byte)i.Imm); break;
            case Opcode.SarRC: a.sar(ra, cl); break;
            case Opcode.ShrdRRI: a.shrd(ra, rb, (byte)i.Imm); break;
            case Opcode.ShrdRRC: a.shrd(ra, rb, cl); break;
            case Opcode.Mul: a.mul(ra); break;
            case Opcode.ImulRR: a.imul(ra, rb); break;
            case Opcode.ImulRI: a.imul(ra, ra, Imm32(i.Imm)); break;
            case Opcode.Div: a.div(ra); break;

            case Opcode.Jmp: a.jmp(labels[i.Target]); break;
            case Opcode.Je: a.je(labels[i.Target]); break;
            case Opcode.Jne: a.jne(labels[i.Target]); break;
            case Opcode.Jb: a.jb(labels[i.Target]); break;
            case Opcode.Jae: a.jae(labels[i.Target]); break;
            case Opcode.Jbe: a.jbe(labels[i.Target]); break;
            case Opcode.Ja: a.ja(labels[i.Target]); break;
            case Opcode.Jl: a.jl(labels[i.Target]); break;
            case Opcode.Jge: a.jge(labels[i.Target]); break;
            case Opcode.Jle: a.jle(labels[i.Target]); break;
            case Opcode.Jg: a.jg(labels[i.Target]); break;
            case Opcode.Js: a.js(labels[i.Target]); break;
            case Opcode.Jns: a.jns(labels[i.Target]); break;
            case Opcode.Call: a.call(labels[i.Target]); break;
            case Opcode.Ret: a.ret(); break;

            case Opcode.LockCmpxchg: a.@lock.cmpxchg(Mem(__qword_ptr, i), ra); break;
            case Opcode.LockXadd: a.@lock.xadd(Mem(__qword_ptr, i), ra); break;
            case Opcode.Lfence: a.lfence(); break;
            case Opcode.Mfence: a.mfence(); break;
            case Opcode.Pause: a.pause(); break;
            case Opcode.Nop: a.nop(); break;

            case Opcode.Rdtsc: a.rdtsc(); break;
            case Opcode.Rdtscp: a.rdtscp(); break;
            case Opcode.Rdpid: a.rdpid(ra); break;
            case Opcode.Rdmsr: a.rdmsr(); break;
            case Opcode.Wrmsr: a.wrmsr(); break;
            case Opcode.Cpuid: a.cpuid(); break;
            case Opcode.InD: a.@in(eax, dx); break;
            case Opcode.InI: a.@in(eax, (byte)i.Imm); break;
            case Opcode.OutD: a.@out(dx, eax); break;
            case Opcode.OutI: a.@out((byte)i.Imm, eax); break;
            case Opcode.Hlt: a.hlt(); break;
            case Opcode.Sti: a.sti(); break;
            case Opcode.Cli: a.cli(); break;
            case Opcode.Iretq: a.iretq(); break;

            case Opcode.Work:
                {
                    // A counted loop of N iterations, rcx and the flags preserved.
                    var loop = a.CreateLabel();
                    a.pushfq();
                    a.push(rcx);
                    a.mov(rcx, Math.Max(1L, i.Imm));
                    a.Label(ref loop);
                    a.dec(rcx);
                    a.jne(loop);
                    a.pop(rcx);
                    a.popfq();
                    break;
                }
            case Opcode.Probe:
                {
                    // (value, line) into the probe buffer; a scratch register other than the probed one.
                    AssemblerRegister64 s = i.A == Registers.R15 ? r14 : r15;
                    a.pushfq();
                    a.push(s);
                    a.mov(s, __qword_ptr[(ulong)KvmVm.ProbeCursor]);
                    a.mov(__qword_ptr[s], ra);
                    a.mov(__qword_ptr[s + 8], i.Line);
                    a.add(__qword_ptr[(ulong)KvmVm.ProbeCursor], 16);
                    a.pop(s);
                    a.popfq();
                    break;
                }
            case Opcode.Kcall:
                break; // refused by the caller with the source line
            default:
                throw new ArgumentException($"opcode {i.Op} is not lowered");
        }
    }

    private sealed class CodeWriterImpl : CodeWriter
    {
        private readonly List<byte> _bytes = [];

        public override void WriteByte(byte value) => _bytes.Add(value);

        public byte[] ToArray() => [.. _bytes];
    }
}

using System.Globalization;
using TscSim.Core.Isa;

namespace TscSim.Tests.Isa;

/// <summary>The assembler against assembler.txt: accepted programs decode to the listed opcodes; rejected ones report every error at its line and column.</summary>
public class AssemblerVectorTests
{
    public sealed record Case(string Title, int Line, string Program, string Mode, List<string> Expected)
    {
        public override string ToString() => $"assembler.txt:{Line} {Title}";
    }

    public static TheoryData<Case> Cases()
    {
        var data = new TheoryData<Case>();
        foreach (var b in TextVectors.Read(Path.Combine(AppContext.BaseDirectory, "Isa", "assembler.txt")))
        {
            var section = b.Sections.Count > 0 ? b.Sections[0] : null;
            data.Add(new Case(b.Title, b.Line, string.Join('\n', b.Body), section?.Header ?? "", [.. section?.Lines.Select(l => l.Text.Trim()) ?? []]));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Assembles_as_the_vector_says(Case c)
    {
        var program = Assembler.TryAssemble(c.Program, "t", out var errors);
        string where = $"assembler.txt:{c.Line} ({c.Title})";
        if (c.Mode == "decodes")
        {
            Assert.True(program is not null, $"{where}: rejected: {string.Join("; ", errors)}");
            string[] expected = string.Join(' ', c.Expected).Split(' ', StringSplitOptions.RemoveEmptyEntries);
            string[] actual = Enumerable.Range(0, program!.Length).Select(k => program[k].Op.ToString()).ToArray();
            Assert.Equal(expected, actual);
        }
        else
        {
            Assert.True(program is null, $"{where}: accepted but should fail");
            Assert.True(c.Expected.Count == errors.Count,
                $"{where}: {errors.Count} errors, expected {c.Expected.Count}: {string.Join(" | ", errors)}");
            for (int k = 0; k < errors.Count; k++)
            {
                string exp = c.Expected[k];
                int second = exp.IndexOf(':', exp.IndexOf(':', StringComparison.Ordinal) + 1);
                string[] pos = exp[..second].Split(':');
                int line = int.Parse(pos[0], CultureInfo.InvariantCulture);
                int col = int.Parse(pos[1], CultureInfo.InvariantCulture);
                string fragment = exp[(second + 1)..].Trim();
                Assert.True(errors[k].Line == line && errors[k].Column == col,
                    $"{where}: error {k} at {errors[k].Line}:{errors[k].Column}, expected {line}:{col} ({errors[k].Message})");
                Assert.True(errors[k].Message.Contains(fragment, StringComparison.Ordinal),
                    $"{where}: error {k} '{errors[k].Message}' lacks '{fragment}'");
            }
        }
    }

    [Fact]
    public void Assemble_throws_with_every_error_named_by_file_line_and_column()
    {
        var ex = Assert.Throws<AssemblyException>(() => Assembler.Assemble("frob\nadd rbx", "workload.s"));
        Assert.Equal(2, ex.Errors.Count);
        Assert.Contains("workload.s:1:1: unknown mnemonic 'frob'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("workload.s:2:5:", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_table_is_the_single_source_of_exit_facts()
    {
        var rdtsc = InstructionTable.Find("rdtsc")!;
        var rdtscp = InstructionTable.Find("rdtscp")!;
        Assert.Equal(16, rdtsc.Exit!.VmxReason);
        Assert.Equal(0x6E, rdtsc.Exit.SvmExitCode);
        Assert.Equal(51, rdtscp.Exit!.VmxReason);
        Assert.Equal(0x87, rdtscp.Exit.SvmExitCode);
        // On VMX one control governs both; on SVM each has its own intercept.
        Assert.Equal(rdtsc.Exit.VmxControl, rdtscp.Exit.VmxControl);
        Assert.NotEqual(rdtsc.Exit.SvmIntercept, rdtscp.Exit.SvmIntercept);
        Assert.Equal(10, InstructionTable.Find("cpuid")!.Exit!.VmxReason);
        Assert.Equal(0x7B, InstructionTable.Find("in")!.Exit!.SvmExitCode);
        // Every opcode but Invalid is defined by exactly one row (aliases share it).
        foreach (var op in Enum.GetValues<Opcode>().Where(o => o != Opcode.Invalid))
        {
            Assert.NotNull(InstructionTable.Of(op));
        }
    }
}

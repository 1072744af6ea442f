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
        string[] lines = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Isa", "assembler.txt"));
        Case? current = null;
        string? mode = null;
        var program = new List<string>();
        void Flush()
        {
            if (current is not null)
            {
                data.Add(current with { Program = string.Join('\n', program), Mode = mode! });
            }
            program.Clear();
            mode = null;
        }
        for (int n = 0; n < lines.Length; n++)
        {
            string line = lines[n];
            if (line.StartsWith("=== ", StringComparison.Ordinal))
            {
                Flush();
                current = new Case(line[4..].Trim(), n + 1, "", "", []);
            }
            else if (current is null)
            {
                continue;
            }
            else if (line.StartsWith("--- ", StringComparison.Ordinal))
            {
                mode = line[4..].Trim();
            }
            else if (mode is not null)
            {
                if (line.Trim().Length > 0)
                {
                    current.Expected.Add(line.Trim());
                }
            }
            else
            {
                program.Add(line);
            }
        }
        Flush();
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

using TscSim.Core.Guest;
using TscSim.Core.Isa;
using TscSim.Tests.Runs;

namespace TscSim.Tests.Isa;

/// <summary>docs/scenario-format.md documents the workload language: every instruction a workload may use, and the kernel routines it may call.</summary>
public class WorkloadLanguageDocTests
{
    private static readonly string[] Doc = File.ReadAllLines(Path.Combine(ShippedScenarioTests.RepoRoot(), "docs", "scenario-format.md"));

    /// <summary>The rows of the table that follows <paramref name="header"/>, by their first cell (the text between the first pair of backticks).</summary>
    private static List<string> TableAfter(string header)
    {
        int h = Array.FindIndex(Doc, l => l.StartsWith(header, StringComparison.Ordinal));
        Assert.True(h >= 0, $"no table '{header}' in docs/scenario-format.md");
        return Doc.Skip(h + 2).TakeWhile(l => l.StartsWith('|')).Select(l => l.Split('`')[1]).ToList();
    }

    [Fact]
    public void Every_instruction_a_workload_may_use_is_listed_once_and_no_other()
    {
        var listed = TableAfter("| instruction | operands | what it does |");
        Assert.Equal(InstructionTable.UserMnemonics.ToList(), listed);
    }

    [Fact]
    public void The_kernel_routines_a_workload_may_call_are_listed()
    {
        Assert.Equal(KernelLibrary.EntryPoints.ToList(), TableAfter("| routine | what it does |"));
    }

    [Fact]
    public void The_kernels_own_instructions_are_not_part_of_the_users_set()
    {
        Assert.Equal(["iretq", "kcall", "kend", "lidt"], InstructionTable.All.Where(r => r.KernelOnly).Select(r => r.Mnemonic).Order(StringComparer.Ordinal));
    }
}

using TscSim.Core.Isa;

namespace TscSim.Tests.Isa;

/// <summary>
/// The interpreter runs a <c>cmp</c> or <c>test</c> and the conditional jump right after it in one
/// dispatch, deciding the jump from the four flags and a per-jump mask; every jump must go where
/// x86 sends it, computed here from the operands' values (Intel SDM Vol. 2, Jcc: "above" and
/// "below" compare unsigned, "greater" and "less" signed).
/// </summary>
public class CompareAndBranchTests
{
    private static readonly long[] Values = [0, 1, -1, 2, long.MaxValue, long.MinValue, 0x7F, -0x80, 0x1_0000_0000];

    private static bool Expected(string jcc, bool isCmp, long a, long b)
    {
        unchecked
        {
            long r = isCmp ? a - b : a & b;
            bool zf = r == 0, sf = r < 0;
            bool cf = isCmp && (ulong)a < (ulong)b;
            bool of = isCmp && ((a ^ b) & (a ^ r)) < 0;
            return jcc switch
            {
                "je" => zf,
                "jne" => !zf,
                "jb" => cf,
                "jae" => !cf,
                "jbe" => cf || zf,
                "ja" => !cf && !zf,
                "jl" => sf != of,
                "jge" => sf == of,
                "jle" => zf || sf != of,
                "jg" => !zf && sf == of,
                "js" => sf,
                _ => !sf,
            };
        }
    }

    [Theory]
    [InlineData("je")]
    [InlineData("jne")]
    [InlineData("jb")]
    [InlineData("jae")]
    [InlineData("jbe")]
    [InlineData("ja")]
    [InlineData("jl")]
    [InlineData("jge")]
    [InlineData("jle")]
    [InlineData("jg")]
    [InlineData("js")]
    [InlineData("jns")]
    public void A_jump_right_after_cmp_or_test_goes_where_the_flags_send_it(string jcc)
    {
        foreach (string compare in new[] { "cmp", "test" })
        {
            foreach (long a in Values)
            {
                foreach (long b in Values)
                {
                    string program = $"""
                            mov rax, {a}
                            mov rbx, {b}
                            {compare} rax, rbx
                            {jcc} taken
                            mov rcx, 1
                            hlt
                        taken:
                            mov rcx, 2
                            hlt
                        """;
                    long rcx = new GuestRig(program).Run().Vcpu.Register(Registers.Rcx);
                    bool expected = Expected(jcc, compare == "cmp", a, b);
                    Assert.True((expected ? 2 : 1) == rcx, $"{compare} {a}, {b}; {jcc}: expected {(expected ? "taken" : "not taken")}");
                }
            }
        }
    }

    [Fact]
    public void Only_a_compare_or_test_right_before_a_conditional_jump_is_marked()
    {
        var program = Assembler.Assemble("""
                cmp rax, 1
                je done
                test rax, rax
                jmp done
                cmp rax, rbx
                add rax, 1
                test rbx, 4
                jns done
            done:
                cmp rax, rbx
            """, "marks");
        Assert.Equal([true, false, false, false, false, false, true, false, false],
            Enumerable.Range(0, program.Length).Select(k => program[k].BranchFollows));
    }
}

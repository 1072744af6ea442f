using System.Text;
using TscSim.Cli;
using TscSim.Core.Engine;
using TscSim.Tests.Runs;
using Xunit.Abstractions;

namespace TscSim.Tests.Cli;

/// <summary>
/// A small mutation fuzzer over the shipped scenarios (issue 14): a fixed seed, a few hundred
/// mutants of the scenario text, each validated and (when valid) run briefly. Whatever the
/// mutant, tscsim must answer with one of its documented exit codes (0 success, 1 expectation
/// failed, 2 bad input, 3 interrupted) and never print a stack trace.
/// </summary>
public sealed class MutationFuzzTests : IDisposable
{
    private const ulong Seed = 0x7C5_F022;
    private const int Mutants = 400;
    private const int RunEvery = 1; // run every valid mutant (150 ms simulated: past the guest's boot)

    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"tscsim-fuzz-{Environment.ProcessId}-{Guid.NewGuid():N}");

    private readonly ITestOutputHelper _log;

    public MutationFuzzTests(ITestOutputHelper log)
    {
        _log = log;
        Directory.CreateDirectory(_dir);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly string[] Replacements =
    [
        "0", "-1", "1", "18446744073709551616", "9223372036854775807", "1e308", "NaN", "\"\"", "~", "[]", "{}",
        "0s", "-5ms", "999999h", "0GHz", "1Hz", "100THz", "1cycles", "-3cycles", "0.0000001ps", "abc", "*x", "&a",
        "vm0", "vm9", "h", "nowhere", "linux-modern", "windows-2016", "xen-native", "on", "off", "auto", "yes",
        "- 1", ": :", "\t", "${nope}", "kcall 9", "div rax", "nop", "jmp nowhere", "hlt", "\u00e9", "\uFFFD",
    ];

    private static readonly string[] Instructions =
    [
        "kcall 9", "kcall 1", "nop", "hlt", "mov rax, 0", "div rax", "xor rcx, rcx", "div rcx", "rdtsc", "rdtscp",
        "call clock_gettime", "call nowhere", "ret", "jmp loop", "work 1", "work 0cycles", "work 1000000000000cycles",
        "mov rcx, 0x10", "rdmsr", "wrmsr", "in eax, 0x40", "out 0x43, al", "mov rax, [0xFED000F0]", "lock cmpxchg [rax], rcx",
    ];

    private static string Mutate(string text, ref SplitMix64 rng)
    {
        var lines = text.Split('\n').ToList();
        int ops = 1 + (int)(rng.Next() % 3);
        for (int k = 0; k < ops && lines.Count > 0; k++)
        {
            int i = (int)(rng.Next() % (ulong)lines.Count);
            switch (rng.Next() % 12 is var op && op >= 8 ? 8 : op)
            {
                case 8: // replace a workload instruction (a line indented under `workload: |`)
                    {
                        var body = Enumerable.Range(0, lines.Count).Where(n => lines[n].StartsWith("        ", StringComparison.Ordinal)).ToArray();
                        if (body.Length > 0)
                        {
                            lines[body[rng.Next() % (ulong)body.Length]] = "        " + Instructions[rng.Next() % (ulong)Instructions.Length];
                        }
                        break;
                    }
                case 0: // delete a line
                    lines.RemoveAt(i);
                    break;
                case 1: // duplicate a line
                    lines.Insert(i, lines[i]);
                    break;
                case 2: // swap two lines
                    int j = (int)(rng.Next() % (ulong)lines.Count);
                    (lines[i], lines[j]) = (lines[j], lines[i]);
                    break;
                case 3: // replace a value after a colon or a dash
                    {
                        string l = lines[i];
                        int c = Math.Max(l.IndexOf(": ", StringComparison.Ordinal), l.IndexOf("- ", StringComparison.Ordinal));
                        string r = Replacements[rng.Next() % (ulong)Replacements.Length];
                        lines[i] = c >= 0 ? l[..(c + 2)] + r : l + " " + r;
                        break;
                    }
                case 4: // change the indentation
                    lines[i] = (rng.Next() % 2 == 0 ? "  " : "") + lines[i].TrimStart(' ');
                    break;
                case 5: // replace a token by a token from elsewhere in the file
                    {
                        var tokens = lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                        string other = lines[(int)(rng.Next() % (ulong)lines.Count)];
                        var pool = other.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                        if (tokens.Length > 0 && pool.Length > 0)
                        {
                            tokens[rng.Next() % (ulong)tokens.Length] = pool[rng.Next() % (ulong)pool.Length];
                            lines[i] = new string(' ', lines[i].Length - lines[i].TrimStart(' ').Length) + string.Join(' ', tokens);
                        }
                        break;
                    }
                case 6: // truncate the line
                    lines[i] = lines[i][..(int)(rng.Next() % (ulong)(lines[i].Length + 1))];
                    break;
                default: // a numeric digit changed, or a unit dropped
                    {
                        var sb = new StringBuilder(lines[i]);
                        for (int p = 0; p < sb.Length; p++)
                        {
                            if (char.IsAsciiDigit(sb[p]) && rng.Next() % 3 == 0)
                            {
                                sb[p] = (char)('0' + (int)(rng.Next() % 10));
                            }
                        }
                        lines[i] = sb.ToString().Replace("cycles", rng.Next() % 2 == 0 ? "" : "cycles", StringComparison.Ordinal);
                        break;
                    }
            }
        }
        return string.Join('\n', lines);
    }

    private static (int Code, string Out, string Err) Cli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = TscSimCli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private static void Check(string what, string mutant, (int Code, string Out, string Err) r)
    {
        string text = r.Out + r.Err;
        bool stack = text.Contains("   at ", StringComparison.Ordinal) || text.Contains("Exception", StringComparison.Ordinal);
        Assert.False(r.Code is < 0 or > 3 || stack,
            $"{what} exited {r.Code}{(stack ? " with a stack trace" : "")}:\n{r.Err}\n--- mutant ---\n{mutant}");
    }

    [Fact]
    public void Mutated_shipped_scenarios_get_a_documented_exit_code_and_no_stack_trace()
    {
        string scenarios = Path.Combine(ShippedScenarioTests.RepoRoot(), "scenarios");
        var sources = Directory.GetFiles(scenarios, "*.yaml").Order(StringComparer.Ordinal).Select(File.ReadAllText).ToArray();
        var rng = new SplitMix64(Seed);
        int valid = 0, ran = 0;
        for (int m = 0; m < Mutants; m++)
        {
            string mutant = Mutate(sources[m % sources.Length], ref rng);
            string file = Path.Combine(_dir, $"m{m}.yaml");
            File.WriteAllText(file, mutant);
            var v = Cli("validate", file);
            Check("validate", mutant, v);
            if (v.Code != ExitCodes.Success)
            {
                Assert.Equal(ExitCodes.BadInput, v.Code);
                Assert.Contains($"m{m}.yaml", v.Err, StringComparison.Ordinal); // the message names the file
                continue;
            }
            if (valid++ % RunEvery != 0)
            {
                continue;
            }
            ran++;
            var r = Cli("run", file, "--quiet", "--set", "duration=150ms", "--out", Path.Combine(_dir, $"out{m}"));
            Check("run", mutant, r);
        }
        _log.WriteLine($"{Mutants} mutants: {valid} valid, {ran} run");
        Assert.True(valid > 10 && ran > 3, $"the fuzzer should produce valid mutants too ({valid} valid, {ran} run)");
    }
}

using TscSim.Core.Scenarios;
using static TscSim.Tests.Scenarios.ScenarioText;

namespace TscSim.Tests.Scenarios;

/// <summary>Whatever the input, the loader answers with a scenario or diagnostics, never another exception.</summary>
public class ScenarioRobustnessTests
{
    private const string Alphabet = " \n\t:-[]{},'\"|>&*!#%@`?~0123456789abcxyz.µ\r\0";

    /// <summary>The full example with one character deleted, replaced or inserted at many places (fixed seed).</summary>
    public static TheoryData<int> Seeds() => [.. Enumerable.Range(0, 8)];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Mutated_files_load_or_fail_with_diagnostics_only(int seed)
    {
        var random = new Random(seed);
        for (int n = 0; n < 150; n++)
        {
            var text = new System.Text.StringBuilder(Full);
            for (int k = random.Next(1, 4); k > 0; k--)
            {
                int at = random.Next(text.Length);
                char c = Alphabet[random.Next(Alphabet.Length)];
                switch (random.Next(3))
                {
                    case 0: text.Remove(at, 1); break;
                    case 1: text[at] = c; break;
                    default: text.Insert(at, c); break;
                }
            }

            try
            {
                var s = ScenarioLoader.LoadText(text.ToString(), "m.yaml");
                Assert.Equal(s, ScenarioLoader.LoadText(ScenarioWriter.ToYaml(s), "r.yaml"));
            }
            catch (ScenarioException ex)
            {
                Assert.All(ex.Diagnostics, d => Assert.True(d.Line >= 1 && d.Column >= 1 && d.Message.Length > 0, d.ToString()));
            }
        }
    }

    [Fact]
    public void The_documented_example_is_a_valid_scenario()
    {
        string dir = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(dir, "TscSim.sln")))
        {
            dir = Path.GetDirectoryName(dir) ?? throw new InvalidOperationException("repository root not found");
        }
        string doc = File.ReadAllText(Path.Combine(dir, "docs", "scenario-format.md"));
        int start = doc.IndexOf("```yaml\n", StringComparison.Ordinal) + "```yaml\n".Length;
        string example = doc[start..doc.IndexOf("```", start, StringComparison.Ordinal)];

        var s = ScenarioLoader.LoadText(example, "docs/scenario-format.md");

        Assert.Equal(("legacy-guest-to-faster-host", 2, 3), (s.Name, s.Hosts.Count, s.Events.Count));
    }
}

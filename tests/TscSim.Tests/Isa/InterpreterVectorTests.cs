using System.Globalization;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;

namespace TscSim.Tests.Isa;

/// <summary>The interpreter against the vectors in interpreter.txt: one theory case per "===" block.</summary>
public class InterpreterVectorTests
{
    public sealed record Case(string Title, int Line, string Program, List<(int Line, string Key, string Value)> Expect)
    {
        public override string ToString() => $"interpreter.txt:{Line} {Title}";
    }

    public static TheoryData<Case> Cases()
    {
        var data = new TheoryData<Case>();
        foreach (var b in TextVectors.Read(Path.Combine(AppContext.BaseDirectory, "Isa", "interpreter.txt")))
        {
            var expect = new List<(int Line, string Key, string Value)>();
            foreach (var (line, text) in b.Find("expect")?.Lines ?? [])
            {
                string body = text.Split('#')[0].Trim();
                if (body.Length > 0)
                {
                    int eq = body.IndexOf('=', StringComparison.Ordinal);
                    Assert.True(eq > 0, $"interpreter.txt:{line}: expected 'name = value'");
                    expect.Add((line, body[..eq].Trim(), body[(eq + 1)..].Trim()));
                }
            }
            data.Add(new Case(b.Title, b.Line, string.Join('\n', b.Body), expect));
        }
        return data;
    }

    private static long Number(string text)
    {
        if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            return unchecked((long)ulong.Parse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture));
        }
        return long.Parse(text, CultureInfo.InvariantCulture);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Runs_as_the_vector_says(Case c)
    {
        var cpuLine = c.Expect.FirstOrDefault(e => e.Key == "cpu");
        CpuModel cpu = cpuLine.Key is null ? CpuPresets.IntelNehalem : CpuPresets.Find(cpuLine.Value)!;
        var rig = new GuestRig(c.Program, cpu: cpu).Run();
        Vcpu v = rig.Vcpu;
        CpuState s = v.State;
        string where = $"interpreter.txt:{c.Line} ({c.Title})";
        Assert.True(v.Halted, $"{where}: the program did not stop by itself");
        if (!c.Expect.Any(e => e.Key == "fault"))
        {
            Assert.True(v.Fault is null, $"{where}: unexpected fault {v.Fault}");
        }

        foreach (var (line, key, value) in c.Expect)
        {
            string at = $"interpreter.txt:{line} ({c.Title})";
            int reg = Registers.Find64(key);
            long actual;
            long expected;
            if (reg >= 0)
            {
                (actual, expected) = (v.Register(reg), Number(value));
            }
            else if (key is "zf" or "sf" or "cf" or "of")
            {
                bool flag = key switch { "zf" => s.ZF, "sf" => s.SF, "cf" => s.CF, _ => s.OF };
                (actual, expected) = (flag ? 1 : 0, Number(value));
            }
            else if (key.StartsWith("shared[", StringComparison.Ordinal))
            {
                (actual, expected) = (rig.Shared64(key[7..^1]), Number(value));
            }
            else if (key.StartsWith('['))
            {
                (actual, expected) = (v.ReadPrivateQword(rig.Program.AddressOf(key[1..^1])), Number(value));
            }
            else if (key.StartsWith("probe ", StringComparison.Ordinal))
            {
                int index = int.Parse(key[6..], CultureInfo.InvariantCulture);
                Assert.True(rig.Log.Probes.Count > index, $"{at}: only {rig.Log.Probes.Count} probes");
                (actual, expected) = (rig.Log.Probes[index].Value, Number(value));
            }
            else
            {
                switch (key)
                {
                    case "cpu":
                        continue;
                    case "fault":
                        Assert.True((v.Fault?.Kind ?? GuestFaultKind.None).ToString() == value, $"{at}: fault {v.Fault}, expected {value}");
                        continue;
                    case "line":
                        (actual, expected) = (v.Fault?.Line ?? -1, Number(value));
                        break;
                    case "instructions":
                        (actual, expected) = (v.Instructions, Number(value));
                        break;
                    case "cycles":
                        (actual, expected) = (v.GuestCycles, Number(value));
                        break;
                    case "time_ps":
                        (actual, expected) = (v.LocalTime.Picoseconds, Number(value));
                        break;
                    default:
                        throw new InvalidOperationException($"{at}: unknown expectation '{key}'");
                }
            }
            Assert.True(expected == actual, $"{at}: {key} = {actual} (0x{actual:x}), expected {expected} (0x{expected:x})");
        }
    }
}

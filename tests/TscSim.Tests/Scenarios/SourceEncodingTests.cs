using System.Text;
using TscSim.Cli;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;

namespace TscSim.Tests.Scenarios;

/// <summary>Scenario and sweep files are UTF-8: a byte that is not, or a NUL, is refused at its line and column (never turned into U+FFFD or dropped).</summary>
public sealed class SourceEncodingTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"tscsim-utf8-{Environment.ProcessId}-{Guid.NewGuid():N}");

    public SourceEncodingTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string WriteBytes(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary><see cref="ScenarioText.Minimal"/> with <paramref name="insert"/> placed after <paramref name="after"/>.</summary>
    private static byte[] MinimalWith(string after, byte[] insert)
    {
        byte[] text = Encoding.UTF8.GetBytes(ScenarioText.Minimal);
        int at = Encoding.UTF8.GetBytes(ScenarioText.Minimal[..(ScenarioText.Minimal.IndexOf(after, StringComparison.Ordinal) + after.Length)]).Length;
        return [.. text[..at], .. insert, .. text[at..]];
    }

    [Fact]
    public void An_invalid_byte_is_refused_at_its_position()
    {
        // "description: caf" then 0xE9 (Latin-1 é) as line 3: the byte is column 17.
        string file = WriteBytes("latin1.yaml", MinimalWith("duration: 1s\n", [.. "description: caf"u8, 0xE9, (byte)'\n']));
        var d = Assert.Single(ScenarioLoader.Validate(file));
        Assert.Equal($"{file}:3:17: invalid UTF-8 byte 0xE9; expected UTF-8 text (save the file as UTF-8)", d.ToString());
    }

    [Fact]
    public void Columns_count_characters_not_bytes()
    {
        // "µ" is two bytes but one column: after "description: xµµ" (16 characters, 18 bytes) the bad byte is column 17.
        string file = WriteBytes("mu.yaml", MinimalWith("duration: 1s\n", [.. "description: x"u8, .. "µµ"u8, 0xFF, (byte)'\n']));
        var d = Assert.Single(ScenarioLoader.Validate(file));
        Assert.Equal((3, 17), (d.Line, d.Column));
    }

    [Fact]
    public void A_nul_byte_is_refused_at_its_position()
    {
        string file = WriteBytes("nul.yaml", MinimalWith("name: mini", [0]));
        var d = Assert.Single(ScenarioLoader.Validate(file));
        Assert.Equal((1, 11), (d.Line, d.Column));
        Assert.StartsWith("NUL byte", d.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_exits_2_naming_the_byte()
    {
        string file = WriteBytes("bad.yaml", MinimalWith("name: mini", [0xC3, (byte)'(']));
        var o = new StringWriter();
        var e = new StringWriter();
        Assert.Equal(ExitCodes.BadInput, TscSimCli.Run(["validate", file], o, e));
        Assert.Contains("bad.yaml:1:11: invalid UTF-8 byte 0xC3", e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void A_byte_order_mark_and_crlf_line_ends_are_fine()
    {
        byte[] crlf = Encoding.UTF8.GetBytes(ScenarioText.Minimal.Replace("\n", "\r\n", StringComparison.Ordinal));
        string file = WriteBytes("bom.yaml", [0xEF, 0xBB, 0xBF, .. crlf]);
        Assert.Empty(ScenarioLoader.Validate(file));
        Assert.Equal("\u00e9\r\nx", SourceFile.Decode("\u00e9\r\nx"u8, "t"));
    }

    [Fact]
    public void A_base_file_with_a_bad_byte_is_reported_in_that_file()
    {
        string basePath = WriteBytes("base.yaml", MinimalWith("duration: 1s\n", [.. "# \u00b5"u8, 0x80, (byte)'\n']));
        string child = WriteBytes("child.yaml", "extends: base.yaml\nname: child\n"u8.ToArray());
        var d = Assert.Single(ScenarioLoader.Validate(child));
        Assert.Equal((basePath, 3, 4), (d.File, d.Line, d.Column));
    }

    [Fact]
    public void A_sweep_file_with_a_bad_byte_is_refused_at_its_position()
    {
        string file = WriteBytes("sweep.yaml", [.. "name: s\nbase: b.yaml\nvary:\n  - { name: x, values: [a"u8, 0xFF, .. "] }\n"u8]);
        var ex = Assert.Throws<ScenarioException>(() => SweepSpec.Load(file));
        var d = Assert.Single(ex.Diagnostics);
        Assert.Equal($"{file}:4:26: invalid UTF-8 byte 0xFF; expected UTF-8 text (save the file as UTF-8)", d.ToString());
    }
}

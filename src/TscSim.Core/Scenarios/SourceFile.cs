using System.Buffers;
using System.Text;

namespace TscSim.Core.Scenarios;

/// <summary>
/// Reads the text of a scenario or sweep file strictly: UTF-8 (a leading byte-order mark is
/// skipped), where a byte that is not valid UTF-8, or a NUL byte, is an error at its line and
/// column instead of becoming U+FFFD or vanishing.
/// </summary>
public static class SourceFile
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads <paramref name="path"/> as strict UTF-8.</summary>
    /// <exception cref="ScenarioException">The file holds invalid UTF-8 or NUL bytes (every one, at its position).</exception>
    /// <exception cref="IOException">The file cannot be read (and the other exceptions of <see cref="File.ReadAllBytes"/>).</exception>
    public static string ReadText(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Decode(File.ReadAllBytes(path), path);
    }

    /// <summary>Decodes <paramref name="bytes"/> as strict UTF-8; <paramref name="fileName"/> names it in diagnostics.</summary>
    /// <exception cref="ScenarioException">Invalid UTF-8 or NUL bytes, each as <c>FILE:LINE:COL: invalid UTF-8 byte 0xNN</c> or <c>NUL byte</c>.</exception>
    public static string Decode(ReadOnlySpan<byte> bytes, string fileName)
    {
        ReadOnlySpan<byte> bom = [0xEF, 0xBB, 0xBF];
        if (bytes.StartsWith(bom))
        {
            bytes = bytes[bom.Length..];
        }
        var problems = Check(bytes, fileName);
        if (problems.Count > 0)
        {
            throw new ScenarioException(problems);
        }
        return Strict.GetString(bytes);
    }

    /// <summary>
    /// Every invalid byte and NUL of <paramref name="bytes"/>, at 1-based line and column
    /// (columns count characters; a line ends at LF, CR LF or a lone CR, as in YAML).
    /// </summary>
    private static List<ScenarioDiagnostic> Check(ReadOnlySpan<byte> bytes, string fileName)
    {
        var problems = new List<ScenarioDiagnostic>();
        int line = 1, column = 1, i = 0, skipped = 0;
        while (i < bytes.Length)
        {
            OperationStatus status = Rune.DecodeFromUtf8(bytes[i..], out Rune rune, out int consumed);
            if (status != OperationStatus.Done)
            {
                Add($"invalid UTF-8 byte 0x{bytes[i]:X2}; expected UTF-8 text (save the file as UTF-8)");
                i += Math.Max(1, consumed);
                column++;
                continue;
            }
            if (rune.Value == 0)
            {
                Add("NUL byte; expected text (a scenario file is UTF-8 text without NUL characters)");
            }
            i += consumed;
            if (rune.Value == '\n' || (rune.Value == '\r' && (i >= bytes.Length || bytes[i] != '\n')))
            {
                line++;
                column = 1;
            }
            else if (rune.Value != '\r')
            {
                column++;
            }
        }
        if (skipped > 0)
        {
            problems.Add(problems[^1] with { Message = $"... and {skipped} more invalid bytes; expected UTF-8 text" });
        }
        return problems;

        void Add(string message)
        {
            if (problems.Count < ScenarioLoader.MaxDiagnostics)
            {
                problems.Add(new ScenarioDiagnostic(fileName, line, column, message));
            }
            else
            {
                skipped++;
            }
        }
    }
}

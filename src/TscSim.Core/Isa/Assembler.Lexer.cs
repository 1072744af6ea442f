using System.Globalization;

namespace TscSim.Core.Isa;

// Part of the assembler: the lexer, which splits a line into words, numbers and punctuation, each
// with its column.
public static partial class Assembler
{
    private enum TokenKind { Word, Number, Punct, End }

    private readonly record struct Token(TokenKind Kind, string Text, int Column, long Value = 0);

    private sealed partial class State
    {
        private static List<Token>? Tokenize(string text, int line, List<AssemblyError> errors)
        {
            var tokens = new List<Token>();
            int i = 0;
            while (i < text.Length)
            {
                char c = text[i];
                if (c is ';' or '#')
                {
                    break;
                }
                if (char.IsWhiteSpace(c))
                {
                    i++;
                    continue;
                }
                int start = i;
                if (char.IsAsciiLetter(c) || c is '_' or '.' or '$')
                {
                    while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] is '_' or '.' or '$'))
                    {
                        i++;
                    }
                    tokens.Add(new Token(TokenKind.Word, text[start..i], start + 1));
                }
                else if (char.IsAsciiDigit(c))
                {
                    while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] == '_'))
                    {
                        i++;
                    }
                    string raw = text[start..i];
                    if (!TryParseNumber(raw, out long value, out string? suffix))
                    {
                        errors.Add(new AssemblyError(line, start + 1, $"'{raw}' is not a number; expected decimal digits or 0x followed by hex digits"));
                        return null;
                    }
                    tokens.Add(new Token(TokenKind.Number, suffix is null ? raw : raw[..^suffix.Length], start + 1, value));
                    if (suffix is not null)
                    {
                        tokens.Add(new Token(TokenKind.Word, suffix, start + 1 + raw.Length - suffix.Length));
                    }
                }
                else if (c is ',' or '[' or ']' or '+' or '-' or ':' or '*')
                {
                    tokens.Add(new Token(TokenKind.Punct, c.ToString(), start + 1));
                    i++;
                }
                else
                {
                    errors.Add(new AssemblyError(line, start + 1, $"unexpected character '{c}'"));
                    return null;
                }
            }
            tokens.Add(new Token(TokenKind.End, "", text.Length + 1));
            return tokens;
        }

        /// <summary>Decimal or 0x-hex with optional '_' separators; a trailing 'cycles' word is split off as a suffix.</summary>
        private static bool TryParseNumber(string raw, out long value, out string? suffix)
        {
            value = 0;
            suffix = null;
            string body = raw;
            if (body.EndsWith("cycles", StringComparison.Ordinal) && body.Length > 6 && !body.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            {
                suffix = "cycles";
                body = body[..^6];
            }
            if (body.StartsWith('_') || body.EndsWith('_') || body.Contains("__", StringComparison.Ordinal))
            {
                return false;
            }
            string digits = body.Replace("_", "", StringComparison.Ordinal);
            if (digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
            {
                return digits.Length > 2 && ulong.TryParse(digits.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out ulong u)
                    && (value = unchecked((long)u)) == value;
            }
            if (ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out ulong d))
            {
                value = unchecked((long)d);
                return true;
            }
            return false;
        }
    }
}

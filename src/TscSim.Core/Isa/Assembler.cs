using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Globalization;
using TscSim.Core.Hardware;
using TscSim.Core.Text;

namespace TscSim.Core.Isa;

/// <summary>An assembly error: 1-based line and column, and what was expected.</summary>
public readonly record struct AssemblyError(int Line, int Column, string Message)
{
    public override string ToString() => $"{Line}:{Column}: {Message}";
}

/// <summary>
/// A program made of user code followed by a privileged library, as a scenario's workload is
/// followed by the guest kernel (<c>Guest/GuestKernel.Assemble</c>). Lines 1 to
/// <see cref="Lines"/> are user code: they may not use <see cref="InstructionDef.KernelOnly"/>
/// instructions, may not define a label the library defines, and may refer to the library's
/// labels only through <see cref="EntryPoints"/>.
/// </summary>
public sealed record UserCode(int Lines, IReadOnlyCollection<string> EntryPoints);

/// <summary>A program that did not assemble; <see cref="Errors"/> has every error found, in source order.</summary>
public sealed class AssemblyException(string name, IReadOnlyList<AssemblyError> errors)
    : Exception(string.Join(Environment.NewLine, errors.Select(e => $"{name}:{e}")))
{
    public string SourceName { get; } = name;

    public IReadOnlyList<AssemblyError> Errors { get; } = errors;
}

/// <summary>
/// The text assembler: Intel syntax for the subset in <see cref="InstructionTable"/>.
/// </summary>
/// <remarks>
/// <code>
/// line      := [label ':'] [statement] [';' or '#' comment]
/// statement := 'section' ('.text' | '.data' | '.shared')
///            | 'dq' value {',' value}      (64-bit data; a value is a number or a label's address)
///            | 'resq' count                 (count zeroed qwords)
///            | mnemonic [operand {',' operand}]
/// operand   := register | number | label | [size ['ptr']] '[' term {('+'|'-') term} ']'
/// size      := 'qword' | 'dword' | 'byte';  term := register | number | label  (one register at most)
/// number    := decimal | 0x hex, optional '-', '_' between digits
/// </code>
/// The operand of <c>work</c> is a cycle count with its unit, <c>work 10000cycles</c> (a bare
/// number is an error, as for every quantity of a scenario).
/// Every error is collected with its line and column; assembly fails with all of them.
/// </remarks>
public static class Assembler
{
    private const long MaxDataBytes = 16L * 1024 * 1024;

    /// <summary>
    /// Assembles <paramref name="source"/>; throws <see cref="AssemblyException"/> with every error.
    /// With <paramref name="user"/>, the source's first lines are user code with the restrictions of <see cref="UserCode"/>.
    /// </summary>
    public static GuestProgram Assemble(string source, string name = "program", UserCode? user = null)
    {
        var result = TryAssemble(source, name, out var errors, user);
        return result ?? throw new AssemblyException(name, errors);
    }

    /// <summary>Assembles <paramref name="source"/>, or returns null and the errors.</summary>
    public static GuestProgram? TryAssemble(string source, string name, out IReadOnlyList<AssemblyError> errors, UserCode? user = null)
    {
        var state = new State(name, source, user);
        state.Run();
        errors = state.Errors;
        return state.Errors.Count == 0 ? state.Build() : null;
    }

    private enum TokenKind { Word, Number, Punct, End }

    private readonly record struct Token(TokenKind Kind, string Text, int Column, long Value = 0);

    private sealed class PendingOperand
    {
        public OperandKind Kind;
        public int Register = -1;
        public int Size;                // memory operand size in bytes: 8, 4, 1, or 0 when not written
        public byte Base = Instruction.NoRegister;
        public long Value;              // immediate or displacement
        public string? Label;           // a label to resolve in pass 2
        public bool LabelNegated;
        public int Column;
    }

    private sealed record PendingInstruction(int Line, int Column, InstructionDef Def, InstructionForm Form, List<PendingOperand> Operands);

    private sealed record PendingData(int Line, Section Section, long Offset, List<(string? Label, long Value, int Column)> Values);

    private sealed class State(string name, string source, UserCode? user)
    {
        private readonly string[] _lines = source.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        private readonly List<PendingInstruction> _code = [];
        private readonly List<PendingData> _data = [];
        private readonly Dictionary<string, LabelInfo> _labels = new(StringComparer.Ordinal);
        private long _privateSize;
        private long _sharedSize;
        private Section _section = Section.Text;

        public List<AssemblyError> Errors { get; } = [];

        public void Run()
        {
            for (int i = 0; i < _lines.Length; i++)
            {
                ParseLine(i + 1, _lines[i]);
            }
            ResolveAll();
            Errors.Sort((a, b) => a.Line != b.Line ? a.Line.CompareTo(b.Line) : a.Column.CompareTo(b.Column));
        }

        private void Error(int line, int column, string message) => Errors.Add(new AssemblyError(line, column, message));

        /// <summary>Whether <paramref name="line"/> is user code (see <see cref="UserCode"/>).</summary>
        private bool IsUser(int line) => user is not null && line <= user.Lines;

        private string EntryPointList => user is null || user.EntryPoints.Count == 0
            ? "none"
            : string.Join(", ", user.EntryPoints.Order(StringComparer.Ordinal));

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

        private void ParseLine(int line, string text)
        {
            var tokens = Tokenize(text, line, Errors);
            if (tokens is null)
            {
                return;
            }
            int p = 0;

            // Labels: word ':' (possibly several on one line).
            while (tokens[p].Kind == TokenKind.Word && tokens[p + 1].Text == ":" && tokens[p + 1].Kind == TokenKind.Punct)
            {
                DefineLabel(line, tokens[p]);
                p += 2;
            }
            Token head = tokens[p];
            if (head.Kind == TokenKind.End)
            {
                return;
            }
            if (head.Kind != TokenKind.Word)
            {
                Error(line, head.Column, $"expected a label, a mnemonic or a directive, got '{head.Text}'");
                return;
            }
            string word = head.Text.ToLowerInvariant();
            switch (word)
            {
                case "section":
                    ParseSection(line, tokens, p + 1);
                    return;
                case "dq":
                    ParseDq(line, tokens, p + 1);
                    return;
                case "resq":
                    ParseResq(line, tokens, p + 1);
                    return;
            }
            if (word == "lock")
            {
                Token next = tokens[p + 1];
                if (next.Kind != TokenKind.Word || InstructionTable.Find("lock " + next.Text.ToLowerInvariant()) is null)
                {
                    Error(line, next.Column, "expected 'cmpxchg' or 'xadd' after 'lock'");
                    return;
                }
                word = "lock " + next.Text.ToLowerInvariant();
                p++;
            }
            InstructionDef? def = InstructionTable.Find(word);
            if (def is null)
            {
                Error(line, head.Column, $"unknown mnemonic '{head.Text}'{Hint(word, IsUser(line) ? InstructionTable.UserMnemonics : InstructionTable.Mnemonics)}");
                return;
            }
            if (def.KernelOnly && IsUser(line))
            {
                Error(line, head.Column, $"'{word}' belongs to the guest kernel's own code, not to a workload; " +
                    $"a workload enters the kernel with 'call' to one of its entry points: {EntryPointList}");
                return;
            }
            if (_section != Section.Text)
            {
                Error(line, head.Column, $"instruction '{word}' in section .{_section.ToString().ToLowerInvariant()}; instructions belong in section .text");
                return;
            }
            ParseInstruction(line, head.Column, def, tokens, p + 1);
        }

        private void DefineLabel(int line, Token t)
        {
            if (Registers.Find64(t.Text.ToLowerInvariant()) >= 0 || Registers.Find32(t.Text.ToLowerInvariant()) >= 0)
            {
                Error(line, t.Column, $"'{t.Text}' is a register name and cannot be a label");
                return;
            }
            if (_labels.TryGetValue(t.Text, out var existing))
            {
                if (IsUser(existing.Line) && !IsUser(line))
                {
                    // The user's definition came first; the clash is the user's to fix, at their line.
                    Error(existing.Line, existing.Column, $"'{t.Text}' is a label of the guest kernel; choose another name");
                }
                else
                {
                    Error(line, t.Column, $"label '{t.Text}' is already defined on line {existing.Line}");
                }
                return;
            }
            long value = _section switch
            {
                Section.Text => _code.Count,
                Section.Data => GuestAddressMap.PrivateBase + _privateSize,
                _ => GuestAddressMap.SharedBase + _sharedSize,
            };
            _labels[t.Text] = new LabelInfo(_section, value, line) { Column = t.Column };
        }

        private void ParseSection(int line, List<Token> tokens, int p)
        {
            Token t = tokens[p];
            Section? s = t.Text switch { ".text" => Section.Text, ".data" => Section.Data, ".shared" => Section.Shared, _ => null };
            if (s is null || t.Kind != TokenKind.Word)
            {
                Error(line, t.Column, "expected a section name: .text, .data (private to each vCPU) or .shared (one copy per VM)");
                return;
            }
            _section = s.Value;
            ExpectEnd(line, tokens, p + 1);
        }

        private void ParseDq(int line, List<Token> tokens, int p)
        {
            if (_section == Section.Text)
            {
                Error(line, tokens[p - 1].Column, "data in section .text; put 'dq' after 'section .data' or 'section .shared'");
                return;
            }
            var values = new List<(string?, long, int)>();
            while (true)
            {
                Token t = tokens[p];
                bool negative = false;
                if (t.Kind == TokenKind.Punct && t.Text == "-")
                {
                    negative = true;
                    t = tokens[++p];
                }
                if (t.Kind == TokenKind.Number)
                {
                    values.Add((null, negative ? unchecked(-t.Value) : t.Value, t.Column));
                }
                else if (t.Kind == TokenKind.Word && !negative)
                {
                    values.Add((t.Text, 0, t.Column));
                }
                else
                {
                    Error(line, t.Column, "expected a number or a label after 'dq'");
                    return;
                }
                p++;
                if (tokens[p].Kind == TokenKind.End)
                {
                    break;
                }
                if (tokens[p].Text != ",")
                {
                    Error(line, tokens[p].Column, "expected ',' or the end of the line");
                    return;
                }
                p++;
            }
            AddData(line, values.Count, values);
        }

        private void ParseResq(int line, List<Token> tokens, int p)
        {
            Token t = tokens[p];
            if (_section == Section.Text)
            {
                Error(line, tokens[p - 1].Column, "data in section .text; put 'resq' after 'section .data' or 'section .shared'");
                return;
            }
            if (t.Kind != TokenKind.Number || t.Value <= 0 || t.Value > MaxDataBytes / 8)
            {
                Error(line, t.Column, $"expected a positive count of qwords (at most {MaxDataBytes / 8}) after 'resq'");
                return;
            }
            if (ExpectEnd(line, tokens, p + 1))
            {
                AddData(line, (int)t.Value, []);
            }
        }

        private void AddData(int line, int qwords, List<(string?, long, int)> values)
        {
            long offset = _section == Section.Data ? _privateSize : _sharedSize;
            long size = offset + 8L * qwords;
            if (size > MaxDataBytes)
            {
                Error(line, 1, $"section .{_section.ToString().ToLowerInvariant()} would exceed {MaxDataBytes / (1024 * 1024)} MiB");
                return;
            }
            if (_section == Section.Data)
            {
                _privateSize = size;
            }
            else
            {
                _sharedSize = size;
            }
            if (values.Count > 0)
            {
                _data.Add(new PendingData(line, _section, offset, values));
            }
        }

        private bool ExpectEnd(int line, List<Token> tokens, int p)
        {
            if (tokens[p].Kind != TokenKind.End)
            {
                Error(line, tokens[p].Column, $"expected the end of the line, got '{tokens[p].Text}'");
                return false;
            }
            return true;
        }

        private void ParseInstruction(int line, int column, InstructionDef def, List<Token> tokens, int p)
        {
            var operands = new List<PendingOperand>();
            if (tokens[p].Kind != TokenKind.End)
            {
                while (true)
                {
                    var op = ParseOperand(line, def, tokens, ref p);
                    if (op is null)
                    {
                        return;
                    }
                    operands.Add(op);
                    if (tokens[p].Kind == TokenKind.End)
                    {
                        break;
                    }
                    if (tokens[p].Text != ",")
                    {
                        Error(line, tokens[p].Column, "expected ',' or the end of the line");
                        return;
                    }
                    p++;
                }
            }

            InstructionForm? form = def.Forms.FirstOrDefault(f => Matches(f, operands));
            if (form is null)
            {
                string got = operands.Count == 0 ? "no operands" : string.Join(", ", operands.Select(o => Describe(o.Kind)));
                string want = string.Join(" | ", def.Forms.Select(f => f.Operands.Length == 0 ? "(none)" : string.Join(", ", f.Operands.Select(Describe))));
                int col = operands.Count > 0 ? operands[0].Column : column;
                Error(line, col, $"'{def.Mnemonic}' does not take {got}; expected {want}");
                return;
            }
            // Immediate-only labels in branch forms are code labels; plain labels elsewhere become immediates.
            for (int i = 0; i < operands.Count; i++)
            {
                if (form.Operands[i] == OperandKind.Label && operands[i].Kind == OperandKind.Imm)
                {
                    operands[i].Kind = OperandKind.Label;
                }
            }
            _code.Add(new PendingInstruction(line, column, def, form, operands));
        }

        private static bool Matches(InstructionForm form, List<PendingOperand> ops)
        {
            if (form.Operands.Length != ops.Count)
            {
                return false;
            }
            bool hasReg32 = form.Operands.Contains(OperandKind.Reg32);
            for (int i = 0; i < ops.Count; i++)
            {
                OperandKind want = form.Operands[i];
                PendingOperand got = ops[i];
                bool ok = want switch
                {
                    OperandKind.Mem64 => got.Kind == OperandKind.Mem64 && got.Size is 0 or 8,
                    OperandKind.Mem32 => got.Kind == OperandKind.Mem64 && (got.Size == 4 || (got.Size == 0 && hasReg32)),
                    OperandKind.Mem8 => got.Kind == OperandKind.Mem64 && got.Size == 1,
                    OperandKind.Eax => got.Kind == OperandKind.Reg32 && got.Register == Registers.Rax,
                    OperandKind.Label => got.Kind == OperandKind.Imm && got.Label is not null && got.Value == 0,
                    _ => got.Kind == want,
                };
                if (!ok)
                {
                    return false;
                }
            }
            return true;
        }

        private static string Describe(OperandKind k) => k switch
        {
            OperandKind.Reg64 => "a 64-bit register",
            OperandKind.Reg32 => "a 32-bit register",
            OperandKind.Cl => "cl",
            OperandKind.Dx => "dx",
            OperandKind.Eax => "eax",
            OperandKind.Imm => "an immediate",
            OperandKind.Mem64 => "a qword memory operand",
            OperandKind.Mem32 => "a dword memory operand",
            OperandKind.Mem8 => "a byte memory operand",
            OperandKind.Label => "a code label",
            _ => k.ToString(),
        };

        private PendingOperand? ParseOperand(int line, InstructionDef def, List<Token> tokens, ref int p)
        {
            Token t = tokens[p];
            var op = new PendingOperand { Column = t.Column };
            string lower = t.Text.ToLowerInvariant();
            if (t.Kind == TokenKind.Word && lower is "qword" or "dword" or "byte")
            {
                int size = lower == "qword" ? 8 : lower == "dword" ? 4 : 1;
                p++;
                if (tokens[p].Kind == TokenKind.Word && tokens[p].Text.Equals("ptr", StringComparison.OrdinalIgnoreCase))
                {
                    p++;
                }
                if (tokens[p].Text != "[")
                {
                    Error(line, tokens[p].Column, $"expected '[' after '{t.Text}'");
                    return null;
                }
                var mem = ParseMemory(line, tokens, ref p);
                if (mem is not null)
                {
                    mem.Size = size;
                    mem.Column = t.Column;
                }
                return mem;
            }
            if (t.Kind == TokenKind.Punct && t.Text == "[")
            {
                return ParseMemory(line, tokens, ref p);
            }
            if (t.Kind == TokenKind.Word)
            {
                p++;
                if (lower == "cl")
                {
                    op.Kind = OperandKind.Cl;
                    return op;
                }
                if (lower == "dx")
                {
                    op.Kind = OperandKind.Dx;
                    return op;
                }
                int r64 = Registers.Find64(lower);
                if (r64 >= 0)
                {
                    op.Kind = OperandKind.Reg64;
                    op.Register = r64;
                    return op;
                }
                int r32 = Registers.Find32(lower);
                if (r32 >= 0)
                {
                    op.Kind = OperandKind.Reg32;
                    op.Register = r32;
                    return op;
                }
                if (IsOtherRegister(lower))
                {
                    Error(line, t.Column, $"register '{t.Text}' is not modelled; use a 64-bit register (rax … r15) or a 32-bit one (eax … r15d)");
                    return null;
                }
                if (def.Mnemonic == "work")
                {
                    Error(line, t.Column, $"'work' takes a cycle count, got '{t.Text}'; expected a number with its unit, e.g. work 10000cycles");
                    return null;
                }
                op.Kind = OperandKind.Imm;
                op.Label = t.Text;
                return op;
            }
            bool negative = false;
            if (t.Kind == TokenKind.Punct && t.Text == "-")
            {
                negative = true;
                t = tokens[++p];
            }
            if (t.Kind == TokenKind.Number)
            {
                p++;
                op.Kind = OperandKind.Imm;
                op.Value = negative ? unchecked(-t.Value) : t.Value;
                if (tokens[p].Kind == TokenKind.Word && tokens[p].Text == "cycles")
                {
                    if (def.Mnemonic != "work")
                    {
                        Error(line, tokens[p].Column, "the 'cycles' suffix is only for 'work'");
                        return null;
                    }
                    p++;
                }
                else if (def.Mnemonic == "work")
                {
                    string number = (negative ? "-" : "") + t.Text;
                    Error(line, op.Column, $"'{number}' has no unit; expected a cycle count with its unit: write {number}cycles");
                    return null;
                }
                return op;
            }
            Error(line, t.Column, $"expected an operand (register, number, label or [memory]), got '{(t.Kind == TokenKind.End ? "end of line" : t.Text)}'");
            return null;
        }

        private static bool IsOtherRegister(string s) =>
            s is "ax" or "bx" or "cx" or "sp" or "bp" or "si" or "di" or "al" or "ah" or "bl" or "bh" or "ch" or "dl" or "dh"
                or "rip" or "eip" or "cs" or "ds" or "es" or "fs" or "gs" or "ss"
            || (s.StartsWith("xmm", StringComparison.Ordinal) && s.Length > 3 && char.IsAsciiDigit(s[3]));

        private PendingOperand? ParseMemory(int line, List<Token> tokens, ref int p)
        {
            var op = new PendingOperand { Kind = OperandKind.Mem64, Column = tokens[p].Column };
            p++; // '['
            bool first = true;
            while (true)
            {
                Token t = tokens[p];
                bool negative = false;
                if (!first || (t.Kind == TokenKind.Punct && t.Text is "+" or "-"))
                {
                    if (t.Kind == TokenKind.Punct && t.Text == "]" && !first)
                    {
                        p++;
                        return op;
                    }
                    if (t.Kind != TokenKind.Punct || t.Text is not ("+" or "-"))
                    {
                        Error(line, t.Column, "expected '+', '-' or ']' in a memory operand");
                        return null;
                    }
                    negative = t.Text == "-";
                    t = tokens[++p];
                }
                first = false;
                if (t.Kind == TokenKind.Number)
                {
                    op.Value = unchecked(op.Value + (negative ? -t.Value : t.Value));
                }
                else if (t.Kind == TokenKind.Word)
                {
                    string lower = t.Text.ToLowerInvariant();
                    int r = Registers.Find64(lower);
                    if (r >= 0)
                    {
                        if (negative || op.Base != Instruction.NoRegister)
                        {
                            Error(line, t.Column, "a memory operand takes one base register, added: [reg + disp]");
                            return null;
                        }
                        op.Base = (byte)r;
                    }
                    else if (Registers.Find32(lower) >= 0 || IsOtherRegister(lower))
                    {
                        Error(line, t.Column, $"'{t.Text}' cannot address memory; use a 64-bit register");
                        return null;
                    }
                    else
                    {
                        if (op.Label is not null)
                        {
                            Error(line, t.Column, "a memory operand takes at most one label");
                            return null;
                        }
                        op.Label = t.Text;
                        op.LabelNegated = negative;
                    }
                }
                else
                {
                    Error(line, t.Column, $"expected a register, a number or a label in a memory operand, got '{(t.Kind == TokenKind.End ? "end of line" : t.Text)}'");
                    return null;
                }
                p++;
            }
        }

        private void ResolveAll()
        {
            foreach (var ins in _code)
            {
                foreach (var op in ins.Operands)
                {
                    if (op.Label is null)
                    {
                        continue;
                    }
                    if (!_labels.TryGetValue(op.Label, out var label))
                    {
                        Error(ins.Line, op.Column, $"unknown label '{op.Label}'{Hint(op.Label, UserVisible(ins.Line))}");
                        continue;
                    }
                    if (!MayRefer(ins.Line, op.Label, label))
                    {
                        Error(ins.Line, op.Column, InternalLabel(op.Label));
                        continue;
                    }
                    if (op.Kind == OperandKind.Label)
                    {
                        if (label.Section != Section.Text)
                        {
                            Error(ins.Line, op.Column, $"'{op.Label}' is a data label; '{ins.Def.Mnemonic}' needs a code label");
                        }
                        op.Value = label.Value;
                    }
                    else if (op.LabelNegated)
                    {
                        Error(ins.Line, op.Column, "a label cannot be subtracted");
                    }
                    else
                    {
                        op.Value = unchecked(op.Value + label.Address);
                    }
                }
                CheckRanges(ins);
            }
            foreach (var d in _data)
            {
                foreach (var (label, _, column) in d.Values)
                {
                    if (label is not null && !_labels.ContainsKey(label))
                    {
                        Error(d.Line, column, $"unknown label '{label}'{Hint(label, UserVisible(d.Line))}");
                    }
                    else if (label is not null && !MayRefer(d.Line, label, _labels[label]))
                    {
                        Error(d.Line, column, InternalLabel(label));
                    }
                }
            }
            if (_code.Count == 0 && Errors.Count == 0)
            {
                Error(_lines.Length, 1, "the program has no instructions");
            }
            else if (_labels.TryGetValue("start", out var start) && start.Section != Section.Text)
            {
                Error(start.Line, 1, "'start' must label an instruction");
            }
        }

        /// <summary>User code may refer to its own labels and to the library's entry points only.</summary>
        private bool MayRefer(int line, string name, LabelInfo label) =>
            !IsUser(line) || IsUser(label.Line) || user!.EntryPoints.Contains(name);

        private string InternalLabel(string name) =>
            $"'{name}' is internal to the guest kernel; a workload may refer to its own labels and call the kernel's entry points: {EntryPointList}";

        /// <summary>The labels a line may name (for "did you mean" hints).</summary>
        private IEnumerable<string> UserVisible(int line) =>
            _labels.Where(l => MayRefer(line, l.Key, l.Value)).Select(l => l.Key);

        private void CheckRanges(PendingInstruction ins)
        {
            Opcode op = ins.Form.Opcode;
            PendingOperand? imm = ins.Operands.FirstOrDefault(o => o.Kind == OperandKind.Imm);
            if (imm is null)
            {
                return;
            }
            switch (op)
            {
                case Opcode.ShlRI or Opcode.ShrRI or Opcode.SarRI or Opcode.ShrdRRI when imm.Value is < 0 or > 63:
                    Error(ins.Line, imm.Column, "expected a shift count from 0 to 63");
                    break;
                case Opcode.InI or Opcode.OutI when imm.Value is < 0 or > 255:
                    Error(ins.Line, imm.Column, "expected a port number from 0 to 255 (use dx for larger ports)");
                    break;
                case Opcode.Work when imm.Value < 0:
                    Error(ins.Line, imm.Column, "expected a non-negative cycle count");
                    break;
            }
        }

        /// <summary>The did-you-mean hint (<see cref="Suggestions"/>), candidates in ordinal order so that ties break alike on every run.</summary>
        private static string Hint(string word, IEnumerable<string> candidates) =>
            Suggestions.Hint(word, candidates.Order(StringComparer.Ordinal));

        public GuestProgram Build()
        {
            var code = new Instruction[_code.Count];
            for (int i = 0; i < code.Length; i++)
            {
                code[i] = Encode(_code[i]);
            }
            var privateData = new byte[_privateSize];
            var sharedData = new byte[_sharedSize];
            foreach (var d in _data)
            {
                byte[] target = d.Section == Section.Data ? privateData : sharedData;
                long offset = d.Offset;
                foreach (var (label, value, _) in d.Values)
                {
                    long v = label is null ? value : _labels[label].Address;
                    BinaryPrimitives.WriteInt64LittleEndian(target.AsSpan((int)offset, 8), v);
                    offset += 8;
                }
            }
            int entry = _labels.TryGetValue("start", out var start) ? (int)start.Value : 0;
            return new GuestProgram(name, code, entry, privateData, sharedData,
                _labels.ToImmutableDictionary(StringComparer.Ordinal), [.. _lines]);
        }

        private static Instruction Encode(PendingInstruction p)
        {
            var ins = new Instruction
            {
                Op = p.Form.Opcode,
                Cost = p.Form.Cost ?? p.Def.Cost,
                Sync = p.Def.Sync,
                Base = Instruction.NoRegister,
                Line = p.Line,
            };
            bool firstRegister = true;
            foreach (var o in p.Operands)
            {
                switch (o.Kind)
                {
                    case OperandKind.Reg64 or OperandKind.Reg32:
                        if (firstRegister)
                        {
                            ins.A = (byte)o.Register;
                            firstRegister = false;
                        }
                        else
                        {
                            ins.B = (byte)o.Register;
                        }
                        break;
                    case OperandKind.Imm:
                        ins.Imm = o.Value;
                        break;
                    case OperandKind.Label:
                        ins.Target = (int)o.Value;
                        break;
                    case OperandKind.Mem64 or OperandKind.Mem32 or OperandKind.Mem8:
                        ins.Base = o.Base;
                        ins.Disp = o.Value;
                        break;
                }
            }
            // Memory-destination forms keep their register source in A (e.g. mov [m], r: A = r).
            return ins;
        }
    }
}

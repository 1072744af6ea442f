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
/// This file reads lines, labels and data directives; <c>Assembler.Lexer.cs</c> splits a line
/// into tokens, <c>Assembler.Operands.cs</c> reads operands and matches them to the table's
/// forms, <c>Assembler.Build.cs</c> resolves labels and encodes the program.
/// </remarks>
public static partial class Assembler
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

    private sealed partial class State(string name, string source, UserCode? user)
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
    }
}

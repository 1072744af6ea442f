using System.Globalization;
using TscSim.Core.Text;

namespace TscSim.Core.Scenarios;

/// <summary>The comparison of an <see cref="Expectation"/>.</summary>
public enum ExpectOp
{
    /// <summary><c>&lt;</c></summary>
    Less,
    /// <summary><c>&lt;=</c></summary>
    LessOrEqual,
    /// <summary><c>&gt;</c></summary>
    Greater,
    /// <summary><c>&gt;=</c></summary>
    GreaterOrEqual,
    /// <summary><c>==</c></summary>
    Equal,
    /// <summary><c>!=</c></summary>
    NotEqual,
}

/// <summary>
/// A result value an expectation compares: a number (in the field's own unit, e.g. ns for a
/// <c>_ns</c> field) or a word (a clocksource name, <c>true</c>/<c>false</c>, ...).
/// </summary>
public sealed record ExpectValue
{
    private ExpectValue(double? number, string? text)
    {
        Number = number;
        Text = text;
    }

    /// <summary>The number, or null for a word.</summary>
    public double? Number { get; }

    /// <summary>The word, or null for a number.</summary>
    public string? Text { get; }

    /// <summary>A number.</summary>
    public static ExpectValue Of(double number) => new(number, null);

    /// <summary>A word.</summary>
    public static ExpectValue Of(string text) => new(null, text ?? throw new ArgumentNullException(nameof(text)));

    /// <summary>A number.</summary>
    public static implicit operator ExpectValue(double number) => Of(number);

    /// <summary>A number.</summary>
    public static implicit operator ExpectValue(long number) => Of(number);

    /// <summary>A word.</summary>
    public static implicit operator ExpectValue(string text) => Of(text);

    /// <summary>The number in invariant round-trip form, or the word.</summary>
    public override string ToString() => Number is { } n ? n.ToString("R", CultureInfo.InvariantCulture) : Text!;
}

/// <summary>The outcome of one expectation after a run.</summary>
/// <param name="Expectation">What was checked.</param>
/// <param name="Value">The result's value, or null if the path named no result.</param>
/// <param name="Passed">Whether it held.</param>
/// <param name="Message">One line saying what was found, for the report.</param>
public sealed record ExpectationResult(Expectation Expectation, ExpectValue? Value, bool Passed, string Message);

/// <summary>
/// One line of a scenario's <c>expect</c> list: <c>PATH OP LITERAL</c>, e.g.
/// <c>vm0.vcpu0.skew_ns.max_abs &lt; 200ms</c> or <c>vm0.clocksource == hpet</c>.
/// </summary>
/// <remarks>
/// <code>
/// expectation := path op literal
/// path        := segment { '.' segment }      segment := [A-Za-z0-9_-]+
/// op          := '&lt;' | '&lt;=' | '&gt;' | '&gt;=' | '==' | '!='
/// literal     := number [unit] | '"' text '"' | "'" text "'" | word
/// number      := ['+'|'-'] digits ['.' digits]  ('_' may separate digits)
/// word        := [A-Za-z_] [A-Za-z0-9_.:-]*
/// </code>
/// The unit of the field is decided by the last path segment ending in <c>_ns</c> (time:
/// ps, ns, us, µs, ms, s, min, h), <c>_ppm</c> (ppm, ppb), <c>_pct</c> (%) or <c>_cycles</c>
/// (cycles); a literal with a unit is converted into it (<c>200ms</c> = 200000000 for a
/// <c>_ns</c> field). A unit on a field without one, or of the wrong kind, is an error. Words
/// compare only with <c>==</c> and <c>!=</c>. Numbers compare as doubles.
/// </remarks>
public sealed record Expectation
{
    private readonly PositionSlot _position;

    /// <summary>The expectation as written (trimmed).</summary>
    public required string Text { get; init; }

    /// <summary>The result path, e.g. <c>vm0.vcpu0.skew_ns.max_abs</c>.</summary>
    public required string Path { get; init; }

    /// <summary>The comparison.</summary>
    public required ExpectOp Op { get; init; }

    /// <summary>The literal, converted into the field's unit.</summary>
    public required ExpectValue Literal { get; init; }

    /// <summary>The unit written after the number, or null.</summary>
    public string? Unit { get; init; }

    /// <summary>Where the expectation's text starts (not part of equality).</summary>
    public SourcePosition Position { get => _position.Value; init => _position = new(value); }

    private sealed record UnitFamily(string Suffix, string Name, string FieldUnit, (string Unit, decimal Factor)[] Units);

    private static readonly UnitFamily[] Families =
    [
        new("_ns", "a time", "ns",
        [
            ("ps", 0.001m), ("ns", 1m), ("us", 1_000m), ("µs", 1_000m), ("μs", 1_000m), ("ms", 1_000_000m),
            ("s", 1_000_000_000m), ("min", 60_000_000_000m), ("h", 3_600_000_000_000m),
        ]),
        new("_ppm", "a frequency error", "ppm", [("ppm", 1m), ("ppb", 0.001m)]),
        new("_pct", "a percentage", "%", [("%", 1m)]),
        new("_cycles", "a cycle count", "cycles", [("cycles", 1m), ("cycle", 1m)]),
    ];

    private static readonly (string Text, ExpectOp Op)[] Ops =
    [
        ("<=", ExpectOp.LessOrEqual), (">=", ExpectOp.GreaterOrEqual), ("==", ExpectOp.Equal), ("!=", ExpectOp.NotEqual),
        ("<", ExpectOp.Less), (">", ExpectOp.Greater),
    ];

    /// <summary>The text of an operator (<c>&lt;=</c>, …).</summary>
    public static string OpText(ExpectOp op) => Ops.First(o => o.Op == op).Text;

    /// <summary>
    /// The unit numbers of <paramref name="path"/> are kept in (<c>ns</c>, <c>ppm</c>,
    /// <c>%</c>, <c>cycles</c>), or null for a plain count.
    /// </summary>
    public static string? FieldUnitOf(string path) => FamilyOf(path)?.FieldUnit;

    private static UnitFamily? FamilyOf(string path)
    {
        var segments = path.Split('.');
        for (int i = segments.Length - 1; i >= 0; i--)
        {
            foreach (var family in Families)
            {
                if (segments[i].EndsWith(family.Suffix, StringComparison.Ordinal))
                {
                    return family;
                }
            }
        }
        return null;
    }

    /// <summary>
    /// Parses <paramref name="text"/>; <paramref name="position"/> is where its first character
    /// is in the file, so a diagnostic points at the offending character.
    /// </summary>
    /// <exception cref="ScenarioException">The text is not an expectation (one diagnostic).</exception>
    public static Expectation Parse(string text, SourcePosition position) =>
        TryParse(text, position, out var e, out var d) ? e : throw new ScenarioException([d]);

    /// <summary>Parses <paramref name="text"/>, or returns false and a diagnostic.</summary>
    public static bool TryParse(string text, SourcePosition position,
        [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Expectation? expectation,
        [System.Diagnostics.CodeAnalysis.NotNullWhen(false)] out ScenarioDiagnostic? diagnostic)
    {
        expectation = null;
        diagnostic = null;
        const string Grammar = "expected PATH OP VALUE, e.g. 'vm0.vcpu0.skew_ns.max_abs < 200ms' or 'vm0.clocksource == hpet'";
        int i = 0;

        bool Fail(int at, string message, out ScenarioDiagnostic? d)
        {
            d = ScenarioDiagnostic.At(position.Shift(at), message);
            return false;
        }

        void SkipSpaces()
        {
            while (i < text.Length && char.IsWhiteSpace(text[i]))
            {
                i++;
            }
        }

        SkipSpaces();
        int pathStart = i;
        while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] is '_' or '-' or '.'))
        {
            i++;
        }
        string path = text[pathStart..i];
        if (path.Length == 0)
        {
            return Fail(i, i >= text.Length ? $"empty expectation; {Grammar}" : $"unexpected '{text[i]}' where a result path should start; {Grammar}", out diagnostic);
        }
        if (path.StartsWith('-') || path.Split('.').Any(s => s.Length == 0))
        {
            return Fail(pathStart, $"'{path}' is not a result path (segments separated by single dots); {Grammar}", out diagnostic);
        }

        SkipSpaces();
        int opStart = i;
        ExpectOp? op = null;
        foreach (var (opText, candidate) in Ops)
        {
            if (string.CompareOrdinal(text, i, opText, 0, opText.Length) == 0)
            {
                op = candidate;
                i += opText.Length;
                break;
            }
        }
        if (op is null)
        {
            if (i < text.Length && text[i] == '=')
            {
                return Fail(i, $"'=' is not a comparison; expected '==' (or one of <, <=, >, >=, !=)", out diagnostic);
            }
            return Fail(i, i >= text.Length
                ? $"missing a comparison after '{path}'; expected one of <, <=, >, >=, ==, != and a value"
                : $"unexpected '{text[i]}' after '{path}'; expected one of <, <=, >, >=, ==, != (a path has no spaces)", out diagnostic);
        }

        SkipSpaces();
        int literalStart = i;
        string literal = text[i..].TrimEnd();
        if (literal.Length == 0)
        {
            return Fail(i, $"missing a value after '{OpText(op.Value)}'; expected a number, a number with a unit (200ms) or a word", out diagnostic);
        }

        ExpectValue value;
        string? unit = null;
        bool isWord;
        if (literal[0] is '"' or '\'')
        {
            char quote = literal[0];
            int close = literal.IndexOf(quote, 1);
            if (close < 0)
            {
                return Fail(literalStart, $"unterminated quoted text; expected a closing {quote}", out diagnostic);
            }
            if (close != literal.Length - 1)
            {
                return Fail(literalStart + close + 1, $"unexpected text after the closing {quote}; expected the end of the expectation", out diagnostic);
            }
            value = ExpectValue.Of(literal[1..close]);
            isWord = true;
        }
        else if (char.IsAsciiDigit(literal[0]) || (literal[0] is '+' or '-' or '.' && literal.Length > 1))
        {
            int j = literal[0] is '+' or '-' ? 1 : 0;
            int digitsStart = j;
            while (j < literal.Length && (char.IsAsciiDigit(literal[j]) || literal[j] == '_'
                || (literal[j] == '.' && j + 1 < literal.Length && char.IsAsciiDigit(literal[j + 1]))))
            {
                j++;
            }
            string number = literal[..j];
            string digits = number[digitsStart..];
            if (digits.Length == 0 || !char.IsAsciiDigit(digits[0]) || !char.IsAsciiDigit(digits[^1])
                || digits.Contains("__", StringComparison.Ordinal) || digits.Contains("_.", StringComparison.Ordinal)
                || digits.Contains("._", StringComparison.Ordinal))
            {
                return Fail(literalStart, $"'{literal}' is not a number; expected digits with an optional sign, '.' and unit, e.g. -1.5, 200ms, 5ppm", out diagnostic);
            }
            int unitStart = j;
            while (unitStart < literal.Length && literal[unitStart] == ' ')
            {
                unitStart++;
            }
            string unitText = literal[unitStart..];
            var family = FamilyOf(path);
            decimal factor = 1m;
            if (unitText.Length > 0)
            {
                int unitColumn = literalStart + unitStart;
                if (unitText.Any(char.IsWhiteSpace) || !(char.IsLetter(unitText[0]) || unitText[0] == '%'))
                {
                    return Fail(unitColumn, $"unexpected text '{unitText}' after the number; expected a unit or the end of the expectation", out diagnostic);
                }
                if (unitText[0] is 'e' or 'E' && unitText.Length > 1 && (char.IsAsciiDigit(unitText[1]) || unitText[1] is '+' or '-'))
                {
                    return Fail(unitColumn, $"exponents are not supported ('{literal}'); expected the digits written out", out diagnostic);
                }
                if (family is null)
                {
                    return Fail(unitColumn, $"'{path}' is a plain count, so '{unitText}' does not apply; expected a number without a unit " +
                        "(fields ending in _ns, _ppm, _pct or _cycles take units)", out diagnostic);
                }
                var match = family.Units.FirstOrDefault(u => u.Unit == unitText);
                if (match.Unit is null)
                {
                    string units = string.Join(", ", family.Units.Select(u => u.Unit));
                    return Fail(unitColumn, $"'{unitText}' is not a unit of '{path}' ({family.Name}, kept in {family.FieldUnit}); " +
                        $"expected one of {units} or a plain number", out diagnostic);
                }
                factor = match.Factor;
                unit = unitText;
            }
            string plain = number.Replace("_", "", StringComparison.Ordinal);
            if (!decimal.TryParse(plain, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal mantissa))
            {
                return Fail(literalStart, $"'{number}' is out of range; expected at most 28 significant digits", out diagnostic);
            }
            decimal scaled;
            try
            {
                scaled = mantissa * factor;
            }
            catch (OverflowException)
            {
                return Fail(literalStart, $"'{literal}' is out of range; expected a smaller value", out diagnostic);
            }
            value = ExpectValue.Of((double)scaled);
            isWord = false;
        }
        else if (char.IsAsciiLetter(literal[0]) || literal[0] == '_')
        {
            int bad = literal.AsSpan().IndexOfAnyExcept("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-");
            if (bad >= 0)
            {
                return Fail(literalStart + bad, $"unexpected '{literal[bad]}' in the word '{literal}'; expected letters, digits, '_', '.', ':' or '-' (quote other text)", out diagnostic);
            }
            value = ExpectValue.Of(literal);
            isWord = true;
        }
        else
        {
            return Fail(literalStart, $"unexpected '{literal[0]}'; expected a number, a number with a unit (200ms) or a word", out diagnostic);
        }

        if (isWord && op is not (ExpectOp.Equal or ExpectOp.NotEqual))
        {
            return Fail(opStart, $"a word can only be compared with == or !=; expected a number after '{OpText(op.Value)}'", out diagnostic);
        }

        expectation = new Expectation
        {
            Text = text.Trim(),
            Path = path,
            Op = op.Value,
            Literal = value,
            Unit = unit,
            Position = position,
        };
        return true;
    }

    /// <summary>
    /// Checks the expectation against a run's results: <paramref name="lookup"/> gives the value
    /// of a path, or null if there is none. <paramref name="knownPaths"/> (optional) are the
    /// paths that exist, used to suggest the nearest ones when the path names nothing.
    /// </summary>
    public ExpectationResult Evaluate(Func<string, ExpectValue?> lookup, IEnumerable<string>? knownPaths = null)
    {
        ArgumentNullException.ThrowIfNull(lookup);
        var actual = lookup(Path);
        if (actual is null)
        {
            string message = $"{Text}: no result is named '{Path}'";
            if (knownPaths is not null)
            {
                string hint = Suggestions.Hint(Path, knownPaths, 3);
                message += hint.Length > 0 ? hint : "; expected a path of summary.json such as vm0.vcpu0.skew_ns.max_abs";
            }
            return new ExpectationResult(this, null, false, message);
        }

        string expected = $"expected {OpText(Op)} {Literal}";
        if (Literal.Text is { } word)
        {
            if (actual.Text is null)
            {
                return new ExpectationResult(this, actual, false, $"{Text}: '{Path}' is the number {actual}, not a word; {expected}");
            }
            bool equal = string.Equals(actual.Text, word, StringComparison.Ordinal);
            bool passed = Op == ExpectOp.Equal ? equal : !equal;
            return new ExpectationResult(this, actual, passed, $"{Text}: {Path} is {actual.Text}" + (passed ? "" : $"; {expected}"));
        }

        if (actual.Number is not { } number)
        {
            return new ExpectationResult(this, actual, false, $"{Text}: '{Path}' is the word '{actual.Text}', not a number; {expected}");
        }
        double limit = Literal.Number!.Value;
        bool held = !double.IsNaN(number) && Op switch
        {
            ExpectOp.Less => number < limit,
            ExpectOp.LessOrEqual => number <= limit,
            ExpectOp.Greater => number > limit,
            ExpectOp.GreaterOrEqual => number >= limit,
            ExpectOp.Equal => number == limit,
            _ => number != limit,
        };
        string unitNote = FieldUnitOf(Path) is { } u ? " " + u : "";
        return new ExpectationResult(this, actual, held, $"{Text}: {Path} is {actual}{unitNote}" + (held ? "" : $"; {expected}{unitNote}"));
    }

    /// <summary>The expectation as written.</summary>
    public override string ToString() => Text;
}

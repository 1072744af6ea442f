namespace TscSim.Core.Scenarios;

/// <summary>
/// Where something was written: a file (or <c>--set path=value</c> for a command-line override),
/// 1-based line and 1-based column. <see cref="None"/> marks values that were not read from text.
/// </summary>
public readonly record struct SourcePosition(string File, int Line, int Column)
{
    /// <summary>No position (a value built in code, not read from a file).</summary>
    public static SourcePosition None { get; } = new("", 0, 0);

    /// <summary>Whether this position names a place in a text.</summary>
    public bool IsKnown => Line > 0;

    /// <summary>The same position moved <paramref name="columns"/> columns to the right.</summary>
    public SourcePosition Shift(int columns) => this with { Column = Column + columns };

    /// <summary><c>file:line:col</c>.</summary>
    public override string ToString() => $"{File}:{Line}:{Column}";
}

/// <summary>
/// One problem in a scenario: where (1-based line and column) and what is wrong, including
/// what was expected. Rendered <c>file:line:col: message</c>.
/// </summary>
public sealed record ScenarioDiagnostic(string File, int Line, int Column, string Message)
{
    /// <summary>The diagnostic at <paramref name="position"/>.</summary>
    public static ScenarioDiagnostic At(SourcePosition position, string message) =>
        new(position.File, position.Line, position.Column, message);

    /// <summary>Where the problem is.</summary>
    public SourcePosition Position => new(File, Line, Column);

    /// <summary><c>file:line:col: message</c>.</summary>
    public override string ToString() => $"{File}:{Line}:{Column}: {Message}";
}

/// <summary>
/// A scenario that could not be loaded. <see cref="Diagnostics"/> holds every problem found in
/// the file (not only the first), in file order; <see cref="Exception.Message"/> is them
/// rendered one per line.
/// </summary>
public sealed class ScenarioException : Exception
{
    /// <summary>Wraps <paramref name="diagnostics"/> (at least one).</summary>
    public ScenarioException(IReadOnlyList<ScenarioDiagnostic> diagnostics)
        : base(string.Join(Environment.NewLine, diagnostics))
    {
        if (diagnostics.Count == 0)
        {
            throw new ArgumentException("A scenario exception needs at least one diagnostic.", nameof(diagnostics));
        }
        Diagnostics = diagnostics;
    }

    /// <summary>Every problem found, in file order.</summary>
    public IReadOnlyList<ScenarioDiagnostic> Diagnostics { get; }

    /// <summary>The file is well formed but the VMM or hypervisor refuses the VM it describes (e.g. QEMU or KVM refusing a <c>tsc_khz</c>).</summary>
    public bool Refused { get; init; }
}

/// <summary>
/// A <see cref="SourcePosition"/> that takes no part in the equality of the record holding it
/// (two scenarios that say the same thing are equal wherever they were written); unset reads
/// as <see cref="SourcePosition.None"/>.
/// </summary>
internal readonly struct PositionSlot(SourcePosition value) : IEquatable<PositionSlot>
{
    private readonly SourcePosition _value = value;

    public SourcePosition Value => _value.File is null ? SourcePosition.None : _value;

    public bool Equals(PositionSlot other) => true;

    public override bool Equals(object? obj) => obj is PositionSlot;

    public override int GetHashCode() => 0;
}

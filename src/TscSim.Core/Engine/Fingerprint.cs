using System.Runtime.CompilerServices;

namespace TscSim.Core.Engine;

/// <summary>
/// A 64-bit hash over every executed event's (time, band, kind, subject) and every
/// result-bearing value (clock and TSC reads, exits, faults, trap decisions), in execution
/// order: two runs with the same fingerprint executed the same events at the same picoseconds
/// and produced the same results (up to hash collisions). Printed as 16 lower-case hex digits.
/// Default: the value before any event.
/// </summary>
/// <remarks>
/// Definition (fixed: baselines in tests/fingerprints.csv depend on it). Start with
/// h = 0xCBF29CE484222325. Fold each 64-bit word w by
/// h = (h XOR w) × 0x9E3779B97F4A7C15 mod 2^64, then h = h XOR (h &gt;&gt; 29).
/// For each event fold three words: w1 = time in picoseconds; w2 = (band &lt;&lt; 32) |
/// FNV-1a-32(UTF-8 kind name); w3 = subject as an unsigned 32-bit value. Result values are
/// folded when they happen (<see cref="Simulator.FoldResult"/>), each as a tag word
/// (<see cref="ResultWord.Tag"/>) followed by its values, as listed in <see cref="ResultWord"/>.
/// Each step is a bijection of h for a given word, so nothing folded is ever lost from the hash.
/// </remarks>
public readonly struct Fingerprint : IEquatable<Fingerprint>
{
    internal const ulong Initial = 0xCBF29CE484222325UL;
    private const ulong Multiplier = 0x9E3779B97F4A7C15UL;

    public Fingerprint(ulong value) => Value = value;

    /// <summary>The hash value.</summary>
    public ulong Value { get; }

    /// <summary>The fingerprint of a run that executed no event.</summary>
    public static Fingerprint Empty => new(Initial);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Fold(ulong h, ulong word)
    {
        h = unchecked((h ^ word) * Multiplier);
        return h ^ (h >> 29);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong FoldEvent(ulong h, long timePs, ulong bandAndKind, int subject) =>
        Fold(Fold(Fold(h, unchecked((ulong)timePs)), bandAndKind), unchecked((uint)subject));

    /// <summary>The band-and-kind word of the definition for a kind name and band.</summary>
    internal static ulong BandAndKindWord(EventBand band, string kindName) =>
        ((ulong)band << 32) | StableHash.Fnv1a32(kindName);

    /// <summary>Parses 16 hex digits as printed by <see cref="ToString"/>.</summary>
    public static Fingerprint Parse(string hex) =>
        new(ulong.Parse(hex, System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture));

    public bool Equals(Fingerprint other) => Value == other.Value;
    public override bool Equals(object? obj) => obj is Fingerprint f && Equals(f);
    public override int GetHashCode() => Value.GetHashCode();
    public static bool operator ==(Fingerprint a, Fingerprint b) => a.Value == b.Value;
    public static bool operator !=(Fingerprint a, Fingerprint b) => a.Value != b.Value;

    /// <summary>16 lower-case hex digits.</summary>
    public override string ToString() => Value.ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>Hashes of names that are the same on every machine and every run (unlike <c>string.GetHashCode</c>).</summary>
public static class StableHash
{
    /// <summary>32-bit FNV-1a over the UTF-8 bytes of <paramref name="text"/>.</summary>
    public static uint Fnv1a32(string text)
    {
        uint h = 2166136261u;
        foreach (byte b in System.Text.Encoding.UTF8.GetBytes(text))
        {
            h = unchecked((h ^ b) * 16777619u);
        }
        return h;
    }

    /// <summary>64-bit FNV-1a over the UTF-8 bytes of <paramref name="text"/>.</summary>
    public static ulong Fnv1a64(string text)
    {
        ulong h = 14695981039346656037UL;
        foreach (byte b in System.Text.Encoding.UTF8.GetBytes(text))
        {
            h = unchecked((h ^ b) * 1099511628211UL);
        }
        return h;
    }
}

/// <summary>
/// The tags of result values folded into the <see cref="Fingerprint"/> and what follows each
/// (one word each, two's complement for signed values). The tag word is
/// <c>(tag &lt;&lt; 56) | ((detail &amp; 0xFFFFFF) &lt;&lt; 32) | (uint)subject</c>.
/// </summary>
public static class ResultWord
{
    /// <summary>A guest clock read (subject: vCPU id; detail: exits during the read), then: true time (ps) at its end, guest nanoseconds, cycles spent.</summary>
    public const byte ClockRead = 1;

    /// <summary>A guest TSC read (subject: vCPU id; detail: 1 if it exited), then: true time (ps), TSC value, cycles spent.</summary>
    public const byte TscRead = 2;

    /// <summary>A VM exit (subject: vCPU id; detail: VMX exit reason or SVM exit code), then: cycles (round trip + handler).</summary>
    public const byte Exit = 3;

    /// <summary>A guest fault that stopped a vCPU (subject: vCPU id; detail: the fault kind), then: true time (ps).</summary>
    public const byte Fault = 4;

    /// <summary>A change of a VM's trapping state (subject: VM index; detail: 1 if trapping), then: true time (ps), FNV-1a-64 of the reason.</summary>
    public const byte Trapping = 5;

    /// <summary>An interrupt delivered to a vCPU (subject: vCPU id; detail: vector | source &lt;&lt; 8), then: true time (ps) of delivery.</summary>
    public const byte Interrupt = 6;

    /// <summary>The tag word of one result value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Tag(byte tag, int subject, int detail) =>
        ((ulong)tag << 56) | ((ulong)(uint)(detail & 0xFFFFFF) << 32) | unchecked((uint)subject);
}

using System.Runtime.CompilerServices;

namespace TscSim.Core.Engine;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
/// OOPSLA 2014; constants as in Vigna's public-domain reference splitmix64.c). Used only to
/// derive stream seeds: its outputs fill a xoshiro256** state.
/// </summary>
public struct SplitMix64
{
    private ulong _state;

    public SplitMix64(ulong seed) => _state = seed;

    public ulong Next()
    {
        unchecked
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}

/// <summary>
/// One named deterministic random stream: xoshiro256** 1.0 (Blackman and Vigna, "Scrambled
/// linear pseudorandom number generators", 2018). Owned by one model component; never shared
/// between threads or components, so adding a stream never changes another stream's values.
/// </summary>
public sealed class RandomStream
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>A stream with the given state (not all zero).</summary>
    public RandomStream(ulong s0, ulong s1, ulong s2, ulong s3, string name = "")
    {
        if ((s0 | s1 | s2 | s3) == 0)
        {
            throw new ArgumentException("xoshiro256** state must not be all zero.");
        }
        (_s0, _s1, _s2, _s3) = (s0, s1, s2, s3);
        Name = name;
    }

    /// <summary>The stream's name (for diagnostics).</summary>
    public string Name { get; }

    /// <summary>The next 64 uniformly distributed bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong NextUInt64()
    {
        unchecked
        {
            ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
            ulong t = _s1 << 17;
            _s2 ^= _s0;
            _s3 ^= _s1;
            _s1 ^= _s2;
            _s0 ^= _s3;
            _s2 ^= t;
            _s3 = ulong.RotateLeft(_s3, 45);
            return result;
        }
    }

    /// <summary>
    /// A uniform integer in [0, <paramref name="bound"/>), without bias (Lemire, "Fast random
    /// integer generation in an interval", ACM TOMACS 2019: multiply-shift with rejection).
    /// </summary>
    public ulong NextUInt64(ulong bound)
    {
        if (bound == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(bound), "The bound must be positive.");
        }
        unchecked
        {
            UInt128 m = (UInt128)NextUInt64() * bound;
            ulong low = (ulong)m;
            if (low < bound)
            {
                ulong threshold = (0 - bound) % bound;
                while (low < threshold)
                {
                    m = (UInt128)NextUInt64() * bound;
                    low = (ulong)m;
                }
            }
            return (ulong)(m >> 64);
        }
    }

    /// <summary>A uniform integer in [<paramref name="min"/>, <paramref name="maxExclusive"/>).</summary>
    public long NextInt64(long min, long maxExclusive)
    {
        if (maxExclusive <= min)
        {
            throw new ArgumentOutOfRangeException(nameof(maxExclusive), "The range is empty.");
        }
        ulong span = unchecked((ulong)(maxExclusive - min));
        return unchecked(min + (long)NextUInt64(span));
    }

    /// <summary>True with probability 1/2.</summary>
    public bool NextBool() => (NextUInt64() >> 63) != 0;
}

/// <summary>
/// The named random streams of one run. A stream's seed depends only on (run seed, stream
/// name): SplitMix64 seeded with <c>mix(seed) XOR FNV-1a-64(name)</c> (mix = one SplitMix64
/// output for <paramref name="seed"/>) yields the four state words of its xoshiro256**.
/// </summary>
public sealed class RandomStreams(ulong seed)
{
    private readonly HashSet<string> _opened = new(StringComparer.Ordinal);

    /// <summary>The run seed.</summary>
    public ulong Seed { get; } = seed;

    /// <summary>
    /// Opens the stream called <paramref name="name"/>. Each name can be opened once per run,
    /// so two components can never share (and silently couple through) one stream.
    /// </summary>
    public RandomStream Open(string name)
    {
        if (!_opened.Add(name))
        {
            throw new InvalidOperationException($"Random stream '{name}' is already open in this run; give each component its own stream name.");
        }
        return Derive(Seed, name);
    }

    /// <summary>The stream for (<paramref name="seed"/>, <paramref name="name"/>), as <see cref="Open"/> makes it.</summary>
    public static RandomStream Derive(ulong seed, string name)
    {
        ulong mixedSeed = new SplitMix64(seed).Next();
        var sm = new SplitMix64(mixedSeed ^ StableHash.Fnv1a64(name));
        ulong s0 = sm.Next(), s1 = sm.Next(), s2 = sm.Next(), s3 = sm.Next();
        if ((s0 | s1 | s2 | s3) == 0)
        {
            s0 = 1;
        }
        return new RandomStream(s0, s1, s2, s3, name);
    }
}

namespace TscSim.Core.Text;

/// <summary>
/// "Did you mean" hints, one rule for every reader of user text (scenario keys and names, sweep
/// files, expectation paths, assembler mnemonics and labels): the candidates nearest to a
/// misspelt word by edit distance.
/// </summary>
/// <remarks>
/// The rule: a candidate is suggested when its distance to the word, ignoring case, is at most
/// one edit per three characters of the word and at least one edit (<c>max(1, length / 3)</c>:
/// 1 for words of up to 5 characters, 2 for 6 to 8, ...). Nearest first; among equally near
/// candidates, the one listed first. The distance is the optimal string alignment distance
/// (insertions, deletions, substitutions and swaps of two adjacent characters, one edit each), so
/// <c>vray</c> is one edit from <c>vary</c>. A short word gets no far-fetched hint: <c>cpu</c> is
/// two edits from <c>vcpus</c>, and is not offered it.
/// </remarks>
internal static class Suggestions
{
    /// <summary>The largest distance at which a candidate is suggested for <paramref name="word"/>.</summary>
    public static int Limit(string word)
    {
        ArgumentNullException.ThrowIfNull(word);
        return Math.Max(1, word.Length / 3);
    }

    /// <summary>Up to <paramref name="max"/> candidates within <see cref="Limit"/>, nearest first, ties in candidate order.</summary>
    public static IReadOnlyList<string> Nearest(string word, IEnumerable<string> candidates, int max = 1)
    {
        int limit = Limit(word);
        string lower = word.ToLowerInvariant();
        return candidates
            .Distinct(StringComparer.Ordinal)
            .Select((c, i) => (Candidate: c, Index: i, Distance: Distance(lower, c.ToLowerInvariant())))
            .Where(x => x.Distance <= limit)
            .OrderBy(x => x.Distance).ThenBy(x => x.Index)
            .Take(max)
            .Select(x => x.Candidate)
            .ToList();
    }

    /// <summary>The nearest candidate, or null.</summary>
    public static string? Best(string word, IEnumerable<string> candidates) =>
        Nearest(word, candidates).FirstOrDefault();

    /// <summary>
    /// The separator between "what is wrong" and "expected ...": <c>; did you mean 'x'? </c>
    /// when a candidate is near <paramref name="word"/>, else <c>; </c>.
    /// </summary>
    public static string DidYouMean(string word, IEnumerable<string> candidates) =>
        Best(word, candidates) is { } best ? $"; did you mean '{best}'? " : "; ";

    /// <summary>
    /// A hint that ends a message: <c>; did you mean 'a'?</c> (or <c>'a' or 'b'</c>, up to
    /// <paramref name="max"/> candidates), or the empty string when no candidate is near.
    /// </summary>
    public static string Hint(string word, IEnumerable<string> candidates, int max = 1)
    {
        var near = Nearest(word, candidates, max);
        return near.Count == 0 ? "" : $"; did you mean {string.Join(" or ", near.Select(n => $"'{n}'"))}?";
    }

    /// <summary>Optimal string alignment distance (Levenshtein plus adjacent transpositions), case-sensitive.</summary>
    public static int Distance(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++)
        {
            d[i, 0] = i;
        }
        for (int j = 0; j <= b.Length; j++)
        {
            d[0, j] = j;
        }
        for (int i = 1; i <= a.Length; i++)
        {
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                {
                    d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
                }
            }
        }
        return d[a.Length, b.Length];
    }
}

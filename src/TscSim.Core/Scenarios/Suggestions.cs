namespace TscSim.Core.Scenarios;

/// <summary>"Did you mean" hints: the candidates nearest to a misspelt word by edit distance.</summary>
internal static class Suggestions
{
    /// <summary>
    /// Up to <paramref name="max"/> candidates within a distance that scales with the word's
    /// length (at most a third of it, at least 2), nearest first, ties in candidate order.
    /// </summary>
    public static IReadOnlyList<string> Nearest(string word, IEnumerable<string> candidates, int max = 1)
    {
        int limit = Math.Max(2, word.Length / 3);
        return candidates
            .Distinct(StringComparer.Ordinal)
            .Select((c, i) => (Candidate: c, Index: i, Distance: Distance(word.ToLowerInvariant(), c.ToLowerInvariant())))
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

    /// <summary>Optimal string alignment distance (Levenshtein plus adjacent transpositions).</summary>
    public static int Distance(string a, string b)
    {
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

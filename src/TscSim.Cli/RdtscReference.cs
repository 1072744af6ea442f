namespace TscSim.Cli;

/// <summary>
/// The real RDTSC rate of this machine for <c>tscsim bench</c>: the tiny C loop in
/// tests/TscSim.Benchmarks/reference/rdtsc (built by its build.sh with gcc -O2), run as a child
/// process in the same bench run as TscSim's non-exiting RDTSC loop, so the two see the same
/// machine load. Wall-clock timing lives here, at the edge, never in the model.
/// </summary>
internal static class RdtscReference
{
    /// <summary>Where the binary is looked for below a repository root.</summary>
    public const string RelativePath = "tests/TscSim.Benchmarks/reference/rdtsc/rdtsc_rate";

    /// <summary>The environment variable that names the binary explicitly.</summary>
    public const string Variable = "TSCSIM_RDTSC_REFERENCE";

    /// <summary>
    /// The binary: <c>$TSCSIM_RDTSC_REFERENCE</c> if set, else <see cref="RelativePath"/> under the
    /// current folder or one of its parents, else under the tscsim binary's folder or one of its
    /// parents. Null when none exists.
    /// </summary>
    public static string? Find() => ReferenceBinary.Find(RelativePath, Variable);

    /// <summary>
    /// The median real RDTSC rate (per second) of <paramref name="rounds"/> runs of the reference,
    /// or null when it is missing or fails (e.g. not x86-64).
    /// </summary>
    public static double? RatePerSecond(int rounds, long iterations = 50_000_000)
    {
        string? binary = Find();
        if (binary is null)
        {
            return null;
        }
        var rates = new double[Math.Max(rounds, 1)];
        for (int r = 0; r < rates.Length; r++)
        {
            double? rate = Round(binary, iterations);
            if (rate is null)
            {
                return null;
            }
            rates[r] = rate.Value;
        }
        Array.Sort(rates);
        return rates[rates.Length / 2];
    }

    private static double? Round(string binary, long iterations) => ReferenceBinary.RunForThirdField(binary, iterations);
}

using System.Diagnostics;
using System.Globalization;

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
    public static string? Find()
    {
        string? explicitPath = Environment.GetEnvironmentVariable(Variable);
        if (!string.IsNullOrEmpty(explicitPath))
        {
            return File.Exists(explicitPath) ? Path.GetFullPath(explicitPath) : null;
        }
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, RelativePath);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }
        return null;
    }

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

    private static double? Round(string binary, long iterations)
    {
        var start = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(iterations.ToString(CultureInfo.InvariantCulture));
        try
        {
            using var process = Process.Start(start);
            if (process is null)
            {
                return null;
            }
            string text = process.StandardOutput.ReadToEnd();
            process.StandardError.ReadToEnd();
            process.WaitForExit();
            string[] fields = text.Trim().Split(' ');
            if (process.ExitCode != 0 || fields.Length != 3
                || !double.TryParse(fields[2], NumberStyles.Float, CultureInfo.InvariantCulture, out double rate))
            {
                return null;
            }
            return rate;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}

using System.Diagnostics;
using System.Globalization;

namespace TscSim.Cli;

/// <summary>
/// The native reference programs of <c>tscsim bench</c> (tests/TscSim.Benchmarks/reference: the
/// C++ hold loop and the C RDTSC loop): finding a built binary and running one round of it as a
/// child process, so a reference and TscSim see the same machine load in one bench run.
/// Wall-clock timing lives in them and here, at the edge, never in the model.
/// </summary>
internal static class ReferenceBinary
{
    /// <summary>
    /// The binary: <c>$<paramref name="variable"/></c> if set (null if that file is missing), else
    /// <paramref name="relativePath"/> under the current folder or one of its parents, else under
    /// the tscsim binary's folder or one of its parents (a build in the repository's bin/ folder
    /// finds the repository's copy). Null when none exists.
    /// </summary>
    public static string? Find(string relativePath, string variable)
    {
        string? explicitPath = Environment.GetEnvironmentVariable(variable);
        if (!string.IsNullOrEmpty(explicitPath))
        {
            return File.Exists(explicitPath) ? Path.GetFullPath(explicitPath) : null;
        }
        return FindUp(relativePath);
    }

    /// <summary>
    /// <paramref name="relativePath"/> under the current folder or one of its parents, else under
    /// the tscsim binary's folder or one of its parents; null when none exists.
    /// </summary>
    public static string? FindUp(string relativePath)
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, relativePath);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }
        return null;
    }

    /// <summary>
    /// Runs <paramref name="binary"/> once with <paramref name="arguments"/>; both references print
    /// one line of three fields whose third is the figure (seconds or a rate). Null if it could not
    /// start, failed, or printed something else.
    /// </summary>
    public static double? RunForThirdField(string binary, params long[] arguments)
    {
        var start = new ProcessStartInfo(binary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (long argument in arguments)
        {
            start.ArgumentList.Add(argument.ToString(CultureInfo.InvariantCulture));
        }
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
                || !double.TryParse(fields[2], NumberStyles.Float, CultureInfo.InvariantCulture, out double value))
            {
                return null;
            }
            return value;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }
}

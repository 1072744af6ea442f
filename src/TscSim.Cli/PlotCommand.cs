using TscSim.Plots;
using TscSim.Plots.Input;

namespace TscSim.Cli;

/// <summary><c>tscsim plot DIR [--out DIR]</c>: the figures of a results or sweep folder as PNG and SVG.</summary>
public static class PlotCommand
{
    /// <summary>Default output folder, inside the plotted folder.</summary>
    public const string DefaultOutFolder = "plots";

    /// <summary>
    /// Draws the figures of <paramref name="dir"/> into <paramref name="outDir"/> (default
    /// <c>DIR/plots/</c>) and prints each file written, then each figure skipped for want of data
    /// (<c>skipped NAME: no data: REASON</c>): 0 on success, 2 on bad input (a message
    /// on <paramref name="error"/>, no stack trace, no figure written).
    /// </summary>
    public static int Run(string dir, string? outDir, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        if (dir.Trim().Length == 0 || outDir?.Trim().Length == 0)
        {
            error.WriteLine("tscsim plot: an empty path was given; expected a results or sweep folder (and --out DIR)");
            return ExitCodes.BadInput;
        }
        string target = outDir ?? Path.Combine(dir, DefaultOutFolder);
        PlotOutcome outcome;
        try
        {
            outcome = Plotter.PlotAll(dir, target);
        }
        catch (PlotInputException ex)
        {
            error.WriteLine(ex.Message);
            return ExitCodes.BadInput;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            error.WriteLine($"tscsim plot: cannot write the figures to {target}: {ex.Message}");
            return ExitCodes.BadInput;
        }
        foreach (string file in outcome.Files)
        {
            output.WriteLine(file);
        }
        foreach (SkippedFigure skipped in outcome.Skipped)
        {
            output.WriteLine(skipped.ToString());
        }
        return ExitCodes.Success;
    }
}

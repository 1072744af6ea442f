namespace TscSim.Plots.Input;

/// <summary>
/// A folder or file that cannot be plotted: missing, malformed, or inconsistent. The message
/// names the file, and where it can the line and column (<c>FILE:LINE:COL: what is wrong</c>);
/// the CLI prints it as is and exits 2.
/// </summary>
public sealed class PlotInputException : Exception
{
    /// <summary>A problem described by <paramref name="message"/>.</summary>
    public PlotInputException(string message) : base(message)
    {
    }

    /// <summary>A problem described by <paramref name="message"/>, caused by <paramref name="inner"/>.</summary>
    public PlotInputException(string message, Exception inner) : base(message, inner)
    {
    }

    /// <summary>A problem at <paramref name="line"/>:<paramref name="column"/> (1-based) of <paramref name="file"/>.</summary>
    public static PlotInputException At(string file, long line, long column, string message) =>
        new($"{file}:{line}:{column}: {message}");
}

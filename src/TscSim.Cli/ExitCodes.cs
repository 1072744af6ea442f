namespace TscSim.Cli;

/// <summary>The exit codes of <c>tscsim</c> (a public contract: scripts and CI depend on them).</summary>
public static class ExitCodes
{
    /// <summary>Success, and every expectation held.</summary>
    public const int Success = 0;

    /// <summary>The run finished but an expectation failed.</summary>
    public const int ExpectationFailed = 1;

    /// <summary>Bad input or usage, or a verb that is not built yet; a message on stderr, no results left half-written.</summary>
    public const int BadInput = 2;

    /// <summary>Interrupted; partial results are marked <c>"complete": false</c>.</summary>
    public const int Interrupted = 3;

    /// <summary>
    /// An internal error: a bug in TscSim (an exception nobody expected). One line on stderr says
    /// so and names the file with the details (<c>tscsim-crash-PID-N.txt</c> in the temporary
    /// folder). 70 is <c>EX_SOFTWARE</c> of BSD's sysexits.h.
    /// </summary>
    public const int InternalError = 70;
}

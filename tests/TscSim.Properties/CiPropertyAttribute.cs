using FsCheck.Xunit;

namespace TscSim.Properties;

/// <summary>
/// An FsCheck property whose run is reproducible in CI: when the environment variable <c>CI</c> is
/// <c>true</c> (as the project's CI sets it) and <c>TSCSIM_PROPERTY_RANDOM</c> is not set, every
/// property starts from <see cref="CiReplay"/>, a seed FsCheck printed; elsewhere (a developer's
/// machine, a nightly exploratory job) each run draws a new seed, so the search goes on.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public class CiPropertyAttribute : PropertyAttribute
{
    /// <summary>The seed CI starts from (as FsCheck prints seeds).</summary>
    public const string CiReplay = "(11256243734285863327,2591472636192356391)";

    public CiPropertyAttribute()
    {
        if (FixedSeed)
        {
            Replay = CiReplay;
        }
    }

    /// <summary>Whether this run uses <see cref="CiReplay"/>.</summary>
    public static bool FixedSeed =>
        string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase)
        && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("TSCSIM_PROPERTY_RANDOM"));
}

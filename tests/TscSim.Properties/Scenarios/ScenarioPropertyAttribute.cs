using System.Globalization;
using FsCheck.Xunit;

namespace TscSim.Properties.Scenarios;

/// <summary>
/// An FsCheck property over whole scenarios, run <c>maxTest</c> times scaled by the environment
/// variable <c>TSCSIM_PROPERTY_SCALE</c> (a positive number, default 1): CI runs the default
/// sizes in a couple of minutes, from a fixed seed (<see cref="CiPropertyAttribute"/>); a nightly
/// job can set 10 (and <c>TSCSIM_PROPERTY_RANDOM=1</c>) to search ten times as long.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ScenarioPropertyAttribute : CiPropertyAttribute
{
    /// <summary>The environment variable that scales every scenario property's number of tests.</summary>
    public const string ScaleVariable = "TSCSIM_PROPERTY_SCALE";

    /// <summary>A property checked on <paramref name="maxTest"/> generated scenarios (times the scale).</summary>
    public ScenarioPropertyAttribute(int maxTest)
    {
        BaseMaxTest = maxTest;
        MaxTest = Math.Max(1, (int)Math.Round(maxTest * Scale));
    }

    /// <summary>The number of tests at scale 1.</summary>
    public int BaseMaxTest { get; }

    /// <summary>The scale from <see cref="ScaleVariable"/>, 1 when unset or not a positive number.</summary>
    public static double Scale =>
        double.TryParse(Environment.GetEnvironmentVariable(ScaleVariable), NumberStyles.Float, CultureInfo.InvariantCulture, out double s) && s > 0 ? s : 1;
}

using TscSim.Core.Engine;
using TscSim.Core.Time;

namespace TscSim.Core.Hardware;

/// <summary>
/// A quartz crystal: a nominal rate scaled by an error in ppb that may walk slowly
/// (<see cref="DriftWalk"/>). Every counter driven by it runs at nominal × (1 + error).
/// </summary>
public sealed class Crystal
{
    private readonly DriftWalk? _walk;
    private readonly RandomStream? _steps;

    internal Crystal(string name, Ppm baseError, DriftWalk? walk, RandomStream? steps)
    {
        Name = name;
        BaseError = baseError;
        Error = baseError;
        _walk = walk;
        _steps = steps;
    }

    /// <summary>E.g. <c>platform</c> or <c>socket1</c>.</summary>
    public string Name { get; }

    /// <summary>The error at the start of the run.</summary>
    public Ppm BaseError { get; }

    /// <summary>The error now.</summary>
    public Ppm Error { get; private set; }

    /// <summary>A counter nominally at <paramref name="nominal"/> driven by this crystal runs at this rate now.</summary>
    public Frequency Drive(Frequency nominal) => nominal.WithDrift(Error);

    /// <summary>Takes one random-walk step; returns false when the crystal does not walk.</summary>
    internal bool Step()
    {
        if (_walk is null || _steps is null)
        {
            return false;
        }
        long step = _walk.Step.PartsPerBillion;
        long delta = step == 0 ? 0 : _steps.NextInt64(-step, step + 1);
        long lo = Math.Max(BaseError.PartsPerBillion - _walk.Limit.PartsPerBillion, -999_999_999L); // never stop or reverse
        long hi = BaseError.PartsPerBillion + _walk.Limit.PartsPerBillion;
        Error = Ppm.FromPartsPerBillion(Math.Clamp(Error.PartsPerBillion + delta, lo, hi));
        return true;
    }
}

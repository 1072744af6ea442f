using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>
/// The TSC a trapping hypervisor hands out: a base value plus the hypervisor's reference clock
/// (the host monotonic clock, which drifts with the platform crystal) since the base, at the
/// VM's rate, and never at or below the last value given to any vCPU of the VM, so it strictly
/// increases VM-wide whatever the host TSCs do (Xen's <c>pv_soft_rdtsc</c>,
/// xen/arch/x86/time.c, returns at least the last value + 1; docs/model.md "Emulated TSC").
/// </summary>
public sealed class EmulatedTsc
{
    private readonly Vm _vm;
    private TscValue _base;      // guest TSC ticks at _baseNs
    private long _baseNs;        // host monotonic ns of the base
    private TscValue _last;      // the last value handed out (meaningful when _given)
    private bool _given;         // a value was handed out since the guard was last forgotten

    internal EmulatedTsc(Vm vm) => _vm = vm;

    /// <summary>Restarts the emulation from <paramref name="value"/> at <paramref name="at"/>; the guard is forgotten too.</summary>
    internal void Restart(SimTime at, TscValue value)
    {
        Rebase(at, value);
        _given = false;
    }

    /// <summary>Continues from <paramref name="value"/> at <paramref name="at"/> (e.g. at a new rate), keeping the guard.</summary>
    internal void Rebase(SimTime at, TscValue value)
    {
        _base = value;
        _baseNs = _vm.Host.Monotonic.NanosecondsAt(at);
    }

    /// <summary>Forgets the last value handed out (a restore: the next value need not exceed it).</summary>
    internal void ForgetGuard() => _given = false;

    /// <summary>The emulation's value at host ns <paramref name="hostNs"/>, without the guard (for pvclock parameters).</summary>
    public TscValue AtNs(long hostNs) =>
        unchecked(_base + (long)ExactMath.FloorDiv((Int128)(hostNs - _baseNs) * _vm.VirtualTscRate.Millihertz, 1_000_000_000_000));

    /// <summary>What <see cref="Read"/> would return at <paramref name="at"/>, without handing it out.</summary>
    public TscValue Peek(SimTime at)
    {
        TscValue value = AtNs(_vm.Host.Monotonic.NanosecondsAt(at));
        return _given && value - _last <= 0 ? _last + 1 : value;
    }

    /// <summary>Hands out the emulated TSC at <paramref name="at"/> (an exiting time read's handler instant).</summary>
    public TscValue Read(SimTime at)
    {
        _last = Peek(at);
        _given = true;
        return _last;
    }
}

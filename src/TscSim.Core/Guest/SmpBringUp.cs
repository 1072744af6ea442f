using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// SMP bring-up as the boot CPU drives it (Linux arch/x86/kernel/smpboot.c): the application
/// processors come online one by one, each paired with the boot CPU for the TSC warp test
/// (arch/x86/kernel/tsc_sync.c <c>check_tsc_sync_source</c> / <c>check_tsc_warp</c>, run as
/// guest code); a warp marks the TSC unstable.
/// </summary>
internal sealed class SmpBringUp
{
    /// <summary>check_tsc_warp's timeout for a vCPU without online siblings (each vCPU is its own core here), ms.</summary>
    public const int WarpTestMilliseconds = 20;

    private readonly GuestKernel _kernel;
    private readonly Vcpu[] _vcpus;
    private readonly long _nrWarpsAddress, _maxWarpAddress, _lastTscAddress;  // the warp test's shared variables
    private int _nextAp;   // the AP being brought online (0 before the first)
    private int _pairs;    // warp tests started so far

    public SmpBringUp(GuestKernel kernel, Vcpu[] vcpus, GuestProgram program)
    {
        _kernel = kernel;
        _vcpus = vcpus;
        _nrWarpsAddress = program.AddressOf("__k_nr_warps");
        _maxWarpAddress = program.AddressOf("__k_max_warp");
        _lastTscAddress = program.AddressOf("__k_last_tsc");
    }

    /// <summary>Warps the warp test measured: (target vCPU, warps, largest warp in cycles).</summary>
    public List<(int Vcpu, long Warps, long MaxWarpCycles)> WarpTests { get; } = [];

    /// <summary>
    /// Brings the next AP online at <paramref name="at"/>: both vCPUs get the warp test's
    /// timeout (20 ms of TSC) and rendezvous count; rbx tells the BSP 2 (all online), 1 (run the
    /// warp test) or 0 (no test).
    /// </summary>
    public void Next(Vcpu bsp, SimTime at)
    {
        _nextAp++;
        if (_nextAp >= _vcpus.Length)
        {
            bsp.SetRegister(Registers.Rbx, 2);
            return;
        }
        Vcpu ap = _vcpus[_nextAp];
        bool warp = _kernel.Profile.WarpTest && _kernel.TscUnstable is null && _kernel.TscKhz > 0;
        long timeout = _kernel.TscKhz * WarpTestMilliseconds;
        if (warp)
        {
            _pairs++;
        }
        foreach (var cpu in new[] { bsp, ap })
        {
            cpu.SetRegister(Registers.Rcx, timeout);
            cpu.SetRegister(Registers.R13, 2L * _pairs);
        }
        ap.SetRegister(Registers.R12, warp ? 1 : 0);
        bsp.SetRegister(Registers.Rbx, warp ? 1 : 0);
        ap.Wake(at);
    }

    /// <summary>The end of one pair's warp test: records it, resets the shared variables, and marks the TSC unstable on a warp.</summary>
    public void Result(SimTime at)
    {
        SharedMemory shared = _vcpus[0].Shared;
        long warps = shared.ReadQword(_nrWarpsAddress);
        long max = shared.ReadQword(_maxWarpAddress);
        shared.WriteQword(_nrWarpsAddress, 0);
        shared.WriteQword(_maxWarpAddress, 0);
        shared.WriteQword(_lastTscAddress, 0); // check_tsc_sync_source resets last_tsc for the next pair
        WarpTests.Add((_nextAp, warps, max));
        if (warps > 0)
        {
            _kernel.Message(at, $"TSC synchronization [CPU#0 -> CPU#{_nextAp}]: Measured {max} cycles TSC warp between CPUs, turning off TSC clock.");
            _kernel.MarkTscUnstable(at, "check_tsc_sync_source failed");
        }
    }
}

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
    /// <summary>
    /// check_tsc_warp's timeout when the AP has no other online CPU in its package, ms (Linux
    /// 6.18 arch/x86/kernel/tsc_sync.c <c>loop_timeout</c>: weight of topology_core_cpumask ≤ 1).
    /// </summary>
    public const int WarpTestMilliseconds = 20;

    /// <summary>
    /// check_tsc_warp's timeout when another CPU of the AP's package is already online, ms
    /// (<c>loop_timeout</c>: "a smaller timeout of 2msec"). smpboot.c <c>start_secondary</c>
    /// calls <c>ap_starting</c> (which runs <c>set_cpu_sibling_map</c>) before
    /// <c>check_tsc_sync_target</c>, so the AP's own core mask already holds its online package mates.
    /// </summary>
    public const int SiblingWarpTestMilliseconds = 2;

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

    /// <summary>Each warp test's pair start (the AP woken), end (its result) and <c>loop_timeout</c> in ms.</summary>
    public List<(SimTime Start, SimTime End, int TimeoutMilliseconds)> WarpTestSpans { get; } = [];

    private SimTime _pairStart;
    private int _pairTimeoutMs;

    /// <summary>
    /// Brings the next AP online at <paramref name="at"/>: both vCPUs get the warp test's
    /// timeout (<c>loop_timeout</c>: 2 or 20 ms of TSC) and rendezvous count; rbx tells the BSP 2 (all online), 1 (run the
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
        _pairTimeoutMs = LoopTimeoutMilliseconds(_nextAp);
        _pairStart = at;
        long timeout = _kernel.TscKhz * _pairTimeoutMs;
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

    /// <summary>
    /// <c>loop_timeout(cpu)</c> for AP <paramref name="ap"/>: 2 ms when an earlier-onlined CPU
    /// shares its package, else 20 ms. In a VM every vCPU is a core of one virtual package:
    /// QEMU's <c>-smp N</c> default since machine type 6.2 (hw/core/machine-smp.c, "Prefer cores
    /// over sockets in smp parsing since 6.2"; older machine types made each vCPU a socket).
    /// ASSUMPTION: the same single-package topology for a direct VMM, Xen and Hyper-V guests. On
    /// bare metal the package is the physical core's socket.
    /// </summary>
    private int LoopTimeoutMilliseconds(int ap)
    {
        Vcpu target = _vcpus[ap];
        if (target.Platform is not NativePlatform)
        {
            return ap > 0 ? SiblingWarpTestMilliseconds : WarpTestMilliseconds;
        }
        for (int k = 0; k < ap; k++)
        {
            if (_vcpus[k].Core.Socket == target.Core.Socket)
            {
                return SiblingWarpTestMilliseconds;
            }
        }
        return WarpTestMilliseconds;
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
        WarpTestSpans.Add((_pairStart, at, _pairTimeoutMs));
        if (warps > 0)
        {
            _kernel.Message(at, $"TSC synchronization [CPU#0 -> CPU#{_nextAp}]: Measured {max} cycles TSC warp between CPUs, turning off TSC clock.");
            _kernel.MarkTscUnstable(at, "check_tsc_sync_source failed");
        }
    }
}

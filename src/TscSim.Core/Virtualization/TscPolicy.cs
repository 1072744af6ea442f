using TscSim.Core.Hardware;

namespace TscSim.Core.Virtualization;

/// <summary>
/// Decides whether a VM's TSC must be trapped, and says why. One function per policy family;
/// the rules of the 2011 proposal are spelled out in <see cref="Kvm2011"/>.
/// </summary>
public static class TscPolicy
{
    /// <summary>Whether the host's TSCs are a safe clock: constant rate, nonstop, synchronized, never seen going backwards.</summary>
    public static (bool Stable, string Why) HostTsc(Host host, string? markedUnstable)
    {
        CpuModel cpu = host.Config.Cpu;
        if (markedUnstable is not null)
        {
            return (false, markedUnstable);
        }
        if (!cpu.ConstantTsc)
        {
            return (false, $"{cpu.Name} TSC rate follows P-states");
        }
        if (!cpu.NonstopTsc)
        {
            return (false, $"{cpu.Name} TSC stops in {cpu.TscStopsFrom} and deeper");
        }
        if (host.Config.Sockets > 1)
        {
            bool driftsDiffer = Enumerable.Range(0, host.Config.Sockets).Select(host.Config.SocketBaseDrift).Distinct().Count() > 1;
            if (host.Config.SocketSkew != Time.Cycles.Zero || driftsDiffer || host.Config.Walk is not null)
            {
                return (false, "sockets' TSCs are not synchronized (skew or separate crystals)");
            }
        }
        return (true, "host TSC is invariant and synchronized");
    }

    /// <summary>The trapping decision for <paramref name="vm"/> now.</summary>
    public static (bool Trap, string Reason) Evaluate(Vm vm)
    {
        HypervisorConfig p = vm.Policy;
        // The override control wins under every preset: it is the scenario's knob for "force it"
        // (the 2011 proposal's, applied to all policies so that `trapping: on|off` means the same
        // whatever the preset; found by the property suite, which saw it ignored elsewhere).
        if (p.Trapping == TrappingOverride.On)
        {
            return (true, "trapping=on (override)");
        }
        if (p.Trapping == TrappingOverride.Off)
        {
            return (false, "trapping=off (override)");
        }
        return p.Kind switch
        {
            PolicyKind.Kvm2011 => Kvm2011(vm),
            PolicyKind.KvmModern => (false, vm.ScalingActive ? "kvm-modern: hardware TSC scaling" : vm.CatchUp ? "kvm-modern: software catch-up" : "kvm-modern never traps"),
            PolicyKind.XenNative => (false, "xen tsc_mode=2 (native) never emulates"),
            PolicyKind.XenAlwaysEmulate => (true, "xen tsc_mode=1 (always_emulate)"),
            PolicyKind.XenDefault => XenDefault(vm),
            PolicyKind.HyperV => vm.ReenlightenmentPending
                ? (true, "hyperv re-enlightenment: emulating after a rate-changing migration until the guest acknowledges")
                : (false, "hyperv: native until a migration changes the rate"),
            _ => throw new ArgumentOutOfRangeException(nameof(vm), p.Kind, "unknown policy"),
        };
    }

    private static bool RateMismatch(Vm vm) =>
        !vm.ScalingActive && !TscScalingMath.WithinTolerance(vm.VirtualTscKhz, vm.HostKhz, vm.Policy.TolerancePpm);

    /// <summary>
    /// The 2011 proposal, in order: (1) the override wins; (2) a requested tsc_khz outside the
    /// tolerance that no scaling hardware serves traps; (3) with tsc_auto, trap when the host TSC
    /// is unstable or the host is faster than the VM's rate; (4) without tsc_auto, the hints:
    /// fixed_rate traps when the rate is not fixed (non-constant TSC, or a rate mismatch) and
    /// smp_stable traps when the host TSCs are not synchronized; (5) otherwise native, with
    /// software catch-up when the host is slower.
    /// </summary>
    public static (bool Trap, string Reason) Kvm2011(Vm vm)
    {
        HypervisorConfig p = vm.Policy;
        if (p.Trapping == TrappingOverride.On)
        {
            return (true, "trapping=on (override)");
        }
        if (p.Trapping == TrappingOverride.Off)
        {
            return (false, "trapping=off (override)");
        }
        bool mismatch = RateMismatch(vm);
        if (vm.Config.TscKhz is not null && mismatch)
        {
            return (true, $"tsc_khz {vm.VirtualTscKhz} outside {p.TolerancePpm} ppm of the host's {vm.HostKhz} kHz and no TSC scaling");
        }
        var (stable, why) = HostTsc(vm.Host, vm.HostMarkedUnstable);
        if (p.TscAuto)
        {
            if (!stable)
            {
                return (true, "tsc_auto: host TSC unstable: " + why);
            }
            if (mismatch && vm.HostKhz > vm.VirtualTscKhz)
            {
                return (true, $"tsc_auto: host TSC ({vm.HostKhz} kHz) faster than the VM's ({vm.VirtualTscKhz} kHz), no TSC scaling");
            }
        }
        else
        {
            if (vm.Config.FixedRate && (!vm.Host.Config.Cpu.ConstantTsc || mismatch))
            {
                return (true, mismatch ? "fixed_rate hint: host rate differs from the VM's" : "fixed_rate hint: host TSC rate follows P-states");
            }
            if (vm.Config.SmpStable && !stable)
            {
                return (true, "smp_stable hint: " + why);
            }
        }
        return (false, mismatch && vm.VirtualTscKhz > vm.HostKhz && !vm.ScalingActive
            ? $"native at the host's {vm.HostKhz} kHz (host slower; 2.6.38 KVM has no catch-up for a rate)"
            : "native: " + why);
    }

    private static (bool, string) XenDefault(Vm vm)
    {
        var (stable, why) = HostTsc(vm.Host, vm.HostMarkedUnstable);
        if (!stable)
        {
            return (true, "xen tsc_mode=0: host TSC not safe: " + why);
        }
        if (RateMismatch(vm))
        {
            return (true, $"xen tsc_mode=0: host rate {vm.HostKhz} kHz differs from {vm.VirtualTscKhz} kHz, no scaling");
        }
        return (false, "xen tsc_mode=0: host TSC safe, rate matches");
    }
}

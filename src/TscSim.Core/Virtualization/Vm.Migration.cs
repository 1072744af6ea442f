using TscSim.Core.Hardware;
using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>Live migration of a VM: what is saved at the pause and restored on the destination.</summary>
public sealed partial class Vm
{
    /// <summary>Live-migration state saved at the pause: the guest TSC and kvmclock ns.</summary>
    internal (ulong Tsc, long KvmclockNs) SaveForMigration(SimTime at)
    {
        foreach (var v in Vcpus)
        {
            v.Pause();
        }
        _savedDeviceNs = DeviceClockNs(at);
        _hpet?.Pause(at); // QEMU's HPET timer is saved in virtual-clock ns (VMSTATE_TIMER)
        return (GuestVisibleTsc(at).Raw, Host.Monotonic.NanosecondsAt(at) + Kvmclock.KvmclockOffset);
    }

    /// <summary>
    /// The clock QEMU's emulated devices (HPET, ACPI PM timer) count from: the host's monotonic
    /// ns plus an offset that keeps it continuous across live migration (the downtime, like the
    /// TSC's, is not counted).
    /// </summary>
    public long DeviceClockNs(SimTime at) => Host.Monotonic.NanosecondsAt(at) + _deviceClockOffsetNs;

    /// <summary>The first instant, not before <paramref name="floor"/>, at which <see cref="DeviceClockNs"/> reads at least <paramref name="ns"/> (a QEMU timer's expiry on the current host).</summary>
    internal SimTime DeviceClockInstant(long ns, SimTime floor) =>
        Host.Monotonic.TimeOf(ns - _deviceClockOffsetNs) is SimTime t && t > floor ? t : floor;

    /// <summary>
    /// Completes a live migration at <paramref name="at"/> on <paramref name="destination"/>, as
    /// QEMU does: vCPU v on the destination's core (its pin index, modulo the cores), the
    /// VM's TSC rate kept; the TSC restored by a host-initiated write of the saved value (so the
    /// guest TSC is continuous at resume, the downtime not counted), kvmclock restored from the
    /// saved ns (KVM_SET_CLOCK), the destination's policy evaluated, the guest notified if
    /// configured, the vCPUs resumed.
    /// </summary>
    internal void RestoreAfterMigration(SimTime at, Host destination, (ulong Tsc, long KvmclockNs) saved, string? destinationUnstable)
    {
        ArriveOn(destination);
        // A new struct kvm on the destination: TSC matching starts afresh, and the host-wide
        // instability is the destination's.
        _matching.Reset();
        HostMarkedUnstable = destinationUnstable;
        Kvmclock.BackwardsTscObserved = destinationUnstable is not null;
        for (int v = 0; v < Vcpus.Length; v++)
        {
            Vcpus[v].Core = destination.Cores[Vcpus[v].Core.Index % destination.Cores.Length];
        }
        try
        {
            ChooseRate(at);
        }
        catch (InvalidOperationException ex)
        {
            // KVM_SET_TSC_KHZ fails; the VMM carries on and the guest runs at the host's rate
            // (KVM's virtual_tsc_khz stays the host's default).
            Warnings.Add((at, ex.Message + "; running at the destination's rate"));
            Ratio = 1UL << Backend.FractionBits;
            ScalingActive = false;
            CatchUp = false;
            VirtualTscRate = Frequency.FromKilohertz(HostKhz);
        }
        ConfigureControls();
        Trapping = false; // the emulated TSC restarts from the restored value if the policy traps
        Emulated.ForgetGuard();
        WriteTscMatched(at, saved.Tsc);
        Kvmclock.KvmclockOffset = saved.KvmclockNs - destination.Monotonic.NanosecondsAt(at);
        _deviceClockOffsetNs = _savedDeviceNs - destination.Monotonic.NanosecondsAt(at);
        _hpet?.Resume(at);
        Migrations++;
        // Hyper-V: after a migration to a host of another rate without scaling, TSC accesses are
        // emulated (TSC_EMULATION_STATUS.InProgress) and the re-enlightenment vector is injected;
        // only a guest that registered (set_hv_tscchange_cb) answers and ends the emulation.
        if (Policy.Kind == PolicyKind.HyperV && HostKhz != VirtualTscKhz && !ScalingActive)
        {
            ReenlightenmentPending = true;
        }
        var decision = TscPolicy.Evaluate(this);
        Apply(at, decision, creation: false, migration: true);
        if (Policy.NotifyGuest)
        {
            GuestToldTrapped = Trapping; // the proposal's pvclock bit; Hyper-V has no such flag
        }
        if (Policy.NotifyGuest || ReenlightenmentPending)
        {
            Notify(at);
        }
        Kvmclock.MarkGuestStopped();
        Kvmclock.UpdateMasterClock(at);
        Kvmclock.RequestUpdateAll(at);
        foreach (var v in Vcpus)
        {
            v.Start(at);
        }
    }
}

using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>
/// The virtual machine as its guest kernel sees it: what CPUID and the paravirtual interfaces
/// advertise, and side-effect-free reads of its clocks for the kernel's own timers (the tick's
/// accumulation and the watchdog, which the model runs as kernel services, not as guest code).
/// Implemented by the hypervisor layer for each VM.
/// </summary>
public interface IGuestMachine
{
    /// <summary>The VM's name (for messages).</summary>
    string Name { get; }

    /// <summary>The VM's vCPUs, by index.</summary>
    IReadOnlyList<Vcpu> Vcpus { get; }

    /// <summary>A paravirtual clock (kvm-clock / Xen pvclock) is offered.</summary>
    bool HasKvmclock { get; }

    /// <summary>CPUID 0x40000001 advertises KVM_FEATURE_CLOCKSOURCE_STABLE_BIT.</summary>
    bool StableBitFeature { get; }

    /// <summary>CPUID shows an invariant TSC (constant and nonstop: Linux's CONSTANT_TSC and NONSTOP_TSC).</summary>
    bool InvariantTscExposed { get; }

    /// <summary>CPUID shows an AMD processor (the host's vendor: SVM), not Intel.</summary>
    bool AmdCpu { get; }

    /// <summary>CPUID shows RDTSCP (X86_FEATURE_RDTSCP) on the host the VM runs on now.</summary>
    bool HasRdtscp { get; }

    /// <summary>The guest address of vCPU <paramref name="vcpu"/>'s pvclock_vcpu_time_info.</summary>
    long PvclockAddress(int vcpu);

    /// <summary>What RDTSC on vCPU <paramref name="vcpu"/> would return at <paramref name="at"/>.</summary>
    ulong PeekTsc(int vcpu, SimTime at);

    /// <summary>What vCPU <paramref name="vcpu"/>'s kvm-clock reads at <paramref name="at"/> (its pvclock record and the TSC it describes).</summary>
    ulong PeekKvmclock(int vcpu, SimTime at);

    /// <summary>The HPET main counter at <paramref name="at"/> (all 64 bits).</summary>
    ulong PeekHpetCounter(SimTime at);

    /// <summary>The HPET timer 0's comparator (what <c>hpet_readl(HPET_T0_CMP)</c> returns, 32 bits used).</summary>
    ulong PeekHpetComparator0 { get; }

    /// <summary>The HPET's period in femtoseconds (its capabilities register).</summary>
    uint HpetPeriodFemtoseconds { get; }

    /// <summary>The ACPI PM timer at <paramref name="at"/> (24 bits).</summary>
    long PeekPmTimer(SimTime at);

    /// <summary>The TSC rate the guest would learn if it asked now (pvclock / the TSC-frequency MSR), kHz.</summary>
    long AdvertisedTscKhz { get; }

    /// <summary>
    /// Called with the instant whenever the hypervisor notifies the guest (notify_guest: the TSC
    /// became trapped or untrapped, or its rate changed; Hyper-V: re-enlightenment).
    /// </summary>
    void OnNotify(Action<SimTime> handler);

    /// <summary>Notifications are Hyper-V re-enlightenment interrupts (only a registered guest answers), not the proposal's notify_guest.</summary>
    bool NotificationIsReenlightenment => false;

    /// <summary>The guest has recomputed its TSC rate and acknowledges the notification (ending emulation where the policy allows).</summary>
    void AcknowledgeTscChange(SimTime at);
}

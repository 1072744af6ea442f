using TscSim.Core.Abi;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>A <see cref="Vm"/> as its guest kernel sees it.</summary>
public sealed class VmGuestMachine(Vm vm) : IGuestMachine
{
    /// <summary>The VM.</summary>
    public Vm Vm { get; } = vm;

    /// <inheritdoc />
    public string Name => Vm.Config.Id;

    /// <inheritdoc />
    public IReadOnlyList<Vcpu> Vcpus => Vm.Vcpus;

    /// <summary>KVM and Xen offer a pvclock; Hyper-V offers its reference TSC page instead (not modelled as a guest clock).</summary>
    public bool HasKvmclock => Vm.Policy.Kind is not PolicyKind.HyperV;

    /// <summary>KVM has advertised the stable bit since 2.6.37 (kvmclock.c); Xen's pvclock has no such CPUID bit.</summary>
    public bool StableBitFeature => Vm.Policy.Kind is PolicyKind.Kvm2011 or PolicyKind.KvmModern;

    /// <summary>
    /// QEMU exposes invtsc only when asked (<c>-cpu …,+invtsc</c>, which blocks migration); the
    /// model takes the VM's <c>fixed_rate</c> hint as that request, on a host whose CPU has it.
    /// </summary>
    public bool InvariantTscExposed => Vm.Config.FixedRate && Vm.Host.Config.Cpu.ConstantTsc && Vm.Host.Config.Cpu.NonstopTsc;

    /// <inheritdoc />
    public bool AmdCpu => Vm.Host.Config.Cpu.Vendor == Hardware.Vendor.Svm;

    /// <inheritdoc />
    public bool HasRdtscp => Vm.Host.Config.Cpu.HasRdtscp;

    /// <inheritdoc />
    public long PvclockAddress(int vcpu) => GuestAddresses.PvclockAddress(vcpu);

    /// <inheritdoc />
    public ulong PeekTsc(int vcpu, SimTime at) => Vm.Platforms[vcpu].PeekTsc(at);

    /// <inheritdoc />
    public ulong PeekKvmclock(int vcpu, SimTime at)
    {
        var info = Vm.Kvmclock.Published(vcpu);
        ulong tsc = Vm.PvclockDescribesEmulatedTsc || !Vm.Trapping ? Vm.Platforms[vcpu].PeekTsc(at) : Vm.Platforms[vcpu].NativeGuestTsc(at);
        return info.Read(tsc);
    }

    /// <inheritdoc />
    public ulong PeekHpetCounter(SimTime at) => Vm.Platforms[0].PeekHpetCounter(at);

    /// <inheritdoc />
    public ulong PeekHpetComparator0 => Vm.Hpet.Timer0Comparator;

    /// <inheritdoc />
    public uint HpetPeriodFemtoseconds => Vm.HpetPeriodFemtoseconds;

    /// <inheritdoc />
    public long PeekPmTimer(SimTime at) => Vm.Platforms[0].PeekPmTimer(at);

    /// <summary>
    /// Trapped or scaled: the VM's rate; otherwise the host's (what RDTSC really counts at).
    /// Hyper-V's HV_X64_MSR_TSC_FREQUENCY gives the rate the TSC will run at once emulation stops:
    /// the new host's (unless scaled), even while a re-enlightenment is pending.
    /// </summary>
    public long AdvertisedTscKhz => Vm.Policy.Kind == PolicyKind.HyperV && !Vm.ScalingActive ? Vm.HostKhz
        : Vm.Trapping || Vm.ScalingActive ? Vm.VirtualTscKhz : Vm.HostKhz;

    /// <inheritdoc />
    public void OnNotify(Action<SimTime> handler) => Vm.GuestNotified += handler;

    /// <inheritdoc />
    public bool NotificationIsReenlightenment => Vm.Policy.Kind == PolicyKind.HyperV;

    /// <inheritdoc />
    public void AcknowledgeTscChange(SimTime at) => Vm.AcknowledgeTscChange(at);
}

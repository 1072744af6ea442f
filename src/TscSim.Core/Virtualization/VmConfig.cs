using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>A VM as userspace creates it: vCPUs, an optional TSC rate, and the proposal's hints.</summary>
public sealed record VmConfig
{
    public required string Id { get; init; }

    public int Vcpus { get; init; } = 1;

    /// <summary>Requested virtual TSC rate (KVM_SET_TSC_KHZ); null = the host's TSC rate at creation.</summary>
    public long? TscKhz { get; init; }

    /// <summary>Userspace hint: the guest needs a fixed-rate TSC.</summary>
    public bool FixedRate { get; init; }

    /// <summary>Userspace hint: the guest needs TSCs synchronized across vCPUs.</summary>
    public bool SmpStable { get; init; }
}

/// <summary>A change of a VM's trapping state, with its reason.</summary>
public sealed record TrappingChange(SimTime Time, bool Trapping, string Reason);

/// <summary>A run of time during which a VM's TSC was trapped (<see cref="To"/> null = still trapped).</summary>
public sealed record TrappingInterval(SimTime From, SimTime? To, string Reason);

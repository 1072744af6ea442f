using TscSim.Core.Hardware;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;

namespace TscSim.Core.Scenarios;

/// <summary>Which cores of a host an event applies to: all of them, or a list of core indices.</summary>
public sealed record CoreSelection
{
    private CoreSelection(ValueList<int>? cores) => Cores = cores;

    /// <summary>Every core of the host.</summary>
    public static CoreSelection All { get; } = new((ValueList<int>?)null);

    /// <summary>The listed cores, in the order given.</summary>
    public static CoreSelection Of(params int[] cores) => new(ValueList.Create<int>(cores));

    /// <summary>The listed cores, or null for all.</summary>
    public ValueList<int>? Cores { get; }

    /// <summary>Whether this selects every core.</summary>
    public bool IsAll => Cores is null;

    /// <summary>The selected core indices on a host with <paramref name="coreCount"/> cores.</summary>
    public IReadOnlyList<int> Expand(int coreCount) =>
        Cores is { } list ? list : Enumerable.Range(0, coreCount).ToArray();

    /// <summary><c>all</c> or <c>[0, 1]</c>.</summary>
    public override string ToString() => Cores is { } list ? list.ToString() : "all";
}

/// <summary>
/// One entry of the scenario's timeline. <see cref="Index"/> is its place in the file (0-based),
/// which also orders events at the same <see cref="At"/>.
/// </summary>
public abstract record ScenarioEvent
{
    private readonly PositionSlot _position;

    /// <summary>When it happens, from 0 to the scenario's duration.</summary>
    public required Duration At { get; init; }

    /// <summary>Its 0-based place in the file's <c>events</c> list.</summary>
    public required int Index { get; init; }

    /// <summary>Where the event's mapping starts (not part of equality).</summary>
    public SourcePosition Position { get => _position.Value; init => _position = new(value); }

    /// <summary>The event's key in the file (<c>live_migrate</c>, <c>cpufreq</c>, …).</summary>
    public abstract string Kind { get; }
}

/// <summary>Move a running VM to another host (pause, copy, resume after <see cref="Downtime"/>).</summary>
public sealed record LiveMigrateEvent : ScenarioEvent
{
    /// <summary>The VM's id.</summary>
    public required string Vm { get; init; }

    /// <summary>The destination host's id.</summary>
    public required string To { get; init; }

    /// <summary>How long the VM is paused. Default 100 ms.</summary>
    public Duration Downtime { get; init; } = Duration.FromMilliseconds(100);

    /// <inheritdoc/>
    public override string Kind => "live_migrate";
}

/// <summary>Change the core frequency (P-state) of some cores of a host.</summary>
public sealed record CpufreqEvent : ScenarioEvent
{
    /// <summary>The host's id.</summary>
    public required string Host { get; init; }

    /// <summary>Which cores.</summary>
    public required CoreSelection Cores { get; init; }

    /// <summary>The new core frequency, 1 MHz to 10 GHz.</summary>
    public required Frequency Frequency { get; init; }

    /// <inheritdoc/>
    public override string Kind => "cpufreq";
}

/// <summary>Put some cores of a host into a C-state for a while.</summary>
public sealed record CstateEvent : ScenarioEvent
{
    /// <summary>The host's id.</summary>
    public required string Host { get; init; }

    /// <summary>Which cores.</summary>
    public required CoreSelection Cores { get; init; }

    /// <summary>The C-state (C1, C1E, C3 or C6).</summary>
    public required CState State { get; init; }

    /// <summary>How long the cores stay in it (greater than zero).</summary>
    public required Duration Duration { get; init; }

    /// <inheritdoc/>
    public override string Kind => "cstate";
}

/// <summary>Move one vCPU of a VM to another core of the host it is on.</summary>
public sealed record MigrateVcpuEvent : ScenarioEvent
{
    /// <summary>The VM's id.</summary>
    public required string Vm { get; init; }

    /// <summary>The vCPU index (below the VM's vCPU count).</summary>
    public required int Vcpu { get; init; }

    /// <summary>The destination core index on the VM's host at that time.</summary>
    public required int ToCore { get; init; }

    /// <inheritdoc/>
    public override string Kind => "migrate_vcpu";
}

/// <summary>Write the TSC of some cores of a host (WRMSR IA32_TSC by host software or firmware).</summary>
public sealed record TscWriteEvent : ScenarioEvent
{
    /// <summary>The host's id.</summary>
    public required string Host { get; init; }

    /// <summary>Which cores.</summary>
    public required CoreSelection Cores { get; init; }

    /// <summary>The value written.</summary>
    public required ulong Value { get; init; }

    /// <inheritdoc/>
    public override string Kind => "tsc_write";
}

/// <summary>Change the hypervisor policy's controls; a null field stays as it was.</summary>
public sealed record PolicyEvent : ScenarioEvent
{
    /// <summary>The new override control, or null for unchanged.</summary>
    public TrappingOverride? Trapping { get; init; }

    /// <summary>The new <c>tsc_auto</c>, or null for unchanged.</summary>
    public bool? TscAuto { get; init; }

    /// <summary>The new <c>notify_guest</c>, or null for unchanged.</summary>
    public bool? NotifyGuest { get; init; }

    /// <inheritdoc/>
    public override string Kind => "policy";
}

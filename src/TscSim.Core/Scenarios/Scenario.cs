using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;

namespace TscSim.Core.Scenarios;

/// <summary>
/// A loaded, validated and resolved scenario: every preset and default is filled in, so the
/// value says everything a run depends on. Equality compares content, never where it was
/// written (positions are kept for later error messages but ignored by equality).
/// </summary>
/// <remarks>
/// The format is documented in <c>docs/scenario-format.md</c>; <see cref="ScenarioLoader"/>
/// reads it and <see cref="ScenarioWriter"/> writes it back.
/// </remarks>
public sealed record Scenario
{
    private readonly PositionSlot _position;

    /// <summary>Name, <c>[a-z0-9._-]+</c>; names the default results folder.</summary>
    public required string Name { get; init; }

    /// <summary>Free text, or null.</summary>
    public string? Description { get; init; }

    /// <summary>The seed of every random stream of the run. Default 1.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Simulated time to run, greater than zero and at most 30 days.</summary>
    public required Duration Duration { get; init; }

    /// <summary>The physical machines (at least one), in file order.</summary>
    public required ValueList<HostSpec> Hosts { get; init; }

    /// <summary>The hypervisor policy (all hosts run the same hypervisor).</summary>
    public required HypervisorSpec Hypervisor { get; init; }

    /// <summary>The virtual machines (at least one), in file order.</summary>
    public required ValueList<VmSpec> Vms { get; init; }

    /// <summary>The timeline, in file order (see <see cref="EventsInTimeOrder"/>).</summary>
    public ValueList<ScenarioEvent> Events { get; init; }

    /// <summary>Expectations checked after the run, in file order.</summary>
    public ValueList<Expectation> Expect { get; init; }

    /// <summary>What the results folder records.</summary>
    public MeasurementSpec Measurement { get; init; } = new();

    /// <summary>Where the scenario's top-level mapping starts (not part of equality).</summary>
    public SourcePosition Position { get => _position.Value; init => _position = new(value); }

    /// <summary>The events sorted by time; events at the same time keep their file order.</summary>
    public ValueList<ScenarioEvent> EventsInTimeOrder => ValueList.From(Events.OrderBy(e => e.At));

    /// <summary>The host called <paramref name="id"/>, or null.</summary>
    public HostSpec? FindHost(string id) => Hosts.FirstOrDefault(h => h.Id == id);

    /// <summary>The VM called <paramref name="id"/>, or null.</summary>
    public VmSpec? FindVm(string id) => Vms.FirstOrDefault(v => v.Id == id);
}

/// <summary>A host's TSC behaviour, every field resolved (the CPU preset's value where the file gave none).</summary>
public sealed record TscSpec
{
    /// <summary>Error of the platform crystal (drives socket 0's TSC and the platform timers). Default 0 ppm.</summary>
    public Ppm Drift { get; init; }

    /// <summary>Socket k's TSC starts k × this many cycles ahead of socket 0's (may be negative). Default 0.</summary>
    public Cycles SocketSkew { get; init; }

    /// <summary>TSC rate independent of the core frequency (CONSTANT_TSC). Default: the CPU preset's.</summary>
    public bool Constant { get; init; }

    /// <summary>TSC keeps counting in deep C-states (NONSTOP_TSC). Default: the CPU preset's.</summary>
    public bool Nonstop { get; init; }

    /// <summary>Guest TSC scaling hardware present. Default: the CPU preset's.</summary>
    public bool Scaling { get; init; }
}

/// <summary>A physical machine.</summary>
public sealed record HostSpec
{
    private readonly PositionSlot _position;

    /// <summary>Unique id, <c>[A-Za-z0-9][A-Za-z0-9_-]*</c>.</summary>
    public required string Id { get; init; }

    /// <summary>The CPU preset's name (<see cref="CpuPresets.Find"/>).</summary>
    public required string Cpu { get; init; }

    /// <summary>Nominal core frequency, 1 MHz to 10 GHz.</summary>
    public required Frequency Frequency { get; init; }

    /// <summary>Sockets, 1 to 8. Default 1.</summary>
    public int Sockets { get; init; } = 1;

    /// <summary>Cores per socket, 1 to 256. Default 2.</summary>
    public int CoresPerSocket { get; init; } = 2;

    /// <summary>How long the host has been up when the run starts. Default 0.</summary>
    public Duration Uptime { get; init; }

    /// <summary>VM exit + entry round trip in core cycles. Default: the CPU preset's.</summary>
    public required Cycles ExitCost { get; init; }

    /// <summary>TSC behaviour.</summary>
    public required TscSpec Tsc { get; init; }

    /// <summary>Where the host's mapping starts (not part of equality).</summary>
    public SourcePosition Position { get => _position.Value; init => _position = new(value); }

    /// <summary>Total cores (sockets × cores per socket); core indices are 0 to <c>Cores − 1</c>.</summary>
    public int Cores => Sockets * CoresPerSocket;

    /// <summary>The CPU preset with this host's overrides applied (exit cost, TSC flags, scaling).</summary>
    public CpuModel CpuModel
    {
        get
        {
            var preset = CpuPresets.Find(Cpu) ?? throw new InvalidOperationException($"unknown CPU preset '{Cpu}'");
            var scaling = !Tsc.Scaling ? TscScaling.None
                : preset.Scaling != TscScaling.None ? preset.Scaling
                : preset.Vendor == Vendor.Vmx ? TscScaling.VmxMultiplier16_48 : TscScaling.SvmRatio8_32;
            return preset with
            {
                ExitRoundTrip = ExitCost,
                ConstantTsc = Tsc.Constant,
                NonstopTsc = Tsc.Nonstop,
                Scaling = scaling,
            };
        }
    }

    /// <summary>The hardware configuration this host describes.</summary>
    public HostConfig ToHostConfig() => new()
    {
        Id = Id,
        Cpu = CpuModel,
        Frequency = Frequency,
        Sockets = Sockets,
        CoresPerSocket = CoresPerSocket,
        Drift = Tsc.Drift,
        SocketSkew = Tsc.SocketSkew,
        Uptime = Uptime,
    };
}

/// <summary>The hypervisor's TSC policy, every field resolved (the policy preset's value where the file gave none).</summary>
public sealed record HypervisorSpec
{
    private readonly PositionSlot _position;

    /// <summary>The policy preset (<see cref="HypervisorConfig.Find"/>). Default <c>kvm-2011</c>.</summary>
    public string Policy { get; init; } = "kvm-2011";

    /// <summary>kvm-2011's module parameter: trap only when required.</summary>
    public bool TscAuto { get; init; }

    /// <summary>The override control.</summary>
    public TrappingOverride Trapping { get; init; }

    /// <summary>Tell the guest when trapping or its TSC rate changes.</summary>
    public bool NotifyGuest { get; init; }

    /// <summary>SVM: leave RDTSCP untrapped while RDTSC traps.</summary>
    public bool RdtscpPassthrough { get; init; }

    /// <summary>Tolerance of a requested TSC rate, in ppm.</summary>
    public long TolerancePpm { get; init; }

    /// <summary>Use hardware TSC scaling when the CPU has it.</summary>
    public bool Scaling { get; init; }

    /// <summary>The VMM (KVM presets): QEMU's rate handling (default) or a VMM that always sets the rate.</summary>
    public VmmKind Vmm { get; init; }

    /// <summary>Time slice of the host scheduler for unpinned VMs, or null for no scheduler.</summary>
    public Duration? SchedulerSlice { get; init; }

    /// <summary>Where the hypervisor mapping starts, or the scenario's position when it was omitted (not part of equality).</summary>
    public SourcePosition Position { get => _position.Value; init => _position = new(value); }

    /// <summary>The preset called <paramref name="policy"/> as a spec, every field at the preset's value.</summary>
    public static HypervisorSpec FromPreset(string policy)
    {
        var preset = HypervisorConfig.Find(policy) ?? throw new ArgumentException($"unknown policy preset '{policy}'", nameof(policy));
        return new HypervisorSpec
        {
            Policy = preset.Preset,
            TscAuto = preset.TscAuto,
            Trapping = preset.Trapping,
            NotifyGuest = preset.NotifyGuest,
            RdtscpPassthrough = preset.RdtscpPassthrough,
            TolerancePpm = preset.TolerancePpm,
            Scaling = preset.UseScaling,
            Vmm = preset.Vmm,
        };
    }

    /// <summary>The policy preset with this spec's fields applied.</summary>
    public HypervisorConfig ToConfig()
    {
        var preset = HypervisorConfig.Find(Policy) ?? throw new InvalidOperationException($"unknown policy preset '{Policy}'");
        return preset with
        {
            TscAuto = TscAuto,
            Trapping = Trapping,
            NotifyGuest = NotifyGuest,
            RdtscpPassthrough = RdtscpPassthrough,
            TolerancePpm = TolerancePpm,
            UseScaling = Scaling,
            Vmm = Vmm,
        };
    }
}

/// <summary>The hints of the 2011 proposal that userspace passes for a VM.</summary>
public sealed record HintsSpec
{
    /// <summary>The guest needs a fixed-rate TSC. Default false.</summary>
    public bool FixedRate { get; init; }

    /// <summary>The guest needs TSCs synchronized across vCPUs. Default false.</summary>
    public bool SmpStable { get; init; }
}

/// <summary>The guest OS: a profile preset and, optionally, a forced clocksource or no kvm-clock.</summary>
public sealed record GuestSpec
{
    /// <summary>The OS profile preset's name (<see cref="OsProfiles.Find"/>).</summary>
    public required string Profile { get; init; }

    /// <summary>A forced clocksource (the kernel's <c>clocksource=</c>), or null to choose by rating.</summary>
    public ClocksourceKind? Clocksource { get; init; }

    /// <summary>
    /// False: the guest does not use kvm-clock even where the hypervisor offers it (Linux's
    /// <c>no-kvmclock</c> boot option), so its TSC falls back to the HPET or the PM timer.
    /// </summary>
    public bool Kvmclock { get; init; } = true;

    /// <summary>The timer-interrupt rate (the guest key <c>hz</c>), or null for the profile's default.</summary>
    public int? Hz { get; init; }

    /// <summary>The profile preset with <see cref="Clocksource"/>, <see cref="Kvmclock"/> and <see cref="Hz"/> applied.</summary>
    public OsProfile ToProfile()
    {
        var preset = OsProfiles.Find(Profile) ?? throw new InvalidOperationException($"unknown guest profile '{Profile}'");
        if (Hz is int hz)
        {
            preset = preset with { Hz = hz };
        }
        return Kvmclock
            ? preset with { Clocksource = Clocksource }
            : preset with { Clocksource = Clocksource, Ratings = preset.Ratings.RemoveAll(r => r.Kind == ClocksourceKind.KvmClock) };
    }
}

/// <summary>A virtual machine.</summary>
public sealed record VmSpec
{
    private readonly PositionSlot _position;
    private readonly PositionSlot _workloadPosition;

    /// <summary>Unique id, <c>[A-Za-z0-9][A-Za-z0-9_-]*</c>.</summary>
    public required string Id { get; init; }

    /// <summary>The id of the host the VM starts on.</summary>
    public required string Host { get; init; }

    /// <summary>vCPUs, 1 to 64.</summary>
    public required int Vcpus { get; init; }

    /// <summary>vCPU i runs on core <c>Pin[i]</c>; null = placed by the host scheduler.</summary>
    public ValueList<int>? Pin { get; init; }

    /// <summary>Requested virtual TSC rate in kHz; null = the host's TSC rate when the VM is created.</summary>
    public long? TscKhz { get; init; }

    /// <summary>The proposal's hints.</summary>
    public HintsSpec Hints { get; init; } = new();

    /// <summary>The guest OS.</summary>
    public required GuestSpec Guest { get; init; }

    /// <summary>Guest assembly run by every vCPU, exactly as written.</summary>
    public required string Workload { get; init; }

    /// <summary>When the VM boots. Default 0.</summary>
    public Duration Start { get; init; }

    /// <summary>
    /// The VM has an HPET (QEMU's, described by an ACPI HPET table), or null: as the hypervisor
    /// offers (<see cref="HypervisorConfig.OffersHpet"/>: all but Hyper-V). False is QEMU's
    /// <c>-machine hpet=off</c> (formerly <c>-no-hpet</c>): no guest finds one, so a 2.6.18 x86_64
    /// guest ticks and calibrates from the PIT and no kernel registers an HPET clocksource.
    /// </summary>
    public bool? Hpet { get; init; }

    /// <summary>The guest's profile on this VM: <see cref="GuestSpec.ToProfile"/> without the HPET when the VM has none.</summary>
    public OsProfile GuestProfile(bool hypervisorOffersHpet = true)
    {
        var profile = Guest.ToProfile();
        return (Hpet ?? true) && hypervisorOffersHpet ? profile : profile with { Ratings = profile.Ratings.RemoveAll(r => r.Kind == ClocksourceKind.Hpet) };
    }

    /// <summary>Where the VM's mapping starts (not part of equality).</summary>
    public SourcePosition Position { get => _position.Value; init => _position = new(value); }

    /// <summary>
    /// Where line 1, column 1 of <see cref="Workload"/> is in the file: for a block scalar the
    /// first line after the <c>|</c> header, at the content indentation (not part of equality).
    /// </summary>
    public SourcePosition WorkloadPosition { get => _workloadPosition.Value; init => _workloadPosition = new(value); }

    /// <summary>
    /// Maps a 1-based <paramref name="line"/> and <paramref name="column"/> within
    /// <see cref="Workload"/> (as an assembler error reports them) to the file. For a block
    /// scalar (<c>|</c>) line k is file line (first content line + k − 1) and the column is
    /// shifted by the content indentation; for a one-line scalar the same offsets apply from
    /// the start of its text.
    /// </summary>
    public SourcePosition MapWorkloadPosition(int line, int column)
    {
        var first = WorkloadPosition;
        if (!first.IsKnown)
        {
            return new SourcePosition("workload", line, column);
        }
        return new SourcePosition(first.File, first.Line + line - 1, first.Column + column - 1);
    }

    /// <summary>The VM configuration the hypervisor takes.</summary>
    public VmConfig ToVmConfig() => new()
    {
        Id = Id,
        Vcpus = Vcpus,
        TscKhz = TscKhz,
        FixedRate = Hints.FixedRate,
        SmpStable = Hints.SmpStable,
    };
}

/// <summary>What the results folder records.</summary>
public sealed record MeasurementSpec
{
    /// <summary>At most this many rows in <c>reads.csv</c> (decimated to fit). Default 20,000.</summary>
    public int ReadsCsvMaxRows { get; init; } = 20_000;

    /// <summary>At most one <c>reads.csv</c> row per vCPU per this interval, or null for no interval limit.</summary>
    public Duration? ReadsCsvInterval { get; init; }
}

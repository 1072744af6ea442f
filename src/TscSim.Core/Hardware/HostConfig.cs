using System.Collections.Immutable;
using TscSim.Core.Time;

namespace TscSim.Core.Hardware;

/// <summary>
/// A slow random walk of a crystal's error (temperature, ageing: about 1 ppm per °C, see
/// docs/model.md, "Sources of hardware and ISA facts"):
/// every <see cref="Interval"/> the error moves by a uniform integer number of ppb in
/// [−<see cref="Step"/>, +<see cref="Step"/>], kept within <see cref="Limit"/> of its base value.
/// </summary>
public sealed record DriftWalk(Ppm Step, Duration Interval, Ppm Limit)
{
    /// <summary>Checks the walk's parameters; returns the problems found.</summary>
    public IEnumerable<string> Problems()
    {
        if (Step < Ppm.Zero)
        {
            yield return "drift walk step must not be negative";
        }
        if (Interval <= Duration.Zero)
        {
            yield return "drift walk interval must be positive";
        }
        if (Limit < Ppm.Zero)
        {
            yield return "drift walk limit must not be negative";
        }
    }
}

/// <summary>
/// The physical machine: CPU model, topology, crystals and platform timers. Defaults give an
/// ideal two-core host whose clocks are exact.
/// </summary>
public sealed record HostConfig
{
    /// <summary>Host id (unique in a scenario); part of event-kind and random-stream names.</summary>
    public required string Id { get; init; }

    /// <summary>The CPU model (a preset, possibly with fields overridden).</summary>
    public required CpuModel Cpu { get; init; }

    /// <summary>Nominal core frequency at boot; the TSC rate of constant-TSC CPUs.</summary>
    public required Frequency Frequency { get; init; }

    public int Sockets { get; init; } = 1;

    public int CoresPerSocket { get; init; } = 2;

    /// <summary>
    /// Error of the platform crystal: it drives the HPET, ACPI PM timer, PIT, the host's
    /// monotonic clock and socket 0's TSC (the boot socket shares the board's reference clock).
    /// </summary>
    public Ppm Drift { get; init; } = Ppm.Zero;

    /// <summary>
    /// Error of each socket's own crystal (index = socket); sockets not listed use
    /// <see cref="Drift"/>. Entry 0, if given, must equal <see cref="Drift"/>.
    /// </summary>
    public ImmutableArray<Ppm> SocketDrift { get; init; } = [];

    /// <summary>Reset skew: socket k's TSC starts k × this many cycles ahead of socket 0's (may be negative).</summary>
    public Cycles SocketSkew { get; init; } = Cycles.Zero;

    /// <summary>How long the host has been up when the simulation starts: every counter starts at uptime × its rate.</summary>
    public Duration Uptime { get; init; } = Duration.Zero;

    /// <summary>Optional random walk of every crystal's error (each crystal its own stream).</summary>
    public DriftWalk? Walk { get; init; }

    /// <summary>HPET main-counter frequency: 14.31818 MHz on chipsets, 100 MHz in QEMU's model.</summary>
    public Frequency HpetFrequency { get; init; } = Hpet.ChipsetFrequency;

    /// <summary>ACPI PM timer width: 24 bits (default) or 32 (FADT TMR_VAL_EXT).</summary>
    public bool PmTimer32Bit { get; init; }

    /// <summary>Total cores.</summary>
    public int Cores => Sockets * CoresPerSocket;

    /// <summary>The base error of socket <paramref name="socket"/>'s crystal.</summary>
    public Ppm SocketBaseDrift(int socket) => socket < SocketDrift.Length ? SocketDrift[socket] : Drift;

    /// <summary>Checks the configuration; returns the problems found (empty when valid).</summary>
    public IEnumerable<string> Problems()
    {
        if (string.IsNullOrWhiteSpace(Id))
        {
            yield return "host id must not be empty";
        }
        if (Frequency <= Frequency.Zero)
        {
            yield return "frequency must be positive";
        }
        if (Sockets < 1)
        {
            yield return "sockets must be at least 1";
        }
        if (CoresPerSocket < 1)
        {
            yield return "cores_per_socket must be at least 1";
        }
        if (SocketDrift.Length > Sockets)
        {
            yield return $"socket drift lists {SocketDrift.Length} sockets but the host has {Sockets}";
        }
        if (SocketDrift.Length > 0 && SocketDrift[0] != Drift)
        {
            yield return "socket 0 shares the platform crystal: its drift must equal the host drift";
        }
        for (int s = 0; s < Sockets; s++)
        {
            if (SocketBaseDrift(s).PartsPerBillion <= -1_000_000_000L)
            {
                yield return $"socket {s} drift would stop or reverse its clock";
            }
        }
        if (Uptime < Duration.Zero)
        {
            yield return "uptime must not be negative";
        }
        if (Frequency > Frequency.Zero && Sockets >= 1)
        {
            long uptimeTicks = Frequency.TicksIn(Uptime).Count;
            long lastSkew = checked(SocketSkew.Count * (Sockets - 1));
            if (uptimeTicks + Math.Min(0, lastSkew) < 0)
            {
                yield return "a negative socket skew larger than the uptime would start a TSC below zero";
            }
        }
        if (HpetFrequency < Frequency.FromMegahertz(10) || HpetFrequency > Frequency.FromMegahertz(1_000))
        {
            yield return "HPET frequency must be between 10 MHz (spec minimum) and 1 GHz";
        }
        if ((Cpu.Scaling == TscScaling.VmxMultiplier16_48 && Cpu.Vendor != Vendor.Vmx)
            || (Cpu.Scaling == TscScaling.SvmRatio8_32 && Cpu.Vendor != Vendor.Svm))
        {
            yield return $"cpu {Cpu.Name}: {Cpu.Scaling} scaling does not exist on {Cpu.Vendor}";
        }
        if (Walk is not null)
        {
            foreach (string p in Walk.Problems())
            {
                yield return p;
            }
        }
    }
}

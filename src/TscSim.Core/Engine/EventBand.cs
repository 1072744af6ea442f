namespace TscSim.Core.Engine;

/// <summary>
/// Named same-instant priority bands. Events at the same picosecond run band by band, in the
/// order below, and within a band in the order they were scheduled (insertion sequence). The
/// reasons are the point: each band must see the effects of the bands before it.
/// </summary>
public enum EventBand : byte
{
    /// <summary>
    /// Physical state changes: P-state frequency changes, C-state entry and exit, TSC and
    /// TSC_ADJUST writes, crystal drift steps. First, so that a counter read at the same
    /// picosecond already sees the new rate or value.
    /// </summary>
    Hardware = 0,

    /// <summary>
    /// Hypervisor control: trapping on/off, policy changes, pvclock publication steps, vCPU
    /// placement and live-migration phases. After the hardware it reacts to, before guest code
    /// that would observe its result.
    /// </summary>
    Hypervisor = 1,

    /// <summary>
    /// Guest execution: a vCPU's instructions that read time, touch shared memory, do I/O or
    /// exit. After hardware and hypervisor changes of the same instant.
    /// </summary>
    Guest = 2,

    /// <summary>Measurement sampling: sees the state everything else left at the instant.</summary>
    Measurement = 3,

    /// <summary>Run control (end of run, progress checkpoints): last, so the instant is complete.</summary>
    Control = 4,
}

using TscSim.Core.Engine;
using TscSim.Core.Time;

namespace TscSim.Core.Hardware;

/// <summary>Where a delivered interrupt came from (the summary's <c>interrupts</c> keys).</summary>
public enum InterruptSource : byte
{
    /// <summary>The vCPU's local APIC timer (one-shot, periodic or TSC-deadline).</summary>
    LapicTimer = 0,
    /// <summary>The 8254 PIT's channel 0 (IRQ0 through the 8259 PIC).</summary>
    Pit = 1,
    /// <summary>An HPET comparator: QEMU's HPET timer 0 in legacy-replacement mode (IRQ0 through the 8259).</summary>
    Hpet = 2,
    /// <summary>An inter-processor interrupt from another vCPU of the VM (Linux's reschedule IPI that wakes an idle CPU for a timer queued on it).</summary>
    Ipi = 3,
}

/// <summary>Something that takes interrupts: a vCPU (implemented by <c>Guest.Vcpu</c>).</summary>
public interface IInterruptTarget
{
    /// <summary>
    /// Makes <paramref name="vector"/> pending at <paramref name="at"/> (called from an engine
    /// event, never from inside the target's own slice). A vector already pending stays one
    /// pending interrupt (the IRR bit is set once).
    /// </summary>
    void RaiseInterrupt(int vector, InterruptSource source, SimTime at);

    /// <summary>Registers a source whose <see cref="IInterruptSource.Armed"/> decides whether <c>hlt</c> can ever be woken.</summary>
    void AttachInterruptSource(IInterruptSource source);
}

/// <summary>A device that may raise an interrupt later.</summary>
public interface IInterruptSource
{
    /// <summary>Whether it will raise an interrupt if nothing changes (an armed timer).</summary>
    bool Armed { get; }
}

/// <summary>The local APIC timer's registers: x2APIC MSR numbers and xAPIC MMIO offsets (SDM vol. 3A §10/§11; Linux apicdef.h).</summary>
public static class ApicRegisters
{
    /// <summary>IA32_TSC_DEADLINE.</summary>
    public const uint MsrTscDeadline = 0x6E0;

    /// <summary>x2APIC EOI (write 0).</summary>
    public const uint MsrEoi = 0x80B;

    /// <summary>x2APIC interrupt command register (one 64-bit write sends an IPI: vector in bits 7:0, destination in 63:32).</summary>
    public const uint MsrIcr = 0x830;

    /// <summary>x2APIC LVT timer: vector bits 7:0, mask bit 16, mode bits 18:17 (00 one-shot, 01 periodic, 10 TSC-deadline).</summary>
    public const uint MsrLvtTimer = 0x832;

    /// <summary>x2APIC initial count.</summary>
    public const uint MsrInitialCount = 0x838;

    /// <summary>x2APIC current count (read-only).</summary>
    public const uint MsrCurrentCount = 0x839;

    /// <summary>x2APIC divide configuration.</summary>
    public const uint MsrDivide = 0x83E;

    /// <summary>The divide-configuration value for divide by 1 (bits 3,1,0 = 111; see <see cref="Divisor"/>).</summary>
    public const uint DivideBy1 = 0xB;

    /// <summary>The LVT timer's mode field starts at bit 17 (<see cref="ApicTimerMode"/>).</summary>
    public const int LvtTimerModeShift = 17;

    /// <summary>The xAPIC MMIO page (4 KiB), as on PCs.</summary>
    public const long XapicBase = 0xFEE0_0000;

    /// <summary>xAPIC register offsets: the x2APIC MSR is 0x800 + offset / 16.</summary>
    public const long XapicEoi = 0x0B0, XapicLvtTimer = 0x320, XapicInitialCount = 0x380, XapicCurrentCount = 0x390, XapicDivide = 0x3E0;

    /// <summary>Whether <paramref name="msr"/> is one of the modelled APIC MSRs.</summary>
    public static bool IsApicMsr(uint msr) =>
        msr is MsrTscDeadline or MsrEoi or MsrIcr or MsrLvtTimer or MsrInitialCount or MsrCurrentCount or MsrDivide;

    /// <summary>Whether <paramref name="address"/> falls in the xAPIC page.</summary>
    public static bool IsXapic(long address) => unchecked((ulong)(address - XapicBase)) < 0x1000;

    /// <summary>The x2APIC MSR that an xAPIC offset maps to (SDM: MSR = 0x800 + offset >> 4).</summary>
    public static uint MsrOfXapicOffset(long offset) => (uint)(0x800 + (offset >> 4));

    /// <summary>The divisor a divide-configuration value selects: bits 3,1,0 = 000 → 2 … 110 → 128, 111 → 1.</summary>
    public static int Divisor(uint divideConfig)
    {
        uint code = (divideConfig & 3) | ((divideConfig >> 1) & 4);
        return code == 7 ? 1 : 2 << (int)code;
    }
}

/// <summary>The local APIC timer's modes (LVT timer bits 18:17).</summary>
public enum ApicTimerMode : byte
{
    OneShot = 0,
    Periodic = 1,
    TscDeadline = 2,
}

/// <summary>
/// The time base of one local APIC timer: how counts and TSC deadlines map to true instants.
/// Bare metal counts the bus clock and compares the core's TSC; KVM runs an hrtimer on the
/// host's monotonic clock (Virtualization).
/// </summary>
public interface IApicTimerClock
{
    /// <summary>The instant at which <paramref name="busCycles"/> timer input cycles have passed since <paramref name="from"/>.</summary>
    SimTime CountExpiry(SimTime from, long busCycles);

    /// <summary>Timer input cycles between <paramref name="from"/> and <paramref name="to"/> (floor).</summary>
    long CyclesBetween(SimTime from, SimTime to);

    /// <summary>The instant the TSC the guest sees reaches <paramref name="deadline"/>, evaluated at <paramref name="now"/> (never before it).</summary>
    SimTime DeadlineExpiry(SimTime now, ulong deadline);

    /// <summary>The shortest period a periodic timer may have, in input cycles (KVM limits it; hardware does not: 1).</summary>
    long MinimumPeriodCycles { get; }
}

/// <summary>
/// Bare metal: the APIC timer counts the bus clock, taken as 100 MHz from the platform crystal
/// (an assumption: the bus/BCLK of Nehalem to Skylake is 100–133 MHz; the model uses the host's
/// monotonic clock ÷ 10), and TSC-deadline mode compares the core's TSC.
/// </summary>
public sealed class NativeApicTimerClock(Host host, Func<PhysicalCpu> core) : IApicTimerClock
{
    /// <summary>Nanoseconds per bus cycle (100 MHz).</summary>
    public const long BusCycleNs = 10;

    public SimTime CountExpiry(SimTime from, long busCycles) =>
        Max(from, host.Monotonic.TimeOf(checked(host.Monotonic.NanosecondsAt(from) + busCycles * BusCycleNs)));

    public long CyclesBetween(SimTime from, SimTime to) =>
        (host.Monotonic.NanosecondsAt(to) - host.Monotonic.NanosecondsAt(from)) / BusCycleNs;

    public SimTime DeadlineExpiry(SimTime now, ulong deadline) => Max(now, core().TimeOfTsc(new TscValue(deadline)));

    public long MinimumPeriodCycles => 1;

    private static SimTime Max(SimTime floor, SimTime? t) => t is SimTime v && v > floor ? v : floor;
}

/// <summary>
/// One vCPU's local APIC timer (SDM vol. 3A §10.5.4): one-shot and periodic modes count the
/// initial count down at the input clock ÷ the divide configuration; TSC-deadline mode fires
/// when the TSC reaches IA32_TSC_DEADLINE (writing 0 disarms). Expiry is an engine event at its
/// exact instant; a periodic timer's next expiry is the previous expiry + one period (no
/// accumulated error). EOI is accepted and costs what the platform charges; the in-service
/// register is not modelled (IF=0 in the handler already prevents nesting).
/// </summary>
public sealed class LocalApicTimer : IEventHandler, IInterruptSource
{
    /// <summary>LVT mask bit.</summary>
    public const uint LvtMasked = 1u << 16;

    private readonly IInterruptTarget _target;
    private readonly Simulator _sim;
    private readonly EventKind _kind;
    private readonly Action<SimTime>? _onFire;
    private EventHandle _event;
    private SimTime _expiry;
    private long _periodCycles;

    /// <param name="target">The vCPU it interrupts.</param>
    /// <param name="clock">Its time base.</param>
    /// <param name="sim">The engine its expiries are events of.</param>
    /// <param name="name">Unique event-kind name, e.g. <c>vm0.vcpu1.lapic-timer</c> (part of the fingerprint).</param>
    /// <param name="band">Hardware for a real APIC, Hypervisor for an emulated one (a host hrtimer).</param>
    /// <param name="onFire">Runs at each expiry before the interrupt is raised (the hypervisor charges its exit).</param>
    public LocalApicTimer(IInterruptTarget target, IApicTimerClock clock, Simulator sim, string name, EventBand band, Action<SimTime>? onFire = null)
    {
        _target = target;
        Clock = clock;
        _sim = sim;
        _onFire = onFire;
        _kind = sim.RegisterKind(name, band, this);
        target.AttachInterruptSource(this);
    }

    /// <summary>The time base.</summary>
    public IApicTimerClock Clock { get; }

    /// <summary>LVT timer register; masked at reset.</summary>
    public uint Lvt { get; private set; } = LvtMasked;

    /// <summary>Initial count register.</summary>
    public uint InitialCount { get; private set; }

    /// <summary>Divide configuration register (0 at reset = ÷2).</summary>
    public uint DivideConfig { get; private set; }

    /// <summary>IA32_TSC_DEADLINE (0 = disarmed).</summary>
    public ulong Deadline { get; private set; }

    /// <summary>The mode the LVT selects.</summary>
    public ApicTimerMode Mode => (ApicTimerMode)((Lvt >> 17) & 3);

    /// <summary>The vector the LVT delivers.</summary>
    public int Vector => (int)(Lvt & 0xFF);

    /// <summary>Expiries so far (whether or not masked).</summary>
    public long Expiries { get; private set; }

    /// <summary>EOIs written.</summary>
    public long Eois { get; private set; }

    /// <summary>Whether an expiry is scheduled.</summary>
    public bool Armed => _sim.IsPending(_event);

    /// <inheritdoc />
    bool IInterruptSource.Armed => WillDeliver;

    /// <summary>Whether the next expiry will deliver an interrupt (armed and not masked).</summary>
    public bool WillDeliver => Armed && (Lvt & LvtMasked) == 0;

    /// <summary>The instant of the pending expiry, if armed.</summary>
    public SimTime? NextExpiry => Armed ? _expiry : null;

    /// <summary>A write to register <paramref name="msr"/> (x2APIC numbering) at <paramref name="at"/>.</summary>
    public void Write(uint msr, ulong value, SimTime at)
    {
        switch (msr)
        {
            case ApicRegisters.MsrLvtTimer:
                {
                    ApicTimerMode old = Mode;
                    Lvt = (uint)value & 0x7_00FF;
                    if (Mode != old)
                    {
                        // A mode change disarms the timer (SDM: switching to or from TSC-deadline clears it).
                        Disarm();
                        Deadline = 0;
                        InitialCount = 0;
                    }
                    break;
                }
            case ApicRegisters.MsrInitialCount:
                InitialCount = (uint)value;
                if (Mode != ApicTimerMode.TscDeadline)
                {
                    Disarm();
                    if (InitialCount != 0)
                    {
                        _periodCycles = Math.Max((long)InitialCount * ApicRegisters.Divisor(DivideConfig), Mode == ApicTimerMode.Periodic ? Clock.MinimumPeriodCycles : 1);
                        Schedule(Clock.CountExpiry(at, _periodCycles));
                    }
                }
                break;
            case ApicRegisters.MsrDivide:
                DivideConfig = (uint)value & 0xB;
                break;
            case ApicRegisters.MsrTscDeadline:
                if (Mode == ApicTimerMode.TscDeadline)
                {
                    Deadline = value;
                    Disarm();
                    if (value != 0)
                    {
                        Schedule(Clock.DeadlineExpiry(at, value));
                    }
                }
                break;
            case ApicRegisters.MsrEoi:
                Eois++;
                break;
        }
    }

    /// <summary>A read of register <paramref name="msr"/> at <paramref name="at"/>.</summary>
    public ulong Read(uint msr, SimTime at) => msr switch
    {
        ApicRegisters.MsrLvtTimer => Lvt,
        ApicRegisters.MsrInitialCount => InitialCount,
        ApicRegisters.MsrDivide => DivideConfig,
        ApicRegisters.MsrTscDeadline => Deadline,
        ApicRegisters.MsrCurrentCount => CurrentCount(at),
        _ => 0,
    };

    private ulong CurrentCount(SimTime at)
    {
        if (!Armed || Mode == ApicTimerMode.TscDeadline)
        {
            return 0;
        }
        long left = Clock.CyclesBetween(at, _expiry);
        return (ulong)Math.Clamp(left / ApicRegisters.Divisor(DivideConfig), 0, InitialCount);
    }

    private void Schedule(SimTime at)
    {
        _expiry = at;
        _event = _sim.Schedule(at, _kind);
    }

    private void Disarm()
    {
        _sim.Cancel(_event);
        _event = default;
    }

    /// <inheritdoc />
    void IEventHandler.OnEvent(Simulator sim, in SimEvent e)
    {
        _event = default;
        Expiries++;
        if (Mode == ApicTimerMode.Periodic)
        {
            Schedule(Clock.CountExpiry(_expiry, _periodCycles));
        }
        else if (Mode == ApicTimerMode.TscDeadline)
        {
            Deadline = 0; // the deadline MSR reads 0 once it has fired
        }
        if ((Lvt & LvtMasked) == 0)
        {
            _onFire?.Invoke(e.Time);
            _target.RaiseInterrupt(Vector, InterruptSource.LapicTimer, e.Time);
        }
    }
}

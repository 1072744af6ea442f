using TscSim.Core.Abi;
using TscSim.Core.Time;

namespace TscSim.Core.Hardware;

/// <summary>
/// The High Precision Event Timer's main counter (MMIO offset 0xF0): 64 bits, counting at the
/// platform crystal's rate. The period register (capabilities bits 63:32, offset 0x04)
/// advertises the nominal period in femtoseconds. Linux on x86 reads only the low 32 bits
/// (clocksource mask 32 bits). Facts: Linux arch/x86/include/asm/hpet.h (HPET_PERIOD, HPET_COUNTER,
/// HPET_MASK); VirtualBox Devices/PC/DevHPET.cpp (HPET_CLK_PERIOD_ICH9: 69,841,279 fs = 14.31818 MHz);
/// QEMU include/hw/timer/hpet.h (HPET_CLK_PERIOD: 10,000,000 fs = 100 MHz).
/// See docs/model.md, "Sources of hardware and ISA facts".
/// </summary>
public sealed class Hpet
{
    /// <summary>A typical chipset HPET.</summary>
    public static readonly Frequency ChipsetFrequency = Frequency.FromMillihertz(14_318_180_000);

    /// <summary>QEMU's emulated HPET.</summary>
    public static readonly Frequency QemuFrequency = Frequency.FromMegahertz(100);

    private readonly LinearCounter _counter;

    internal Hpet(LinearCounter counter, Frequency nominal)
    {
        _counter = counter;
        NominalFrequency = nominal;
        // fs per tick = 10^15 / Hz = 10^18 / mHz, rounded to nearest: chipsets report
        // 69,841,279 fs for 14.31818 MHz (exact quotient 69,841,278.71; VirtualBox DevHPET).
        const long fsTimesMhz = 1_000_000_000_000_000_000L;
        PeriodFemtoseconds = (uint)((fsTimesMhz + nominal.Millihertz / 2) / nominal.Millihertz);
    }

    /// <summary>The nominal rate the period register describes.</summary>
    public Frequency NominalFrequency { get; }

    /// <summary>COUNTER_CLK_PERIOD: femtoseconds per tick.</summary>
    public uint PeriodFemtoseconds { get; }

    /// <summary>The counter's actual rate now (nominal × crystal error).</summary>
    public Frequency Rate => _counter.Rate;

    /// <summary>The 64-bit main counter at <paramref name="t"/>.</summary>
    public ulong ReadMainCounter(SimTime t) => _counter.ValueAt(t);

    /// <summary>What Linux's hpet_readl(HPET_COUNTER) sees: the low 32 bits (wraps every ~300 s at 14.3 MHz).</summary>
    public uint ReadMainCounterLow32(SimTime t) => unchecked((uint)_counter.ValueAt(t));
}

/// <summary>
/// The ACPI power-management timer: 3.579545 MHz, a 24-bit counter (wraps every ~4.69 s) or
/// 32 bits with FADT TMR_VAL_EXT; read through an I/O port. Facts: Linux
/// include/linux/acpi_pmtmr.h (PMTMR_TICKS_PER_SEC, ACPI_PM_MASK) and drivers/clocksource/acpi_pm.c.
/// </summary>
public sealed class AcpiPmTimer
{
    /// <summary>PMTMR_TICKS_PER_SEC.</summary>
    public static readonly Frequency NominalFrequency = Frequency.FromHertz(PlatformTimerRates.AcpiPmHz);

    private readonly LinearCounter _counter;

    internal AcpiPmTimer(LinearCounter counter, bool wide)
    {
        _counter = counter;
        Width = wide ? 32 : 24;
    }

    /// <summary>Counter width in bits.</summary>
    public int Width { get; }

    /// <summary>The mask the hardware wraps at.</summary>
    public uint Mask => Width == 32 ? 0xFFFF_FFFFu : 0x00FF_FFFFu;

    /// <summary>The port read at <paramref name="t"/>: the counter modulo 2^width.</summary>
    public uint Read(SimTime t) => unchecked((uint)_counter.ValueAt(t)) & Mask;
}

/// <summary>
/// The 8254 PIT's input clock (1.193182 MHz) and channel 2 in mode 0 (interrupt on terminal
/// count, gated by port 0x61), as Linux's pit_calibrate_tsc uses it: load a count, then poll
/// until OUT goes high. The 16-bit counter decrements once per input tick and keeps wrapping
/// after terminal count; OUT stays high. Facts: Linux include/linux/timex.h (PIT_TICK_RATE),
/// arch/x86/kernel/tsc.c pit_calibrate_tsc, Documentation/virt/kvm/x86/timekeeping.rst §2.1.
/// </summary>
public sealed class Pit
{
    /// <summary>PIT_TICK_RATE.</summary>
    public static readonly Frequency NominalFrequency = Frequency.FromHertz(PlatformTimerRates.PitHz);

    private readonly LinearCounter _counter;
    private Int128 _channel2StartTicks;
    private ushort _channel2Latch;
    private bool _channel2Armed;

    internal Pit(LinearCounter counter) => _counter = counter;

    /// <summary>Input-clock ticks since the host booted.</summary>
    public Int128 TicksAt(SimTime t) => _counter.TicksAt(t);

    /// <summary>Loads <paramref name="latch"/> into channel 2 at <paramref name="t"/> and starts counting (mode 0).</summary>
    public void StartChannel2(SimTime t, ushort latch)
    {
        _channel2StartTicks = _counter.TicksAt(t);
        _channel2Latch = latch;
        _channel2Armed = true;
    }

    /// <summary>The current count of channel 2 (16-bit, counting down, wrapping after zero).</summary>
    public ushort Channel2Count(SimTime t)
    {
        RequireArmed();
        Int128 elapsed = _counter.TicksAt(t) - _channel2StartTicks;
        return unchecked((ushort)(_channel2Latch - (long)(elapsed & 0xFFFF)));
    }

    /// <summary>OUT of channel 2: high once the count has reached zero (port 0x61 bit 5).</summary>
    public bool Channel2Out(SimTime t)
    {
        RequireArmed();
        return _counter.TicksAt(t) - _channel2StartTicks >= _channel2Latch;
    }

    /// <summary>When channel 2's OUT goes high, at the current crystal rate.</summary>
    public SimTime? Channel2Deadline()
    {
        RequireArmed();
        return _counter.TimeOfTicks(_channel2StartTicks + _channel2Latch);
    }

    private void RequireArmed()
    {
        if (!_channel2Armed)
        {
            throw new InvalidOperationException("PIT channel 2 was never loaded.");
        }
    }
}

/// <summary>
/// The host's own monotonic clock in nanoseconds, the reference a hypervisor computes guest
/// time from (like CLOCK_MONOTONIC_RAW: never slewed by NTP). It runs off the platform
/// crystal, so it drifts with it: a +10 ppm crystal makes it gain 10 µs per second.
/// Zero at host boot.
/// </summary>
public sealed class HostMonotonicClock
{
    /// <summary>One tick per nanosecond, nominally.</summary>
    public static readonly Frequency NominalFrequency = Frequency.FromMegahertz(1_000);

    private readonly LinearCounter _counter;

    internal HostMonotonicClock(LinearCounter counter) => _counter = counter;

    /// <summary>Nanoseconds since host boot at true time <paramref name="t"/>.</summary>
    public long NanosecondsAt(SimTime t) => (long)_counter.TicksAt(t);

    /// <summary>The first true instant at which the clock reads at least <paramref name="ns"/>.</summary>
    public SimTime? TimeOf(long ns) => _counter.TimeOfTicks(ns);
}

namespace TscSim.Core.Abi;

/// <summary>The nominal rates and widths of the PC platform timers, as guests rely on them.</summary>
public static class PlatformTimerRates
{
    /// <summary>
    /// PMTMR_TICKS_PER_SEC: the ACPI PM timer's 3.579545 MHz (ACPI specification, "Power
    /// Management Timer" of the fixed hardware; Linux <c>include/linux/acpi_pmtmr.h</c>).
    /// </summary>
    public const long AcpiPmHz = 3_579_545;

    /// <summary>
    /// ACPI_PM_MASK = CLOCKSOURCE_MASK(24): the PM timer's 24 bits without FADT TMR_VAL_EXT
    /// (<c>drivers/clocksource/acpi_pm.c</c>).
    /// </summary>
    public const ulong AcpiPmMask = 0xFF_FFFF;

    /// <summary>PIT_TICK_RATE: the 8254's input clock, 1.193182 MHz (Linux <c>include/linux/timex.h</c>, <c>arch/x86/include/asm/timex.h</c>).</summary>
    public const long PitHz = 1_193_182;

    /// <summary>The HPET clocksource's mask: Linux reads only the low 32 bits of the main counter (CLOCKSOURCE_MASK(32), <c>arch/x86/kernel/hpet.c</c>).</summary>
    public const ulong HpetMask = 0xFFFF_FFFF;

    /// <summary>
    /// QEMU's emulated HPET period in femtoseconds: 10,000,000 fs = 100 MHz, the counter being
    /// host ns / 10 (QEMU <c>include/hw/timer/hpet.h</c> HPET_CLK_PERIOD 10 ns).
    /// </summary>
    public const uint QemuHpetPeriodFemtoseconds = 10_000_000;

    /// <summary>Host ns per QEMU HPET tick (<see cref="QemuHpetPeriodFemtoseconds"/> / 10^6).</summary>
    public const long QemuHpetNsPerTick = QemuHpetPeriodFemtoseconds / 1_000_000;

    /// <summary>
    /// Xen's emulated HPET period: S_TO_FS × STIME_PER_HPET_TICK / stime_freq = 10^15 × 16 / 10^9 =
    /// 16,000,000 fs (62.5 MHz), the counter being guest time (ns) / 16 (xen/arch/x86/hvm/hpet.c, Xen 4.1).
    /// </summary>
    public const uint XenHpetPeriodFemtoseconds = 16_000_000;
}

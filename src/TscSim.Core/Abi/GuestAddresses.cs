namespace TscSim.Core.Abi;

/// <summary>
/// Where the guest finds the time devices: the pvclock area, the HPET's MMIO block and its
/// registers, the ACPI PM timer and PIT ports. (The program's own memory layout, code, data
/// and stack, is <see cref="Isa.GuestAddressMap"/>.)
/// </summary>
public static class GuestAddresses
{
    /// <summary>
    /// The VM's pvclock area: vCPU v's <c>pvclock_vcpu_time_info</c> is the
    /// <see cref="PvclockAbi.Size"/> bytes at PvclockBase + 32 × v. A real guest registers each
    /// vCPU's address with <see cref="Msr.KvmSystemTimeNew"/>; the model fixes the layout.
    /// </summary>
    public const long PvclockBase = 0x0400_0000;

    /// <summary>The guest address of vCPU <paramref name="vcpu"/>'s pvclock record.</summary>
    public static long PvclockAddress(int vcpu) => PvclockBase + (long)vcpu * PvclockAbi.Size;

    /// <summary>
    /// The HPET's MMIO base on PCs (the ACPI HPET table gives it; 0xFED00000 is what chipsets and
    /// QEMU use: QEMU <c>include/hw/timer/hpet.h</c> HPET_BASE).
    /// </summary>
    public const long HpetBase = 0xFED0_0000;

    /// <summary>The HPET register block's size: 1 KiB (IA-PC HPET spec 1.0a §2.3.1).</summary>
    public const long HpetSize = 0x400;

    /// <summary>
    /// General Capabilities and ID (IA-PC HPET spec 1.0a §2.3.1 register table; Linux <c>asm/hpet.h</c> HPET_ID);
    /// bits 63:32, readable alone at <see cref="HpetPeriod"/>, are COUNTER_CLK_PERIOD in fs.
    /// </summary>
    public const long HpetCapabilities = 0x000;

    /// <summary>HPET_PERIOD (asm/hpet.h): the upper half of the capabilities register.</summary>
    public const long HpetPeriod = 0x004;

    /// <summary>Main Counter Value (HPET spec 1.0a §2.3.1; asm/hpet.h HPET_COUNTER).</summary>
    public const long HpetMainCounter = 0x0F0;

    /// <summary>
    /// The capabilities register's low half the model reports: vendor 8086, LEG_RT_CAP,
    /// COUNT_SIZE_CAP (64-bit), 3 timers, revision 1 (the General Capabilities and ID layout, HPET spec 1.0a).
    /// </summary>
    public const ulong HpetCapabilitiesLow = 0x8086_A201UL;

    /// <summary>
    /// The ACPI PM timer's port. The FADT's PM_TMR_BLK says where it is; this is QEMU's q35/ICH9
    /// PMBASE 0x600 plus the timer's offset 8 (an assumption for bare metal, where firmware chooses).
    /// </summary>
    public const ushort PmTimerPort = 0x608;

    /// <summary>PIT channel 2's data port (Intel 8254 datasheet; Linux <c>pit_calibrate_tsc</c>).</summary>
    public const ushort PitChannel2 = 0x42;

    /// <summary>The PIT's mode/command port.</summary>
    public const ushort PitCommand = 0x43;

    /// <summary>NMI status and control: bit 0 gates PIT channel 2, bit 5 reads its OUT.</summary>
    public const ushort PortB = 0x61;

    /// <summary>Port B bit 0: PIT channel 2's gate (pit_calibrate_tsc sets it).</summary>
    public const int PortBGate2 = 0x01;

    /// <summary>Port B bit 1: the speaker data enable (pit_calibrate_tsc clears it).</summary>
    public const int PortBSpeakerData = 0x02;

    /// <summary>Port B bit 5: PIT channel 2's OUT, read-only (pit_calibrate_tsc polls it).</summary>
    public const int PortBOut2 = 0x20;

    /// <summary>
    /// The PIT command pit_calibrate_tsc writes to <see cref="PitCommand"/>: 0xB0 = channel 2,
    /// lobyte/hibyte access, mode 0 (interrupt on terminal count), binary (8254 datasheet control word).
    /// </summary>
    public const int PitChannel2OneShot = 0xB0;
}

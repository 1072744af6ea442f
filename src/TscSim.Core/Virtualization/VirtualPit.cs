using TscSim.Core.Abi;
using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>
/// KVM's in-kernel i8254, as far as TSC calibration uses it: channel 2 in mode 0 (interrupt on
/// terminal count) gated through port 0x61, counting at PIT_TICK_RATE (1,193,182 Hz) of the
/// VM's device clock (KVM's PIT runs on host ktime, not on any TSC).
/// </summary>
/// <remarks>
/// Ports: 0x43 mode/command (channel 2 selected with bits 7:6 = 10; access lobyte/hibyte), 0x42
/// channel 2 data (low byte, then high byte: the high byte loads the count and starts it), 0x61
/// bit 0 = gate 2, bit 5 = OUT2 (reads high once the count has reached zero). Channels 0 and 1
/// read as zero. Linux's pit_calibrate_tsc (arch/x86/kernel/tsc.c) programs exactly this.
/// <para>Issue 16: channel 0 (0x43 with bits 7:6 = 00, then the count on port 0x40: low and high
/// byte, or one byte in the lobyte/hibyte-only access modes) in any mode; the timer that ticks is
/// <see cref="VirtualTimers"/>. And the master 8259's registers as far as the tick needs them:
/// ICW1 (0x20, bit 4) starts initialisation, ICW2 on 0x21 sets the vector base, ICW3/ICW4 are
/// taken and ignored, then 0x21 is the interrupt mask (bit 0 masks IRQ0); 0x20 = 0x20 is EOI.</para>
/// </remarks>
internal sealed class VirtualPit
{
    private ushort _latch;
    private bool _lowWritten;
    private byte _low;
    private long _startNs = -1;
    private bool _gate;
    private byte _port61;

    /// <summary>Whether <paramref name="port"/> belongs to the PIT or the port-0x61 gate.</summary>
    public static bool Claims(ushort port) => port is >= 0x40 and <= GuestAddresses.PitCommand or GuestAddresses.PortB or 0x20 or 0x21;

    // channel 0
    private int _c0Access;        // 1 lobyte, 2 hibyte, 3 lobyte then hibyte
    private bool _c0LowWritten;
    private byte _c0Low;

    /// <summary>Channel 0's mode (0–5) from the last control word.</summary>
    public int Channel0Mode { get; private set; }

    /// <summary>Channel 0's count (1–65536; a written 0 means 65536), or null while stopped (after a control word, before a count).</summary>
    public int? Channel0Count { get; private set; }

    /// <summary>Changes whenever channel 0 is loaded or stopped.</summary>
    public long Channel0Version { get; private set; }

    // 8259 master
    private int _icwStep;         // 0 = operational; 2, 3, 4 = the ICW expected next on 0x21
    private bool _icw4Needed;
    private bool _single;

    /// <summary>The vector of IRQ0 (ICW2); 8 as the BIOS leaves it.</summary>
    public int VectorBase { get; private set; } = 8;

    /// <summary>The guest has programmed the 8259 (ICW1 and ICW2 written): until then IRQ0 reaches no guest handler.</summary>
    public bool Programmed { get; private set; }

    /// <summary>The interrupt mask register (OCW1).</summary>
    public byte Imr { get; private set; }

    /// <summary>Whether IRQ0 is masked.</summary>
    public bool Irq0Masked => (Imr & 1) != 0;

    /// <summary>An edge on IRQ0 reaches a guest handler: the guest has programmed the 8259 and left IRQ0 unmasked.</summary>
    public bool Irq0Open => Programmed && !Irq0Masked;

    /// <summary>EOI commands received.</summary>
    public long Eois { get; private set; }

    /// <summary>Ticks of the PIT input clock in <paramref name="ns"/> nanoseconds.</summary>
    private static long Ticks(long ns) => (long)ExactMath.FloorDiv((Int128)ns * PlatformTimerRates.PitHz, 1_000_000_000);

    public long In(ushort port, long ns)
    {
        switch (port)
        {
            case GuestAddresses.PortB:
                bool high = _gate && _startNs >= 0 && Ticks(ns) - Ticks(_startNs) >= _latch;
                return (_port61 & 0x0F) | (high ? 0x20 : 0);
            case 0x21:
                return Imr;
            case GuestAddresses.PitChannel2:
                if (_startNs < 0)
                {
                    return 0;
                }
                long elapsed = Ticks(ns) - Ticks(_startNs);
                return unchecked((ushort)(_latch - elapsed)) & 0xFF;
            default:
                return 0;
        }
    }

    public void Out(ushort port, byte value, long ns)
    {
        switch (port)
        {
            case GuestAddresses.PortB:
                _port61 = value;
                _gate = (value & 1) != 0;
                break;
            case GuestAddresses.PitCommand:
                if ((value >> 6) == 2)
                {
                    _lowWritten = false;
                    _startNs = -1;
                }
                else if ((value >> 6) == 0 && ((value >> 4) & 3) != 0)
                {
                    // A control word for channel 0 stops it until a count is written.
                    _c0Access = (value >> 4) & 3;
                    Channel0Mode = (value >> 1) & 7;
                    if (Channel0Mode > 5)
                    {
                        Channel0Mode -= 4; // 6 and 7 are aliases of 2 and 3
                    }
                    _c0LowWritten = false;
                    Channel0Count = null;
                    Channel0Version++;
                }
                break;
            case 0x40:
                if (_c0Access == 3 && !_c0LowWritten)
                {
                    _c0Low = value;
                    _c0LowWritten = true;
                    break;
                }
                int count = _c0Access switch { 1 => value, 2 => value << 8, _ => _c0Low | (value << 8) };
                _c0LowWritten = false;
                Channel0Count = count == 0 ? 0x1_0000 : count;
                Channel0Version++;
                break;
            case 0x20:
                if ((value & 0x10) != 0)
                {
                    _icwStep = 2;
                    _icw4Needed = (value & 1) != 0;
                    _single = (value & 2) != 0;
                }
                else if (value == 0x20)
                {
                    Eois++;
                }
                break;
            case 0x21:
                switch (_icwStep)
                {
                    case 2:
                        VectorBase = value & 0xF8;
                        Programmed = true;
                        _icwStep = _single ? (_icw4Needed ? 4 : 0) : 3;
                        break;
                    case 3:
                        _icwStep = _icw4Needed ? 4 : 0;
                        break;
                    case 4:
                        _icwStep = 0;
                        break;
                    default:
                        Imr = value;
                        break;
                }
                break;
            case GuestAddresses.PitChannel2:
                if (!_lowWritten)
                {
                    _low = value;
                    _lowWritten = true;
                }
                else
                {
                    _latch = (ushort)(_low | (value << 8));
                    _lowWritten = false;
                    _startNs = ns;
                }
                break;
        }
    }
}

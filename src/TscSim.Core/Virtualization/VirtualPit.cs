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
    public static bool Claims(ushort port) => port is >= 0x40 and <= GuestAddresses.PitCommand or GuestAddresses.PortB;

    /// <summary>Ticks of the PIT input clock in <paramref name="ns"/> nanoseconds.</summary>
    private static long Ticks(long ns) => (long)ExactMath.FloorDiv((Int128)ns * PlatformTimerRates.PitHz, 1_000_000_000);

    public long In(ushort port, long ns)
    {
        switch (port)
        {
            case GuestAddresses.PortB:
                bool high = _gate && _startNs >= 0 && Ticks(ns) - Ticks(_startNs) >= _latch;
                return (_port61 & 0x0F) | (high ? 0x20 : 0);
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

using TscSim.Core.Abi;
using TscSim.Core.Isa;

namespace TscSim.Core.Guest;

/// <summary>How the guest's boot calibration went.</summary>
public sealed record CalibrationResult(long TscKhz, string Method, int Attempts);

/// <summary>
/// The kernel's side of the boot-time TSC calibration against the PIT with an HPET reference
/// (Linux arch/x86/kernel/tsc.c <c>pit_hpet_ptimer_calibrate_cpu</c>): the guest code in
/// <see cref="KernelLibrary"/> runs <c>pit_calibrate_tsc</c> and <c>tsc_read_refs</c>; this
/// class judges each attempt's measurements (up to three) as the kernel's rejection rules do.
/// </summary>
internal sealed class TscCalibration(IGuestMachine machine)
{
    /// <summary>CAL_MS and CAL2_MS: the PIT windows (ms), 10 then, after two failed tries, 50.</summary>
    public const int CalMs = 10, Cal2Ms = 50;

    /// <summary>PIT_TICK_RATE / (1000 / CAL_MS) and / (1000 / CAL2_MS): the channel-2 latches.</summary>
    public const int CalLatch = (int)(PlatformTimerRates.PitHz / (1000 / CalMs)), Cal2Latch = (int)(PlatformTimerRates.PitHz / (1000 / Cal2Ms));

    /// <summary>CAL_PIT_LOOPS and CAL2_PIT_LOOPS: the fewest polling loops a PIT window may take.</summary>
    public const int CalLoops = 1000, Cal2Loops = 5000;

    private int _attempt;              // attempts judged so far
    private int _windowMs = CalMs;     // the current PIT window, ms
    private long _pitMin = long.MaxValue, _refMin = long.MaxValue;  // best kHz by the PIT and by the reference (MaxValue: none)

    /// <summary>Loads the first window's latch and minimum loop count for the guest code.</summary>
    public static void Begin(Vcpu vcpu, long readRefsThresholdCycles)
    {
        vcpu.SetRegister(Registers.Rsi, CalLatch);
        vcpu.SetRegister(Registers.R8, CalLoops);
        vcpu.SetRegister(Registers.Rbp, readRefsThresholdCycles);
    }

    /// <summary>
    /// Judges one attempt: r12/r13 the TSC and HPET before, r9 the PIT's kHz × ms (−1: failed),
    /// r14/r15 the TSC and HPET after (−1: no reference). Sets rbx to 0 when calibration is
    /// over (and returns its result), to 1 for another attempt.
    /// </summary>
    public CalibrationResult? Step(Vcpu vcpu)
    {
        unchecked
        {
            long tsc1 = vcpu.Register(Registers.R12), hpet1 = vcpu.Register(Registers.R13);
            long pit = vcpu.Register(Registers.R9);
            long tsc2 = vcpu.Register(Registers.R14), hpet2 = vcpu.Register(Registers.R15);
            _attempt++;
            long pitKhz = pit == -1 ? long.MaxValue : pit / _windowMs;
            _pitMin = Math.Min(_pitMin, pitKhz);
            long refKhz = long.MaxValue;
            if (hpet1 != -1 && hpet2 != -1)
            {
                // calc_hpet_ref: kHz = Δtsc × 10^6 / Δns, Δns = Δticks (32-bit wrap) × period / 10^6.
                ulong ticks = (ulong)((hpet2 - hpet1) & 0xFFFF_FFFF);
                ulong deltaNs = (ulong)((UInt128)ticks * machine.HpetPeriodFemtoseconds / 1_000_000);
                if (deltaNs > 0)
                {
                    refKhz = (long)((UInt128)(ulong)(tsc2 - tsc1) * 1_000_000 / deltaNs);
                    _refMin = Math.Min(_refMin, refKhz);
                }
            }
            CalibrationResult? result = null;
            if (_pitMin != long.MaxValue && refKhz != long.MaxValue)
            {
                long ratio = _pitMin * 100 / _refMin;
                if (ratio is >= 90 and <= 110)
                {
                    result = Finish(_refMin, "PIT calibration matches HPET");
                }
            }
            if (result is null && _attempt == 2 && _pitMin == long.MaxValue)
            {
                _windowMs = Cal2Ms; // the PIT failed twice: the 50 ms window
                vcpu.SetRegister(Registers.Rsi, Cal2Latch);
                vcpu.SetRegister(Registers.R8, Cal2Loops);
            }
            if (result is null && _attempt == 3)
            {
                result = (_refMin == long.MaxValue, _pitMin == long.MaxValue) switch
                {
                    (true, true) => Finish(0, "Unable to calibrate against PIT"),
                    (true, false) => Finish(_pitMin, "PIT calibration (no reference)"),
                    (false, true) => Finish(_refMin, "PIT calibration failed, using HPET"),
                    (false, false) => Finish(_pitMin, "PIT calibration deviates from HPET, using PIT"),
                };
            }
            vcpu.SetRegister(Registers.Rbx, result is null ? 1 : 0);
            return result;
        }
    }

    private CalibrationResult Finish(long khz, string method) => new(khz, method, _attempt);
}

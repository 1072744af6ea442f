using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Core.Guest;

/// <summary>The kernel services of the profiles' ticks (issue 16): 2.6.18 x86_64 and i386, linux-modern's NO_HZ tick, the periodic tick.</summary>
public sealed partial class GuestKernel
{
    /// <summary>Runs tick service <paramref name="service"/> for vCPU <paramref name="v"/> if it is one (the tick setup before a workload included); false otherwise.</summary>
    private bool TickService(Vcpu vcpu, int v, int service, SimTime at)
    {
        switch (service)
        {
            case KernelLibrary.EnterWorkload when _noHz is not null && !_timerSetUp[v]:
                _timerSetUp[v] = true;
                vcpu.Jump(_noHzSetup); // tick_setup_sched_timer, then the workload
                return true;
            case KernelLibrary.NoHzSetup when _noHz is not null:
                SetArm(vcpu, _noHz.Setup(v, at));
                return true;
            case KernelLibrary.NoHzInterrupt when _noHz is not null:
                {
                    var (tscDelta, flags, wake) = _noHz.Interrupt(v, at);
                    SetArm(vcpu, (tscDelta, flags));
                    vcpu.SetRegister(Registers.Rdx, wake + 1);
                    return true;
                }
            case KernelLibrary.NoHzIpi when _noHz is not null:
                _sim.Schedule(at, _ipi, subject: (int)vcpu.Register(Registers.Rdx));
                return true;
            case KernelLibrary.NoHzIdleEnter when _noHz is not null:
                {
                    CpuState st = vcpu.State;
                    _idleSaved[5 * v] = st.Regs[Registers.Rax];
                    _idleSaved[5 * v + 1] = st.Regs[Registers.Rcx];
                    _idleSaved[5 * v + 2] = st.Regs[Registers.Rdx];
                    _idleSaved[5 * v + 3] = st.Rflags;
                    _idleSaved[5 * v + 4] = st.Regs[Registers.Rbx];
                    if (!st.InterruptFlag)
                    {
                        vcpu.Jump(_noHzDead); // cli; hlt: stop for good
                        return true;
                    }
                    SetArm(vcpu, _noHz.IdleEnter(v, at));
                    return true;
                }
            case KernelLibrary.NoHzIdleExit when _noHz is not null:
                SetArm(vcpu, _noHz.IdleExit(v, at));
                return true;
            case KernelLibrary.NoHzIdleDone when _noHz is not null:
                vcpu.SetRegister(Registers.Rax, _idleSaved[5 * v]);
                vcpu.SetRegister(Registers.Rcx, _idleSaved[5 * v + 1]);
                vcpu.SetRegister(Registers.Rdx, _idleSaved[5 * v + 2]);
                vcpu.SetRflags(_idleSaved[5 * v + 3]);
                vcpu.SetRegister(Registers.Rbx, _idleSaved[5 * v + 4]);
                return true;
            case KernelLibrary.EnterWorkload when _periodic && !_timerSetUp[v]:
                _timerSetUp[v] = true;
                vcpu.SetRegister(Registers.Rsi, 1_000_000_000L / Profile.Hz); // KVM's APIC bus: 1 GHz (calibration taken as exact)
                vcpu.Jump(_periodicSetup);
                return true;
            case KernelLibrary.PeriodicBegin when _periodic:
                vcpu.SetRegister(Registers.R8, v != 0 ? -1 : _timekeeping.Clocksource switch
                {
                    ClocksourceKind.Hpet => KernelLibrary.CsHpet,
                    ClocksourceKind.AcpiPm => KernelLibrary.CsAcpiPm,
                    ClocksourceKind.Tsc => KernelLibrary.CsTsc,
                    _ => -1,
                });
                return true;
            case KernelLibrary.TimerTick when _periodic:
                if (v == 0)
                {
                    _timekeeping.Tick(at); // the clock owner's tick accumulates the time source
                }
                return true;
            case KernelLibrary.EnterWorkload when _pit386 && !_timerSetUp[v]:
                _timerSetUp[v] = true;
                vcpu.SetRegister(Registers.Rsi, ApicTimerCount(Profile.Hz));
                vcpu.SetRegister(Registers.Rdx, v == 0 ? _latch386 : 0);
                vcpu.Jump(_tickSetup2618); // i386 time_init's PIT and setup_APIC_timer, as x86_64's
                return true;
            case KernelLibrary.TickBegin2618 when _pit386:
                vcpu.SetRegister(Registers.R8, _timekeeping.Clocksource switch
                {
                    ClocksourceKind.Hpet => KernelLibrary.CsHpet,
                    ClocksourceKind.AcpiPm => KernelLibrary.CsAcpiPm,
                    _ => KernelLibrary.CsTsc,
                });
                vcpu.Jump(_irq0Body386);
                return true;
            case KernelLibrary.TimerTick when _pit386:
                Tick386(at);
                return true;
            case KernelLibrary.Calibrated386:
                {
                    // calculate_cpu_khz: count <= 1, delta > 2^32 or delta <= CALIBRATE_TIME_MSEC → 0; else (delta + 15) / 30.
                    ulong d = unchecked((ulong)vcpu.Register(Registers.Rax));
                    long count = vcpu.Register(Registers.Rcx);
                    long khz = count <= 1 || d > (1UL << 32) || d <= 30 ? 0 : (long)((d + 15) / 30);
                    CalibrationDone(at, new CalibrationResult(khz, "calculate_cpu_khz (3 x 30 ms PIT windows, the last counts; 2.6.18 i386)", 3));
                    return true;
                }
            case KernelLibrary.EnterWorkload when _tick2618 is not null && !_timerSetUp[v]:
                // Before its workload each CPU arms its local APIC timer; the BSP also the 8259 and PIT channel 0.
                _timerSetUp[v] = true;
                vcpu.SetRegister(Registers.Rsi, ApicTimerCount(Profile.Hz));
                vcpu.SetRegister(Registers.Rdx, v != 0 ? 0 : _tick2618.HpetTimer ? -1 : _tick2618.Latch); // -1: the 8259 only, IRQ0 is the HPET's
                vcpu.Jump(_tickSetup2618);
                return true;
            case KernelLibrary.HpetInit2618 when _tick2618 is not null:
                {
                    // hpet_init (2.6.18 x86_64 time.c): fails without vendor or timers in HPET_ID, or with
                    // a period outside [100,000, 100,000,000] fs; hpet_tick = (FSEC_PER_TICK + period/2) / period;
                    // hpet_use_timer = id & HPET_ID_LEGSUP.
                    uint id = unchecked((uint)vcpu.Register(Registers.R12));
                    uint period = unchecked((uint)vcpu.Register(Registers.R13));
                    bool ok = (id & 0xFFFF_0000u) != 0 && (id & 0x1F00u) != 0 && period is >= 100_000 and <= 100_000_000;
                    long hpetTick = ok ? (1_000_000_000_000_000L / Profile.Hz + period / 2) / period : 0;
                    bool useTimer = ok && (id & 0x8000u) != 0;
                    if (useTimer)
                    {
                        _tick2618.UseHpetTimer();
                    }
                    vcpu.SetRegister(Registers.Rax, hpetTick);
                    vcpu.SetRegister(Registers.Rcx, useTimer ? 1 : 0);
                    return true;
                }
            case KernelLibrary.HpetCalibrated2618:
                {
                    // hpet_calibrate_tsc: (tsc_now - tsc_start) * 1000000000L / ((hpet_now - hpet_start) * hpet_period / 1000),
                    // int differences, the divisor unsigned long, the result returned as unsigned int.
                    int tscDelta = unchecked((int)vcpu.Register(Registers.Rax));
                    int hpetDelta = unchecked((int)vcpu.Register(Registers.Rcx));
                    ulong divisor = unchecked((ulong)(long)hpetDelta * _machine.HpetPeriodFemtoseconds / 1000);
                    long khz = divisor == 0 ? 0 : unchecked((uint)((ulong)((long)tscDelta * 1_000_000_000L) / divisor));
                    CalibrationDone(at, new CalibrationResult(khz, "hpet_calibrate_tsc (10^8 TSC cycles or HPET counts against the HPET, 2.6.18 x86_64)", 1));
                    return true;
                }
            case KernelLibrary.PitCalibrated2618:
                long delta = vcpu.Register(Registers.Rax);
                CalibrationDone(at, new CalibrationResult(delta / 50, "pit_calibrate_tsc (one 50 ms PIT window, 2.6.18 x86_64)", 1));
                return true;
            case KernelLibrary.TickBegin2618:
                vcpu.SetRegister(Registers.Rbx, (_sources.Has(ClocksourceKind.Hpet) ? KernelLibrary.Flag2618HpetPresent : 0)
                    | (_tick2618?.HpetTimer == true ? KernelLibrary.Flag2618HpetTimer : 0) | CpuidFlag);
                return true;
            case KernelLibrary.TimerTick when _tick2618 is not null:
                _tick2618.Interrupt(at, unchecked((ulong)vcpu.Register(Registers.Rax)), unchecked((uint)vcpu.Register(Registers.R8)),
                    unchecked((uint)vcpu.Register(Registers.Rcx)));
                return true;
            default:
                return false;
        }
    }

    /// <summary>
    /// timekeeping_max_deferment: the current clocksource's max_idle_ns, clocks_calc_max_nsecs
    /// (kernel/time/clocksource.c): max_cycles = min(2^64 / (mult + maxadj), mask), ns of those at
    /// mult − maxadj, halved; maxadj = mult × 11 / 100 (clocksource_max_adjustment).
    /// </summary>
    internal long MaxDefermentNs()
    {
        var (mult, shift) = _timekeeping.Scale;
        ulong maxadj = (ulong)mult * 11 / 100;
        ulong maxCycles = Math.Min(ulong.MaxValue / ((ulong)mult + maxadj), _sources.Describe(_timekeeping.Clocksource).Mask);
        ulong ns = (ulong)(((UInt128)maxCycles * ((ulong)mult - maxadj)) >> shift);
        return (long)Math.Min(ns >> 1, (ulong)long.MaxValue / 4);
    }

    /// <summary>
    /// A workload's <c>hlt</c> is the idle loop under a tickless kernel: it becomes a call of the
    /// kernel's idle routine (<see cref="KernelLibrary.NoHzIdleLabel"/>), which stops the tick,
    /// halts, restarts the tick and returns with every register and flag as they were.
    /// </summary>
    private static void EnterIdleOnHlt(GuestProgram program)
    {
        int end = (int)program.Labels[KernelLibrary.WorkloadEndLabel].Value;
        int idle = (int)program.Labels[KernelLibrary.NoHzIdleLabel].Value;
        var code = program.Code;
        for (int i = 0; i < end; i++)
        {
            if (code[i].Op == Opcode.Hlt)
            {
                code[i] = new Instruction { Op = Opcode.Call, Cost = Hardware.CostClass.Branch, Base = Instruction.NoRegister, Target = idle, Line = code[i].Line };
            }
        }
    }

    /// <summary>The modern tick's arm routine's inputs: rax = the TSC delta (0: no deadline), rbx = NoHzTick's Flag* bits.</summary>
    private static void SetArm(Vcpu vcpu, (long TscDelta, int Flags) arm)
    {
        vcpu.SetRegister(Registers.Rax, arm.TscDelta);
        vcpu.SetRegister(Registers.Rbx, arm.Flags);
    }

    /// <summary>Another vCPU's IPI: a source that can always wake a halted vCPU of a tickless kernel.</summary>
    private sealed class IpiSource : Hardware.IInterruptSource
    {
        public static readonly IpiSource Instance = new();

        public bool Armed => true;
    }

    /// <summary>
    /// 2.6.18 i386's IRQ0 (arch/i386/kernel/time.c timer_interrupt → do_timer → update_times):
    /// jiffies_64++, update_wall_time (the clocksource accumulated; its read ran as guest code),
    /// whose change_clocksource calls tsc_update_callback (rating 50 once the TSC is marked
    /// unstable, then clocksource_reselect: the switch happens here, on the tick); the timer wheel
    /// runs verify_tsc_freq_timer when due.
    /// </summary>
    private void Tick386(SimTime at)
    {
        _jiffies386++;
        _timekeeping.Tick(at);
        if (TscUnstable is not null && _timekeeping.Clocksource == ClocksourceKind.Tsc && _sources.Best() is ClocksourceKind next && next != ClocksourceKind.Tsc)
        {
            SwitchTo(next, at, $"TSC unstable (rating {_sources.Rating(ClocksourceKind.Tsc)}): {TscUnstable}");
        }
        if (Profile.VerifiesTscFrequency && TscUnstable is null && _verifyAtJiffies386 > 0 && _jiffies386 >= _verifyAtJiffies386)
        {
            VerifyTscFreq(at);
            _verifyAtJiffies386 = _jiffies386 + Profile.Hz * 10;
        }
    }
}

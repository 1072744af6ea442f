using TscSim.Core.Abi;
using TscSim.Core.Engine;
using TscSim.Core.Hardware;
using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>
/// QEMU's emulated HPET as of 2011 (QEMU 0.14, <c>hw/hpet.c</c>: <c>hpet_ram_readl</c>,
/// <c>hpet_ram_writel</c>, <c>hpet_set_timer</c>, <c>hpet_timer</c>, <c>update_irq</c>): the
/// general configuration (ENABLE halts and restarts the main counter through <c>hpet_offset</c>,
/// LEGACY routes timer 0 to IRQ0), the main counter (<c>ns_to_ticks(vm_clock + hpet_offset)</c>
/// while enabled, the written value while halted) and timer 0 with its comparator and period
/// (SETVAL, 32-bit mode, periodic re-arming <c>while (hpet_time_after(cur_tick, cmp)) cmp += period</c>),
/// on QEMU's virtual clock (<see cref="Vm.DeviceClockNs"/>, which stops during live-migration downtime).
/// Under a Xen policy the period register and the count rate are Xen's (16 ns,
/// xen/arch/x86/hvm/hpet.c); the register and timer logic stay QEMU's (a stated deviation).
/// Timer 0 in legacy-replacement mode pulses IRQ0 (edge, <c>qemu_irq_pulse</c>), delivered to
/// vCPU 0 at the 8259's IRQ0 vector like KVM's PIT, with no reinjection (an edge that arrives
/// while the last is still pending merges with it).
/// </summary>
/// <remarks>
/// Modelled simplifications, stated in docs/model.md: (1) the counter runs from the VM's creation
/// with ENABLE set until a guest writes the configuration: the stand-in for the guest's own HPET
/// driver enabling it (QEMU resets it halted); the model's HPET reads always counted so;
/// (2) QEMU's timer callback runs when the host's timer fires, some µs after its deadline
/// (timer slack); the model runs it at the first instant the counter has passed the comparator
/// (the lower bound; QEMU re-arms for "now" when it has not, so it never advances on an equal count);
/// (3) timers 1 and 2 keep their registers but never fire; without LEGACY timer 0's interrupt
/// route (an I/O APIC pin) is not modelled; FSB (MSI) delivery is not modelled.
/// </remarks>
internal sealed class VirtualHpet : IEventHandler, IInterruptSource
{
    /// <summary>HPET_CFG_ENABLE, HPET_CFG_LEGACY (the general configuration register's bits 0 and 1).</summary>
    public const ulong CfgEnable = 1, CfgLegacy = 2;

    /// <summary>HPET_CFG_WRITE_MASK (QEMU hpet_emul.h): the writable configuration bits.</summary>
    public const ulong CfgWriteMask = 3;

    /// <summary>Timer configuration bits (HPET spec 1.0a §2.3.8; QEMU hpet_emul.h HPET_TN_*).</summary>
    public const ulong TnLevel = 0x2, TnEnable = 0x4, TnPeriodic = 0x8, TnPeriodicCap = 0x10, TnSizeCap = 0x20,
        TnSetval = 0x40, Tn32Bit = 0x100;

    /// <summary>HPET_TN_CFG_WRITE_MASK (QEMU hpet_emul.h).</summary>
    public const ulong TnCfgWriteMask = 0x7F4E;

    /// <summary>Register offsets (Linux include/asm-x86_64/hpet.h, 2.6.18: HPET_CFG, HPET_STATUS, HPET_Tn_CFG/CMP/ROUTE).</summary>
    public const long Cfg = 0x010, Status = 0x020, TimerBase = 0x100, TimerStride = 0x20, TnCfg = 0x00, TnCmp = 0x08, TnRoute = 0x10;

    /// <summary>HPET_MIN_TIMERS (QEMU): the timers the capabilities register advertises (NUM_TIM_CAP = 2).</summary>
    public const int Timers = 3;

    private readonly Vm _vm;
    private readonly Simulator _sim;
    private EventKind _kind;
    private bool _kindRegistered;
    private EventHandle _next;
    private ulong _config = CfgEnable;
    private ulong _counter;       // hpet_counter: the main counter while halted
    private long _offsetNs;       // hpet_offset: ns added to the virtual clock while enabled
    private readonly ulong[] _tConfig = new ulong[Timers];
    private readonly ulong[] _tCmp = new ulong[Timers];
    private readonly ulong[] _tFsb = new ulong[Timers];
    private ulong _t0Period;
    private long _deadlineNs;           // timer 0's pending expiry in virtual-clock ns (qemu_mod_timer's argument)
    private long _savedDeadlineNs = -1; // the same, across a migration pause

    public VirtualHpet(Vm vm)
    {
        _vm = vm;
        _sim = vm.Host.Simulator;
        for (int i = 0; i < Timers; i++)
        {
            // hpet_reset: cmp = ~0, config = PERIODIC_CAP | SIZE_CAP, "advertise availability of ioapic inti2".
            _tCmp[i] = ulong.MaxValue;
            _tConfig[i] = TnPeriodicCap | TnSizeCap | (0x4UL << 32);
        }
    }

    /// <summary>Timer 0's comparator (what <c>hpet_readl(HPET_T0_CMP)</c> returns: its low 32 bits).</summary>
    public ulong Timer0Comparator => _tCmp[0];

    /// <summary>Timer 0's period (the hidden register the second comparator write sets).</summary>
    public ulong Timer0Period => _t0Period;

    /// <summary>Legacy replacement is on: timer 0 drives IRQ0 and QEMU has disabled the PIT's (<c>hpet_pit_disable</c>).</summary>
    public bool Legacy => (_config & CfgLegacy) != 0;

    /// <summary>Timer 0 interrupts pulsed into IRQ0.</summary>
    public long Timer0Interrupts { get; private set; }

    bool IInterruptSource.Armed => _sim.IsPending(_next) && Legacy && _vm.Pit.Irq0Open;

    private bool Enabled => (_config & CfgEnable) != 0;

    /// <summary>Virtual-clock ns per count: QEMU's HPET_CLK_PERIOD (10 ns), or Xen's STIME_PER_HPET_TICK (16) under a Xen policy.</summary>
    private ulong NsPerTick => (ulong)_vm.HpetNsPerTick;

    /// <summary>hpet_get_ticks: ns_to_ticks(vm_clock + hpet_offset), HPET_CLK_PERIOD 10 ns.</summary>
    private ulong Ticks(SimTime at) => unchecked((ulong)(_vm.DeviceClockNs(at) + _offsetNs)) / NsPerTick;

    /// <summary>The main counter at <paramref name="at"/> (64 bits).</summary>
    public ulong Counter(SimTime at) => Enabled ? Ticks(at) : _counter;

    /// <summary>hpet_ram_readl at register offset <paramref name="offset"/>.</summary>
    public uint ReadLong(long offset, SimTime at)
    {
        unchecked
        {
            if (offset >= TimerBase && offset < GuestAddresses.HpetSize)
            {
                int n = (int)((offset - TimerBase) / TimerStride);
                if (n >= Timers)
                {
                    return 0;
                }
                return ((offset - TimerBase) % TimerStride) switch
                {
                    TnCfg => (uint)_tConfig[n],
                    TnCfg + 4 => (uint)(_tConfig[n] >> 32),
                    TnCmp => (uint)_tCmp[n],
                    TnCmp + 4 => (uint)(_tCmp[n] >> 32),
                    TnRoute => (uint)_tFsb[n],
                    TnRoute + 4 => (uint)(_tFsb[n] >> 32),
                    _ => 0,
                };
            }
            return offset switch
            {
                GuestAddresses.HpetCapabilities => (uint)GuestAddresses.HpetCapabilitiesLow,
                GuestAddresses.HpetPeriod => _vm.HpetPeriodFemtoseconds,
                Cfg => (uint)_config,
                Status => 0, // the ISR: only level-triggered timers set it; none is modelled
                GuestAddresses.HpetMainCounter => (uint)Counter(at),
                GuestAddresses.HpetMainCounter + 4 => (uint)(Counter(at) >> 32),
                _ => 0,
            };
        }
    }

    /// <summary>hpet_ram_writel of <paramref name="value"/> at register offset <paramref name="offset"/>.</summary>
    public void WriteLong(long offset, uint value, SimTime at)
    {
        unchecked
        {
            ulong oldVal = ReadLong(offset, at);
            ulong newVal = value;
            if (offset >= TimerBase && offset < GuestAddresses.HpetSize)
            {
                int n = (int)((offset - TimerBase) / TimerStride);
                if (n >= Timers)
                {
                    return;
                }
                switch ((offset - TimerBase) % TimerStride)
                {
                    case TnCfg:
                        {
                            ulong val = (newVal & TnCfgWriteMask) | (oldVal & ~TnCfgWriteMask);
                            _tConfig[n] = (_tConfig[n] & 0xFFFF_FFFF_0000_0000UL) | val;
                            if ((newVal & Tn32Bit) != 0)
                            {
                                _tCmp[n] = (uint)_tCmp[n];
                                if (n == 0)
                                {
                                    _t0Period = (uint)_t0Period;
                                }
                            }
                            if ((oldVal & TnEnable) == 0 && (newVal & TnEnable) != 0)
                            {
                                SetTimer(n, at);
                            }
                            else if ((oldVal & TnEnable) != 0 && (newVal & TnEnable) == 0)
                            {
                                DelTimer(n);
                            }
                            break;
                        }
                    case TnCmp:
                        {
                            bool periodic = (_tConfig[n] & TnPeriodic) != 0;
                            if (!periodic || (_tConfig[n] & TnSetval) != 0)
                            {
                                _tCmp[n] = (_tCmp[n] & 0xFFFF_FFFF_0000_0000UL) | newVal;
                            }
                            if (periodic && n == 0)
                            {
                                _t0Period = (_t0Period & 0xFFFF_FFFF_0000_0000UL) | (newVal & PeriodMask(n));
                            }
                            _tConfig[n] &= ~TnSetval;
                            if (Enabled)
                            {
                                SetTimer(n, at);
                            }
                            break;
                        }
                    case TnCmp + 4:
                        {
                            bool periodic = (_tConfig[n] & TnPeriodic) != 0;
                            if (!periodic || (_tConfig[n] & TnSetval) != 0)
                            {
                                _tCmp[n] = (_tCmp[n] & 0xFFFF_FFFFUL) | (newVal << 32);
                            }
                            else if (n == 0)
                            {
                                _t0Period = (_t0Period & 0xFFFF_FFFFUL) | ((newVal & PeriodMask(n)) << 32);
                            }
                            _tConfig[n] &= ~TnSetval;
                            if (Enabled)
                            {
                                SetTimer(n, at);
                            }
                            break;
                        }
                    case TnRoute:
                        _tFsb[n] = (_tFsb[n] & 0xFFFF_FFFF_0000_0000UL) | newVal;
                        break;
                    case TnRoute + 4:
                        _tFsb[n] = (newVal << 32) | (_tFsb[n] & 0xFFFF_FFFFUL);
                        break;
                }
                return;
            }
            switch (offset)
            {
                case Cfg:
                    {
                        ulong val = (newVal & CfgWriteMask) | (oldVal & ~CfgWriteMask);
                        _config = (_config & 0xFFFF_FFFF_0000_0000UL) | val;
                        if ((oldVal & CfgEnable) == 0 && (newVal & CfgEnable) != 0)
                        {
                            // Enable: hpet_offset = ticks_to_ns(hpet_counter) - vm_clock; arm every timer whose cmp != ~0.
                            _offsetNs = (long)(_counter * NsPerTick) - _vm.DeviceClockNs(at);
                            for (int n = 0; n < Timers; n++)
                            {
                                if (_tCmp[n] != ulong.MaxValue)
                                {
                                    SetTimer(n, at);
                                }
                            }
                        }
                        else if ((oldVal & CfgEnable) != 0 && (newVal & CfgEnable) == 0)
                        {
                            // Halt: hpet_counter = hpet_get_ticks(); every timer deleted.
                            _counter = Ticks(at);
                            for (int n = 0; n < Timers; n++)
                            {
                                DelTimer(n);
                            }
                        }
                        break;
                    }
                case GuestAddresses.HpetMainCounter:
                    _counter = (_counter & 0xFFFF_FFFF_0000_0000UL) | newVal;
                    break;
                case GuestAddresses.HpetMainCounter + 4:
                    _counter = (_counter & 0xFFFF_FFFFUL) | (newVal << 32);
                    break;
            }
        }
    }

    /// <summary>hpet_ram_writel's clamp of a period write ("Clamp period to reasonable max value"): the top bit of the timer's width is cleared.</summary>
    private ulong PeriodMask(int n) => ((_tConfig[n] & Tn32Bit) != 0 ? 0xFFFF_FFFFUL : ulong.MaxValue) >> 1;

    /// <summary>hpet_calculate_diff: comparator minus counter, 32 or 64 bits, clamped at 0.</summary>
    private static ulong Diff(ulong cmp, ulong current, bool bits32)
    {
        unchecked
        {
            if (bits32)
            {
                uint d = (uint)cmp - (uint)current;
                return (int)d > 0 ? d : 0;
            }
            ulong d64 = cmp - current;
            return (long)d64 > 0 ? d64 : 0;
        }
    }

    /// <summary>hpet_set_timer: arms the timer diff ticks from now (the 32-bit one-shot wrap interrupt is not modelled: timer 0 only, periodic).</summary>
    private void SetTimer(int n, SimTime at)
    {
        if (n != 0)
        {
            return; // timers 1 and 2: registers only (see remarks)
        }
        ulong diff = Diff(_tCmp[0], Ticks(at), (_tConfig[0] & Tn32Bit) != 0);
        Arm(_vm.DeviceClockNs(at) + checked((long)(diff * NsPerTick)), at);
    }

    /// <summary>hpet_del_timer: the timer stops (update_irq(t, 0) lowers an edge line: nothing to model).</summary>
    private void DelTimer(int n)
    {
        if (n == 0)
        {
            _sim.Cancel(_next);
            _next = default;
        }
    }

    /// <summary>Schedules timer 0's callback at virtual-clock <paramref name="deadlineNs"/> (replacing a pending one, as qemu_mod_timer).</summary>
    private void Arm(long deadlineNs, SimTime at)
    {
        if (!_kindRegistered)
        {
            _kind = _vm.InScope(() => _sim.RegisterKind($"vm.{_vm.Config.Id}.hpet-timer0", EventBand.Hypervisor, this));
            _kindRegistered = true;
            _vm.Vcpus[0].AttachInterruptSource(this);
        }
        _sim.Cancel(_next);
        _deadlineNs = deadlineNs;
        _next = _sim.Schedule(_vm.DeviceClockInstant(deadlineNs, at), _kind);
    }

    void IEventHandler.OnEvent(Simulator sim, in SimEvent e)
    {
        unchecked
        {
            _next = default;
            SimTime at = e.Time;
            ulong cur = Ticks(at);
            bool bits32 = (_tConfig[0] & Tn32Bit) != 0;
            bool periodic = (_tConfig[0] & TnPeriodic) != 0;
            bool after = bits32 ? (int)(uint)_tCmp[0] - (int)(uint)cur < 0 : (long)_tCmp[0] - (long)cur < 0;
            if (periodic && _t0Period != 0 && !after)
            {
                long ns = _vm.DeviceClockNs(at);
                ulong early = Diff(_tCmp[0], cur, bits32);
                if (early == 0)
                {
                    // The counter equals the comparator: QEMU would re-arm for "now" and raise again;
                    // the model waits for the first instant it has passed it (see remarks).
                    long nextTickNs = (long)(((ulong)(ns + _offsetNs) / NsPerTick + 1) * NsPerTick) - _offsetNs;
                    Arm(nextTickNs, at);
                    return;
                }
                // A callback armed before the comparator moved (hpet_set_timer at T0_CFG's enable while
                // the HPET is halted, then re-armed by the CFG enable): QEMU re-arms for cmp − cur.
                Arm(ns + (long)(early * NsPerTick), at);
                UpdateIrq(at);
                return;
            }
            if (periodic && _t0Period != 0)
            {
                if (bits32)
                {
                    while ((int)(uint)_tCmp[0] - (int)(uint)cur < 0)
                    {
                        _tCmp[0] = (uint)(_tCmp[0] + _t0Period);
                    }
                }
                else
                {
                    while ((long)_tCmp[0] - (long)cur < 0)
                    {
                        _tCmp[0] += _t0Period;
                    }
                }
                Arm(_vm.DeviceClockNs(at) + (long)(Diff(_tCmp[0], cur, bits32) * NsPerTick), at);
            }
            UpdateIrq(at);
        }
    }

    /// <summary>update_irq(timer 0, 1): in legacy mode an edge on IRQ0 (route 0), when the timer and the HPET are enabled.</summary>
    private void UpdateIrq(SimTime at)
    {
        if ((_tConfig[0] & TnEnable) == 0 || !Enabled || !Legacy || (_tConfig[0] & TnLevel) != 0)
        {
            return; // a level-triggered timer or an I/O APIC route: not modelled (no guest here uses them)
        }
        Timer0Interrupts++;
        if (!_vm.Pit.Irq0Open)
        {
            // Masked, or before the guest's 8259 setup: the model's boot runs Linux's init_8259A and
            // setup_irq(0) (which unmasks IRQ0 at the end of time_init) at the tick setup, as for the PIT.
            return;
        }
        _vm.Platforms[0].OnTimerInterrupt(at, preemptionTimer: false); // KVM_IRQ_LINE from QEMU's I/O thread kicks vCPU 0
        _vm.Vcpus[0].RaiseInterrupt(_vm.Pit.VectorBase, InterruptSource.Hpet, at);
    }

    /// <summary>At the live-migration pause: timer 0's pending expiry is saved in virtual-clock ns (VMSTATE_TIMER) and the timer stopped.</summary>
    public void Pause(SimTime at)
    {
        _savedDeadlineNs = -1;
        if (_sim.IsPending(_next))
        {
            _savedDeadlineNs = _deadlineNs;
            _sim.Cancel(_next);
            _next = default;
        }
    }

    /// <summary>On the destination: timer 0 re-armed at its saved virtual-clock expiry.</summary>
    public void Resume(SimTime at)
    {
        if (_savedDeadlineNs >= 0)
        {
            Arm(_savedDeadlineNs, at);
            _savedDeadlineNs = -1;
        }
    }
}

using TscSim.Core.Engine;
using TscSim.Core.Hardware;
using TscSim.Core.Time;

namespace TscSim.Core.Virtualization;

/// <summary>
/// KVM's emulated local APIC timer time base (arch/x86/kvm/lapic.c): one-shot and periodic
/// counts run on an hrtimer of the host's monotonic clock at APIC_BUS_CYCLE_NS = 1 ns per
/// input cycle (× the divide configuration); a periodic period is at least
/// min_timer_period_us = 200 µs ("requested lapic timer period limited"); a TSC deadline is
/// converted once, when written, from guest TSC cycles to ns at the VM's virtual_tsc_khz
/// (ns = Δtsc × 10^6 / tsc_khz, floor, as do_div). So a host whose clock and the guest's TSC
/// disagree (an untrapped TSC at the wrong rate) sees the deadline fire at host time.
/// </summary>
internal sealed class KvmApicTimerClock(Vm vm, HypervisorPlatform platform) : IApicTimerClock
{
    /// <summary>APIC_BUS_CYCLE_NS.</summary>
    public const long BusCycleNs = 1;

    /// <summary>min_timer_period_us (KVM module parameter, default 200).</summary>
    public const long MinimumPeriodNs = 200_000;

    private HostMonotonicClock Mono => vm.Host.Monotonic;

    public SimTime CountExpiry(SimTime from, long busCycles) =>
        AtNs(from, checked(Mono.NanosecondsAt(from) + busCycles * BusCycleNs));

    public long CyclesBetween(SimTime from, SimTime to) => (Mono.NanosecondsAt(to) - Mono.NanosecondsAt(from)) / BusCycleNs;

    public SimTime DeadlineExpiry(SimTime now, ulong deadline)
    {
        ulong guestTsc = platform.PeekTsc(now);
        if (deadline <= guestTsc)
        {
            return now;
        }
        long ns = (long)ExactMath.FloorDiv((Int128)(deadline - guestTsc) * 1_000_000, vm.VirtualTscKhz);
        return AtNs(now, checked(Mono.NanosecondsAt(now) + ns));
    }

    public long MinimumPeriodCycles => MinimumPeriodNs / BusCycleNs;

    private SimTime AtNs(SimTime floor, long ns) => Mono.TimeOf(ns) is SimTime t && t > floor ? t : floor;
}

/// <summary>
/// A VM's emulated tick sources other than the per-vCPU APIC timers: KVM's in-kernel i8254
/// channel 0 (arch/x86/kvm/i8254.c) in modes 2 and 3 (periodic) and 0, 1, 4, 5 (one-shot), an
/// hrtimer of interval = count × 10^9 / 1,193,182 ns (floor, mul_u64_u32_div) on the host's
/// monotonic clock, raising IRQ0 on vCPU 0 at the 8259's vector base (ICW2; the BIOS leaves it
/// at 8, Linux programs 0x20). Reinject mode (KVM's default, <c>kvm_pit_set_reinject(pit, true)</c>
/// in <c>kvm_create_pit</c>): every expiry adds one to <c>pending</c> (<c>pit_timer_fn</c>); a tick
/// is injected only once the guest has acknowledged the previous one (<c>pit_do_work</c>:
/// <c>if (reinject &amp;&amp; !xchg(irq_ack, 0)) return</c>); the guest's EOI of IRQ0 (the 8259's
/// EOI here) is the ack notifier <c>kvm_pit_ack_irq</c>: <c>irq_ack = 1</c> and, if
/// <c>atomic_dec_if_positive(&amp;pending) &gt; 0</c>, the next tick is injected at once. So ticks
/// missed while the VM was paused (live-migration downtime) arrive back to back afterwards.
/// While QEMU's HPET is in legacy-replacement mode the PIT raises nothing (QEMU hw/hpet.c
/// <c>hpet_pit_disable</c>; KVM's KVM_PIT_FLAGS_HPET_LEGACY). Not modelled: the IO-APIC route.
/// </summary>
internal sealed class VirtualTimers : IEventHandler, IInterruptSource
{
    /// <summary>KVM_PIT_FREQ.</summary>
    public const long KvmPitFrequency = 1_193_182;

    private readonly Vm _vm;
    private readonly Simulator _sim;
    private readonly EventKind _pitTick;
    private EventHandle _next;
    private long _intervalNs;
    private bool _periodic;
    private SimTime _expiry;
    private long _seenVersion;
    private long _seenEois;
    private long _pending;        // expiries not yet acknowledged (ps->pending)
    private bool _irqAck = true;  // ps->irq_ack: the last injected tick was acknowledged

    public VirtualTimers(Vm vm)
    {
        _vm = vm;
        _sim = vm.Host.Simulator;
        _pitTick = _sim.RegisterKind($"vm.{vm.Config.Id}.pit-tick", EventBand.Hypervisor, this);
        vm.Vcpus[0].AttachInterruptSource(this);
    }

    /// <summary>PIT channel 0 ticks so far.</summary>
    public long PitTicks { get; private set; }

    /// <summary>PIT ticks injected into the guest (at most one unacknowledged at a time).</summary>
    public long PitInjections { get; private set; }

    /// <summary>Expiries waiting to be injected or acknowledged (KVM's <c>pending</c>).</summary>
    public long PitPending => _pending;

    /// <summary>The channel 0 hrtimer's interval in ns, 0 when stopped.</summary>
    public long PitIntervalNs => _sim.IsPending(_next) ? _intervalNs : 0;

    bool IInterruptSource.Armed => _sim.IsPending(_next) && !_vm.Pit.Irq0Masked;

    /// <summary>After a guest write to the PIT at <paramref name="at"/>: (re)arms channel 0 if it was loaded or stopped.</summary>
    public void PitWritten(SimTime at)
    {
        VirtualPit pit = _vm.Pit;
        if (pit.Eois != _seenEois)
        {
            // kvm_pit_ack_irq (arch/x86/kvm/i8254.c), the ack notifier of GSI 0.
            _seenEois = pit.Eois;
            _irqAck = true;
            if (_pending > 0 && --_pending > 0)
            {
                Inject(at, kick: false); // from the EOI's own exit: no further exit to deliver it
            }
        }
        if (pit.Channel0Version == _seenVersion)
        {
            return;
        }
        _seenVersion = pit.Channel0Version;
        _pending = 0; // create_pit_timer: kvm_pit_reset_reinject
        _irqAck = true;
        _sim.Cancel(_next);
        _next = default;
        if (pit.Channel0Count is not int count)
        {
            return;
        }
        _intervalNs = (long)count * 1_000_000_000 / KvmPitFrequency;
        _periodic = pit.Channel0Mode is 2 or 3;
        Schedule(At(at, _intervalNs));
    }

    private SimTime At(SimTime from, long ns)
    {
        HostMonotonicClock mono = _vm.Host.Monotonic;
        return mono.TimeOf(checked(mono.NanosecondsAt(from) + ns)) is SimTime t && t > from ? t : from;
    }

    private void Schedule(SimTime at)
    {
        _expiry = at;
        _next = _sim.Schedule(at, _pitTick);
    }

    void IEventHandler.OnEvent(Simulator sim, in SimEvent e)
    {
        _next = default;
        PitTicks++;
        if (_periodic)
        {
            Schedule(At(_expiry, _intervalNs));
        }
        if (!_vm.Pit.Irq0Masked && !_vm.HpetLegacy)
        {
            _pending++; // pit_timer_fn: reinject mode
            Inject(e.Time, kick: true);
        }
    }

    /// <summary>pit_do_work: raises IRQ0 unless the previous tick is still unacknowledged.</summary>
    private void Inject(SimTime at, bool kick)
    {
        if (!_irqAck)
        {
            return;
        }
        _irqAck = false;
        PitInjections++;
        if (kick)
        {
            _vm.Platforms[0].OnTimerInterrupt(at, preemptionTimer: false);
        }
        _vm.Vcpus[0].RaiseInterrupt(_vm.Pit.VectorBase, InterruptSource.Pit, at);
    }
}

using System.Globalization;
using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;
using TscSim.Tests.Isa;

namespace TscSim.Tests.Guest;

/// <summary>Issue 16, items 1 and 2: interrupt delivery, cli/sti/iretq/lidt, hlt that waits, the APIC timer and PIT channel 0.</summary>
public class InterruptTests
{
    // IDT: vector 32's entry is the qword at idt; lidt loads idt - 8 × 32.
    private const string Idt = """
        section .data
        idt:    dq handler
        section .text

        """;

    /// <summary>Arms the x2APIC timer: divide ÷1, LVT = lvt, initial count = count.</summary>
    private static string Arm(long lvt, long count) => $"""
        start:  lidt [idt - 256]
                mov rcx, 0x83E
                mov rax, 0xB
                mov rdx, 0
                wrmsr
                mov rcx, 0x832
                mov rax, {lvt}
                wrmsr
                mov rcx, 0x838
                mov rax, {count}
                wrmsr

        """;

    private const string Eoi = """
                push rax
                push rcx
                push rdx
                mov rcx, 0x80B
                mov rax, 0
                mov rdx, 0
                wrmsr
                pop rdx
                pop rcx
                pop rax

        """;

    [Fact]
    public void Delivery_happens_at_the_first_instruction_boundary_at_or_after_the_expiry()
    {
        // Nehalem at 2 GHz: 500 ps per cycle. lidt 4 + 3 mov + wrmsr 150 + 2 mov + wrmsr 150 + 2 mov:
        // the arming wrmsr issues at cycle 311 = 155,500 ps; the host's monotonic clock reads 155 ns
        // there, so 100 bus cycles of 10 ns expire at 1,155 ns = 1,155,000 ps = cycle 2,310.
        // sti at 461 → 462; then lfence (9) + jmp (1): boundaries at 462 + 10n and 471 + 10n. The
        // first at or after 2,310 is 2,311 (after an lfence): delivery at 1,155,500 ps. The handler's
        // probe runs after the delivery (150 cycles): cycle 2,461 = 1,230,500 ps.
        string source = Idt + Arm(32, 100) + """
                sti
        loop:   lfence
                jmp loop
        handler: probe rbx
                cli
                hlt
        """;
        var rig = new GuestRig(source).Run(Duration.FromMilliseconds(1));
        var probe = Assert.Single(rig.Log.Probes);
        Assert.Equal(1_230_500, probe.TimePs);
        Assert.Equal(1, rig.Vcpu.InterruptsDelivered(InterruptSource.LapicTimer));
        Assert.True(rig.Vcpu.Halted);
    }

    [Fact]
    public void An_interrupted_work_resumes_after_iretq_and_completes_with_the_same_guest_cycles()
    {
        // One-shot timer 100 µs in (10,000 bus cycles), in the middle of 1,000,000 cycles (500 µs) of work.
        static GuestRig Run(long lvt) => new GuestRig(Idt + Arm(lvt, 10_000) + """
                sti
                work 1000000cycles
                probe r12
                cli
                hlt
        handler: inc r12
                iretq
        """).Run(Duration.FromMilliseconds(2));
        var plain = Run(0x10000 | 32); // masked: never delivered
        var interrupted = Run(32);
        Assert.Equal(0, plain.Vcpu.InterruptsDelivered(InterruptSource.LapicTimer));
        Assert.Equal(1, interrupted.Vcpu.InterruptsDelivered(InterruptSource.LapicTimer));
        Assert.Equal(0, plain.Log.Probes[0].Value);
        Assert.Equal(1, interrupted.Log.Probes[0].Value);
        // Same work, plus delivery (150) + inc (1) + iretq (70) on Nehalem.
        long extra = 150 + 1 + 70;
        Assert.Equal(plain.Vcpu.GuestCycles + extra, interrupted.Vcpu.GuestCycles);
        Assert.Equal(plain.Log.Probes[0].TimePs + extra * 500, interrupted.Log.Probes[0].TimePs);
    }

    [Fact]
    public void Registers_and_flags_are_preserved_across_an_interrupt()
    {
        string source = Idt + Arm(32, 1_000) + """
                mov rbx, 7
                cmp rbx, 9
                sti
        spin:   work 100000cycles
                cli
                mov r13, 0
                jb below
                mov r13, 1
        below:  hlt
        handler: mov rbx, 0
                 cmp rbx, 0
                 iretq
        """;
        var rig = new GuestRig(source).Run(Duration.FromMilliseconds(1));
        Assert.Equal(1, rig.Vcpu.InterruptsDelivered(InterruptSource.LapicTimer));
        Assert.Equal(0, rig.Vcpu.Register(Registers.R13)); // CF from cmp 7, 9 survived the handler's cmp 0, 0
        Assert.Equal(0, rig.Vcpu.Register(Registers.Rbx)); // the handler's own write stays (registers are not saved by hardware)
        Assert.Equal(0x200_0000, rig.Vcpu.Register(Registers.Rsp));
    }

    [Fact]
    public void Hlt_with_interrupts_enabled_waits_for_the_next_tick_and_with_them_disabled_halts_for_good()
    {
        // Periodic 1 ms (100,000 bus cycles of 10 ns): hlt wakes once per tick.
        string Idle(string flag) => Idt + Arm(0x20000 | 32, 100_000) + $"""
                {flag}
        idle:   hlt
                inc r12
                jmp idle
        handler: inc rbx

        """ + Eoi + """
                iretq
        """;
        var sleeping = new GuestRig(Idle("sti")).Run(Duration.FromMicroseconds(10_500));
        Assert.False(sleeping.Vcpu.Halted);
        Assert.True(sleeping.Vcpu.HaltWaiting);
        Assert.Equal(10, sleeping.Vcpu.Register(Registers.Rbx));
        Assert.Equal(10, sleeping.Vcpu.Register(Registers.R12));
        Assert.Equal(10, sleeping.Vcpu.Lapic!.Eois);

        var halted = new GuestRig(Idle("cli")).Run(Duration.FromMicroseconds(10_500));
        Assert.True(halted.Vcpu.Halted);
        Assert.Equal(0, halted.Vcpu.Register(Registers.Rbx));
        Assert.Equal(10, halted.Vcpu.Lapic!.Expiries); // the timer still ran; a vCPU halted for good takes nothing
        Assert.Equal(0, halted.Vcpu.InterruptsDelivered(InterruptSource.LapicTimer));
    }

    [Fact]
    public void Hlt_without_an_armed_timer_halts_for_good_even_with_interrupts_enabled()
    {
        var rig = new GuestRig("sti\nhlt\nmov rax, 1").Run();
        Assert.True(rig.Vcpu.Halted);
        Assert.Equal(0, rig.Vcpu.Register(Registers.Rax));
    }

    [Fact]
    public void A_periodic_apic_timer_at_1_khz_delivers_exactly_1000_interrupts_in_one_second()
    {
        // Armed by the wrmsr issued at cycle 311 (155,500 ps); expiries at 155 ns + k ms, k = 1..1000
        // within one second of it.
        string source = Idt + Arm(0x20000 | 32, 100_000) + """
                sti
        busy:   work 1000cycles
                jmp busy
        handler: inc rbx

        """ + Eoi + """
                iretq
        """;
        var rig = new GuestRig(source);
        rig.Vcpu.Start(SimTime.Zero);
        rig.Sim.Run(SimTime.FromPicoseconds(155_000 + 1_000_000_000_000));
        Assert.Equal(1000, rig.Vcpu.InterruptsDelivered(InterruptSource.LapicTimer));
        Assert.Equal(1000, rig.Vcpu.Register(Registers.Rbx));
    }

    [Fact]
    public void Tsc_deadline_mode_fires_when_the_core_tsc_reaches_the_deadline()
    {
        // TSC-deadline mode (LVT bits 18:17 = 10), deadline = TSC now + 2,000,000 (1 ms at 2 GHz).
        string source = Idt + """
        start:  lidt [idt - 256]
                mov rcx, 0x832
                mov rax, 0x40020
                mov rdx, 0
                wrmsr
                rdtsc
                shl rdx, 32
                or rax, rdx
                add rax, 2000000
                mov rdx, rax
                shr rdx, 32
                mov rcx, 0x6E0
                wrmsr
                sti
        spin:   work 100cycles
                jmp spin
        handler: rdtsc
                 probe rax
                 cli
                 hlt
        """;
        var rig = new GuestRig(source).Run(Duration.FromMilliseconds(3));
        Assert.Equal(1, rig.Vcpu.InterruptsDelivered(InterruptSource.LapicTimer));
        ulong first = rig.Log.TscReads[0].Value;
        ulong fired = rig.Log.TscReads[1].Value;
        // Delivered at the first boundary (≤ 100 cycles of work late), plus delivery (150 cycles).
        Assert.InRange((long)(fired - first), 2_000_000, 2_000_000 + 100 + 150 + 24);
    }

    [Fact]
    public void An_interrupt_without_an_idt_is_a_fault()
    {
        var rig = new GuestRig("""
                mov rcx, 0x832
                mov rax, 32
                mov rdx, 0
                wrmsr
                mov rcx, 0x838
                mov rax, 10
                wrmsr
                sti
        spin:   work 100cycles
                jmp spin
        """).Run(Duration.FromMilliseconds(1));
        var fault = Assert.Single(rig.Log.Faults);
        Assert.Equal(GuestFaultKind.GeneralProtection, fault.Kind);
        Assert.Contains("no IDT", fault.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Delivery_is_folded_into_the_fingerprint()
    {
        static Fingerprint Run(long lvt) => new GuestRig(Idt + Arm(lvt, 1_000) + """
                sti
                work 100000cycles
                cli
                hlt
        handler: iretq
        """).Run(Duration.FromMilliseconds(1)).Sim.Fingerprint;
        Assert.Equal(Run(32), Run(32));
        Assert.NotEqual(Run(32), Run(33));
    }

    // ---- under KVM

    private sealed class KvmRig
    {
        public KvmRig(CpuModel cpu, string program, string policy = "kvm-2011")
        {
            Sim = new Simulator(1);
            var hc = new HostConfig { Id = "h", Cpu = cpu, Frequency = Frequency.FromMegahertz(2_000), CoresPerSocket = 2 };
            Host = new Host(hc, Sim);
            var hv = new Hypervisor(new GuestExecutor(Sim), HypervisorConfig.Find(policy)!);
            Vm = hv.CreateVm(new VmConfig { Id = "vm0" }, Host, Assembler.Assemble(program), Log);
        }

        public Simulator Sim { get; }
        public Host Host { get; }
        public Vm Vm { get; }
        public ObservationLog Log { get; } = new();
        public ExitStats Exits => Vm.Platforms[0].Exits;
        public Vcpu Vcpu => Vm.Vcpus[0];

        public KvmRig Run(SimTime until)
        {
            Vm.Start(Sim.Now);
            Sim.Run(until);
            return this;
        }
    }

    // KVM counts 1 ns per APIC bus cycle: 1 ms = 1,000,000.
    private static string KvmTick(string body) => Idt + Arm(0x20000 | 32, 1_000_000) + $"""
                sti
        {body}
        handler: inc rbx

        """ + Eoi + """
                iretq
        """;

    private const string Busy = "busy:   work 1000cycles\n        jmp busy";
    private const string Idle = "idle:   hlt\n        jmp idle";

    [Fact]
    public void Under_kvm_without_apicv_a_busy_tick_costs_an_external_interrupt_and_an_eoi_exit()
    {
        // Exits per tick (busy, no APICv) = 1 external interrupt (VMX 1) + 1 EOI WRMSR (VMX 32);
        // plus the 3 arming WRMSRs once. 1,000 ticks in the second after arming.
        var rig = new KvmRig(CpuPresets.IntelNehalem, KvmTick(Busy)).Run(SimTime.FromPicoseconds(10_000_000 + 1_000_000_000_000));
        Assert.Equal(1000, rig.Vcpu.InterruptsDelivered(InterruptSource.LapicTimer));
        Assert.Equal(1000, rig.Exits.ExternalInterrupt);
        Assert.Equal(1000 + 3, rig.Exits.Apic);
        Assert.Equal(0, rig.Exits.Hlt);
        Assert.Equal(1000, rig.Exits.ByCode[1]);
        Assert.Equal(1003, rig.Exits.ByCode[32]);
    }

    [Fact]
    public void Under_kvm_without_apicv_an_idle_tick_costs_a_hlt_and_an_eoi_exit()
    {
        // Idle: the vCPU is out of guest mode (HLT exit) when the host timer fires, so no external
        // interrupt exit: exits per tick = 1 HLT (VMX 12) + 1 EOI WRMSR (VMX 32).
        var rig = new KvmRig(CpuPresets.IntelNehalem, KvmTick(Idle)).Run(SimTime.FromPicoseconds(10_000_000 + 1_000_000_000_000));
        Assert.Equal(1000, rig.Vcpu.InterruptsDelivered(InterruptSource.LapicTimer));
        Assert.Equal(0, rig.Exits.ExternalInterrupt);
        Assert.Equal(1000 + 1, rig.Exits.Hlt); // the first hlt waits for the first tick
        Assert.Equal(1000 + 3, rig.Exits.Apic);
    }

    [Fact]
    public void With_avic_the_eoi_does_not_exit()
    {
        // Zen 2 has AVIC: per busy tick 1 external interrupt (SVM 0x60) and no EOI exit.
        var rig = new KvmRig(CpuPresets.AmdZen2, KvmTick(Busy)).Run(SimTime.FromPicoseconds(10_000_000 + 1_000_000_000_000));
        Assert.Equal(1000, rig.Exits.ExternalInterrupt);
        Assert.Equal(1000, rig.Exits.ByCode[0x60]);
        Assert.Equal(3, rig.Exits.Apic);
    }

    [Fact]
    public void Modern_kvm_on_skylake_takes_tsc_deadline_expiries_as_preemption_timer_exits()
    {
        string source = Idt + """
        start:  lidt [idt - 256]
                mov rcx, 0x832
                mov rax, 0x40020
                mov rdx, 0
                wrmsr
                sti
        again:  rdtsc
                shl rdx, 32
                or rax, rdx
                add rax, 2000000
                mov rdx, rax
                shr rdx, 32
                mov rcx, 0x6E0
                wrmsr
                mov r12, rbx
        spin:   work 1000cycles
                cmp rbx, r12
                je spin
                jmp again
        handler: inc rbx

        """ + Eoi + """
                iretq
        """;
        var rig = new KvmRig(CpuPresets.IntelSkylake, source, "kvm-modern").Run(SimTime.FromPicoseconds(10_500_000_000));
        long ticks = rig.Vcpu.InterruptsDelivered(InterruptSource.LapicTimer);
        Assert.Equal(10, ticks);
        Assert.Equal(ticks, rig.Exits.PreemptionTimer);
        Assert.Equal(ticks, rig.Exits.ByCode[52]);
        Assert.Equal(0, rig.Exits.ExternalInterrupt);
    }

    [Fact]
    public void Pit_channel_0_in_mode_2_ticks_at_the_kvm_hrtimer_interval_on_vcpu_0()
    {
        // 8259 ICW1..ICW4 with base 0x20, PIT channel 0 mode 2 with LATCH = 1193 (HZ = 1000):
        // KVM's hrtimer interval = 1193 × 10^9 / 1,193,182 = 999,847 ns (floor). Busy, each tick
        // costs an external interrupt exit and the EOI (out 0x20) a port I/O exit.
        string source = Idt + """
        start:  lidt [idt - 256]
                mov rax, 0x11
                out 0x20, eax
                mov rax, 0x20
                out 0x21, eax
                mov rax, 4
                out 0x21, eax
                mov rax, 1
                out 0x21, eax
                mov rax, 0
                out 0x21, eax
                mov rax, 0x34
                out 0x43, eax
                mov rax, 0xA9
                out 0x40, eax
                mov rax, 4
                out 0x40, eax
                sti
        busy:   work 1000cycles
                jmp busy
        handler: inc rbx
                 push rax
                 mov rax, 0x20
                 out 0x20, eax
                 pop rax
                 iretq
        """;
        var rig = new KvmRig(CpuPresets.IntelNehalem, source).Run(SimTime.FromPicoseconds(1_000_000_000_000));
        long pioBefore = 8; // the 8259 and PIT programming
        Assert.Equal(999_847, rig.Vm.Timers.PitIntervalNs);
        long ticks = rig.Vcpu.InterruptsDelivered(InterruptSource.Pit);
        Assert.InRange(ticks, 1000, 1000); // ⌊(10^9 − t_arm) / 999,847⌋ = 1000 for t_arm < 153 µs
        Assert.Equal(ticks, rig.Vm.Pit.Eois);
        Assert.Equal(ticks, rig.Exits.ExternalInterrupt);
        Assert.Equal(pioBefore + ticks, rig.Exits.Pio);
        Assert.Equal(0x20, rig.Vm.Pit.VectorBase);
    }

    [Fact]
    public void A_program_that_never_arms_a_timer_takes_no_interrupt_and_no_interrupt_exit()
    {
        var rig = new KvmRig(CpuPresets.IntelNehalem, "loop: work 1000cycles\njmp loop").Run(SimTime.FromPicoseconds(1_000_000_000));
        Assert.Equal(0, rig.Exits.Total);
        Assert.Null(rig.Vcpu.Lapic);
    }

    /// <summary>
    /// A generic periodic tick for these tests: <c>__k_timer_setup</c> (rsi = the APIC timer's initial
    /// count for one tick) loads the IDT, arms the x2APIC timer periodic (divide ÷1) and enables
    /// interrupts; <c>__k_timer_interrupt</c> enters <see cref="KernelLibrary.TimerTick"/>, writes the
    /// x2APIC EOI and returns with <c>iretq</c>. The profiles' own ticks are in <see cref="KernelLibrary"/>.
    /// </summary>
    private static readonly string TimerSource = string.Create(CultureInfo.InvariantCulture, $"""
        section .text
        __k_timer_setup:    lidt [__k_idt_timer - {8 * KernelLibrary.TimerVector}] ; base = entry - 8 × TimerVector
                            push rax
                            push rcx
                            push rdx
                            mov rcx, {ApicRegisters.MsrDivide} ; divide configuration: ÷1
                            mov rax, {ApicRegisters.DivideBy1}
                            mov rdx, 0
                            wrmsr
                            mov rcx, {ApicRegisters.MsrLvtTimer} ; LVT timer: periodic, vector TimerVector
                            mov rax, {((int)ApicTimerMode.Periodic << ApicRegisters.LvtTimerModeShift) | KernelLibrary.TimerVector}
                            wrmsr
                            mov rcx, {ApicRegisters.MsrInitialCount} ; initial count: one tick
                            mov rax, rsi
                            wrmsr
                            pop rdx
                            pop rcx
                            pop rax
                            sti
                            ret
        __k_timer_interrupt: push rax
                            push rcx
                            push rdx
                            kcall {KernelLibrary.TimerTick}             ; TimerTick
                            mov rcx, {ApicRegisters.MsrEoi} ; x2APIC EOI
                            mov rax, 0
                            mov rdx, 0
                            wrmsr
                            pop rdx
                            pop rcx
                            pop rax
                            iretq
        section .shared
        __k_idt_timer:      dq __k_timer_interrupt
        """);

    private sealed class TickCounter : IGuestKernel
    {
        public List<long> Ticks { get; } = [];

        public KernelCallResult Call(Vcpu vcpu, int service, SimTime at, long cycles, long exits)
        {
            Assert.Equal(KernelLibrary.TimerTick, service);
            Ticks.Add(at.Picoseconds);
            return KernelCallResult.Continue;
        }
    }

    [Fact]
    public void The_kernel_timer_routine_arms_a_periodic_tick_that_enters_the_tick_service()
    {
        // Bare metal: 100,000 bus cycles of 10 ns = 1 ms; the idle workload sleeps between ticks.
        var rig = new GuestRig("""
        start:  mov rsi, 100000
                call __k_timer_setup
        idle:   hlt
                jmp idle

        """ + TimerSource);
        var kernel = new TickCounter();
        rig.Vcpu.Kernel = kernel;
        rig.Run(Duration.FromMicroseconds(10_500));
        Assert.Equal(10, kernel.Ticks.Count);
        Assert.Equal(10, rig.Vcpu.Lapic!.Eois);
        Assert.Equal(KernelLibrary.TimerVector, rig.Vcpu.Lapic.Vector);
        Assert.True(rig.Vcpu.HaltWaiting);
        Assert.Equal(0x200_0000, rig.Vcpu.Register(Registers.Rsp));
    }
}

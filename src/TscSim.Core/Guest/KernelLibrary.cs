using System.Globalization;
using TscSim.Core.Abi;
using TscSim.Core.Hardware;

namespace TscSim.Core.Guest;

/// <summary>
/// The guest kernel's code: boot (TSC calibration against the PIT with HPET reference reads,
/// the TSC warp test between vCPUs) and <c>clock_gettime</c> with one read routine per
/// clocksource. Assembled after the workload; services of <see cref="GuestKernel"/> are entered
/// with <c>kcall</c>. Labels starting with <c>__k_</c>, and <c>start</c> and
/// <c>clock_gettime</c>, are reserved; a workload may only <c>call</c> the
/// <see cref="EntryPoints"/>. The library's first instruction, <c>kend</c> right after the
/// workload's last one, makes running past the workload's end a fault instead of a reboot.
/// </summary>
/// <remarks>
/// The routines follow the Linux code they model (docs/model.md "Guest kernel"): the pvclock
/// version loop with the global <c>last_value</c> guard (<c>pvclock_clocksource_read</c>,
/// arch/x86/kernel/pvclock.c), <c>pit_calibrate_tsc</c>'s polling loop with its loop-count and
/// 10×-delta rejection rules and <c>tsc_read_refs</c>'s bracket (SMI_TRESHOLD 50,000 cycles,
/// MAX_RETRIES 5: arch/x86/kernel/tsc.c as of 2.6.37; later kernels use tsc_khz &gt;&gt; 5), and
/// <c>check_tsc_warp</c>'s global lock and end check every 8 iterations (arch/x86/kernel/tsc_sync.c).
/// They are written for this ISA, not copied.
/// </remarks>
public static class KernelLibrary
{
    /// <summary>Kernel service numbers (the operand of <c>kcall</c>).</summary>
    public const int Boot = 1, TimekeepingInit = 2, BringUpNext = 3, WarpResult = 4, EnterWorkload = 5,
        CalibrationBegin = 6, CalibrationStep = 7, ReadBegin = 10, ReadEnd = 11,
        PitCalibrated2618 = 14, TickBegin2618 = 15, HpetInit2618 = 25, HpetCalibrated2618 = 26;

    /// <summary>Clocksource numbers the read path dispatches on (r8 after <see cref="ReadBegin"/>).</summary>
    public const int CsTsc = 0, CsKvmclock = 1, CsHpet = 2, CsAcpiPm = 3;

    /// <summary>Read-path flags (rbx after <see cref="ReadBegin"/>).</summary>
    public const int FlagClampNegative = 1, FlagHonourStable = 2, FlagRdtscpWhenTrapped = 4, FlagCpuidBeforeRdtsc = 8;

    /// <summary>rbx after <see cref="Boot"/> on an application processor, once the boot processor has woken it.</summary>
    public const int ApWoken = 10;

    /// <summary>rbx after <see cref="BringUpNext"/> when every vCPU is online (0: next AP without warp test, 1: with it).</summary>
    public const int AllOnline = 2;

    /// <summary>
    /// SMI_TRESHOLD (arch/x86/kernel/tsc.c, 2.6.37): tsc_read_refs accepts a TSC–reference–TSC
    /// bracket shorter than this, in TSC cycles. The kernel's value comes from its profile
    /// (<see cref="OsProfile.ReadRefsThresholdCycles"/>) in rbp, set by <see cref="CalibrationBegin"/>.
    /// </summary>
    public const int SmiThresholdCycles = 50_000;

    /// <summary>
    /// TSC_DEFAULT_THRESHOLD = 0x20000 (Linux 6.18 arch/x86/kernel/tsc.c): today's tsc_read_refs
    /// takes <c>tsc_khz &gt;&gt; 5</c> once tsc_khz is known and this before, i.e. during the boot
    /// calibration (pit_hpet_ptimer_calibrate_cpu runs before tsc_khz is set).
    /// </summary>
    public const int TscDefaultThresholdCycles = 0x20000;

    /// <summary>MAX_RETRIES (tsc.c): tsc_read_refs' tries before it gives up on the reference.</summary>
    public const int ReadRefsRetries = 5;

    /// <summary>pit_calibrate_tsc (tsc.c) rejects a window whose largest TSC delta exceeds this many times the smallest ("delta > 10*min").</summary>
    public const int PitDeltaRejectFactor = 10;

    /// <summary>check_tsc_warp (arch/x86/kernel/tsc_sync.c) checks for its end every this many iterations (<c>!(i &amp; 7)</c>).</summary>
    public const int WarpCheckEvery = 8;

    /// <summary>check_tsc_warp's iteration limit (<c>i &gt; 10000000</c>): the loop ends here even before its timeout.</summary>
    public const int WarpIterationLimit = 10_000_000;

    /// <summary>The HPET main counter's guest address, what the HPET reads load (<see cref="GuestAddresses.HpetBase"/> + <see cref="GuestAddresses.HpetMainCounter"/>).</summary>
    private const long HpetCounterAddress = GuestAddresses.HpetBase + GuestAddresses.HpetMainCounter;

    /// <summary>The routines a workload may <c>call</c>, with what they do (docs/scenario-format.md lists them).</summary>
    public static readonly IReadOnlyList<(string Name, string Summary)> EntryPointsWithSummary =
    [
        ("clock_gettime", "rax = the guest's clock in nanoseconds (CLOCK_MONOTONIC through the current clocksource); every other register is preserved; the read is recorded"),
    ];

    /// <summary>The names of <see cref="EntryPointsWithSummary"/>.</summary>
    public static readonly IReadOnlyList<string> EntryPoints = [.. EntryPointsWithSummary.Select(e => e.Name)];

    /// <summary>The label of the <c>kend</c> that follows the workload's last instruction.</summary>
    public const string WorkloadEndLabel = "__k_workload_end";

    /// <summary>The source text.</summary>
    public static readonly string Source = string.Create(CultureInfo.InvariantCulture, $"""
        section .text
        __k_workload_end: kend                  ; the workload ran past its last instruction: a fault
        ; ---------------------------------------------------------------- boot
        start:          kcall {Boot}            ; Boot: application processors wait here (rbx = ApWoken when woken)
                        cmp rbx, {ApWoken}
                        je __k_ap
                        test rbx, rbx
                        jz __k_bsp_tk
                        call __k_calibrate
        __k_bsp_tk:     kcall {TimekeepingInit} ; TimekeepingInit
        __k_bsp_next:   kcall {BringUpNext}     ; BringUpNext: rbx = 0 no warp test, 1 warp test, AllOnline
                        cmp rbx, {AllOnline}
                        je __k_enter
                        test rbx, rbx
                        jz __k_bsp_next
                        call __k_warp
                        kcall {WarpResult}      ; WarpResult
                        jmp __k_bsp_next
        __k_ap:         test r12, r12
                        jz __k_enter
                        call __k_warp
        __k_enter:      kcall {EnterWorkload}   ; EnterWorkload: registers reset, jumps to the workload

        ; ------------------------------------------------ TSC calibration (BSP)
        __k_calibrate:  kcall {CalibrationBegin} ; CalibrationBegin: rsi = latch, r8 = minimum loops, rbp = tsc_read_refs threshold
        __k_cal_loop:   call __k_read_refs
                        mov r12, r14            ; tsc1
                        mov r13, r15            ; hpet1 (-1: no reference)
                        call __k_pit_cal        ; r9 = t2 - t1, or -1
                        call __k_read_refs      ; r14 = tsc2, r15 = hpet2
                        kcall {CalibrationStep} ; CalibrationStep: rbx = 1 to try again
                        test rbx, rbx
                        jnz __k_cal_loop
                        ret

        ; tsc_read_refs: TSC, HPET main counter, TSC; accepted when the bracket is under rbp cycles
        __k_read_refs:  mov r10, {ReadRefsRetries}
        __k_rr_try:     lfence
                        rdtsc
                        shl rdx, 32
                        or rax, rdx
                        mov r11, rax
                        mov eax, dword [0x{HpetCounterAddress:X}]
                        mov r15, rax
                        lfence
                        rdtsc
                        shl rdx, 32
                        or rax, rdx
                        mov r14, rax
                        sub rax, r11
                        cmp rax, rbp            ; the era's threshold (CalibrationBegin)
                        jb __k_rr_ok
                        dec r10
                        jnz __k_rr_try
                        mov r15, -1
        __k_rr_ok:      ret

        ; pit_calibrate_tsc: PIT channel 2 one-shot of rsi ticks; poll OUT2, tracking TSC deltas
        __k_pit_cal:    in eax, {GuestAddresses.PortB}
                        and rax, {~Abi.GuestAddresses.PortBSpeakerData} ; speaker off
                        or rax, {GuestAddresses.PortBGate2} ; gate 2 on
                        out {GuestAddresses.PortB}, eax
                        mov rax, {GuestAddresses.PitChannel2OneShot} ; channel 2, lobyte/hibyte, mode 0, binary
                        out {GuestAddresses.PitCommand}, eax
                        mov rax, rsi
                        out {GuestAddresses.PitChannel2}, eax
                        mov rax, rsi
                        shr rax, 8
                        out {GuestAddresses.PitChannel2}, eax
                        lfence
                        rdtsc
                        shl rdx, 32
                        or rax, rdx
                        mov r10, rax            ; t1
                        mov r11, rax            ; previous read
                        mov rcx, -1             ; minimum delta
                        xor rbx, rbx            ; maximum delta
                        xor rdi, rdi            ; loops
        __k_pc_loop:    in eax, {GuestAddresses.PortB}
                        test rax, {GuestAddresses.PortBOut2}
                        jnz __k_pc_done
                        lfence
                        rdtsc
                        shl rdx, 32
                        or rax, rdx
                        mov rdx, rax
                        sub rdx, r11
                        mov r11, rax
                        cmp rdx, rcx
                        jae __k_pc_nomin
                        mov rcx, rdx
        __k_pc_nomin:   cmp rdx, rbx
                        jbe __k_pc_nomax
                        mov rbx, rdx
        __k_pc_nomax:   inc rdi
                        jmp __k_pc_loop
        __k_pc_done:    cmp rdi, r8
                        jb __k_pc_fail          ; too few loops: disturbed
                        mov rax, rcx
                        imul rax, {PitDeltaRejectFactor}
                        cmp rbx, rax
                        ja __k_pc_fail          ; one delta over PitDeltaRejectFactor x the smallest: disturbed
                        mov r9, r11
                        sub r9, r10
                        ret
        __k_pc_fail:    mov r9, -1
                        ret

        ; ---------------------------------- check_tsc_warp (both vCPUs of a pair)
        ; rcx = timeout in TSC cycles, r13 = rendezvous count for this pair
        __k_warp:       mov rax, 1
                        lock xadd [__k_start_count], rax
        __k_w_wait1:    mov rax, [__k_start_count]
                        cmp rax, r13
                        jge __k_w_go
                        pause
                        jmp __k_w_wait1
        __k_w_go:       lfence
                        rdtsc
                        shl rdx, 32
                        or rax, rdx
                        mov r9, rax
                        add r9, rcx             ; end
                        xor r10, r10            ; iterations
        __k_w_loop:     xor rax, rax
                        mov rdx, 1
                        lock cmpxchg [__k_lock], rdx
                        je __k_w_locked
                        pause
                        jmp __k_w_loop
        __k_w_locked:   mov r11, [__k_last_tsc] ; prev
                        lfence
                        rdtsc
                        shl rdx, 32
                        or rax, rdx             ; now
                        mov [__k_last_tsc], rax
                        cmp r11, rax
                        jbe __k_w_nowarp
                        mov rdx, r11
                        sub rdx, rax
                        mov r8, [__k_max_warp]
                        cmp rdx, r8
                        jbe __k_w_count
                        mov [__k_max_warp], rdx
        __k_w_count:    mov r8, [__k_nr_warps]
                        inc r8
                        mov [__k_nr_warps], r8
        __k_w_nowarp:   inc r10
                        test r10, {WarpCheckEvery - 1}
                        jnz __k_w_unlock
                        cmp rax, r9
                        ja __k_w_last
                        cmp r10, {WarpIterationLimit}
                        ja __k_w_last
        __k_w_unlock:   mov qword [__k_lock], 0
                        jmp __k_w_loop
        __k_w_last:     mov qword [__k_lock], 0
                        mov rax, 1
                        lock xadd [__k_stop_count], rax
        __k_w_wait2:    mov rax, [__k_stop_count]
                        cmp rax, r13
                        jge __k_w_out
                        pause
                        jmp __k_w_wait2
        __k_w_out:      ret

        ; ------------------------------------------------------- clock_gettime
        ; rax = guest nanoseconds; every other register is preserved
        clock_gettime:  push rbx
                        push rcx
                        push rdx
                        push rsi
                        push r8
                        push r9
                        push r10
                        push r11
                        kcall {ReadBegin}       ; ReadBegin: r8 clocksource, r9 cycle_last, r10 mult, rsi mask, rbx flags, r11 pvclock
                        cmp r8, {CsKvmclock}
                        je __k_kvmclock
                        cmp r8, {CsHpet}
                        je __k_hpet
                        cmp r8, {CsAcpiPm}
                        je __k_acpi_pm
                        lfence                  ; tsc: rdtsc_ordered
                        rdtsc
                        shl rdx, 32
                        or rax, rdx
                        jmp __k_delta
        __k_hpet:       mov eax, dword [0x{HpetCounterAddress:X}]
                        jmp __k_delta
        __k_acpi_pm:    mov rdx, {GuestAddresses.PmTimerPort}
                        in eax, dx
                        jmp __k_delta
        __k_kvmclock:   mov r8d, dword [r11 + {PvclockAbi.VersionOffset}] ; version
                        and r8, -2
                        lfence
                        movzx rax, byte [r11 + {PvclockAbi.FlagsOffset}]
                        test rax, {PvclockAbi.TscTrappedBit} ; the TSC is trapped (this model's pvclock flag)
                        jz __k_kv_rdtsc
                        test rbx, {FlagRdtscpWhenTrapped} ; and this kernel reads RDTSCP then
                        jz __k_kv_rdtsc
                        rdtscp
                        jmp __k_kv_tsc
        __k_kv_rdtsc:   rdtsc
        __k_kv_tsc:     shl rdx, 32
                        or rax, rdx
                        sub rax, [r11 + {PvclockAbi.TscTimestampOffset}] ; - tsc_timestamp
                        movsx rcx, byte [r11 + {PvclockAbi.ShiftOffset}]
                        test rcx, rcx
                        js __k_kv_right
                        shl rax, cl
                        jmp __k_kv_scale
        __k_kv_right:   neg rcx
                        shr rax, cl
        __k_kv_scale:   mov ecx, dword [r11 + {PvclockAbi.MulOffset}]
                        mul rcx
                        shrd rax, rdx, 32
                        add rax, [r11 + {PvclockAbi.SystemTimeOffset}] ; + system_time
                        movzx rcx, byte [r11 + {PvclockAbi.FlagsOffset}]
                        mov edx, dword [r11 + {PvclockAbi.VersionOffset}]
                        cmp rdx, r8
                        jne __k_kvmclock        ; the record changed: read again
                        test rcx, {PvclockAbi.TscStableBit} ; PVCLOCK_TSC_STABLE_BIT
                        jz __k_kv_guard
                        test rbx, {FlagHonourStable} ; honoured by this kernel
                        jnz __k_delta
        __k_kv_guard:   mov rcx, [__k_last_value]
        __k_kv_cmp:     cmp rax, rcx
                        jbe __k_kv_last         ; never below what any vCPU returned
                        mov rdx, rax
                        mov rax, rcx
                        lock cmpxchg [__k_last_value], rdx
                        je __k_kv_won
                        mov rcx, rax
                        mov rax, rdx
                        jmp __k_kv_cmp
        __k_kv_won:     mov rax, rdx
                        jmp __k_delta
        __k_kv_last:    mov rax, rcx
        __k_delta:      sub rax, r9             ; (now - cycle_last) & mask
                        and rax, rsi
                        test rbx, {FlagClampNegative} ; a read behind cycle_last counts as no time
                        jz __k_mul
                        test rax, rax
                        jns __k_mul
                        xor rax, rax
        __k_mul:        mov rcx, rax
                        mul r10
                        kcall {ReadEnd}         ; ReadEnd: rax = base + ((rdx:rax + frac) >> shift)
        __k_read_ret:   pop r11
                        pop r10
                        pop r9
                        pop r8
                        pop rsi
                        pop rdx
                        pop rcx
                        pop rbx
                        ret

        section .shared
        __k_last_value: dq 0
        __k_lock:       dq 0
        __k_last_tsc:   dq 0
        __k_nr_warps:   dq 0
        __k_max_warp:   dq 0
        __k_start_count: dq 0
        __k_stop_count: dq 0
        """);

    // ---- issue 16: the timer interrupt

    /// <summary>Kernel service the timer handler enters on every tick (<c>kcall 12</c>): the kernel's do_timer.</summary>
    public const int TimerTick = 12;

    /// <summary>The vector of the local APIC timer tick (Linux's LOCAL_TIMER_VECTOR is 0xEF; any vector ≥ 32 works).</summary>
    public const int TimerVector = 0xEF;

    // ---- issue 16: Linux 2.6.18 x86_64 (vanilla arch/x86_64/kernel/time.c, apic.c, process.c)

    /// <summary>Labels the kernel jumps to for the 2.6.18 x86_64 profile.</summary>
    public const string Calibrate2618Label = "__k_cal2618", TickSetup2618Label = "__k_tick2618", Read2618Label = "__k_gtod2618",
        Hpet2618Label = "__k_hpet2618";

    /// <summary>TickBegin2618's rbx bits: an HPET is present (vxtime.hpet_address), hpet_use_timer (the HPET's timer 0 is IRQ0).</summary>
    public const int Flag2618HpetPresent = 1, Flag2618HpetTimer = 2;

    /// <summary>The 8259's vector base the 2.6.18 kernel programs (IRQ0 = 0x20, as Linux's init_8259A).</summary>
    public const int Irq0Vector2618 = 0x20;

    /// <summary>
    /// The 2.6.18 x86_64 kernel code, appended after <see cref="Source"/> (so nothing before it
    /// moves): <c>pit_calibrate_tsc</c> (one 50 ms window of PIT channel 2, latch 59,659, no checks;
    /// the kernel computes (end − start) / 50 kHz), <c>get_cycles_sync</c> (CPUID before RDTSC
    /// unless X86_FEATURE_SYNC_RDTSC, which only Intel sets: rbx bit 8), the timer setup
    /// (IDT, local APIC timer periodic with divide 16 and TMICT = clocks / 16 as __setup_APIC_LVTT,
    /// on the BSP also the 8259 (ICW1–4, vector base 0x20, IRQ0 unmasked) and, unless the HPET's
    /// timer is IRQ0, PIT channel 0 mode 2 with LATCH as pit_init), the IRQ0 handler (timer_interrupt
    /// → main_timer_handler: HPET counter read when an HPET exists, with hpet_use_timer also
    /// HPET_T0_CMP and HPET_COUNTER again, get_cycles_sync, the kernel's arithmetic in
    /// <see cref="TickTimekeeping"/>, 8259 EOI), the local APIC timer handler
    /// (smp_apic_timer_interrupt: ack_APIC_irq = xAPIC EOI write; process accounting is not
    /// modelled), do_gettimeofday's offset read (TSC clamped at last_tsc, or the HPET counter), and
    /// time_init's HPET path: <c>hpet_init</c> (HPET_ID, HPET_PERIOD), <c>hpet_timer_stop_set_go</c>
    /// (halt, counter 0, timer 0 periodic 32-bit with SETVAL, comparator and period hpet_tick,
    /// LEGACY | ENABLE) and <c>hpet_calibrate_tsc</c> (vanilla 2.6.18 arch/x86_64/kernel/time.c).
    /// </summary>
    public static readonly string Tick2618Source = """
        section .text
        __k_cal2618:    in eax, 0x61            ; pit_calibrate_tsc: (inb(0x61) & ~0x02) | 0x01
                        and rax, -3
                        or rax, 1
                        out 0x61, eax
                        mov rax, 0xB0           ; channel 2, mode 0, LSB/MSB
                        out 0x43, eax
                        mov rax, 0x0B           ; 59659 = PIT_TICK_RATE / (1000 / 50) = 0xE90B
                        out 0x42, eax
                        mov rax, 0xE9
                        out 0x42, eax
                        call __k_cycles_sync    ; start
                        mov r12, rax
        __k_c26_loop:   in eax, 0x61
                        test rax, 0x20
                        jz __k_c26_loop
                        call __k_cycles_sync    ; end
                        sub rax, r12
                        kcall 14                ; PitCalibrated2618: cpu_khz = (end - start) / 50
                        jmp __k_bsp_tk
        __k_cycles_sync: test rbx, 8            ; get_cycles_sync: rax = TSC; CPUID first unless SYNC_RDTSC
                        jz __k_cs_rd
                        push rbx
                        push rcx
                        xor rax, rax
                        cpuid
                        pop rcx
                        pop rbx
        __k_cs_rd:      rdtsc
                        shl rdx, 32
                        or rax, rdx
                        ret
        __k_tick2618:   lidt [__k_idt26 - 256]  ; rsi = TMICT, rdx = LATCH (0 on an AP)
                        mov rax, 3
                        mov dword [0xFEE003E0], eax ; TDCR: divide by 16
                        mov rax, 0x200EF
                        mov dword [0xFEE00320], eax ; LVTT: periodic, LOCAL_TIMER_VECTOR
                        mov rax, rsi
                        mov dword [0xFEE00380], eax ; TMICT = clocks / 16
                        test rdx, rdx
                        jz __k_t26_on
                        mov rcx, rdx
                        mov rax, 0x11           ; init_8259A: ICW1
                        out 0x20, eax
                        mov rax, 0x20           ; ICW2: IRQ0 at vector 0x20
                        out 0x21, eax
                        mov rax, 4              ; ICW3
                        out 0x21, eax
                        mov rax, 1              ; ICW4
                        out 0x21, eax
                        mov rax, 0xFE           ; IRQ0 unmasked
                        out 0x21, eax
                        test rcx, rcx           ; rdx = -1: hpet_use_timer, IRQ0 is the HPET's timer 0 (no pit_init)
                        js __k_t26_on
                        mov rax, 0x34           ; pit_init: channel 0, mode 2, LSB/MSB
                        out 0x43, eax
                        mov rax, rcx
                        and rax, 0xFF
                        out 0x40, eax
                        mov rax, rcx
                        shr rax, 8
                        out 0x40, eax
        __k_t26_on:     sti
                        kcall 5                 ; EnterWorkload
        __k_irq0_2618:  push rax                ; timer_interrupt -> main_timer_handler
                        push rbx
                        push rcx
                        push rdx
                        push r8
                        kcall 15                ; TickBegin2618: rbx = 1 HPET present | 2 hpet_use_timer | 8 CPUID before RDTSC
                        xor r8, r8
                        test rbx, 1
                        jz __k_i0_tsc
                        mov r8d, dword [0xFED000F0] ; offset = hpet_readl(HPET_COUNTER)
                        test rbx, 2
                        jz __k_i0_tsc
                        mov r8d, dword [0xFED00108] ; offset = hpet_readl(HPET_T0_CMP) - hpet_tick (in TimerTick)
                        mov ecx, dword [0xFED000F0] ; delay = hpet_readl(HPET_COUNTER) - offset
        __k_i0_tsc:     call __k_cycles_sync    ; tsc = get_cycles_sync()
                        kcall 12                ; TimerTick: rax = tsc, r8 = HPET counter or T0_CMP, rcx = HPET counter (hpet_use_timer)
                        mov rax, 0x20
                        out 0x20, eax           ; 8259 EOI (KVM's PIT ack notifier)
                        pop r8
                        pop rdx
                        pop rcx
                        pop rbx
                        pop rax
                        iretq
        __k_lapic_2618: push rax                ; smp_apic_timer_interrupt
                        xor rax, rax
                        mov dword [0xFEE000B0], eax ; ack_APIC_irq
                        pop rax
                        iretq
        __k_hpet2618:   mov eax, dword [0xFED00000] ; hpet_init: id = hpet_readl(HPET_ID)
                        mov r12, rax
                        mov eax, dword [0xFED00004] ; hpet_period = hpet_readl(HPET_PERIOD)
                        mov r13, rax
                        kcall 25                ; HpetInit2618: rax = hpet_tick (0: hpet_init failed), rcx = hpet_use_timer
                        test rax, rax
                        jz __k_cal2618          ; no usable HPET: pit_init, pit_calibrate_tsc
                        mov r14, rax            ; hpet_timer_stop_set_go(hpet_tick)
                        mov r15, rcx
                        mov eax, dword [0xFED00010] ; cfg = hpet_readl(HPET_CFG)
                        and rax, -4             ; cfg &= ~(HPET_CFG_ENABLE | HPET_CFG_LEGACY)
                        mov rsi, rax
                        mov dword [0xFED00010], eax
                        xor rax, rax
                        mov dword [0xFED000F0], eax ; hpet_writel(0, HPET_COUNTER)
                        mov dword [0xFED000F4], eax ; hpet_writel(0, HPET_COUNTER + 4)
                        test r15, r15
                        jz __k_h26_go
                        mov rax, 0x14C          ; HPET_TN_ENABLE | HPET_TN_PERIODIC | HPET_TN_SETVAL | HPET_TN_32BIT
                        mov dword [0xFED00100], eax ; HPET_T0_CFG
                        mov rax, r14
                        mov dword [0xFED00108], eax ; HPET_T0_CMP: the first interrupt
                        mov dword [0xFED00108], eax ; HPET_T0_CMP: the period
                        or rsi, 2               ; cfg |= HPET_CFG_LEGACY
        __k_h26_go:     or rsi, 1               ; cfg |= HPET_CFG_ENABLE
                        mov rax, rsi
                        mov dword [0xFED00010], eax
                        test r15, r15
                        jz __k_cal2618          ; !hpet_use_timer: pit_init, pit_calibrate_tsc
                        mov r8d, dword [0xFED000F0] ; hpet_calibrate_tsc: hpet_start
                        rdtsc                   ; rdtscl(tsc_start)
                        mov r9, rax
        __k_hc_loop:    mov r10d, dword [0xFED000F0] ; hpet_now
                        call __k_cycles_sync    ; tsc_now = get_cycles_sync()
                        mov r11, rax
                        sub rax, r9             ; (int)(tsc_now - tsc_start) < TICK_COUNT
                        shl rax, 32
                        sar rax, 32
                        cmp rax, 100000000
                        jge __k_hc_done
                        mov rax, r10            ; && (int)(hpet_now - hpet_start) < TICK_COUNT
                        sub rax, r8
                        shl rax, 32
                        sar rax, 32
                        cmp rax, 100000000
                        jl __k_hc_loop
        __k_hc_done:    mov rax, r11
                        sub rax, r9
                        mov rcx, r10
                        sub rcx, r8
                        kcall 26                ; HpetCalibrated2618: cpu_khz from rax = TSC and rcx = HPET differences (int)
                        jmp __k_bsp_tk
        __k_gtod2618:   cmp r8, 2               ; do_gettimeoffset: r8 mode, r9 last, rbx flags
                        je __k_g26_hpet
                        cmp r8, 3
                        je __k_g26_pm
                        call __k_cycles_sync
                        sub rax, r9             ; if (t < last_tsc) t = last_tsc
                        jae __k_g26_out
                        xor rax, rax
                        jmp __k_g26_out
        __k_g26_hpet:   mov eax, dword [0xFED000F0]
                        sub rax, r9             ; the low 32 bits count (unsigned int arithmetic)
                        jmp __k_g26_out
        __k_g26_pm:     mov rdx, 0x608
                        in eax, dx
                        sub rax, r9
                        and rax, 0xFFFFFF
        __k_g26_out:    mov rcx, rax
                        kcall 11                ; ReadEnd: usec = xtime / 1000 + offset
                        jmp __k_read_ret
        section .shared
        __k_idt26:      dq __k_irq0_2618
        """ + string.Concat(Enumerable.Repeat("\n        dq 0", 0xEF - 0x21)) + "\n" + """
                        dq __k_lapic_2618
        """;

    // ---- issue 16: Linux modern (NO_HZ_IDLE, TSC-deadline local APIC timer, x2APIC): see NoHzTick

    /// <summary>Kernel services of the modern tick (<c>kcall</c> operands).</summary>
    public const int NoHzSetup = 16, NoHzInterrupt = 17, NoHzIdleEnter = 18, NoHzIdleExit = 19, NoHzIdleDone = 20, NoHzIpi = 21;

    /// <summary>LOCAL_TIMER_VECTOR and RESCHEDULE_VECTOR (arch/x86/include/asm/irq_vectors.h, Linux 6.18).</summary>
    public const int LocalTimerVectorModern = 0xEC, RescheduleVector = 0xFD;

    /// <summary>Labels of the modern tick's code.</summary>
    public const string NoHzSetupLabel = "__k_nohz_setup", NoHzIdleLabel = "__k_nohz_idle", NoHzDeadLabel = "__k_nohz_dead";

    /// <summary>
    /// The modern kernel's tick code, appended after <see cref="Tick2618Source"/>:
    /// <c>__k_nohz_setup</c> (each CPU before its workload: IDT, LVT timer in TSC-deadline mode
    /// with LOCAL_TIMER_VECTOR as lapic_timer_set_oneshot, the first tick, <c>sti</c>);
    /// <c>__k_nohz_arm</c> (lapic_next_deadline: <c>rdtsc</c>, + the delta the kernel computed,
    /// WRMSR IA32_TSC_DEADLINE); the timer interrupt (sysvec_apic_timer_interrupt: apic_eoi =
    /// x2APIC WRMSR 0x80B first, then hrtimer_interrupt, which reprograms the deadline, and when
    /// a timer was queued on an idle CPU the reschedule IPI: x2APIC ICR WRMSR 0x830); the
    /// reschedule IPI handler (EOI); and <c>__k_nohz_idle</c>, which a workload's <c>hlt</c> enters
    /// (the idle loop: tick_nohz_idle_stop_tick, <c>sti; hlt</c>, tick_nohz_idle_exit; every register
    /// and flag of the workload is kept).
    /// </summary>
    public static readonly string NoHzSource = string.Create(CultureInfo.InvariantCulture, $"""
        section .text
        __k_nohz_setup: lidt [__k_idt_nohz - {8 * LocalTimerVectorModern}]
                        mov rcx, {ApicRegisters.MsrLvtTimer} ; LVT timer: TSC-deadline, LOCAL_TIMER_VECTOR
                        mov rax, {((int)ApicTimerMode.TscDeadline << ApicRegisters.LvtTimerModeShift) | LocalTimerVectorModern}
                        xor rdx, rdx
                        wrmsr
                        kcall {NoHzSetup}       ; NoHzSetup: rax = TSC delta of the first tick, rbx = 0
                        call __k_nohz_arm
                        sti
                        kcall {EnterWorkload}
        __k_nohz_arm:   test rbx, 2             ; rbx bit 1: lapic_timer_shutdown (ONESHOT_STOPPED)
                        jz __k_na_unmask
                        push rax
                        push rcx
                        push rdx
                        mov rcx, {ApicRegisters.MsrLvtTimer} ; LVT timer masked
                        mov rax, {LocalApicTimer.LvtMasked | ((uint)ApicTimerMode.TscDeadline << ApicRegisters.LvtTimerModeShift) | LocalTimerVectorModern}
                        xor rdx, rdx
                        wrmsr
                        mov rcx, {ApicRegisters.MsrInitialCount} ; TMICT = 0
                        xor rax, rax
                        wrmsr
                        pop rdx
                        pop rcx
                        pop rax
        __k_na_unmask:  test rbx, 1             ; rbx bit 0: lapic_timer_set_oneshot (back from ONESHOT_STOPPED)
                        jz __k_na_prog
                        push rax
                        push rcx
                        push rdx
                        mov rcx, {ApicRegisters.MsrLvtTimer}
                        mov rax, {((int)ApicTimerMode.TscDeadline << ApicRegisters.LvtTimerModeShift) | LocalTimerVectorModern}
                        xor rdx, rdx
                        wrmsr
                        pop rdx
                        pop rcx
                        pop rax
        __k_na_prog:    test rax, rax           ; lapic_next_deadline (rax = 0: nothing to program)
                        jz __k_na_out
                        push rcx
                        push rdx
                        mov rcx, rax
                        rdtsc
                        shl rdx, 32
                        or rax, rdx
                        add rax, rcx            ; tsc + clc * TSC_DIVISOR
                        mov rdx, rax
                        shr rdx, 32
                        mov rcx, {ApicRegisters.MsrTscDeadline}
                        wrmsr
                        pop rdx
                        pop rcx
        __k_na_out:     ret
        __k_nohz_irq:   push rax                ; sysvec_apic_timer_interrupt
                        push rbx
                        push rcx
                        push rdx
                        mov rcx, {ApicRegisters.MsrEoi} ; apic_eoi: x2APIC EOI
                        xor rax, rax
                        xor rdx, rdx
                        wrmsr
                        kcall {NoHzInterrupt}   ; NoHzInterrupt: rax = TSC delta, rbx = arm flags, rdx = CPU to wake + 1
                        call __k_nohz_arm
                        test rdx, rdx
                        jz __k_ni_out
                        dec rdx                 ; x2APIC ICR: destination in the high half
                        mov rax, {RescheduleVector}
                        mov rcx, {ApicRegisters.MsrIcr}
                        wrmsr
                        kcall {NoHzIpi}         ; NoHzIpi: the IPI reaches rdx's CPU
        __k_ni_out:     pop rdx
                        pop rcx
                        pop rbx
                        pop rax
                        iretq
        __k_nohz_resched: push rax              ; sysvec_reschedule_ipi: apic_eoi
                        push rcx
                        push rdx
                        mov rcx, {ApicRegisters.MsrEoi}
                        xor rax, rax
                        xor rdx, rdx
                        wrmsr
                        pop rdx
                        pop rcx
                        pop rax
                        iretq
        __k_nohz_idle:  kcall {NoHzIdleEnter}   ; NoHzIdleEnter: keeps rax, rbx, rcx, rdx, RFLAGS; rax = TSC delta, rbx = arm flags
                        call __k_nohz_arm
                        sti
                        hlt
                        kcall {NoHzIdleExit}    ; NoHzIdleExit: rax = TSC delta, rbx = arm flags
                        call __k_nohz_arm
                        kcall {NoHzIdleDone}    ; NoHzIdleDone: rax, rbx, rcx, rdx, RFLAGS as the workload left them
                        ret
        __k_nohz_dead:  hlt                     ; the workload halted with IF = 0: the vCPU stops for good
        section .shared
        __k_idt_nohz:   dq __k_nohz_irq
        """) + string.Concat(Enumerable.Repeat("\n        dq 0", RescheduleVector - LocalTimerVectorModern - 1)) + "\n        dq __k_nohz_resched\n";

    // ---- issue 16: Linux 2.6.18 i386 (arch/i386/kernel/tsc.c, time.c; include/asm-i386/mach-default/mach_timer.h)

    /// <summary>Kernel services of the 2.6.18 i386 code.</summary>
    public const int Calibrated386 = 22;

    /// <summary>Labels of the 2.6.18 i386 code.</summary>
    public const string Calibrate386Label = "__k_cal386", Irq0Body386Label = "__k_irq0_386";

    /// <summary>CALIBRATE_LATCH = (CLOCK_TICK_RATE × CALIBRATE_TIME_MSEC + 1000/2) / 1000 = (1,193,182 × 30 + 500) / 1000 = 35,795 (mach_timer.h).</summary>
    public const int CalibrateLatch386 = (1_193_182 * 30 + 500) / 1000;

    /// <summary>
    /// The 2.6.18 i386 code, appended after <see cref="NoHzSource"/>: <c>calculate_cpu_khz</c>
    /// (arch/i386/kernel/tsc.c) runs <c>mach_prepare_counter</c>, <c>rdtscll(start)</c>,
    /// <c>mach_countup</c> (count loops of <c>inb_p(0x61)</c> — an <c>inb</c> and the slow-down
    /// <c>outb</c> to port 0x80 — until OUT2 is set) and <c>rdtscll(end)</c> three times ("to ensure
    /// the cache is warm"); only the last window counts (the kernel computes the rest). The IRQ0
    /// body (timer_interrupt → do_timer → update_wall_time, which reads the clocksource once:
    /// TSC, HPET counter or PM timer), entered from the 2.6.18 IRQ0 entry after its pushes, ends
    /// with the 8259 EOI as the x86_64 one.
    /// </summary>
    public static readonly string I386Source = string.Create(CultureInfo.InvariantCulture, $"""
        section .text
        __k_cal386:     mov r13, 3              ; calculate_cpu_khz: for (i = 0; i < 3; i++)
        __k_c386_run:   in eax, 0x61            ; mach_prepare_counter: (inb(0x61) & ~0x02) | 0x01
                        and rax, -3
                        or rax, 1
                        out 0x61, eax
                        mov rax, 0xB0           ; channel 2, mode 0, LSB/MSB
                        out 0x43, eax
                        mov rax, {CalibrateLatch386 & 0xFF}
                        out 0x42, eax           ; outb_p: the write, then the slow-down outb to 0x80
                        out 0x80, eax
                        mov rax, {CalibrateLatch386 >> 8}
                        out 0x42, eax
                        out 0x80, eax
                        rdtsc                   ; rdtscll(start)
                        shl rdx, 32
                        or rax, rdx
                        mov r12, rax
                        xor rcx, rcx            ; mach_countup
        __k_c386_poll:  inc rcx
                        in eax, 0x61            ; inb_p(0x61)
                        out 0x80, eax
                        test rax, 0x20
                        jz __k_c386_poll
                        rdtsc                   ; rdtscll(end)
                        shl rdx, 32
                        or rax, rdx
                        dec r13
                        jnz __k_c386_run
                        sub rax, r12            ; rax = end - start, rcx = count
                        kcall {Calibrated386}   ; Calibrated386: cpu_khz = (delta + 15) / 30, or 0 on error
                        jmp __k_bsp_tk
        __k_irq0_386:   cmp r8, {CsHpet}         ; update_wall_time: clocksource_read (r8 = the clocksource)
                        {ReadClocksourceR8("__k_i386", "__k_i386_tick")}
        __k_i386_tick:  kcall {TimerTick}       ; TimerTick: do_timer
                        mov rax, 0x20
                        out 0x20, eax           ; 8259 EOI
                        pop r8
                        pop rdx
                        pop rcx
                        pop rbx
                        pop rax
                        iretq
        """);

    /// <summary>
    /// The tick handlers' clocksource read, after their <c>cmp r8, CsHpet</c>: rax = the HPET counter,
    /// the PM timer or (any other r8) the TSC, then on to <paramref name="done"/>. Nine source lines
    /// (labels <paramref name="prefix"/>_hpet and _pm), the first without indentation: it takes the
    /// place of a line of the caller's source text.
    /// </summary>
    private static string ReadClocksourceR8(string prefix, string done)
    {
        const string Column = "                "; // the instruction column of the kernel's source text
        return string.Join('\n',
            $"je {prefix}_hpet",
            $"{Column}cmp r8, {CsAcpiPm}",
            $"{Column}je {prefix}_pm",
            $"{Column}rdtsc",
            $"{Column}jmp {done}",
            string.Create(CultureInfo.InvariantCulture, $"{prefix}_hpet: mov eax, dword [0x{HpetCounterAddress:X}]"),
            $"{Column}jmp {done}",
            string.Create(CultureInfo.InvariantCulture, $"{prefix}_pm: mov rdx, {GuestAddresses.PmTimerPort}"),
            $"{Column}in eax, dx");
    }

    // ---- issue 16: a periodic local APIC tick (the FreeBSD, Solaris and Windows profiles)

    /// <summary>Kernel service at each periodic tick, before the clock owner reads its time source: r8 = the clocksource to read, −1 for none.</summary>
    public const int PeriodicBegin = 24;

    /// <summary>The periodic tick's setup label.</summary>
    public const string PeriodicSetupLabel = "__k_per_setup";

    /// <summary>
    /// A periodic tick, appended after <see cref="I386Source"/>: <c>__k_per_setup</c> (each CPU before
    /// its workload: IDT, x2APIC timer divide ÷1, LVT periodic at <see cref="TimerVector"/>, initial
    /// count rsi, <c>sti</c>); the handler reads the time source once on the clock-owning CPU (the
    /// OS's hardclock / clock() / KeUpdateSystemTime updating its time from it), enters
    /// <see cref="TimerTick"/> and writes the x2APIC EOI.
    /// </summary>
    public static readonly string PeriodicSource = string.Create(CultureInfo.InvariantCulture, $"""
        section .text
        __k_per_setup:  lidt [__k_idt_per - {8 * TimerVector}]
                        mov rcx, {ApicRegisters.MsrDivide} ; divide configuration: ÷1
                        mov rax, {ApicRegisters.DivideBy1}
                        xor rdx, rdx
                        wrmsr
                        mov rcx, {ApicRegisters.MsrLvtTimer} ; LVT timer: periodic, vector TimerVector
                        mov rax, {((int)ApicTimerMode.Periodic << ApicRegisters.LvtTimerModeShift) | TimerVector}
                        wrmsr
                        mov rcx, {ApicRegisters.MsrInitialCount} ; initial count: one tick
                        mov rax, rsi
                        wrmsr
                        sti
                        kcall {EnterWorkload}
        __k_per_irq:    push rax
                        push rcx
                        push rdx
                        push r8
                        kcall {PeriodicBegin}   ; PeriodicBegin: r8 = clocksource to read, -1 none
                        test r8, r8
                        js __k_per_tick
                        cmp r8, {CsHpet}
                        {ReadClocksourceR8("__k_per", "__k_per_tick")}
        __k_per_tick:   kcall {TimerTick}       ; TimerTick
                        mov rcx, {ApicRegisters.MsrEoi} ; x2APIC EOI
                        xor rax, rax
                        xor rdx, rdx
                        wrmsr
                        pop r8
                        pop rdx
                        pop rcx
                        pop rax
                        iretq
        section .shared
        __k_idt_per:    dq __k_per_irq
        """);
}


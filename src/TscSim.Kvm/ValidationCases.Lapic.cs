using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;
using static TscSim.Kvm.ValidationCsv;

namespace TscSim.Kvm;

/// <summary>The LAPIC case: exits per HLT with the local APIC timer armed (issue 17, once guest interrupts existed).</summary>
public sealed partial class ValidationCases
{
    /// <summary>How many times the LAPIC case arms the timer and halts.</summary>
    public const int HaltIterations = 1_000;

    /// <summary>The LAPIC timer's interval in the HLT case: 200 µs.</summary>
    public const long HaltIntervalNs = 200_000;

    /// <summary>
    /// <see cref="HaltIterations"/> times: arm the local APIC timer (x2APIC MSRs; one-shot with an
    /// initial count, or TSC-deadline at now + 200 µs), <c>sti; hlt</c>, take the timer
    /// interrupt (vector 32: EOI, count), <c>cli</c>; then probe the count and stop.
    /// </summary>
    public static string LapicHalt(ApicTimerMode mode, long tscKhz)
    {
        string setup = mode == ApicTimerMode.OneShot
            ? """
                  mov rcx, 0x832          ; x2APIC LVT timer
                  mov rax, 32             ; vector 32, one-shot, unmasked
                  mov rdx, 0
                  wrmsr
                  mov rcx, 0x83e          ; divide configuration
                  mov rax, 0xb            ; divide by 1
                  wrmsr
              """
            : """
                  mov rcx, 0x832          ; x2APIC LVT timer
                  mov rax, 0x40020        ; vector 32, TSC-deadline mode (bits 18:17 = 10), unmasked
                  mov rdx, 0
                  wrmsr
              """;
        string arm = mode == ApicTimerMode.OneShot
            ? $"""
                  mov rcx, 0x838          ; initial count
                  mov rax, {HaltIntervalNs}          ; 200 us at KVM's 1 GHz APIC bus (APIC_BUS_CYCLE_NS = 1)
                  mov rdx, 0
                  wrmsr
              """
            : $"""
                  rdtsc
                  shl rdx, 32
                  or rax, rdx
                  add rax, {tscKhz * HaltIntervalNs / 1_000_000}          ; 200 us of TSC cycles
                  mov rdx, rax
                  shr rdx, 32
                  mov rcx, 0x6e0          ; IA32_TSC_DEADLINE
                  wrmsr
              """;
        return $"""
            ; validate-kvm: HLT with the local APIC timer armed ({(mode == ApicTimerMode.OneShot ? "one-shot" : "TSC-deadline")}), {HaltIterations} times
            section .data
            idt:    resq 32             ; vectors 0-31: no gate
                    dq tick             ; vector 32: the timer
            ticks:  dq 0
            section .text
            start:
                lidt [idt]
            {setup}
                mov rbx, {HaltIterations}
            again:
            {arm}
                sti
                hlt                     ; H: wait for the timer
                cli
                dec rbx
                jne again
                mov rax, qword [ticks]
                probe rax               ; N: interrupts taken
                hlt
            tick:
                push rax
                push rcx
                push rdx
                mov rcx, 0x80b          ; x2APIC EOI
                mov rax, 0
                mov rdx, 0
                wrmsr
                mov rax, qword [ticks]
                inc rax
                mov qword [ticks], rax
                pop rdx
                pop rcx
                pop rax
                iretq
            """;
    }

    private void LapicHaltCases(ApicTimerMode mode)
    {
        string tag = mode == ApicTimerMode.OneShot ? "oneshot" : "tsc-deadline";
        string modeText = mode == ApicTimerMode.OneShot ? "one-shot" : "TSC-deadline";
        string text = LapicHalt(mode, Host.TscKhz);
        GuestProgram program = Assemble(text, $"lapic-halt ({tag})");
        int lineCount = LineOf(text, "; N:");
        string idHalt = $"hlt-lapic.{tag}.halt-exits", idUser = $"hlt-lapic.{tag}.userspace", idIrq = $"hlt-lapic.{tag}.interrupts";
        string factHalt = $"HLT exits during {Num(HaltIterations)} 'sti; hlt' with the LAPIC timer armed ({modeText}, 200 us)";
        string factUser = $"exits reaching userspace during them ({modeText}; KVM_EXIT_HLT included)";
        string factIrq = $"timer interrupts the guest took ({modeText})";
        const string WhyHalt = "a count of HLT exits (KVM's halt_exits statistic: 6.18.2 x86.c __kvm_emulate_halt counts every HLT, and with an in-kernel APIC blocks the vCPU instead of exiting to userspace), not their latency; the timer fires while the vCPU is halted, so no interrupt exit is expected";
        const string WhyUser = "a count: with KVM_CREATE_IRQCHIP, HLT and x2APIC accesses are handled in the kernel (the model's HLT and APIC exits are KVM's in-kernel handlers); its only userspace exits are port I/O";
        const string WhyIrq = "a count the guest keeps itself (its handler increments it), read by a probe; one interrupt per armed expiry";

        // The model, same program.
        var model = new ModelGuest(program, Host).Run(Duration.FromSeconds(2));
        var stats = model.Vm.Platforms[0].Exits;
        long modelHalts = stats.Hlt - 1; // less the final hlt with IF = 0, which the real run makes a halt-port write
        long modelUser = stats.Pio;
        long modelIrqs = model.Probes.Where(p => p.Probe.Line == lineCount).Select(p => (long)p.Probe.Value).DefaultIfEmpty(-1).Last();
        long modelDelivered = model.Vm.Vcpus[0].InterruptsDelivered(InterruptSource.LapicTimer);
        string modelIrqText = $"{Num(modelIrqs)} (delivered: {Num(modelDelivered)})";

        void NotMeasuredAll(string why)
        {
            NotMeasured(idHalt, factHalt, why, Num(modelHalts), WhyHalt);
            NotMeasured(idUser, factUser, why, Num(modelUser), WhyUser);
            NotMeasured(idIrq, factIrq, why, modelIrqText, WhyIrq);
        }

        // Real KVM. TSC-deadline mode needs CPUID.1:ECX.TSC_DEADLINE_TIMER[bit 24] in the guest's CPUID
        // (6.18.2 cpuid.c kvm_vcpu_after_set_cpuid: timer_mode_mask = 3 << 17 only with it, else 1 << 17,
        // which kvm_lapic_reg_write APIC_LVTT applies: the mode would read one-shot and the deadline write be ignored).
        if (mode == ApicTimerMode.TscDeadline && !_kvm.SupportedCpuidEcx(1, 24))
        {
            NotMeasuredAll("KVM_GET_SUPPORTED_CPUID here lacks TSC_DEADLINE_TIMER (leaf 1 ECX bit 24), so the guest cannot use TSC-deadline mode");
            return;
        }
        long? halts0, halts1, exits0, exits1, emul0, emul1, inj0, inj1;
        KvmStop stop;
        int userspace;
        long realIrqs;
        try
        {
            using var real = new KvmGuest(_kvm, program);
            var (vcpu, _) = real.AddVcpu();
            (halts0, exits0, emul0, inj0) = (vcpu.Stat("halt_exits"), vcpu.Stat("exits"), vcpu.Stat("insn_emulation"), vcpu.Stat("irq_injections"));
            stop = real.Run(0, timeLimit: TimeSpan.FromSeconds(10));
            (halts1, exits1, emul1, inj1) = (vcpu.Stat("halt_exits"), vcpu.Stat("exits"), vcpu.Stat("insn_emulation"), vcpu.Stat("irq_injections"));
            userspace = real.Exits.Count;
            realIrqs = real.Probes.Where(p => p.Line == lineCount).Select(p => (long)p.Value).DefaultIfEmpty(-1).Last();
        }
        catch (KvmException ex)
        {
            NotMeasuredAll($"{ex.Call} failed with errno {ex.Errno} on this host ({ex.Message})");
            return;
        }
        catch (InvalidOperationException ex)
        {
            NotMeasuredAll(ex.Message);
            return;
        }
        if (stop != KvmStop.Halted)
        {
            NotMeasuredAll($"the guest did not finish within 10 s (stopped: {stop}): a timer interrupt never came");
            return;
        }
        if (halts0 is null || halts1 is null)
        {
            NotMeasured(idHalt, factHalt, "no binary statistics (KVM_CAP_BINARY_STATS_FD) or no halt_exits counter", Num(modelHalts), WhyHalt);
        }
        else
        {
            long realHalts = halts1.Value - halts0.Value;
            string aside = exits1 is long e1 && exits0 is long e0
                ? $" (all exits {Num(e1 - e0)}, not compared: kvm_pvm emulates WRMSR without counting an exit, insn_emulation {Num((emul1 ?? 0) - (emul0 ?? 0))}; the model's APIC exits {Num(stats.Apic)})"
                : "";
            Row(idHalt, factHalt, Num(realHalts) + aside, Num(modelHalts), realHalts == modelHalts, WhyHalt);
        }
        Row(idUser, factUser, Num(userspace), Num(modelUser), userspace == modelUser, WhyUser);
        string injections = inj1 is long i1 && inj0 is long i0 ? $" (irq_injections {Num(i1 - i0)})" : "";
        Row(idIrq, factIrq, Num(realIrqs) + injections, modelIrqText, realIrqs == modelIrqs && modelDelivered == modelIrqs, WhyIrq);
    }
}

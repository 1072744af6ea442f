using System.Globalization;
using TscSim.Core.Abi;
using TscSim.Core.Guest;
using TscSim.Core.Isa;
using TscSim.Core.Scenarios;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;
using static TscSim.Kvm.ValidationCsv;

namespace TscSim.Kvm;

/// <summary>
/// <c>tscsim validate-kvm SCENARIO...</c>: each VM of a scenario whose features real KVM on this
/// machine can run has its workload run bare (no guest kernel on either side) on real KVM, with
/// the scenario's vCPU count and <c>tsc_khz</c>, and in TscSim's model of the same VM on a host
/// like this machine (<see cref="ModelGuest"/>: <c>kvm-modern</c>, <c>vmm: direct</c>, as the
/// harness is a VMM that always asks for the rate). Compared: what nested virtualization does
/// not distort — the KVM_SET_TSC_KHZ decision, the pvclock parameters, the guest TSC rate, exit
/// counts by reason and the values the workload probes (the last two only when the workload
/// finishes, so that counts do not depend on speed). A VM whose scenario needs what the harness
/// cannot do (another hypervisor or era, the 2011 proposal's controls, a timeline, the guest
/// kernel) is one row saying why, verdict <see cref="Verdict.NotRunnable"/>.
/// </summary>
public sealed class ScenarioCases(KvmSystem kvm, HostFacts host)
{
    /// <summary>The longest a vCPU runs on real KVM (and the model): the scenario's duration, at most this.</summary>
    public static readonly Duration MaxRunTime = Duration.FromSeconds(1);

    /// <summary>The interval over which the guest TSC rate is measured on both sides.</summary>
    public static readonly Duration RateInterval = Duration.FromMilliseconds(200);

    public HostFacts Host { get; } = host;

    /// <summary>
    /// Assembles every VM's workload as <c>tscsim run</c> does (with the guest kernel's library);
    /// throws <see cref="ScenarioException"/> with each error at its place in the scenario file.
    /// </summary>
    public static void CheckWorkloads(Scenario scenario)
    {
        var diagnostics = new List<ScenarioDiagnostic>();
        foreach (var vm in scenario.Vms)
        {
            try
            {
                GuestKernel.Assemble(vm.Workload, $"{vm.Id} workload");
            }
            catch (AssemblyException ex)
            {
                diagnostics.AddRange(ex.Errors.Select(e => ScenarioDiagnostic.At(vm.MapWorkloadPosition(e.Line, e.Column), $"workload of vm '{vm.Id}': {e.Message}")));
            }
        }
        if (diagnostics.Count > 0)
        {
            throw new ScenarioException(diagnostics);
        }
    }

    /// <summary>Why no VM of <paramref name="scenario"/> can run on real KVM here, or null.</summary>
    public static string? WhyNotRunnable(Scenario scenario)
    {
        HypervisorSpec h = scenario.Hypervisor;
        if (h.Policy != "kvm-modern")
        {
            return $"hypervisor policy '{h.Policy}' at {h.Position}: this machine's hypervisor is today's KVM (the model's kvm-modern), not {Describe(h.Policy)}";
        }
        HypervisorSpec preset = HypervisorSpec.FromPreset("kvm-modern");
        var changed = new List<string>();
        if (h.TscAuto != preset.TscAuto) { changed.Add("tsc_auto"); }
        if (h.Trapping != preset.Trapping) { changed.Add("trapping"); }
        if (h.NotifyGuest != preset.NotifyGuest) { changed.Add("notify_guest"); }
        if (h.RdtscpPassthrough != preset.RdtscpPassthrough) { changed.Add("rdtscp_passthrough"); }
        if (h.TolerancePpm != preset.TolerancePpm) { changed.Add("tolerance"); }
        if (h.Scaling != preset.Scaling) { changed.Add("scaling"); }
        if (h.SchedulerSlice is not null) { changed.Add("scheduler_slice"); }
        if (changed.Count > 0)
        {
            return $"the hypervisor at {h.Position} sets {string.Join(", ", changed)}, which real KVM has no control for (the 2011 proposal's controls, a module parameter or a host scheduler the harness does not have)";
        }
        if (scenario.Events.Count > 0)
        {
            var first = scenario.EventsInTimeOrder[0];
            return $"its timeline ({scenario.Events.Count} event{(scenario.Events.Count == 1 ? "" : "s")}, the first '{EventKind(first)}' at {first.At} ({first.Position})) cannot run on real KVM: the harness has one host and no migration, frequency change, pause or policy change";
        }
        return null;
    }

    private static string Describe(string policy) => policy switch
    {
        "kvm-2011" => "Linux 2.6.37/38's KVM",
        _ when policy.StartsWith("xen", StringComparison.Ordinal) => "Xen",
        _ when policy.StartsWith("hyperv", StringComparison.Ordinal) => "Hyper-V",
        _ => policy,
    };

    private static string EventKind(ScenarioEvent e)
    {
        string name = e.GetType().Name;
        return name.EndsWith("Event", StringComparison.Ordinal) ? name[..^5] : name;
    }

    /// <summary>The rows of <paramref name="scenario"/>, VM by VM in file order.</summary>
    public IReadOnlyList<ValidationRow> Run(Scenario scenario)
    {
        var rows = new List<ValidationRow>();
        string? scenarioWhy = WhyNotRunnable(scenario);
        foreach (var vm in scenario.Vms)
        {
            string prefix = $"{scenario.Name}/{vm.Id}";
            string? why = scenarioWhy;
            GuestProgram? program = null;
            if (why is null)
            {
                program = BareProgram(vm, out why);
            }
            if (why is not null || program is null)
            {
                rows.Add(new ValidationRow(prefix + ".runs", $"{scenario.Name}: vm {vm.Id} runs on real KVM", "cannot run on real KVM: " + why,
                    "runs (tscsim run)", Verdict.NotRunnable, "the scenario needs what this machine's KVM, driven through the raw API, cannot do"));
                continue;
            }
            RunVm(scenario, vm, program, prefix, rows);
        }
        return rows;
    }

    /// <summary>The VM's workload alone (no guest kernel), lowered-checked; null and why when it cannot run on real KVM.</summary>
    private static GuestProgram? BareProgram(VmSpec vm, out string? why)
    {
        var program = Assembler.TryAssemble(vm.Workload, $"{vm.Id} workload", out var errors);
        if (program is null)
        {
            var e = errors[0];
            why = $"the workload needs the guest kernel ({vm.MapWorkloadPosition(e.Line, e.Column)}: {e.Message}); real runs have no guest kernel (entry points such as {string.Join(", ", KernelLibrary.EntryPoints.Take(3))})";
            return null;
        }
        if (vm.Vcpus > 1 && program.PrivateData.Length > 0)
        {
            why = $"the workload at {vm.WorkloadPosition} has a private data section and {vm.Vcpus} vCPUs: real runs share one memory (use section .shared with one slot per vCPU)";
            return null;
        }
        try
        {
            GuestLowering.Lower(program, irqchip: true);
        }
        catch (LoweringException ex)
        {
            why = $"{vm.MapWorkloadPosition(ex.Line, 1)}: {ex.Message}";
            return null;
        }
        why = null;
        return program;
    }

    private sealed record RealSide(int SetResult, long GetKhz, PvclockTimeInfo Pvclock, long RateKhz, bool Finished, string Stops,
        long UserspaceIo, long? Halts, List<ProbeRecord> Probes, ulong TscLow, ulong TscHigh, string? Failure);

    private RealSide RunReal(VmSpec vm, GuestProgram program, Duration limit)
    {
        using var real = new KvmGuest(kvm, program, irqchip: true);
        int setResult = 0;
        for (int v = 0; v < vm.Vcpus; v++)
        {
            var (_, r) = real.AddVcpu(vm.TscKhz);
            if (v == 0)
            {
                setResult = r;
            }
        }
        KvmVcpu v0 = real.Vm.Vcpus[0];
        long getKhz = v0.GetTscKhz();
        ulong low = real.Vm.Vcpus.Min(c => c.GetMsr(KvmAbi.MsrIa32Tsc));
        long? halts0 = Sum(real.Vm.Vcpus.Select(c => c.Stat("halt_exits")));
        var stops = new List<string>();
        string? failure = null;
        bool finished = true;
        for (int v = 0; v < vm.Vcpus; v++)
        {
            try
            {
                KvmStop stop = real.Run(v, timeLimit: TimeSpan.FromTicks(limit.NanosecondsFloor / 100));
                finished &= stop == KvmStop.Halted;
                stops.Add(stop == KvmStop.Halted ? "halted" : $"stopped at the {limit} limit");
            }
            catch (InvalidOperationException ex)
            {
                finished = false;
                failure ??= ex.Message;
                stops.Add("faulted");
            }
        }
        long? halts1 = Sum(real.Vm.Vcpus.Select(c => c.Stat("halt_exits")));
        ulong high = real.Vm.Vcpus.Max(c => c.GetMsr(KvmAbi.MsrIa32Tsc));
        // The rate: vCPU 0's TSC (KVM_GET_MSRS) against CLOCK_MONOTONIC_RAW over RateInterval.
        ulong tscA = v0.GetMsr(KvmAbi.MsrIa32Tsc);
        long nsA = Native.MonotonicRawNs();
        Thread.Sleep(TimeSpan.FromTicks(RateInterval.NanosecondsFloor / 100));
        ulong tscB = v0.GetMsr(KvmAbi.MsrIa32Tsc);
        long nsB = Native.MonotonicRawNs();
        long rate = (long)((Int128)unchecked((long)(tscB - tscA)) * 1_000_000 / Math.Max(1, nsB - nsA));
        long io = real.Exits.Count(e => e.Exit.Reason == KvmAbi.ExitIo);
        return new RealSide(setResult, getKhz, real.Pvclock(0), rate, finished, string.Join(", ", stops), io,
            halts0 is long h0 && halts1 is long h1 ? h1 - h0 : null, real.Probes, low, high, failure);
    }

    private static long? Sum(IEnumerable<long?> values)
    {
        long total = 0;
        foreach (var v in values)
        {
            if (v is not long x)
            {
                return null;
            }
            total += x;
        }
        return total;
    }

    private void RunVm(Scenario scenario, VmSpec vm, GuestProgram program, string prefix, List<ValidationRow> rows)
    {
        Duration limit = scenario.Duration < MaxRunTime ? scenario.Duration : MaxRunTime;
        string where = $"{scenario.Name}: vm {vm.Id}";
        void Row(string id, string fact, string real, string model, bool agree, string comparable) =>
            rows.Add(new ValidationRow($"{prefix}.{id}", $"{where}: {fact}", real, model,
                agree ? Verdict.Agree : KnownDisagreements.All.ContainsKey(id) ? Verdict.Open : Verdict.Disagree, comparable));
        void NotMeasured(string id, string fact, string why, string model, string comparable) =>
            rows.Add(new ValidationRow($"{prefix}.{id}", $"{where}: {fact}", "not measured: " + why, model, Verdict.NotMeasured, comparable));

        RealSide real;
        try
        {
            real = RunReal(vm, program, limit);
        }
        catch (KvmException ex)
        {
            rows.Add(new ValidationRow($"{prefix}.runs", $"{where} runs on real KVM", $"not measured: {ex.Call} failed with errno {ex.Errno} on this host",
                "runs", Verdict.NotMeasured, "the harness could not set the VM up"));
            return;
        }

        // The model: the same bare program, vCPUs and rate, on a host like this machine.
        ModelGuest? model = null;
        string? modelRefusal = null, modelFault = null;
        try
        {
            model = new ModelGuest(program, Host, vcpus: vm.Vcpus, tscKhz: vm.TscKhz, vmId: vm.Id);
        }
        catch (InvalidOperationException ex)
        {
            modelRefusal = ex.Message;
        }
        Duration modelTime = limit; // the rate below is the model's TSC function over RateInterval, not a run
        if (model is not null)
        {
            try
            {
                model.Run(modelTime);
            }
            catch (InvalidOperationException ex)
            {
                modelFault = ex.Message;
            }
        }

        if (vm.TscKhz is long khz)
        {
            string realText = (real.SetResult == 0 ? "accepted" : $"refused (errno {-real.SetResult})") + $"; KVM_GET_TSC_KHZ {Num(real.GetKhz)}";
            string modelText = modelRefusal is null ? $"accepted; rate {Num(model!.Vm.VirtualTscKhz)}" : "refused";
            Row("set-tsc-khz", $"KVM_SET_TSC_KHZ({Num(khz)}) (tsc_khz at {vm.Position})", realText, modelText, (real.SetResult == 0) == (modelRefusal is null),
                "the ioctl's result: KVM's set_tsc_khz decision for this host (TSC scaling " + (Host.TscScaling ? "present" : "absent") + ")");
        }
        if (model is null)
        {
            NotMeasured("runs", "the workload's facts", "the model refuses the VM (" + modelRefusal + "), so there is nothing to compare; the harness's VM ran anyway",
                "refused", "a VMM choice: the model's vmm stops where the harness carries on");
            return;
        }

        PvclockTimeInfo m = model.Vm.Kvmclock.Published(0), r = real.Pvclock;
        const string WhyPv = "kvm_get_time_scale of the rate KVM uses and its master-clock decision: integer arithmetic and flags, no timing";
        Row("pvclock.mul", "vCPU 0's pvclock tsc_to_system_mul", Num(r.Mul), Num(m.Mul), r.Mul == m.Mul, WhyPv);
        Row("pvclock.shift", "vCPU 0's pvclock tsc_shift", r.Shift.ToString(CultureInfo.InvariantCulture), m.Shift.ToString(CultureInfo.InvariantCulture), r.Shift == m.Shift, WhyPv);
        Row("pvclock.flags", "vCPU 0's pvclock flags", r.Flags.ToString(CultureInfo.InvariantCulture), m.Flags.ToString(CultureInfo.InvariantCulture), r.Flags == m.Flags, WhyPv);

        var p0 = model.Vm.Platforms[0];
        SimTime t1 = SimTime.FromDuration(RateInterval);
        long modelRate = (long)((Int128)unchecked((long)(p0.PeekTsc(t1) - p0.PeekTsc(SimTime.Zero))) * 1_000_000 / RateInterval.NanosecondsFloor);
        Row("tsc-rate", $"vCPU 0's guest TSC rate, kHz (over {RateInterval})", Num(real.RateKhz), Num(modelRate),
            Int128.Abs((Int128)real.RateKhz - modelRate) * 1_000_000 <= (Int128)ValidationCases.RateTolerancePpm * Math.Abs(modelRate),
            $"a rate (KVM_GET_MSRS IA32_TSC against CLOCK_MONOTONIC_RAW), tolerance {ValidationCases.RateTolerancePpm} ppm");

        bool modelFinished = modelFault is null && model.Vm.Vcpus.All(c => c.Halted);
        string realEnd = real.Failure is null ? real.Stops : $"{real.Stops} ({real.Failure})";
        string modelEnd = modelFault ?? string.Join(", ", model.Vm.Vcpus.Select(c => c.Halted ? "halted" : $"running at the {modelTime} limit"));
        const string FactEnds = "how each vCPU's run ended";
        string whyEnds = $"whether the workload reaches its final hlt (IF = 0) within {limit} (or faults), not how fast";
        if (vm.Vcpus > 1 && real.Failure is null && !real.Finished && modelFinished)
        {
            // The harness runs vCPUs one at a time: one that waits for a later one cannot finish.
            NotMeasured("ends", FactEnds, $"{realEnd}: the harness runs the vCPUs one at a time, so a vCPU that waits for another cannot finish",
                modelEnd, whyEnds);
        }
        else
        {
            Row("ends", FactEnds, realEnd, modelEnd, (real.Failure is null) == (modelFault is null) && real.Finished == modelFinished, whyEnds);
        }
        var exits = model.Vm.Platforms.Select(p => p.Exits).ToArray();
        long modelIo = exits.Sum(e => e.Pio);
        long modelHalts = exits.Sum(e => e.Hlt) - model.Vm.Vcpus.Count(c => c.Halted); // the final hlt is a halt-port write on the real side
        if (!(real.Finished && modelFinished))
        {
            const string Why = "the workload does not finish within the time limit on both sides, so its exit counts and the number of values it reads depend on speed, which nested virtualization distorts";
            NotMeasured("exits", "exits by reason (port I/O to userspace, HLT)", Why, $"port I/O {Num(modelIo)}, HLT {Num(modelHalts)}", Why);
            NotMeasured("values", "values the workload probes", Why, $"{Num(model.Probes.Count)} probes", Why);
            return;
        }
        string realExits = $"port I/O {Num(real.UserspaceIo)}, HLT {(real.Halts is long h ? Num(h) : "?")}";
        Row("exits", "exits by reason (port I/O to userspace, HLT)", realExits, $"port I/O {Num(modelIo)}, HLT {Num(modelHalts)}",
            real.UserspaceIo == modelIo && real.Halts == modelHalts,
            "counts of exits by reason (the harness's KVM_EXIT_IO count, KVM's halt_exits statistic), not their cost; other reasons are not compared (kvm_pvm emulates WRMSR, CPUID … without counting exits)");

        ulong modelHigh = model.Vm.Platforms.Max(p => p.PeekTsc(SimTime.FromDuration(modelTime)));
        var (realValues, modelValues, agree) = CompareProbes(real, model, modelHigh, vm.Vcpus);
        Row("values", "values the workload probes", realValues, modelValues, agree,
            "values, vCPU by vCPU in order: equal, or both a reading of the guest TSC within the run (whole or its low half, in each side's own TSC span: this kernel starts the guest TSC at the host's, the model at 0), compared as such");
    }

    /// <summary>
    /// The probes of each vCPU in order: equal values, or both readings of the guest TSC within
    /// the run (the real value within the vCPUs' TSC span read by KVM_GET_MSRS before and after,
    /// the model's within 0 and its TSC at the end); anything else, or a different count or
    /// source line, is a difference.
    /// </summary>
    /// <summary>
    /// Whether <paramref name="value"/> is a reading of a TSC that ran from <paramref name="low"/>
    /// to <paramref name="high"/>: the whole value, or its low half (RDTSC's eax alone).
    /// </summary>
    internal static bool InSpan(ulong value, ulong low, ulong high)
    {
        unchecked
        {
            if (value >= low && value <= high)
            {
                return true;
            }
            ulong span = high - low;
            return value <= uint.MaxValue && (span > uint.MaxValue || (ulong)(uint)((uint)value - (uint)low) <= span);
        }
    }

    private static (string Real, string Model, bool Agree) CompareProbes(RealSide real, ModelGuest model, ulong modelHigh, int vcpus)
    {
        int equal = 0, tsc = 0, differ = 0;
        string? first = null;
        for (int v = 0; v < vcpus; v++)
        {
            var rs = real.Probes.Where(p => p.Vcpu == v).ToList();
            var ms = model.Probes.Select(p => p.Probe).Where(p => p.Vcpu == v).ToList();
            if (rs.Count != ms.Count)
            {
                differ++;
                first ??= $"vCPU {v} probed {Num(rs.Count)} times on real KVM, {Num(ms.Count)} in the model";
            }
            for (int i = 0; i < Math.Min(rs.Count, ms.Count); i++)
            {
                if (rs[i].Line != ms[i].Line)
                {
                    differ++;
                    first ??= $"vCPU {v}'s probe {i + 1} is at line {rs[i].Line} on real KVM, line {ms[i].Line} in the model";
                }
                else if (rs[i].Value == ms[i].Value)
                {
                    equal++;
                }
                else if (InSpan(rs[i].Value, real.TscLow, real.TscHigh) && InSpan(ms[i].Value, 0, modelHigh))
                {
                    tsc++;
                }
                else
                {
                    differ++;
                    first ??= $"vCPU {v}, line {rs[i].Line}: real {Num(unchecked((long)rs[i].Value))}, model {Num(unchecked((long)ms[i].Value))}";
                }
            }
        }
        string realText = $"{Num(real.Probes.Count)} probes: {Num(equal)} equal, {Num(tsc)} TSC readings" + (first is null ? "" : $"; {Num(differ)} differ, the first: {first}");
        return (realText, $"{Num(model.Probes.Count)} probes", differ == 0);
    }
}

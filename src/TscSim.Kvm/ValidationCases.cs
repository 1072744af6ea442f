using TscSim.Core.Abi;
using System.Globalization;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;
using static TscSim.Kvm.ValidationCsv;

namespace TscSim.Kvm;

/// <summary>
/// The comparison cases of issue 17: each runs one program text (or asks one question) on real
/// KVM on this machine and in TscSim's model, and yields rows of (fact, real, model, verdict).
/// Only what nested virtualization does not distort is compared: values, rates, counts and
/// flags, never exit latencies. The whole run takes a few seconds.
/// </summary>
public sealed partial class ValidationCases
{
    /// <summary>Iterations of the clock loop: about 0.3 s on this machine (one userspace exit, ~45 µs nested, and a short work loop each).</summary>
    public const int LoopIterations = 4_000;

    /// <summary>Two rates agree when within this many ppm (clock_gettime and exit-timing noise over ~0.2 s is far below it; 1x and 2x are 10^6 ppm apart).</summary>
    public const long RateTolerancePpm = 1_000;

    /// <summary>The value written to IA32_TSC and IA32_TSC_ADJUST: 10^12.</summary>
    public const ulong Written = 1_000_000_000_000;

    /// <summary>The clock loop: per iteration read the pvclock version and the TSC, then one port write (a userspace exit).</summary>
    public static readonly string ClockLoop = $"""
        ; validate-kvm: the clock loop (one workload, two machines)
        start:
            mov rbx, 0
        loop:
            mov eax, dword [0x4000000]   ; vCPU 0's pvclock version (GuestAddressMap.PvclockBase)
            probe rax                    ; V: the version
            rdtsc
            shl rdx, 32
            or rax, rdx
            probe rax                    ; T: the TSC
            out 0x10, eax                ; one exit to userspace per iteration
            work 50cycles
            inc rbx
            cmp rbx, {LoopIterations}
            jne loop
            hlt
        """;

    /// <summary>100,000 reads of the TSC by <paramref name="instruction"/> (rdtsc or rdtscp), then a port write: how many exits do the reads cause?</summary>
    public static string ReadLoop(string instruction) => $"""
        ; validate-kvm: does {instruction} exit?
        start:
            mov rbx, 100000
        l1: {instruction}
            dec rbx
            jne l1
            out 0x11, eax
            hlt
        """;

    /// <summary>vCPU 0 writes IA32_TSC = 10^12; vCPU 1 then reads its TSC and TSC_ADJUST and writes TSC_ADJUST = 10^12.</summary>
    public const string MsrWrites = """
        ; validate-kvm: guest writes of IA32_TSC and IA32_TSC_ADJUST, and what the other vCPU reads
        section .shared
        done: dq 0
        section .text
        start:
            cmp rdi, 0
            jne second
            rdtsc
            shl rdx, 32
            or rax, rdx
            probe rax                  ; A: vCPU 0's TSC before the write
            mov rcx, 0x10              ; IA32_TSC
            mov rax, 0xd4a51000        ; 10^12, low half
            mov rdx, 0xe8              ; 10^12, high half
            wrmsr
            rdtsc
            shl rdx, 32
            or rax, rdx
            probe rax                  ; B: vCPU 0's TSC after the write
            mov rcx, 0x3b              ; IA32_TSC_ADJUST
            rdmsr
            shl rdx, 32
            or rax, rdx
            probe rax                  ; C: vCPU 0's TSC_ADJUST after the TSC write
            mov qword [done], 1
            hlt
        second:
            mov rax, qword [done]
            pause
            cmp rax, 0
            je second
            rdtsc
            shl rdx, 32
            or rax, rdx
            probe rax                  ; D: vCPU 1's TSC after vCPU 0's write
            mov rcx, 0x3b
            rdmsr
            shl rdx, 32
            or rax, rdx
            probe rax                  ; E: vCPU 1's TSC_ADJUST
            mov rax, 0xd4a51000
            mov rdx, 0xe8
            wrmsr                      ; vCPU 1: TSC_ADJUST = 10^12
            rdtsc
            shl rdx, 32
            or rax, rdx
            probe rax                  ; F: vCPU 1's TSC after its TSC_ADJUST write
            hlt
        """;

    /// <summary>Read the TSC once.</summary>
    public const string ReadOnce = """
        ; validate-kvm: one TSC read
            rdtsc
            shl rdx, 32
            or rax, rdx
            probe rax
            hlt
        """;

    private readonly KvmSystem _kvm;
    private readonly List<ValidationRow> _rows = [];

    public ValidationCases(KvmSystem kvm, HostFacts host)
    {
        _kvm = kvm;
        Host = host;
    }

    public HostFacts Host { get; }

    /// <summary>Reads this machine's facts (the model's inputs) from a scratch VM.</summary>
    public static HostFacts ReadHost(KvmSystem kvm)
    {
        using var vm = kvm.CreateVm(0x10_0000);
        KvmVcpu v = vm.CreateVcpu();
        long khz = v.GetTscKhz();
        var clock = vm.GetClock();
        Duration age = (clock.Flags & KvmAbi.ClockHostTsc) != 0
            ? Duration.FromNanoseconds((long)((UInt128)clock.HostTsc * 1_000_000 / (ulong)khz))
            : Duration.Zero;
        string vendor = "GenuineIntel";
        string kernel = "unknown";
        try
        {
            vendor = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("vendor_id", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? vendor;
            kernel = File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        }
        catch (IOException)
        {
        }
        string backend = new[] { "kvm_intel", "kvm_amd", "kvm_pvm" }.FirstOrDefault(m => Directory.Exists("/sys/module/" + m)) ?? "unknown";
        return new HostFacts(khz, kvm.CheckExtension(KvmAbi.CapTscControl) != 0, age, vendor, kernel, backend);
    }

    /// <summary>Runs every case and returns the rows in a fixed order.</summary>
    public IReadOnlyList<ValidationRow> RunAll()
    {
        ClockLoopCases(null, "host");
        ClockLoopCases(2 * Host.TscKhz, "fast");
        SlowRateCases();
        LateVcpuCase();
        ReadExitCases();
        MsrWriteCases();
        LapicHaltCases(ApicTimerMode.OneShot);
        LapicHaltCases(ApicTimerMode.TscDeadline);
        return _rows;
    }

    private void Row(string id, string fact, string real, string model, bool agree, string comparable)
    {
        Verdict v = agree ? Verdict.Agree : KnownDisagreements.All.ContainsKey(id) ? Verdict.Open : Verdict.Disagree;
        _rows.Add(new ValidationRow(id, fact, real, model, v, comparable));
    }

    private void NotMeasured(string id, string fact, string why, string model, string comparable) =>
        _rows.Add(new ValidationRow(id, fact, "not measured: " + why, model, Verdict.NotMeasured, comparable));

    /// <summary>The 1-based line of <paramref name="text"/> holding <paramref name="marker"/> (a probe's comment).</summary>
    internal static int LineOf(string text, string marker) =>
        Array.FindIndex(text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n'), l => l.Contains(marker, StringComparison.Ordinal)) + 1;

    private static GuestProgram Assemble(string text, string name) => Assembler.Assemble(text, name);

    /// <summary>Rate in kHz from (TSC, ns) at the first and last sample (integer arithmetic).</summary>
    private static long RateKhz(ulong tsc0, long ns0, ulong tsc1, long ns1) =>
        (long)((Int128)unchecked((long)(tsc1 - tsc0)) * 1_000_000 / Math.Max(1, ns1 - ns0));

    /// <summary>
    /// The rate between the least-delayed sample near each end: the host's timestamp of an exit can
    /// only come late relative to the guest's TSC read (this process may be descheduled on a busy
    /// machine, never early), so among the first and the last <c>Window</c> samples the one whose
    /// host time is earliest relative to its TSC (judged at <paramref name="nominalKhz"/>) is the
    /// least disturbed. Sample 0 is skipped (it includes the vCPU's first entry).
    /// </summary>
    private static long RobustRateKhz(IReadOnlyList<ulong> tscs, IReadOnlyList<long> ns, long nominalKhz)
    {
        const int Window = 64;
        int n = Math.Min(tscs.Count, ns.Count);
        int w = Math.Max(1, Math.Min(Window, (n - 1) / 4));
        Int128 Lag(int i) => (Int128)ns[i] * nominalKhz - (Int128)tscs[i] * 1_000_000; // host ns minus TSC time, scaled
        int first = 1, last = n - 1;
        for (int i = 1; i < 1 + w; i++)
        {
            if (Lag(i) < Lag(first)) { first = i; }
        }
        for (int i = n - w; i < n; i++)
        {
            if (Lag(i) < Lag(last)) { last = i; }
        }
        return RateKhz(tscs[first], ns[first], tscs[last], ns[last]);
    }

    private static bool WithinPpm(long a, long b, long ppm) => Int128.Abs((Int128)a - b) * 1_000_000 <= (Int128)ppm * Math.Abs(b);

    private static string Flags(byte f) => f == 0 ? "0" : $"{f} ({string.Join("|", new[] { (1, "TSC_STABLE"), (2, "GUEST_STOPPED"), (4, "COUNTS_FROM_ZERO") }.Where(x => (f & x.Item1) != 0).Select(x => x.Item2))})";

    private static string PerExit(long increments, long exits) =>
        (increments / (decimal)exits).ToString("0.000", CultureInfo.InvariantCulture) + $" ({Num(increments)} over {Num(exits)} exits)";

    private void ClockLoopCases(long? tscKhz, string tag)
    {
        string rate = tscKhz is null ? "the host's rate" : $"KVM_SET_TSC_KHZ({Num(tscKhz.Value)}) = 2x the host";
        GuestProgram program = Assemble(ClockLoop, $"clock-loop ({tag})");
        int lineVersion = LineOf(ClockLoop, "; V:"), lineTsc = LineOf(ClockLoop, "; T:");

        // Real KVM.
        using var real = new KvmGuest(_kvm, program);
        var (vcpu, setResult) = real.AddVcpu(tscKhz);
        long getKhz = vcpu.GetTscKhz();
        var hostNs = new List<long>(LoopIterations);
        var exitStats = new List<long?>(LoopIterations);
        real.Run(0, e =>
        {
            if (e.Reason == KvmAbi.ExitIo && e.Port == 0x10)
            {
                hostNs.Add(e.HostRawNs);
                exitStats.Add(vcpu.ExitsStat());
            }
        });
        PvclockTimeInfo realPv = real.Pvclock(0);
        var realVersions = real.Probes.Where(p => p.Line == lineVersion).Select(p => (long)p.Value).ToArray();
        var realTscs = real.Probes.Where(p => p.Line == lineTsc).Select(p => p.Value).ToArray();
        var realClock = real.Vm.GetClock();

        // The model, same program.
        var model = new ModelGuest(program, Host, tscKhz: tscKhz).Run(Duration.FromSeconds(5));
        PvclockTimeInfo modelPv = model.Vm.Kvmclock.Published(0);
        var modelVersions = model.Probes.Where(p => p.Probe.Line == lineVersion).Select(p => (long)p.Probe.Value).ToArray();
        var modelTscs = model.Probes.Where(p => p.Probe.Line == lineTsc).ToArray();

        string why = "kvm_get_time_scale of the rate KVM uses: integer arithmetic, no timing involved";
        Row($"pvclock.{tag}.mul", $"pvclock tsc_to_system_mul at {rate}", Num(realPv.Mul), Num(modelPv.Mul), realPv.Mul == modelPv.Mul, why);
        Row($"pvclock.{tag}.shift", $"pvclock tsc_shift at {rate}", realPv.Shift.ToString(CultureInfo.InvariantCulture),
            modelPv.Shift.ToString(CultureInfo.InvariantCulture), realPv.Shift == modelPv.Shift, why);
        Row($"pvclock.{tag}.flags", $"pvclock flags at {rate}", Flags(realPv.Flags), Flags(modelPv.Flags), realPv.Flags == modelPv.Flags,
            "a flag KVM sets from its master-clock decision (host clocksource, TSC matching), not from timing");

        // Versions read in iterations 1 and N-1 bracket the exits from exit 0 (excluded) to exit N-2: all VM
        // exits KVM took (its "exits" statistic, interrupt exits included) on the real side, the modelled ones in TscSim.
        long realInc = realVersions[^1] - realVersions[1];
        long modelInc = modelVersions[^1] - modelVersions[1];
        long modelExits = LoopIterations - 2;
        long realExits = exitStats[^2] is long last && exitStats[0] is long first ? last - first : LoopIterations - 2;
        decimal realPer = realInc / (decimal)realExits, modelPer = modelInc / (decimal)modelExits;
        Row($"pvclock.{tag}.version-per-exit", $"pvclock version increments per VM exit at {rate}", PerExit(realInc, realExits), PerExit(modelInc, modelExits),
            Math.Abs(realPer - modelPer) <= 0.05m,
            "a count of clock updates per exit (KVM_REQ_CLOCK_UPDATE) over every exit KVM took (its per-vCPU \"exits\" statistic), independent of how long an exit takes; agree within 0.05");

        long realRate = RobustRateKhz(realTscs, hostNs, Host.TscKhz);
        long modelRate = RateKhz(modelTscs[1].Probe.Value, modelTscs[1].HostNs, modelTscs[^1].Probe.Value, modelTscs[^1].HostNs);
        Row($"tsc-rate.{tag}", $"guest TSC rate at {rate}, kHz (against the host's CLOCK_MONOTONIC_RAW over {Num((hostNs[^1] - hostNs[1]) / 1_000_000)} ms)",
            Num(realRate), Num(modelRate), WithinPpm(realRate, modelRate, RateTolerancePpm),
            $"a rate (TSC ticks per host ns over ~0.25 s), not a latency; nested exits only add jitter far below the {RateTolerancePpm} ppm tolerance");

        if (tscKhz is long requested)
        {
            Row("set-tsc-khz.fast.result", $"KVM_SET_TSC_KHZ({Num(requested)}) without TSC scaling (above the host)",
                setResult == 0 ? "accepted" : $"refused (errno {-setResult})", "accepted (catch-up)", setResult == 0,
                "the ioctl's result: KVM's set_tsc_khz decision");
            Row("set-tsc-khz.fast.get", "KVM_GET_TSC_KHZ after it", Num(getKhz), Num(model.Vm.VirtualTscKhz), getKhz == model.Vm.VirtualTscKhz,
                "the stored virtual_tsc_khz");
        }
        else
        {
            // The first read of a new VM's first vCPU, in seconds of host TSC.
            ulong firstTsc = realTscs[0];
            ulong modelFirst = modelTscs[0].Probe.Value;
            string Seconds(ulong tsc) => Num((double)tsc / Host.TscKhz / 1000, 3) + " s of cycles";
            string hostTsc = (realClock.Flags & KvmAbi.ClockHostTsc) != 0 ? $" (host TSC {Seconds(realClock.HostTsc)})" : "";
            long oneSecond = Host.TscKhz * 1000;
            Row("initial-tsc.first-vcpu", "guest TSC at the first instruction of a new VM's first vCPU", Seconds(firstTsc) + hostTsc,
                Seconds(modelFirst) + $" (host TSC {Num((double)Host.TscAge.Picoseconds / 1e12, 3)} s of cycles)",
                Math.Abs((double)firstTsc - modelFirst) < oneSecond,
                "a value (where the TSC starts), not a latency; agree within 1 s of cycles");
        }
    }

    private void SlowRateCases()
    {
        long requested = Host.TscKhz * 3 / 4;
        GuestProgram program = Assemble(ReadOnce, "read-once (slow)");
        using var real = new KvmGuest(_kvm, program);
        var (vcpu, setResult) = real.AddVcpu(requested);
        long getKhz = vcpu.GetTscKhz();
        long ns0 = Native.MonotonicRawNs();
        real.Run(0);
        ulong tsc0 = real.Probes[0].Value;
        Thread.Sleep(200);
        var clock = vcpu.GetMsr(KvmAbi.MsrIa32Tsc);
        long ns1 = Native.MonotonicRawNs();
        long realRate = RateKhz(tsc0, ns0, clock, ns1);

        string modelResult;
        try
        {
            _ = new ModelGuest(program, Host, tscKhz: requested);
            modelResult = "accepted";
        }
        catch (InvalidOperationException ex)
        {
            modelResult = "refused: " + ex.Message;
        }
        bool modelRefused = modelResult.StartsWith("refused", StringComparison.Ordinal);
        Row("set-tsc-khz.slow.result", $"KVM_SET_TSC_KHZ({Num(requested)}) without TSC scaling (below the host)",
            setResult == 0 ? "accepted" : $"refused (errno {-setResult})", modelRefused ? "refused" : "accepted", (setResult != 0) == modelRefused,
            "the ioctl's result: KVM's set_tsc_khz decision");
        Row("set-tsc-khz.slow.get", "KVM_GET_TSC_KHZ after the refused rate", Num(getKhz), modelRefused ? "no VM (creation refused)" : "", false,
            "the stored virtual_tsc_khz");
        Row("tsc-rate.slow", "guest TSC rate after the refused rate, kHz (KVM_GET_MSRS IA32_TSC against CLOCK_MONOTONIC_RAW over 200 ms)",
            Num(realRate), modelRefused ? "no VM (creation refused)" : "", false,
            "a rate over 200 ms, not a latency");
    }

    private void LateVcpuCase()
    {
        GuestProgram program = Assemble(ReadOnce, "read-once (late vCPU)");
        using var real = new KvmGuest(_kvm, program);
        real.AddVcpu();
        real.Run(0);
        Thread.Sleep(50);
        real.AddVcpu();
        // vCPU 1's TSC against vCPU 0's read just before and just after it (the midpoint), bracket
        // by bracket, keeping the tightest of 32 (as the kernel's tsc_read_refs keeps a short one):
        // a midpoint alone is off by half of any asymmetric preemption between the three reads
        // (seen once: 4 ms on a busy machine).
        long residual = 0;
        long tightest = long.MaxValue;
        for (int attempt = 0; attempt < 32; attempt++)
        {
            ulong before = real.Vm.Vcpus[0].GetMsr(KvmAbi.MsrIa32Tsc);
            ulong tsc1 = real.Vm.Vcpus[1].GetMsr(KvmAbi.MsrIa32Tsc);
            ulong after = real.Vm.Vcpus[0].GetMsr(KvmAbi.MsrIa32Tsc);
            long bracket = unchecked((long)(after - before));
            if (bracket >= 0 && bracket < tightest)
            {
                tightest = bracket;
                residual = unchecked((long)(tsc1 - before)) - bracket / 2;
            }
        }

        var model = new ModelGuest(program, Host, vcpus: 2);
        var at = SimTime.FromDuration(Duration.FromMilliseconds(50));
        model.Sim.Run(at);
        model.Vm.SynchronizeTsc(1, at, 0, userValue: false); // vCPU creation: a host-initiated write of 0
        long modelResidual = unchecked((long)(model.Vm.Platforms[1].NativeGuestTsc(at) - model.Vm.Platforms[0].NativeGuestTsc(at)));
        long oneMs = Host.TscKhz;
        string Describe(long r) => Math.Abs(r) < oneMs ? $"matched: same TSC as vCPU 0 (within {Num(Math.Abs(r))} cycles)" : $"own TSC: {Num(r)} cycles from vCPU 0's";
        Row("initial-tsc.late-vcpu", "TSC of a vCPU created 50 ms after the first (TSC matching)", Describe(residual), Describe(modelResidual),
            (Math.Abs(residual) < oneMs) == (Math.Abs(modelResidual) < oneMs),
            "a value (the new vCPU's offset relative to vCPU 0's), read back by KVM_GET_MSRS; agree within 1 ms of cycles");
    }

    private void ReadExitCases()
    {
        foreach (string instruction in new[] { "rdtsc", "rdtscp" })
        {
            GuestProgram program = Assemble(ReadLoop(instruction), $"read-loop ({instruction})");
            var model = new ModelGuest(program, Host).Run(Duration.FromSeconds(1));
            var stats = model.Vm.Platforms[0].Exits;
            long modelExits = instruction == "rdtsc" ? stats.Rdtsc : stats.Rdtscp;
            const long reads = 100_000;
            string id = $"exits.{instruction}", fact = $"VM exits during {Num(reads)} {instruction.ToUpperInvariant()}";
            string why = "a count of exits (KVM's per-vCPU \"exits\" statistic), not their cost; under 10 % of the reads counts as not exiting (the host's timer interrupts cause some)";
            using var real = new KvmGuest(_kvm, program);
            var (vcpu, _) = real.AddVcpu();
            long? start = vcpu.ExitsStat();
            long? mark = null;
            try
            {
                real.Run(0, e => { if (e.Reason == KvmAbi.ExitIo) { mark = vcpu.ExitsStat(); } });
            }
            catch (InvalidOperationException ex)
            {
                NotMeasured(id, fact, $"the guest's {instruction.ToUpperInvariant()} failed here ({ex.Message}); on this nested host KVM cannot run it (an artefact of the outer hypervisor, not a KVM design choice)",
                    Num(modelExits), why);
                continue;
            }
            if (start is null || mark is null)
            {
                NotMeasured(id, fact, "no binary statistics (KVM_CAP_BINARY_STATS_FD)", Num(modelExits), why);
                continue;
            }
            long exits = mark.Value - start.Value - 1; // less the closing port write
            Row(id, fact, Num(exits), Num(modelExits), (exits < reads / 10) == (modelExits < reads / 10), why);
        }
    }

    private void MsrWriteCases()
    {
        GuestProgram program = Assemble(MsrWrites, "msr-writes");
        int lineA = LineOf(MsrWrites, "; A:"), lineB = LineOf(MsrWrites, "; B:"), lineC = LineOf(MsrWrites, "; C:"),
            lineD = LineOf(MsrWrites, "; D:"), lineE = LineOf(MsrWrites, "; E:"), lineF = LineOf(MsrWrites, "; F:");
        using var real = new KvmGuest(_kvm, program);
        real.AddVcpu();
        real.AddVcpu();
        real.Run(0);
        ulong kvmView = real.Vm.Vcpus[0].GetMsr(KvmAbi.MsrIa32Tsc); // the guest TSC as KVM computes it (offset + host TSC)
        real.Run(1);
        var r = real.Probes.ToDictionary(p => p.Line, p => p.Value);
        var model = new ModelGuest(program, Host, vcpus: 2).Run(Duration.FromMilliseconds(50));
        var m = model.Probes.ToDictionary(p => p.Probe.Line, p => p.Probe.Value);
        long oneMs = Host.TscKhz;

        string AfterWrite(IReadOnlyDictionary<int, ulong> p) { long d = unchecked((long)(p[lineB] - Written)); return d >= 0 && d < oneMs ? $"the written value + {Num(d)} cycles" : $"{Num(d)} cycles from the written value"; }
        bool AfterOk(IReadOnlyDictionary<int, ulong> p) { long d = unchecked((long)(p[lineB] - Written)); return d >= 0 && d < oneMs; }
        long kvmDelta = unchecked((long)(kvmView - Written));
        string kvmNote = $" (KVM_GET_MSRS IA32_TSC then: the written value + {Num(kvmDelta)} cycles)";
        Row("wrmsr-tsc.self", "vCPU 0 reads its TSC after a guest WRMSR IA32_TSC = 10^12", AfterWrite(r) + kvmNote, AfterWrite(m), AfterOk(r) == AfterOk(m),
            "a value: the written TSC plus the few cycles to the next RDTSC; agree within 1 ms of cycles");

        string Adjust(IReadOnlyDictionary<int, ulong> p) { long d = unchecked((long)(p[lineC] - (Written - p[lineA]))); return Math.Abs(d) < oneMs ? $"= written − TSC before (± {Num(Math.Abs(d))} cycles)" : $"{Num(unchecked((long)p[lineC]))}, not the write's delta"; }
        bool AdjustOk(IReadOnlyDictionary<int, ulong> p) => Math.Abs(unchecked((long)(p[lineC] - (Written - p[lineA])))) < oneMs;
        Row("wrmsr-tsc.adjust", "vCPU 0's IA32_TSC_ADJUST after its TSC write", Adjust(r), Adjust(m), AdjustOk(r) == AdjustOk(m),
            "a value (the SDM rule KVM follows: a TSC write adds its delta to TSC_ADJUST); agree within 1 ms of cycles");

        string Other(IReadOnlyDictionary<int, ulong> p)
        {
            long fromOld = unchecked((long)(p[lineD] - p[lineA]));
            return fromOld >= 0 && fromOld < 1000 * oneMs ? "unchanged: vCPU 1 keeps its own offset" : $"moved ({Num(fromOld)} cycles from vCPU 0's old TSC)";
        }
        Row("wrmsr-tsc.other-vcpu", "vCPU 1's TSC after vCPU 0 wrote IA32_TSC", Other(r), Other(m), Other(r)[..5] == Other(m)[..5],
            "a value relative to vCPU 0's TSC before the write; agree when both stay on the old timeline (within 1 s)");
        Row("tsc-adjust.other-vcpu", "vCPU 1's IA32_TSC_ADJUST after vCPU 0 wrote IA32_TSC", Num(unchecked((long)r[lineE])), Num(unchecked((long)m[lineE])),
            r[lineE] == m[lineE], "a per-vCPU MSR value");

        string Moved(IReadOnlyDictionary<int, ulong> p) { long d = unchecked((long)(p[lineF] - p[lineD] - Written)); return d >= 0 && d < oneMs ? $"moved by the written 10^12 (+ {Num(d)} cycles)" : $"{Num(d)} cycles off a 10^12 move"; }
        bool MovedOk(IReadOnlyDictionary<int, ulong> p) { long d = unchecked((long)(p[lineF] - p[lineD] - Written)); return d >= 0 && d < oneMs; }
        Row("tsc-adjust.self", "vCPU 1's TSC after its guest WRMSR IA32_TSC_ADJUST = 10^12 (from 0)", Moved(r), Moved(m), MovedOk(r) == MovedOk(m),
            "a value: TSC_ADJUST adds to the TSC; agree within 1 ms of cycles");
    }
}

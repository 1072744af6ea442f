using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;

namespace TscSim.Properties;

/// <summary>A synchronized host, a VM with a master clock, and a random schedule of vCPU moves.</summary>
public sealed record MoveSchedule(string Cpu, int Cores, long DriftPpb, int Vcpus, int Work, IReadOnlyList<(long AtUs, int Vcpu, int Core)> Moves)
{
    public override string ToString() => $"{Cpu} cores={Cores} drift={DriftPpb}ppb vcpus={Vcpus} work={Work} moves=[{string.Join(" ", Moves)}]";
}

public static class MoveScheduleArbitrary
{
    public static Arbitrary<MoveSchedule> Schedules()
    {
        var move = from at in Gen.Choose(1, 990) from v in Gen.Choose(0, 3) from c in Gen.Choose(0, 7) select ((long)at, v, c);
        return (from cpu in Gen.Elements("intel-nehalem", "intel-skylake", "amd-zen2")
                from cores in Gen.Choose(2, 8)
                from drift in Gen.Choose(-100_000, 100_000)
                from vcpus in Gen.Choose(2, 4)
                from work in Gen.Choose(200, 5_000)
                from moves in move.ListOf()
                select new MoveSchedule(cpu, cores, drift, vcpus, work, moves.Take(12).ToList())).ToArbitrary();
    }
}

public class KvmclockProperties
{
    /// <summary>
    /// A kvm-clock reader as a guest runs it (pvclock-abi.h and arch/x86/kernel/pvclock.c): the
    /// version seqlock, an ordered RDTSC, the signed shift, the 64×32 multiply and shrd, and a
    /// probe of the result. vCPU v reads its own structure at PvclockBase + 32·v.
    /// </summary>
    public const string KvmclockReader = """
                mov r8, rdi
                shl r8, 5
                add r8, 0x4000000
        loop:
        retry:
                mov eax, [r8]
                mov r9, rax
                and r9, -2
                lfence
                rdtsc
                shl rdx, 32
                or rax, rdx
                sub rax, [r8 + 8]
                movsx rcx, byte [r8 + 28]
                test rcx, rcx
                js negative
                shl rax, cl
                jmp scaled
        negative:
                neg rcx
                shr rax, cl
        scaled:
                mov ebx, [r8 + 24]
                mul rbx
                shrd rax, rdx, 32
                add rax, [r8 + 16]
                mov r10, rax
                mov eax, [r8]
                cmp rax, r9
                jne retry
                probe r10
                work {WORK}cycles
                jmp loop
        """;

    /// <summary>
    /// With the master clock on and synchronized host TSCs, kvm-clock reads are monotonic across
    /// vCPUs for any schedule of vCPU moves (the guest needs no global guard).
    /// </summary>
    [CiProperty(Arbitrary = [typeof(MoveScheduleArbitrary)], MaxTest = 60)]
    public Property Kvmclock_is_monotonic_across_vcpus_with_the_master_clock_for_any_vcpu_moves(MoveSchedule s)
    {
        var sim = new Simulator(9);
        var host = new Host(new HostConfig
        {
            Id = "h", Cpu = CpuPresets.Find(s.Cpu)!, Frequency = Frequency.FromMegahertz(2_600), CoresPerSocket = s.Cores,
            Drift = Ppm.FromPartsPerBillion(s.DriftPpb), Uptime = Duration.FromSeconds(5),
        }, sim);
        var hv = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find("kvm-modern")!);
        var trace = new Trace();
        var program = Assembler.Assemble(KvmclockReader.Replace("{WORK}", s.Work.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        var vm = hv.CreateVm(new VmConfig { Id = "vm", Vcpus = s.Vcpus }, host, program, trace,
            Enumerable.Range(0, s.Vcpus).Select(v => v % s.Cores).ToArray());
        vm.Start(SimTime.Zero);
        foreach (var (at, v, c) in s.Moves)
        {
            hv.ScheduleMigrateVcpu(SimTime.FromDuration(Duration.FromMicroseconds(at)), vm, v % s.Vcpus, c % s.Cores);
        }
        sim.Run(SimTime.FromDuration(Duration.FromMilliseconds(1)));

        if (!vm.Kvmclock.MasterClock)
        {
            return false.Label("the master clock should be on");
        }
        var reads = trace.Probes;
        for (int i = 1; i < reads.Count; i++)
        {
            if (reads[i].Item3 < reads[i - 1].Item3)
            {
                return false.Label($"{reads[i].Item1} read {reads[i].Item3} ns at {reads[i].Item2} ps after {reads[i - 1].Item1} read {reads[i - 1].Item3}");
            }
        }
        // Not vacuous: the reads track true time (kvmclock counts from VM creation, within drift).
        long lastTrueNs = reads[^1].Item2 / 1_000;
        return (reads.Count > 100 && Math.Abs(reads[^1].Item3 - lastTrueNs) < 1_000).Label($"{reads.Count} reads, last {reads[^1].Item3} ns at true {lastTrueNs} ns");
    }
}

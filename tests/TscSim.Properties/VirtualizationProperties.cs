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

/// <summary>A random host, policy and VM, with frequency changes, C-states and a possible host-TSC instability.</summary>
public sealed record TrapScenario(
    string Cpu, int Sockets, long SkewCycles, long Socket1DriftPpb, bool Walk, string Policy, bool Passthrough,
    int Vcpus, int Work, IReadOnlyList<(long AtUs, int Core, int Mhz)> FrequencyChanges,
    IReadOnlyList<(long AtUs, int Core, int Us)> Sleeps, long? MarkUnstableAtUs)
{
    public override string ToString() =>
        $"{Cpu} x{Sockets} skew={SkewCycles} drift1={Socket1DriftPpb}ppb walk={Walk} policy={Policy} passthrough={Passthrough} " +
        $"vcpus={Vcpus} work={Work} freq=[{string.Join(" ", FrequencyChanges)}] sleeps=[{string.Join(" ", Sleeps)}] unstable@{MarkUnstableAtUs}";
}

public static class TrapScenarioArbitrary
{
    public static Arbitrary<TrapScenario> Scenarios()
    {
        var freq = from at in Gen.Choose(1, 480) from core in Gen.Choose(0, 3) from mhz in Gen.Choose(500, 4_000) select ((long)at, core, mhz);
        var sleep = from at in Gen.Choose(1, 480) from core in Gen.Choose(0, 3) from us in Gen.Choose(1, 100) select ((long)at, core, us);
        var gen =
            from cpu in Gen.Elements(CpuPresets.All.Select(m => m.Name).ToArray())
            from sockets in Gen.Choose(1, 2)
            from skew in Gen.Choose(-5_000_000, 5_000_000)
            from drift in Gen.Choose(-200_000, 200_000)
            from walk in Gen.Elements(false, true)
            from policy in Gen.Elements("kvm-2011-on", "kvm-2011-auto", "xen-always-emulate", "xen-default")
            from passthrough in Gen.Elements(false, true)
            from vcpus in Gen.Choose(1, 3)
            from work in Gen.Choose(100, 5_000)
            from freqs in freq.ListOf()
            from sleeps in sleep.ListOf()
            from unstable in Gen.Frequency((1, Gen.Choose(1, 480).Select(x => (long?)x)), (1, Gen.Constant((long?)null)))
            select new TrapScenario(cpu, sockets, sockets == 1 ? 0 : skew, drift, walk, policy, passthrough, vcpus, work,
                freqs.Take(6).ToList(), sleeps.Take(6).ToList(), unstable);
        return gen.ToArbitrary();
    }
}

internal sealed class EmulatedReads : IExecutionObserver
{
    public List<(string Vcpu, ulong Value)> Reads { get; } = [];

    public void OnTscRead(Vcpu vcpu, SimTime at, TscValue value, bool exited, long cycles)
    {
        if (exited)
        {
            Reads.Add((vcpu.Name, value.Raw));
        }
    }

    public void OnProbe(Vcpu vcpu, SimTime at, int line, long value)
    {
    }

    public void OnFault(Vcpu vcpu, GuestFault fault) => throw new InvalidOperationException(fault.ToString());

    public void OnClockRead(Vcpu vcpu, SimTime at, long nanoseconds, long cycles, int exits) { }
}

internal sealed class Callback(Action action) : IEventHandler
{
    public void OnEvent(Simulator sim, in SimEvent e) => action();
}

public class VirtualizationProperties
{
    /// <summary>
    /// Whatever the host's TSCs do (drift, socket skew, P-state changes, C-state stops) and
    /// whenever trapping starts, every emulated TSC value a VM hands out is above every one it
    /// handed out before, on any vCPU: the emulated TSC never goes backwards, per vCPU or across.
    /// </summary>
    [CiProperty(Arbitrary = [typeof(TrapScenarioArbitrary)], MaxTest = 80)]
    public Property An_emulated_tsc_never_goes_backwards_on_any_vcpu_or_across_vcpus(TrapScenario s)
    {
        var sim = new Simulator(5);
        var host = new Host(new HostConfig
        {
            Id = "h",
            Cpu = CpuPresets.Find(s.Cpu)!,
            Frequency = Frequency.FromMegahertz(2_000),
            Sockets = s.Sockets,
            CoresPerSocket = 2,
            SocketSkew = new Cycles(s.SkewCycles),
            Uptime = Duration.FromMilliseconds(10),
            SocketDrift = s.Sockets == 2 ? [Ppm.Zero, Ppm.FromPartsPerBillion(s.Socket1DriftPpb)] : [],
            Walk = s.Walk ? new DriftWalk(Ppm.FromPartsPerMillion(5), Duration.FromMicroseconds(50), Ppm.FromPartsPerMillion(100)) : null,
        }, sim);
        HypervisorConfig policy = s.Policy switch
        {
            "kvm-2011-on" => HypervisorConfig.Find("kvm-2011")! with { Trapping = TrappingOverride.On },
            "kvm-2011-auto" => HypervisorConfig.Find("kvm-2011")!,
            _ => HypervisorConfig.Find(s.Policy)!,
        };
        policy = policy with { RdtscpPassthrough = s.Passthrough };
        var hv = new Hypervisor(new GuestExecutor(sim), policy);
        var reads = new EmulatedReads();
        string second = host.Config.Cpu.HasRdtscp ? "rdtscp" : "rdtsc"; // Core 2 has no RDTSCP
        string program = $"loop: rdtsc\nwork {s.Work}cycles\n{second}\njmp loop";
        int[] pin = Enumerable.Range(0, s.Vcpus).Select(v => v * 3 % host.Cores.Length).ToArray();
        var vm = hv.CreateVm(new VmConfig { Id = "vm", Vcpus = s.Vcpus }, host, Assembler.Assemble(program), reads, pin);
        foreach (var (at, core, mhz) in s.FrequencyChanges)
        {
            host.ScheduleFrequencyChange(SimTime.FromDuration(Duration.FromMicroseconds(at)), core % host.Cores.Length, Frequency.FromMegahertz(mhz));
        }
        foreach (var (at, core, us) in s.Sleeps)
        {
            host.ScheduleCState(SimTime.FromDuration(Duration.FromMicroseconds(at)), core % host.Cores.Length, CState.C6, Duration.FromMicroseconds(us));
        }
        if (s.MarkUnstableAtUs is long mark)
        {
            var kind = sim.RegisterKind("test.unstable", EventBand.Hypervisor, new Callback(() => vm.MarkHostTscUnstable("test")));
            sim.Schedule(SimTime.FromDuration(Duration.FromMicroseconds(mark)), kind);
        }
        vm.Start(SimTime.Zero);
        sim.Run(SimTime.FromDuration(Duration.FromMicroseconds(500)));

        var values = reads.Reads;
        for (int i = 1; i < values.Count; i++)
        {
            if (values[i].Value <= values[i - 1].Value)
            {
                return false.Label($"read {i} on {values[i].Vcpu}: {values[i].Value} after {values[i - 1].Value} on {values[i - 1].Vcpu}");
            }
        }
        return true.Label("ok").Classify(values.Count > 0, "some reads were emulated");
    }
}

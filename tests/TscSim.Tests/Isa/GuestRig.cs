using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;

namespace TscSim.Tests.Isa;

/// <summary>Records what vCPUs report, in the order they report it.</summary>
internal sealed class ObservationLog : IExecutionObserver
{
    public List<(string Vcpu, long TimePs, ulong Value, bool Exited)> TscReads { get; } = [];
    public List<(string Vcpu, long TimePs, int Line, long Value)> Probes { get; } = [];
    public List<GuestFault> Faults { get; } = [];

    public void OnTscRead(Vcpu vcpu, SimTime at, TscValue value, bool exited, long cycles) =>
        TscReads.Add((vcpu.Name, at.Picoseconds, value.Raw, exited));

    public void OnProbe(Vcpu vcpu, SimTime at, int line, long value) => Probes.Add((vcpu.Name, at.Picoseconds, line, value));

    public void OnFault(Vcpu vcpu, GuestFault fault) => Faults.Add(fault);

    public List<(string Vcpu, long TimePs, long Nanoseconds, long Cycles, int Exits)> ClockReads { get; } = [];

    public void OnClockRead(Vcpu vcpu, SimTime at, long nanoseconds, long cycles, int exits) =>
        ClockReads.Add((vcpu.Name, at.Picoseconds, nanoseconds, cycles, exits));
}

/// <summary>A bare-metal host running one program on N vCPUs (vCPU i on core i, rdi = i), sharing one shared section.</summary>
internal sealed class GuestRig
{
    public GuestRig(string source, int vcpus = 1, CpuModel? cpu = null, long mhz = 2_000, Func<HostConfig, HostConfig>? host = null)
    {
        Sim = new Simulator(1);
        var config = new HostConfig { Id = "h", Cpu = cpu ?? CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(mhz), CoresPerSocket = Math.Max(2, vcpus) };
        Host = new Host(host is null ? config : host(config), Sim);
        Executor = new GuestExecutor(Sim);
        Program = Assembler.Assemble(source, "test");
        Shared = new SharedMemory(Program.SharedData);
        for (int v = 0; v < vcpus; v++)
        {
            var vcpu = new Vcpu(Executor, $"vcpu{v}", Program, Host.Cores[v], Platform, Shared, Log) { TscAux = (uint)v };
            vcpu.SetRegister(Registers.Rdi, v);
            Vcpus.Add(vcpu);
        }
    }

    public Simulator Sim { get; }
    public Host Host { get; }
    public GuestExecutor Executor { get; }
    public GuestProgram Program { get; }
    public SharedMemory Shared { get; }
    public NativePlatform Platform { get; } = new();
    public ObservationLog Log { get; } = new();
    public List<Vcpu> Vcpus { get; } = [];
    public Vcpu Vcpu => Vcpus[0];

    /// <summary>Starts every vCPU at 0 and runs until <paramref name="until"/> (default 1 s).</summary>
    public GuestRig Run(Duration? until = null)
    {
        foreach (var v in Vcpus)
        {
            if (v.LocalTime == SimTime.Zero && v.Slices == 0)
            {
                v.Start(SimTime.Zero);
            }
        }
        Sim.Run(SimTime.FromDuration(until ?? Duration.FromSeconds(1)));
        return this;
    }

    public long Shared64(string label) => Shared.ReadQword(Program.AddressOf(label));
}

using System.Text.Json.Nodes;
using TscSim.Core.Guest;
using TscSim.Core.Scenarios;
using TscSim.Core.Time;

namespace TscSim.Core.Runs;

/// <summary>
/// A guest fault as the results report it: which vCPU it stopped, what it was, when (true
/// time), and where in the scenario file: the workload's line mapped through
/// <see cref="VmSpec.MapWorkloadPosition"/>. A fault in the guest kernel's own code (the
/// library after the workload) is placed at the VM's <c>workload</c> and names the library line.
/// </summary>
public sealed record FaultReport(string Vm, int Vcpu, GuestFault Fault, SourcePosition Where, int? KernelLine)
{
    /// <summary>The fault kind's results name (<c>divide_error</c>).</summary>
    public string Kind => GuestFaultKinds.Name(Fault.Kind);

    /// <summary>When it happened, in true nanoseconds since the start of the run.</summary>
    public long TrueNs => Fault.Time.Picoseconds / 1000;

    /// <summary>The message, with where in the kernel library when the fault is not in the workload.</summary>
    public string Message => KernelLine is int k ? $"{Fault.Message} (in the guest kernel's code, KernelLibrary line {k})" : Fault.Message;

    /// <summary>One line for the terminal: <c>FILE:LINE:COL: vm0.vcpu0 stopped by a guest fault (divide_error) at 12.5ms true time: ...</c>.</summary>
    public override string ToString() =>
        $"{Where}: {Vm}.vcpu{Vcpu} stopped by a guest fault ({Kind}) at {QuantityFormat.Duration(Fault.Time.Picoseconds)} true time: {Message}";

    /// <summary>The <c>fault</c> object of a vCPU in <c>summary.json</c>.</summary>
    public JsonObject ToJson() => new()
    {
        ["kind"] = Kind,
        ["message"] = Message,
        ["true_ns"] = TrueNs,
        ["file"] = Where.File,
        ["line"] = Where.Line,
        ["column"] = Where.Column,
    };

    /// <summary>The fault that stopped vCPU <paramref name="vcpu"/> of VM number <paramref name="vmIndex"/>, or null.</summary>
    public static FaultReport? Of(ScenarioModel model, int vmIndex, int vcpu)
    {
        var (spec, vm, _) = model.Vms[vmIndex];
        var cpu = vm.Vcpus[vcpu];
        if (cpu.Fault is not { } fault)
        {
            return null;
        }
        if (GuestKernel.IsWorkloadLine(cpu.Program, fault.Line))
        {
            return new FaultReport(spec.Id, vcpu, fault, spec.MapWorkloadPosition(fault.Line, 1), null);
        }
        var at = spec.WorkloadPosition.IsKnown ? spec.WorkloadPosition : spec.Position;
        return new FaultReport(spec.Id, vcpu, fault, at.IsKnown ? at : new SourcePosition("workload", 1, 1),
            fault.Line > 0 ? GuestKernel.KernelLibraryLine(cpu.Program, fault.Line) : null);
    }

    /// <summary>Every fault of the run, by VM then vCPU.</summary>
    public static IReadOnlyList<FaultReport> All(ScenarioModel model)
    {
        var all = new List<FaultReport>();
        for (int i = 0; i < model.Vms.Count; i++)
        {
            for (int v = 0; v < model.Vms[i].Vm.Vcpus.Length; v++)
            {
                if (Of(model, i, v) is { } f)
                {
                    all.Add(f);
                }
            }
        }
        return all;
    }
}

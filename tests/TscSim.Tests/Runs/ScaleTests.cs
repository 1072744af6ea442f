using System.Text;
using System.Text.Json.Nodes;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;

namespace TscSim.Tests.Runs;

/// <summary>
/// Cost linear in size (issue 19): a VM's events and results do not depend on how many other
/// VMs share the run, because a vCPU's sequenced instructions wait only for the vCPUs of its
/// own sharing domain (its VM; see GuestExecutor).
/// </summary>
public class ScaleTests
{
    /// <summary><paramref name="vms"/> identical 2-vCPU linux-modern VMs, one host with a core per vCPU.</summary>
    private static string Text(int vms)
    {
        var sb = new StringBuilder($"""
            name: scale
            duration: 10ms
            hosts:
              - id: h
                cpu: intel-skylake
                frequency: 2GHz
                cores_per_socket: {2 * vms}
            hypervisor:
              policy: kvm-modern
            vms:

            """);
        for (int v = 0; v < vms; v++)
        {
            sb.Append($"""
                  - id: vm{v}
                    host: h
                    vcpus: 2
                    pin: [{2 * v}, {(2 * v) + 1}]
                    guest: linux-modern
                    workload: |
                      loop:
                        call clock_gettime
                        work 20000cycles
                        jmp loop

                """);
        }
        return sb.ToString();
    }

    private static (long Events, JsonNode Vm0) Run(int vms)
    {
        var model = new ScenarioModel(ScenarioLoader.LoadText(Text(vms), "scale.yaml"));
        var result = ScenarioRun.Execute(model);
        Assert.True(result.Complete);
        var vm0 = result.Summary["vms"]!.AsArray()[0]!.DeepClone();
        return (model.Sim.ExecutedEvents, vm0);
    }

    [Fact]
    public void A_vms_events_and_results_do_not_depend_on_the_other_vms_of_the_run()
    {
        var (alone, vm0Alone) = Run(1);
        var (three, vm0WithOthers) = Run(3);
        Assert.True(alone > 1_000);
        // Before sharing domains, three VMs took ~20x the events of one (every clock read of every
        // vCPU waited for every other VM's vCPUs); now each VM costs the same as alone.
        Assert.Equal(3 * alone, three);
        Assert.Equal(vm0Alone.ToJsonString(), vm0WithOthers.ToJsonString());
    }

    [Fact]
    public void Vms_with_the_same_workload_share_one_assembled_program()
    {
        var model = new ScenarioModel(ScenarioLoader.LoadText(Text(3), "scale.yaml"));
        var programs = model.Vms.Select(v => v.Vm.Vcpus[0].Program).ToList();
        Assert.Same(programs[0], programs[1]);
        Assert.Same(programs[0], programs[2]);
    }
}

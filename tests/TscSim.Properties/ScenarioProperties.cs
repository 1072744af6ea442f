using TscSim.Core.Abi;
using FsCheck;
using FsCheck.Fluent;
using TscSim.Core.Measurement;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;
using TscSim.Core.Virtualization;
using TscSim.Properties.Scenarios;

namespace TscSim.Properties;

// Whole-scenario properties (issue 10): each generates scenario files from a family
// (Scenarios/Families.cs), runs them exactly as `tscsim run` does, and shrinks a failure to a
// minimal scenario printed as a file for scenarios/regressions/. One class per property, so
// xunit runs them in parallel on the CI machine's cores. Sizes: see docs/properties.md.

/// <summary>Determinism of whole runs.</summary>
public class DeterminismProperties
{
    /// <summary>
    /// The same scenario and seed give the same fingerprint and the same summary (all but
    /// <c>wall_seconds</c>), and the resolved scenario (<c>scenario.resolved.yaml</c>) loads to an
    /// equal scenario that reproduces both.
    /// </summary>
    [ScenarioProperty(25)]
    public Property Same_scenario_and_seed_give_the_same_fingerprint_and_summary_and_the_resolved_file_reproduces_them() =>
        Prop.ForAll(Families.Anything.Arbitrary(), s => ScenarioHarness.Check(s, "determinism", [], first =>
        {
            RunOutcome again = ScenarioHarness.Run(first.Scenario);
            if (again.Result.Fingerprint != first.Result.Fingerprint)
            {
                return $"a second run gave fingerprint {again.Result.Fingerprint}, the first {first.Result.Fingerprint}";
            }
            if (ScenarioHarness.StableSummary(again.Result) != ScenarioHarness.StableSummary(first.Result))
            {
                return "a second run gave the same fingerprint but a different summary";
            }
            string resolvedYaml = ScenarioWriter.ToYaml(first.Scenario);
            Scenario resolved = ScenarioHarness.Load(resolvedYaml, "scenario.resolved.yaml");
            if (resolved != first.Scenario)
            {
                return "the resolved scenario does not load equal to the original:\n" + resolvedYaml;
            }
            RunOutcome replay = ScenarioHarness.Run(resolved);
            if (replay.Result.Fingerprint != first.Result.Fingerprint || ScenarioHarness.StableSummary(replay.Result) != ScenarioHarness.StableSummary(first.Result))
            {
                return $"the resolved scenario gave fingerprint {replay.Result.Fingerprint} (original {first.Result.Fingerprint}) or a different summary";
            }
            return null;
        }, o => [(o.Scenario.Events.Count > 0, "with events"), (o.Scenario.Hosts.Count > 1, "two hosts")]));
}

/// <summary>The emulated TSC.</summary>
public class TrappedTscProperties
{
    /// <summary>
    /// With <c>trapping: on</c>, whatever the hosts do (drift, socket skew, P- and C-states, TSC
    /// writes, vCPU moves, live migrations), every TSC read of the guest exits, and the values
    /// never go backwards on a vCPU or across the VM's vCPUs.
    /// </summary>
    [ScenarioProperty(80)]
    public Property A_trapped_tsc_never_goes_backwards_per_vcpu_or_across_vcpus_whatever_the_host_does() =>
        Prop.ForAll(Families.TrappedTsc.Arbitrary(), s => ScenarioHarness.Check(s, "trapped TSC monotonic", Expect(s), o =>
        {
            for (int i = 0; i < o.Model.Vms.Count; i++)
            {
                string id = o.Model.Vms[i].Spec.Id;
                VmRecorder rec = o.Model.Observer.Vms[i];
                foreach (VcpuRecorder v in rec.Vcpus)
                {
                    if (v.TscReads == 0)
                    {
                        return $"{id}.vcpu{v.Id} read no TSC (the property would be vacuous)";
                    }
                    if (v.TscExitedReads != v.TscReads)
                    {
                        return $"{id}.vcpu{v.Id}: {v.TscReads - v.TscExitedReads} of {v.TscReads} TSC reads did not exit although trapping is on";
                    }
                    if (v.TscViolations != 0)
                    {
                        return $"{id}.vcpu{v.Id}: {v.TscViolations} TSC reads went backwards, the worst by {v.TscWorstBackstepCycles} cycles";
                    }
                }
                if (rec.CrossTscViolations != 0)
                {
                    return $"{id}: {rec.CrossTscViolations} TSC reads went backwards across vCPUs, the worst by {rec.CrossTscWorstBackstepCycles} cycles";
                }
            }
            return null;
        }, o => [(o.Scenario.Events.Any(e => e is LiveMigrateEvent), "live migration"), (o.Scenario.Vms[0].Vcpus > 1, "SMP"),
                 (o.Scenario.Events.Any(e => e is TscWriteEvent or CstateEvent), "host TSC writes or C-states")]));

    private static List<string> Expect(GeneratedScenario s) =>
        [.. s.Vms.SelectMany((vm, i) => Enumerable.Range(0, vm.Vcpus).Select(v => $"vm{i}.vcpu{v}.tsc_violations == 0")
            .Append($"vm{i}.cross_vcpu.tsc_violations == 0"))];
}

/// <summary>kvm-clock with the master clock and STABLE.</summary>
public class KvmclockStableProperties
{
    /// <summary>
    /// On synchronized hosts, KVM's master clock publishes kvm-clock with the STABLE flag, and the
    /// guest's reads are monotonic per vCPU and across vCPUs through P-state and C-state changes,
    /// vCPU moves and live migrations.
    /// </summary>
    [ScenarioProperty(12)]
    public Property Kvmclock_with_the_master_clock_and_stable_flag_is_monotonic_across_vcpus_on_synchronized_hosts() =>
        Prop.ForAll(Families.KvmclockStable.Arbitrary(), s => ScenarioHarness.Check(s, "kvm-clock STABLE monotonic", KvmclockChecks.Expect(s), o =>
        {
            for (int i = 0; i < o.Model.Vms.Count; i++)
            {
                var (spec, vm, kernel) = o.Model.Vms[i];
                if (kernel.Clocksource != Core.Guest.ClocksourceKind.KvmClock)
                {
                    return $"{spec.Id} ended on {Core.Guest.OsProfiles.NameOf(kernel.Clocksource)}, not kvm-clock";
                }
                if (!vm.Kvmclock.MasterClock)
                {
                    return $"{spec.Id}: the master clock is off on a synchronized host";
                }
                for (int v = 0; v < vm.Vcpus.Length; v++)
                {
                    if ((vm.Kvmclock.Published(v).Flags & PvclockAbi.TscStableBit) == 0)
                    {
                        return $"{spec.Id}.vcpu{v}: the last publication has no STABLE flag";
                    }
                }
                if (KvmclockChecks.Monotonic(spec.Id, o.Model.Observer.Vms[i], o.ClockReads[i]) is { } failure)
                {
                    return failure;
                }
            }
            return null;
        }, o => [(o.Scenario.Events.Any(e => e is LiveMigrateEvent), "live migration"), (o.Scenario.Events.Any(e => e is MigrateVcpuEvent), "vCPU moves")]));
}

/// <summary>kvm-clock without STABLE: the guest's guard.</summary>
public class KvmclockGuardProperties
{
    /// <summary>
    /// Without the STABLE flag (Xen's pvclock, or KVM on a host whose TSCs are not synchronized,
    /// with any event, TSC writes included), the guest's global guard keeps kvm-clock monotonic
    /// per vCPU and across vCPUs: reads may stall, never step back.
    /// </summary>
    [ScenarioProperty(15)]
    public Property Kvmclock_without_the_stable_flag_stays_monotonic_across_vcpus_through_the_guard() =>
        Prop.ForAll(Families.KvmclockGuardedArbitrary(), s => ScenarioHarness.Check(s, "kvm-clock guarded monotonic", KvmclockChecks.Expect(s), o =>
        {
            for (int i = 0; i < o.Model.Vms.Count; i++)
            {
                var (spec, vm, kernel) = o.Model.Vms[i];
                if (kernel.Clocksource != Core.Guest.ClocksourceKind.KvmClock)
                {
                    return $"{spec.Id} ended on {Core.Guest.OsProfiles.NameOf(kernel.Clocksource)}, not kvm-clock";
                }
                bool kvm = vm.Policy.Kind is PolicyKind.Kvm2011 or PolicyKind.KvmModern;
                for (int v = 0; v < vm.Vcpus.Length && kvm; v++)
                {
                    if ((vm.Kvmclock.Published(v).Flags & PvclockAbi.TscStableBit) != 0)
                    {
                        return $"{spec.Id}.vcpu{v}: STABLE is published on a host whose TSCs are not synchronized";
                    }
                }
                if (KvmclockChecks.Monotonic(spec.Id, o.Model.Observer.Vms[i], o.ClockReads[i]) is { } failure)
                {
                    return failure;
                }
            }
            return null;
        }, o => [(o.Model.Observer.Vms.Any(r => r.CrossStalls > 0), "the guard stalled a read"),
                 (o.Scenario.Hypervisor.Policy.StartsWith("xen", StringComparison.Ordinal), "Xen")]));
}

/// <summary>Checks shared by the kvm-clock properties.</summary>
internal static class KvmclockChecks
{
    /// <summary>
    /// Per vCPU from the recorder (a vCPU's reads never overlap, so its order is exact); across
    /// vCPUs in the happens-before sense by <see cref="ClockReadLog.Violations"/>, an oracle
    /// independent of the recorder (whose <c>cross_vcpu.violations</c> the expect lines check).
    /// </summary>
    internal static string? Monotonic(string id, VmRecorder rec, ClockReadLog log)
    {
        foreach (VcpuRecorder v in rec.Vcpus)
        {
            if (v.Reads == 0)
            {
                return $"{id}.vcpu{v.Id} made no clock read (the property would be vacuous)";
            }
            if (v.Violations != 0)
            {
                return $"{id}.vcpu{v.Id}: {v.Violations} clock reads went backwards, the worst by {v.WorstBackstepNs} ns";
            }
        }
        var (count, worst, example) = log.Violations();
        return count != 0
            ? $"{id}: {count} clock reads returned less than a read that had returned before they began, the worst by {worst} ns ({example})"
            : null;
    }

    /// <summary>The summary states the property too: kvm-clock, and no violation per vCPU or across vCPUs.</summary>
    internal static List<string> Expect(GeneratedScenario s) =>
        [.. s.Vms.SelectMany((vm, i) => Enumerable.Range(0, vm.Vcpus).Select(v => $"vm{i}.vcpu{v}.violations == 0")
            .Prepend($"vm{i}.clocksource == kvm-clock").Append($"vm{i}.cross_vcpu.violations == 0"))];
}

/// <summary>The monotonicity checker is not vacuous.</summary>
public class NonVacuityProperties
{
    /// <summary>
    /// A raw-TSC guest (linux-2.6.18-i386 on its TSC clocksource, trapping off) whose vCPUs sit on cores with
    /// different TSCs (one core's TSC stopped by a C-state on a CPU without nonstop TSC, slowed by a
    /// K8 P-state change, or written by the host) shows clock reads going backwards across vCPUs;
    /// if it reads the TSC directly, TSC reads going backwards too. So the zero counts the other
    /// properties check are measured, not structural.
    /// </summary>
    [ScenarioProperty(40)]
    public Property A_raw_tsc_guest_on_disturbed_cores_shows_violations() =>
        Prop.ForAll(Families.RawTscDisturbedArbitrary(), s => ScenarioHarness.Check(s, "non-vacuity", ["vm0.cross_vcpu.violations > 0"], o =>
        {
            VmRecorder rec = o.Model.Observer.Vms[0];
            if (o.ClockReads[0].Violations().Count == 0)
            {
                return $"no clock read returned less than one that had returned before it began (max skew between vCPUs {rec.CrossMaxSkewNs} ns)";
            }
            if (o.Scenario.Vms[0].Workload.Contains("rdtsc", StringComparison.Ordinal) && rec.CrossTscViolations == 0)
            {
                return "no TSC read went backwards across vCPUs";
            }
            return null;
        }, o => [(o.Scenario.Events.Any(e => e is CstateEvent), "C-state"), (o.Scenario.Events.Any(e => e is CpufreqEvent), "K8 P-state"),
                 (o.Scenario.Events.Any(e => e is TscWriteEvent), "TSC write")]));
}

/// <summary>Where every vCPU's time goes.</summary>
public class CycleConservationProperties
{
    /// <summary>
    /// For every vCPU, guest cycles + exit cycles account for all of its simulated time at its
    /// core's frequency, except while its VM has not started, waits for an AP's bring-up or is
    /// paused by a live migration (<see cref="CycleConservation"/> states the bound).
    /// </summary>
    [ScenarioProperty(60)]
    public Property Guest_and_exit_cycles_account_for_every_vcpus_simulated_time() =>
        Prop.ForAll(Families.Conservation.Arbitrary(), s => ScenarioHarness.Check(s, "cycle conservation", [], CycleConservation.Check,
            o => [(o.Scenario.Events.Any(e => e is CpufreqEvent), "P-state changes"), (o.Scenario.Events.Any(e => e is LiveMigrateEvent), "live migration"),
                  (o.Scenario.Events.Any(e => e is MigrateVcpuEvent), "vCPU moves"), (o.Scenario.Vms[0].Start > Core.Time.Duration.Zero, "late start")]));
}

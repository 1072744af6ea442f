using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Measurement;
using TscSim.Core.Scenarios;
using TscSim.Core.Time;

namespace TscSim.Core.Runs;

/// <summary>What a run produced: the summary document and whether every expectation held.</summary>
public sealed record RunResult(JsonObject Summary, IReadOnlyList<ExpectationResult> Expectations, bool Complete, string Fingerprint)
{
    /// <summary>The guest faults that stopped vCPUs, by VM then vCPU.</summary>
    public IReadOnlyList<FaultReport> Faults { get; init; } = [];

    /// <summary>An expectation names faults (a path segment <c>faults</c> or <c>fault</c>): the scenario checks them itself.</summary>
    public bool FaultsExpected => Expectations.Any(e => MentionsFaults(e.Expectation.Path));

    /// <summary>Faults happened and no expectation accounts for them: the run fails.</summary>
    public bool UnexpectedFaults => Faults.Count > 0 && !FaultsExpected;

    /// <summary>Every expectation held, and no guest fault went unexpected.</summary>
    public bool Passed => Expectations.All(e => e.Passed) && !UnexpectedFaults;

    /// <summary>Whether an expectation path is about faults (<c>vm0.vcpu0.faults</c>, <c>faults</c>, <c>vm0.vcpu1.fault.kind</c>).</summary>
    public static bool MentionsFaults(string path) => path.Split('.').Any(p => p is "faults" or "fault");
}

/// <summary>
/// Runs a <see cref="ScenarioModel"/> for the scenario's duration in steps (so progress can be
/// shown and a cancellation can stop it between steps), then builds the summary
/// (<c>tscsim.summary/1</c>) and evaluates the expectations against it.
/// </summary>
public static class ScenarioRun
{
    /// <summary>Steps a run is divided into (progress granularity).</summary>
    public const int Steps = 200;

    /// <summary>
    /// Runs <paramref name="model"/>. <paramref name="progress"/> gets the fraction of simulated
    /// time done after each step; a cancelled <paramref name="cancel"/> ends the run at the next
    /// step boundary with <c>complete: false</c>.
    /// </summary>
    public static RunResult Execute(ScenarioModel model, Action<double>? progress = null, CancellationToken cancel = default)
    {
        var wall = Stopwatch.StartNew();
        long end = model.Scenario.Duration.Picoseconds;
        bool complete = true;
        for (int step = 1; step <= Steps; step++)
        {
            if (cancel.IsCancellationRequested)
            {
                complete = false;
                break;
            }
            long until = (long)((Int128)end * step / Steps);
            model.Sim.Run(SimTime.FromPicoseconds(until));
            model.SampleExits();
            progress?.Invoke((double)step / Steps);
        }
        wall.Stop();
        return Summarize(model, complete, wall.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// The run's fingerprint: the simulator's (every event, read, exit and fault in execution
    /// order) with every VM's trapping changes folded after it, VM by VM in scenario order.
    /// </summary>
    public static Fingerprint RunFingerprint(ScenarioModel model)
    {
        ulong h = model.Sim.Fingerprint.Value;
        for (int i = 0; i < model.Vms.Count; i++)
        {
            foreach (var c in model.Vms[i].Vm.Changes)
            {
                h = Fingerprint.Fold(h, ResultWord.Tag(ResultWord.Trapping, i, c.Trapping ? 1 : 0));
                h = Fingerprint.Fold(h, unchecked((ulong)c.Time.Picoseconds));
                h = Fingerprint.Fold(h, StableHash.Fnv1a64(c.Reason));
            }
        }
        return new Fingerprint(h);
    }

    /// <summary>Builds the summary of the run so far and evaluates the expectations.</summary>
    public static RunResult Summarize(ScenarioModel model, bool complete, double wallSeconds)
    {
        var sim = model.Sim;
        string fingerprint = RunFingerprint(model).ToString();
        var summary = new JsonObject
        {
            ["schema"] = "tscsim.summary/1",
            ["scenario"] = model.Scenario.Name,
            ["seed"] = model.Seed,
            ["fingerprint"] = fingerprint,
            ["complete"] = complete,
            ["simulated_ns"] = sim.Now.Picoseconds / 1000,
            ["events"] = sim.ExecutedEvents,
            ["guest_instructions"] = model.Vms.Sum(v => v.Vm.Vcpus.Sum(c => c.Instructions)),
            ["wall_seconds"] = Math.Round(wallSeconds, 3),
        };
        var vms = new JsonArray();
        for (int i = 0; i < model.Vms.Count; i++)
        {
            vms.Add(VmNode(model, i));
        }
        summary["vms"] = vms;
        var faults = FaultReport.All(model);
        summary["faults"] = faults.Count;

        var results = new List<ExpectationResult>();
        foreach (var e in model.Scenario.Expect)
        {
            results.Add(e.Evaluate(path => Lookup(summary, path), KnownPaths(summary)));
        }
        summary["expectations"] = new JsonArray([.. results.Select(r => (JsonNode)new JsonObject
        {
            ["expr"] = r.Expectation.Text,
            ["value"] = r.Value is null ? null : r.Value.Number is double d ? JsonValue.Create(d) : JsonValue.Create(r.Value.Text),
            ["passed"] = r.Passed,
            ["message"] = r.Message,
        })]);
        // Expectations first after the header fields, as the contract lists them.
        return new RunResult(summary, results, complete, fingerprint) { Faults = faults };
    }

    private static JsonObject VmNode(ScenarioModel model, int index)
    {
        var (spec, vm, kernel) = model.Vms[index];
        VmRecorder rec = model.Observer.Vms[index];
        var node = new JsonObject
        {
            ["id"] = spec.Id,
            ["host"] = vm.Host.Config.Id,
            ["guest"] = spec.Guest.Profile,
            ["clocksource"] = kernel.TimekeepingStarted ? OsProfiles.NameOf(kernel.Clocksource) : null,
            ["vmm"] = vm.Policy.Kind is Virtualization.PolicyKind.Kvm2011 or Virtualization.PolicyKind.KvmModern ? vm.VmmName : null,
            ["tsc_khz"] = vm.EffectiveTscKhz,
            ["virtual_tsc_khz"] = vm.VirtualTscKhz,
            ["guest_tsc_khz"] = kernel.TscKhz,
            ["calibration"] = kernel.Calibration?.Method,
            ["tsc_unstable"] = kernel.TscUnstable,
            ["clocksource_switches"] = new JsonArray([.. kernel.Switches.Select(s => (JsonNode)new JsonObject
            {
                ["time_ns"] = s.Time.Picoseconds / 1000,
                ["from"] = s.From is { } f ? OsProfiles.NameOf(f) : null,
                ["to"] = OsProfiles.NameOf(s.To),
                ["reason"] = s.Reason,
            })]),
            ["ticks"] = kernel.Tick2618 is { } t ? new JsonObject
            {
                ["hz"] = t.Hz,
                ["interrupts"] = t.Interrupts,
                ["jiffies"] = t.Jiffies,
                ["lost_ticks"] = t.LostTicks,
                ["lost_tick_events"] = t.LostTickEvents,
                ["xtime_ns"] = t.XtimeNs,
            } : null,
            ["trapping"] = Trapping(vm),
            ["notifications"] = vm.Notifications,
            ["faults"] = vm.Vcpus.Count(c => c.Fault is not null),
        };
        using (var buffer = new MemoryStream())
        {
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                SummaryJson.WriteCrossVcpu(w, rec);
                w.WriteEndObject();
            }
            node["cross_vcpu"] = JsonNode.Parse(buffer.ToArray())!["cross_vcpu"]!.DeepClone();
        }
        var vcpus = new JsonArray();
        for (int v = 0; v < vm.Vcpus.Length; v++)
        {
            var cpu = vm.Vcpus[v];
            var exits = vm.Platforms[v].Exits;
            JsonObject c;
            using (var buffer = new MemoryStream())
            {
                using (var w = new Utf8JsonWriter(buffer))
                {
                    w.WriteStartObject();
                    SummaryJson.WriteVcpuMeasurements(w, rec.Vcpus[v]);
                    w.WriteEndObject();
                }
                c = JsonNode.Parse(buffer.ToArray())!.AsObject();
            }
            c["core"] = cpu.Core.Index;
            c["exits"] = new JsonObject
            {
                ["rdtsc"] = exits.Rdtsc, ["rdtscp"] = exits.Rdtscp, ["msr"] = exits.Msr, ["mmio"] = exits.Mmio,
                ["pio"] = exits.Pio, ["cpuid"] = exits.Cpuid, ["hlt"] = exits.Hlt,
                ["external_interrupt"] = exits.ExternalInterrupt, ["apic"] = exits.Apic, ["preemption_timer"] = exits.PreemptionTimer,
                ["total"] = exits.Total,
            };
            c["interrupts"] = new JsonObject // issue 16: delivered, by source
            {
                ["lapic_timer"] = cpu.InterruptsDelivered(InterruptSource.LapicTimer),
                ["pit"] = cpu.InterruptsDelivered(InterruptSource.Pit),
                ["hpet"] = cpu.InterruptsDelivered(InterruptSource.Hpet),
                ["ipi"] = cpu.InterruptsDelivered(InterruptSource.Ipi),
                ["total"] = cpu.InterruptsDelivered(InterruptSource.LapicTimer) + cpu.InterruptsDelivered(InterruptSource.Pit)
                    + cpu.InterruptsDelivered(InterruptSource.Hpet) + cpu.InterruptsDelivered(InterruptSource.Ipi),
            };
            c["exit_cycles"] = cpu.ExitCycles;
            c["guest_cycles"] = cpu.GuestCycles;
            long all = cpu.ExitCycles + cpu.GuestCycles;
            c["overhead_pct"] = all == 0 ? 0.0 : Math.Round(100.0 * cpu.ExitCycles / all, 4);
            c["instructions"] = cpu.Instructions;
            c["trapping"] = Trapping(vm);
            var pv = vm.Kvmclock.Published(v);
            c["pvclock"] = new JsonObject
            {
                ["tsc_shift"] = (int)pv.Shift,
                ["tsc_to_system_mul"] = pv.Mul,
                ["version"] = pv.Version,
                ["flags"] = (int)pv.Flags,
            };
            var fault = FaultReport.Of(model, index, v);
            c["faults"] = fault is null ? 0 : 1;
            c["fault"] = fault?.ToJson();
            vcpus.Add(c);
        }
        node["vcpus"] = vcpus;
        return node;
    }

    private static JsonArray Trapping(Virtualization.Vm vm) =>
        new([.. vm.TrappedIntervals().Select(t => (JsonNode)new JsonObject
        {
            ["from_ns"] = t.From.Picoseconds / 1000,
            ["to_ns"] = t.To is { } to ? to.Picoseconds / 1000 : null,
            ["reason"] = t.Reason,
        })]);

    /// <summary>
    /// Resolves an expectation path against the summary: the first segment is a VM id, then
    /// <c>vcpuN</c> selects vCPU N and every other segment is a field name
    /// (<c>vm0.vcpu1.exits.rdtsc</c>, <c>vm0.cross_vcpu.violations</c>, <c>vm0.clocksource</c>);
    /// a path without a VM id is a top-level field (<c>events</c>).
    /// </summary>
    public static ExpectValue? Lookup(JsonObject summary, string path)
    {
        string[] parts = path.Split('.');
        JsonNode? node = summary;
        int i = 0;
        var vm = summary["vms"]!.AsArray().FirstOrDefault(v => (string?)v!["id"] == parts[0]);
        if (vm is not null)
        {
            node = vm;
            i = 1;
        }
        for (; i < parts.Length && node is not null; i++)
        {
            string p = parts[i];
            if (node is JsonObject o && p.StartsWith("vcpu", StringComparison.Ordinal) && int.TryParse(p.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out int v)
                && o["vcpus"] is JsonArray cpus)
            {
                node = v < cpus.Count ? cpus[v] : null;
            }
            else
            {
                node = node is JsonObject obj ? obj[p] : null;
            }
        }
        return node switch
        {
            JsonValue value when value.TryGetValue(out string? s) => ExpectValue.Of(s),
            JsonValue value when value.TryGetValue(out bool b) => ExpectValue.Of(b ? "true" : "false"),
            JsonValue value when value.GetValueKind() == JsonValueKind.Number =>
                ExpectValue.Of(double.Parse(value.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture)),
            _ => null,
        };
    }

    /// <summary>Every numeric or text leaf path of the summary's VMs (for "did you mean" on unknown paths).</summary>
    public static IEnumerable<string> KnownPaths(JsonObject summary)
    {
        foreach (var vm in summary["vms"]!.AsArray())
        {
            string id = (string)vm!["id"]!;
            foreach (var p in Leaves(vm, id))
            {
                yield return p;
            }
        }
    }

    private static IEnumerable<string> Leaves(JsonNode node, string prefix)
    {
        if (node is JsonObject o)
        {
            foreach (var (k, v) in o)
            {
                if (k == "vcpus" && v is JsonArray cpus)
                {
                    for (int i = 0; i < cpus.Count; i++)
                    {
                        foreach (var p in Leaves(cpus[i]!, $"{prefix}.vcpu{i}"))
                        {
                            yield return p;
                        }
                    }
                }
                else if (v is JsonObject)
                {
                    foreach (var p in Leaves(v, $"{prefix}.{k}"))
                    {
                        yield return p;
                    }
                }
                else if (v is JsonValue)
                {
                    yield return $"{prefix}.{k}";
                }
            }
        }
    }

    /// <summary>Cumulative exits per vCPU at each step, as CSV.</summary>
    public static string ExitsCsv(ScenarioModel model)
    {
        var sb = new StringBuilder("true_ns,vm,vcpu,rdtsc,rdtscp,msr,mmio,pio,cpuid,hlt,exit_cycles,guest_cycles\n");
        foreach (var x in model.ExitSamples)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{x.TrueNs},{Csv(x.Vm)},{x.Vcpu},{x.Rdtsc},{x.Rdtscp},{x.Msr},{x.Mmio},{x.Pio},{x.Cpuid},{x.Hlt},{x.ExitCycles},{x.GuestCycles}\n");
        }
        return sb.ToString();
    }

    /// <summary>The timeline as CSV (<c>true_ns,kind,subject,detail</c>).</summary>
    public static string TimelineCsv(ScenarioModel model)
    {
        var sb = new StringBuilder("true_ns,kind,subject,detail\n");
        foreach (var e in model.Timeline())
        {
            sb.Append((e.Time.Picoseconds / 1000).ToString(CultureInfo.InvariantCulture)).Append(',')
              .Append(Csv(e.Kind)).Append(',').Append(Csv(e.Subject)).Append(',').Append(Csv(e.Detail)).Append('\n');
        }
        return sb.ToString();
    }

    private static string Csv(string s) =>
        s.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : s;
}
